"""TensorFlow PReLU kernel: Keras's forward graph with a custom gradient."""

import tensorflow as tf

from keras_prelu.kernels._reduce import broadcast_reduction_axes


def _accumulation_dtype(dtype):
    # Half-precision sums over a whole batch lose the slope gradient.
    return tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype


@tf.custom_gradient
def prelu(x, alpha):
    # `relu(x) - alpha * relu(-x)` is the exact op pattern the TFLite
    # converter fuses into its native PRELU op, and its values equal the
    # reference's bit for bit (relu keeps NaN). Only the gradient is ours.
    output = tf.nn.relu(x) + (-alpha) * tf.nn.relu(-x)

    def grad(upstream):
        nonnegative = x >= 0
        grad_x = tf.where(nonnegative, upstream, upstream * alpha)
        per_element = tf.where(
            nonnegative, tf.zeros_like(upstream), upstream * x
        )
        accumulation_dtype = _accumulation_dtype(per_element.dtype)
        grad_alpha = tf.reduce_sum(
            tf.cast(per_element, accumulation_dtype),
            axis=broadcast_reduction_axes(x.shape.rank, alpha.shape),
            keepdims=True,
        )
        grad_alpha = tf.cast(tf.reshape(grad_alpha, tf.shape(alpha)), alpha.dtype)
        return grad_x, grad_alpha

    return output, grad
