"""Forward pass and both gradients against the NumPy reference, on every
backend, for the fast kernel and the pure `keras.ops` reference kernel."""

import keras
import numpy as np
import pytest

import keras_prelu
from keras_prelu import _kernels as kernels
from keras_prelu._kernels import reference as reference_kernel
from tests import reference
from tests.backend_utils import layer_grads
from tests.backend_utils import value_and_grads

SPECIAL = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1.5, 2.0, -1e-30], "float32")

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
    # Large enough per sample for the XLA-compiled TensorFlow gradient.
    ((2, 16, 32, 32), (1, 1, 32)),
]

KERNELS = {"fast": kernels.prelu, "reference": reference_kernel.prelu}
if keras.backend.backend() == "torch":
    from keras_prelu._kernels import torch as torch_kernels

    # The fused kernels (used on CUDA and under torch.compile) and the
    # fallback for torch builds without them; "fast" is the sliced CPU kernel.
    KERNELS["torch_fused"] = torch_kernels.FusedPReLU.apply
    KERNELS["torch_where"] = torch_kernels.WherePReLU.apply


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


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("x_shape,alpha_shape", LAYOUTS)
def test_kernel_matches_numpy_reference(kernel, x_shape, alpha_shape):
    x, alpha, upstream = _inputs(x_shape, alpha_shape)
    out, grad_x, grad_alpha = value_and_grads(KERNELS[kernel], x, alpha, upstream)
    want_grad_x, want_grad_alpha = reference.gradients(x, alpha, upstream)
    np.testing.assert_array_equal(out, reference.forward(x, alpha))
    np.testing.assert_array_equal(grad_x, want_grad_x)
    assert grad_alpha.shape == alpha.shape
    np.testing.assert_allclose(grad_alpha, want_grad_alpha, rtol=1e-5, atol=1e-5)


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
    want_grad_x, want_grad_alpha = reference.gradients(x, alpha, upstream)
    assert out.shape == grad_x.shape == x.shape and grad_alpha.shape == alpha.shape
    np.testing.assert_array_equal(out, reference.forward(x, alpha))
    np.testing.assert_array_equal(grad_x, want_grad_x)
    np.testing.assert_allclose(grad_alpha, want_grad_alpha, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("x_shape,alpha_shape", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_fast_kernel_equals_reference_kernel(x_shape, alpha_shape, dtype):
    x, alpha, upstream = (_as_dtype(a, dtype) for a in _inputs(x_shape, alpha_shape, seed=3))
    fast = value_and_grads(kernels.prelu, x, alpha, upstream)
    slow = value_and_grads(reference_kernel.prelu, x, alpha, upstream)
    for got, want in zip(fast, slow, strict=True):
        assert got.dtype == want.dtype == x.dtype
    for got, want in zip(fast[:2], slow[:2], strict=True):
        np.testing.assert_array_equal(got.astype("float32"), want.astype("float32"))
    if dtype in ("float32", "float64"):
        np.testing.assert_allclose(fast[2], slow[2], rtol=1e-5, atol=1e-5)
        return
    # In half precision the two kernels round differently: the fast kernels
    # accumulate the slope gradient in float32, the reference sums in the
    # input dtype (as the backend's reduction does). Both are checked against
    # the exact float64 sum of the same half-precision terms, within rounding
    # error bounds for their summation.
    exact, magnitude = _exact_slope_gradient(x, alpha, upstream)
    import ml_dtypes

    eps = float(ml_dtypes.finfo(x.dtype).eps)
    terms = x.size // alpha.size
    _assert_within(fast[2], exact, 2 * eps * (np.abs(exact) + magnitude))
    _assert_within(slow[2], exact, 2 * eps * (np.abs(exact) + terms * magnitude))


def _exact_slope_gradient(x, alpha, upstream):
    """The float64 slope gradient of half-precision inputs and the sum of the
    magnitudes of its terms (the scale of any summation's rounding error)."""
    x64, upstream64 = x.astype("float64"), upstream.astype("float64")
    with np.errstate(invalid="ignore"):
        terms = np.where(x64 >= 0, 0.0, upstream64 * x64)
    # Each term is rounded to the input dtype before it is summed.
    terms = terms.astype(x.dtype).astype("float64")
    exact = reference.sum_to_shape(terms, alpha.shape)
    with np.errstate(invalid="ignore"):
        magnitude = reference.sum_to_shape(np.abs(terms), alpha.shape)
    return exact, magnitude


def _assert_within(got, want, bound):
    got = got.astype("float64")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want) & np.isfinite(bound)
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    error = np.abs(got[finite] - want[finite])
    assert np.all(error <= bound[finite]), (error - bound[finite]).max()


@pytest.mark.requires_backend("torch")
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize(
    "x_shape,alpha_shape", LAYOUTS + [((5, 4, 3), (5, 4, 3)), ((3, 4), (1, 4))]
)
def test_torch_backward_in_slices_equals_one_slice(monkeypatch, x_shape, alpha_shape, dtype):
    from keras_prelu._kernels import torch as torch_kernels

    x, alpha, upstream = (_as_dtype(a, dtype) for a in _inputs(x_shape, alpha_shape, seed=5))
    whole = value_and_grads(torch_kernels.SlicedPReLU.apply, x, alpha, upstream)
    # One batch row per slice, the most slices there can be.
    monkeypatch.setattr(torch_kernels, "CPU_SLICE_ELEMENTS", 1)
    sliced = value_and_grads(torch_kernels.SlicedPReLU.apply, x, alpha, upstream)
    for got, want in zip(sliced, whole, strict=True):
        assert got.dtype == want.dtype
    np.testing.assert_array_equal(sliced[1].astype("float64"), whole[1].astype("float64"))
    tolerance = 1e-6 if dtype != "bfloat16" else 1e-2
    np.testing.assert_allclose(
        sliced[2].astype("float64"), whole[2].astype("float64"), rtol=tolerance, atol=tolerance
    )
    if dtype == "float32":
        want_grad_x, want_grad_alpha = reference.gradients(x, alpha, upstream)
        np.testing.assert_array_equal(sliced[1], want_grad_x)
        np.testing.assert_allclose(sliced[2], want_grad_alpha, rtol=1e-5, atol=1e-5)


def _as_dtype(array, dtype):
    if dtype == "bfloat16":
        import ml_dtypes

        return array.astype(ml_dtypes.bfloat16)
    return array.astype(dtype)


def test_wide_layouts_take_the_matmul_reduction():
    from keras_prelu._kernels._reduce import use_matmul_reduction

    assert use_matmul_reduction(4, (8, 8, 16)) and use_matmul_reduction(4, (1, 16, 64))
    assert not use_matmul_reduction(4, (1, 1, 3)) and not use_matmul_reduction(4, (8, 1, 16))


@pytest.mark.requires_backend("tensorflow")
def test_tensorflow_compiles_only_large_gradients():
    import tensorflow as tf

    from keras_prelu._kernels import tensorflow as tf_kernel

    assert tf_kernel._is_large(tf.zeros((2, 16, 32, 32)))
    assert not tf_kernel._is_large(tf.zeros((2, 8, 8, 16)))


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
def test_layer_matches_numpy_reference(kwargs, shape):
    layer = keras_prelu.PReLU(
        alpha_initializer=keras.initializers.RandomUniform(0.1, 0.5, seed=2), **kwargs
    )
    layer.build(shape)
    x, _, upstream = _inputs(shape, ())
    alpha = keras.ops.convert_to_numpy(layer.alpha)
    out, grad_x, grad_alpha = layer_grads(layer, x, upstream)
    want_grad_x, want_grad_alpha = reference.gradients(x, alpha, upstream)
    np.testing.assert_array_equal(out, reference.forward(x, alpha))
    np.testing.assert_array_equal(grad_x, want_grad_x)
    np.testing.assert_allclose(grad_alpha, want_grad_alpha, rtol=1e-5, atol=1e-5)


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


def test_builtin_gets_zero_gradient_at_zero_and_we_do_not():
    """The headline difference from keras.layers.PReLU, measured."""
    x = np.zeros((1, 4), "float32")
    upstream = np.ones_like(x)
    builtin = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25))
    ours = keras_prelu.PReLU()
    builtin.build(x.shape)
    ours.build(x.shape)
    assert layer_grads(builtin, x, upstream)[1].max() == 0.0
    np.testing.assert_array_equal(layer_grads(ours, x, upstream)[1], 1.0)


@pytest.mark.requires_backend("torch")
def test_torch_backward_is_differentiable():
    """Second-order gradients (e.g. gradient penalties) flow through the backward."""
    import torch

    x_np, alpha_np, upstream_np = _inputs((3, 4, 5), (1, 5), seed=7)
    x_np[np.isnan(x_np) | np.isinf(x_np)] = 1.0
    x = torch.tensor(x_np, requires_grad=True)
    alpha = torch.tensor(alpha_np, requires_grad=True)
    upstream = torch.tensor(upstream_np)
    (grad_x,) = torch.autograd.grad(keras_prelu.prelu(x, alpha), x, upstream, create_graph=True)
    (grad_alpha_of_grad_x,) = torch.autograd.grad(grad_x.sum(), alpha)
    # d/dalpha of sum(upstream * (1 if x >= 0 else alpha)).
    want = np.where(x_np >= 0, 0.0, upstream_np).sum(axis=(0, 1)).reshape(1, 5)
    np.testing.assert_allclose(grad_alpha_of_grad_x.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.requires_backend("torch")
@pytest.mark.parametrize("x_shape,alpha_shape", [((4, 5, 6, 3), (1, 1, 3)), ((2, 7), (2, 7))])
def test_torch_frozen_slope_gets_no_gradient(x_shape, alpha_shape):
    import torch

    from keras_prelu._kernels import torch as torch_kernels

    x_np, alpha_np, upstream_np = _inputs(x_shape, alpha_shape, seed=9)
    for function in (
        torch_kernels.PReLUFunction,
        torch_kernels.FusedPReLU,
        torch_kernels.WherePReLU,
    ):
        x = torch.tensor(x_np, requires_grad=True)
        alpha = torch.tensor(alpha_np)  # frozen: no gradient wanted
        function.apply(x, alpha).backward(torch.tensor(upstream_np))
        assert alpha.grad is None
        np.testing.assert_array_equal(
            x.grad.numpy(), reference.gradients(x_np, alpha_np, upstream_np)[0]
        )
