"""JAX PReLU kernel: a `custom_vjp` that keeps only x and alpha for backward.

The input gradient is one fused elementwise pass. On CPU the slope gradient
is a second, independent computation, a loop over cache-sized chunks of the
rows it sums over (see `_reduce.chunk_plan`), because XLA's CPU backend
neither fuses a reduction with an elementwise result nor reduces over the
outer axes of an array quickly. Elsewhere it is one reduction.
"""

import math

import jax
import jax.numpy as jnp

from keras_prelu._kernels._reduce import broadcast_reduction_axes
from keras_prelu._kernels._reduce import chunk_plan
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


def _chunked_slope_gradient(x, slopes_shape, upstream, accumulation_dtype, plan):
    """`_slope_gradient` as a loop over chunks of `rows` rows (see
    `_reduce.chunk_plan`): each chunk's terms are added elementwise to those
    of the chunks before (a loop XLA vectorises well, over data still in
    cache), and the sum is reduced once at the end."""
    prefix, rows = plan
    row_shape = x.shape[prefix:]
    chunks = math.prod(x.shape[:prefix]) // rows
    x_chunks = x.reshape((chunks, rows) + row_shape)
    upstream_chunks = upstream.reshape(x_chunks.shape)

    def step(i, terms_sum):
        x_chunk = jax.lax.dynamic_index_in_dim(x_chunks, i, keepdims=False)
        upstream_chunk = jax.lax.dynamic_index_in_dim(upstream_chunks, i, keepdims=False)
        terms = _slope_gradient_terms(x_chunk, upstream_chunk)
        return terms_sum + terms.astype(accumulation_dtype)

    terms_sum = jax.lax.fori_loop(
        0, chunks, step, jnp.zeros(x_chunks.shape[1:], accumulation_dtype)
    )
    # The slope, aligned with one chunk (rows, *row_shape); the axes it
    # lacks there were all summed over.
    chunk_slopes_shape = tuple(slopes_shape)[max(0, len(slopes_shape) - len(row_shape)) :]
    axes = broadcast_reduction_axes(terms_sum.ndim, chunk_slopes_shape)
    return jnp.sum(terms_sum, axis=axes, keepdims=True)


def _backward(residuals, upstream):
    x, alpha = residuals
    accumulation_dtype = _accumulation_dtype(x.dtype, alpha.dtype)
    # The input gradient is one fused pass; the slope gradient reads x and
    # the upstream gradient again, in cache-sized chunks on CPU, where XLA
    # does not fuse a reduction with an elementwise result. Elsewhere (which
    # fuses both, and where a loop of small kernels would be slow) it runs
    # whole.
    grad_x = jnp.where(x >= 0, upstream, upstream * _slopes(alpha, x.dtype))
    plan = None
    if jax.default_backend() == "cpu":
        plan = chunk_plan(x.shape, alpha.shape, x.dtype.itemsize)
    if plan is None:
        total = _slope_gradient(x, alpha.shape, upstream, accumulation_dtype)
    else:
        total = _chunked_slope_gradient(x, alpha.shape, upstream, accumulation_dtype, plan)
    return grad_x, total.reshape(alpha.shape).astype(alpha.dtype)


prelu.defvjp(_forward, _backward)
prelu_training = prelu
