"""PReLU kernels: one module per backend, each with two entry points,
`prelu(x, alpha)` and `prelu_training(x, alpha)`.

Contract, for every kernel:

- `x` is a floating tensor; `alpha` is a floating tensor broadcastable to
  `x`, of `x`'s dtype or a wider float (a float32 slope variable next to
  float16 activations under mixed precision). Narrower or non-float slopes
  are cast to `x`'s dtype here, before the kernel sees them.
- The output has `x`'s dtype and equals `reference.prelu` bit for bit: the
  slope is cast to `x`'s dtype first, then `where(x >= 0, x, alpha * x)`.
  (Exceptions: the sign of a zero output in TensorFlow's `prelu` and in
  PyTorch's fused CPU forward with a negative slope; see their modules.)
- The input gradient is exact; the slope gradient is accumulated in at least
  float32, returned in `alpha`'s dtype, and equals the reference's up to
  summation order (see `reference.py` for the convention, special values
  included).

`prelu` is the form for inference and export (on TensorFlow, the op pattern
converters turn into one native PReLU op). `prelu_training` may use a faster
formulation with the same results; layers call it when `training=True`.
The backend module is picked once, at import, from `keras.backend.backend()`;
a backend without a fast path uses the pure `keras.ops` reference, which is
also the oracle the tests compare against.

Every kernel composes with the function transforms of its backend (forward
and reverse mode, vectorisation, compilation, higher orders) and agrees with
the same transform of the reference: tests/test_transforms.py.
"""

import importlib

import keras

from keras_prelu._kernels import reference

_FAST_PATHS = {
    "tensorflow": "keras_prelu._kernels.tensorflow",
    "jax": "keras_prelu._kernels.jax",
    "torch": "keras_prelu._kernels.torch",
}


def _select_kernels():
    module_name = _FAST_PATHS.get(keras.backend.backend())
    module = reference if module_name is None else importlib.import_module(module_name)
    return module.prelu, module.prelu_training


_prelu, _prelu_training = _select_kernels()


def _slope_for(x, alpha):
    """`alpha`, cast to `x`'s dtype unless it is a float at least as wide."""
    if alpha.dtype == x.dtype:
        return alpha
    x_dtype = keras.backend.standardize_dtype(x.dtype)
    alpha_dtype = keras.backend.standardize_dtype(alpha.dtype)
    if (
        keras.backend.is_float_dtype(alpha_dtype)
        and keras.backend.result_type(alpha_dtype, x_dtype) == alpha_dtype
    ):
        return alpha
    return keras.ops.cast(alpha, x_dtype)


def prelu(x, alpha):
    """The PReLU kernel for inference and export; see the module docstring."""
    return _prelu(x, _slope_for(x, alpha))


def prelu_training(x, alpha):
    """The PReLU kernel for training steps; same results as `prelu`."""
    return _prelu_training(x, _slope_for(x, alpha))
