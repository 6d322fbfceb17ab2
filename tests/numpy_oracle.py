"""NumPy reference for PReLU and both of its gradients (the test oracle).

The slope is cast to the dtype of `x` for the forward pass and the input
gradient; the slope gradient is summed exactly (float64) from terms rounded
to `x`'s dtype and returned in the slope's own dtype, which may be wider.
"""

import numpy as np


def _slope(x, alpha):
    # A slope beyond a half-precision range becomes inf, as in the kernels.
    with np.errstate(over="ignore"):
        return np.asarray(alpha).astype(x.dtype)


def forward(x, alpha):
    x = np.asarray(x)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(x >= 0, x, _slope(x, alpha) * x)


def sum_to_shape(values, shape):
    """Sums a broadcast array back down to `shape` (the slope's shape)."""
    lead = values.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, dim in enumerate(shape) if dim == 1)
    with np.errstate(invalid="ignore", over="ignore"):
        return values.sum(axis=axes, keepdims=True).reshape(shape)


def gradients(x, alpha, upstream):
    """d(sum(upstream * f))/dx and /dalpha under the package's convention."""
    x = np.asarray(x)
    alpha_dtype = np.asarray(alpha).dtype
    alpha = _slope(x, alpha)
    upstream = np.asarray(upstream, x.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        nonnegative = x >= 0  # False for NaN (half precision warns)
        grad_x = np.where(nonnegative, upstream, upstream * alpha)
        per_element = np.where(nonnegative, 0, upstream * x).astype(x.dtype)
    grad_alpha = sum_to_shape(
        np.broadcast_to(per_element, np.broadcast_shapes(x.shape, alpha.shape)).astype(np.float64),
        alpha.shape,
    )
    with np.errstate(over="ignore"):
        return grad_x, grad_alpha.astype(alpha_dtype)
