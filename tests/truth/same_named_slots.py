"""Plain-Keras truth for tests.cases:same_named_towers: whose momentum does a load put where?

    python tests/truth/same_named_slots.py save PATH [FACTORY]  # tower_a frozen: slots serve tower_b only
    python tests/truth/same_named_slots.py load PATH [FACTORY]  # tower_b frozen: slots serve tower_a only

FACTORY is a function of tests.cases, same_named_towers by default (or multi_optimizer_towers).

Run save and load in two processes.  At save, every slot (all tower_b's) holds 7.0; the load
prints what the slots serving tower_a hold.  Only public APIs: the optimizer is built for the
model's trainable variables, so which tower its slots serve follows from what is frozen.
"""

import json
import sys

import numpy as np

from tests import cases


def build(frozen: str):
    model = getattr(cases, sys.argv[3] if len(sys.argv) > 3 else "same_named_towers")()
    model.get_layer(frozen).trainable = False
    model.optimizer.build(model.trainable_variables)
    return model


def momentum_slots(model):
    return [v for v in model.optimizer.variables if "momentum" in v.name]


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "save":
        model = build("tower_a")
        for slot in momentum_slots(model):
            slot.assign(np.full(slot.shape, 7.0, "float32"))
        model.save_weights(path)
        print(json.dumps({"saved_slots": len(momentum_slots(model))}))
    else:
        model = build("tower_b")
        model.load_weights(path)
        values = [np.asarray(slot.value).ravel().tolist() for slot in momentum_slots(model)]
        print(json.dumps({"tower_a_slots_hold_tower_b_momentum": all(v == [7.0] * len(v) for v in values),
                          "slots": len(values)}))
