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
