"""The reference PReLU in pure `keras.ops`: the fallback and the test oracle.

Convention (the one every kernel must reproduce, bit for bit in the forward
pass), with `alpha` first cast to the dtype of `x`:

    f(x)        = x            if x >= 0 else alpha * x
    df/dx       = 1            if x >= 0 else alpha
    df/dalpha   = 0            if x >= 0 else x

so the gradient at x == 0 is 1 (the identity branch), and both zeros keep
their sign: f(-0.0) = -0.0 (except in TensorFlow's exportable kernel and
PyTorch's fused CPU forward, whose zero outputs can have the other sign; see
their modules). NaN,
which compares false, takes the negative branch: f(NaN) = NaN, df/dx =
alpha and df/dalpha = NaN. `+inf` maps to `+inf` with df/dalpha = 0, `-inf`
to `alpha * -inf` with df/dalpha = -inf.

The convention is for finite slopes. A NaN or infinite slope (training
diverged; under mixed precision, also any slope beyond float16's 65504)
gives unspecified results, NaN allowed, in every kernel; this one happens
to keep f(x) = x for x >= 0.

The slope gradient is summed over the axes `alpha` is broadcast along.
Here it is left to the backend's automatic differentiation, which sums a
half-precision gradient in half precision; the fast kernels accumulate it in
at least float32 and return it in the slope's own dtype.
"""

from keras import ops


def prelu(x, alpha):
    alpha = ops.cast(alpha, x.dtype)
    nonnegative = ops.greater_equal(x, 0)
    # Plain autodiff of `where(x >= 0, x, alpha * x)` multiplies the zeroed
    # gradient of the unused branch by x and by alpha: 0 * inf = NaN would
    # leak into d/dalpha for x = +inf, and into d/dx for x >= 0 when alpha is
    # not finite. Feeding the negative branch with x replaced by 0 where
    # x >= 0 (NaN kept) cuts both paths without changing any output.
    negative_part = ops.where(nonnegative, ops.zeros_like(x), x)
    return ops.where(nonnegative, x, alpha * negative_part)


# One kernel serves both entry points of the contract.
prelu_training = prelu
