"""ONNX export with one native `PRelu` node per `keras_prelu.PReLU` layer.

Other `model.export` formats need nothing from here (docs/deployment.md).
"""

import os
import tempfile
import warnings
from typing import TYPE_CHECKING
from typing import Any

import keras
import numpy as np

from keras_prelu._layer import PReLU
from keras_prelu.callbacks import prelu_layers

if TYPE_CHECKING:
    import onnx

__all__ = ["export_onnx", "fuse_onnx_prelu"]

# Unknown non-batch sizes of the sample input `export_onnx` checks with.
_SAMPLE_SIZE = 32


# Long for its docstring; the body is one export, checked step by step.
def export_onnx(
    model: keras.Model,
    filepath: str | os.PathLike,
    fuse_prelu: bool = True,
    strict: bool = False,
    sample_input: Any = None,
    **kwargs: Any,
) -> int:
    """Exports `model` to ONNX with one native `PRelu` node per PReLU layer.

    Runs `model.export(filepath, format="onnx", **kwargs)`, then
    `fuse_onnx_prelu`, and writes one self-contained file only once
    onnxruntime reproduces the model's outputs on `sample_input` (else a
    `ValueError`). Slopes that are NaN or infinite raise a `ValueError`.
    Needs `onnx` and `onnxruntime`; docs/deployment.md has the details.

    Args:
        model: A Keras model with known inputs (built with `keras.Input`,
            or called once); after `predict` alone is enough.
        filepath: str or `pathlib.Path`. Where to write the `.onnx` file.
        fuse_prelu: bool. Whether to fuse. Defaults to `True`.
        strict: bool. Raise a `ValueError`, not warn, when a PReLU layer did
            not become a `PRelu` node. Defaults to `False`.
        sample_input: The input the exported file is checked on, as the
            model takes it. Defaults to `None`: random values of the
            model's input shapes, with unknown sizes 2 (batch) and 32.
        **kwargs: Passed to `model.export`, such as `input_signature` and
            `opset_version`. `verbose` defaults to `False`.

    Returns:
        The number of `PRelu` nodes in the written graph.

    Example:

    >>> keras_prelu.export.export_onnx(model, "model.onnx")
    2
    """
    import onnx

    path = os.fspath(filepath)
    layers = [layer for layer in prelu_layers(model).values() if isinstance(layer, PReLU)]
    for layer in layers:
        if layer.built and not np.isfinite(keras.ops.convert_to_numpy(layer.alpha)).all():
            raise ValueError(
                f"PReLU layer '{layer.name}' has NaN or infinite slopes (did training "
                f"diverge?), whose outputs are unspecified. Received: filepath={path}"
            )
    if sample_input is None:
        sample_input = _sample_input(model)
    # Keras exports only called models; on JAX `predict` does not count.
    expected = keras.tree.flatten(model(sample_input))
    kwargs.setdefault("verbose", False)
    # Exporters may write weights to side files (jax2onnx does): export into a
    # scratch folder, and move only one self-contained file into place.
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path) or ".") as scratch:
        exported = os.path.join(scratch, "exported.onnx")
        model.export(exported, format="onnx", **kwargs)
        onnx_model = onnx.load(exported)
        if fuse_prelu:
            fuse_onnx_prelu(onnx_model)
        native = sum(node.op_type == "PRelu" for node in onnx_model.graph.node)
        if fuse_prelu and native < len(layers):
            message = (
                f"The ONNX graph has {native} native PRelu node(s) for the model's "
                f"{len(layers)} keras_prelu.PReLU layers: the others stay elementwise ops, "
                "which compute the same values more slowly. The exporter may write a "
                f"pattern fuse_onnx_prelu does not know. Received: filepath={path}"
            )
            if strict:
                raise ValueError(message)
            warnings.warn(message, stacklevel=2)
        final = os.path.join(scratch, "final.onnx")
        onnx.save(onnx_model, final)
        _check_in_onnxruntime(final, sample_input, expected, path)
        os.replace(final, path)
    return native


def _sample_input(model):
    """Random inputs of the model's input shapes (unknown sizes filled in)."""
    try:
        inputs = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"Model '{model.name}' has no known inputs ({error}): pass `sample_input`, "
            "an input the model takes. Received: sample_input=None"
        ) from error
    rng = np.random.default_rng(0)

    def sample(tensor):
        shape = [2] + [_SAMPLE_SIZE if dim is None else dim for dim in tensor.shape[1:]]
        if keras.backend.is_float_dtype(tensor.dtype):
            return rng.standard_normal(shape).astype(tensor.dtype)
        return np.zeros(shape, tensor.dtype)

    return keras.tree.map_structure(sample, inputs)


def _check_in_onnxruntime(onnx_path, sample_input, expected, path) -> None:
    """Raises unless onnxruntime loads the file and reproduces `expected`."""
    import onnxruntime
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    errors = (state.Fail, state.InvalidArgument, state.InvalidGraph, state.RuntimeException)
    try:
        session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        arrays = [keras.ops.convert_to_numpy(x) for x in keras.tree.flatten(sample_input)]
        names = [value.name for value in session.get_inputs()]
        outputs = session.run(None, dict(zip(names, arrays, strict=True)))
    except errors as error:
        raise ValueError(
            "The exported ONNX file does not run in onnxruntime, so it was not written "
            f"(for inputs unlike the sample, pass `sample_input`): {error} "
            f"Received: filepath={path}"
        ) from error
    for index, (got, want) in enumerate(zip(outputs, expected, strict=True)):
        want = keras.ops.convert_to_numpy(want)
        scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-4 * scale):
            error = np.max(np.abs(got - want)) if got.shape == want.shape else "shape"
            raise ValueError(
                f"The exported ONNX file computes output {index} differently from the model "
                f"(largest difference: {error}), so it was not written. "
                f"Received: filepath={path}"
            )


def fuse_onnx_prelu(onnx_model: "onnx.ModelProto") -> int:
    """Rewrites the PReLU patterns of an `onnx.ModelProto` into `PRelu` nodes.

    The patterns, equal to `PRelu(x, s)` for a finite slope `s`:
    `Where(GreaterOrEqual(x, 0), x, Mul(x, s))` (JAX, PyTorch) and
    `Add(Relu(x), Mul(Relu(Neg(x)), -s))` (TensorFlow, also with tf2onnx's
    transposes around the `Mul`). The model is changed in place and checked
    with `onnx.checker`; save it yourself.

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
        self.constants = {init.name: numpy_helper.to_array(init) for init in self.graph.initializer}
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
        return all(
            s == 1 or s == d or d is None for s, d in zip(slope_shape, trailing, strict=True)
        )

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
        # An initializer that is also a graph input stays (else a required input).
        used = outputs | {value.name for value in graph.input}
        used |= {name for node in graph.node for name in node.input}
        for init in [init for init in graph.initializer if init.name not in used]:
            graph.initializer.remove(init)
        produced = {name for node in graph.node for name in node.output}
        for value in [value for value in graph.value_info if value.name not in produced]:
            graph.value_info.remove(value)


def _perm(transpose_node) -> list[int]:
    perms = [
        list(attribute.ints) for attribute in transpose_node.attribute if attribute.name == "perm"
    ]
    return perms[0] if perms else []


def _undo(first, then) -> bool:
    """Whether transposing by `first` then by `then` is the identity."""
    return len(first) == len(then) > 0 and all(first[then[i]] == i for i in range(len(then)))
