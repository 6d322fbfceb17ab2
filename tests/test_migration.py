"""Migration to and from `keras.layers.PReLU` and `torch.nn.PReLU`:
`keras_prelu.migration`."""

import zipfile

import keras
import numpy as np
import pytest

import keras_prelu
from keras_prelu import migration
from keras_prelu import saving


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


# Migration from and to keras.layers.PReLU ------------------------------------------


@pytest.mark.parametrize(
    "shape,shared_axes",
    [((6,), None), ((4, 4, 3), None), ((4, 4, 3), [1, 2]), ((4, 4, 3), [-1]), ((4, 4, 3), [0])],
)
def test_from_builtin_gives_identical_outputs(shape, shared_axes):
    builtin = keras.layers.PReLU(
        alpha_initializer=keras.initializers.RandomUniform(-1.0, 1.0, seed=3),
        alpha_regularizer=keras.regularizers.L2(1e-3),
        alpha_constraint=keras.constraints.NonNeg(),
        shared_axes=shared_axes,
        name="act",
    )
    model = keras.Sequential([keras.Input(shape), builtin])
    converted = migration.from_builtin_prelu(model)
    layer = converted.get_layer("act")
    assert type(layer) is keras_prelu.PReLU and layer.layout == "full"
    assert isinstance(layer.alpha_regularizer, keras.regularizers.L2)
    assert isinstance(layer.alpha_constraint, keras.constraints.NonNeg)
    assert tuple(layer.alpha.shape) == tuple(builtin.alpha.shape)
    x = np.random.default_rng(0).standard_normal((3, *shape)).astype("float32")
    np.testing.assert_array_equal(_numpy(converted(x)), _numpy(model(x)))


def test_from_builtin_through_a_saved_file_and_nested_models(tmp_path):
    inner = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(5), keras.layers.PReLU(name="inner_act")],
        name="inner",
    )
    inputs = keras.Input((5,))
    outputs = keras.layers.PReLU(name="outer_act")(inner(inputs))
    model = keras.Model(inputs, outputs)
    model.get_layer("outer_act").alpha.assign(np.linspace(-1, 1, 5))
    model.save(tmp_path / "builtin.keras")
    converted = migration.from_builtin_prelu(keras.saving.load_model(tmp_path / "builtin.keras"))
    assert type(converted.get_layer("outer_act")) is keras_prelu.PReLU
    assert type(converted.get_layer("inner").get_layer("inner_act")) is keras_prelu.PReLU
    converted.save(tmp_path / "converted.keras")
    reloaded = saving.load_model(tmp_path / "converted.keras")
    x = np.random.default_rng(1).standard_normal((4, 5)).astype("float32")
    np.testing.assert_array_equal(_numpy(reloaded(x)), _numpy(model(x)))


@pytest.mark.parametrize(
    "shape,kwargs",
    [
        ((4, 4, 3), {}),
        ((4, 4, 3), {"shared_axes": [-3, -2]}),
        ((None, None, 3), {"layout": "channelwise", "data_format": "channels_last"}),
        ((3, None, None), {"layout": "channelwise", "data_format": "channels_first"}),
        ((4, 4, 3), {"layout": "scalar"}),
        ((6,), {"layout": "scalar"}),
    ],
)
def test_to_builtin_gives_identical_outputs_and_drops_the_dependency(tmp_path, shape, kwargs):
    layer = keras_prelu.PReLU(
        alpha_initializer=keras.initializers.RandomUniform(-1.0, 1.0, seed=5), name="act", **kwargs
    )
    model = keras.Sequential([keras.Input(shape), layer])
    converted = migration.to_builtin_prelu(model)
    assert type(converted.get_layer("act")) is keras.layers.PReLU
    concrete = tuple(4 if dim is None else dim for dim in shape)
    x = np.random.default_rng(2).standard_normal((3, *concrete)).astype("float32")
    np.testing.assert_array_equal(_numpy(converted(x)), _numpy(model(x)))

    converted.save(tmp_path / "builtin.keras")
    with zipfile.ZipFile(tmp_path / "builtin.keras") as archive:
        assert b"keras_prelu" not in archive.read("config.json")
    reloaded = keras.saving.load_model(tmp_path / "builtin.keras")
    np.testing.assert_array_equal(_numpy(reloaded(x)), _numpy(model(x)))
    back = migration.from_builtin_prelu(reloaded)
    np.testing.assert_array_equal(_numpy(back(x)), _numpy(model(x)))


@pytest.mark.parametrize(
    "kwargs", [{"layout": "channelwise"}, {"layout": "scalar"}, {"shared_axes": [-1]}]
)
def test_to_builtin_refuses_what_needs_an_unknown_rank(kwargs):
    model = keras.Sequential([keras_prelu.PReLU(name="act", **kwargs)])
    with pytest.raises(ValueError, match="Layer 'act' was never built"):
        migration.to_builtin_prelu(model)


def test_to_builtin_keeps_positive_axes_of_an_unbuilt_layer():
    model = keras.Sequential([keras_prelu.PReLU(shared_axes=[1, 2], name="act")])
    assert migration.to_builtin_prelu(model).get_layer("act").shared_axes == [1, 2]


# Migration from torch.nn.PReLU ---------------------------------------------------------


@pytest.mark.parametrize(
    "slopes,rank,data_format,expected_shape",
    [
        ([0.3], 4, "channels_last", ()),
        (np.float32(0.3), 2, None, ()),
        ([0.1, 0.2, 0.3], 4, "channels_last", (1, 1, 3)),
        ([0.1, 0.2, 0.3], 4, "channels_first", (3, 1, 1)),
        ([0.1, 0.2, 0.3], 3, "channels_first", (3, 1)),
        ([0.1, 0.2, 0.3], 2, "channels_last", (3,)),
    ],
)
def test_slopes_from_torch_shapes(slopes, rank, data_format, expected_shape):
    alpha = migration.slopes_from_torch(slopes, rank=rank, data_format=data_format)
    assert alpha.shape == expected_shape
    np.testing.assert_array_equal(alpha.reshape(-1), np.asarray(slopes).reshape(-1))


def _torch_prelu_numpy(x_nchw, slopes):
    """torch.nn.PReLU on channels-first data, in NumPy."""
    slopes = np.asarray(slopes, x_nchw.dtype).reshape((-1,) + (1,) * (x_nchw.ndim - 2))
    return np.where(x_nchw >= 0, x_nchw, slopes * x_nchw)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("rank", [3, 4])
def test_torch_slopes_from_numpy_give_identical_outputs(channels, rank):
    rng = np.random.default_rng(3)
    slopes = rng.uniform(-0.5, 0.5, channels).astype("float32")
    x = rng.standard_normal((2, 3) + (5,) * (rank - 2)).astype("float32")
    expected = _torch_prelu_numpy(x, slopes)
    first = migration.from_torch_prelu(slopes, rank=rank, data_format="channels_first")
    np.testing.assert_array_equal(_numpy(first(x)), expected)
    last = migration.from_torch_prelu(slopes, rank=rank, data_format="channels_last")
    moved = np.moveaxis(x, 1, -1)
    np.testing.assert_array_equal(_numpy(last(moved)), np.moveaxis(expected, 1, -1))


def test_torch_module_and_tensor_give_identical_outputs():
    torch = pytest.importorskip("torch")
    module = torch.nn.PReLU(num_parameters=3)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([-0.2, 0.1, 0.7]))
    x = np.random.default_rng(4).standard_normal((2, 3, 5, 5)).astype("float32")
    expected = module(torch.from_numpy(x)).detach().numpy()
    layer = migration.from_torch_prelu(module, data_format="channels_last", name="act")
    assert layer.name == "act" and layer.layout == "channelwise"
    np.testing.assert_array_equal(
        _numpy(layer(np.moveaxis(x, 1, -1))), np.moveaxis(expected, 1, -1)
    )
    first = migration.from_torch_prelu(module.weight, data_format="channels_first")
    np.testing.assert_array_equal(_numpy(first(x)), expected)
    single = torch.nn.PReLU()  # num_parameters=1, init 0.25
    assert migration.from_torch_prelu(single).layout == "scalar"
    np.testing.assert_array_equal(
        _numpy(migration.from_torch_prelu(single)(x)), single(torch.from_numpy(x)).detach().numpy()
    )


@pytest.mark.parametrize(
    "slopes,kwargs,match",
    [
        (np.ones((2, 3)), {}, r"Received: weight.shape=\(2, 3\)"),
        (np.ones((0,)), {}, r"Received: weight.shape=\(0,\)"),
        (np.ones(3), {"rank": 1}, r"Received: rank=1"),
        (np.ones(3), {"data_format": "NCHW"}, r"Received: data_format='NCHW'"),
    ],
)
def test_slopes_from_torch_bad_input(slopes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        migration.slopes_from_torch(slopes, **kwargs)


# Migration checks what the installed keras.layers.PReLU does -------------------------


class _FixedBuiltinPReLU(keras.layers.PReLU):
    """`keras.layers.PReLU` as a Keras that reads negative axes as Python does would be."""

    def build(self, input_shape):
        original = self.shared_axes
        if original is not None:
            self.shared_axes = [axis % len(input_shape) for axis in original]
            if 0 in self.shared_axes:
                raise ValueError(f"batch axis in shared_axes={original}")
        try:
            super().build(input_shape)
        finally:
            self.shared_axes = original


class _AxesIgnoringBuiltinPReLU(keras.layers.PReLU):
    """A broken built-in that shares no axis whatever it is given."""

    def build(self, input_shape):
        original, self.shared_axes = self.shared_axes, None
        try:
            super().build(input_shape)
        finally:
            self.shared_axes = original


@pytest.mark.parametrize(
    "builtin_class",
    [keras.layers.PReLU, _FixedBuiltinPReLU, _AxesIgnoringBuiltinPReLU],
    ids=["installed", "fixed", "ignoring"],
)
@pytest.mark.parametrize("shared_axes", [[-1], [-2, -1], [1, -1], [2]])
def test_from_builtin_shares_what_the_builtin_shares(monkeypatch, builtin_class, shared_axes):
    monkeypatch.setattr(keras.layers, "PReLU", builtin_class)
    builtin = builtin_class(
        alpha_initializer=keras.initializers.RandomUniform(-1.0, 1.0, seed=3),
        shared_axes=shared_axes,
        name="act",
    )
    model = keras.Sequential([keras.Input((4, 5, 3)), builtin])
    converted = migration.from_builtin_prelu(model)
    layer = converted.get_layer("act")
    assert type(layer) is keras_prelu.PReLU
    assert tuple(layer.alpha.shape) == tuple(builtin.alpha.shape)
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 3)).astype("float32")
    np.testing.assert_array_equal(_numpy(converted(x)), _numpy(model(x)))


def test_from_builtin_of_an_unbuilt_layer(monkeypatch):
    model = keras.Sequential([keras.layers.PReLU(shared_axes=[1, 2], name="act")])
    assert migration.from_builtin_prelu(model).get_layer("act").shared_axes == [1, 2]
    model = keras.Sequential([keras.layers.PReLU(shared_axes=[-1], name="act")])
    with pytest.raises(ValueError, match="Layer 'act' was never built"):
        migration.from_builtin_prelu(model)
    monkeypatch.setattr(keras.layers, "PReLU", _AxesIgnoringBuiltinPReLU)
    model = keras.Sequential([_AxesIgnoringBuiltinPReLU(shared_axes=[1, 2], name="act")])
    with pytest.raises(ValueError, match="does not share shared_axes=\\[1, 2\\] as named"):
        migration.from_builtin_prelu(model)


def test_to_builtin_refuses_a_builtin_that_shares_other_axes(monkeypatch):
    model = keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            keras_prelu.PReLU(layout="channelwise", data_format="channels_last"),
        ]
    )
    monkeypatch.setattr(keras.layers, "PReLU", _FixedBuiltinPReLU)
    assert type(migration.to_builtin_prelu(model).layers[0]) is _FixedBuiltinPReLU
    monkeypatch.setattr(keras.layers, "PReLU", _AxesIgnoringBuiltinPReLU)
    with pytest.raises(
        ValueError, match=r"could not be converted: the installed.*shares axes \[\]"
    ):
        migration.to_builtin_prelu(model)


def test_copying_slopes_of_another_shape_is_refused():
    old = keras.layers.PReLU(shared_axes=[2], name="old")
    old.build((None, 4, 4, 4))  # slopes (4, 1, 4)
    new = keras_prelu.PReLU(shared_axes=[3], name="new")
    new.build((None, 4, 4, 4))  # slopes (4, 4, 1): same size, other elements
    before = _numpy(new.alpha).copy()
    with pytest.raises(
        ValueError, match=r"Layer 'old' could not be copied.*\(4, 1, 4\).*\(4, 4, 1\)"
    ):
        migration._copy_weights(old, new)
    np.testing.assert_array_equal(_numpy(new.alpha), before)
    # Shapes that differ only in leading size-1 axes broadcast alike.
    scalar = keras_prelu.PReLU(layout="scalar", alpha_initializer=0.3)
    scalar.build((None, 4, 4, 4))
    ones = keras.layers.PReLU(shared_axes=[1, 2, 3])
    ones.build((None, 4, 4, 4))
    migration._copy_weights(scalar, ones)
    np.testing.assert_allclose(_numpy(ones.alpha), np.full((1, 1, 1), 0.3))


# Migration from torch refuses what it cannot represent --------------------------------


@pytest.mark.parametrize(
    "weight,error,match",
    [
        (None, ValueError, r"Received: weight=None"),
        (np.array([0.1, np.nan]), ValueError, r"1 of 2 are NaN or infinite"),
        (np.array([np.inf]), ValueError, r"NaN or infinite"),
        (
            np.array([0.1 + 1j, 0.2]),
            TypeError,
            r"imaginary part.*Received: weight.dtype=complex128",
        ),
        (np.array([True, False]), ValueError, r"real numbers.*dtype bool"),
        (np.array(["0.1"]), ValueError, r"real numbers"),
        ([0.1, None], ValueError, r"real numbers.*dtype object"),
    ],
)
def test_torch_slopes_that_are_not_finite_reals_are_refused(weight, error, match):
    with pytest.raises(error, match=match):
        migration.slopes_from_torch(weight)
    with pytest.raises(error, match=match):
        migration.from_torch_prelu(weight)


@pytest.mark.parametrize("rank", [np.int64(4), np.int32(4), 4])
def test_any_integral_rank(rank):
    alpha = migration.slopes_from_torch([0.1, 0.2, 0.3], rank=rank, data_format="channels_last")
    assert alpha.shape == (1, 1, 3)


@pytest.mark.parametrize(
    "slopes,rank,match",
    [
        ([0.1, 0.2], True, r"`rank` must be a positive int.*Received: rank=True"),
        ([0.1, 0.2], "4", r"`rank` must be a positive int.*Received: rank='4'"),
        ([0.1, 0.2], 4.0, r"`rank` must be a positive int.*Received: rank=4.0"),
        ([0.1], 0, r"`rank` must be a positive int.*batch included.*Received: rank=0"),
        ([0.1, 0.2], 1, r"2 per-channel slopes need inputs of rank >= 2.*Received: rank=1"),
    ],
)
def test_bad_rank_messages(slopes, rank, match):
    with pytest.raises(ValueError, match=match):
        migration.slopes_from_torch(slopes, rank=rank)


def test_one_torch_slope_on_rank_1_inputs():
    layer = migration.from_torch_prelu([0.5], rank=1)
    assert layer.layout == "scalar"
    np.testing.assert_array_equal(_numpy(layer(np.array([-2.0, 2.0], "float32"))), [-1.0, 2.0])


def test_complex_torch_weights_are_refused():
    torch = pytest.importorskip("torch")
    weight = torch.tensor([0.1 + 1j, 0.2], dtype=torch.complex64)
    with pytest.raises(TypeError, match=r"imaginary part.*Received: weight.dtype=torch.complex64"):
        migration.from_torch_prelu(weight)
    with pytest.raises(ValueError, match="NaN or infinite"):
        migration.from_torch_prelu(torch.tensor([float("nan")]))
