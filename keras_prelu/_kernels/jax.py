"""JAX PReLU kernel: a `custom_vjp` that keeps only x and alpha for backward."""

import jax
import jax.numpy as jnp

from keras_prelu._kernels._reduce import broadcast_reduction_axes
from keras_prelu._kernels._reduce import use_matmul_reduction


def _slopes(alpha, dtype):
    return alpha if alpha.dtype == dtype else alpha.astype(dtype)


@jax.custom_vjp
def prelu(x, alpha):
    return jnp.where(x >= 0, x, _slopes(alpha, x.dtype) * x)


def _forward(x, alpha):
    return prelu(x, alpha), (x, alpha)


def _sum_to_alpha(per_element, alpha):
    accumulation_dtype = jnp.promote_types(
        jnp.promote_types(per_element.dtype, jnp.float32), alpha.dtype
    )
    if use_matmul_reduction(per_element.ndim, alpha.shape):
        rows = per_element.reshape(-1, alpha.size)
        total = jax.lax.dot(
            jnp.ones((1, rows.shape[0]), rows.dtype),
            rows,
            precision=jax.lax.Precision.HIGHEST,
            preferred_element_type=accumulation_dtype,
        )
    else:
        total = jnp.sum(
            per_element,
            axis=broadcast_reduction_axes(per_element.ndim, alpha.shape),
            dtype=accumulation_dtype,
        )
    return total.reshape(alpha.shape).astype(alpha.dtype)


def _backward(residuals, upstream):
    x, alpha = residuals
    nonnegative = x >= 0
    grad_x = jnp.where(nonnegative, upstream, upstream * _slopes(alpha, x.dtype))
    grad_alpha = _sum_to_alpha(jnp.where(nonnegative, 0, upstream * x), alpha)
    return grad_x, grad_alpha


prelu.defvjp(_forward, _backward)
prelu_training = prelu
