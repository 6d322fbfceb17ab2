"""JAX PReLU kernel: a `custom_vjp` that keeps only x and alpha for backward.

XLA fuses each part into one pass: the forward, the input gradient, and the
slope gradient's terms with their sum (a ones-vector matmul for wide slopes,
which XLA's CPU backend sums faster than a reduction over outer axes).
"""

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


def _slope_gradient(x, alpha, upstream):
    """The slope gradient: its terms summed over the axes `alpha` is
    broadcast along, in at least float32, returned in `alpha`'s dtype."""
    accumulation_dtype = _accumulation_dtype(x.dtype, alpha.dtype)
    terms = jnp.where(x >= 0, 0, upstream * x)
    if use_matmul_reduction(x.ndim, alpha.shape):
        rows = terms.reshape(-1, alpha.size)
        total = jax.lax.dot(
            jnp.ones((1, rows.shape[0]), rows.dtype),
            rows,
            precision=jax.lax.Precision.HIGHEST,
            preferred_element_type=accumulation_dtype,
        )
    else:
        axes = broadcast_reduction_axes(x.ndim, alpha.shape)
        total = jnp.sum(terms, axis=axes, dtype=accumulation_dtype)
    return total.reshape(alpha.shape).astype(alpha.dtype)


def _backward(residuals, upstream):
    x, alpha = residuals
    grad_x = jnp.where(x >= 0, upstream, upstream * _slopes(alpha, x.dtype))
    return grad_x, _slope_gradient(x, alpha, upstream)


prelu.defvjp(_forward, _backward)
prelu_training = prelu
