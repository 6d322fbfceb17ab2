"""JAX PReLU kernel: a `jax.custom_jvp`, whose tangent rule is written so
that its transposition is the fast backward pass (docs/kernels.md has how).
"""

import jax
import jax.numpy as jnp

from keras_prelu._kernels._reduce import accumulation_dtype
from keras_prelu._kernels._reduce import use_matmul_reduction


def _slopes(alpha, dtype):
    return alpha if alpha.dtype == dtype else alpha.astype(dtype)


@jax.custom_jvp
def prelu(x, alpha):
    return jnp.where(x >= 0, x, _slopes(alpha, x.dtype) * x)


def _broadcast(slopes, x):
    """`slopes` broadcast to x's shape in their own dtype (the transposed
    sum's), as an outer product with ones where a matmul sums faster."""
    if not use_matmul_reduction(x.ndim, slopes.shape):
        return jnp.broadcast_to(slopes, x.shape)
    row = slopes.reshape(1, -1)
    ones = jnp.ones((x.size // row.shape[1], 1), slopes.dtype)
    return jax.lax.dot(ones, row, precision=jax.lax.Precision.HIGHEST).reshape(x.shape)


def _tangent(x, alpha, x_tangent, alpha_tangent):
    nonnegative = x >= 0
    from_x = x_tangent * jnp.where(nonnegative, 1, _slopes(alpha, x.dtype))
    slopes_tangent = alpha_tangent.astype(accumulation_dtype(x.dtype, alpha.dtype))
    broadcast = _broadcast(slopes_tangent, x).astype(x.dtype)
    from_alpha = jnp.where(nonnegative, 0, broadcast) * jnp.where(nonnegative, 0, x)
    return from_x + from_alpha


_rematerialized_tangent = jax.checkpoint(_tangent, prevent_cse=False)


@prelu.defjvp
def _jvp(primals, tangents):
    x, alpha = primals
    return prelu(x, alpha), _rematerialized_tangent(x, alpha, *tangents)


prelu_training = prelu
