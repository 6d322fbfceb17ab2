import os

import keras
import numpy as np
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_backend(names): run only on these backends")
    # Deterministic numerics: no TF32 matmuls on any backend.
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)
    elif backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
        # float64 layers need it on JAX, as in any JAX program.
        jax.config.update("jax_enable_x64", True)


def pytest_collection_modifyitems(config, items):
    backend = keras.backend.backend()
    for item in items:
        marker = item.get_closest_marker("requires_backend")
        if marker is not None and backend not in marker.args:
            item.add_marker(
                pytest.mark.skip(reason=f"needs backend {marker.args}, running {backend}")
            )


# The global settings the session started with (keras.json or the defaults):
# every test gets them back, so a run configured for channels_first (as
# Keras's own CI runs torch) stays channels_first.
_SESSION_DATA_FORMAT = keras.config.image_data_format()
_SESSION_DTYPE_POLICY = keras.config.dtype_policy().name


@pytest.fixture(autouse=True)
def _seed_and_reset():
    keras.utils.set_random_seed(1337)
    yield
    keras.config.set_dtype_policy(_SESSION_DTYPE_POLICY)
    keras.config.set_image_data_format(_SESSION_DATA_FORMAT)


@pytest.fixture
def backend():
    return keras.backend.backend()


def pytest_report_header(config):
    env = os.environ.get("KERAS_BACKEND")
    return (
        f"keras backend: {keras.backend.backend()} (KERAS_BACKEND={env}), "
        f"keras {keras.__version__}, numpy {np.__version__}, "
        f"image_data_format {_SESSION_DATA_FORMAT}, dtype policy {_SESSION_DTYPE_POLICY}"
    )
