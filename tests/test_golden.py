"""Golden `.keras` files from every backend and version load under this one.

Each backend's test run loads the files written under all three backends, so
the three runs together cover all 9 (saved under, loaded under) pairs. Golden
files are never regenerated to make a test pass (see saved_models/README.md).
"""

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_prelu
from keras_prelu import migration
from keras_prelu import saving
from tests.helpers import ROOT
from tests.helpers import skip_if_saved_by_a_newer_keras

GOLDEN_DIR = ROOT / "saved_models"
BACKENDS = ("tensorflow", "jax", "torch")
# Backends that run saved models but cannot train them.
INFERENCE_BACKENDS = ("numpy", "openvino")


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MODEL_NAMES = tuple(_load_generator().MODELS)
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*/*/*.keras"))


def check_saved_model(path: Path) -> None:
    """Loads `path` and compares it with the `.npz` written beside it."""
    skip_if_saved_by_a_newer_keras(path)
    stored = np.load(path.with_suffix(".npz"), allow_pickle=False)
    made_by = (
        f"{path} (made by {stored['backend']} {stored['framework_version']}, "
        f"keras {stored['keras_version']})"
    )
    model = saving.load_model(path)
    output = keras.ops.convert_to_numpy(model(stored["input"], training=False))
    np.testing.assert_allclose(output, stored["output"], rtol=1e-5, atol=1e-6, err_msg=made_by)

    # Every stored key must come back; a later version may add new ones.
    layers = [
        layer
        for layer in model.layers
        if isinstance(layer, (keras_prelu.PReLU, keras.layers.PReLU))
    ]
    expected_configs = json.loads(str(stored["prelu_configs"]))
    assert len(layers) == len(expected_configs), made_by
    for layer, expected in zip(layers, expected_configs, strict=True):
        config = layer.get_config()
        assert {key: config.get(key) for key in expected} == expected, made_by

    if "optimizer_iterations" in stored:
        assert int(model.optimizer.iterations) == int(stored["optimizer_iterations"]), made_by
    if "optimizer_iterations" in stored and keras.backend.backend() not in INFERENCE_BACKENDS:
        # The optimizer state is usable here, whichever backend wrote it.
        # Keras stores "auto" resolved, so a JAX file asks for jit_compile=True,
        # which on PyTorch means a torch.compile costing ~20 s here.
        model.jit_compile = False
        model.fit(stored["input"], np.zeros((len(stored["input"]), 1), "float32"), verbose=0)
        assert int(model.optimizer.iterations) == int(stored["optimizer_iterations"]) + 1

    if any(type(layer) is keras.layers.PReLU for layer in layers):
        converted = migration.from_builtin_prelu(model)
        assert not any(type(layer) is keras.layers.PReLU for layer in converted.layers)
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(converted(stored["input"])), output, err_msg=made_by
        )


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda path: str(path.relative_to(GOLDEN_DIR)))
def test_golden_file_loads_with_the_same_outputs(path):
    check_saved_model(path)


def test_golden_files_cover_every_backend_and_model():
    versions = sorted({path.parent.parent.name for path in GOLDEN_FILES})
    assert versions, f"no golden files under {GOLDEN_DIR}"
    for backend in BACKENDS:
        names = {path.stem for path in GOLDEN_FILES if path.parent.name == backend}
        assert set(MODEL_NAMES) <= names, (
            f"{backend} lacks golden files for {set(MODEL_NAMES) - names}"
        )
    for path in GOLDEN_FILES:
        assert path.with_suffix(".npz").is_file(), f"{path} has no .npz beside it"


def test_generator_refuses_to_overwrite(tmp_path):
    generator = _load_generator()
    (tmp_path / f"{MODEL_NAMES[0]}.keras").write_bytes(b"keep me")
    with pytest.raises(SystemExit, match="Refusing to overwrite"):
        generator.main(["--output-dir", str(tmp_path)])
    assert (tmp_path / f"{MODEL_NAMES[0]}.keras").read_bytes() == b"keep me"


@pytest.mark.parametrize("backend", BACKENDS)
def test_files_saved_now_by_each_training_backend_load_here(tmp_path, backend):
    """The current code, not only old versions, saves files that every
    backend loads, the inference-only ones included."""
    if backend == keras.backend.backend():
        pytest.skip("saving and loading on one backend: tests/test_saving.py")
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, str(GOLDEN_DIR / "make_golden.py"), "--output-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"saving under {backend} failed:\n{result.stderr[-3000:]}"
    for name in MODEL_NAMES:
        check_saved_model(tmp_path / f"{name}.keras")


@pytest.mark.parametrize("backend", BACKENDS)
def test_files_from_before_the_layer_moved_load_by_its_registered_name(backend):
    """0.1.0 stored the layer's module as keras_prelu.layer, which is gone.

    Keras finds the class by its registered name, `keras_prelu>PReLU`, which
    is the compatibility promise; the module path is not used.
    """
    path = GOLDEN_DIR / "0.1.0" / backend / "full.keras"
    skip_if_saved_by_a_newer_keras(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    entries = [
        node for node in saving._dicts(config) if node.get("registered_name") == "keras_prelu>PReLU"
    ]
    assert {entry["module"] for entry in entries} == {"keras_prelu.layer"}
    assert importlib.util.find_spec("keras_prelu.layer") is None
    for load in (saving.load_model, keras.saving.load_model):
        layer = load(path).get_layer("prelu_full")
        assert type(layer) is keras_prelu.PReLU
