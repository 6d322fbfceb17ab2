"""Forward pass and both gradients against the NumPy reference, on every
backend, for every kernel path: the inference and training kernels (also
traced and compiled where the backend has those modes), the pure `keras.ops`
reference kernel, and the fixed PyTorch kernel pairs."""

import keras
import numpy as np
import pytest

import keras_prelu
from keras_prelu import _kernels as kernels
from keras_prelu._kernels import reference as reference_kernel
from tests import numpy_oracle
from tests.backend_utils import backend_kernel_paths
from tests.backend_utils import from_torch
from tests.backend_utils import layer_grads
from tests.backend_utils import to_torch
from tests.backend_utils import value_and_grads

BACKEND = keras.backend.backend()
SPECIAL = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1.5, 2.0, -1e-30], "float32")
# Every value x takes in the special grid, and every kind of slope: negative,
# zeros of both signs, between 0 and 1, above 1, and large. Only finite ones:
# a NaN or infinite slope (training diverged) gives unspecified outputs.
GRID_X = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1.5, 2.0, -1e-30, -3.0, 7.0], "float32")
GRID_SLOPES = np.array([-0.5, -0.0, 0.0, 0.25, 2.0, 1000.0], "float32")
# (x dtype, slope dtype): a float32 slope next to half-precision inputs is
# how the layer runs under mixed precision.
DTYPES = [
    ("float32", "float32"),
    ("float64", "float64"),
    ("float16", "float16"),
    ("bfloat16", "bfloat16"),
    ("float16", "float32"),
    ("bfloat16", "float32"),
]

# (x shape, alpha shape): full, channel-wise, scalar, shared axes, and a
# slope that broadcasts over a leading axis it lacks.
LAYOUTS = [
    ((4, 5, 6, 3), (5, 6, 3)),
    ((4, 5, 6, 3), (1, 1, 3)),
    ((4, 3, 5, 6), (3, 1, 1)),
    ((4, 5, 6, 3), ()),
    ((4, 5, 6, 3), (1, 6, 1)),
    ((4, 7), (7,)),
    # Wide enough for the matmul reduction of the slope gradient.
    ((2, 8, 8, 16), (8, 8, 16)),
    ((2, 4, 16, 64), (1, 16, 64)),
    # Large enough per sample for the XLA-compiled TensorFlow kernels.
    ((2, 16, 32, 32), (1, 1, 32)),
]


def _kernel_paths():
    paths = {
        "prelu": kernels.prelu,
        "training": kernels.prelu_training,
        "reference": reference_kernel.prelu,
    }
    if BACKEND == "tensorflow":
        import tensorflow as tf

        # In a graph and under XLA, the training kernel nests its own
        # compiled functions in the caller's.
        for name in ("prelu", "training"):
            paths[f"{name}_graph"] = tf.function(paths[name], autograph=False)
            paths[f"{name}_xla"] = tf.function(paths[name], jit_compile=True, autograph=False)
    return {**paths, **backend_kernel_paths()}


KERNELS = _kernel_paths()


def _as_dtype(array, dtype):
    if dtype == "bfloat16":
        import ml_dtypes

        dtype = ml_dtypes.bfloat16
    return np.asarray(array).astype(dtype)


def _inputs(x_shape, alpha_shape, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    # Exact zeros and the special values, to pin the convention down.
    flat = x.reshape(-1)
    flat[: min(flat.size, SPECIAL.size)] = SPECIAL[: flat.size].astype(dtype)
    flat[-3:] = 0.0
    alpha = rng.uniform(0.05, 0.6, alpha_shape).astype(dtype)
    upstream = rng.standard_normal(x_shape).astype(dtype)
    return x, alpha, upstream


def _exact_slope_gradient(x, alpha, upstream):
    """The float64 slope gradient and the sum of the magnitudes of its terms
    (the scale of any summation's rounding error)."""
    x64 = x.astype("float64")
    with np.errstate(invalid="ignore", over="ignore"):
        terms = np.where(x64 >= 0, 0.0, upstream.astype("float64") * x64)
    # Each term is rounded to the input dtype before it is summed.
    terms = _as_dtype(terms, x.dtype.name).astype("float64")
    exact = numpy_oracle.sum_to_shape(terms, np.shape(alpha))
    with np.errstate(invalid="ignore"):
        magnitude = numpy_oracle.sum_to_shape(np.abs(terms), np.shape(alpha))
    return exact, magnitude


def _assert_within(got, want, bound):
    got = got.astype("float64")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want) & np.isfinite(bound)
    exact = ~finite & ~np.isnan(want)
    np.testing.assert_array_equal(got[exact], want[exact])
    error = np.abs(got[finite] - want[finite])
    assert np.all(error <= bound[finite]), (error - bound[finite]).max()


# Where a zero output may have the other sign than the reference's (the
# values are equal). TensorFlow's exportable pattern, relu(x) + (-alpha) *
# relu(-x), adds two terms, so it can turn -0.0 into +0.0 (x == -0.0, or
# x < 0 with a zero slope), never +0.0 into -0.0. PyTorch's forward,
# `torch.prelu`, computes alpha * x at x == 0, which flips the zero's sign
# when the slope has its sign bit set.
TF_EXPORTABLE = (
    {"prelu", "prelu_graph", "prelu_xla", "tf_exportable"} if BACKEND == "tensorflow" else set()
)
TORCH_FUSED_FORWARD = (
    {"prelu", "training", "torch_fused", "torch_sliced", "torch_public"}
    if BACKEND == "torch"
    else set()
)


def _assert_zero_signs(out, x, alpha, kernel):
    want = numpy_oracle.forward(x, alpha)
    differ = (np.signbit(out) != np.signbit(want)) & ~np.isnan(want.astype("float64"))
    if kernel in TF_EXPORTABLE:
        differ &= ~((want == 0) & ~np.signbit(out))
    if kernel in TORCH_FUSED_FORWARD:
        slopes = np.broadcast_to(alpha.astype("float64"), x.shape)
        differ &= ~((x == 0) & np.signbit(slopes))
    assert not differ.any(), (x[differ], out[differ])


def _assert_matches_reference(
    results, x, alpha, upstream, summed_in_input_dtype=False, kernel=None
):
    """Output exactly, zeros with the reference's sign (but for
    `_assert_zero_signs`'s exceptions); input gradient exactly (NaN where the reference
    has NaN; zeros of either sign equal); the slope gradient within rounding
    bounds of the exact sum of its terms; and every dtype as the contract
    says."""
    out, grad_x, grad_alpha = results
    assert out.dtype == grad_x.dtype == x.dtype and out.shape == grad_x.shape == x.shape
    assert grad_alpha.dtype == alpha.dtype and grad_alpha.shape == alpha.shape
    want_grad_x, _ = numpy_oracle.gradients(x, alpha, upstream)
    np.testing.assert_array_equal(
        out.astype("float64"), numpy_oracle.forward(x, alpha).astype("float64")
    )
    _assert_zero_signs(out, x, alpha, kernel)
    np.testing.assert_array_equal(grad_x.astype("float64"), want_grad_x.astype("float64"))
    exact, magnitude = _exact_slope_gradient(x, alpha, upstream)
    eps = float(np.finfo(np.float32).eps)
    if x.dtype.name in ("float16", "bfloat16") and summed_in_input_dtype:
        import ml_dtypes

        # The reference kernel leaves the sum to the backend, in the input dtype.
        eps = float(ml_dtypes.finfo(x.dtype).eps)
        magnitude = magnitude * (x.size // max(1, alpha.size))
    elif x.dtype.name == "float64":
        eps = float(np.finfo(np.float64).eps)
    # The result is also rounded once to the slope's dtype.
    rounding = float(np.finfo(np.float32).eps) if alpha.dtype.name != "float64" else 0.0
    if alpha.dtype.name in ("float16", "bfloat16"):
        import ml_dtypes

        rounding = float(ml_dtypes.finfo(alpha.dtype).eps)
    with np.errstate(invalid="ignore", over="ignore"):
        bound = 2 * eps * (np.abs(exact) + magnitude) + rounding * np.abs(exact)
    _assert_within(grad_alpha, exact, bound)


# Kernels against the NumPy reference ------------------------------------------------


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("x_shape,alpha_shape", LAYOUTS)
def test_kernel_matches_numpy_reference(kernel, x_shape, alpha_shape):
    x, alpha, upstream = _inputs(x_shape, alpha_shape)
    results = value_and_grads(KERNELS[kernel], x, alpha, upstream)
    _assert_matches_reference(results, x, alpha, upstream, kernel=kernel)


def _grid(dtype, slope_dtype, layout):
    """x, slopes and upstream covering every special x with every slope.

    "elementwise": x is (2, |GRID_X|, |GRID_SLOPES|) with a slope per element
    (column j has GRID_SLOPES[j]), so each slope-gradient entry sums two
    terms and is NaN only where x is. "channelwise": a slope per column and
    only the finite x values, so the summed gradients are finite.
    """
    values = GRID_X if layout == "elementwise" else GRID_X[np.isfinite(GRID_X)]
    x = np.broadcast_to(values[None, :, None], (2, values.size, GRID_SLOPES.size))
    if layout == "elementwise":
        alpha = np.broadcast_to(GRID_SLOPES, (values.size, GRID_SLOPES.size))
    else:
        alpha = GRID_SLOPES.reshape(1, -1)
    upstream = np.random.default_rng(11).uniform(-1, 1, x.shape)
    upstream[0, 0] = 0.0  # 0 * inf: NaN in the reference too
    return _as_dtype(x, dtype), _as_dtype(alpha, slope_dtype), _as_dtype(upstream, dtype)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("dtype,slope_dtype", DTYPES)
@pytest.mark.parametrize("layout", ["elementwise", "channelwise"])
def test_special_values_and_slopes(kernel, dtype, slope_dtype, layout):
    """NaN and infinite inputs and zeros of both signs, with slopes of every
    sign and size, give the reference's values and gradients (zero outputs'
    signs included)."""
    x, alpha, upstream = _grid(dtype, slope_dtype, layout)
    results = value_and_grads(KERNELS[kernel], x, alpha, upstream)
    _assert_matches_reference(
        results, x, alpha, upstream, summed_in_input_dtype=kernel == "reference", kernel=kernel
    )


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_non_finite_upstream_gradient(kernel, dtype):
    """An infinite or NaN upstream gradient next to x >= 0 leaves the slope
    gradient alone (the reference's d/dalpha is 0 there, not 0 * inf)."""
    x, alpha, _ = _grid(dtype, "float32", "channelwise")
    upstream = np.ones(x.shape, dtype)
    upstream[0, list(GRID_X[np.isfinite(GRID_X)]).index(2.0)] = np.inf
    upstream[1, list(GRID_X[np.isfinite(GRID_X)]).index(7.0)] = np.nan
    upstream[1, list(GRID_X[np.isfinite(GRID_X)]).index(0.0)] = -np.inf
    alpha = np.abs(alpha.astype("float32"))
    results = value_and_grads(KERNELS[kernel], x, alpha, upstream)
    _assert_matches_reference(results, x, alpha, upstream, kernel=kernel)
    assert np.isfinite(results[2]).all()


@pytest.mark.requires_backend("tensorflow")
@pytest.mark.parametrize("kernel", ["prelu", "training", "prelu_graph", "training_graph"])
@pytest.mark.parametrize("dtype,slope_dtype", [("float32", "float32"), ("float16", "float32")])
def test_tensorflow_compiled_kernels_on_special_values(monkeypatch, kernel, dtype, slope_dtype):
    """The XLA-compiled forward and backward, which large tensors take."""
    import tensorflow as tf

    from keras_prelu._kernels import tensorflow as tf_kernels

    monkeypatch.setattr(tf_kernels, "_XLA_MIN_ELEMENTS_PER_SAMPLE", 1)
    x, alpha, upstream = _grid(dtype, slope_dtype, "elementwise")
    assert tf_kernels._is_large(tf.constant(x))
    fn = _kernel_paths()[kernel]  # traced afresh with the threshold patched
    results = value_and_grads(fn, x, alpha, upstream)
    _assert_matches_reference(results, x, alpha, upstream, kernel=kernel)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize(
    "x_shape,alpha_shape", [((), ()), ((0, 3, 4), (1, 4)), ((0, 5), ()), ((3,), (3,))]
)
def test_kernel_on_scalar_and_empty_inputs(kernel, x_shape, alpha_shape):
    rng = np.random.default_rng(4)
    x = np.asarray(rng.standard_normal(x_shape), "float32")
    alpha = np.asarray(rng.uniform(0.1, 0.5, alpha_shape), "float32")
    upstream = np.asarray(rng.standard_normal(x_shape), "float32")
    out, grad_x, grad_alpha = value_and_grads(KERNELS[kernel], x, alpha, upstream)
    want_grad_x, want_grad_alpha = numpy_oracle.gradients(x, alpha, upstream)
    assert out.shape == grad_x.shape == x.shape and grad_alpha.shape == alpha.shape
    np.testing.assert_array_equal(out, numpy_oracle.forward(x, alpha))
    np.testing.assert_array_equal(grad_x, want_grad_x)
    np.testing.assert_allclose(grad_alpha, want_grad_alpha, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("x_shape,alpha_shape", [LAYOUTS[i] for i in (0, 1, 3, 7, 8)])
@pytest.mark.parametrize("dtype,slope_dtype", DTYPES)
def test_kernels_in_every_dtype(x_shape, alpha_shape, dtype, slope_dtype):
    x, alpha, upstream = _inputs(x_shape, alpha_shape, seed=3)
    x, upstream = _as_dtype(x, dtype), _as_dtype(upstream, dtype)
    alpha = _as_dtype(alpha, slope_dtype)
    for name in ("prelu", "training", "reference"):
        results = value_and_grads(KERNELS[name], x, alpha, upstream)
        _assert_matches_reference(
            results, x, alpha, upstream, summed_in_input_dtype=name == "reference", kernel=name
        )


# PyTorch kernel paths ---------------------------------------------------------------


@pytest.mark.requires_backend("torch")
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize(
    "x_shape,alpha_shape", LAYOUTS + [((5, 4, 3), (5, 4, 3)), ((3, 4), (1, 4))]
)
def test_torch_backward_in_slices_equals_one_slice(monkeypatch, x_shape, alpha_shape, dtype):
    from keras_prelu._kernels import torch as torch_kernels

    x, alpha, upstream = (_as_dtype(a, dtype) for a in _inputs(x_shape, alpha_shape, seed=5))
    whole = value_and_grads(torch_kernels.prelu_sliced, x, alpha, upstream)
    # One batch row per slice, the most slices there can be.
    monkeypatch.setattr(torch_kernels, "_CPU_SLICE_ELEMENTS", 1)
    sliced = value_and_grads(torch_kernels.prelu_sliced, x, alpha, upstream)
    for got, want in zip(sliced, whole, strict=True):
        assert got.dtype == want.dtype
    np.testing.assert_array_equal(sliced[1].astype("float64"), whole[1].astype("float64"))
    tolerance = 1e-6 if dtype != "bfloat16" else 1e-2
    np.testing.assert_allclose(
        sliced[2].astype("float64"), whole[2].astype("float64"), rtol=tolerance, atol=tolerance
    )
    _assert_matches_reference(sliced, x, alpha, upstream)


@pytest.mark.requires_backend("torch")
@pytest.mark.parametrize("dtype,slope_dtype", [("float32", "float32"), ("float16", "float32")])
def test_torch_public_op_fallback(monkeypatch, dtype, slope_dtype):
    """Without the private backward kernels (torch builds that lack them) the
    layer's backward falls back to `torch.where` with the same results."""
    from keras_prelu._kernels import torch as torch_kernels

    monkeypatch.setattr(torch_kernels, "_HAS_FUSED_BACKWARD", False)
    monkeypatch.setattr(torch_kernels, "_HAS_VECTOR_KERNELS", False)
    used = []
    for name in ("_backward_where",):
        original = getattr(torch_kernels, name)
        monkeypatch.setattr(
            torch_kernels,
            name,
            lambda *a, _f=original, _n=name, **k: used.append(_n) or _f(*a, **k),
        )
    for layout in ("elementwise", "channelwise"):
        x, alpha, upstream = _grid(dtype, slope_dtype, layout)
        results = value_and_grads(kernels.prelu, x, alpha, upstream)
        _assert_matches_reference(results, x, alpha, upstream, kernel="prelu")
    assert set(used) == {"_backward_where"}


@pytest.mark.requires_backend("torch")
def test_torch_backward_is_differentiable():
    """Second-order gradients (e.g. gradient penalties) flow through the backward."""
    import torch

    x_np, alpha_np, upstream_np = _inputs((3, 4, 5), (1, 5), seed=7)
    x_np[np.isnan(x_np) | np.isinf(x_np)] = 1.0
    x = to_torch(x_np).requires_grad_()
    alpha = to_torch(alpha_np).requires_grad_()
    upstream = to_torch(upstream_np)
    (grad_x,) = torch.autograd.grad(keras_prelu.prelu(x, alpha), x, upstream, create_graph=True)
    np.testing.assert_array_equal(
        from_torch(grad_x.detach()), numpy_oracle.gradients(x_np, alpha_np, upstream_np)[0]
    )
    (grad_alpha_of_grad_x,) = torch.autograd.grad(grad_x.sum(), alpha)
    # d/dalpha of sum(upstream * (1 if x >= 0 else alpha)).
    want = np.where(x_np >= 0, 0.0, upstream_np).sum(axis=(0, 1)).reshape(1, 5)
    np.testing.assert_allclose(from_torch(grad_alpha_of_grad_x), want, rtol=1e-5, atol=1e-6)


@pytest.mark.requires_backend("torch")
@pytest.mark.parametrize("x_shape,alpha_shape", [((4, 5, 6, 3), (1, 1, 3)), ((2, 7), (2, 7))])
def test_torch_frozen_slope_gets_no_gradient(x_shape, alpha_shape):

    from keras_prelu._kernels import torch as torch_kernels

    x_np, alpha_np, upstream_np = _inputs(x_shape, alpha_shape, seed=9)
    for function in (
        torch_kernels.prelu,
        torch_kernels.prelu_fused,
        torch_kernels.prelu_sliced,
        torch_kernels.prelu_where,
    ):
        x = to_torch(x_np).requires_grad_()
        alpha = to_torch(alpha_np)  # frozen: no gradient wanted
        function(x, alpha).backward(to_torch(upstream_np))
        assert alpha.grad is None
        np.testing.assert_array_equal(
            from_torch(x.grad), numpy_oracle.gradients(x_np, alpha_np, upstream_np)[0]
        )


# Size-dependent paths ---------------------------------------------------------------


def test_wide_layouts_take_the_matmul_reduction():
    from keras_prelu._kernels._reduce import use_matmul_reduction

    assert use_matmul_reduction(4, (8, 8, 16)) and use_matmul_reduction(4, (1, 16, 64))
    assert not use_matmul_reduction(4, (1, 1, 3)) and not use_matmul_reduction(4, (8, 1, 16))


@pytest.mark.requires_backend("tensorflow")
def test_tensorflow_compiles_only_large_tensors():
    import tensorflow as tf

    from keras_prelu._kernels import tensorflow as tf_kernels

    assert tf_kernels._is_large(tf.zeros((2, 16, 32, 32)))
    assert not tf_kernels._is_large(tf.zeros((2, 8, 8, 16)))


# The convention ---------------------------------------------------------------------


def test_gradient_at_zero_is_one():
    x = np.zeros((2, 3), "float32")
    alpha = np.full((3,), 0.25, "float32")
    _, grad_x, grad_alpha = value_and_grads(keras_prelu.prelu, x, alpha, np.ones_like(x))
    np.testing.assert_array_equal(grad_x, np.ones_like(x))
    np.testing.assert_array_equal(grad_alpha, np.zeros_like(alpha))


def test_nan_and_inf_follow_the_formula():
    x = np.array([[np.nan, np.inf, -np.inf]], "float32")
    alpha = np.array([0.5, 0.5, 0.5], "float32")
    out, grad_x, grad_alpha = value_and_grads(keras_prelu.prelu, x, alpha, np.ones_like(x))
    np.testing.assert_array_equal(out, [[np.nan, np.inf, -np.inf]])
    # NaN compares false with 0, so it takes the negative branch.
    np.testing.assert_array_equal(grad_x, [[0.5, 1.0, 0.5]])
    np.testing.assert_array_equal(grad_alpha, [np.nan, 0.0, -np.inf])


# The layer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,shape",
    [
        ({}, (3, 4, 5, 2)),
        ({"shared_axes": [1, 2]}, (3, 4, 5, 2)),
        ({"shared_axes": [-3, -2]}, (3, 4, 5, 2)),
        ({"layout": "channelwise"}, (3, 4, 5, 2)),
        ({"layout": "channelwise", "data_format": "channels_first"}, (3, 2, 4, 5)),
        ({"layout": "scalar"}, (3, 4, 5, 2)),
        ({"layout": "channelwise"}, (6, 7)),
    ],
)
@pytest.mark.parametrize("training", [None, True])
def test_layer_matches_numpy_reference(kwargs, shape, training):
    layer = keras_prelu.PReLU(
        alpha_initializer=keras.initializers.RandomUniform(0.1, 0.5, seed=2), **kwargs
    )
    layer.build(shape)
    x, _, upstream = _inputs(shape, ())
    alpha = keras.ops.convert_to_numpy(layer.alpha)
    results = layer_grads(layer, x, upstream, training=training)
    kernel = "training" if training else "prelu"
    _assert_matches_reference(results, x, alpha, upstream, kernel=kernel)


@pytest.mark.parametrize("training", [None, True])
def test_mixed_precision_slope_gradient_stays_float32(training):
    """Under mixed_float16 the slope stays a float32 variable and its
    gradient is summed and returned in float32: 65536 terms of -1 give
    -65536, beyond float16's range (where a float16 sum would be -inf),
    while the output is float16."""
    keras.config.set_dtype_policy("mixed_float16")
    layer = keras_prelu.PReLU(layout="channelwise", data_format="channels_last")
    layer.build((None, 32, 32, 16))
    assert layer.alpha.dtype == "float32"
    x = -np.ones((64, 32, 32, 16), "float16")
    out, grad_x, grad_alpha = layer_grads(layer, x, np.ones_like(x), training=training)
    assert out.dtype == grad_x.dtype == np.float16 and grad_alpha.dtype == np.float32
    np.testing.assert_array_equal(out, np.float16(-0.25))
    np.testing.assert_array_equal(grad_x, np.float16(0.25))
    np.testing.assert_array_equal(grad_alpha, np.full((1, 1, 16), -65536.0, "float32"))


def test_layer_casts_integer_inputs_to_its_compute_dtype():
    keras.config.set_dtype_policy("mixed_float16")
    layer = keras_prelu.PReLU(alpha_initializer=0.5)
    out = layer(np.array([[-4, 0, 2]], "int32"))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), [[-2.0, 0.0, 2.0]])


@pytest.mark.parametrize("num_parameters", [1, 3])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_matches_torch_nn_prelu(num_parameters, data_format):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x_nchw = rng.standard_normal((2, 3, 4, 5)).astype("float32")
    x_nchw[0, 0, 0, :] = 0.0  # torch's own backward gives alpha here, not 1
    slopes = rng.uniform(0.1, 0.5, num_parameters).astype("float32")
    upstream_nchw = rng.standard_normal(x_nchw.shape).astype("float32")

    module = torch.nn.PReLU(num_parameters)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(slopes))
    x_t = torch.tensor(x_nchw, requires_grad=True)
    torch_out = module(x_t)
    torch_out.backward(torch.tensor(upstream_nchw))

    to_layer = (
        (lambda a: a) if data_format == "channels_first" else (lambda a: a.transpose(0, 2, 3, 1))
    )
    if num_parameters == 1:
        layer = keras_prelu.PReLU(layout="scalar")
        layer.build((None,) + to_layer(x_nchw).shape[1:])
        layer.alpha.assign(slopes[0])
    else:
        layer = keras_prelu.PReLU(layout="channelwise", data_format=data_format)
        layer.build((None,) + to_layer(x_nchw).shape[1:])
        layer.alpha.assign(slopes.reshape(layer.alpha.shape))
    out, grad_x, grad_alpha = layer_grads(layer, to_layer(x_nchw), to_layer(upstream_nchw))

    np.testing.assert_array_equal(out, to_layer(torch_out.detach().numpy()))
    away_from_zero = to_layer(x_nchw) != 0
    np.testing.assert_array_equal(
        grad_x[away_from_zero], to_layer(x_t.grad.numpy())[away_from_zero]
    )
    np.testing.assert_allclose(grad_alpha.reshape(-1), module.weight.grad.numpy(), rtol=1e-5)
    # At x == 0 torch's kernel uses alpha; the seed's convention (and ours) is 1.
    np.testing.assert_array_equal(grad_x[~away_from_zero], to_layer(upstream_nchw)[~away_from_zero])


def test_gradient_at_zero_is_one_whatever_the_builtin_gives():
    """The headline difference from keras.layers.PReLU, measured without
    depending on it: in Keras 3.15 the built-in's gradient at x == 0 is 0
    (it is relu's), and this test keeps passing the day that changes."""
    x = np.array([[-1.0, 0.0, 0.0, 2.0]], "float32")
    upstream = np.ones_like(x)
    builtin = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25))
    ours = keras_prelu.PReLU()
    builtin.build(x.shape)
    ours.build(x.shape)
    builtin_grad_x = layer_grads(builtin, x, upstream)[1]
    np.testing.assert_array_equal(layer_grads(ours, x, upstream)[1], [[0.25, 1.0, 1.0, 1.0]])
    # Away from zero the two agree; at zero the built-in gives what it gives.
    np.testing.assert_array_equal(builtin_grad_x[x != 0], [0.25, 1.0])
