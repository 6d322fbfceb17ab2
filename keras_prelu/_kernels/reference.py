"""The reference PReLU in pure `keras.ops`: the fallback and the test oracle.

`where(x >= 0, x, alpha * x)`, alpha cast to x's dtype first: the gradient at
x == 0 is 1 and NaN takes the negative branch (docs/layer.md has the table).
Its slope gradient is summed by autodiff, in x's dtype.
"""

from keras import ops


def prelu(x, alpha):
    alpha = ops.cast(alpha, x.dtype)
    nonnegative = ops.greater_equal(x, 0)
    # Autodiff multiplies the unused branch's zero gradient by x and alpha
    # (0 * inf = NaN for x = +inf or a non-finite alpha): feed that branch 0
    # where x >= 0 (NaN kept), which changes no output.
    negative_part = ops.where(nonnegative, ops.zeros_like(x), x)
    return ops.where(nonnegative, x, alpha * negative_part)


prelu_training = prelu
