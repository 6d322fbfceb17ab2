"""The slope gradient's dtype and the shape arithmetic of its sum."""

import keras

# XLA's CPU reductions over the outer axes of a wide array are several times
# slower than a ones-vector matmul; narrow ones are not (benchmarks/README.md).
MATMUL_REDUCTION_MIN_COLUMNS = 1024


def broadcast_reduction_axes(x_ndim, alpha_shape):
    """The axes of `x` that `alpha` is broadcast along: the leading axes it
    lacks and those where it has size 1. The slope gradient is the sum over
    them, reshaped to `alpha_shape`."""
    alpha_shape = tuple(alpha_shape)
    offset = x_ndim - len(alpha_shape)
    axes = list(range(offset))
    axes += [offset + i for i, dim in enumerate(alpha_shape) if dim == 1]
    return tuple(axes)


def use_matmul_reduction(x_ndim, alpha_shape):
    """Whether the slope gradient is `ones @ g.reshape(rows, columns)`: every
    reduced axis precedes every kept one, with enough columns to pay."""
    axes = broadcast_reduction_axes(x_ndim, alpha_shape)
    if not axes or axes != tuple(range(len(axes))):
        return False
    columns = 1
    for dim in tuple(alpha_shape)[len(axes) - (x_ndim - len(alpha_shape)) :]:
        columns *= dim
    return columns >= MATMUL_REDUCTION_MIN_COLUMNS


def accumulation_dtype(x_dtype, alpha_dtype) -> str:
    """The dtype the slope gradient is summed in: at least float32 (a
    half-precision sum over a batch loses it), or the slope's if wider."""
    names = (keras.backend.standardize_dtype(x_dtype), keras.backend.standardize_dtype(alpha_dtype))
    return max(("float32", *names), key=lambda name: _FLOAT_BYTES.get(name, 0))


_FLOAT_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "float64": 8}
