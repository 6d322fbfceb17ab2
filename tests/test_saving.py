"""Saving and loading what works: `.keras` and `.weights.h5` round trips,
resumed training, files that load without `custom_objects`. What
`keras_prelu.saving` refuses is in test_hostile_files.py; files written by
earlier versions in test_golden.py."""

import zipfile

import keras
import numpy as np
import pytest

import keras_prelu
from keras_prelu import saving
from tests.helpers import every_layout_input
from tests.helpers import every_layout_model
from tests.helpers import small_cnn

_numpy = keras.ops.convert_to_numpy


def _data(batch=16):
    """Inputs and targets for `every_layout_model`."""
    x = every_layout_input(batch)
    y = np.random.default_rng(1).standard_normal((batch, 4, 4, 4)).astype("float32")
    return x, y


def _prelu_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras_prelu.PReLU)]


# Round trips and resumed training ------------------------------------------------


def test_round_trip_keeps_outputs_and_configs(tmp_path):
    model = every_layout_model()
    x, _ = _data(2)
    model.save(tmp_path / "model.keras")
    loaded = saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(_numpy(loaded(x)), _numpy(model(x)))
    for original, restored in zip(_prelu_layers(model), _prelu_layers(loaded), strict=True):
        assert restored.get_config() == original.get_config()
    assert isinstance(loaded.get_layer("full").alpha_regularizer, keras.regularizers.L1L2)
    assert isinstance(loaded.get_layer("scalar").alpha_constraint, keras.constraints.NonNeg)


def test_training_resumes_exactly_after_save_and_load(tmp_path):
    x, y = _data()
    template = every_layout_model()

    def fresh():
        model = every_layout_model()
        model.set_weights(template.get_weights())
        model.compile(keras.optimizers.Adam(0.05), "mse")
        return model

    interrupted = fresh()
    interrupted.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    interrupted.save(tmp_path / "checkpoint.keras")
    resumed = keras.saving.load_model(tmp_path / "checkpoint.keras")
    assert int(resumed.optimizer.iterations) == 2
    resumed.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    uninterrupted = fresh()
    uninterrupted.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)

    assert int(resumed.optimizer.iterations) == int(uninterrupted.optimizer.iterations) == 4
    for got, want in zip(resumed.get_weights(), uninterrupted.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for got, want in zip(
        resumed.optimizer.variables, uninterrupted.optimizer.variables, strict=True
    ):
        np.testing.assert_allclose(_numpy(got), _numpy(want), rtol=1e-5, atol=1e-6)
    # The slopes did train, so the comparison above is not vacuous.
    assert not np.array_equal(
        _numpy(resumed.get_layer("full").alpha), _numpy(template.get_layer("full").alpha)
    )


def test_weights_only_round_trip(tmp_path):
    x, y = _data()
    model = every_layout_model()
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=1, verbose=0)
    model.save_weights(tmp_path / "model.weights.h5")
    for load in (
        lambda target: target.load_weights(tmp_path / "model.weights.h5"),
        lambda target: saving.load_weights(target, tmp_path / "model.weights.h5"),
    ):
        other = every_layout_model()
        load(other)
        for got, want in zip(other.get_weights(), model.get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(_numpy(other(x)), _numpy(model(x)))


# Files that load without custom_objects ----------------------------------------


@pytest.mark.parametrize("layout", ["full", "channelwise", "scalar"])
def test_keras_file_round_trip_without_custom_objects(tmp_path, layout):
    model = small_cnn(layout)
    model.layers[2].alpha.assign(
        np.random.default_rng(1).uniform(0, 0.5, model.layers[2].alpha.shape).astype("float32")
    )
    x = np.random.default_rng(0).standard_normal((4, 6, 6, 2)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    for safe_mode in (True, False):
        loaded = keras.saving.load_model(path, safe_mode=safe_mode)
        assert isinstance(loaded.layers[2], keras_prelu.PReLU)
        assert loaded.layers[2].get_config() == model.layers[2].get_config()
        np.testing.assert_array_equal(_numpy(loaded(x)), _numpy(model(x)))


@pytest.mark.parametrize("alpha_kind", ["float", "numpy", "tensor"])
def test_functional_model_with_the_symbolic_op_saves_and_loads(tmp_path, alpha_kind):
    slopes = np.linspace(-0.5, 0.5, 4).astype("float32")
    alpha = {
        "float": 0.1,
        "numpy": slopes,
        "tensor": keras.ops.convert_to_tensor(slopes),
    }[alpha_kind]
    inputs = keras.Input((6,))
    x = keras.layers.Dense(4, name="dense")(inputs)
    x = keras_prelu.prelu(x, alpha)
    x = keras_prelu.PReLU(name="act")(x)
    outputs = keras_prelu.prelu(x, 0.3)
    model = keras.Model(inputs, outputs)
    x_data = np.random.default_rng(0).standard_normal((3, 6)).astype("float32")
    expected = _numpy(model(x_data))
    path = tmp_path / "op.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert b'"registered_name": "keras_prelu>PReLUOp"' in archive.read("config.json")
    for load in (keras.saving.load_model, keras_prelu.saving.load_model):
        loaded = load(path)
        np.testing.assert_array_equal(_numpy(loaded(x_data)), expected)
        op_names = [op.name for op in loaded.operations if type(op).__name__ == "PReLUOp"]
        assert len(op_names) == 2 and all(name.startswith("prelu") for name in op_names)


def test_a_diverged_model_saves_and_loads_for_inspection(tmp_path):
    """NaN and infinite slopes give unspecified outputs, but the checkpoint
    keeps them: both loaders return them as they were saved."""
    model = every_layout_model()
    slopes = model.get_layer("full").get_weights()[0]
    slopes.flat[:3] = [np.nan, np.inf, -np.inf]
    model.get_layer("full").set_weights([slopes])
    model.save(tmp_path / "diverged.keras")
    for load in (saving.load_model, keras.saving.load_model):
        loaded = load(tmp_path / "diverged.keras").get_layer("full")
        np.testing.assert_array_equal(loaded.get_weights()[0], slopes)
