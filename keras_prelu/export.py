"""Deploying models that use `keras_prelu.PReLU`: ONNX with native `PRelu`.

- `export_onnx`: `model.export(format="onnx")`, then one native `PRelu`
  node per PReLU layer, whichever backend wrote the graph.
- `fuse_onnx_prelu`: the rewrite on its own, for an `onnx.ModelProto`.

SavedModel and TFLite on the TensorFlow backend need nothing extra:
`model.export(path)` and the TFLite converter already give TFLite's native
`PRELU` op.
"""

import os
import tempfile
import warnings
from typing import TYPE_CHECKING
from typing import Any

import keras
import numpy as np

from keras_prelu._layer import PReLU

if TYPE_CHECKING:
    import onnx

__all__ = ["export_onnx", "fuse_onnx_prelu"]


def export_onnx(
    model: keras.Model,
    filepath: str | os.PathLike,
    fuse_prelu: bool = True,
    strict: bool = False,
    **kwargs: Any,
) -> int:
    """Exports `model` to ONNX with one native `PRelu` node per PReLU layer.

    Runs `model.export(filepath, format="onnx", **kwargs)` (tf2onnx on
    TensorFlow, jax2onnx on JAX, torch.onnx on PyTorch), then
    `fuse_onnx_prelu` on the graph: TensorFlow and JAX write a PReLU as
    several elementwise ops, which runtimes do not fuse back. The result is
    one self-contained file (weights included), written once everything
    succeeded, never half-way. Needs the `onnx` package.

    If the graph ends up with fewer `PRelu` nodes than the model has
    `keras_prelu.PReLU` layers (nested models included), for instance
    because a new exporter version writes a pattern the rewrite does not
    know, the file is still correct but slower: this warns, or raises with
    `strict=True`. A `keras.layers.PReLU` is fused only where its exporter
    writes one of the patterns of `fuse_onnx_prelu` (TensorFlow).

    A model whose slopes are NaN or infinite (a diverged training run) is
    refused with a `ValueError`: the converters do not carry such slopes over
    exactly.

    Args:
        model: A Keras model that has been called or built with an Input.
        filepath: str or `pathlib.Path`. Where to write the `.onnx` file.
        fuse_prelu: bool. Whether to fuse. Defaults to `True`.
        strict: bool. Raise a `ValueError` instead of warning when a PReLU
            layer did not become a `PRelu` node; nothing is written then.
            Defaults to `False`.
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
    layers = list(_prelu_layers(model))
    for layer in layers:
        if layer.built and not np.isfinite(keras.ops.convert_to_numpy(layer.alpha)).all():
            # tf2onnx rewrites the exact form such slopes need into arithmetic
            # that turns them into NaN.
            raise ValueError(
                f"PReLU layer '{layer.name}' has NaN or infinite slopes, which the ONNX "
                "converters do not carry over exactly (did training diverge?). "
                f"Received: filepath={path}"
            )
    kwargs.setdefault("verbose", False)
    # Exporters may write weights to side files next to the graph (jax2onnx
    # does): export into a scratch folder beside the target, save one
    # self-contained file there, and move only that file into place.
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path) or ".") as scratch:
        exported = os.path.join(scratch, "exported.onnx")
        model.export(exported, format="onnx", **kwargs)
        onnx_model = onnx.load(exported)
        if fuse_prelu:
            fuse_onnx_prelu(onnx_model)
        native = sum(node.op_type == "PRelu" for node in onnx_model.graph.node)
        if fuse_prelu and native < len(layers):
            message = (
                f"The ONNX graph has {native} native PRelu node(s) for the model's {len(layers)} "
                "keras_prelu.PReLU layers: the others stay elementwise ops, which compute the "
                "same values more slowly. The exporter may write a pattern fuse_onnx_prelu "
                "does not know. "
                f"Received: filepath={path}"
            )
            if strict:
                raise ValueError(message)
            warnings.warn(message, stacklevel=2)
        final = os.path.join(scratch, "final.onnx")
        onnx.save(onnx_model, final)
        os.replace(final, path)
    return native


def _prelu_layers(model):
    """Yields the `keras_prelu.PReLU` layers of `model`, nested models included."""
    for layer in getattr(model, "layers", ()):
        if isinstance(layer, PReLU):
            yield layer
        elif isinstance(layer, keras.Model):
            yield from _prelu_layers(layer)


def fuse_onnx_prelu(onnx_model: "onnx.ModelProto") -> int:
    """Rewrites the PReLU patterns of an `onnx.ModelProto` into `PRelu` nodes.

    The patterns, `x` any tensor and `s` a slope that broadcasts to it:

    - `Where(GreaterOrEqual(x, 0), x, Mul(x, s))`, from JAX and PyTorch;
    - `Add(Relu(x), Mul(Relu(Neg(x)), c))` with a constant `c = -s`,
      from TensorFlow, also with tf2onnx's transposes around the `Mul`.

    Both equal `PRelu(x, s)` for every input, NaN and infinities included,
    for a finite slope. An `If` node whose condition is a constant (the
    TensorFlow kernel checks that the slopes are finite; tf2onnx keeps that
    check as an `If`) is first replaced by the branch it takes. The model is
    changed in place (nodes replaced, unused nodes and
    initializers removed) and checked with `onnx.checker`; save it yourself
    with `onnx.save`.

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
    inlined = _inline_constant_ifs(onnx_model.graph)
    graph = _OnnxGraph(onnx_model)
    fused = 0
    for node in list(onnx_model.graph.node):
        match = graph.match_where(node) or graph.match_relu_sum(node)
        if match is not None and graph.replace_with_prelu(node, *match):
            fused += 1
    if fused or inlined:
        graph.remove_dead()
        onnx.checker.check_model(onnx_model)
    return fused


def _inline_constant_ifs(graph) -> int:
    """Replaces each `If` node whose condition is a constant by the nodes of
    the branch it takes; returns how many.

    On TensorFlow the layer's inference kernel is a `tf.cond` on whether the
    slopes are finite (see `keras_prelu/_kernels/tensorflow.py`); tf2onnx
    freezes the slopes, so the condition becomes a constant, but keeps the
    `If` node, with the PReLU pattern inside its branch.
    """
    from onnx import helper
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    names = {name for node in graph.node for name in [*node.input, *node.output]}
    names |= {value.name for value in [*graph.input, *graph.output, *graph.initializer]}
    inlined = 0
    for node in list(graph.node):
        condition = constants.get(node.input[0]) if node.op_type == "If" else None
        if condition is None or condition.size != 1:
            continue
        wanted = "then_branch" if bool(condition.reshape(())) else "else_branch"
        branch = next(helper.get_attribute_value(a) for a in node.attribute if a.name == wanted)
        produced = {name for inner in branch.node for name in inner.output}
        produced |= {init.name for init in branch.initializer}
        if produced & names or any(
            a.type in (a.GRAPH, a.GRAPHS) for inner in branch.node for a in inner.attribute
        ):
            continue  # a name clash or nested subgraphs: leave it alone
        renames = {}
        copies = []
        for inner_out, outer_out in zip(branch.output, node.output, strict=True):
            if inner_out.name in produced:
                renames[inner_out.name] = outer_out
            else:  # the branch passes an outer value straight through
                copies.append(helper.make_node("Identity", [inner_out.name], [outer_out]))
        index = list(graph.node).index(node)
        graph.node.remove(node)
        new_nodes = []
        for inner in branch.node:
            copy = inner.__class__()
            copy.CopyFrom(inner)
            copy.input[:] = [renames.get(name, name) for name in copy.input]
            copy.output[:] = [renames.get(name, name) for name in copy.output]
            new_nodes.append(copy)
        for offset, new in enumerate(new_nodes + copies):
            graph.node.insert(index + offset, new)
        graph.initializer.extend(branch.initializer)
        names |= produced
        inlined += 1
    return inlined


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
