"""JAX PReLU kernel: a `custom_vjp` that keeps only x and alpha for backward.

On CPU the backward runs as a loop over cache-sized chunks of the rows the
slope gradient sums over (see `_reduce.chunk_plan`): XLA's CPU backend
computes a reduction and an elementwise result in separate passes over
memory, so without the loop the slope gradient would read x and the
upstream gradient a second time. On other platforms (which fuse both into
one kernel, and where a loop of small kernels would be slow) it runs whole.
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


def _gradients(x, slopes, upstream, accumulation_dtype):
    """The input gradient and the slope-gradient terms summed over the axes
    `slopes` is broadcast along (kept, with size 1)."""
    nonnegative = x >= 0
    grad_x = jnp.where(nonnegative, upstream, upstream * slopes)
    terms = jnp.where(nonnegative, 0, upstream * x)
    axes = broadcast_reduction_axes(x.ndim, slopes.shape)
    if use_matmul_reduction(x.ndim, slopes.shape):
        rows = terms.reshape(-1, slopes.size)
        total = jax.lax.dot(
            jnp.ones((1, rows.shape[0]), rows.dtype),
            rows,
            precision=jax.lax.Precision.HIGHEST,
            preferred_element_type=accumulation_dtype,
        )
        return grad_x, total.reshape((1,) * (x.ndim - slopes.ndim) + slopes.shape)
    return grad_x, jnp.sum(terms, axis=axes, keepdims=True, dtype=accumulation_dtype)


def _chunked_gradients(x, slopes, upstream, accumulation_dtype, plan):
    prefix, rows = plan
    row_shape = x.shape[prefix:]
    chunks = math.prod(x.shape[:prefix]) // rows
    x_chunks = x.reshape((chunks, rows) + row_shape)
    upstream_chunks = upstream.reshape(x_chunks.shape)
    # The slope, aligned with one chunk (rows, *row_shape); the axes it
    # lacks there were all summed over, so they have size 1.
    chunk_slopes = slopes.reshape(slopes.shape[max(0, slopes.ndim - len(row_shape)) :])

    def step(i, carry):
        total, grad_x = carry
        x_chunk = jax.lax.dynamic_index_in_dim(x_chunks, i, keepdims=False)
        upstream_chunk = jax.lax.dynamic_index_in_dim(upstream_chunks, i, keepdims=False)
        grad_chunk, partial = _gradients(x_chunk, chunk_slopes, upstream_chunk, accumulation_dtype)
        grad_x = jax.lax.dynamic_update_index_in_dim(grad_x, grad_chunk, i, 0)
        return total + partial, grad_x

    total_shape = (1,) * (1 + len(row_shape) - chunk_slopes.ndim) + chunk_slopes.shape
    total, grad_x = jax.lax.fori_loop(
        0,
        chunks,
        step,
        (jnp.zeros(total_shape, accumulation_dtype), jnp.empty_like(x_chunks)),
    )
    return grad_x.reshape(x.shape), total


def _backward(residuals, upstream):
    x, alpha = residuals
    slopes = _slopes(alpha, x.dtype)
    accumulation_dtype = _accumulation_dtype(x.dtype, alpha.dtype)
    plan = None
    if jax.default_backend() == "cpu":
        plan = chunk_plan(x.shape, alpha.shape, x.dtype.itemsize)
    if plan is None:
        grad_x, total = _gradients(x, slopes, upstream, accumulation_dtype)
    else:
        grad_x, total = _chunked_gradients(x, slopes, upstream, accumulation_dtype, plan)
    return grad_x, total.reshape(alpha.shape).astype(alpha.dtype)


prelu.defvjp(_forward, _backward)
prelu_training = prelu
