"""The reference PReLU in pure `keras.ops`: the fallback and the test oracle.

Convention (the one every kernel must reproduce, bit for bit in the forward
pass):

    f(x)        = x            if x >= 0 else alpha * x
    df/dx       = 1            if x >= 0 else alpha
    df/dalpha   = 0            if x >= 0 else x

so the gradient at x == 0 is 1 (the identity branch) and NaN, which compares
false, takes the negative branch: f(NaN) = NaN, df/dx = alpha and
df/dalpha = NaN. `+inf` maps to `+inf` with df/dalpha = 0, `-inf` to
`alpha * -inf` with df/dalpha = -inf.
"""

from keras import ops


def prelu(x, alpha):
    # Plain autodiff of `where(x >= 0, x, alpha * x)` multiplies the zeroed
    # branch gradient by x, and 0 * inf = NaN would leak into d/dalpha for
    # x = +inf. Feeding the negative branch with x clamped to 0 where x > 0
    # (NaN kept) avoids it without changing any forward value.
    negative_part = ops.where(x > 0, ops.zeros_like(x), x)
    return ops.where(x >= 0, x, alpha * negative_part)
