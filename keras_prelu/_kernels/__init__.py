"""PReLU kernels: one module per backend, all with the signature
`prelu(x, alpha) -> Tensor`.

Every kernel receives `x` and `alpha` as native tensors of the same floating
dtype, with `alpha` broadcastable to `x`. It must return exactly what
`reference.prelu` returns, with the same input gradient, and the same slope
gradient up to summation order (see `reference.py` for the convention). The
module is picked once, at import, from `keras.backend.backend()`; any
backend without a fast path uses the pure
`keras.ops` reference, which is also the oracle the tests compare against.
"""

import importlib

import keras

from keras_prelu._kernels import reference

_FAST_PATHS = {
    "tensorflow": "keras_prelu._kernels.tensorflow",
    "jax": "keras_prelu._kernels.jax",
    "torch": "keras_prelu._kernels.torch",
}


def _select_kernel():
    module_name = _FAST_PATHS.get(keras.backend.backend())
    if module_name is None:
        return reference.prelu
    return importlib.import_module(module_name).prelu


prelu = _select_kernel()
