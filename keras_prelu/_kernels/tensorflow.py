"""TensorFlow PReLU kernels: an exportable forward and a fast training one,
both with our gradient.

`prelu` (inference, export, the functional op) computes
`relu(x) + (-alpha) * relu(-x)`: exactly the op pattern the TFLite converter
fuses into its native PRELU op, and the one tf2onnx writes as ops that
`keras_prelu.export` fuses into ONNX `PRelu`. Its values equal the
reference's for every finite slope, but `-alpha * relu(-x)` is `inf * 0 =
NaN` for x >= 0 when the slope is not finite, so such a slope takes
`where(x >= 0, x, alpha * x)` instead: chosen in Python when running
eagerly, by a `tf.cond` on the slope inside a graph (the converters see a
constant slope and keep only the fused branch).

`prelu_training` computes `where(x >= 0, x, alpha * x)` directly, exact for
any slope and with fewer passes over memory; on large tensors its forward
and backward are each compiled by XLA.
"""

import tensorflow as tf

from keras_prelu._kernels._reduce import broadcast_reduction_axes
from keras_prelu._kernels._reduce import chunk_plan
from keras_prelu._kernels._reduce import use_matmul_reduction

# Below this many elements per sample, launching an XLA computation costs
# more than fusing saves (small CNNs trained measurably slower with every
# gradient compiled); see benchmarks/README.md.
_XLA_MIN_ELEMENTS_PER_SAMPLE = 16384


def _accumulation_dtype(x_dtype, alpha_dtype):
    # Half-precision sums over a whole batch lose the slope gradient; a
    # wider slope (float32 next to float16 inputs) sets the precision.
    dtype = tf.float32 if x_dtype in (tf.float16, tf.bfloat16) else x_dtype
    return alpha_dtype if alpha_dtype.size > dtype.size else dtype


def _in_dtype(alpha, dtype):
    return alpha if alpha.dtype == dtype else tf.cast(alpha, dtype)


def _gradient_terms(x, slopes, upstream, accumulation_dtype):
    """The input gradient, and the slope-gradient terms summed over the axes
    `slopes` is broadcast along (kept, with size 1)."""
    nonnegative = x >= 0
    grad_x = tf.where(nonnegative, upstream, upstream * slopes)
    terms = tf.where(nonnegative, tf.zeros_like(upstream), upstream * x)
    if use_matmul_reduction(x.shape.rank, slopes.shape):
        rows = tf.reshape(terms, (-1, slopes.shape.num_elements()))
        ones = tf.ones((1, tf.shape(rows)[0]), accumulation_dtype)
        total = tf.matmul(ones, _in_dtype(rows, accumulation_dtype))
        return grad_x, tf.reshape(total, [1] * (x.shape.rank - slopes.shape.rank) + slopes.shape)
    axes = broadcast_reduction_axes(x.shape.rank, slopes.shape)
    return grad_x, tf.reduce_sum(_in_dtype(terms, accumulation_dtype), axis=axes, keepdims=True)


def _gradients(x, alpha, upstream, chunked=False):
    slopes = _in_dtype(alpha, x.dtype)
    accumulation_dtype = _accumulation_dtype(x.dtype, alpha.dtype)
    plan = None
    if chunked and not _has_gpu():
        plan = chunk_plan(x.shape, alpha.shape, x.dtype.size)
    if plan is None:
        grad_x, total = _gradient_terms(x, slopes, upstream, accumulation_dtype)
    else:
        grad_x, total = _chunked_gradients(x, slopes, upstream, accumulation_dtype, plan)
    return grad_x, _in_dtype(tf.reshape(total, tf.shape(alpha)), alpha.dtype)


def _chunked_gradients(x, slopes, upstream, accumulation_dtype, plan):
    """`_gradient_terms` in a loop over chunks of `rows` rows (see
    `_reduce.chunk_plan`); only XLA makes this loop fast."""
    prefix, rows = plan
    row_shape = x.shape[prefix:].as_list()
    x_chunks = tf.reshape(x, [-1, rows] + row_shape)
    upstream_chunks = tf.reshape(upstream, tf.shape(x_chunks))
    chunks = tf.shape(x_chunks)[0]
    # The slope, aligned with one chunk (rows, *row_shape); the axes it
    # lacks there were all summed over, so they have size 1.
    chunk_slopes = tf.reshape(slopes, slopes.shape[max(0, slopes.shape.rank - len(row_shape)) :])

    def step(i, total, grad_x):
        grad_chunk, partial = _gradient_terms(
            x_chunks[i], chunk_slopes, upstream_chunks[i], accumulation_dtype
        )
        return i + 1, total + partial, grad_x.write(i, grad_chunk)

    total_shape = [1] * (1 + len(row_shape) - chunk_slopes.shape.rank) + chunk_slopes.shape
    _, total, grad_x = tf.while_loop(
        lambda i, *_: i < chunks,
        step,
        (
            tf.constant(0),
            tf.zeros(total_shape, accumulation_dtype),
            tf.TensorArray(x.dtype, size=chunks, element_shape=[rows] + row_shape),
        ),
    )
    return tf.reshape(grad_x.stack(), tf.shape(x)), total


_GPUS = []


def _has_gpu():
    # Elsewhere than on a CPU, XLA fuses the two passes itself, and a loop
    # of small kernels would be slow.
    if not _GPUS:
        _GPUS.append(bool(tf.config.list_logical_devices("GPU")))
    return _GPUS[0]


def _exact_forward(x, alpha):
    return tf.where(x >= 0, x, _in_dtype(alpha, x.dtype) * x)


def _compile():
    """The XLA-compiled gradient and forward. Unfused, the backward is six
    elementwise passes plus a reduction and the forward three; compiled,
    the forward reads x once, and the backward too when chunked."""
    gradients = tf.function(
        lambda x, alpha, upstream: _gradients(x, alpha, upstream, chunked=True),
        jit_compile=True,
        autograph=False,
    )
    return gradients, tf.function(_exact_forward, jit_compile=True, autograph=False)


_compiled_gradients, _compiled_forward = _compile()


def _is_large(x) -> bool:
    per_sample = x.shape[1:]
    return (
        per_sample.is_fully_defined() and per_sample.num_elements() >= _XLA_MIN_ELEMENTS_PER_SAMPLE
    )


def _fused_pattern(x, slopes):
    # TFLite fuses only a slope of rank x.rank - 1, so a scalar (or any
    # lower-rank) slope gets leading 1s; the values are unchanged.
    missing = (x.shape.rank or 0) - 1 - (slopes.shape.rank or 0)
    if missing > 0 and slopes.shape.is_fully_defined():
        slopes = tf.reshape(slopes, [1] * missing + slopes.shape.as_list())
    negated = -slopes
    return lambda: tf.nn.relu(x) + negated * tf.nn.relu(-x)


@tf.custom_gradient
def _prelu(x, alpha):
    slopes = _in_dtype(alpha, x.dtype)
    fused = _fused_pattern(x, slopes)
    finite = tf.reduce_all(tf.math.is_finite(slopes))
    if tf.executing_eagerly():
        output = fused() if bool(finite) else _exact_forward(x, slopes)
    else:
        output = tf.cond(finite, fused, lambda: _exact_forward(x, slopes))

    def grad(upstream):
        gradients = _compiled_gradients if _is_large(x) else _gradients
        return gradients(x, alpha, upstream)

    return output, grad


@tf.custom_gradient
def _prelu_training(x, alpha):
    large = _is_large(x)
    output = (_compiled_forward if large else _exact_forward)(x, alpha)

    def grad(upstream):
        return (_compiled_gradients if large else _gradients)(x, alpha, upstream)

    return output, grad


# A variable must arrive as the tensor of its value: `tf.custom_gradient`
# would otherwise ask for the gradients of the variables it reads.
def prelu(x, alpha):
    return _prelu(tf.convert_to_tensor(x), tf.convert_to_tensor(alpha))


def prelu_training(x, alpha):
    return _prelu_training(tf.convert_to_tensor(x), tf.convert_to_tensor(alpha))
