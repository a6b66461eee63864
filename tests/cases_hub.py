"""keras-hub model factories for the keras-hub-preset format: tiny, built, no download."""

import keras


def _backbone():
    import keras_hub

    return keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8,
                                         intermediate_dim=16, max_sequence_length=16)


def bert_backbone():
    """A two-block BERT backbone: embeddings, two transformer blocks, a pooler."""
    return _backbone()


def bert_classifier():
    """A BERT text classifier (a Task) without preprocessor, compiled as keras-hub compiles it."""
    import keras_hub

    task = keras_hub.models.BertTextClassifier(_backbone(), num_classes=3, preprocessor=None)
    task.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return task


def bert_classifier_uncompiled():
    """The same Task made with compile=False: what a preset ships, without an optimizer."""
    import keras_hub

    return keras_hub.models.BertTextClassifier(_backbone(), num_classes=3, preprocessor=None, compile=False)


def bert_backbone_lora():
    """The backbone with keras-hub's LoRA enabled (rank 2 on query and value; the rest frozen)."""
    backbone = _backbone()
    backbone.enable_lora(2)
    return backbone


def _freeze_adapted_biases(backbone):
    for layer in backbone._flatten_layers(include_self=False):
        if getattr(layer, "lora_enabled", False) and getattr(layer, "bias", None) is not None:
            layer.bias.trainable = False


def bert_backbone_lora_frozen_biases():
    """The LoRA backbone with the adapted layers' biases frozen too: only the adapters train,
    so keras-hub's adapter file holds everything training changes (known-good)."""
    backbone = bert_backbone_lora()
    _freeze_adapted_biases(backbone)
    return backbone


def bert_classifier_lora():
    """A Task fine-tuned with LoRA on its backbone (biases frozen): its classification head is
    trainable, and the backbone's adapter file does not hold it (known-bad)."""
    import keras_hub

    task = keras_hub.models.BertTextClassifier(_backbone(), num_classes=3, preprocessor=None, compile=False)
    task.backbone.enable_lora(2)
    _freeze_adapted_biases(task.backbone)
    return task


def set_ordered_lora():
    """Six adapted Dense blocks applied in a set's iteration order, which follows the hash
    seed: a fresh process numbers the layers otherwise, and keras-hub's adapter file keys each
    adapter by that number (known-bad: adapters land in other layers)."""
    import keras_hub

    # Six names: two processes order them alike about once in 720.
    names = [f"block_{c}" for c in ("age", "income", "height", "weight", "tenure", "visits")]
    features = keras.Input((4,), name="features")
    hidden = features
    for name in set(names):
        hidden = keras.layers.Dense(4, name=name)(hidden)
    backbone = keras_hub.models.Backbone(inputs=features, outputs=hidden)
    backbone.enable_lora(2, target_layer_names=names)
    _freeze_adapted_biases(backbone)
    return backbone


def bert_backbone_lora_compiled():
    """The known-good LoRA backbone, compiled: what a resume check needs (it refuses the format)."""
    backbone = bert_backbone_lora_frozen_biases()
    backbone.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return backbone
