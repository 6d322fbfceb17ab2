"""What the custom-gradient kernels share: the slope gradient's dtype and
the shape arithmetic of its sum."""

import keras

# XLA's CPU reductions over the outer axes of a wide array are several times
# slower than a ones-vector matmul over the same data; narrow ones (a
# channel-wise slope, 64 columns) are not. Figures in benchmarks/README.md.
MATMUL_REDUCTION_MIN_COLUMNS = 1024


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


def accumulation_dtype(x_dtype, alpha_dtype) -> str:
    """The dtype the slope gradient is summed in: at least float32 (a
    half-precision sum over a whole batch loses it), and the slope's own
    when that is wider (a float32 slope next to float16 inputs)."""
    names = (keras.backend.standardize_dtype(x_dtype), keras.backend.standardize_dtype(alpha_dtype))
    return max(("float32", *names), key=lambda name: _FLOAT_BYTES.get(name, 0))


_FLOAT_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "float64": 8}
