"""PReLU kernels: one module per backend, picked at import (else `reference`),
each with `prelu` (inference, export) and `prelu_training` (the same results,
maybe faster). docs/kernels.md states their contract.
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
    """The PReLU kernel for inference and export."""
    return _prelu(x, _slope_for(x, alpha))


def prelu_training(x, alpha):
    """The PReLU kernel for training steps; same results as `prelu`."""
    return _prelu_training(x, _slope_for(x, alpha))
