"""The `keras_prelu.PReLU` layer."""

import numbers
from typing import Any

import keras
from keras import constraints
from keras import initializers
from keras import regularizers

from keras_prelu import _kernels
from keras_prelu._ops import prelu

LAYOUTS = ("full", "channelwise", "scalar")
DATA_FORMATS = ("channels_last", "channels_first")
DEFAULT_SLOPE = 0.25


def _is_axis_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _validate_shared_axes(shared_axes) -> list[int] | None:
    """Checks the types of `shared_axes` and rejects the batch axis.

    Axes are normalised against the input rank only in `build`, once the rank
    is known.
    """
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
    """Returns `data_format`, or `keras.config.image_data_format()` for None.

    Raises a `ValueError` for anything but the two Keras data formats.
    """
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


def _resolve_initializer(alpha_initializer):
    if isinstance(alpha_initializer, numbers.Real) and not isinstance(alpha_initializer, bool):
        return initializers.Constant(float(alpha_initializer))
    return initializers.get(alpha_initializer)


@keras.saving.register_keras_serializable(package="keras_prelu")
class PReLU(keras.layers.Layer):
    """Parametric Rectified Linear Unit, correct and identical on every backend.

    A drop-in replacement for `keras.layers.PReLU`: the same arguments do the
    same things, plus one-argument channel-wise and scalar slopes.

    Formula:
    ```
    f(x) = x          if x >= 0
    f(x) = alpha * x  if x < 0
    ```
    where `alpha` is a learned array. The gradient with respect to `x` is 1
    for `x >= 0` (1 at `x == 0`, where `keras.layers.PReLU` gives 0) and
    `alpha` otherwise; the gradient with respect to `alpha` is `x` for `x < 0`,
    else 0, summed over the batch and the shared axes.

    Slope layouts:

    - `layout="full"` (the Keras default): one slope per input element,
      except along `shared_axes`.
    - `layout="channelwise"`: one slope per channel, like
      `torch.nn.PReLU(num_parameters=C)`. The channel axis follows
      `data_format`; the spatial dimensions may be unknown (`None`).
    - `layout="scalar"`: one slope for the whole tensor, like
      `torch.nn.PReLU()` (`num_parameters=1`).

    Args:
        alpha_initializer: Initializer for the slopes, or a number for a
            constant slope. Defaults to `0.25` (He et al. 2015 and
            `torch.nn.PReLU`); pass `"zeros"` to reproduce
            `keras.layers.PReLU`'s default.
        alpha_regularizer: Regularizer for the slopes. Defaults to `None`.
            He et al. 2015 advise against weight decay on the slopes.
        alpha_constraint: Constraint for the slopes. Defaults to `None`.
        shared_axes: int, or list/tuple of ints. Axes along which one slope
            is shared, with `layout="full"` only. Axis 0 is the batch and is
            always shared, so it is rejected; negative axes count from the end
            as in Python, so on `(batch, H, W, C)` inputs `shared_axes=[-3, -2]`
            (or `[1, 2]`) gives one slope per channel. Duplicate axes,
            including one axis named by both its positive and negative index,
            are merged. Defaults to `None`.
        layout: `"full"`, `"channelwise"` or `"scalar"`, as described above.
            Defaults to `"full"`.
        data_format: `"channels_last"` or `"channels_first"`: where the
            channel axis is for `layout="channelwise"` (last axis, or axis 1).
            Defaults to `keras.config.image_data_format()` at construction; it
            is stored in the config, so a saved model keeps its meaning.
            Only valid with `layout="channelwise"`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        Any rank of at least 2 (`(batch, ...)`); `layout="scalar"` and
        `layout="full"` also accept rank 1. Integer and bool inputs are cast
        to the layer's compute dtype on every backend.

    Output shape:
        Same as the input. Masks pass through unchanged.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None, None, 3)),
    ...     keras.layers.Conv2D(16, 3),
    ...     keras_prelu.PReLU(layout="channelwise"),  # 16 slopes
    ... ])

    References:
        - [He et al., 2015](https://arxiv.org/abs/1502.01852)
    """

    def __init__(
        self,
        alpha_initializer=DEFAULT_SLOPE,
        alpha_regularizer=None,
        alpha_constraint=None,
        shared_axes=None,
        layout="full",
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.supports_masking = True
        if layout not in LAYOUTS:
            raise ValueError(f"`layout` must be one of {LAYOUTS}. Received: layout={layout!r}")
        self.shared_axes = _validate_shared_axes(shared_axes)
        if self.shared_axes is not None and layout != "full":
            raise ValueError(
                "`shared_axes` can only be combined with layout='full'; "
                f"layout={layout!r} already fixes which axes share a slope. "
                f"Received: shared_axes={shared_axes!r}, layout={layout!r}"
            )
        if layout == "channelwise":
            data_format = check_data_format(data_format)
        elif data_format is not None:
            raise ValueError(
                "`data_format` only applies to layout='channelwise'. "
                f"Received: data_format={data_format!r}, layout={layout!r}"
            )
        self.layout = layout
        self.data_format = data_format
        self.alpha_initializer = _resolve_initializer(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)

    def _normalized_shared_axes(self, rank: int) -> set[int]:
        normalized = set()
        for axis in self.shared_axes or ():
            positive = axis + rank if axis < 0 else axis
            if positive == 0:
                raise ValueError(
                    f"`shared_axes` cannot include the batch axis: axis {axis} "
                    f"is axis 0 of a rank-{rank} input. "
                    f"Received: shared_axes={self.shared_axes}"
                )
            if not 0 < positive < rank:
                raise ValueError(
                    f"`shared_axes` must be in [1, {rank - 1}] or "
                    f"[{-(rank - 1)}, -1] for a rank-{rank} input; axis {axis} "
                    f"is out of range. Received: shared_axes={self.shared_axes}"
                )
            normalized.add(positive)
        return normalized

    def _slope_axes(self, input_shape) -> set[int]:
        """The non-batch axes that get their own slopes (are not shared)."""
        rank = len(input_shape)
        if self.layout == "scalar":
            return set()
        if self.layout == "channelwise":
            if rank < 2:
                raise ValueError(
                    "layout='channelwise' needs inputs of rank >= 2, "
                    f"(batch, ..., channels). Received: input_shape={input_shape}"
                )
            return {channel_axis(self.data_format, rank)}
        return set(range(1, rank)) - self._normalized_shared_axes(rank)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        rank = len(input_shape)
        if rank < 1:
            raise ValueError(
                f"PReLU needs inputs with a batch axis. Received: input_shape={input_shape}"
            )
        slope_axes = self._slope_axes(input_shape)
        unknown = sorted(axis for axis in slope_axes if input_shape[axis] is None)
        if unknown:
            if self.layout == "channelwise":
                raise ValueError(
                    f"The channel axis {unknown[0]} ({self.data_format}) must "
                    "have a known size for layout='channelwise'. "
                    f"Received: input_shape={input_shape}"
                )
            suggestion = sorted(set(unknown) | self._normalized_shared_axes(rank))
            raise ValueError(
                f"Axes {unknown} of the input have unknown size (None), so "
                "they need a shared slope: pass "
                f"shared_axes={suggestion}, or layout='channelwise' for one "
                f"slope per channel. Received: input_shape={input_shape}, "
                f"shared_axes={self.shared_axes}"
            )
        if self.layout == "scalar":
            param_shape = ()
        else:
            param_shape = tuple(
                input_shape[axis] if axis in slope_axes else 1 for axis in range(1, rank)
            )
        self.alpha = self.add_weight(
            shape=param_shape,
            name="alpha",
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
            # Read in its own dtype inside `call` (see there).
            autocast=False,
        )
        self.input_spec = keras.InputSpec(
            ndim=rank, axes={axis: input_shape[axis] for axis in slope_axes}
        )

    def call(self, inputs, training=None):
        # Keras casts float inputs to the compute dtype but leaves integer
        # and bool ones alone.
        if not keras.backend.is_float_dtype(inputs.dtype):
            inputs = keras.ops.cast(inputs, self.compute_dtype)
        # The slope variable is not autocast: under mixed precision the
        # kernels take the float32 slope next to float16 inputs, compute the
        # output in float16 and return the slope gradient in float32, summed
        # in float32, where a float16 copy would overflow (|sum| > 65504).
        if training:
            # Faster where a backend has a training form (TensorFlow: not the
            # op pattern export converters fuse); the same results.
            return _kernels.prelu_training(inputs, keras.ops.convert_to_tensor(self.alpha))
        return prelu(inputs, self.alpha)

    def compute_output_shape(self, input_shape):
        return input_shape

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
