"""Loading models that use `keras_prelu.PReLU`, with the file checked first.

- `load_model`: `keras.saving.load_model`, after checking the archive and
  every stored `keras_prelu.PReLU` config; a file that fails a check, or
  that Keras cannot load, gives a `ValueError` that names the file (and the
  layer, where one is to blame).
- `load_weights`: `model.load_weights`, all weights or none.

What the checks protect against, before Keras reads anything, on every
supported Keras version (Keras 3.15 has its own, laxer, bomb limits;
3.14 has none):

- decompression bombs: zip members, HDF5 datasets and npz arrays whose
  declared sizes far exceed the bytes the file stores;
- truncated or corrupted files (zip CRCs, unreadable HDF5 or npz);
- HDF5 links and external or virtual datasets, which read other files;
- an invalid `keras_prelu.PReLU` config, named with its layer.

What they do not protect against: a layer config (of any layer, this
package's included) that declares huge weights. Keras allocates a layer's
weights from its config before it reads the stored values, so a small file
whose `Dense` declares 50,000,000 units allocates gigabytes, with this
loader as with Keras's. Load untrusted files in a process with a memory
limit. Code in the file is refused by Keras's own `safe_mode`.

Migration from `keras.layers.PReLU` and `torch.nn.PReLU` lives in
`keras_prelu.migration`, ONNX export in `keras_prelu.export`. The 0.1.0
names `saving.from_builtin_prelu`, `to_builtin_prelu`, `from_torch_prelu`
and `slopes_from_torch` still work but warn; they go in 0.4.
"""

import contextlib
import io
import json
import math
import os
import zipfile
import zlib
from typing import Any

import h5py
import keras
import numpy as np

from keras_prelu import _deprecation
from keras_prelu._layer import PReLU
from keras_prelu._layer import alpha_shape

__all__ = ["load_model", "load_weights"]

# Moved to keras_prelu.migration in 0.2.0: old name -> its module now.
_MOVED = {
    "from_builtin_prelu": "keras_prelu.migration",
    "to_builtin_prelu": "keras_prelu.migration",
    "from_torch_prelu": "keras_prelu.migration",
    "slopes_from_torch": "keras_prelu.migration",
}


def __getattr__(name: str) -> Any:
    return _deprecation.moved_attribute(__name__, name, _MOVED)


REGISTERED_NAME = keras.saving.get_registered_name(PReLU)

# What a file may declare, checked before anything is inflated or allocated.
# Keras writes `.keras` members and HDF5 datasets uncompressed, so a member or
# dataset declaring far more than it stores is a bomb, not a model. Keras 3.15
# refuses a zip member or npz array above 4 GiB that expands more than 100
# times, and an HDF5 dataset above 4 GiB that expands more than 1000 times;
# these limits are stricter, so anything Keras refuses is refused here first,
# and inflating a whole archive (for its CRCs) costs at most
# `_MAX_EXPANSION` times the file's size.
_MAX_EXPANSION = 100
# Below this many bytes, a member's or a dataset's expansion is not checked:
# inflating it costs next to nothing.
_SMALL_BYTES = 64 << 20
# Keras writes a few KB of config.json per layer.
_MAX_CONFIG_BYTES = 64 << 20
_CHUNK_BYTES = 1 << 20
# What the readers below raise for a file they cannot read: zipfile
# (BadZipFile, LargeZipFile; RuntimeError for an encrypted member,
# NotImplementedError for an unknown compression method; zlib.error, EOFError
# and OSError from the decompressors), h5py (OSError, KeyError, ValueError,
# RuntimeError) and NumPy's header reader (ValueError). Anything else is a bug,
# and surfaces as itself.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    KeyError,
    ValueError,
    RuntimeError,
    NotImplementedError,
)
# What `keras.saving.load_model` raises for a file it cannot load: the readers'
# errors, and TypeError for a config whose arguments a class does not take.
_LOAD_ERRORS = (*_READ_ERRORS, TypeError)


class _Damaged(Exception):
    """The file cannot be read as what it claims to be."""


class _Hostile(Exception):
    """The file declares far more than it stores."""


# Loading ---------------------------------------------------------------------


def load_model(
    filepath: str | os.PathLike,
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,
    safe_mode: bool = True,
) -> keras.Model:
    """Loads a `.keras` model, checking the file before Keras reads it.

    Same arguments and result as `keras.saving.load_model`. The checks (the
    module docstring lists them, and what they do not cover) read the file
    only. A failed check, or an error Keras raises for a file it cannot load,
    gives a `ValueError` naming the file (and the layer at fault, where one
    is); other exceptions (`MemoryError`, `KeyboardInterrupt`, a bug) pass as
    they are.

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
    config = _check_keras_archive(path, read_config=True)
    _check_prelu_configs(config, path, custom_objects)
    custom_objects = {**_optimizers_of_other_backends(config), **(custom_objects or {})}
    try:
        model = keras.saving.load_model(
            path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
        )
    except _LOAD_ERRORS as error:
        raise ValueError(
            f"Could not load the model in '{path}': {type(error).__name__}: {error} "
            f"Received: filepath={path}"
        ) from error
    _check_optimizer_backend(model, path)
    return model


def load_weights(
    model: keras.Model, filepath: str | os.PathLike, skip_mismatch: bool = False
) -> None:
    """Loads weights into `model`, all of them or none.

    Like `model.load_weights(filepath)`, with the file checked first as in
    `load_model` (but for `config.json`, not read). A bad file, or a weight
    whose shape does not match its layer, gives a `ValueError` naming the
    file; then, and on any other exception (passed on), every weight of
    `model` and of its optimizer is as it was before the call.

    Args:
        model: A built Keras model.
        filepath: str or `pathlib.Path`. A `.weights.h5` or `.keras` file.
        skip_mismatch: bool. Skip weights whose shapes do not match, as in
            `model.load_weights`. Defaults to `False`.
    """
    path = _existing_file(filepath, (".weights.h5", ".keras"))
    if path.endswith(".keras"):
        _check_keras_archive(path, read_config=False)
    else:
        with _refusing(path, "weights file"):
            _check_h5(path, "it")
    # Keras loads layer by layer (and the optimizer, whose state a weights
    # file also holds), so a failure can leave some of them loaded.
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        variables += list(optimizer.variables)
    before = [keras.ops.convert_to_numpy(variable) for variable in variables]
    try:
        model.load_weights(path, skip_mismatch=skip_mismatch)
    except BaseException as error:
        for variable, value in zip(variables, before, strict=True):
            variable.assign(value)
        if not isinstance(error, _LOAD_ERRORS):
            raise
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


# Checking files ----------------------------------------------------------------


@contextlib.contextmanager
def _refusing(path, kind):
    """Turns what a check finds, or a reader raises, into a `ValueError`
    naming the file at `path`, a `kind` of file."""
    try:
        yield
    except _Hostile as error:
        raise ValueError(
            f"Refusing to load '{path}': {error}. It may be a decompression bomb "
            f"or otherwise hostile. Received: filepath={path}"
        ) from None
    except (_Damaged, *_READ_ERRORS) as error:
        detail = str(error) if isinstance(error, _Damaged) else f"{type(error).__name__}: {error}"
        raise ValueError(
            f"'{path}' is not a valid {kind}: {detail}. It may be truncated or "
            f"corrupted; save it again. Received: filepath={path}"
        ) from (error.__cause__ if isinstance(error, _Damaged) else error)


def _check_keras_archive(path, read_config) -> Any:
    """Checks a `.keras` archive without trusting what it declares.

    Returns its parsed `config.json` (None unless `read_config`).
    """
    with _refusing(path, ".keras file"):
        config_json = _read_keras_archive(path, read_config)
        if not read_config:
            return None
        try:
            config = json.loads(config_json)
        except (ValueError, RecursionError) as error:
            raise _Damaged(
                f"its config.json is not valid JSON ({type(error).__name__}: {error})"
            ) from error
        if not isinstance(config, dict):
            raise _Damaged(f"its config.json holds a {type(config).__name__}, not a model config")
        return config


def _read_keras_archive(path, read_config) -> bytes | None:
    try:
        archive = zipfile.ZipFile(path)
    except _READ_ERRORS as error:
        raise _Damaged(f"it is not a readable zip archive ({error})") from error
    with archive:
        infos = archive.infolist()
        _check_expansion(infos, os.path.getsize(path), "its")
        names = {info.filename for info in infos}
        if read_config:
            if "config.json" not in names:
                raise _Damaged("it has no config.json")
            declared = archive.getinfo("config.json").file_size
            if declared > _MAX_CONFIG_BYTES:
                raise _Hostile(
                    f"its config.json declares {_size(declared)}, more than the "
                    f"{_size(_MAX_CONFIG_BYTES)} a model config may take"
                )
        config_json = None
        for info in infos:
            keep = read_config and info.filename == "config.json"
            data = _inflate(archive, info, keep)
            if keep:
                config_json = data
        for name, check in (("model.weights.h5", _check_h5), ("model.weights.npz", _check_npz)):
            if name in names:
                _check_member(archive, archive.getinfo(name), check)
    return config_json


def _check_expansion(infos, stored_bytes, whose) -> None:
    """Refuses members that declare far more than they (or the file) store."""
    for info in infos:
        if info.file_size > _SMALL_BYTES and info.file_size > _MAX_EXPANSION * info.compress_size:
            raise _Hostile(
                f"{whose} member '{info.filename}' declares {_size(info.file_size)} but "
                f"stores only {_size(info.compress_size)}, more than {_MAX_EXPANSION} "
                "times less"
            )
    total = sum(info.file_size for info in infos)
    if total > _SMALL_BYTES and total > _MAX_EXPANSION * stored_bytes:
        raise _Hostile(
            f"{whose} {len(infos)} members declare {_size(total)} together, more than "
            f"{_MAX_EXPANSION} times the {_size(stored_bytes)} stored"
        )


def _inflate(archive, info, keep) -> bytes | None:
    """Reads a member to its end in chunks (checking its CRC); its bytes if `keep`."""
    chunks = []
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK_BYTES):
                if keep:
                    chunks.append(chunk)
    except _READ_ERRORS as error:
        if "CRC" in str(error):
            raise _Damaged(f"its member '{info.filename}' fails its CRC check") from error
        raise _Damaged(f"its member '{info.filename}' cannot be read ({error})") from error
    return b"".join(chunks) if keep else None


def _check_member(archive, info, check) -> None:
    try:
        with archive.open(info) as member:
            # Keras writes members uncompressed, and those can be read in
            # place; a compressed one (bounded by `_check_expansion`) is read
            # into memory, as Keras itself does, rather than seeked through.
            if info.compress_type == zipfile.ZIP_STORED:
                check(member, f"its member '{info.filename}'")
            else:
                check(io.BytesIO(member.read()), f"its member '{info.filename}'")
    except _READ_ERRORS as error:
        raise _Damaged(f"its member '{info.filename}' cannot be read ({error})") from error


def _check_h5(source, where) -> None:
    """Refuses HDF5 links, external or virtual datasets, and shape bombs.

    Only the layout is read: no dataset's values are.
    """
    with h5py.File(source, "r") as file:
        pending = [file]
        seen = set()
        while pending:
            group = pending.pop()
            for name in group:
                link = group.get(name, getlink=True)
                if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
                    raise _Hostile(
                        f"{where} HDF5 weights hold a {type(link).__name__} "
                        f"'{group.name.rstrip('/')}/{name}'"
                    )
                item = group[name]
                if item.id in seen:  # a hard link back to a visited object
                    continue
                seen.add(item.id)
                if isinstance(item, h5py.Group):
                    pending.append(item)
                elif isinstance(item, h5py.Dataset):
                    _check_dataset(item, where)


def _check_dataset(dataset, where) -> None:
    if dataset.external:
        raise _Hostile(f"{where} HDF5 weights hold an external dataset '{dataset.name}'")
    if dataset.is_virtual:
        raise _Hostile(f"{where} HDF5 weights hold a virtual dataset '{dataset.name}'")
    shape = dataset.shape or ()
    declared = math.prod(shape) * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    if declared > _SMALL_BYTES and declared > _MAX_EXPANSION * stored:
        raise _Hostile(
            f"{where} HDF5 dataset '{dataset.name}' declares shape {shape} "
            f"({_size(declared)}) but stores only {_size(stored)}"
        )


def _check_npz(source, where) -> None:
    """Refuses npz arrays whose headers declare more data than they hold."""
    with zipfile.ZipFile(source) as npz:
        infos = npz.infolist()
        _check_expansion(infos, sum(info.compress_size for info in infos), f"{where} npz")
        for info in infos:
            with npz.open(info) as member:
                major, _ = np.lib.format.read_magic(member)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if major == 1
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read_header(member)
            declared = math.prod(shape) * dtype.itemsize
            if declared > info.file_size:
                raise _Hostile(
                    f"{where} npz array '{info.filename}' declares shape {shape} "
                    f"({_size(declared)}) but holds only {_size(info.file_size)}"
                )


def _size(n) -> str:
    if n >= 1 << 30:
        return f"{n} bytes ({n / (1 << 30):.1f} GiB)"
    if n >= 1 << 20:
        return f"{n} bytes ({n / (1 << 20):.1f} MiB)"
    return f"{n} bytes"


# Checking the model config --------------------------------------------------------


def _dicts(node):
    """Yields every dict in a JSON tree, without recursion (configs can be deep)."""
    pending = [node]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            yield node
            pending.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            pending.extend(reversed(node))


def _prelu_entries(config):
    """Yields every serialized `keras_prelu.PReLU` in a model config."""
    for node in _dicts(config):
        if node.get("registered_name") == REGISTERED_NAME and isinstance(node.get("config"), dict):
            yield node


def _check_prelu_configs(config, path, custom_objects) -> None:
    """Validates each stored PReLU on its own, so a bad one is named.

    Nothing is built: the slope shape each layer would get from its stored
    `build_config` is computed, which validates it.
    """
    for entry in _prelu_entries(config):
        layer_config = entry["config"]
        try:
            with keras.saving.custom_object_scope(custom_objects or {}):
                layer = PReLU.from_config(layer_config)
            build_config = entry.get("build_config")
            if build_config:
                if not isinstance(build_config, dict) or "input_shape" not in build_config:
                    raise ValueError(
                        "`build_config` must be a dict with an 'input_shape'. "
                        f"Received: build_config={build_config!r}"
                    )
                alpha_shape(layer, build_config["input_shape"])
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(
                f"The keras_prelu.PReLU layer {layer_config.get('name')!r} in "
                f"'{path}' has an invalid config: {error} Received: filepath={path}"
            ) from error


# Optimizers saved under another backend -------------------------------------------

_BACKEND_MODULES = "keras.src.backend."


def _optimizers_of_other_backends(config) -> dict[str, Any]:
    """Maps backend-specific optimizer classes in `config` to portable ones.

    Keras on PyTorch saves `keras.optimizers.Adam` (and SGD, RMSprop, ...) as
    `keras.src.backend.torch.optimizers.torch_adam.Adam`. Loaded elsewhere,
    that class imports torch and runs torch ops on the other backend's
    tensors. The stored `registered_name` is the plain class name, which
    custom objects take precedence over, so this returns e.g.
    `{"Adam": keras.optimizers.Adam}`; the optimizer state loads unchanged.
    Whether that worked is checked on the loaded model
    (`_check_optimizer_backend`), not assumed.
    """
    here = keras.backend.backend()
    replacements = {}
    for node in _dicts(config):
        module = node.get("module")
        if not isinstance(module, str) or not module.startswith(_BACKEND_MODULES):
            continue
        backend, _, rest = module[len(_BACKEND_MODULES) :].partition(".")
        name = node.get("registered_name") or node.get("class_name")
        portable = getattr(keras.optimizers, str(node.get("class_name")), None)
        if (
            backend != here
            and rest.startswith("optimizers")
            and isinstance(name, str)
            and isinstance(portable, type)
            and issubclass(portable, keras.optimizers.Optimizer)
        ):
            replacements[name] = portable
    return replacements


def _check_optimizer_backend(model, path) -> None:
    """Refuses a model whose optimizer came back as another backend's class."""
    optimizer = getattr(model, "optimizer", None)
    module = type(optimizer).__module__ if optimizer is not None else ""
    if not module.startswith(_BACKEND_MODULES):
        return
    backend = module[len(_BACKEND_MODULES) :].partition(".")[0]
    if backend != keras.backend.backend():
        raise ValueError(
            f"The optimizer in '{path}' was loaded as {type(optimizer).__qualname__} "
            f"from {module}, a class of the {backend} backend, which cannot train "
            f"under {keras.backend.backend()}. Load it with compile=False and compile "
            f"it again. Received: filepath={path}"
        )
