"""Model factories of growing size for the scaling benchmark (weights=None: no download)."""

import keras


def _dense_stack(width: int, depth: int):
    body = keras.Sequential([keras.Input((width,))] + [keras.layers.Dense(width) for _ in range(depth)],
                            name="body")
    return keras.Sequential([keras.Input((width,)), body, keras.layers.Dense(10)])


def params_1m():
    return _dense_stack(1000, 1)  # 1.0M parameters


def params_10m():
    return _dense_stack(1000, 10)  # 10.0M


def params_30m():
    from pytest_ckpt.models import resnet50_nested

    return resnet50_nested()  # 31.6M: ResNet50 nested in a Sequential


def params_100m():
    return _dense_stack(4096, 6)  # 100.7M


def params_30m_compiled():
    from pytest_ckpt.models import compiled_resnet50_nested

    return compiled_resnet50_nested()  # 31.6M + Adam's two slots per trainable variable


def compiled_resnet50_built():
    """The compiled ResNet50 with its optimizer built, as resume code prepares it: compile()
    alone builds it only at the first step, so load_weights would skip its saved state."""
    model = params_30m_compiled()
    model.optimizer.build(model.trainable_variables)
    return model
