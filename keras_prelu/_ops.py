"""The functional PReLU op: `keras_prelu.prelu(x, alpha)`."""

from typing import Any
from typing import TypeAlias

import keras
import numpy as np
from keras import ops

from keras_prelu import _kernels

Tensor: TypeAlias = Any


def check_real_dtype(dtype, name: str) -> None:
    """Raises a `TypeError` unless `dtype` is real: float, integer or bool."""
    try:
        standard = keras.backend.standardize_dtype(dtype)
    except (TypeError, ValueError):
        standard = str(dtype)
    if "float" in standard or "int" in standard or standard == "bool":
        return
    raise TypeError(
        f"PReLU needs real numbers (float, integer or bool); `{name}` has dtype "
        f"{standard}"
        + (", whose imaginary part would be dropped" if "complex" in standard else "")
        + f". Received: {name}.dtype={standard}"
    )


def _output_dtype(x_dtype, alpha_dtype) -> str:
    """`x`'s float dtype, else `alpha`'s, else floatx(), on every backend."""
    check_real_dtype(x_dtype, "x")
    check_real_dtype(alpha_dtype, "alpha")
    if keras.backend.is_float_dtype(x_dtype):
        return keras.backend.standardize_dtype(x_dtype)
    if keras.backend.is_float_dtype(alpha_dtype):
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


# "keras_prelu>PReLUOp" is part of the saved format of functional models.
@keras.saving.register_keras_serializable(package="keras_prelu", name="PReLUOp")
class PReLUOp(keras.Operation):
    """The symbolic `prelu`, named `prelu`, `prelu_1`, ... apart from the layers."""

    def __init__(self, name: str | None = None) -> None:
        if name is None:
            # keras.Operation's own default name, from the public uid counter.
            uid = keras.backend.get_uid("prelu")
            name = "prelu" if uid == 1 else f"prelu_{uid - 1}"
        super().__init__(name=name)

    def call(self, x: Tensor, alpha: Tensor) -> Tensor:
        return prelu(x, alpha)

    def compute_output_spec(self, x: keras.KerasTensor, alpha: Any) -> keras.KerasTensor:
        if hasattr(alpha, "shape") and hasattr(alpha, "dtype"):
            alpha_shape, alpha_dtype = tuple(alpha.shape), alpha.dtype
        else:
            # A number or list: floatx(), as the eager path converts it.
            array = np.asarray(alpha)
            check_real_dtype(array.dtype, "alpha")
            alpha_shape, alpha_dtype = array.shape, keras.config.floatx()
        _check_broadcastable(x.shape, alpha_shape)
        return keras.KerasTensor(x.shape, dtype=_output_dtype(x.dtype, alpha_dtype))


def prelu(x: Tensor, alpha: Tensor) -> Tensor:
    """Parametric ReLU with a given slope for negative inputs.

    Formula:
    ```
    f(x) = x          if x >= 0
    f(x) = alpha * x  if x < 0
    ```
    The gradient is 1 at `x == 0`, and identical on every backend: see
    docs/layer.md.

    Args:
        x: Input tensor, symbolic or eager. Integer and bool inputs are cast
            to `alpha`'s float dtype (or `keras.config.floatx()`).
        alpha: Slope tensor or scalar, broadcastable to `x`; a float32 slope
            works with a float16 or bfloat16 input.

    Returns:
        A tensor with the shape of `x`.

    Example:

    >>> x = keras.ops.convert_to_tensor([-2.0, 0.0, 3.0])
    >>> keras_prelu.prelu(x, 0.25)
    [-0.5, 0.0, 3.0]
    """
    if isinstance(x, keras.KerasTensor) or isinstance(alpha, keras.KerasTensor):
        return PReLUOp().symbolic_call(x, alpha)
    x = ops.convert_to_tensor(x)
    alpha = ops.convert_to_tensor(alpha)
    _check_broadcastable(tuple(x.shape), tuple(alpha.shape))
    dtype = _output_dtype(x.dtype, alpha.dtype)
    return _kernels.prelu(ops.cast(x, dtype), alpha)
