"""Computing outputs and gradients with whichever backend Keras runs on."""

import keras
import numpy as np


def backend_kernel_paths():
    """The backend module's own kernels, by name, called directly rather than
    through the op: each fast path the tests check on its own."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from keras_prelu._kernels import tensorflow as kernels

        return {"tf_exportable": kernels.prelu, "tf_training": kernels.prelu_training}
    if backend == "torch":
        from keras_prelu._kernels import torch as kernels

        # The fused backward (used on CUDA), the sliced CPU backward and the
        # `torch.where` form (torch.compile, builds without the fused kernels).
        return {
            "torch_fused": kernels.prelu_fused,
            "torch_sliced": kernels.prelu_sliced,
            "torch_where": kernels.prelu_where,
            # The public-op forward that tracers record.
            "torch_public": kernels._make_function(
                lambda x, alpha: kernels._forward_public(x, kernels._slopes(alpha, x.dtype)),
                kernels._backward,
            ),
        }
    return {}  # JAX has one kernel, which the op and the layer call.


def value_and_grads(fn, x, alpha, upstream):
    """Returns `fn(x, alpha)` and the gradients of `sum(upstream * fn)`.

    All results are NumPy arrays; `x` and `alpha` are NumPy arrays too, and
    `alpha` may have a wider dtype than `x`.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x_t, alpha_t = tf.constant(x), tf.constant(alpha)
        with tf.GradientTape() as tape:
            tape.watch([x_t, alpha_t])
            out = fn(x_t, alpha_t)
            loss = tf.reduce_sum(out * tf.constant(upstream, out.dtype))
        grads = tape.gradient(loss, [x_t, alpha_t])
        return out.numpy(), grads[0].numpy(), grads[1].numpy()
    if backend == "jax":
        import jax

        # Compiled as one computation, as a JAX training step is (and far
        # faster to test than op-by-op dispatch).
        @jax.jit
        def compute(x, alpha, upstream):
            out, vjp = jax.vjp(fn, x, alpha)
            return (out, *vjp(upstream.astype(out.dtype)))

        results = compute(*(jax.numpy.asarray(a) for a in (x, alpha, upstream)))
        return tuple(np.asarray(r) for r in results)
    if backend == "torch":
        x_t = to_torch(x).requires_grad_()
        alpha_t = to_torch(alpha).requires_grad_()
        out = fn(x_t, alpha_t)
        out.backward(to_torch(upstream))
        return from_torch(out.detach()), from_torch(x_t.grad), from_torch(alpha_t.grad)
    raise ValueError(f"Backend '{backend}' is not supported.")


def layer_grads(layer, x, upstream, training=None):
    """Output, input gradient and slope gradient of a built layer, called
    with `training` as a training loop or an inference call would."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x_t = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x_t)
            out = layer(x_t, training=training)
            loss = tf.reduce_sum(out * tf.constant(upstream, out.dtype))
        grad_x, grad_alpha = tape.gradient(loss, [x_t, layer.alpha.value])
        return out.numpy(), grad_x.numpy(), grad_alpha.numpy()
    if backend == "jax":
        import jax

        # `stateless_call` passes keyword arguments on as they are, and not
        # every layer's `call` takes `training`.
        kwargs = {} if training is None else {"training": training}

        def loss_fn(trainable_values, x_value):
            out, _ = layer.stateless_call(trainable_values, [], x_value, **kwargs)
            return (out * upstream.astype(out.dtype)).sum(), out

        (_, out), grads = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
            [layer.alpha.value], jax.numpy.asarray(x)
        )
        return np.asarray(out), np.asarray(grads[1]), np.asarray(grads[0][0])
    if backend == "torch":
        x_t = to_torch(x).requires_grad_()
        layer.alpha.value.grad = None
        out = layer(x_t, training=training)
        out.backward(to_torch(upstream).to(out.dtype))
        return (
            from_torch(out.detach()),
            from_torch(x_t.grad),
            from_torch(layer.alpha.value.grad),
        )
    raise ValueError(f"Backend '{backend}' is not supported.")


def to_torch(array):
    """A tensor on the device Keras computes on (a GPU where there is one)."""
    import torch

    device = keras.ops.convert_to_tensor(np.zeros((), "float32")).device
    if array.dtype.name == "bfloat16":  # torch cannot read ml_dtypes arrays
        return torch.tensor(array.astype("float32"), device=device).to(torch.bfloat16)
    return torch.tensor(array, device=device)


def from_torch(tensor):
    import torch

    tensor = tensor.cpu()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.float().numpy().astype(ml_dtypes.bfloat16)
    return tensor.numpy()
