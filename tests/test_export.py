"""Deployment: SavedModel, TFLite and ONNX exports match the Keras outputs."""

import os

import keras
import numpy as np
import pytest

import keras_prelu
from keras_prelu import export
from tests.helpers import every_layout_input
from tests.helpers import every_layout_model
from tests.helpers import mixed_sign_slopes

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
    return session.run(None, {"x": x})[0]


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


@pytest.mark.requires_backend("tensorflow")
def test_saved_model_gives_the_reference_values_for_non_finite_slopes(tmp_path):
    """The exported graph computes the fused op pattern only for finite
    slopes (a tf.cond on the slope, folded away for a constant slope by the
    converters); an infinite slope still maps x >= 0 to x, not NaN."""
    import tensorflow as tf

    # A diverged slope: the initializer itself refuses non-finite values.
    model = keras.Sequential([keras.Input((4,)), keras_prelu.PReLU(name="act")])
    model.get_layer("act").set_weights([np.full((4,), np.inf, "float32")])
    x = np.array([[-2.0, -0.0, 0.0, 3.0]], "float32")
    model(x)
    model.export(tmp_path / "saved_model", verbose=False)
    restored = tf.saved_model.load(str(tmp_path / "saved_model"))
    np.testing.assert_array_equal(restored.serve(tf.constant(x)).numpy(), [[-np.inf, 0, 0, 3]])


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
