"""NumPy reference for PReLU and both of its gradients (the test oracle)."""

import numpy as np


def forward(x, alpha):
    x = np.asarray(x)
    return np.where(x >= 0, x, np.asarray(alpha, x.dtype) * x)


def sum_to_shape(values, shape):
    """Sums a broadcast array back down to `shape` (the slope's shape)."""
    lead = values.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, dim in enumerate(shape) if dim == 1)
    return values.sum(axis=axes, keepdims=True).reshape(shape)


def gradients(x, alpha, upstream):
    """d(sum(upstream * f))/dx and /dalpha under the package's convention."""
    x = np.asarray(x)
    alpha = np.asarray(alpha, x.dtype)
    nonnegative = x >= 0
    grad_x = np.where(nonnegative, upstream, upstream * alpha)
    with np.errstate(invalid="ignore"):
        per_element = np.where(nonnegative, 0, upstream * x)
    grad_alpha = sum_to_shape(
        np.broadcast_to(per_element, np.broadcast_shapes(x.shape, alpha.shape)).astype(np.float64),
        alpha.shape,
    ).astype(x.dtype)
    return grad_x, grad_alpha
