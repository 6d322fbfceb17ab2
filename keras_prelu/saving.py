"""Loading models that use `keras_prelu.PReLU`, with the file checked first.

- `load_model`: `keras.saving.load_model`, after checking the archive and
  every stored `keras_prelu.PReLU` config; every failure is a `ValueError`
  that names the file (and the layer, where one is to blame).
- `load_weights`: `model.load_weights`, all weights or none.

The file is only ever read. Migration from `keras.layers.PReLU` and
`torch.nn.PReLU` lives in `keras_prelu.migration`, ONNX export in
`keras_prelu.export`.
"""

import json
import os
import zipfile
import zlib
from typing import Any

import keras

from keras_prelu._layer import PReLU

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
        for variable, value in zip(variables, before, strict=True):
            variable.assign(value)
        raise ValueError(
            f"Could not load the weights in '{path}' into model '{model.name}'; "
            f"the model's weights are unchanged. {error} Received: filepath={path}"
        ) from error


def _existing_file(filepath, suffixes) -> str:
    path = os.fspath(filepath)
    if not path.endswith(suffixes):
        raise ValueError(f"Expected a file ending in one of {suffixes}. Received: filepath={path}")
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
        if node.get("registered_name") == REGISTERED_NAME and isinstance(node.get("config"), dict):
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
