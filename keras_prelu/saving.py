"""Saving, loading, migrating and exporting models that use `keras_prelu.PReLU`.

- `load_model` and `load_weights`: Keras's loaders, with the file checked
  first and every failure raised as a `ValueError` that names the file (and
  the layer, where one is to blame). The file is only ever read.
- `from_builtin_prelu` and `to_builtin_prelu`: swap `keras.layers.PReLU` for
  `keras_prelu.PReLU` in a model and back, weights kept, outputs identical.
- `slopes_from_torch` and `from_torch_prelu`: import the weights of a
  `torch.nn.PReLU`, from NumPy arrays or the module itself; torch itself is
  never imported here.
- `export_onnx` and `fuse_onnx_prelu`: ONNX export with one native `PRelu`
  node per layer, whichever backend wrote the graph.
"""

import json
import os
import zipfile
import zlib
from typing import Any

import keras
import numpy as np

from keras_prelu.layer import PReLU

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
            keep = {1 if layer.data_format == "channels_first" else rank - 1}
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
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
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


# ONNX export ------------------------------------------------------------------


def export_onnx(model, filepath, fuse_prelu=True, **kwargs) -> None:
    """Exports `model` to ONNX with one native `PRelu` node per PReLU.

    Runs `model.export(filepath, format="onnx", **kwargs)` (tf2onnx on
    TensorFlow, jax2onnx on JAX, torch.onnx on PyTorch), then
    `fuse_onnx_prelu` on the file: each backend writes a PReLU as several
    elementwise ops, which runtimes do not fuse back. Needs the `onnx`
    package.

    Args:
        model: A Keras model that has been called or built with an Input.
        filepath: str or `pathlib.Path`. Where to write the `.onnx` file.
        fuse_prelu: bool. Whether to fuse. Defaults to `True`.
        **kwargs: Passed to `model.export`, such as `input_signature` and
            `opset_version`. `verbose` defaults to `False`.

    Example:

    >>> keras_prelu.saving.export_onnx(model, "model.onnx")
    """
    kwargs.setdefault("verbose", False)
    model.export(filepath, format="onnx", **kwargs)
    if fuse_prelu:
        import onnx

        onnx_model = onnx.load(os.fspath(filepath))
        if fuse_onnx_prelu(onnx_model):
            onnx.save(onnx_model, os.fspath(filepath))


def fuse_onnx_prelu(onnx_model) -> int:
    """Rewrites the PReLU patterns of an `onnx.ModelProto` into `PRelu` nodes.

    The patterns, `x` any tensor and `s` a slope that broadcasts to it:

    - `Where(GreaterOrEqual(x, 0), x, Mul(x, s))`, from JAX and PyTorch;
    - `Add(Relu(x), Mul(Relu(Neg(x)), c))` with a constant `c = -s`,
      from TensorFlow, also with tf2onnx's transposes around the `Mul`.

    Both equal `PRelu(x, s)` for every input, NaN and infinities included.
    The model is changed in place and checked with `onnx.checker`.

    Args:
        onnx_model: An `onnx.ModelProto`.

    Returns:
        The number of `PRelu` nodes made.
    """
    import onnx

    opset = next(
        (entry.version for entry in onnx_model.opset_import if entry.domain in ("", "ai.onnx")),
        0,
    )
    if opset < 7:  # PRelu broadcasts its slope from opset 7
        return 0
    graph = _OnnxGraph(onnx_model)
    fused = 0
    for node in list(onnx_model.graph.node):
        match = graph.match_where(node) or graph.match_relu_sum(node)
        if match is not None and graph.replace_with_prelu(node, *match):
            fused += 1
    if fused:
        graph.remove_dead()
        onnx.checker.check_model(onnx_model)
    return fused


class _OnnxGraph:
    """Just enough graph bookkeeping for `fuse_onnx_prelu`."""

    def __init__(self, model):
        import onnx
        from onnx import numpy_helper

        self.model = model
        self.graph = model.graph
        self.constants = {
            init.name: numpy_helper.to_array(init) for init in self.graph.initializer
        }
        for node in self.graph.node:
            if node.op_type == "Constant" and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        inferred = onnx.shape_inference.infer_shapes(model)
        self.shapes = {}
        for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
            tensor_type = value.type.tensor_type
            if tensor_type.HasField("shape"):
                self.shapes[value.name] = [
                    dim.dim_value if dim.HasField("dim_value") else None
                    for dim in tensor_type.shape.dim
                ]
        for name, array in self.constants.items():
            self.shapes[name] = list(array.shape)
        self.producers = {out: node for node in self.graph.node for out in node.output}
        self.replaced = []

    def _producer(self, name, op_type):
        node = self.producers.get(name)
        return node if node is not None and node.op_type == op_type else None

    def match_where(self, node):
        if node.op_type != "Where":
            return None
        condition, x, negative = node.input
        compare = self._producer(condition, "GreaterOrEqual")
        if compare is None or compare.input[0] != x or not self._is_zero(compare.input[1]):
            return None
        product = self._producer(negative, "Mul")
        if product is None or x not in product.input:
            return None
        slope = product.input[1] if product.input[0] == x else product.input[0]
        return x, slope, None

    def match_relu_sum(self, node):
        if node.op_type != "Add":
            return None
        for positive, negative in (node.input, node.input[::-1]):
            relu = self._producer(positive, "Relu")
            if relu is None:
                continue
            slope = self._negative_branch_slope(negative, relu.input[0])
            if slope is not None:
                return relu.input[0], None, slope
        return None

    def _negative_branch_slope(self, name, x):
        """The slope `s` if `name` is `relu(-x) * (-s)`, else None."""
        outer = self._producer(name, "Transpose")
        product = self._producer(outer.input[0] if outer else name, "Mul")
        if product is None:
            return None
        for term, factor in (product.input, product.input[::-1]):
            if factor not in self.constants:
                continue
            inner = self._producer(term, "Transpose") if outer else None
            if outer and (inner is None or not _undo(_perm(inner), _perm(outer))):
                continue
            relu = self._producer(inner.input[0] if inner else term, "Relu")
            negate = relu and self._producer(relu.input[0], "Neg")
            if negate is None or negate.input[0] != x:
                continue
            slope = -self.constants[factor]
            if outer:
                perm = _perm(outer)
                slope = np.transpose(
                    slope.reshape((1,) * (len(perm) - slope.ndim) + slope.shape), perm
                )
            while slope.ndim and slope.shape[0] == 1:
                slope = slope[0]
            return slope
        return None

    def _is_zero(self, name) -> bool:
        value = self.constants.get(name)
        return value is not None and value.size > 0 and not np.any(value)

    def _broadcasts(self, slope_shape, x) -> bool:
        x_shape = self.shapes.get(x)
        if slope_shape is None or x_shape is None or len(slope_shape) > len(x_shape):
            return False
        trailing = x_shape[len(x_shape) - len(slope_shape) :]
        return all(s == 1 or s == d or d is None for s, d in zip(slope_shape, trailing))

    def replace_with_prelu(self, node, x, slope_name, slope_value) -> bool:
        import onnx
        from onnx import numpy_helper

        shape = self.shapes.get(slope_name) if slope_value is None else list(slope_value.shape)
        if not self._broadcasts(shape, x):
            return False
        if slope_value is not None:
            slope_name = f"{node.output[0]}_prelu_slope"
            self.graph.initializer.append(numpy_helper.from_array(slope_value, slope_name))
        prelu = onnx.helper.make_node(
            "PRelu", [x, slope_name], [node.output[0]], name=f"{node.name or node.output[0]}_prelu"
        )
        nodes = self.graph.node
        index = list(nodes).index(node)
        nodes.remove(node)
        nodes.insert(index, prelu)
        self.producers[node.output[0]] = prelu
        return True

    def remove_dead(self) -> None:
        """Drops the nodes, initializers and shapes nothing uses any more."""
        graph = self.graph
        outputs = {value.name for value in graph.output}
        while True:
            used = outputs | {name for node in graph.node for name in node.input}
            dead = [node for node in graph.node if not used.intersection(node.output)]
            if not dead:
                break
            for node in dead:
                graph.node.remove(node)
        # An initializer that is also a graph input must stay: dropping it would
        # turn it into a required input.
        used = outputs | {value.name for value in graph.input}
        used |= {name for node in graph.node for name in node.input}
        for init in [init for init in graph.initializer if init.name not in used]:
            graph.initializer.remove(init)
        produced = {name for node in graph.node for name in node.output}
        for value in [value for value in graph.value_info if value.name not in produced]:
            graph.value_info.remove(value)


def _perm(transpose_node) -> list[int]:
    from onnx import helper

    for attribute in transpose_node.attribute:
        if attribute.name == "perm":
            return list(helper.get_attribute_value(attribute))
    return []


def _undo(first, then) -> bool:
    """Whether transposing by `first` then by `then` is the identity."""
    return len(first) == len(then) > 0 and all(first[then[i]] == i for i in range(len(then)))
