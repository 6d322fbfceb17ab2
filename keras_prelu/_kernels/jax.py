"""JAX PReLU kernel: a `custom_vjp` that keeps only x and alpha for backward.

XLA fuses each part into one pass: the forward, the input gradient, and the
slope gradient's terms with their sum (a ones-vector matmul for wide slopes,
which XLA's CPU backend sums faster than a reduction over outer axes).
"""

import math

import jax
import jax.numpy as jnp

from keras_prelu._kernels._reduce import broadcast_reduction_axes
from keras_prelu._kernels._reduce import use_matmul_reduction


def _slopes(alpha, dtype):
    return alpha if alpha.dtype == dtype else alpha.astype(dtype)


def _accumulation_dtype(x_dtype, alpha_dtype):
    # Half-precision sums over a whole batch lose the slope gradient; a
    # wider slope (float32 next to float16 inputs) sets the precision.
    return jnp.promote_types(jnp.promote_types(x_dtype, jnp.float32), alpha_dtype)


@jax.custom_vjp
def prelu(x, alpha):
    return jnp.where(x >= 0, x, _slopes(alpha, x.dtype) * x)


def _forward(x, alpha):
    return prelu(x, alpha), (x, alpha)


def _slope_gradient_terms(x, upstream):
    return jnp.where(x >= 0, 0, upstream * x)


def _slope_gradient(x, slopes_shape, upstream, accumulation_dtype):
    """The slope-gradient terms summed over the axes a slope of
    `slopes_shape` is broadcast along (kept, with size 1)."""
    terms = _slope_gradient_terms(x, upstream)
    if use_matmul_reduction(x.ndim, slopes_shape):
        columns = math.prod(slopes_shape)
        rows = terms.reshape(-1, columns)
        total = jax.lax.dot(
            jnp.ones((1, rows.shape[0]), rows.dtype),
            rows,
            precision=jax.lax.Precision.HIGHEST,
            preferred_element_type=accumulation_dtype,
        )
        return total.reshape((1,) * (x.ndim - len(slopes_shape)) + tuple(slopes_shape))
    axes = broadcast_reduction_axes(x.ndim, slopes_shape)
    return jnp.sum(terms, axis=axes, keepdims=True, dtype=accumulation_dtype)


def _backward(residuals, upstream):
    x, alpha = residuals
    accumulation_dtype = _accumulation_dtype(x.dtype, alpha.dtype)
    grad_x = jnp.where(x >= 0, upstream, upstream * _slopes(alpha, x.dtype))
    total = _slope_gradient(x, alpha.shape, upstream, accumulation_dtype)
    return grad_x, total.reshape(alpha.shape).astype(alpha.dtype)


prelu.defvjp(_forward, _backward)
prelu_training = prelu
