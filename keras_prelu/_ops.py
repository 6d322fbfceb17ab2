"""The functional PReLU op: `keras_prelu.prelu(x, alpha)`."""

from typing import Any
from typing import TypeAlias

import keras
import numpy as np
from keras import ops

from keras_prelu import _kernels

Tensor: TypeAlias = Any


def check_real_dtype(dtype, name: str) -> None:
    """Raises a `TypeError` unless `dtype` is a float, integer or bool dtype.

    A cast to a float dtype would silently drop the imaginary part of a
    complex tensor, and strings have no numeric value.
    """
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
    """Floating inputs keep their dtype; integer and bool inputs become float.

    Integer and bool `x` are computed in `alpha`'s dtype when that is a
    float, else in `keras.config.floatx()`: the same on every backend (the
    built-in layer raises on TensorFlow and casts on JAX and PyTorch).
    Complex (or other non-real) `x` or `alpha` raise a `TypeError`.
    """
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


# The registered name "keras_prelu>PReLUOp" is part of the saved format: a
# functional model that calls `prelu` on symbolic tensors stores it for the op.
@keras.saving.register_keras_serializable(package="keras_prelu", name="PReLUOp")
class PReLUOp(keras.Operation):
    """The symbolic form of `prelu`, used when either input is a KerasTensor.

    Named `prelu`, `prelu_1`, ... by default, apart from the layers, which
    are named `p_re_lu`, `p_re_lu_1`, ...
    """

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
            # A Python number or list next to a symbolic `x`: its shape, and
            # floatx() as its dtype (as the eager path converts it), unless it
            # is not real.
            array = np.asarray(alpha)
            check_real_dtype(array.dtype, "alpha")
            alpha_shape, alpha_dtype = array.shape, keras.config.floatx()
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
            to `alpha`'s float dtype (or `keras.config.floatx()`); complex
            inputs raise a `TypeError`.
        alpha: Slope tensor or scalar, broadcastable to `x`. It is cast to the
            dtype of the computation, so a float32 slope works with a
            float16 or bfloat16 input. Complex slopes raise a `TypeError`.

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
    # The kernels cast alpha to `dtype` unless it is a wider float, whose
    # gradient they then return in its own precision.
    return _kernels.prelu(ops.cast(x, dtype), alpha)
