"""Shape arithmetic shared by the custom-gradient kernels."""

import math

# XLA's CPU reductions over the outer axes of a wide array are several times
# slower than a ones-vector matmul over the same data; narrow ones (a
# channel-wise slope, 64 columns) are not. Figures in benchmarks/README.md.
MATMUL_REDUCTION_MIN_COLUMNS = 1024

# On CPU the XLA backward runs in chunks of about this many bytes of x: the
# input gradient and the slope-gradient terms of a chunk are then computed
# while its x and upstream gradient are still in cache, instead of in two
# passes over memory (XLA's CPU backend does not fuse a reduction with an
# elementwise output). Small enough for a core's L2 cache with room to spare.
CHUNK_BYTES = 64 * 1024


def broadcast_reduction_axes(x_ndim, alpha_shape):
    """Axes of `x` to sum over so a broadcast gradient matches `alpha`.

    Returns the axes of `x` on which `alpha` is broadcast: the leading axes
    `alpha` lacks plus every axis where `alpha` has size 1. Summing with
    `keepdims=True` over them and reshaping to `alpha_shape` gives the slope
    gradient.
    """
    alpha_shape = tuple(alpha_shape)
    offset = x_ndim - len(alpha_shape)
    axes = list(range(offset))
    axes += [offset + i for i, dim in enumerate(alpha_shape) if dim == 1]
    return tuple(axes)


def use_matmul_reduction(x_ndim, alpha_shape):
    """Whether the slope gradient is a sum over a prefix of wide rows.

    True when every reduced axis comes before every kept axis (so the
    gradient is `ones @ g.reshape(rows, columns)`) and there are enough
    columns for the matmul to beat a plain reduction.
    """
    axes = broadcast_reduction_axes(x_ndim, alpha_shape)
    if not axes or axes != tuple(range(len(axes))):
        return False
    columns = 1
    for dim in tuple(alpha_shape)[len(axes) - (x_ndim - len(alpha_shape)) :]:
        columns *= dim
    return columns >= MATMUL_REDUCTION_MIN_COLUMNS


def chunk_plan(x_shape, alpha_shape, itemsize):
    """How to run the backward in chunks, or None to run it whole.

    The leading axes of `x` that the slope gradient sums over (the batch
    axis, and for a channels-last channel-wise slope the spatial ones too)
    are flattened into rows; the chunks are `rows` of those rows, with
    `rows` a divisor of their count so that every chunk has the same shape.
    Returns `(prefix, rows)`, `prefix` being the number of leading axes
    flattened, or None when that cannot help: the slope spans the batch
    axis, a shape is unknown (only the batch size may be), the whole tensor
    is one chunk, or the only even split is into chunks far below the size.
    """
    chunk_bytes = CHUNK_BYTES
    x_shape = tuple(x_shape)
    axes = set(broadcast_reduction_axes(len(x_shape), alpha_shape))
    prefix = 0
    while prefix < len(x_shape) and prefix in axes:
        prefix += 1
    row_shape = x_shape[prefix:]
    if prefix == 0 or None in row_shape or None in x_shape[1:prefix]:
        return None
    row_bytes = math.prod(row_shape) * itemsize
    known_rows = math.prod(x_shape[1:prefix]) * (x_shape[0] or 1)
    wanted = max(1, chunk_bytes // max(1, row_bytes))
    rows = max(d for d in range(1, min(wanted, known_rows) + 1) if known_rows % d == 0)
    if x_shape[0] is not None and rows == known_rows:
        return None
    if rows < wanted and rows * row_bytes * 8 < chunk_bytes:
        return None  # no divisor near the target: many tiny chunks cost more
    return prefix, rows
