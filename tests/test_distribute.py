"""Data-parallel training of keras_prelu models on two virtual CPU devices.

The device count has to be fixed before the backend starts, so the check
runs in a fresh Python process: JAX gets
`XLA_FLAGS=--xla_force_host_platform_device_count=2`, TensorFlow two logical
CPU devices. The process trains the same model from the same weights on the
same batches once on one device and once data-parallel, and compares the
slopes and outputs.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import ROOT

SCRIPT = textwrap.dedent(
    """
    import contextlib, json, os

    backend = os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        logical = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, logical)

    import keras
    import numpy as np

    import keras_prelu

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6, 6, 2)).astype("float32")
    y = rng.integers(0, 3, 32).astype("int32")

    def build():
        # No BatchNormalization: tf.distribute computes its batch statistics
        # per replica, which is a different model, not a different engine.
        return keras.Sequential([
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras_prelu.PReLU(layout="channelwise", name="p_channel"),
            keras.layers.Conv2D(4, 3),
            keras_prelu.PReLU(layout="scalar", name="p_scalar"),
            keras.layers.Flatten(),
            keras_prelu.PReLU(name="p_full"),
            keras.layers.Dense(3, activation="softmax"),
        ])

    def train(scope, weights):
        with scope:
            model = build()
            model.set_weights(weights)
            model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
        names = ("p_channel", "p_scalar", "p_full")
        slopes = {n: keras.ops.convert_to_numpy(model.get_layer(n).alpha) for n in names}
        return slopes, np.asarray(model.predict(x, batch_size=8, verbose=0))

    keras.utils.set_random_seed(0)
    initial = build().get_weights()
    single_slopes, single_out = train(contextlib.nullcontext(), initial)

    if backend == "jax":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        scope = contextlib.nullcontext()
    else:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        scope = tf.distribute.MirroredStrategy(devices=devices).scope()
    dist_slopes, dist_out = train(scope, initial)
    if backend == "jax":
        keras.distribution.set_distribution(None)

    report = {
        "devices": len(devices),
        "slopes_moved": float(max(np.abs(s - 0.25).max() for s in single_slopes.values())),
        "slope_diff": float(
            max(np.abs(single_slopes[n] - dist_slopes[n]).max() for n in single_slopes)
        ),
        "output_diff": float(np.abs(single_out - dist_out).max()),
    }
    print("REPORT" + json.dumps(report))
    """
)


def _run(backend):
    env = dict(
        os.environ,
        KERAS_BACKEND=backend,
        PYTHONPATH=str(ROOT),
        CUDA_VISIBLE_DEVICES="",
        JAX_PLATFORMS="cpu",
    )
    if backend == "jax":
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
        ).strip()
    process = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    line = next(line for line in process.stdout.splitlines() if line.startswith("REPORT"))
    return json.loads(line[len("REPORT") :])


@pytest.mark.requires_backend("jax", "tensorflow")
def test_data_parallel_training_matches_single_device(backend):
    report = _run(backend)
    assert report["devices"] == 2
    assert report["slopes_moved"] > 1e-3  # the slopes were trained, not just compared at init
    assert report["slope_diff"] < 1e-5
    assert report["output_diff"] < 1e-5
