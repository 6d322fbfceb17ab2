"""Constructor arguments, slope layouts, bad input and dtypes of the layer."""

import keras
import numpy as np
import pytest

import keras_prelu


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
        ((None, None, None, 3), {"layout": "channelwise"}, (1, 1, 3)),
        (
            (None, 3, None, None),
            {"layout": "channelwise", "data_format": "channels_first"},
            (3, 1, 1),
        ),
        ((None, None, 3), {"layout": "channelwise"}, (1, 3)),
        ((None, 8), {"layout": "channelwise", "data_format": "channels_first"}, (8,)),
        ((None, None, None, 3), {"layout": "scalar"}, ()),
        ((None, None, None, 3), {"shared_axes": [1, 2]}, (1, 1, 3)),
    ],
)
def test_slope_shapes(shape, kwargs, alpha_shape):
    assert tuple(_built(shape, **kwargs).alpha.shape) == alpha_shape


def test_builtin_shares_the_wrong_axis_for_negative_or_batch_axes_and_we_do_not():
    shape = (None, 4, 5, 3)
    builtin_last = keras.layers.PReLU(shared_axes=[-1])
    builtin_last.build(shape)
    assert tuple(builtin_last.alpha.shape) == (4, 1, 3)  # shared W, not C
    assert tuple(_built(shape, shared_axes=[-1]).alpha.shape) == (4, 5, 1)
    builtin_batch = keras.layers.PReLU(shared_axes=[0])
    builtin_batch.build(shape)
    assert tuple(builtin_batch.alpha.shape) == (4, 5, 1)  # silently shared C
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
            keras.layers.Conv2D(4, 3, padding="same"),
            keras_prelu.PReLU(layout="channelwise"),
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
        ((None, 4, None), {"layout": "channelwise"}, r"channel axis 2"),
        ((None,), {"layout": "channelwise"}, r"rank >= 2"),
    ],
)
def test_bad_shapes_raise_clear_errors(shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _built(shape, **kwargs)


def test_builtin_raises_bare_index_error_for_out_of_range_axis_and_we_do_not():
    with pytest.raises(IndexError):
        keras.layers.PReLU(shared_axes=[4]).build((None, 4, 5, 3))
    with pytest.raises(ValueError):
        _built((None, 4, 5, 3), shared_axes=[4])


@pytest.mark.parametrize(
    "kwargs,bad_shape",
    [
        ({"layout": "channelwise"}, (2, 4, 4, 5)),
        ({"layout": "channelwise"}, (2, 4, 3)),
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
        [keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 3), keras_prelu.PReLU(layout="channelwise")]
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
