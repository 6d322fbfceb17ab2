"""JAX PReLU kernel: a `custom_jvp`, so every JAX transform composes with it.

Forward mode (`jvp`, `jacfwd`, `hessian`, `linearize`) uses the tangent rule
below directly; reverse mode (`grad`, `vjp`) is JAX's transposition of it, and
`vmap`, `jit` and `checkpoint` see plain `jax.numpy` code. The rule is written
so that its transposition is the fast backward pass:

- the slope term is `where(x >= 0, 0, t_alpha) * where(x >= 0, 0, x)`,
  masked before the multiplication, so the transposed form masks after it:
  `where(x >= 0, 0, upstream * where(x >= 0, 0, x))`, one fused pass over x
  and the upstream gradient into the sum (and an infinite upstream gradient
  next to x >= 0 gives 0, not `inf * 0`);
- the slope tangent is cast to at least float32 (the slope's dtype when
  wider) before it is broadcast, so the transposed sum accumulates there,
  under mixed precision too, over terms rounded to x's dtype;
- the tangent is rematerialized (`jax.checkpoint`), so reverse mode keeps
  only x and alpha for the backward pass, as a hand-written VJP would.

Wide slopes (the full layout) are broadcast as a ones-vector outer product,
whose transposition is a ones-vector matmul: XLA's CPU backend sums those
faster than a reduction over outer axes.
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
    """`slopes` broadcast to x's shape in their own dtype (so the transposed
    sum runs in it), as an outer product with ones where the transposition
    is faster as a matmul."""
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
