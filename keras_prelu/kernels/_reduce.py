"""Shape arithmetic shared by the custom-gradient kernels."""


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
