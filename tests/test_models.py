"""The layer and the functional op inside Keras models: Sequential,
functional, subclassed, masking, jit compilation and `.keras` round trips."""

import zipfile

import keras
import numpy as np
import pytest

import keras_prelu


def _data(shape=(16, 6, 6, 2), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype("float32"), rng.integers(0, classes, shape[0])


def _sequential(layout="channelwise"):
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(4, 3, padding="same", data_format="channels_last"),
            keras.layers.BatchNormalization(),
            keras_prelu.PReLU(
                layout=layout,
                **({"data_format": "channels_last"} if layout == "channelwise" else {}),
            ),
            keras.layers.GlobalAveragePooling2D(data_format="channels_last"),
            keras.layers.Dense(3),
        ]
    )


class SubclassedCNN(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(4, 3, data_format="channels_last")
        self.act = keras_prelu.PReLU(shared_axes=[1, 2])
        self.pool = keras.layers.GlobalAveragePooling2D(data_format="channels_last")
        self.head = keras.layers.Dense(3)

    def call(self, x):
        return self.head(self.pool(self.act(self.conv(x))))


def _functional():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, data_format="channels_last")(inputs)
    x = keras_prelu.PReLU(layout="scalar")(x)
    # The functional op on symbolic tensors, with a constant slope.
    x = keras.layers.Lambda(lambda t: keras_prelu.prelu(t, 0.1))(x)
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("build", [_sequential, _functional, SubclassedCNN])
def test_models_train_and_learn_slopes(build):
    model = build()
    x, y = _data()
    model(x[:1])
    model.compile(
        keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    prelu_layers = [layer for layer in model.layers if isinstance(layer, keras_prelu.PReLU)]
    before = [keras.ops.convert_to_numpy(layer.alpha).copy() for layer in prelu_layers]
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    for layer, old in zip(prelu_layers, before, strict=True):
        assert not np.allclose(keras.ops.convert_to_numpy(layer.alpha), old)


def test_jit_compiled_training_equals_eager_training():
    """XLA on TensorFlow and JAX, torch.compile on PyTorch."""
    x, y = _data()
    results = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(7)
        model = _sequential()
        model.compile(keras.optimizers.SGD(0.05), "mse", jit_compile=jit_compile)
        model.fit(x, np.zeros((16, 3), "float32"), batch_size=8, epochs=1, shuffle=False, verbose=0)
        results.append([keras.ops.convert_to_numpy(w) for w in model.weights])
    for eager, compiled in zip(*results, strict=True):
        np.testing.assert_allclose(eager, compiled, rtol=1e-4, atol=1e-5)


def test_functional_op_symbolic_and_eager():
    symbolic = keras_prelu.prelu(keras.Input((None, 3)), keras.ops.ones((3,)))
    assert isinstance(symbolic, keras.KerasTensor) and symbolic.shape == (None, None, 3)
    assert keras_prelu.prelu(keras.Input((2,), dtype="int32"), 0.5).dtype == "float32"
    eager = keras_prelu.prelu(np.array([-4.0, 0.0, 2.0], "float32"), np.float32(0.5))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(eager), [-2.0, 0.0, 2.0])
    with pytest.raises(ValueError, match=r"Received: x.shape=\(2, 3\), alpha.shape=\(4,\)"):
        keras_prelu.prelu(np.ones((2, 3), "float32"), np.ones((4,), "float32"))
    with pytest.raises(ValueError, match="alpha.shape"):
        keras_prelu.prelu(keras.Input((3,)), keras.Input((4,)))


def test_mask_passes_through():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4, mask_zero=True)(inputs)
    x = keras_prelu.PReLU(shared_axes=[1])(x)
    layer = keras_prelu.PReLU(shared_axes=[1])
    assert layer.supports_masking
    model = keras.Model(inputs, keras.layers.LSTM(3)(x))
    tokens = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 7]])
    out_padded = keras.ops.convert_to_numpy(model(tokens))
    out_short = keras.ops.convert_to_numpy(model(tokens[:, :2]))
    np.testing.assert_allclose(out_padded[0], out_short[0], rtol=1e-5, atol=1e-6)
    mask = keras.layers.Embedding(10, 4, mask_zero=True).compute_mask(tokens)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer.compute_mask(tokens, mask)),
        keras.ops.convert_to_numpy(mask),
    )


def test_compute_output_shape():
    layer = keras_prelu.PReLU(layout="channelwise")
    assert layer.compute_output_shape((None, None, None, 8)) == (None, None, None, 8)


@pytest.mark.parametrize("layout", ["full", "channelwise", "scalar"])
def test_keras_file_round_trip_without_custom_objects(tmp_path, layout):
    model = _sequential(layout)
    model.layers[2].alpha.assign(
        np.random.default_rng(1).uniform(0, 0.5, model.layers[2].alpha.shape).astype("float32")
    )
    x, _ = _data()
    path = tmp_path / "model.keras"
    model.save(path)
    for safe_mode in (True, False):
        loaded = keras.saving.load_model(path, safe_mode=safe_mode)
        assert isinstance(loaded.layers[2], keras_prelu.PReLU)
        assert loaded.layers[2].get_config() == model.layers[2].get_config()
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x))
        )


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
    x_data, _ = _data((3, 6))
    expected = keras.ops.convert_to_numpy(model(x_data))
    path = tmp_path / "op.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert b'"registered_name": "keras_prelu>PReLUOp"' in archive.read("config.json")
    for load in (keras.saving.load_model, keras_prelu.saving.load_model):
        loaded = load(path)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x_data)), expected)
        op_names = [op.name for op in loaded.operations if type(op).__name__ == "PReLUOp"]
        assert len(op_names) == 2 and all(name.startswith("prelu") for name in op_names)
