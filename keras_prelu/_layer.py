"""The `keras_prelu.PReLU` layer."""

import numbers
from typing import Any

import keras
import numpy as np
from keras import constraints
from keras import initializers
from keras import regularizers

from keras_prelu import _kernels
from keras_prelu._ops import Tensor
from keras_prelu._ops import check_real_dtype
from keras_prelu._ops import prelu

LAYOUTS = ("full", "channelwise", "scalar")
DATA_FORMATS = ("channels_last", "channels_first")
DEFAULT_SLOPE = 0.25


def _is_axis_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_positive_int(value, name: str, meaning: str = "") -> int:
    """`value` as an int if a positive integer (not a bool), else a `ValueError`."""
    if not _is_axis_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive int{meaning}. Received: {name}={value!r}")
    return int(value)


def _validate_shared_axes(shared_axes) -> list[int] | None:
    """Checks `shared_axes`' types and refuses axis 0; `build` normalises them."""
    if shared_axes is None:
        return None
    axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
    for axis in axes:
        if not _is_axis_int(axis):
            raise ValueError(
                "`shared_axes` must be an int or a list/tuple of ints. "
                f"Received: shared_axes={shared_axes!r}"
            )
        if axis == 0:
            raise ValueError(
                "`shared_axes` cannot include the batch axis 0: the slope is "
                "always shared across the batch. Use axes 1..rank-1 or "
                f"negative axes. Received: shared_axes={shared_axes!r}"
            )
    return [int(axis) for axis in axes]


def check_data_format(data_format) -> str:
    """`data_format`, or `keras.config.image_data_format()` for None."""
    if data_format is None:
        data_format = keras.config.image_data_format()
    if data_format not in DATA_FORMATS:
        raise ValueError(
            f"`data_format` must be one of {DATA_FORMATS}. Received: data_format={data_format!r}"
        )
    return data_format


def channel_axis(data_format: str, rank: int) -> int:
    """The channel axis of a rank-`rank` input: 1 for channels_first, else the last."""
    return 1 if data_format == "channels_first" else rank - 1


def _check_float_policy(policy) -> None:
    """Refuses a policy whose variables or computation are not floats."""
    for dtype in (policy.variable_dtype, policy.compute_dtype):
        if dtype is None or not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                "PReLU needs a floating-point dtype: its slopes are fractions "
                "that an integer or bool variable would truncate. Use float16, "
                "bfloat16, float32, float64 or a mixed policy such as "
                f"'mixed_float16'. Received: dtype={policy.name!r} "
                f"(variable dtype {policy.variable_dtype}, compute dtype "
                f"{policy.compute_dtype})"
            )


def _numpy_dtype(name: str) -> np.dtype:
    try:
        return np.dtype(name)
    except TypeError:  # bfloat16 and float8 types, which Keras takes from ml_dtypes
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))


def _check_constant_slope(value, variable_dtype: str, received: str) -> None:
    """Refuses a constant slope that is not real and finite in `variable_dtype`."""
    problem = None
    try:
        if isinstance(value, numbers.Real):
            float(value)  # a Python int beyond float64 raises OverflowError
        array = np.asarray(value)
    except OverflowError:
        array, problem = None, "must be finite; it overflows even float64"
    except (TypeError, ValueError):
        array = None
    if problem is None and (array is None or array.dtype.kind not in "iuf" or array.size == 0):
        problem = "must be a finite real number (or array of them)"
    elif problem is None:
        with np.errstate(over="ignore", invalid="ignore"):
            wide = array.astype(np.float64)
            # Keras's Constant goes through float32 on TensorFlow, so its range applies.
            narrow = [
                dtype
                for dtype in dict.fromkeys((variable_dtype, "float32"))
                if not np.all(np.isfinite(wide.astype(_numpy_dtype(dtype))))
            ]
        if not np.all(np.isfinite(wide)):
            problem = "must be finite (not NaN or infinite)"
        elif narrow:
            problem = (
                f"overflows {narrow[0]}, the slopes' dtype"
                if narrow[0] == variable_dtype
                else "overflows float32, which a Keras Constant goes through on TensorFlow"
            ) + ": it would be stored as infinity"
    if problem is not None:
        raise ValueError(
            f"The slope `alpha_initializer` {problem}. Received: alpha_initializer={received}"
        )


def _resolve_initializer(alpha_initializer, variable_dtype: str):
    """The initializer, with constant slopes checked."""
    if alpha_initializer is None:
        raise ValueError(
            "`alpha_initializer` cannot be None: the slopes need a starting "
            "value. Pass a number (the default is keras_prelu.DEFAULT_SLOPE = "
            f"{DEFAULT_SLOPE}), 'zeros' for keras.layers.PReLU's default, or an "
            "initializer. Received: alpha_initializer=None"
        )
    if isinstance(alpha_initializer, numbers.Number) or isinstance(alpha_initializer, np.generic):
        if isinstance(alpha_initializer, (bool, np.bool_)):
            raise ValueError(
                "`alpha_initializer` must be a number, an initializer name or an "
                f"initializer, not a bool. Received: alpha_initializer={alpha_initializer!r}"
            )
        _check_constant_slope(alpha_initializer, variable_dtype, repr(alpha_initializer))
        return initializers.Constant(float(alpha_initializer))
    try:
        initializer = initializers.get(alpha_initializer)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Invalid `alpha_initializer`: {error} Received: "
            f"alpha_initializer={alpha_initializer!r}"
        ) from error
    if isinstance(initializer, initializers.Constant):
        _check_constant_slope(
            initializer.value, variable_dtype, f"Constant(value={initializer.value!r})"
        )
    return initializer


def _check_layout(layout, shared_axes, data_format) -> tuple[list[int] | None, str | None]:
    """The normalised `shared_axes` and `data_format`, checked with `layout`."""
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {LAYOUTS}. Received: layout={layout!r}")
    axes = _validate_shared_axes(shared_axes)
    if axes is not None and layout != "full":
        raise ValueError(
            "`shared_axes` can only be combined with layout='full'; "
            f"layout={layout!r} already fixes which axes share a slope. "
            f"Received: shared_axes={shared_axes!r}, layout={layout!r}"
        )
    if layout == "channelwise":
        return axes, check_data_format(data_format)
    if data_format is not None:
        raise ValueError(
            "`data_format` only applies to layout='channelwise'. "
            f"Received: data_format={data_format!r}, layout={layout!r}"
        )
    return axes, None


def _normalized_shared_axes(shared_axes, rank: int) -> set[int]:
    normalized = set()
    for axis in shared_axes or ():
        positive = axis + rank if axis < 0 else axis
        if positive == 0:
            raise ValueError(
                f"`shared_axes` cannot include the batch axis: axis {axis} "
                f"is axis 0 of a rank-{rank} input. Received: shared_axes={shared_axes}"
            )
        if not 0 < positive < rank:
            raise ValueError(
                f"`shared_axes` must be in [1, {rank - 1}] or [{-(rank - 1)}, -1] for a "
                f"rank-{rank} input; axis {axis} is out of range. "
                f"Received: shared_axes={shared_axes}"
            )
        normalized.add(positive)
    return normalized


def alpha_shape(layer, input_shape) -> tuple[tuple, set[int]]:
    """The slope shape for `input_shape` and the axes with their own slopes;
    checks everything `build` needs without allocating."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if shape is None or not all(dim is None or (_is_axis_int(dim) and dim >= 0) for dim in shape):
        raise ValueError(
            "PReLU input shapes are tuples of non-negative ints or None. "
            f"Received: input_shape={input_shape!r}"
        )
    input_shape = tuple(None if dim is None else int(dim) for dim in shape)
    rank = len(input_shape)
    if rank < 1:
        raise ValueError(
            f"PReLU needs inputs with a batch axis. Received: input_shape={input_shape}"
        )
    if layer.layout == "scalar":
        slope_axes = set()
    elif layer.layout == "channelwise":
        if rank < 2:
            raise ValueError(
                "layout='channelwise' needs inputs of rank >= 2, "
                f"(batch, ..., channels). Received: input_shape={input_shape}"
            )
        slope_axes = {channel_axis(layer.data_format, rank)}
    else:
        slope_axes = set(range(1, rank)) - _normalized_shared_axes(layer.shared_axes, rank)
    unknown = sorted(axis for axis in slope_axes if input_shape[axis] is None)
    if unknown and layer.layout == "channelwise":
        raise ValueError(
            f"The channel axis {unknown[0]} ({layer.data_format}) must have a known "
            f"size for layout='channelwise'. Received: input_shape={input_shape}"
        )
    if unknown:
        suggestion = sorted(set(unknown) | _normalized_shared_axes(layer.shared_axes, rank))
        raise ValueError(
            f"Axes {unknown} of the input have unknown size (None), so they need a "
            f"shared slope: pass shared_axes={suggestion}, or layout='channelwise' for "
            f"one slope per channel. Received: input_shape={input_shape}, "
            f"shared_axes={layer.shared_axes}"
        )
    if layer.layout == "scalar":
        return (), slope_axes
    shape = tuple(input_shape[axis] if axis in slope_axes else 1 for axis in range(1, rank))
    return shape, slope_axes


@keras.saving.register_keras_serializable(package="keras_prelu")
class PReLU(keras.layers.Layer):
    """Parametric Rectified Linear Unit, with a learned slope for negative inputs.

    Formula:
    ```
    f(x) = x          if x >= 0
    f(x) = alpha * x  if x < 0
    ```
    The gradient is 1 at `x == 0`, and identical on every backend. Not quite a
    drop-in for `keras.layers.PReLU`: see docs/layer.md.

    Args:
        alpha_initializer: Initializer for the slopes, or a number (finite in
            the slopes' dtype). Defaults to `keras_prelu.DEFAULT_SLOPE`
            (0.25); `"zeros"` gives `keras.layers.PReLU`'s default.
        alpha_regularizer: Regularizer for the slopes. Defaults to `None`.
        alpha_constraint: Constraint for the slopes. Defaults to `None`.
        shared_axes: int, or list/tuple of ints. Axes along which one slope
            is shared (`layout="full"` only); negative axes count from the
            end, as in Python. Defaults to `None`.
        layout: `"full"` (one slope per element, but for `shared_axes`),
            `"channelwise"` (one per channel, like `torch.nn.PReLU(C)`) or
            `"scalar"` (one in all). Defaults to `"full"`.
        data_format: `"channels_last"` or `"channels_first"`: the channel
            axis of `layout="channelwise"`, whose only argument it is.
            Defaults to `keras.config.image_data_format()`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`
            (a floating dtype or a mixed policy).

    Example:

    >>> layer = keras_prelu.PReLU(layout="channelwise")
    >>> layer(keras.ops.ones((2, 8, 8, 16))).shape
    (2, 8, 8, 16)

    References:
        - [He et al., 2015](https://arxiv.org/abs/1502.01852)
    """

    def __init__(
        self,
        alpha_initializer: float | str | dict[str, Any] | initializers.Initializer = DEFAULT_SLOPE,
        alpha_regularizer: str | dict[str, Any] | regularizers.Regularizer | None = None,
        alpha_constraint: str | dict[str, Any] | constraints.Constraint | None = None,
        shared_axes: int | list[int] | tuple[int, ...] | None = None,
        layout: str = "full",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_float_policy(self.dtype_policy)
        self.supports_masking = True
        self.layout = layout
        self.shared_axes, self.data_format = _check_layout(layout, shared_axes, data_format)
        self.alpha_initializer = _resolve_initializer(
            alpha_initializer, self.dtype_policy.variable_dtype
        )
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)

    @keras.layers.Layer.dtype_policy.setter
    def dtype_policy(self, value: Any) -> None:
        _check_float_policy(keras.dtype_policies.get(value))
        keras.layers.Layer.dtype_policy.fset(self, value)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        param_shape, slope_axes = alpha_shape(self, input_shape)
        self.alpha = self.add_weight(
            shape=param_shape,
            name="alpha",
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
            autocast=False,
        )
        self.input_spec = keras.InputSpec(
            ndim=len(input_shape), axes={axis: int(input_shape[axis]) for axis in slope_axes}
        )

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        check_real_dtype(inputs.dtype, "inputs")
        # Keras autocasts only float inputs.
        if not keras.backend.is_float_dtype(inputs.dtype):
            inputs = keras.ops.cast(inputs, self.compute_dtype)
        # The slope is not autocast: under mixed precision its gradient is
        # summed and returned in float32, where float16 would overflow.
        if training:  # the same results, maybe faster; not the exportable pattern
            return _kernels.prelu_training(inputs, keras.ops.convert_to_tensor(self.alpha))
        return prelu(inputs, self.alpha)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def compute_output_spec(self, inputs: Any, *args: Any, **kwargs: Any) -> keras.KerasTensor:
        # Symbolic calls never reach the op: refuse complex inputs here.
        dtype = getattr(inputs, "dtype", None)
        if dtype is not None:
            check_real_dtype(dtype, "inputs")
        return super().compute_output_spec(inputs, *args, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes,
                "layout": self.layout,
                "data_format": self.data_format,
            }
        )
        return config
