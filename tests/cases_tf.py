"""Known cases that need the TensorFlow backend (a custom train_step written with tf.GradientTape)."""

import keras
import tensorflow as tf


class GuideStep(keras.Model):
    """A custom train_step as the Keras guide writes it: ``x, y = data``."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return {"loss": loss}


def guide_train_step():
    """Resumes exactly in plain Keras (fit hands train_step what the data yields); the resume
    check once drove it with train_on_batch, which hands it (x, y, None) and crashed."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="a")(inputs)
    model = GuideStep(inputs, keras.layers.Dense(2, name="head")(x))
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model
