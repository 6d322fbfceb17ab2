"""Saving, loading and migrating models that use `keras_prelu.PReLU`.

- `load_model` and `load_weights`: Keras's loaders, with the file checked
  first and every failure raised as a `ValueError` that names the file (and
  the layer, where one is to blame). The file is only ever read.
- `from_builtin_prelu` and `to_builtin_prelu`: swap `keras.layers.PReLU` for
  `keras_prelu.PReLU` in a model and back, weights kept, outputs identical.
- `slopes_from_torch` and `from_torch_prelu`: import the weights of a
  `torch.nn.PReLU`, from NumPy arrays or the module itself; torch itself is
  never imported here.

ONNX export lives in `keras_prelu.export`.
"""

import json
import os
import zipfile
import zlib
from typing import Any

import keras
import numpy as np

from keras_prelu.layer import PReLU, channel_axis, check_data_format

REGISTERED_NAME = keras.saving.get_registered_name(PReLU)

# What a damaged or mismatched file makes Keras, zipfile or h5py raise.
_LOAD_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
)
_PRELU_ARGS = ("alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes")
_LAYOUT_ARGS = ("layout", "data_format")


# Loading ---------------------------------------------------------------------


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Loads a `.keras` model, checking the file before Keras reads it.

    Same arguments and result as `keras.saving.load_model`. Before loading,
    the archive is checked (every member's CRC, `config.json` present and
    valid JSON) and every `keras_prelu.PReLU` config in it is validated. On
    any failure it raises a `ValueError` naming the file, and the layer
    where one is at fault; no model is returned and the file is only read.

    Args:
        filepath: str or `pathlib.Path`. Path to a `.keras` file.
        custom_objects: Optional dict mapping names to custom classes or
            functions, as in `keras.saving.load_model`. Defaults to `None`.
        compile: bool. Whether to compile the model after loading.
            Defaults to `True`.
        safe_mode: bool. Whether to refuse unsafe lambda deserialization.
            Defaults to `True`.

    Returns:
        A Keras model.

    Example:

    >>> model = keras_prelu.saving.load_model("model.keras")
    """
    path = _existing_file(filepath, (".keras",))
    config = _read_archive_config(path)
    _check_prelu_configs(config, path, custom_objects)
    custom_objects = {**_optimizers_of_other_backends(config), **(custom_objects or {})}
    try:
        return keras.saving.load_model(
            path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
        )
    except _LOAD_ERRORS as error:
        raise ValueError(
            f"Could not load the model in '{path}': {error} Received: filepath={path}"
        ) from error


def load_weights(model, filepath, skip_mismatch=False):
    """Loads weights into `model`, all of them or none.

    Like `model.load_weights(filepath)`, but a failure (a missing, truncated
    or corrupted file, or a weight whose shape does not match its layer, such
    as a slope saved for another layout) raises a `ValueError` naming the
    file and leaves every weight of `model` as it was before the call.

    Args:
        model: A built Keras model.
        filepath: str or `pathlib.Path`. A `.weights.h5` or `.keras` file.
        skip_mismatch: bool. Skip weights whose shapes do not match, as in
            `model.load_weights`. Defaults to `False`.
    """
    path = _existing_file(filepath, (".weights.h5", ".keras"))
    if path.endswith(".keras"):
        _read_archive_config(path)
    # Keras loads layer by layer (and the optimizer, whose state a weights
    # file also holds), so a failure can leave some of them loaded.
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        variables += list(optimizer.variables)
    before = [keras.ops.convert_to_numpy(variable) for variable in variables]
    try:
        model.load_weights(path, skip_mismatch=skip_mismatch)
    except _LOAD_ERRORS as error:
        for variable, value in zip(variables, before):
            variable.assign(value)
        raise ValueError(
            f"Could not load the weights in '{path}' into model '{model.name}'; "
            f"the model's weights are unchanged. {error} Received: filepath={path}"
        ) from error


def _existing_file(filepath, suffixes) -> str:
    path = os.fspath(filepath)
    if not path.endswith(suffixes):
        raise ValueError(
            f"Expected a file ending in one of {suffixes}. Received: filepath={path}"
        )
    if not os.path.isfile(path):
        raise ValueError(f"No such file: '{path}'. Received: filepath={path}")
    return path


def _read_archive_config(path) -> dict[str, Any]:
    """Checks a `.keras` zip archive and returns its parsed `config.json`."""
    problem = None
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            if damaged is not None:
                problem = f"its member '{damaged}' fails its CRC check"
            elif "config.json" not in archive.namelist():
                problem = "it has no config.json"
            else:
                config_json = archive.read("config.json")
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as error:
        problem = f"it is not a readable zip archive ({error})"
    if problem is None:
        try:
            return json.loads(config_json)
        except ValueError as error:
            problem = f"its config.json is not valid JSON ({error})"
    raise ValueError(
        f"'{path}' is not a valid .keras file: {problem}. It may be truncated or "
        f"corrupted; save the model again. Received: filepath={path}"
    )


def _optimizers_of_other_backends(config) -> dict[str, Any]:
    """Maps backend-specific optimizer classes in `config` to portable ones.

    Keras on PyTorch saves `keras.optimizers.Adam` (and SGD, RMSprop, ...) as
    `keras.src.backend.torch.optimizers.torch_adam.Adam`. Loaded elsewhere,
    that class imports torch and runs torch ops on the other backend's
    tensors. The stored `registered_name` is the plain class name, which
    custom objects take precedence over, so this returns e.g.
    `{"Adam": keras.optimizers.Adam}`; the optimizer state loads unchanged.
    """
    here = keras.backend.backend()
    replacements = {}
    for node in _dicts(config):
        module = node.get("module")
        if not isinstance(module, str) or not module.startswith("keras.src.backend."):
            continue
        backend, _, rest = module[len("keras.src.backend.") :].partition(".")
        name = node.get("registered_name") or node.get("class_name")
        portable = getattr(keras.optimizers, str(node.get("class_name")), None)
        if backend != here and rest.startswith("optimizers") and portable is not None:
            replacements[name] = portable
    return replacements


def _dicts(node):
    """Yields every dict in a JSON tree."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _dicts(value)


def _prelu_entries(config):
    """Yields every serialized `keras_prelu.PReLU` in a model config."""
    for node in _dicts(config):
        if node.get("registered_name") == REGISTERED_NAME and isinstance(
            node.get("config"), dict
        ):
            yield node


def _check_prelu_configs(config, path, custom_objects) -> None:
    """Rebuilds each stored PReLU on its own, so a bad one is named."""
    for entry in _prelu_entries(config):
        layer_config = entry["config"]
        try:
            with keras.saving.custom_object_scope(custom_objects or {}):
                layer = PReLU.from_config(layer_config)
                if entry.get("build_config"):
                    layer.build_from_config(entry["build_config"])
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(
                f"The keras_prelu.PReLU layer '{layer_config.get('name')}' in "
                f"'{path}' has an invalid config: {error} Received: filepath={path}"
            ) from error


# Migration from and to keras.layers.PReLU ---------------------------------------


def from_builtin_prelu(model):
    """Returns a copy of `model` with `keras_prelu.PReLU` for `keras.layers.PReLU`.

    Every `keras.layers.PReLU` (exactly that class, also inside nested
    Sequential and Functional models) becomes a `keras_prelu.PReLU` with
    `layout="full"`, the same initializer, regularizer, constraint, name,
    dtype and slope values, so outputs are identical. `shared_axes` are
    translated: the built-in reads a non-positive axis `a` as input axis
    `rank + a - 1` (so `-1` shares the axis before the last), and the copy
    names that same axis. All other layers are cloned with their weights.
    The copy is not compiled.

    Args:
        model: A Sequential or Functional model, e.g. from
            `keras.saving.load_model` on a file saved with the built-in.

    Returns:
        A new model of the same structure.

    Example:

    >>> old = keras.saving.load_model("builtin_prelu.keras")
    >>> model = keras_prelu.saving.from_builtin_prelu(old)
    """
    return _replace_layers(model, keras.layers.PReLU, _builtin_to_ours)


def to_builtin_prelu(model):
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
            `shared_axes`) and the layer was never built.
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


def _copy_weights(old_layer, new_layer) -> None:
    values = old_layer.get_weights()
    if not values:
        return
    if not new_layer.built:
        new_layer.build_from_config(old_layer.get_build_config())
    targets = new_layer.weights
    if len(targets) != len(values) or any(
        np.size(value) != np.prod(target.shape, dtype=int)
        for value, target in zip(values, targets)
    ):
        raise ValueError(
            f"Layer '{old_layer.name}' could not be copied: its weights have "
            f"shapes {[np.shape(v) for v in values]}, the copy's "
            f"{[tuple(t.shape) for t in targets]}."
        )
    new_layer.set_weights(
        [np.reshape(value, target.shape) for value, target in zip(values, targets)]
    )


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
    if shared_axes is not None and any(axis <= 0 for axis in shared_axes):
        rank = _input_rank(layer)
        if rank is None:
            _raise_unknown_rank(
                layer,
                f"shared_axes={shared_axes} (read by keras.layers.PReLU as "
                "counted from the axis before the last) cannot be translated",
            )
        shared_axes = [axis if axis > 0 else rank + axis - 1 for axis in shared_axes]
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
            _raise_unknown_rank(
                layer, f"layout='{layer.layout}' cannot be written as shared_axes"
            )
        keep = set()
        if layer.layout == "channelwise":
            keep = {channel_axis(layer.data_format, rank)}
        shared_axes = [axis for axis in range(1, rank) if axis not in keep] or None
    base = {
        key: value
        for key, value in config.items()
        if key not in _PRELU_ARGS + _LAYOUT_ARGS
    }
    return keras.layers.PReLU(
        alpha_initializer=config["alpha_initializer"],
        alpha_regularizer=config["alpha_regularizer"],
        alpha_constraint=config["alpha_constraint"],
        shared_axes=shared_axes,
        **base,
    )


# Migration from torch.nn.PReLU --------------------------------------------------


def slopes_from_torch(weight, rank=4, data_format=None) -> np.ndarray:
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
            (4 for images). Only used for more than one slope. Defaults to 4.
        data_format: `"channels_last"` or `"channels_first"`: where the
            channels are in the Keras input (the torch input is always
            channels_first). Defaults to `keras.config.image_data_format()`.

    Returns:
        A NumPy array: the slopes, shaped for the Keras layer.

    Example:

    >>> alpha = keras_prelu.saving.slopes_from_torch(torch_prelu.weight)
    >>> model.get_layer("act").set_weights([alpha])
    """
    slopes = _torch_slopes(weight)
    if slopes.size == 1:
        return slopes.reshape(())
    data_format = check_data_format(data_format)
    if not isinstance(rank, int) or rank < 2:
        raise ValueError(
            "Per-channel slopes need inputs of rank >= 2, (batch, channels, ...). "
            f"Received: rank={rank!r}"
        )
    if data_format == "channels_first":
        shape = (slopes.size,) + (1,) * (rank - 2)
    else:
        shape = (1,) * (rank - 2) + (slopes.size,)
    return slopes.reshape(shape)


def from_torch_prelu(weight, rank=4, data_format=None, **kwargs) -> PReLU:
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

    >>> layer = keras_prelu.saving.from_torch_prelu(torch.nn.PReLU(16))
    """
    alpha = slopes_from_torch(weight, rank=rank, data_format=data_format)
    if alpha.ndim == 0:
        layer = PReLU(layout="scalar", **kwargs)
        layer.build((None,) * max(rank, 1))
    else:
        layer = PReLU(layout="channelwise", data_format=data_format, **kwargs)
        channels = alpha.size
        if layer.data_format == "channels_first":
            layer.build((None, channels) + (None,) * (rank - 2))
        else:
            layer.build((None,) * (rank - 1) + (channels,))
    layer.set_weights([alpha])
    return layer


def _torch_slopes(weight) -> np.ndarray:
    if hasattr(weight, "num_parameters") and hasattr(weight, "weight"):
        weight = weight.weight  # a torch.nn.PReLU module
    if hasattr(weight, "detach"):  # a torch tensor or parameter
        weight = weight.detach().cpu()
        try:
            weight = weight.numpy()
        except TypeError:  # bfloat16 and other dtypes NumPy lacks
            weight = weight.float().numpy()
    slopes = np.asarray(weight)
    if not np.issubdtype(slopes.dtype, np.floating):
        slopes = slopes.astype(keras.config.floatx())
    if slopes.ndim > 1 or slopes.size == 0:
        raise ValueError(
            "Expected the 1-D weight of a torch.nn.PReLU: 1 slope or one per "
            f"channel. Received: weight.shape={slopes.shape}"
        )
    return slopes.reshape(-1)
