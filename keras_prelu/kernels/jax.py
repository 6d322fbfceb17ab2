"""JAX PReLU kernel: a `custom_vjp` that keeps only x and alpha for backward."""

import jax
import jax.numpy as jnp

from keras_prelu.kernels._reduce import broadcast_reduction_axes


@jax.custom_vjp
def prelu(x, alpha):
    return jnp.where(x >= 0, x, alpha * x)


def _forward(x, alpha):
    return prelu(x, alpha), (x, alpha)


def _backward(residuals, upstream):
    x, alpha = residuals
    nonnegative = x >= 0
    grad_x = jnp.where(nonnegative, upstream, upstream * alpha)
    per_element = jnp.where(nonnegative, 0, upstream * x)
    grad_alpha = jnp.sum(
        per_element,
        axis=broadcast_reduction_axes(x.ndim, alpha.shape),
        keepdims=True,
        dtype=jnp.promote_types(per_element.dtype, jnp.float32),
    )
    grad_alpha = grad_alpha.reshape(alpha.shape).astype(alpha.dtype)
    return grad_x, grad_alpha


prelu.defvjp(_forward, _backward)
