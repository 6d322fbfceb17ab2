"""Function transforms: each one the backend offers, on every kernel path,
for the op and the layer (inference and training calls), in float32 and
float64, agrees with the same transform of the plain-op reference
(`keras_prelu._kernels.reference`), the x == 0 convention included.

Then two uses written as a user would: per-sample gradient clipping
(DP-SGD's `vmap(grad)`) and a Hessian-vector product of a model's loss.
docs/kernels.md has the table of transforms these tests hold.
"""

import keras
import numpy as np
import pytest

import keras_prelu
from keras_prelu._kernels import reference
from tests import numpy_oracle
from tests.backend_utils import backend_kernel_paths

BACKEND = keras.backend.backend()
SHAPE = (2, 3, 4)  # a batch of 2; one slope per channel (4)
TOLERANCE = {"float32": dict(rtol=2e-5, atol=2e-5), "float64": dict(rtol=1e-10, atol=1e-12)}


def _inputs(dtype, shape=SHAPE, seed=0):
    """x with zeros of both signs (the convention's point), slopes of both
    signs, and a tangent for each."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x.reshape(-1)[:4] = [0.0, -0.0, 0.0, -0.0]
    alpha = rng.uniform(-0.3, 0.6, shape[-1:])
    tangents = rng.standard_normal(shape), rng.standard_normal(shape[-1:])
    return tuple(np.asarray(v, dtype) for v in (x, alpha, *tangents))


def _layer_path(training):
    """The layer as a function of (x, alpha), through `stateless_call`."""
    layers = {}

    def call(x, alpha):
        key = tuple(x.shape), keras.backend.standardize_dtype(alpha.dtype)
        if key not in layers:
            layer = keras_prelu.PReLU(
                layout="channelwise", data_format="channels_last", dtype=key[1]
            )
            layer.build((None, *key[0][1:]))
            layers[key] = layer
        layer = layers[key]
        slopes = keras.ops.reshape(alpha, layer.alpha.shape)
        outputs, _ = layer.stateless_call([slopes], [], x, training=training)
        return outputs

    return call


def _paths():
    paths = {
        "op": keras_prelu.prelu,
        "layer": _layer_path(training=False),
        "layer_training": _layer_path(training=True),
    }
    return {**paths, **backend_kernel_paths()}


PATHS = _paths()


def _smooth_loss(prelu):
    """A scalar whose second derivatives are not all zero."""
    return lambda x, a: keras.ops.sum(prelu(x, a) ** 2 * keras.ops.cos(x))


def _leaves(tree):
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in _leaves(item)]
    return [keras.ops.convert_to_numpy(tree)]


def _assert_transform_agrees(transform, path, dtype, shape=SHAPE):
    x, alpha, tx, ta = (keras.ops.convert_to_tensor(v) for v in _inputs(dtype, shape))
    got = _leaves(transform(PATHS[path], x, alpha, tx, ta))
    want = _leaves(transform(reference.prelu, x, alpha, tx, ta))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, **TOLERANCE[dtype])


# JAX --------------------------------------------------------------------------------


def _jax_transforms():
    import jax

    def stacked(x):  # a batch of one per vmapped sample, as a layer expects
        return x[:, None]

    return {
        "grad": lambda f, x, a, tx, ta: jax.grad(_smooth_loss(f), (0, 1))(x, a),
        "jit_grad": lambda f, x, a, tx, ta: jax.jit(jax.grad(_smooth_loss(f), (0, 1)))(x, a),
        "jvp": lambda f, x, a, tx, ta: jax.jvp(f, (x, a), (tx, ta)),
        "linearize": lambda f, x, a, tx, ta: jax.linearize(f, x, a)[1](tx, ta),
        "jacfwd": lambda f, x, a, tx, ta: jax.jacfwd(f, (0, 1))(x, a),
        "jacrev": lambda f, x, a, tx, ta: jax.jacrev(f, (0, 1))(x, a),
        "hessian_x": lambda f, x, a, tx, ta: jax.hessian(_smooth_loss(f), 0)(x, a),
        "hessian_alpha": lambda f, x, a, tx, ta: jax.hessian(_smooth_loss(f), 1)(x, a),
        "hvp": lambda f, x, a, tx, ta: jax.jvp(jax.grad(_smooth_loss(f), (0, 1)), (x, a), (tx, ta))[
            1
        ],
        "vmap": lambda f, x, a, tx, ta: jax.vmap(f, (0, None))(stacked(x), a),
        "vmap_grad": lambda f, x, a, tx, ta: jax.vmap(jax.grad(_smooth_loss(f), (0, 1)), (0, None))(
            stacked(x), a
        ),
        "checkpoint_grad": lambda f, x, a, tx, ta: jax.grad(
            jax.checkpoint(_smooth_loss(f)), (0, 1)
        )(x, a),
    }


@pytest.mark.requires_backend("jax")
@pytest.mark.parametrize("transform", ["jvp", "jacrev", "hvp", "vmap_grad"])
def test_jax_wide_slopes_compose(transform):
    """One slope per element over 2048 columns: the path whose slope tangent
    is a ones-vector outer product (transposed, a matmul)."""
    import jax

    from keras_prelu._kernels import jax as jax_kernels

    x, alpha, tx, _ = _inputs("float64", shape=(2, 8, 256))
    alpha = np.broadcast_to(np.resize(alpha, 256), (8, 256)).copy()
    ta = np.random.default_rng(1).standard_normal(alpha.shape)
    transforms = _jax_transforms()
    if transform == "jacrev":  # d/dalpha of one output row: 2048 x 2048 is too big
        transforms["jacrev"] = lambda f, x, a, tx, ta: jax.jacrev(lambda a: f(x, a)[0, 0], 0)(a)
    args = [jax.numpy.asarray(v) for v in (x, alpha, tx, ta)]
    got = _leaves(transforms[transform](jax_kernels.prelu, *args))
    want = _leaves(transforms[transform](reference.prelu, *args))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, **TOLERANCE["float64"])


# PyTorch ----------------------------------------------------------------------------


def _torch_transforms():
    import torch
    import torch.autograd.forward_ad as forward_ad
    from torch import func

    def forward_mode(f, x, a, tx, ta):
        with forward_ad.dual_level():
            out = f(forward_ad.make_dual(x, tx), forward_ad.make_dual(a, ta))
            both = forward_ad.unpack_dual(out).tangent
            out = f(forward_ad.make_dual(x, tx), a)
            x_only = forward_ad.unpack_dual(out).tangent
        return both, x_only

    def double_backward(f, x, a, tx, ta):
        x, a = x.clone().requires_grad_(), a.clone().requires_grad_()
        grads = torch.autograd.grad(_smooth_loss(f)(x, a), (x, a), create_graph=True)
        inner = sum(torch.sum(g * t) for g, t in zip(grads, (tx, ta), strict=True))
        return tuple(g.detach() for g in grads), torch.autograd.grad(inner, (x, a))

    def stacked(x):
        return x[:, None]

    return {
        "grad": lambda f, x, a, tx, ta: func.grad(_smooth_loss(f), (0, 1))(x, a),
        "vmap": lambda f, x, a, tx, ta: func.vmap(f, (0, None))(stacked(x), a),
        "vmap_grad": lambda f, x, a, tx, ta: func.vmap(
            func.grad(_smooth_loss(f), (0, 1)), (0, None)
        )(stacked(x), a),
        "jvp": lambda f, x, a, tx, ta: func.jvp(f, (x, a), (tx, ta)),
        "jacrev": lambda f, x, a, tx, ta: func.jacrev(f, (0, 1))(x, a),
        "jacfwd": lambda f, x, a, tx, ta: func.jacfwd(f, (0, 1))(x, a),
        "hessian_x": lambda f, x, a, tx, ta: func.hessian(_smooth_loss(f), 0)(x, a),
        "hessian_alpha": lambda f, x, a, tx, ta: func.hessian(_smooth_loss(f), 1)(x, a),
        "hvp": lambda f, x, a, tx, ta: func.jvp(
            func.grad(_smooth_loss(f), (0, 1)), (x, a), (tx, ta)
        )[1],
        "forward_ad": forward_mode,
        "double_backward": double_backward,
    }


@pytest.mark.requires_backend("torch")
def test_torch_transform_detection_hook_exists():
    """The kernels learn that a torch.func transform is active from a private
    function; without it they would always take the slower `torch.where`
    kernel. This test notices the day a torch release drops it."""
    import torch
    from torch import func

    from keras_prelu._kernels import torch as torch_kernels

    assert hasattr(torch._C, "_are_functorch_transforms_active")
    seen = []
    func.grad(lambda x: seen.append(torch_kernels._transforms_active()) or x.sum())(torch.ones(2))
    assert seen == [True] and not torch_kernels._transforms_active()


# TensorFlow -------------------------------------------------------------------------


# One table of every TensorFlow transform, each a few lines: longer than a
# function should be, but read as a list, like the other backends' tables.
def _tensorflow_transforms():
    import tensorflow as tf

    def accumulate(f, x, a, tx, ta):
        with tf.autodiff.ForwardAccumulator((x, a), (tx, ta)) as accumulator:
            out = f(x, a)
        return out, accumulator.jvp(out)

    def hvp(f, x, a, tx, ta):
        with tf.autodiff.ForwardAccumulator((x, a), (tx, ta)) as accumulator:
            with tf.GradientTape() as tape:
                tape.watch((x, a))
                loss = _smooth_loss(f)(x, a)
            grads = tape.gradient(loss, (x, a))
        return grads, [accumulator.jvp(g) for g in grads]

    def nested_tapes(f, x, a, tx, ta):
        with tf.GradientTape(persistent=True) as outer:
            outer.watch((x, a))
            with tf.GradientTape() as inner:
                inner.watch((x, a))
                loss = _smooth_loss(f)(x, a)
            grad_x, grad_a = inner.gradient(loss, (x, a))
        return outer.jacobian(grad_x, (x, a)), outer.jacobian(grad_a, (x, a))

    def jacobian(f, x, a, tx, ta):
        with tf.GradientTape() as tape:
            tape.watch((x, a))
            out = f(x, a)
        return tape.jacobian(out, (x, a))

    def per_sample_grads(f, x, a, tx, ta):
        def one(sample):
            with tf.GradientTape() as tape:
                tape.watch((sample, a))
                loss = _smooth_loss(f)(sample, a)
            return tape.gradient(loss, (sample, a))

        return tf.vectorized_map(one, x[:, None])

    def xla_grad(f, x, a, tx, ta):
        @tf.function(jit_compile=True, autograph=False)
        def grads(x, a):
            with tf.GradientTape() as tape:
                tape.watch((x, a))
                loss = _smooth_loss(f)(x, a)
            return tape.gradient(loss, (x, a))

        return grads(x, a)

    def in_graph(transform):
        # A fresh function per call: one trace per path, as a user's would be.
        return lambda f, *args: tf.function(lambda *t: transform(f, *t), autograph=False)(*args)

    return {
        "forward_accumulator": accumulate,
        "forward_accumulator_graph": in_graph(accumulate),
        "hvp": hvp,
        "hvp_graph": in_graph(hvp),
        "nested_tapes_hessian": nested_tapes,
        "jacobian": jacobian,
        "vectorized_map_grad": per_sample_grads,
        "xla_grad": xla_grad,
    }


def _backend_transforms():
    makers = {
        "jax": _jax_transforms,
        "torch": _torch_transforms,
        "tensorflow": _tensorflow_transforms,
    }
    return makers[BACKEND]()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("transform", sorted(_backend_transforms()))
def test_transform_agrees_with_reference(transform, path, dtype):
    """The backend's transforms (above) x every kernel path x two dtypes."""
    _assert_transform_agrees(_backend_transforms()[transform], path, dtype)


@pytest.mark.requires_backend("tensorflow")
@pytest.mark.parametrize("path", ["tf_exportable", "tf_training", "layer_training"])
@pytest.mark.parametrize(
    "transform", ["forward_accumulator", "hvp", "vectorized_map_grad", "xla_grad"]
)
def test_tensorflow_transforms_on_compiled_kernels(transform, path):
    """Inputs of 16384 elements per sample: the training kernel's
    XLA-compiled forward and gradients."""
    _assert_transform_agrees(
        _tensorflow_transforms()[transform], path, "float64", shape=(2, 64, 256)
    )


@pytest.mark.requires_backend("tensorflow")
def test_tensorflow_accumulator_detection_hook_exists():
    """`prelu` learns that a forward accumulator watches its inputs from a
    private function; without it, it would never run the pattern exporters
    fuse. This test notices the day a TensorFlow release drops it."""
    import tensorflow as tf

    from keras_prelu._kernels import tensorflow as tf_kernels

    assert tf_kernels._pack_tangents is not None
    x = tf.constant([1.0, -1.0])
    assert not tf_kernels._watched_by_accumulator(x)
    with tf.autodiff.ForwardAccumulator(x, tf.ones(2)):
        assert tf_kernels._watched_by_accumulator(x, tf.constant(0.5))


@pytest.mark.requires_backend("tensorflow")
def test_tensorflow_tape_detection_hook_exists():
    """`prelu` learns that no gradient tape records from a private function;
    without it, exported graphs would keep an Identity op that OpenVINO's
    converter takes for a second output. This test notices the day a
    TensorFlow release drops it."""
    import tensorflow as tf

    from keras_prelu._kernels import tensorflow as tf_kernels

    assert not tf_kernels._recording()
    with tf.GradientTape():
        assert tf_kernels._recording()


@pytest.mark.requires_backend("tensorflow")
@pytest.mark.parametrize("jit_compile", [False, True])
def test_tensorflow_graph_traced_without_a_tape_differentiates_later(jit_compile):
    """An inference function (the form exports see, with no unused op left in
    it) keeps the convention when a tape differentiates it afterwards,
    without a retrace: gradient 1 at x == 0, alpha for NaN, and a slope
    gradient untouched by an infinite upstream gradient next to x >= 0."""
    import tensorflow as tf

    function = tf.function(keras_prelu.prelu, autograph=False, jit_compile=jit_compile)
    x = tf.constant([[0.0, -0.0, np.nan, -2.0, 3.0], [1.0, -1.0, 0.0, np.inf, -np.inf]])
    alpha = tf.constant([0.25, 0.5, 0.75, 1.5, -0.5])
    upstream = np.array([[1.0, 2.0, 3.0, 4.0, np.inf], [1.0, 1.0, 1.0, 1.0, 1.0]], "float32")
    function(x, alpha)
    graph = function.get_concrete_function(x, alpha).graph
    used = {t.name for op in graph.get_operations() for t in op.inputs}
    used |= {t.name for t in graph.outputs}
    dangling = [op.name for op in graph.get_operations() if op.outputs and op.type == "Identity"]
    assert not [name for name in dangling if f"{name}:0" not in used], dangling
    with tf.GradientTape() as tape:
        tape.watch([x, alpha])
        loss = tf.reduce_sum(function(x, alpha) * upstream)
    grad_x, grad_alpha = tape.gradient(loss, [x, alpha])
    assert function.experimental_get_tracing_count() == 1
    want_x, want_alpha = numpy_oracle.gradients(x.numpy(), alpha.numpy(), upstream)
    np.testing.assert_array_equal(grad_x.numpy(), want_x)
    np.testing.assert_allclose(grad_alpha.numpy(), want_alpha, rtol=1e-6)


# Two real uses ----------------------------------------------------------------------


def _model():
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, dtype="float64"),
            keras_prelu.PReLU(dtype="float64"),
            keras.layers.Dense(3, dtype="float64"),
        ]
    )
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 6))
    targets = np.eye(3)[rng.integers(0, 3, 8)]
    return model, x, targets


def _loss_fn(model):
    def loss(params, x, targets):
        outputs, _ = model.stateless_call(params, [], x, training=True)
        return keras.ops.mean(keras.ops.sum((outputs - targets) ** 2, axis=-1))

    return loss, [v.value for v in model.trainable_variables]


@pytest.fixture
def reference_kernels(monkeypatch):
    """Runs the same user code with the plain-op reference as the kernel."""
    from keras_prelu import _kernels

    def use_reference():
        monkeypatch.setattr(_kernels, "_prelu", reference.prelu)
        monkeypatch.setattr(_kernels, "_prelu_training", reference.prelu)

    return use_reference


def _per_sample_grads(loss, params, x, targets):
    """Per-sample gradients the way each backend's users write them."""
    if BACKEND == "jax":
        import jax

        grads = jax.vmap(jax.grad(loss), (None, 0, 0))(params, x[:, None], targets[:, None])
    elif BACKEND == "torch":
        from torch import func

        x, targets = (keras.ops.convert_to_tensor(v) for v in (x, targets))
        grads = func.vmap(func.grad(loss), (None, 0, 0))(params, x[:, None], targets[:, None])
    else:
        import tensorflow as tf

        def one(sample):
            with tf.GradientTape() as tape:
                tape.watch(params)
                value = loss(params, sample[0][None], sample[1][None])
            return tape.gradient(value, params)

        grads = tf.vectorized_map(one, (tf.constant(x), tf.constant(targets)))
    return [keras.ops.convert_to_numpy(g) for g in grads]


def _grad(loss, params, x, targets):
    if BACKEND == "jax":
        import jax

        grads = jax.grad(loss)(params, x, targets)
    elif BACKEND == "torch":
        import torch

        params = [p.detach().clone().requires_grad_() for p in params]
        x, targets = (keras.ops.convert_to_tensor(v) for v in (x, targets))
        grads = torch.autograd.grad(loss(params, x, targets), params)
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(params)
            value = loss(params, x, targets)
        grads = tape.gradient(value, params)
    return [keras.ops.convert_to_numpy(g) for g in grads]


def _clip_and_average(per_sample, clip=0.5):
    """DP-SGD's aggregation: clip each sample's gradient to norm `clip`, then
    average (the noise is left out, to compare exactly)."""
    norms = np.sqrt(sum(np.sum(g.reshape(len(g), -1) ** 2, axis=1) for g in per_sample))
    scale = np.minimum(1.0, clip / np.maximum(norms, 1e-12))
    return [np.mean(g * scale.reshape((-1,) + (1,) * (g.ndim - 1)), axis=0) for g in per_sample]


def test_per_sample_gradient_clipping(reference_kernels):
    """DP-SGD: vectorised per-sample gradients, clipped and averaged, equal
    the same computed one sample at a time, and the same with the plain-op
    reference as the kernel."""
    model, x, targets = _model()
    loss, params = _loss_fn(model)
    vectorised = _clip_and_average(_per_sample_grads(loss, params, x, targets))
    one_at_a_time = [_grad(loss, params, x[i : i + 1], targets[i : i + 1]) for i in range(len(x))]
    stacked = [np.stack(parts) for parts in zip(*one_at_a_time, strict=True)]
    # Batched and one-row matmuls may round differently (Keras's Dense on
    # PyTorch is not exact to float64's last digits): float32-level agreement.
    for got, want in zip(vectorised, _clip_and_average(stacked), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    reference_kernels()
    for got, want in zip(
        vectorised, _clip_and_average(_per_sample_grads(loss, params, x, targets)), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def _hvp(loss, params, x, targets, vector):
    """Forward over reverse, the usual Hessian-vector product."""
    if BACKEND == "jax":
        import jax

        hvp = jax.jvp(lambda p: jax.grad(loss)(p, x, targets), (params,), (vector,))[1]
    elif BACKEND == "torch":
        from torch import func

        x, targets = (keras.ops.convert_to_tensor(v) for v in (x, targets))
        hvp = func.jvp(lambda p: func.grad(loss)(p, x, targets), (params,), (vector,))[1]
    else:
        import tensorflow as tf

        with tf.autodiff.ForwardAccumulator(params, vector) as accumulator:
            with tf.GradientTape() as tape:
                tape.watch(params)
                value = loss(params, x, targets)
            grads = tape.gradient(value, params)
        hvp = [accumulator.jvp(g) for g in grads]
    return [keras.ops.convert_to_numpy(h) for h in hvp]


def test_hessian_vector_product(reference_kernels):
    """The Hessian-vector product of a model's loss is the reference's, and
    matches the central difference of the gradients along the vector."""
    model, x, targets = _model()
    loss, params = _loss_fn(model)
    rng = np.random.default_rng(5)
    vector = [keras.ops.convert_to_tensor(rng.standard_normal(tuple(p.shape))) for p in params]
    got = _hvp(loss, params, x, targets, vector)
    step = 1e-3
    plus, minus = (
        _grad(loss, [p + sign * step * v for p, v in zip(params, vector, strict=True)], x, targets)
        for sign in (1.0, -1.0)
    )
    for h, g_plus, g_minus in zip(got, plus, minus, strict=True):
        # Loose: the model is piecewise quadratic, and Keras's Dense on
        # PyTorch rounds at float32's level.
        np.testing.assert_allclose(h, (g_plus - g_minus) / (2 * step), rtol=1e-3, atol=1e-3)
    reference_kernels()
    for h, want in zip(got, _hvp(loss, params, x, targets, vector), strict=True):
        np.testing.assert_allclose(h, want, rtol=1e-10, atol=1e-12)


def _keras_ops_compile_in_one_graph():
    """Whether Keras's own ops trace into one torch.compile graph (Keras 3.14's
    `keras.ops.reshape` and `convert_to_tensor` do not)."""
    import torch

    def keras_only(t):
        return keras.ops.reshape(keras.ops.convert_to_tensor(t), (-1,))

    try:
        torch.compile(keras_only, fullgraph=True, backend="eager")(torch.ones(2, 2))
    except Exception:  # torch._dynamo's Unsupported, whatever its class
        return False
    return True


@pytest.mark.requires_backend("torch")
@pytest.mark.parametrize("path", ["kernel", "op", "layer_training"])
def test_torch_compile_traces_the_kernel_in_one_graph(path):
    """torch.compile sees one graph (`fullgraph=True` raises on a break): the
    kernel picks its compilable form without the transform check."""
    import torch

    from keras_prelu._kernels import torch as torch_kernels

    prelu = torch_kernels.prelu if path == "kernel" else PATHS[path]
    x, alpha, _, _ = (keras.ops.convert_to_tensor(v) for v in _inputs("float32"))
    prelu(x, alpha)  # builds the layer, outside the compiled function
    if path != "kernel" and not _keras_ops_compile_in_one_graph():
        pytest.skip(f"Keras {keras.version()}'s own ops break torch.compile graphs")

    def loss(prelu):  # in torch's ops: Keras's are not what is tested here
        return lambda x, a: torch.sum(prelu(x, a) ** 2 * torch.cos(x))

    compiled = torch.compile(loss(prelu), fullgraph=True, backend="aot_eager")
    x_c, alpha_c = x.clone().requires_grad_(), alpha.clone().requires_grad_()
    compiled(x_c, alpha_c).backward()
    x.requires_grad_(), alpha.requires_grad_()
    loss(reference.prelu)(x, alpha).backward()
    for got, want in ((x_c.grad, x.grad), (alpha_c.grad, alpha.grad)):
        np.testing.assert_allclose(got.cpu().numpy(), want.cpu().numpy(), rtol=1e-5, atol=1e-6)
