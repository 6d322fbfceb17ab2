"""Moving PReLU models between `keras.layers.PReLU`, `torch.nn.PReLU` and this package.

- `from_builtin_prelu` and `to_builtin_prelu`: swap `keras.layers.PReLU` for
  `keras_prelu.PReLU` in a model and back, weights kept, outputs identical.
- `slopes_from_torch` and `from_torch_prelu`: import the weights of a
  `torch.nn.PReLU`, from NumPy arrays or the module itself; torch itself is
  never imported here.
"""

import functools
from typing import Any

import keras
import numpy as np

from keras_prelu._layer import PReLU
from keras_prelu._layer import channel_axis
from keras_prelu._layer import check_data_format
from keras_prelu._layer import check_positive_int

__all__ = ["from_builtin_prelu", "to_builtin_prelu", "slopes_from_torch", "from_torch_prelu"]

_PRELU_ARGS = ("alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes")
_LAYOUT_ARGS = ("layout", "data_format")

# Migration from and to keras.layers.PReLU ---------------------------------------


def from_builtin_prelu(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` with `keras_prelu.PReLU` for `keras.layers.PReLU`.

    Every `keras.layers.PReLU` (exactly that class, also inside nested
    Sequential and Functional models) becomes a `keras_prelu.PReLU` with
    `layout="full"`, the same initializer, regularizer, constraint, name,
    dtype and slope values, so outputs are identical. `shared_axes` are
    translated into the input axes the installed `keras.layers.PReLU`
    actually shares, found by building a tiny built-in layer with the same
    `shared_axes` on an input of the same rank (Keras 3.15 reads a
    non-positive axis `a` as input axis `rank + a - 1`, so `-1` shares the
    axis before the last; a later Keras may read it as Python does): the
    copy always shares the same axes as the original. All other layers are
    cloned with their weights. The copy is not compiled.

    Args:
        model: A Sequential or Functional model, e.g. from
            `keras.saving.load_model` on a file saved with the built-in.

    Returns:
        A new model of the same structure.

    Raises:
        ValueError: if a layer was never built and has non-positive
            `shared_axes`, whose meaning depends on the input rank.

    Example:

    >>> old = keras.saving.load_model("builtin_prelu.keras")
    >>> model = keras_prelu.migration.from_builtin_prelu(old)
    """
    return _replace_layers(model, keras.layers.PReLU, _builtin_to_ours)


def to_builtin_prelu(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` with `keras.layers.PReLU` for `keras_prelu.PReLU`.

    The way back, for dropping the dependency: the copy saves to a `.keras`
    file that loads without `keras_prelu`, and gives identical outputs. The
    channel-wise and scalar layouts become `shared_axes` over every other
    non-batch axis (unknown spatial sizes are fine), and a scalar slope is
    stored with shape `(1,) * (rank - 1)`. Subclasses of `keras_prelu.PReLU`
    are cloned as they are. The built-in's gradient at exactly `x == 0` is 0
    instead of 1. The copy is not compiled.

    Args:
        model: A Sequential or Functional model.

    Returns:
        A new model of the same structure.

    Raises:
        ValueError: if a layer's slopes cannot be expressed without knowing
            its input rank (`layout="channelwise"` or `"scalar"`, or negative
            `shared_axes`) and the layer was never built, or if the installed
            `keras.layers.PReLU` does not share the axes it is given (checked
            by building a tiny one).
    """
    return _replace_layers(model, PReLU, _ours_to_builtin)


def _replace_layers(model, source_class, convert):
    pairs = []

    def clone(layer):
        if type(layer) is source_class:
            new_layer = convert(layer)
        else:
            new_layer = layer.__class__.from_config(layer.get_config())
        pairs.append((layer, new_layer))
        return new_layer

    converted = keras.models.clone_model(model, clone_function=clone, recursive=True)
    for old_layer, new_layer in pairs:
        _copy_weights(old_layer, new_layer)
    return converted


def _broadcast_shape(shape) -> tuple:
    """`shape` without leading size-1 axes: what it means when broadcast."""
    shape = tuple(shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def _copy_weights(old_layer, new_layer) -> None:
    values = old_layer.get_weights()
    if not values:
        return
    if not new_layer.built:
        new_layer.build_from_config(old_layer.get_build_config())
    targets = new_layer.weights
    # Slopes broadcast against the input from the right, so shapes may differ
    # only in leading size-1 axes (a scalar slope and (1, 1, 1)); anything
    # else, even with the same size, would put slopes on other elements.
    if len(targets) != len(values) or any(
        _broadcast_shape(np.shape(value)) != _broadcast_shape(target.shape)
        for value, target in zip(values, targets, strict=True)
    ):
        raise ValueError(
            f"Layer '{old_layer.name}' could not be copied: its weights have "
            f"shapes {[np.shape(v) for v in values]}, the copy's "
            f"{[tuple(t.shape) for t in targets]}; copying them would put "
            "values on the wrong elements."
        )
    new_layer.set_weights(
        [np.reshape(value, target.shape) for value, target in zip(values, targets, strict=True)]
    )


@functools.cache
def _builtin_shared_axes(builtin_class, shared_axes: tuple, rank: int) -> frozenset | None:
    """The input axes `builtin_class(shared_axes=...)` shares on rank-`rank` inputs.

    Found by building one on a tiny input with every axis of size 2 (so a
    shared axis shows as size 1 in the slopes), rather than assumed: Keras
    3.15's `keras.layers.PReLU` reads non-positive axes off by one, and a
    later version may not. None if the built-in refuses those axes.
    """
    probe = builtin_class(
        shared_axes=list(shared_axes), alpha_initializer="zeros", name="keras_prelu_probe"
    )
    try:
        probe.build((None,) + (2,) * (rank - 1))
    except (ValueError, IndexError):  # Keras 3.15 raises a bare IndexError for some axes
        return None
    alpha_shape = tuple(probe.alpha.shape)
    if len(alpha_shape) != rank - 1 or any(dim not in (1, 2) for dim in alpha_shape):
        return None
    return frozenset(axis for axis in range(1, rank) if alpha_shape[axis - 1] == 1)


def _input_rank(layer) -> int | None:
    build_config = layer.get_build_config() if layer.built else None
    if not build_config or "input_shape" not in build_config:
        return None
    return len(build_config["input_shape"])


def _raise_unknown_rank(layer, why):
    raise ValueError(
        f"Layer '{layer.name}' was never built, so its input rank is unknown "
        f"and {why}. Build the model first (give it a keras.Input or call it "
        "on data)."
    )


def _builtin_to_ours(layer) -> PReLU:
    config = layer.get_config()
    shared_axes = config["shared_axes"]
    if shared_axes is not None:
        axes = tuple(shared_axes) if isinstance(shared_axes, (list, tuple)) else (shared_axes,)
        rank = _input_rank(layer)
        positive = all(isinstance(axis, int) and axis > 0 for axis in axes)
        if rank is None and positive:
            # Positive axes mean themselves at any rank if the built-in reads
            # them so at the smallest rank that has them.
            if _builtin_shared_axes(type(layer), axes, max(axes) + 1) != set(axes):
                _raise_unknown_rank(
                    layer,
                    f"the installed keras.layers.PReLU does not share shared_axes={shared_axes} "
                    "as named, so they cannot be translated",
                )
            shared = set(axes)
        elif rank is None:
            _raise_unknown_rank(
                layer,
                f"shared_axes={shared_axes} (which keras.layers.PReLU may read "
                "relative to the input rank) cannot be translated",
            )
        else:
            shared = _builtin_shared_axes(type(layer), axes, rank)
            if shared is None:
                raise ValueError(
                    f"Layer '{layer.name}' could not be translated: keras.layers.PReLU "
                    f"refuses shared_axes={shared_axes} on rank-{rank} inputs."
                )
        shared_axes = sorted(shared) or None
    base = {key: value for key, value in config.items() if key not in _PRELU_ARGS}
    return PReLU(
        alpha_initializer=config["alpha_initializer"],
        alpha_regularizer=config["alpha_regularizer"],
        alpha_constraint=config["alpha_constraint"],
        shared_axes=shared_axes,
        layout="full",
        **base,
    )


def _ours_to_builtin(layer) -> keras.layers.PReLU:
    config = layer.get_config()
    rank = _input_rank(layer)
    shared_axes = config["shared_axes"]
    if layer.layout == "full":
        if shared_axes is not None and any(axis < 0 for axis in shared_axes):
            if rank is None:
                _raise_unknown_rank(layer, f"negative shared_axes={shared_axes} cannot be resolved")
            shared_axes = sorted({axis % rank for axis in shared_axes})
    else:
        if rank is None:
            _raise_unknown_rank(layer, f"layout='{layer.layout}' cannot be written as shared_axes")
        keep = set()
        if layer.layout == "channelwise":
            keep = {channel_axis(layer.data_format, rank)}
        shared_axes = [axis for axis in range(1, rank) if axis not in keep] or None
    if shared_axes is not None:
        # Only positive axes are passed on; check that the installed built-in
        # reads them as they are meant rather than assume it.
        shared_axes = sorted(set(shared_axes))
        probe_rank = rank if rank is not None else max(shared_axes) + 1
        shared = _builtin_shared_axes(keras.layers.PReLU, tuple(shared_axes), probe_rank)
        if shared != set(shared_axes):
            raise ValueError(
                f"Layer '{layer.name}' could not be converted: the installed "
                f"keras.layers.PReLU shares axes {sorted(shared or ())} when given "
                f"shared_axes={shared_axes} on rank-{probe_rank} inputs."
            )
    base = {key: value for key, value in config.items() if key not in _PRELU_ARGS + _LAYOUT_ARGS}
    return keras.layers.PReLU(
        alpha_initializer=config["alpha_initializer"],
        alpha_regularizer=config["alpha_regularizer"],
        alpha_constraint=config["alpha_constraint"],
        shared_axes=shared_axes,
        **base,
    )


# Migration from torch.nn.PReLU --------------------------------------------------


def slopes_from_torch(weight: Any, rank: int = 4, data_format: str | None = None) -> np.ndarray:
    """Turns the weight of a `torch.nn.PReLU` into a `keras_prelu.PReLU` alpha.

    `torch.nn.PReLU(num_parameters=C)` holds one slope per channel of dim 1
    (NCHW); `num_parameters=1` one slope for everything. The result is the
    alpha of `PReLU(layout="channelwise", data_format=data_format)` on
    rank-`rank` inputs (e.g. `(1, 1, C)` for channels_last images, `(C, 1, 1)`
    for channels_first), or of `PReLU(layout="scalar")` (shape `()`) for a
    single slope. A channels_last alpha also fits a `layout="full"` layer
    whose `shared_axes` are all the axes but the last.

    Args:
        weight: The slopes: a `torch.nn.PReLU` module, its `weight` tensor,
            or a 1-D NumPy array or list of 1 or C numbers. torch is not
            imported; a module or tensor is read through its own methods.
        rank: int. The rank of the Keras layer's input, batch included
            (4 for images): at least 1, and at least 2 for more than one
            slope (which needs a channel axis). Only shapes the result for
            more than one slope. Defaults to 4.
        data_format: `"channels_last"` or `"channels_first"`: where the
            channels are in the Keras input (the torch input is always
            channels_first). Defaults to `keras.config.image_data_format()`.

    Returns:
        A NumPy array: the slopes, shaped for the Keras layer.

    Raises:
        TypeError: for complex slopes (the imaginary part would be lost).
        ValueError: for anything else that is not 1 or C finite real
            slopes (None, NaN or infinite slopes, a 2-D array), or a bad
            `rank` or `data_format`.

    Example:

    >>> alpha = keras_prelu.migration.slopes_from_torch(torch_prelu.weight)
    >>> model.get_layer("act").set_weights([alpha])
    """
    slopes = _torch_slopes(weight)
    rank = _check_rank(rank)
    if slopes.size == 1:
        return slopes.reshape(())
    data_format = check_data_format(data_format)
    if rank < 2:
        raise ValueError(
            f"{slopes.size} per-channel slopes need inputs of rank >= 2, "
            f"(batch, channels, ...): a rank-{rank} input has no channel axis. "
            f"Received: rank={rank!r}"
        )
    if data_format == "channels_first":
        shape = (slopes.size,) + (1,) * (rank - 2)
    else:
        shape = (1,) * (rank - 2) + (slopes.size,)
    return slopes.reshape(shape)


def from_torch_prelu(
    weight: Any, rank: int = 4, data_format: str | None = None, **kwargs: Any
) -> PReLU:
    """Builds a `keras_prelu.PReLU` that computes what a `torch.nn.PReLU` does.

    One slope gives `layout="scalar"`, C slopes `layout="channelwise"` with
    `data_format`; the layer is built (spatial sizes left unknown) and holds
    the torch slopes. See `slopes_from_torch` for the arguments.

    Args:
        weight: A `torch.nn.PReLU`, its `weight`, or a 1-D array of slopes.
        rank: int. The rank of the layer's input, batch included. Defaults
            to 4.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        **kwargs: Other `keras_prelu.PReLU` arguments, such as `name`.

    Returns:
        A built `keras_prelu.PReLU`.

    Example:

    >>> layer = keras_prelu.migration.from_torch_prelu(torch.nn.PReLU(16))
    """
    alpha = slopes_from_torch(weight, rank=rank, data_format=data_format)
    if alpha.ndim == 0:
        layer = PReLU(layout="scalar", **kwargs)
        layer.build((None,) * _check_rank(rank))
    else:
        layer = PReLU(layout="channelwise", data_format=data_format, **kwargs)
        channels = alpha.size
        if layer.data_format == "channels_first":
            layer.build((None, channels) + (None,) * (rank - 2))
        else:
            layer.build((None,) * (rank - 1) + (channels,))
    layer.set_weights([alpha])
    return layer


def _check_rank(rank) -> int:
    return check_positive_int(rank, "rank", " (the rank of the layer's input, batch included)")


def _torch_slopes(weight) -> np.ndarray:
    if weight is None:
        raise ValueError(
            "Expected a torch.nn.PReLU, its weight, or a 1-D array of slopes. Received: weight=None"
        )
    if hasattr(weight, "num_parameters") and hasattr(weight, "weight"):
        weight = weight.weight  # a torch.nn.PReLU module
    if hasattr(weight, "detach"):  # a torch tensor or parameter
        is_complex = getattr(weight, "is_complex", None)
        if callable(is_complex) and is_complex():
            raise TypeError(
                "The slopes of a torch.nn.PReLU must be real; the imaginary part "
                f"of complex slopes would be lost. Received: weight.dtype={weight.dtype}"
            )
        weight = weight.detach().cpu()
        try:
            weight = weight.numpy()
        except TypeError:  # bfloat16 and other dtypes NumPy lacks
            weight = weight.float().numpy()
    try:
        slopes = np.asarray(weight)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Expected 1 or C real slopes. Received: weight={weight!r} ({error})"
        ) from error
    if slopes.dtype.kind == "c":
        raise TypeError(
            "The slopes of a torch.nn.PReLU must be real; the imaginary part "
            f"of complex slopes would be lost. Received: weight.dtype={slopes.dtype}"
        )
    if slopes.dtype.kind not in "iuf":
        raise ValueError(
            "Expected the slopes of a torch.nn.PReLU as real numbers. "
            f"Received: weight={weight!r} (dtype {slopes.dtype})"
        )
    if slopes.dtype.kind != "f":
        slopes = slopes.astype(keras.config.floatx())
    if slopes.ndim > 1 or slopes.size == 0:
        raise ValueError(
            "Expected the 1-D weight of a torch.nn.PReLU: 1 slope or one per "
            f"channel. Received: weight.shape={slopes.shape}"
        )
    finite = np.isfinite(slopes)
    if not finite.all():
        raise ValueError(
            f"The torch slopes must be finite; {int((~finite).sum())} of "
            f"{slopes.size} are NaN or infinite. Received: weight={slopes!r}"
        )
    return slopes.reshape(-1)
