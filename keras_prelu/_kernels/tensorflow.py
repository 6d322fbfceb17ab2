"""TensorFlow PReLU kernels, both with our gradient.

`prelu` computes `relu(x) + (-alpha) * relu(-x)`, the pattern converters fuse
into native PReLU ops (a -0.0 output may become +0.0), but the `where` form
under a forward accumulator; `prelu_training` the `where` form, XLA-compiled
on large inputs. docs/kernels.md has why; benchmarks/README.md the figures.
"""

import itertools

import tensorflow as tf

try:  # private; a test fails the day it goes
    from tensorflow.python.eager.forwardprop_util import pack_tangents as _pack_tangents
except ImportError:  # pragma: no cover - depends on the TensorFlow build
    _pack_tangents = None
try:  # private, as above
    from tensorflow.python.eager.record import could_possibly_record as _recording
except ImportError:  # pragma: no cover - depends on the TensorFlow build
    _recording = lambda: True  # noqa: E731

from keras_prelu._kernels._reduce import accumulation_dtype
from keras_prelu._kernels._reduce import broadcast_reduction_axes
from keras_prelu._kernels._reduce import use_matmul_reduction

# Below this many elements per sample, XLA's launch costs more than fusing
# saves (small CNNs trained slower): benchmarks/README.md.
_XLA_MIN_ELEMENTS_PER_SAMPLE = 16384


def _in_dtype(alpha, dtype):
    return alpha if alpha.dtype == dtype else tf.cast(alpha, dtype)


def _input_gradient(x, alpha, upstream):
    return tf.where(x >= 0, upstream, upstream * _in_dtype(alpha, x.dtype))


def _slope_gradient(x, alpha, upstream):
    return _summed_to(tf.where(x >= 0, tf.zeros_like(upstream), upstream * x), alpha)


def _summed_to(terms, alpha):
    """`terms` summed to alpha's shape and dtype, in at least float32."""
    summed_in = tf.as_dtype(accumulation_dtype(terms.dtype, alpha.dtype))
    if use_matmul_reduction(terms.shape.rank, alpha.shape):
        rows = tf.reshape(terms, (-1, alpha.shape.num_elements()))
        ones = tf.ones((1, tf.shape(rows)[0]), summed_in)
        total = tf.matmul(ones, _in_dtype(rows, summed_in))
    else:
        total = tf.reduce_sum(
            _in_dtype(terms, summed_in),
            axis=broadcast_reduction_axes(terms.shape.rank, alpha.shape),
        )
    return _in_dtype(tf.reshape(total, tf.shape(alpha)), alpha.dtype)


def _gradients(x, alpha, upstream):
    return _input_gradient(x, alpha, upstream), _slope_gradient(x, alpha, upstream)


def _exact_forward(x, alpha):
    return tf.where(x >= 0, x, _in_dtype(alpha, x.dtype) * x)


# Two gradient computations, which TensorFlow can run at the same time, and
# of which it prunes the slope's when the slope is frozen.
_compiled_forward, _compiled_input_gradient, _compiled_slope_gradient = (
    tf.function(function, jit_compile=True, autograph=False)
    for function in (_exact_forward, _input_gradient, _slope_gradient)
)


def _compiled_gradients(x, alpha, upstream):
    return (
        _compiled_input_gradient(x, alpha, upstream),
        _compiled_slope_gradient(x, alpha, upstream),
    )


def _is_large(x) -> bool:
    per_sample = x.shape[1:]
    return (
        per_sample.is_fully_defined() and per_sample.num_elements() >= _XLA_MIN_ELEMENTS_PER_SAMPLE
    )


def _fused_pattern(x, slopes):
    # TFLite fuses only a slope of rank x.rank - 1: give a lower rank leading 1s.
    missing = (x.shape.rank or 0) - 1 - (slopes.shape.rank or 0)
    if missing > 0 and slopes.shape.is_fully_defined():
        slopes = tf.reshape(slopes, [1] * missing + slopes.shape.as_list())
    return tf.nn.relu(x) + (-slopes) * tf.nn.relu(-x)


@tf.custom_gradient
def _prelu(x, alpha):
    def grad(upstream):
        gradients = _compiled_gradients if _is_large(x) else _gradients
        return gradients(x, alpha, upstream)

    return _fused_pattern(x, _in_dtype(alpha, x.dtype)), grad


@tf.custom_gradient
def _prelu_training(x, alpha):
    large = _is_large(x)
    output = (_compiled_forward if large else _exact_forward)(x, alpha)

    def grad(upstream):
        return (_compiled_gradients if large else _gradients)(x, alpha, upstream)

    return output, grad


def _watched_by_accumulator(*tensors) -> bool:
    if _pack_tangents is None:
        return True
    return bool(_pack_tangents(list(tensors)).tangents)


# A variable must arrive as the tensor of its value: `tf.custom_gradient`
# would otherwise ask for the gradients of the variables it reads.
def prelu(x, alpha):
    x, alpha = tf.convert_to_tensor(x), tf.convert_to_tensor(alpha)
    if _watched_by_accumulator(x, alpha):
        return _prelu_training(x, alpha)
    if tf.executing_eagerly() or _recording():
        return _prelu(x, alpha)
    return _untaped_prelu(x, alpha)


_gradient_names = itertools.count()


def _untaped_prelu(x, alpha):
    """`_prelu` in a graph no tape records, its gradient attached as
    `tf.custom_gradient` does (an IdentityN's overridden gradient), minus the
    unused Identity op OpenVINO's converter took for a second output. A tape
    recording in a graph needs the decorator, which registers with it."""
    name = f"KerasPReLUGradient_{next(_gradient_names)}"

    @tf.RegisterGradient(name)
    def _gradient(unused_op, upstream, *unused_upstreams):
        gradients = _compiled_gradients if _is_large(x) else _gradients
        return (None, *gradients(x, alpha, upstream))

    output = _fused_pattern(x, _in_dtype(alpha, x.dtype))
    with tf.compat.v1.get_default_graph().gradient_override_map({"IdentityN": name}):
        return tf.identity_n([output, x, alpha])[0]


def prelu_training(x, alpha):
    return _prelu_training(tf.convert_to_tensor(x), tf.convert_to_tensor(alpha))
