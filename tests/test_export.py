"""Deployment: every `model.export` route, on every backend that Keras
supports it on, runs in its target's runtime with the model's outputs, with
each PReLU as one native op where the target has one (docs/deployment.md)."""

import os

import keras
import numpy as np
import pytest

import keras_prelu
from keras_prelu import export
from tests.helpers import ROOT
from tests.helpers import every_layout_input
from tests.helpers import every_layout_model
from tests.helpers import mixed_sign_slopes
from tests.helpers import skip_if_saved_by_a_newer_keras

BACKEND = keras.backend.backend()

# Elementwise ops a PReLU decomposes into when it is not one native node.
DECOMPOSED_ONNX_OPS = {"Where", "GreaterOrEqual", "Relu", "Neg"}
ONNX_CONVERTER = {"tensorflow": "tf2onnx", "jax": "jax2onnx", "torch": "torch"}


def _run_onnx(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


# ONNX -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_exports(tmp_path_factory):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip(ONNX_CONVERTER[keras.backend.backend()])
    keras.utils.set_random_seed(7)
    model = every_layout_model()
    model(every_layout_input())
    directory = tmp_path_factory.mktemp("onnx")
    model.export(directory / "plain.onnx", format="onnx", verbose=False)
    export.export_onnx(model, directory / "fused.onnx")
    return model, directory / "plain.onnx", directory / "fused.onnx"


def test_onnx_export_matches_keras(onnx_exports):
    model, plain, _ = onnx_exports
    x = every_layout_input(batch=2)
    np.testing.assert_allclose(
        _run_onnx(plain, x), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6
    )


def test_onnx_export_of_large_inputs(tmp_path):
    """Inputs large enough for the kernels' size-dependent paths export too."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip(ONNX_CONVERTER[keras.backend.backend()])
    model = keras.Sequential(
        [
            keras.Input((32, 32, 16)),
            keras_prelu.PReLU(layout="channelwise", alpha_initializer=mixed_sign_slopes(5)),
        ]
    )
    x = np.random.default_rng(3).standard_normal((2, 32, 32, 16)).astype("float32")
    model(x)
    (tmp_path / "plain").mkdir()
    model.export(tmp_path / "plain" / "plain.onnx", format="onnx", verbose=False)
    export.export_onnx(model, tmp_path / "fused.onnx")
    # One self-contained file, whatever side files the exporter wrote.
    assert sorted(os.listdir(tmp_path)) == ["fused.onnx", "plain"]
    for path in (tmp_path / "plain" / "plain.onnx", tmp_path / "fused.onnx"):
        np.testing.assert_allclose(
            _run_onnx(path, x), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6
        )


def test_export_onnx_makes_one_native_prelu_node_per_layer(onnx_exports):
    import onnx

    model, _, fused = onnx_exports
    ops = [node.op_type for node in onnx.load(fused).graph.node]
    assert ops.count("PRelu") == 4, ops
    assert not DECOMPOSED_ONNX_OPS & set(ops), ops
    x = every_layout_input(batch=2)
    np.testing.assert_allclose(
        _run_onnx(fused, x), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6
    )


def _graph(nodes, initializers, x_shape=(2, 3, 4), y_shape=None):
    import onnx
    from onnx import TensorProto
    from onnx import helper
    from onnx import numpy_helper

    graph = helper.make_graph(
        nodes,
        "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape or x_shape))],
        [
            numpy_helper.from_array(np.asarray(value, "float32"), name)
            for name, value in initializers.items()
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _where_graph(threshold=0.0, slope=(0.1, -0.2, 0.3, 0.4)):
    from onnx import helper

    return _graph(
        [
            helper.make_node("GreaterOrEqual", ["x", "zero"], ["nonnegative"]),
            helper.make_node("Mul", ["slope", "x"], ["scaled"]),
            helper.make_node("Where", ["nonnegative", "x", "scaled"], ["y"]),
        ],
        {"zero": threshold, "slope": slope},
        y_shape=np.broadcast_shapes((2, 3, 4), np.shape(slope)),
    )


def _relu_sum_graph(transposed=False):
    """TensorFlow's relu(x) + (-alpha) * relu(-x), as tf2onnx writes it."""
    from onnx import helper

    nodes = [
        helper.make_node("Relu", ["x"], ["positive"]),
        helper.make_node("Neg", ["x"], ["negated"]),
        helper.make_node("Relu", ["negated"], ["negative"]),
    ]
    if transposed:  # tf2onnx's NCHW <-> NHWC transposes around the product
        negative_slopes = -np.arange(1, 25, dtype="float32").reshape(3, 4, 2) / 10
        nodes += [
            helper.make_node("Transpose", ["negative"], ["nhwc"], perm=[0, 2, 3, 1]),
            helper.make_node("Mul", ["nhwc", "negated_slope"], ["scaled_nhwc"]),
            helper.make_node("Transpose", ["scaled_nhwc"], ["scaled"], perm=[0, 3, 1, 2]),
        ]
        x_shape = (2, 2, 3, 4)
    else:
        negative_slopes = np.array([-0.1, 0.2, -0.3, -0.4], "float32")
        nodes.append(helper.make_node("Mul", ["negated_slope", "negative"], ["scaled"]))
        x_shape = (2, 3, 4)
    nodes.append(helper.make_node("Add", ["positive", "scaled"], ["y"]))
    return _graph(nodes, {"negated_slope": negative_slopes}, x_shape), x_shape


def _assert_same_outputs(before, after, x_shape):
    x = np.random.default_rng(1).standard_normal(x_shape).astype("float32")
    x.flat[:4] = [np.nan, np.inf, -np.inf, 0.0]
    np.testing.assert_array_equal(
        _run_onnx_model(after, x), _run_onnx_model(before, x), strict=True
    )


def _run_onnx_model(model, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("pattern", ["where", "relu_sum", "relu_sum_transposed"])
def test_fuse_onnx_prelu_rewrites_each_backend_pattern(pattern):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    if pattern == "where":
        model, x_shape = _where_graph(), (2, 3, 4)
    else:
        model, x_shape = _relu_sum_graph(transposed=pattern == "relu_sum_transposed")
    original = model.__class__()
    original.CopyFrom(model)
    assert export.fuse_onnx_prelu(model) == 1
    assert [node.op_type for node in model.graph.node] == ["PRelu"]
    assert len(model.graph.initializer) == 1
    _assert_same_outputs(original, model, x_shape)


@pytest.mark.parametrize(
    "make",
    [
        lambda: _where_graph(threshold=0.5),  # not a PReLU
        lambda: _where_graph(slope=np.ones((5, 2, 3, 4))),  # the slope would grow x
    ],
)
def test_fuse_onnx_prelu_leaves_other_graphs_alone(make):
    pytest.importorskip("onnx")
    model = make()
    before = model.SerializeToString()
    assert export.fuse_onnx_prelu(model) == 0
    assert model.SerializeToString() == before


# TensorFlow: SavedModel and TFLite ---------------------------------------------------


@pytest.mark.requires_backend("tensorflow")
def test_saved_model_export_matches_keras(tmp_path):
    import tensorflow as tf

    model = every_layout_model()
    x = every_layout_input()
    model(x)
    model.export(tmp_path / "saved_model", verbose=False)
    restored = tf.saved_model.load(str(tmp_path / "saved_model"))
    np.testing.assert_allclose(
        restored.serve(tf.constant(x)).numpy(),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-6,
        atol=1e-6,
    )


def _tflite_interpreter(flatbuffer):
    """LiteRT's interpreter where it is installed, else TensorFlow's own.

    `tf.lite.Interpreter` is deprecated since TensorFlow 2.20 in favour of
    LiteRT (`pip install ai-edge-litert`).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_content=flatbuffer)


def _run_tflite(interpreter, x):
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _tflite_ops(interpreter):
    """`(op name, input dtype names)` for each op of the model, in order.

    No public API lists a flatbuffer's ops, so this reads the interpreter's
    private `_get_ops_details` (here in the tests only, never in the
    library), and skips the check where an interpreter no longer has it.
    Ops the runtime added for its delegates (XNNPACK) are left out.
    """
    ops_details = getattr(interpreter, "_get_ops_details", None)
    if ops_details is None:
        pytest.skip(f"{type(interpreter).__module__}.Interpreter cannot list its ops")
    dtypes = {tensor["index"]: tensor["dtype"] for tensor in interpreter.get_tensor_details()}
    return [
        (op["op_name"], [np.dtype(dtypes[i]).name for i in op["inputs"] if i >= 0])
        for op in ops_details()
        if op["op_name"] != "DELEGATE"
    ]


def _tflite_ops_and_output(model, directory, x):
    import tensorflow as tf

    model.export(directory, verbose=False)
    flatbuffer = tf.lite.TFLiteConverter.from_saved_model(str(directory)).convert()
    interpreter = _tflite_interpreter(flatbuffer)
    output = _run_tflite(interpreter, x)
    return {name for name, _ in _tflite_ops(interpreter)}, output


@pytest.mark.requires_backend("tensorflow")
@pytest.mark.parametrize(
    "shape,kwargs",
    [
        ((4, 4, 3), {}),
        ((4, 4, 3), {"shared_axes": [1, 2]}),
        ((4, 4, 3), {"layout": "channelwise"}),
        ((3, 4, 4), {"layout": "channelwise", "data_format": "channels_first"}),
        ((6,), {}),
        ((4, 4, 3), {"layout": "scalar"}),
        # Large enough per sample for the XLA-compiled TensorFlow forward.
        ((32, 32, 16), {"layout": "channelwise"}),
        ((32, 32, 16), {}),
    ],
)
def test_tflite_conversion_makes_a_native_prelu_op(tmp_path, shape, kwargs):
    pytest.importorskip("tensorflow")
    model = keras.Sequential(
        [keras.Input(shape), keras_prelu.PReLU(alpha_initializer=mixed_sign_slopes(4), **kwargs)]
    )
    x = np.random.default_rng(2).standard_normal((2, *shape)).astype("float32")
    ops, output = _tflite_ops_and_output(model, tmp_path / "saved_model", x)
    np.testing.assert_allclose(output, keras.ops.convert_to_numpy(model(x)), rtol=1e-6, atol=1e-6)
    assert ops == {"PRELU"}, ops


def _quantizable_cnn():
    """Conv-PReLU blocks with every layout, seeded, for quantization."""
    seeds = iter(range(10, 20))

    def conv(filters, strides=1):
        return keras.layers.Conv2D(
            filters,
            3,
            strides=strides,
            padding="same",
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
            bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=next(seeds)),
        )

    inputs = keras.Input((8, 8, 3))
    x = conv(8)(inputs)
    x = keras_prelu.PReLU(layout="channelwise", alpha_initializer=mixed_sign_slopes(6))(x)
    x = conv(16, strides=2)(x)
    x = keras_prelu.PReLU(shared_axes=[1, 2], alpha_initializer=mixed_sign_slopes(7))(x)
    x = conv(16)(x)
    x = keras_prelu.PReLU(layout="scalar", alpha_initializer=-0.2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(
        10, kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds))
    )(x)
    return keras.Model(inputs, outputs)


@pytest.mark.requires_backend("tensorflow")
def test_full_integer_int8_quantization_keeps_native_int8_prelu_ops(tmp_path):
    """Post-training int8 quantization (TFLITE_BUILTINS_INT8, int8 input and
    output) turns each PReLU into TFLite's int8 PRELU kernel, and the
    quantized model classifies as the float one does."""
    import tensorflow as tf

    model = _quantizable_cnn()
    rng = np.random.default_rng(4)
    calibration = rng.standard_normal((64, 8, 8, 3)).astype("float32")
    x = rng.standard_normal((128, 8, 8, 3)).astype("float32")
    model.export(tmp_path / "saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved_model"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[None]] for sample in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    interpreter = _tflite_interpreter(converter.convert())

    input_details = interpreter.get_input_details()[0]
    output_details = interpreter.get_output_details()[0]
    assert input_details["dtype"] == np.int8 and output_details["dtype"] == np.int8
    scale, zero_point = input_details["quantization"]
    quantized = np.clip(np.round(x / scale + zero_point), -128, 127).astype(np.int8)
    scale, zero_point = output_details["quantization"]
    y = (_run_tflite(interpreter, quantized).astype("float32") - zero_point) * scale

    expected = keras.ops.convert_to_numpy(model(x))
    agreement = np.mean(y.argmax(axis=-1) == expected.argmax(axis=-1))
    assert agreement >= 0.9, agreement
    ops = _tflite_ops(interpreter)
    prelus = [inputs for name, inputs in ops if name == "PRELU"]
    assert prelus == [["int8", "int8"]] * 3, ops
    assert not {"QUANTIZE", "DEQUANTIZE"} & {name for name, _ in ops}, ops


def test_export_onnx_warns_or_raises_when_a_layer_stays_unfused(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip(ONNX_CONVERTER[keras.backend.backend()])
    model = keras.Sequential(
        [keras.Input((4, 4, 3)), keras_prelu.PReLU(layout="channelwise", alpha_initializer=-0.5)]
    )
    model(every_layout_input())
    # Simulates an exporter whose PReLU pattern the rewrite does not know.
    monkeypatch.setattr(export, "fuse_onnx_prelu", lambda onnx_model: 0)
    if keras.backend.backend() == "torch":  # torch.onnx writes PRelu itself
        assert export.export_onnx(model, tmp_path / "model.onnx", strict=True) == 1
        return
    with pytest.raises(ValueError, match="0 native PRelu node.*1 keras_prelu.PReLU layers"):
        export.export_onnx(model, tmp_path / "strict.onnx", strict=True)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left
    with pytest.warns(UserWarning, match="0 native PRelu node"):
        assert export.export_onnx(model, tmp_path / "model.onnx") == 0
    np.testing.assert_allclose(
        _run_onnx(tmp_path / "model.onnx", every_layout_input()),
        keras.ops.convert_to_numpy(model(every_layout_input())),
        rtol=1e-6,
    )


def test_export_onnx_counts_the_layers_of_nested_models(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip(ONNX_CONVERTER[keras.backend.backend()])
    inner = keras.Sequential([keras.Input((4, 4, 3)), keras_prelu.PReLU(layout="scalar")])
    model = keras.Sequential([keras.Input((4, 4, 3)), inner, keras_prelu.PReLU()])
    model(every_layout_input())
    assert export.export_onnx(model, tmp_path / "model.onnx", strict=True) == 2


def test_export_onnx_writes_one_file_when_the_exporter_writes_side_files(tmp_path):
    """jax2onnx stores large weights in a `.onnx.data` file beside the graph."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip(ONNX_CONVERTER[keras.backend.backend()])
    model = keras.Sequential(
        [keras.Input((512,)), keras.layers.Dense(10_000), keras_prelu.PReLU(layout="scalar")]
    )
    x = np.random.default_rng(0).standard_normal((2, 512)).astype("float32")
    model(x)
    assert export.export_onnx(model, tmp_path / "model.onnx") == 1
    assert os.listdir(tmp_path) == ["model.onnx"]
    assert not any(
        init.data_location == onnx.TensorProto.EXTERNAL
        for init in onnx.load(tmp_path / "model.onnx", load_external_data=False).graph.initializer
    )
    np.testing.assert_allclose(
        _run_onnx(tmp_path / "model.onnx", x),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-4,
        atol=1e-4,
    )


def test_export_onnx_refuses_non_finite_slopes(tmp_path):
    pytest.importorskip("onnx")
    model = keras.Sequential([keras.Input((4,)), keras_prelu.PReLU(name="act")])
    model.get_layer("act").set_weights([np.array([0.25, np.inf, -0.5, 0.1], "float32")])
    with pytest.raises(ValueError, match="layer 'act' has NaN or infinite slopes"):
        export.export_onnx(model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_onnx_after_predict_alone(tmp_path):
    """Keras exports only models it has seen called; on JAX `predict` does not
    count as a call, and export_onnx checks the file with an eager one."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip(ONNX_CONVERTER[BACKEND])
    model = _deploy_cnn((8, 8, 3), 3, "channelwise")
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype("float32")
    expected = model.predict(x, verbose=0)
    assert export.export_onnx(model, tmp_path / "model.onnx", strict=True) == 2
    np.testing.assert_allclose(
        _run_onnx(tmp_path / "model.onnx", x), expected, rtol=1e-5, atol=1e-5
    )


def test_export_onnx_writes_nothing_that_onnxruntime_computes_differently(tmp_path, monkeypatch):
    """A graph that loads but computes other values (here: a slope whose sign
    the rewrite lost) is refused, and nothing is written."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip(ONNX_CONVERTER[BACKEND])
    from onnx import numpy_helper

    model = _deploy_cnn((8, 8, 3), 3, "channelwise")
    fuse = export.fuse_onnx_prelu

    def fuse_and_flip_slopes(onnx_model):
        fused = fuse(onnx_model)
        prelu = next(node for node in onnx_model.graph.node if node.op_type == "PRelu")
        for init in onnx_model.graph.initializer:
            if init.name == prelu.input[1]:
                init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
        return fused

    monkeypatch.setattr(export, "fuse_onnx_prelu", fuse_and_flip_slopes)
    with pytest.raises(ValueError, match="computes output 0 differently.*not written"):
        export.export_onnx(model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_onnx_writes_nothing_that_onnxruntime_cannot_load(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip(ONNX_CONVERTER[BACKEND])
    model = _deploy_cnn((8, 8, 3), 3, "channelwise")

    def break_shapes(onnx_model):
        # The slope of another layout: PRelu's slope no longer broadcasts.
        from onnx import helper

        node = next(node for node in onnx_model.graph.node if node.op_type == "Conv")
        onnx_model.graph.initializer.append(
            helper.make_tensor("bad_slope", 1, [5, 1, 1, 7], [0.1] * 35)
        )
        prelu = helper.make_node("PRelu", [node.output[0], "bad_slope"], ["broken"])
        node.output[0], prelu.output[0] = "broken_input", node.output[0]
        prelu.input[0] = "broken_input"
        onnx_model.graph.node.insert(list(onnx_model.graph.node).index(node) + 1, prelu)
        return 0

    monkeypatch.setattr(export, "fuse_onnx_prelu", break_shapes)
    with pytest.raises(ValueError, match="does not run in onnxruntime.*not written"):
        export.export_onnx(model, tmp_path / "model.onnx", fuse_prelu=True)
    assert list(tmp_path.iterdir()) == []


def test_export_onnx_without_known_inputs_asks_for_a_sample(tmp_path):
    pytest.importorskip("onnx")

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.act = keras_prelu.PReLU()

        def call(self, x):
            return self.act(x)

    with pytest.raises(ValueError, match="pass `sample_input`.*Received: sample_input=None"):
        export.export_onnx(Subclassed(), tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


# Stacked convolutions over a grid of shapes and layouts --------------------------------


def _deploy_cnn(shape, channels, layout, seed=0):
    """Two Conv2D + PReLU blocks (channels_last whatever the global format),
    the second PReLU the functional op with constant slopes."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(channels, 3, padding="same", data_format="channels_last")(inputs)
    options = {"data_format": "channels_last"} if layout == "channelwise" else {}
    x = keras_prelu.PReLU(layout=layout, alpha_initializer=mixed_sign_slopes(seed), **options)(x)
    x = keras.layers.Conv2D(channels, 3, padding="same", data_format="channels_last")(x)
    slopes = np.random.default_rng(seed).uniform(-0.5, 0.8, (channels,)).astype("float32")
    return keras.Model(inputs, keras_prelu.prelu(x, slopes))


# The input sizes at which tf2onnx converted two channel-wise PReLU layers into
# files onnxruntime refused (0.3.0's kernel wrapped the pattern in a tf.cond),
# and two at which it did not.
GRID_SHAPES = [(10, 10, 6), (8, 8, 3), (56, 56, 32), (16, 16, 16), (5, 7, 2)]
GRID_LAYOUTS = ["channelwise", "full", "scalar"]


@pytest.mark.parametrize("layout", GRID_LAYOUTS)
@pytest.mark.parametrize("shape", GRID_SHAPES, ids=lambda shape: "x".join(map(str, shape)))
def test_onnx_export_over_a_grid_of_shapes_and_layouts(tmp_path, shape, layout):
    """Keras's own ONNX file and the fused one both load in onnxruntime and
    reproduce the model, with one PRelu node per PReLU layer."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip(ONNX_CONVERTER[BACKEND])
    # The model of issue 19, as a new user writes it: default slopes and the
    # global data format.
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv2D(shape[-1], 3, padding="same"),
            keras_prelu.PReLU(layout=layout),
            keras.layers.Conv2D(shape[-1], 3, padding="same"),
            keras_prelu.PReLU(layout=layout),
        ]
    )
    x = np.random.default_rng(1).standard_normal((2, *shape)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x))
    model.export(tmp_path / "plain.onnx", format="onnx", verbose=False)
    np.testing.assert_allclose(
        _run_onnx(tmp_path / "plain.onnx", x), expected, rtol=1e-5, atol=1e-5
    )
    fused = onnx.load(tmp_path / "plain.onnx")
    export.fuse_onnx_prelu(fused)
    ops = [node.op_type for node in fused.graph.node]
    assert ops.count("PRelu") == 2 and not {"If", "Where", "Neg"} & set(ops), ops
    np.testing.assert_allclose(_run_onnx_model(fused, x), expected, rtol=1e-5, atol=1e-5)


# OpenVINO -----------------------------------------------------------------------------

# What a PReLU must not leave in an exported graph: control flow, a finiteness
# check, or its decomposition.
NOT_NATIVE_OPENVINO_OPS = {"If", "IsFinite", "ReduceLogicalAnd", "Select", "Relu", "Negative"}


def _openvino_run(ov_model, x):
    import openvino

    # f32, not the bf16 the CPU plugin picks by default on some processors.
    compiled = openvino.Core().compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(x)[0]


def _openvino_ops(ov_model):
    return [op.get_type_name() for op in ov_model.get_ordered_ops()]


@pytest.mark.requires_backend("tensorflow", "torch")
@pytest.mark.parametrize("layout", GRID_LAYOUTS)
def test_openvino_export_makes_native_prelu_ops(tmp_path, layout):
    openvino = pytest.importorskip("openvino")
    model = _deploy_cnn((10, 10, 6), 6, layout)
    x = np.random.default_rng(1).standard_normal((1, 10, 10, 6)).astype("float32")
    # Keras's OpenVINO export takes a str, not a path.
    model.export(str(tmp_path / "model.xml"), format="openvino", verbose=False)
    ov_model = openvino.Core().read_model(tmp_path / "model.xml")
    ops = _openvino_ops(ov_model)
    assert ops.count("PRelu") == 2 and not NOT_NATIVE_OPENVINO_OPS & set(ops), ops
    np.testing.assert_allclose(
        _openvino_run(ov_model, x), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-5
    )


def test_openvino_reads_export_onnx_files(tmp_path):
    """JAX's route to OpenVINO, since Keras cannot export a JAX model to it
    (its converter does not read XlaCallModule): OpenVINO reads export_onnx's
    file, native PRelu included."""
    openvino = pytest.importorskip("openvino")
    pytest.importorskip(ONNX_CONVERTER[BACKEND])
    model = _deploy_cnn((10, 10, 6), 6, "channelwise")
    x = np.random.default_rng(1).standard_normal((2, 10, 10, 6)).astype("float32")
    expected = model.predict(x, verbose=0)
    export.export_onnx(model, tmp_path / "model.onnx", strict=True)
    ov_model = openvino.Core().read_model(tmp_path / "model.onnx")
    ops = _openvino_ops(ov_model)
    assert ops.count("PRelu") == 2 and not NOT_NATIVE_OPENVINO_OPS & set(ops), ops
    np.testing.assert_allclose(_openvino_run(ov_model, x), expected, rtol=1e-5, atol=1e-5)


# LiteRT -------------------------------------------------------------------------------


@pytest.mark.requires_backend("tensorflow")
@pytest.mark.parametrize("layout", GRID_LAYOUTS)
def test_litert_export_makes_native_prelu_ops(tmp_path, layout):
    pytest.importorskip("ai_edge_litert")
    model = _deploy_cnn((10, 10, 6), 6, layout)
    x = np.random.default_rng(1).standard_normal((1, 10, 10, 6)).astype("float32")
    model.export(str(tmp_path / "model.tflite"), format="litert", verbose=False)
    interpreter = _tflite_interpreter((tmp_path / "model.tflite").read_bytes())
    output = _run_tflite(interpreter, x)
    assert [name for name, _ in _tflite_ops(interpreter)].count("PRELU") == 2
    assert {name for name, _ in _tflite_ops(interpreter)} == {"CONV_2D", "PRELU"}
    np.testing.assert_allclose(output, keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.requires_backend("tensorflow")
@pytest.mark.parametrize("name", ["channelwise_last", "functional_op", "full"])
def test_litert_from_a_jax_model_through_its_keras_file(tmp_path, name):
    """Keras exports LiteRT from TensorFlow (and PyTorch) only: a JAX model
    goes through its `.keras` file, loaded here under TensorFlow."""
    pytest.importorskip("ai_edge_litert")
    path = ROOT / "saved_models" / "0.2.0" / "jax" / f"{name}.keras"
    skip_if_saved_by_a_newer_keras(path)
    stored = np.load(path.with_suffix(".npz"), allow_pickle=False)
    model = keras_prelu.saving.load_model(path, compile=False)
    model.export(str(tmp_path / "model.tflite"), format="litert", verbose=False)
    interpreter = _tflite_interpreter((tmp_path / "model.tflite").read_bytes())
    output = _run_tflite(interpreter, stored["input"])
    assert "PRELU" in {name for name, _ in _tflite_ops(interpreter)}
    np.testing.assert_allclose(output, stored["output"], rtol=1e-5, atol=1e-5)


@pytest.mark.requires_backend("torch")
def test_litert_export_from_torch(tmp_path):
    """Needs the litert-torch package (not in this project's extras). It runs,
    but not as native PRELU ops: litert-torch (0.10) lowers every PReLU form
    it was given, `aten.prelu` included, to elementwise ops."""
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    model = _deploy_cnn((10, 10, 6), 6, "channelwise")
    x = np.random.default_rng(1).standard_normal((1, 10, 10, 6)).astype("float32")
    model.export(str(tmp_path / "model.tflite"), format="litert", verbose=False)
    interpreter = _tflite_interpreter((tmp_path / "model.tflite").read_bytes())
    np.testing.assert_allclose(
        _run_tflite(interpreter, x), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-5
    )


# PyTorch: .pt2 and traced graphs ------------------------------------------------------


@pytest.mark.requires_backend("torch")
def test_torch_export_to_pt2_loads_back(tmp_path):
    import torch

    model = _deploy_cnn((10, 10, 6), 6, "channelwise")
    x = np.random.default_rng(1).standard_normal((1, 10, 10, 6)).astype("float32")
    try:
        model.export(str(tmp_path / "model.pt2"), format="torch", verbose=False)
    except ValueError as error:  # Keras 3.14 has no .pt2 export
        if "Unrecognized format" not in str(error):
            raise
        pytest.skip(f"Keras {keras.__version__} cannot export .pt2: {error}")
    program = torch.export.load(tmp_path / "model.pt2")
    output = program.module()(torch.from_numpy(x)).detach().cpu().numpy()
    np.testing.assert_allclose(output, keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-5)
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert "aten.where.self" in targets and not any("prelu_kernel" in t for t in targets), targets


@pytest.mark.requires_backend("torch")
@pytest.mark.parametrize("layout", [*GRID_LAYOUTS, "channels_first", "middle_axis"])
def test_torch_jit_trace_records_public_ops_only(layout):
    """What Keras's OpenVINO route traces: the public `aten::prelu` (or the
    `where` form for a slope shared along the outer axes only), never a
    private kernel."""
    import torch

    options = {
        "channels_first": {"layout": "channelwise", "data_format": "channels_first"},
        "middle_axis": {"shared_axes": [2]},
    }.get(layout, {"layout": layout})
    model = keras.Sequential([keras.Input((4, 5, 6)), keras_prelu.PReLU(**options)])
    x = torch.randn(2, 4, 5, 6, device=keras.ops.convert_to_tensor(0.0).device)
    traced = torch.jit.trace(model, (x,), check_trace=False)
    ops = set(_traced_ops(traced.inlined_graph))
    assert not {op for op in ops if "prelu_kernel" in op}, ops
    assert ("aten::where" if layout == "middle_axis" else "aten::prelu") in ops, ops
    torch.testing.assert_close(traced(x), model(x))


def _traced_ops(graph):
    """Every node kind of a TorchScript graph, inside the subgraphs that
    record autograd Functions too."""
    for node in graph.nodes():
        yield node.kind()
        if "Subgraph" in node.attributeNames():
            yield from _traced_ops(node.g("Subgraph"))
        for block in node.blocks():
            yield from _traced_ops(block)
