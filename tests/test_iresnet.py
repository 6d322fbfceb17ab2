"""examples/iresnet.py: InsightFace IResNet checkpoints converted to Keras, TFLite and ONNX.

The PyTorch side is examples/iresnet_torch.py, a randomly initialised IResNet
with the parameter names of InsightFace's `arcface_torch/backbones/iresnet.py`,
so a real `backbone.pth` has the same keys. Most tests use a small variant (one
block per stage, 32x32 inputs: 2x2 features before `fc`) to stay fast.
"""

import os
import re

import keras
import numpy as np
import pytest

import keras_prelu
from examples import iresnet

torch = pytest.importorskip("torch")

from examples import iresnet_torch  # noqa: E402
from examples.iresnet_torch import TorchIResNet  # noqa: E402
from examples.iresnet_torch import randomize  # noqa: E402
from examples.iresnet_torch import torch_embeddings  # noqa: E402
from tests.helpers import ROOT  # noqa: E402

SMALL = {"depth": (1, 1, 1, 1), "input_size": 32, "num_features": 64}
SMALL_ARGS = ["--depth", "1,1,1,1", "--input-size", "32"]
# Embeddings are compared relative to their norm, as the converter does.
RTOL = 1e-4
# Ops that only a decomposed PReLU brings into the ONNX graph.
DECOMPOSED_ONNX_OPS = {"Where", "GreaterOrEqual", "Relu"}


def assert_embeddings_close(actual, expected):
    actual = np.asarray(actual)
    assert actual.shape == expected.shape
    assert iresnet.relative_error(actual, expected) < RTOL
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


@pytest.fixture(scope="module")
def small_torch_model():
    return randomize(TorchIResNet(**SMALL), seed=1)


@pytest.fixture
def checkpoint(tmp_path, small_torch_model):
    path = tmp_path / "backbone.pth"
    torch.save(small_torch_model.state_dict(), path)
    return path


def _images(size, batch=3, seed=5):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, 3)).astype("float32")


def _files(directory):
    return sorted(os.listdir(directory))


# Architecture ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"depth": 18},
        {"depth": 34},
        {"depth": 50},
        {"depth": 100},
        {"depth": (1, 2, 1, 1), "input_size": 32, "num_features": 128},
    ],
    ids=["iresnet18", "iresnet34", "iresnet50", "iresnet100", "small"],
)
def test_one_keras_layer_per_torch_module_with_its_parameter_count(config):
    """The converter fills each Keras layer from the torch module of the same name."""
    model = iresnet.build_iresnet(**config, kernel_initializer="zeros")
    shapes = iresnet_torch.state_dict_shapes(**config)
    layers = {layer.name.replace("_", "."): layer for layer in model.layers if layer.weights}
    assert sorted(layers) == sorted({key.rsplit(".", 1)[0] for key in shapes})
    for name, layer in layers.items():
        own = [shape for key, shape in shapes.items() if key.rsplit(".", 1)[0] == name]
        assert layer.count_params() == sum(np.prod(shape) for shape in own), name
    assert model.output_shape == (None, config.get("num_features", 512))


def test_iresnet18_names_and_strides():
    model = iresnet.build_iresnet(18, kernel_initializer="zeros")
    assert model.name == "iresnet18"
    assert len(keras_prelu.callbacks.prelu_layers(model)) == 1 + sum(iresnet.DEPTHS[18])
    assert model.get_layer("layer3_0_downsample_0").strides == (2, 2)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"depth": 19}, "Received: depth=19"),
        ({"depth": (1, 1, 1)}, r"Received: depth=\(1, 1, 1\)"),
        ({"depth": (1, 0, 1, 1)}, r"Received: depth=\(1, 0, 1, 1\)"),
        ({"input_size": 100}, "Received: input_size=100"),
        ({"num_features": 0}, "Received: num_features=0"),
        ({"dropout": 1.5}, "Received: rate=1.5"),
    ],
)
def test_build_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        iresnet.build_iresnet(**{**SMALL, "kernel_initializer": "zeros", **kwargs})


# Conversion ------------------------------------------------------------------------


def test_converted_model_matches_torch(small_torch_model):
    model = iresnet.convert_state_dict(small_torch_model.state_dict(), **SMALL)
    images = _images(32)
    expected = torch_embeddings(small_torch_model, images)
    assert_embeddings_close(iresnet.embeddings(model, images), expected)


def test_wrapped_half_precision_checkpoint_converts_under_other_global_settings(
    small_torch_model,
):
    """A DataParallel key prefix inside InsightFace's training checkpoint, in float16,
    under a global channels_first format and mixed precision policy."""
    keras.config.set_image_data_format("channels_first")
    keras.config.set_dtype_policy("mixed_float16")
    half = {key: value.half() for key, value in small_torch_model.state_dict().items()}
    wrapped = {"epoch": 3, "state_dict_backbone": {f"module.{k}": v for k, v in half.items()}}
    model = iresnet.convert_state_dict(wrapped, **SMALL)
    assert {weight.dtype for weight in model.weights} == {"float32"}
    reference = TorchIResNet(**SMALL)
    reference.load_state_dict({key: value.float() for key, value in half.items()})
    images = _images(32, batch=2)
    assert_embeddings_close(
        iresnet.embeddings(model, images), torch_embeddings(reference.eval(), images)
    )


# Command line: .keras, ONNX and TFLite -----------------------------------------------


def _run_cli(checkpoint, directory, *extra):
    argv = ["--torch-checkpoint", str(checkpoint), *SMALL_ARGS, "--out", str(directory / "m.keras")]
    return iresnet.main(argv + list(extra))


def test_cli_writes_keras_and_onnx_that_match_torch(tmp_path, checkpoint, small_torch_model):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    backend = keras.backend.backend()
    names = ["m.keras", "m.onnx"] + (["m.tflite"] if backend == "tensorflow" else [])
    extra = ["--onnx", str(tmp_path / "m.onnx")]
    if backend == "tensorflow":
        extra += ["--tflite", str(tmp_path / "m.tflite")]
    errors = _run_cli(checkpoint, tmp_path, *extra)
    assert set(errors) == {str(tmp_path / name) for name in names}
    assert all(error < RTOL for error in errors.values())
    umask = os.umask(0)
    os.umask(umask)
    for path in errors:  # temporary files are private; the outputs are not
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    assert _files(tmp_path) == sorted(["backbone.pth", *names])
    images = _images(32)
    expected = torch_embeddings(small_torch_model, images)
    blocks = 1 + sum(SMALL["depth"])

    model = keras_prelu.saving.load_model(tmp_path / "m.keras")
    assert len(keras_prelu.callbacks.prelu_layers(model)) == blocks
    assert_embeddings_close(iresnet.embeddings(model, images), expected)

    ops = [node.op_type for node in onnx.load(tmp_path / "m.onnx").graph.node]
    assert ops.count("PRelu") == blocks, ops
    assert not DECOMPOSED_ONNX_OPS & set(ops), ops
    assert_embeddings_close(iresnet.run_onnx(tmp_path / "m.onnx", images), expected)

    if backend == "tensorflow":
        outputs, ops = iresnet.run_tflite((tmp_path / "m.tflite").read_bytes(), images)
        assert ops.count("PRELU") == blocks, ops
        assert not set(iresnet.DECOMPOSED_TFLITE_OPS) & set(ops), ops
        assert_embeddings_close(outputs, expected)


@pytest.mark.requires_backend("jax", "torch")
def test_cli_refuses_tflite_off_tensorflow(tmp_path, checkpoint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run_cli(checkpoint, tmp_path, "--tflite", str(tmp_path / "m.tflite"))
    assert exit_info.value.code == 2
    assert "needs the TensorFlow backend" in capsys.readouterr().err
    assert _files(tmp_path) == ["backbone.pth"]


def test_missing_onnx_packages_name_an_existing_extra(tmp_path, checkpoint, monkeypatch):
    monkeypatch.setattr(iresnet.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="needs the `onnx` and `onnxruntime`") as error:
        iresnet.convert_checkpoint(checkpoint, tmp_path / "m.keras", onnx=tmp_path / "m.onnx")
    monkeypatch.undo()
    extra = re.search(r"pip install 'keras-prelu\[([\w-]+)\]'", str(error.value))[1]
    with open(ROOT / "pyproject.toml", encoding="utf-8") as handle:
        assert re.search(rf"^{extra} = \[", handle.read(), re.MULTILINE), extra
    assert _files(tmp_path) == ["backbone.pth"]


def test_failed_output_check_leaves_nothing_behind(tmp_path, checkpoint, monkeypatch):
    """An ONNX export that is written but wrong: every file is left as it was."""

    def export_a_wrong_model(model, filepath, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"not an ONNX model")

    monkeypatch.setattr(keras_prelu.export, "export_onnx", export_a_wrong_model)
    monkeypatch.setattr(iresnet, "run_onnx", lambda path, images: np.zeros((len(images), 64)))
    (tmp_path / "m.keras").write_bytes(b"an older file, kept as it was")
    with pytest.raises(ValueError, match="The ONNX model gives embeddings .* Nothing was written"):
        iresnet.convert_checkpoint(
            checkpoint, tmp_path / "m.keras", onnx=tmp_path / "m.onnx", **SMALL
        )
    assert _files(tmp_path) == ["backbone.pth", "m.keras"]
    assert (tmp_path / "m.keras").read_bytes() == b"an older file, kept as it was"


# Bad checkpoints ------------------------------------------------------------------------


def _state(seed=1, **config):
    config = {**SMALL, **config}
    return randomize(TorchIResNet(**config), seed=seed).state_dict()


def _missing_key():
    state = _state()
    del state["layer2.0.prelu.weight"]
    return state


def _extra_key():
    state = _state()
    state["head.weight"] = torch.zeros(3)
    return state


def _wrong_shape():
    state = _state()
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 5, 5)
    return state


def _non_finite():
    state = _state()
    state["bn2.running_mean"][3] = float("nan")
    return state


@pytest.mark.parametrize(
    "make,message",
    [
        (_missing_key, r"1 key missing: 'layer2.0.prelu.weight'"),
        (_extra_key, r"1 key unexpected: 'head.weight'"),
        (
            _wrong_shape,
            r"1 key with the wrong shape: 'layer1.0.conv1.weight \(64, 64, 5, 5\) "
            r"\(expected \(64, 64, 3, 3\)\)'",
        ),
        (
            lambda: _state(depth=(1, 2, 1, 2)),
            r"36 keys unexpected: 'layer2.1.bn1.weight', .* and 32 more\..*"
            r"blocks per stage are \[1, 2, 1, 2\]: try depth=\[1, 2, 1, 2\]",
        ),
        (
            lambda: _state(input_size=48),
            r"'fc.weight \(64, 4608\) \(expected \(64, 2048\)\)'.*fits input_size=48",
        ),
        (_non_finite, r"1 key with NaN or infinite values: 'bn2.running_mean'"),
        (lambda: [torch.zeros(3)], r"is not a state_dict .*Received: an object of type list"),
        (
            lambda: {"state_dict": _state(), "model": _state()},
            r"2 entries are not tensors or numeric arrays: 'state_dict', 'model'",
        ),
    ],
    ids=[
        "missing",
        "extra",
        "shape",
        "depth",
        "input_size",
        "nan",
        "not_a_dict",
        "two_wrappers",
    ],
)
def test_bad_checkpoint_is_refused_and_nothing_is_written(tmp_path, make, message):
    path = tmp_path / "backbone.pth"
    torch.save(make(), path)
    outputs = {"out": tmp_path / "m.keras", "onnx": tmp_path / "m.onnx"}
    with pytest.raises(ValueError, match=message):
        iresnet.convert_checkpoint(path, **outputs, **SMALL)
    assert _files(tmp_path) == ["backbone.pth"]


@pytest.mark.parametrize(
    "outputs,error,message",
    [
        ({"out": "m.h5"}, ValueError, r"must end in '.keras'. Received: out='.*m.h5'"),
        ({"out": "missing/m.keras"}, ValueError, r"Cannot write to the folder '.*missing'"),
        ({"out": "folder.keras"}, ValueError, r"is a folder. Received: out='.*folder.keras'"),
        (
            {"out": "m.keras", "onnx": "m.keras"},
            ValueError,
            r"must be different files. Received: out='.*m.keras', onnx='.*m.keras'",
        ),
        ({"out": "backbone.pth.keras", "checkpoint": "none.pth"}, FileNotFoundError, "none.pth"),
        (
            {"out": "m.keras", "checkpoint": "notes.txt"},
            ValueError,
            "notes.txt' is not a state_dict",
        ),
    ],
    ids=["suffix", "no_folder", "folder", "same_file", "no_checkpoint", "not_torch"],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    tmp_path, checkpoint, outputs, error, message
):
    (tmp_path / "folder.keras").mkdir()
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    before = _files(tmp_path)
    outputs = {key: tmp_path / value for key, value in outputs.items()}
    source = outputs.pop("checkpoint", checkpoint)
    with pytest.raises(error, match=message):
        iresnet.convert_checkpoint(source, **outputs, **SMALL)
    assert _files(tmp_path) == before


def test_whole_pickled_model_is_refused(tmp_path, small_torch_model, capsys):
    path = tmp_path / "backbone.pth"
    torch.save(small_torch_model, path)
    with pytest.raises(SystemExit):
        _run_cli(path, tmp_path)
    error = capsys.readouterr().err
    assert "not a state_dict that torch.load(weights_only=True) can read" in error
    assert "save `model.state_dict()`" in error
    assert "\x1b" not in error
    assert _files(tmp_path) == ["backbone.pth"]


def test_wrong_depth_through_the_cli(tmp_path, checkpoint, capsys):
    with pytest.raises(SystemExit):
        iresnet.main(
            ["--torch-checkpoint", str(checkpoint), "--depth", "18", "--input-size", "32"]
            + ["--out", str(tmp_path / "m.keras")]
        )
    error = capsys.readouterr().err
    assert "does not fit iresnet18" in error and "missing" in error
    assert "blocks per stage are [1, 1, 1, 1]" in error
    assert _files(tmp_path) == ["backbone.pth"]
