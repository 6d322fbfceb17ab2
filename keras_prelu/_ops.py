"""The functional PReLU op: `keras_prelu.prelu(x, alpha)`."""

from typing import Any
from typing import TypeAlias

import keras
from keras import ops

from keras_prelu import _kernels

Tensor: TypeAlias = Any


def _is_float(dtype) -> bool:
    return "float" in keras.backend.standardize_dtype(dtype)


def _output_dtype(x_dtype, alpha_dtype) -> str:
    """Floating inputs keep their dtype; integer and bool inputs become float.

    Integer and bool `x` are computed in `alpha`'s dtype when that is a
    float, else in `keras.config.floatx()`: the same on every backend (the
    built-in layer raises on TensorFlow and casts on JAX and PyTorch).
    """
    if _is_float(x_dtype):
        return keras.backend.standardize_dtype(x_dtype)
    if _is_float(alpha_dtype):
        return keras.backend.standardize_dtype(alpha_dtype)
    return keras.config.floatx()


def _check_broadcastable(x_shape, alpha_shape) -> None:
    if len(alpha_shape) > len(x_shape):
        raise ValueError(
            "`alpha` must broadcast to `x`, but it has more dimensions. "
            f"Received: x.shape={tuple(x_shape)}, alpha.shape={tuple(alpha_shape)}"
        )
    trailing = x_shape[len(x_shape) - len(alpha_shape) :]
    for x_dim, alpha_dim in zip(trailing, alpha_shape, strict=True):
        if alpha_dim not in (1, None) and x_dim not in (alpha_dim, None):
            raise ValueError(
                "`alpha` must broadcast to `x` (every alpha dimension 1 or "
                "equal to x's). "
                f"Received: x.shape={tuple(x_shape)}, alpha.shape={tuple(alpha_shape)}"
            )


class PReLU(keras.Operation):
    """The symbolic form of `prelu`, used when either input is a KerasTensor."""

    def call(self, x, alpha):
        return prelu(x, alpha)

    def compute_output_spec(self, x, alpha):
        # `alpha` may be a Python number next to a symbolic `x`.
        alpha_shape = getattr(alpha, "shape", ())
        alpha_dtype = getattr(alpha, "dtype", keras.config.floatx())
        _check_broadcastable(x.shape, alpha_shape)
        return keras.KerasTensor(x.shape, dtype=_output_dtype(x.dtype, alpha_dtype))


def prelu(x: Tensor, alpha: Tensor) -> Tensor:
    """Parametric ReLU with a learnable slope for negative inputs.

    Formula:
    ```
    f(x) = x          if x >= 0
    f(x) = alpha * x  if x < 0
    ```

    Gradients: d/dx is 1 for `x >= 0` (so 1 at `x == 0`) and `alpha`
    otherwise; d/dalpha is `x` for `x < 0` and 0 otherwise, summed over every
    axis `alpha` is broadcast along. NaN inputs give NaN outputs, with
    d/dx = alpha and d/dalpha = NaN; results are identical on TensorFlow, JAX
    and PyTorch.

    Args:
        x: Input tensor, symbolic or eager. Integer and bool inputs are cast
            to `alpha`'s float dtype (or `keras.config.floatx()`).
        alpha: Slope tensor or scalar, broadcastable to `x`. It is cast to the
            dtype of the computation, so a float32 slope works with a
            float16 or bfloat16 input.

    Returns:
        A tensor with the shape of `x`.

    Example:

    >>> x = keras.ops.convert_to_tensor([-2.0, 0.0, 3.0])
    >>> keras_prelu.prelu(x, 0.25)
    [-0.5, 0.0, 3.0]
    """
    if isinstance(x, keras.KerasTensor) or isinstance(alpha, keras.KerasTensor):
        return PReLU().symbolic_call(x, alpha)
    x = ops.convert_to_tensor(x)
    alpha = ops.convert_to_tensor(alpha)
    _check_broadcastable(tuple(x.shape), tuple(alpha.shape))
    dtype = _output_dtype(x.dtype, alpha.dtype)
    # The kernels cast alpha to `dtype` unless it is a wider float, whose
    # gradient they then return in its own precision.
    return _kernels.prelu(ops.cast(x, dtype), alpha)
