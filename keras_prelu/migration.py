"""Moving PReLU models between `keras.layers.PReLU`, `torch.nn.PReLU` and this package.

See docs/saving.md; torch itself is never imported.
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


def from_builtin_prelu(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` with `keras_prelu.PReLU` for `keras.layers.PReLU`.

    Each `keras.layers.PReLU` (that class exactly, nested models included)
    becomes a `keras_prelu.PReLU(layout="full")` that shares the same axes,
    with the same slopes and arguments: outputs are identical. Other layers
    are cloned with their weights. The copy is not compiled.

    Args:
        model: `keras.Model`. A Sequential or Functional model.

    Raises:
        ValueError: if a layer's `shared_axes` cannot be translated (unbuilt
            and rank-dependent, or refused by the installed built-in).

    Example:

    >>> old = keras.saving.load_model("builtin_prelu.keras")
    >>> model = keras_prelu.migration.from_builtin_prelu(old)
    """
    return _replace_layers(model, keras.layers.PReLU, _builtin_to_ours)


def to_builtin_prelu(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` with `keras.layers.PReLU` for `keras_prelu.PReLU`.

    The way back: the copy gives identical outputs and saves to a file that
    loads without `keras_prelu`. Subclasses of `keras_prelu.PReLU` are cloned
    as they are. The copy is not compiled.

    Args:
        model: `keras.Model`. A Sequential or Functional model.

    Raises:
        ValueError: if a layer's slopes need its input rank and it was never
            built, or the installed built-in does not share the axes given.
    """
    return _replace_layers(model, PReLU, _ours_to_builtin)


def _replace_layers(model, source_class, convert):
    def clone(layer):
        if type(layer) is source_class:
            new_layer = convert(layer)
        else:
            new_layer = layer.from_config(layer.get_config())
        _copy_weights(layer, new_layer)
        return new_layer

    return keras.models.clone_model(model, clone_function=clone, recursive=True)


def _broadcast_shape(shape) -> tuple:
    """`shape` without leading size-1 axes: what it means when broadcast."""
    shape = tuple(shape)
    while shape[:1] == (1,):
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
            f"Layer '{old_layer.name}' could not be copied: its weights have shapes "
            f"{[np.shape(v) for v in values]}, the copy's {[tuple(t.shape) for t in targets]}; "
            "copying them would put values on the wrong elements."
        )
    new_layer.set_weights(
        [np.reshape(value, target.shape) for value, target in zip(values, targets, strict=True)]
    )


@functools.cache
def _builtin_shared_axes(builtin_class, shared_axes: tuple, rank: int) -> frozenset | None:
    """The input axes `builtin_class(shared_axes=...)` shares on rank-`rank` inputs, or None.

    Measured rather than assumed: Keras 3.15 reads non-positive axes off by one.
    """
    probe = builtin_class(
        shared_axes=list(shared_axes), alpha_initializer="zeros", name="keras_prelu_probe"
    )
    try:  # every axis of size 2: a shared one has size 1 in the slopes
        probe.build((None,) + (2,) * (rank - 1))
    except (ValueError, IndexError):  # Keras 3.15 raises a bare IndexError for some axes
        return None
    alpha_shape = tuple(probe.alpha.shape)
    if len(alpha_shape) != rank - 1 or any(dim not in (1, 2) for dim in alpha_shape):
        return None
    return frozenset(axis for axis in range(1, rank) if alpha_shape[axis - 1] == 1)


def _input_rank(layer) -> int | None:
    config = layer.get_build_config() if layer.built else None
    return len(config["input_shape"]) if config and "input_shape" in config else None


def _raise_unknown_rank(layer, why):
    raise ValueError(
        f"Layer '{layer.name}' was never built, so its input rank is unknown "
        f"and {why}. Build the model first (give it a keras.Input or call it "
        "on data)."
    )


def _builtin_to_ours(layer) -> PReLU:
    config = layer.get_config()
    shared_axes = config.pop("shared_axes")
    if shared_axes is not None:
        axes = tuple(shared_axes) if isinstance(shared_axes, (list, tuple)) else (shared_axes,)
        rank = _input_rank(layer)
        if rank is None and not all(isinstance(axis, int) and axis > 0 for axis in axes):
            why = f"{shared_axes=} cannot be translated: the built-in may read them relative to it"
            _raise_unknown_rank(layer, why)
        # Positive axes mean themselves at any rank if the built-in reads them
        # so at the smallest rank that has them.
        shared = _builtin_shared_axes(type(layer), axes, rank or max(axes) + 1)
        if rank is None and shared != set(axes):
            why = f"the installed keras.layers.PReLU does not share {shared_axes=} as named"
            _raise_unknown_rank(layer, why)
        if shared is None:
            raise ValueError(
                f"Layer '{layer.name}' could not be translated: keras.layers.PReLU "
                f"refuses shared_axes={shared_axes} on rank-{rank} inputs."
            )
        shared_axes = sorted(shared) or None
    return PReLU(shared_axes=shared_axes, layout="full", **config)


def _ours_to_builtin(layer) -> keras.layers.PReLU:
    config = layer.get_config()
    rank = _input_rank(layer)
    shared_axes = config.pop("shared_axes")
    if rank is None and layer.layout != "full":
        _raise_unknown_rank(layer, f"layout='{layer.layout}' cannot be written as shared_axes")
    if rank is None and any(axis < 0 for axis in shared_axes or ()):
        _raise_unknown_rank(layer, f"negative shared_axes={shared_axes} cannot be resolved")
    if layer.layout != "full":
        keep = {channel_axis(layer.data_format, rank)} if layer.layout == "channelwise" else ()
        shared_axes = [axis for axis in range(1, rank) if axis not in keep] or None
    if shared_axes is not None:
        # Only positive axes are passed on; check that the installed built-in
        # reads them as meant rather than assume it.
        shared_axes = sorted({axis % rank if axis < 0 else axis for axis in shared_axes})
        probe_rank = rank or max(shared_axes) + 1
        shared = _builtin_shared_axes(keras.layers.PReLU, tuple(shared_axes), probe_rank)
        if shared != set(shared_axes):
            raise ValueError(
                f"Layer '{layer.name}' could not be converted: the installed "
                f"keras.layers.PReLU shares axes {sorted(shared or ())} when given "
                f"shared_axes={shared_axes} on rank-{probe_rank} inputs."
            )
    del config["layout"], config["data_format"]
    return keras.layers.PReLU(shared_axes=shared_axes, **config)


# Long, but flat: one check after another, in the order a weight can fail them.
def slopes_from_torch(weight: Any, rank: int = 4, data_format: str | None = None) -> np.ndarray:
    """Turns the weight of a `torch.nn.PReLU` into a `keras_prelu.PReLU` alpha.

    One slope gives the alpha of `PReLU(layout="scalar")`, shape `()`; C
    slopes that of `PReLU(layout="channelwise", data_format=data_format)`,
    e.g. `(1, 1, C)` for channels_last images.

    Args:
        weight: A `torch.nn.PReLU`, its `weight`, or a 1-D array of slopes.
        rank: int. The rank of the Keras input, batch included. Defaults to `4`.
        data_format: string, `"channels_last"` or `"channels_first"`: where
            the Keras input has its channels. Defaults to
            `keras.config.image_data_format()`.

    Returns:
        A NumPy array: the slopes, shaped for the Keras layer.

    Raises:
        TypeError: for complex slopes.
        ValueError: for anything else that is not 1 or C finite real slopes.

    Example:

    >>> alpha = keras_prelu.migration.slopes_from_torch(torch_prelu.weight)
    >>> model.get_layer("act").set_weights([alpha])
    """
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
        message = f"Expected 1 or C real slopes. Received: weight={weight!r} ({error})"
        raise ValueError(message) from error
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
    rank = check_positive_int(rank, "rank", " (the rank of the layer's input, batch included)")
    if slopes.size == 1:
        return slopes.reshape(())
    data_format = check_data_format(data_format)
    if rank < 2:
        raise ValueError(
            f"{slopes.size} per-channel slopes need inputs of rank >= 2, (batch, channels, ...): "
            f"a rank-{rank} input has no channel axis. Received: rank={rank!r}"
        )
    shape = [1] * (rank - 1)
    shape[channel_axis(data_format, rank) - 1] = slopes.size
    return slopes.reshape(shape)


def from_torch_prelu(
    weight: Any, rank: int = 4, data_format: str | None = None, **kwargs: Any
) -> PReLU:
    """Builds a `keras_prelu.PReLU` that computes what a `torch.nn.PReLU` does.

    One slope gives `layout="scalar"`, C slopes `layout="channelwise"`; the
    layer is built with unknown spatial sizes. Raises as `slopes_from_torch`.

    Args:
        weight: A `torch.nn.PReLU`, its `weight`, or a 1-D array of slopes.
        rank: int. The rank of the layer's input, batch included. Defaults to `4`.
        data_format: string, `"channels_last"` or `"channels_first"`.
            Defaults to `keras.config.image_data_format()`.
        **kwargs: Other `keras_prelu.PReLU` arguments, such as `name`.

    Example:

    >>> layer = keras_prelu.migration.from_torch_prelu(torch.nn.PReLU(16))
    """
    alpha = slopes_from_torch(weight, rank=rank, data_format=data_format)
    if alpha.ndim == 0:
        layer = PReLU(layout="scalar", **kwargs)
        layer.build((None,) * int(rank))
    else:
        layer = PReLU(layout="channelwise", data_format=data_format, **kwargs)
        layer.build((None,) + tuple(dim if dim > 1 else None for dim in alpha.shape))
    layer.set_weights([alpha])
    return layer
