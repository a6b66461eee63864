"""Plain-Keras truth for tests.cases:same_named_towers: whose momentum does a load put where?

    python tests/truth/same_named_slots.py save PATH [FACTORY] [FORMAT]  # tower_a frozen: slots serve tower_b
    python tests/truth/same_named_slots.py load PATH [FACTORY] [FORMAT]  # tower_b frozen: slots serve tower_a

FACTORY is a function of tests.cases, same_named_towers by default (or multi_optimizer_towers);
FORMAT is keras-weights (the default) or tf-checkpoint.

Run save and load in two processes.  At save the optimizer is built for what is trainable
(as the first training step builds it) and every slot (all tower_b's) holds 7.0.  The load
builds the model as the factory returns it (compiled, its optimizer not built), freezes
tower_b, loads, and then builds the optimizer as the first training step would; it prints
what the slots serving tower_a hold.  Both towers' kernels are "proj/kernel", so their
slots share the name "proj_kernel_momentum": which tower a slot serves follows from what is
frozen when the optimizer is built.  Only public APIs.
"""

import json
import sys

import numpy as np

from tests import cases


def build(frozen: str):
    model = getattr(cases, sys.argv[3] if len(sys.argv) > 3 else "same_named_towers")()
    model.get_layer(frozen).trainable = False
    return model


def momentum_slots(model):
    return [v for v in model.optimizer.variables if "momentum" in v.name]


def save_or_load(model, path, fmt, save):
    if fmt == "tf-checkpoint":
        import tensorflow as tf

        ckpt = tf.train.Checkpoint(model=model)
        if save:
            ckpt.write(path)
        else:
            status = ckpt.read(path)
            status.assert_existing_objects_matched()
            status.expect_partial()
    elif save:
        model.save_weights(path)
    else:
        model.load_weights(path)


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    fmt = sys.argv[4] if len(sys.argv) > 4 else "keras-weights"
    if mode == "save":
        model = build("tower_a")
        model.optimizer.build(model.trainable_variables)
        for slot in momentum_slots(model):
            slot.assign(np.full(slot.shape, 7.0, "float32"))
        save_or_load(model, path, fmt, save=True)
        print(json.dumps({"saved_slots": len(momentum_slots(model))}))
    else:
        model = build("tower_b")
        save_or_load(model, path, fmt, save=False)
        model.optimizer.build(model.trainable_variables)
        values = [np.asarray(slot.value).ravel().tolist() for slot in momentum_slots(model)]
        print(json.dumps({"tower_a_slots_hold_tower_b_momentum": all(v == [7.0] * len(v) for v in values),
                          "slots": len(values)}))
