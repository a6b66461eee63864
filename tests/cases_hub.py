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


# Known-bad and known-good cases of what an adapter file must hold, beyond keras-hub's own
# models: small functional keras-hub Backbones, each with one adapted Dense layer "query".

def _one_query(*middle, name="query"):
    import keras_hub

    features = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(4, name=name)(features)
    for layer in middle:
        hidden = layer(hidden)
    backbone = keras_hub.models.Backbone(inputs=features, outputs=keras.layers.Dense(4, name="out")(hidden))
    backbone.enable_lora(2, target_layer_names=["query"])
    _freeze_adapted_biases(backbone)
    return backbone


def one_query_lora():
    """Only the adapters train (known-good)."""
    return _one_query()


@keras.saving.register_keras_serializable("pytest_ckpt_tests")
class CachedDense(keras.layers.Dense):
    """Keeps its LoRA-merged kernel in a non-trainable cache for inference, refreshed by every
    training-mode call: the cache follows the adapters, and the adapter file lacks it."""

    def build(self, input_shape):
        super().build(input_shape)
        self.cache = self.add_weight(name="merged_cache", shape=self._kernel.shape, initializer="zeros",
                                     trainable=False)
        self.cache.assign(self._kernel)

    def call(self, inputs, training=None):
        kernel = self.kernel if training else self.cache
        if training:
            self.cache.assign(kernel)
        return keras.ops.matmul(inputs, kernel) + self.bias


def cached_merge_lora():
    """Known-bad: at the factory's values (lora_kernel_b is zero) the refresh writes what the
    cache holds, so only a training step on other values shows that it moves."""
    import keras_hub

    features = keras.Input((4,), name="features")
    hidden = CachedDense(4, name="query")(features)
    backbone = keras_hub.models.Backbone(inputs=features, outputs=keras.layers.Dense(4, name="out")(hidden))
    backbone.enable_lora(2, target_layer_names=["query"])
    _freeze_adapted_biases(backbone)
    return backbone


@keras.saving.register_keras_serializable("pytest_ckpt_tests")
class RunningMax(keras.layers.Layer):
    """Clips to a running maximum of |x| that starts at 50 and grows in training only."""

    def build(self, input_shape):
        self.amax = self.add_weight(name="amax", shape=(), initializer=keras.initializers.Constant(50.0),
                                    trainable=False)

    def call(self, x, training=None):
        if training:
            self.amax.assign(keras.ops.maximum(self.amax.value, keras.ops.max(keras.ops.abs(x))))
        amax = self.amax.value
        return keras.ops.clip(x, -amax, amax) / amax

    def compute_output_shape(self, input_shape):
        return input_shape


def running_max_lora():
    """Known-bad on data beyond 50 (truth: --scale 100): the maximum moves, not in the file."""
    return _one_query(RunningMax(name="clip"))


def unfrozen_statistics_lora():
    """Known-bad: batch normalization unfrozen after enable_lora with gamma and beta frozen:
    its moving statistics train, and they are not adapters."""
    bn = keras.layers.BatchNormalization(name="bn")
    backbone = _one_query(bn)
    bn.trainable = True
    bn.gamma.trainable = False
    bn.beta.trainable = False
    return backbone


def frozen_statistics_lora():
    """Known-good twin: enable_lora freezes the batch normalization, which then keeps its statistics."""
    return _one_query(keras.layers.BatchNormalization(name="bn"))


def pooler_adapted_by_hand_lora():
    """Known-bad: the pooler adapted with its own enable_lora, which keras-hub's list of adapted
    layers (and so save_lora_weights) does not know."""
    backbone = bert_backbone_lora_frozen_biases()
    pooler = backbone.get_layer("pooled_dense")
    pooler.trainable = True
    pooler.enable_lora(2)
    pooler.bias.trainable = False
    return backbone


def embedding_adapted_lora():
    """Known-bad: the token embedding as enable_lora's target; save_lora_weights cannot save it."""
    backbone = _backbone()
    backbone.enable_lora(2, target_layer_names=["token_embedding"])
    return backbone


def bert_classifier_frozen_head_lora():
    """Known-bad: a Task whose head is frozen too. The backbone's preset does not hold the head,
    so a model built from it draws another one."""
    task = bert_classifier_lora()
    task.get_layer("logits").trainable = False
    return task


@keras.saving.register_keras_serializable("pytest_ckpt_tests")
class Annealed(keras.layers.Layer):
    """Divides by a temperature that falls with the training steps taken, a count its model's
    train_step advances (no call updates it)."""

    def build(self, input_shape):
        self.steps = self.add_weight(name="steps", shape=(), initializer="zeros", trainable=False)

    def call(self, x):
        return x / (1.0 + 0.5 * self.steps.value)

    def compute_output_shape(self, input_shape):
        return input_shape


def _step_counting_backbone(compiled):
    import keras_hub

    class StepCounting(keras_hub.models.Backbone):
        def train_step(self, state, data):  # JAX's stateless train_step
            logs, (trainable, non_trainable, optimizer, metrics) = super().train_step(state, data)
            steps = self.get_layer("anneal").steps
            at = [id(v) for v in self.non_trainable_variables].index(id(steps))
            non_trainable = list(non_trainable)
            non_trainable[at] = non_trainable[at] + 1.0
            return logs, (trainable, non_trainable, optimizer, metrics)

    features = keras.Input((4,), name="features")
    hidden = Annealed(name="anneal")(keras.layers.Dense(4, name="query")(features))
    backbone = StepCounting(inputs=features, outputs=hidden)
    backbone.enable_lora(2, target_layer_names=["query"])
    _freeze_adapted_biases(backbone)
    if compiled:
        backbone.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return backbone


def step_counting_lora():
    """Known-bad (JAX): a count its own train_step advances; only a real fit step shows it."""
    return _step_counting_backbone(compiled=True)


def step_counting_uncompiled_lora():
    """The same uncompiled: the check cannot run its train_step and says so."""
    return _step_counting_backbone(compiled=False)


@keras.saving.register_keras_serializable("pytest_ckpt_tests")
class InferenceOnly(keras.layers.Layer):
    def call(self, x, training=None):
        if training:
            raise RuntimeError("this layer is never called in training mode")
        return x


def inference_only_lora():
    """A model that refuses training-mode calls: the check cannot tell what fine-tuning changes."""
    return _one_query(InferenceOnly(name="guard"))


def _loss_counting_backbone():
    import keras_hub

    class LossCounting(keras_hub.models.Backbone):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            steps = self.get_layer("anneal").steps
            steps.assign(steps.value + 1.0)
            return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)

    features = keras.Input((4,), name="features")
    hidden = Annealed(name="anneal")(keras.layers.Dense(4, name="query")(features))
    backbone = LossCounting(inputs=features, outputs=hidden)
    backbone.enable_lora(2, target_layer_names=["query"])
    _freeze_adapted_biases(backbone)
    backbone.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return backbone


def loss_counting_lora():
    """Known-bad (JAX): the count advanced by the class's own compute_loss, which fit runs and
    no call does."""
    return _loss_counting_backbone()

