"""The `keras_prelu.PReLU` layer (`keras_prelu/_layer.py`): constructor
arguments, slope layouts, bad input, dtypes, its config, and the layer inside
Keras models (Sequential, functional, subclassed, masking, jit compilation).

Its numerics, against a NumPy reference, are in test_numerics.py; `.keras`
files in test_saving.py; the functional op in test_ops.py.
"""

import keras
import numpy as np
import pytest

import keras_prelu
from tests.helpers import small_cnn


def _built(shape, **kwargs):
    layer = keras_prelu.PReLU(**kwargs)
    layer.build(shape)
    return layer


def test_default_slope_is_a_quarter_and_zeros_reproduces_keras():
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(_built((None, 3)).alpha), [0.25] * 3)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype("float32")
    ours = keras_prelu.PReLU(alpha_initializer="zeros")
    builtin = keras.layers.PReLU()
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(builtin(x))
    )


def test_number_as_initializer_is_a_constant():
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(_built((None, 2), alpha_initializer=0.1).alpha),
        np.array([0.1, 0.1], "float32"),
    )


@pytest.mark.parametrize(
    "shape,kwargs,alpha_shape",
    [
        ((None, 4, 5, 3), {}, (4, 5, 3)),
        ((None, 4, 5, 3), {"shared_axes": [1, 2]}, (1, 1, 3)),
        ((None, 4, 5, 3), {"shared_axes": [-3, -2]}, (1, 1, 3)),
        ((None, 4, 5, 3), {"shared_axes": (2, -2, 2)}, (4, 1, 3)),
        ((None, 4, 5, 3), {"shared_axes": -1}, (4, 5, 1)),
        ((None, 4, 5, 3), {"shared_axes": np.int64(1)}, (1, 5, 3)),
        (
            (None, None, None, 3),
            {"layout": "channelwise", "data_format": "channels_last"},
            (1, 1, 3),
        ),
        (
            (None, 3, None, None),
            {"layout": "channelwise", "data_format": "channels_first"},
            (3, 1, 1),
        ),
        ((None, None, 3), {"layout": "channelwise", "data_format": "channels_last"}, (1, 3)),
        ((None, 8), {"layout": "channelwise", "data_format": "channels_first"}, (8,)),
        ((None, None, None, 3), {"layout": "scalar"}, ()),
        ((None, None, None, 3), {"shared_axes": [1, 2]}, (1, 1, 3)),
    ],
)
def test_slope_shapes(shape, kwargs, alpha_shape):
    assert tuple(_built(shape, **kwargs).alpha.shape) == alpha_shape


def test_negative_axes_count_from_the_end_and_the_batch_axis_is_refused():
    # Keras 3.15's keras.layers.PReLU reads shared_axes=[-1] as the axis
    # before the last and [0] as the last; this layer reads them as Python
    # does, whatever the installed built-in does (migration translates; see
    # test_migration.py).
    shape = (None, 4, 5, 3)
    assert tuple(_built(shape, shared_axes=[-1]).alpha.shape) == (4, 5, 1)
    assert tuple(_built(shape, shared_axes=[-3]).alpha.shape) == (1, 5, 3)
    with pytest.raises(ValueError, match="batch axis"):
        keras_prelu.PReLU(shared_axes=[0])


def test_channelwise_follows_image_data_format():
    keras.config.set_image_data_format("channels_first")
    layer = keras_prelu.PReLU(layout="channelwise")
    assert layer.data_format == "channels_first"
    layer.build((None, 3, None, None))
    assert tuple(layer.alpha.shape) == (3, 1, 1)
    keras.config.set_image_data_format("channels_last")
    # The resolved format is stored, so the config keeps its meaning.
    assert keras_prelu.PReLU.from_config(layer.get_config()).data_format == "channels_first"


def test_channelwise_runs_on_unknown_spatial_dims():
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(4, 3, padding="same", data_format="channels_last"),
            keras_prelu.PReLU(layout="channelwise", data_format="channels_last"),
        ]
    )
    for size in (5, 9):
        assert tuple(model(np.ones((2, size, size + 1, 3), "float32")).shape) == (
            2,
            size,
            size + 1,
            4,
        )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"shared_axes": 0}, r"batch axis 0.*Received: shared_axes=0"),
        ({"shared_axes": [1, 0]}, r"batch axis 0.*Received: shared_axes=\[1, 0\]"),
        ({"shared_axes": "a"}, r"Received: shared_axes='a'"),
        ({"shared_axes": 1.5}, r"Received: shared_axes=1.5"),
        ({"shared_axes": [1, 2.0]}, r"Received: shared_axes=\[1, 2.0\]"),
        ({"shared_axes": True}, r"Received: shared_axes=True"),
        ({"shared_axes": [[1]]}, r"Received: shared_axes=\[\[1\]\]"),
        ({"layout": "channel"}, r"Received: layout='channel'"),
        ({"layout": "channelwise", "data_format": "NHWC"}, r"Received: data_format='NHWC'"),
        ({"data_format": "channels_last"}, r"only applies to layout='channelwise'"),
        ({"layout": "scalar", "shared_axes": [1]}, r"Received: shared_axes=\[1\], layout='scalar'"),
        ({"alpha_initializer": "no_such_initializer"}, r"no_such_initializer"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_prelu.PReLU(**kwargs)


@pytest.mark.parametrize(
    "shape,kwargs,match",
    [
        (
            (None, 4, 5, 3),
            {"shared_axes": [4]},
            r"axis 4 is out of range. Received: shared_axes=\[4\]",
        ),
        ((None, 4, 5, 3), {"shared_axes": [-5]}, r"axis -5 is out of range"),
        ((None, 4, 5, 3), {"shared_axes": [-4]}, r"batch axis: axis -4 is axis 0"),
        ((None, None, None, 3), {}, r"Axes \[1, 2\].*shared_axes=\[1, 2\]"),
        ((None, None, 5, 3), {"shared_axes": [2]}, r"Axes \[1\].*shared_axes=\[1, 2\]"),
        (
            (None, 4, None),
            {"layout": "channelwise", "data_format": "channels_last"},
            r"channel axis 2",
        ),
        ((None,), {"layout": "channelwise"}, r"rank >= 2"),
    ],
)
def test_bad_shapes_raise_clear_errors(shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _built(shape, **kwargs)


def test_out_of_range_axis_is_a_value_error_whatever_the_builtin_raises():
    # Keras 3.15's built-in raises a bare IndexError here; a later one may
    # raise a ValueError. Ours always names the axis.
    with pytest.raises(ValueError, match=r"axis 4 is out of range"):
        _built((None, 4, 5, 3), shared_axes=[4])
    try:
        keras.layers.PReLU(shared_axes=[4]).build((None, 4, 5, 3))
    except (IndexError, ValueError):
        pass


@pytest.mark.parametrize(
    "kwargs,bad_shape",
    [
        ({"layout": "channelwise", "data_format": "channels_last"}, (2, 4, 4, 5)),
        ({"layout": "channelwise", "data_format": "channels_last"}, (2, 4, 3)),
        ({}, (2, 4, 3)),
        ({"layout": "scalar"}, (2, 4, 4)),
    ],
)
def test_built_layer_rejects_other_rank_or_channels(kwargs, bad_shape):
    layer = keras_prelu.PReLU(**kwargs)
    layer(np.ones((2, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="incompatible with the layer"):
        layer(np.ones(bad_shape, "float32"))


def test_config_round_trip_with_objects():
    layer = keras_prelu.PReLU(
        alpha_initializer=keras.initializers.RandomUniform(0.1, 0.3, seed=4),
        alpha_regularizer=keras.regularizers.L2(1e-3),
        alpha_constraint=keras.constraints.NonNeg(),
        shared_axes=(1, -2),
        name="act",
        dtype="float64",
    )
    config = layer.get_config()
    clone = keras_prelu.PReLU.from_config(config)
    assert clone.get_config() == config
    assert isinstance(clone.alpha_initializer, keras.initializers.RandomUniform)
    assert isinstance(clone.alpha_regularizer, keras.regularizers.L2)
    assert isinstance(clone.alpha_constraint, keras.constraints.NonNeg)
    assert clone.shared_axes == [1, -2] and clone.name == "act"
    assert keras.saving.get_registered_name(keras_prelu.PReLU) == "keras_prelu>PReLU"


def test_regularizer_adds_a_loss_and_constraint_applies():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras_prelu.PReLU(
                alpha_initializer=-1.0,
                alpha_regularizer=keras.regularizers.L1(0.5),
                alpha_constraint=keras.constraints.NonNeg(),
            ),
        ]
    )
    model(np.ones((1, 4), "float32"))
    assert float(keras.ops.convert_to_numpy(model.losses[0])) == pytest.approx(2.0)
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 4), "float32"), np.zeros((4, 4), "float32"), verbose=0)
    assert (keras.ops.convert_to_numpy(model.layers[0].alpha) >= 0).all()


def test_float64_layer():
    layer = keras_prelu.PReLU(dtype="float64")
    out = layer(np.array([[-2.0, 3.0]], "float64"))
    assert keras.backend.standardize_dtype(out.dtype) == "float64"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), [[-0.5, 3.0]])


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool"])
def test_integer_inputs_are_cast_to_compute_dtype(dtype):
    layer = keras_prelu.PReLU()
    x = np.array([[-2, 0, 3]]).astype(dtype)
    out = layer(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    want = np.where(x >= 0, x, 0.25 * x.astype("float32")).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), want)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_float32_slopes(policy):
    keras.config.set_dtype_policy(policy)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(3, 3, data_format="channels_last"),
            keras_prelu.PReLU(layout="channelwise", data_format="channels_last"),
        ]
    )
    layer = model.layers[-1]
    assert layer.alpha.dtype == "float32"
    out = model(np.random.default_rng(0).standard_normal((2, 6, 6, 2)).astype("float32"))
    assert keras.backend.standardize_dtype(out.dtype) == policy.split("_")[1]
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = keras.ops.convert_to_numpy(layer.alpha).copy()
    model.fit(
        np.random.default_rng(1).standard_normal((8, 6, 6, 2)), np.zeros((8, 4, 4, 3)), verbose=0
    )
    after = keras.ops.convert_to_numpy(layer.alpha)
    assert after.dtype == np.float32 and not np.array_equal(before, after)


# Refused dtypes and slopes that cannot be stored ------------------------------------


@pytest.mark.parametrize(
    "dtype", ["int32", "int64", "uint8", "bool", "complex64", keras.DTypePolicy("int32")]
)
def test_non_float_dtype_is_refused(dtype):
    name = dtype.name if isinstance(dtype, keras.DTypePolicy) else dtype
    with pytest.raises(ValueError, match=rf"floating-point dtype.*Received: dtype='{name}'"):
        keras_prelu.PReLU(dtype=dtype)


def test_non_float_global_policy_is_refused():
    keras.config.set_dtype_policy("int32")
    with pytest.raises(ValueError, match=r"Received: dtype='int32'"):
        keras_prelu.PReLU()


def test_a_policy_changed_after_construction_is_refused():
    layer = keras_prelu.PReLU()
    with pytest.raises(ValueError, match=r"Received: dtype='int32'"):
        layer.dtype_policy = keras.DTypePolicy("int32")
    assert layer.dtype_policy.name == "float32"
    layer.dtype_policy = "mixed_float16"
    assert layer.compute_dtype == "float16"


@pytest.mark.parametrize(
    "dtype", ["float16", "bfloat16", "float32", "float64", "mixed_float16", "mixed_bfloat16"]
)
def test_float_dtypes_are_accepted(dtype):
    layer = keras_prelu.PReLU(dtype=dtype)
    out = layer(np.array([[-2.0, 4.0]], "float32"))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(keras.ops.cast(out, "float32")), [[-0.5, 4.0]]
    )


@pytest.mark.parametrize(
    "value,match",
    [
        (
            None,
            r"cannot be None.*keras_prelu.DEFAULT_SLOPE = 0.25.*Received: alpha_initializer=None",
        ),
        (float("nan"), r"must be finite.*Received: alpha_initializer=nan"),
        (float("inf"), r"must be finite.*Received: alpha_initializer=inf"),
        (-float("inf"), r"must be finite.*Received: alpha_initializer=-inf"),
        (np.float32("nan"), r"must be finite"),
        (1e308, r"overflows float32, the slopes' dtype.*Received: alpha_initializer=1e\+308"),
        (10**400, r"overflows even float64.*Received: alpha_initializer=1000000"),
        (True, r"not a bool.*Received: alpha_initializer=True"),
        (0.5j, r"finite real number.*Received: alpha_initializer=0.5j"),
        (
            keras.initializers.Constant("abc"),
            r"Received: alpha_initializer=Constant\(value='abc'\)",
        ),
        (keras.initializers.Constant(float("nan")), r"must be finite"),
        (keras.initializers.Constant(1e39), r"overflows float32"),
        ({"class_name": "Constant", "config": {"value": "abc"}}, r"finite real number"),
        ([0.1, 0.2], r"Invalid `alpha_initializer`.*Received: alpha_initializer=\[0.1, 0.2\]"),
    ],
)
def test_slopes_that_cannot_be_stored_are_refused(value, match):
    with pytest.raises(ValueError, match=match):
        keras_prelu.PReLU(alpha_initializer=value)


def test_slope_range_is_that_of_the_variable_dtype_and_float32():
    with pytest.raises(ValueError, match="overflows float32, which a Keras Constant"):
        keras_prelu.PReLU(alpha_initializer=1e308, dtype="float64")
    layer = keras_prelu.PReLU(alpha_initializer=3e38, dtype="float64")
    layer.build((None, 2))
    assert keras.ops.convert_to_numpy(layer.alpha).dtype == np.float64
    with pytest.raises(ValueError, match="overflows float16, the slopes' dtype"):
        keras_prelu.PReLU(alpha_initializer=1e5, dtype="float16")
    keras_prelu.PReLU(alpha_initializer=6e4, dtype="float16")  # float16 holds up to 65504
    # Mixed precision keeps float32 slopes, so float32's range applies.
    keras_prelu.PReLU(alpha_initializer=1e5, dtype="mixed_float16")


# Inside Keras models ------------------------------------------------------------------


def _data(shape=(16, 6, 6, 2), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype("float32"), rng.integers(0, classes, shape[0])


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


@pytest.mark.parametrize("build", [small_cnn, _functional, SubclassedCNN])
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
        # No batch normalization: on PyTorch, Keras's breaks the compiled graph
        # in pieces that cost a quarter of this test's time to compile.
        model = keras.Sequential(
            [
                keras.Input((6, 6, 2)),
                keras.layers.Conv2D(4, 3, padding="same", data_format="channels_last"),
                keras_prelu.PReLU(layout="channelwise", data_format="channels_last"),
                keras.layers.GlobalAveragePooling2D(data_format="channels_last"),
                keras.layers.Dense(3),
            ]
        )
        model.compile(keras.optimizers.SGD(0.05), "mse", jit_compile=jit_compile)
        model.fit(x, np.zeros((16, 3), "float32"), batch_size=8, epochs=1, shuffle=False, verbose=0)
        results.append([keras.ops.convert_to_numpy(w) for w in model.weights])
    for eager, compiled in zip(*results, strict=True):
        np.testing.assert_allclose(eager, compiled, rtol=1e-4, atol=1e-5)


def test_mask_passes_through():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4, mask_zero=True)(inputs)
    x = keras_prelu.PReLU(shared_axes=[1])(x)
    layer = keras_prelu.PReLU(shared_axes=[1])
    assert layer.supports_masking
    # The pooling averages over the unmasked steps only, so the padding (whose
    # embeddings are not zero) changes the output unless the mask comes through.
    pooling = keras.layers.GlobalAveragePooling1D(data_format="channels_last")
    model = keras.Model(inputs, pooling(x))
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
