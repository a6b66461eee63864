"""Minimal repro, independent of roundtrip.py: Keras 3 + tf.train.Checkpoint(model=m) swaps
*model* weights when the freeze differs and the optimizer is built on both sides.

    python tests/truth/tf_checkpoint_optimizer.py

Why: on the TensorFlow backend a built optimizer tracks the list of variables it trains
(``optimizer._trainable_variables``), so the checkpoint's object graph reaches each trainable
variable twice: by its layer and by its position in that list.  Restoring binds whichever path
it matches, so with ``b`` frozen at save and ``a`` at load, position 0 (a's kernel at save) is
bound to b's kernel.  Saving after ``fit`` (the usual case) builds the optimizer; the loading
side builds it before ``read`` here, as a resumed training script does.
Each phase runs in its own fresh process; prints one line per loading mode.
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def model():
    sys.path.insert(0, HERE)
    from compiled_cases import compiled_twin

    m = compiled_twin()
    block = m.get_layer("block")
    kernels = {"a": block.get_layer("a").kernel, "b": block.get_layer("b").kernel,
               "head": m.get_layer("head").kernel}
    return m, block, kernels


def save(path):
    import numpy as np
    import tensorflow as tf

    m, block, kernels = model()
    block.get_layer("b").trainable = False
    m.compile(optimizer="adam", loss="mse")
    m.fit(np.ones((2, 4)), np.ones((2, 2)), verbose=0)  # builds the optimizer, as training does
    for i, v in enumerate(kernels.values()):  # recognisable values: a=1, b=2, head=3
        v.assign(np.full(v.shape, float(i + 1)))
    tf.train.Checkpoint(model=m).write(path)


def load(path, build_optimizer):
    import tensorflow as tf

    m, block, kernels = model()
    block.get_layer("a").trainable = False
    m.compile(optimizer="adam", loss="mse")
    if build_optimizer:
        m.optimizer.build(m.trainable_variables)
    status = tf.train.Checkpoint(model=m).read(path)
    got = {k: float(v.numpy().flat[0]) for k, v in kernels.items()}
    try:
        status.assert_consumed()
        consumed = "assert_consumed ok"
    except AssertionError as e:
        consumed = f"assert_consumed: AssertionError: {str(e).splitlines()[0][:120]}"
    print(f"optimizer built before read={build_optimizer}: kernels a,b,head hold "
          f"{got['a']:.3g}, {got['b']:.3g}, {got['head']:.3g} (saved 1, 2, 3); {consumed}")


if __name__ == "__main__":
    if len(sys.argv) > 1:  # a child phase
        save(sys.argv[2]) if sys.argv[1] == "save" else load(sys.argv[2], sys.argv[3] == "1")
    else:
        work = tempfile.mkdtemp()
        path = os.path.join(work, "ckpt")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        run = [sys.executable, os.path.abspath(__file__)]
        subprocess.run(run + ["save", path], env=env, check=True, stderr=subprocess.DEVNULL)
        for built in ("1", "0"):
            subprocess.run(run + ["load", path, built], env=env, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
