"""Writes the golden `.keras` files and their `.npz` inputs and outputs.

Run once per backend, from the repository root:

    KERAS_BACKEND=tensorflow python saved_models/make_golden.py
    KERAS_BACKEND=jax python saved_models/make_golden.py
    KERAS_BACKEND=torch python saved_models/make_golden.py

Files go to `saved_models/<keras_prelu version>/<backend>/`: for each model
in `MODELS`, `<name>.keras` and `<name>.npz` (arrays `input` and `output`,
the stored layer configs and the versions that made them; no pickles).

Checked-in golden files are never regenerated: they prove that files written
by old versions still load. A format change adds files under a new version
folder. The script refuses to overwrite a file unless given `--force`, which
is only for scratch output written elsewhere with `--output-dir` (the tests
write there to save with the current code under the other backends).
"""

import argparse
import json
import os
import sys
from pathlib import Path

# Run as a script, the repository's own keras_prelu must win over any
# installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_prelu  # noqa: E402

SEED = 20240601


def full():
    """layout="full" with negative shared axes and every custom config object."""
    inputs = keras.Input((3, 4))
    x = keras_prelu.PReLU(
        alpha_initializer=keras.initializers.RandomUniform(0.05, 0.5, seed=1),
        alpha_regularizer=keras.regularizers.L1L2(l1=1e-4, l2=1e-3),
        alpha_constraint=keras.constraints.NonNeg(),
        shared_axes=[-2],
        name="prelu_full",
    )(inputs)
    outputs = keras.layers.Dense(2, name="dense")(x)
    return keras.Model(inputs, outputs, name="full"), (2, 3, 4)


def channelwise_last():
    """layout="channelwise", channels_last, after a conv, unknown spatial sizes."""
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            # The data format is pinned: the model is channels_last whatever
            # keras.config.image_data_format() says where the script runs.
            keras.layers.Conv2D(4, 1, data_format="channels_last", name="conv"),
            keras_prelu.PReLU(
                layout="channelwise",
                data_format="channels_last",
                alpha_initializer=keras.initializers.RandomNormal(0.2, 0.05, seed=2),
                alpha_regularizer=keras.regularizers.L2(1e-2),
                alpha_constraint=keras.constraints.MaxNorm(2.0, axis=[0, 1, 2]),
                name="prelu_channelwise",
            ),
        ],
        name="channelwise_last",
    )
    return model, (2, 3, 5, 3)


def channelwise_first():
    """layout="channelwise", channels_first (NCHW)."""
    model = keras.Sequential(
        [
            keras.Input((2, 3, 3)),
            keras_prelu.PReLU(
                layout="channelwise",
                data_format="channels_first",
                alpha_initializer=keras.initializers.RandomUniform(0.1, 0.9, seed=3),
                alpha_regularizer=keras.regularizers.L1(1e-3),
                name="prelu_channels_first",
            ),
        ],
        name="channelwise_first",
    )
    return model, (2, 2, 3, 3)


def scalar_trained():
    """layout="scalar" in a compiled model trained 2 steps: optimizer state saved."""
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(3, name="hidden"),
            keras_prelu.PReLU(
                layout="scalar",
                alpha_initializer=0.1,
                alpha_constraint=keras.constraints.NonNeg(),
                name="prelu_scalar",
            ),
            keras.layers.Dense(1, name="head"),
        ],
        name="scalar_trained",
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    rng = np.random.default_rng(SEED + 1)
    model.fit(
        rng.standard_normal((8, 5)).astype("float32"),
        rng.standard_normal((8, 1)).astype("float32"),
        batch_size=4,
        shuffle=False,
        verbose=0,
    )
    return model, (3, 5)


def builtin():
    """`keras.layers.PReLU`, for migration: includes its negative-axis reading."""
    model = keras.Sequential(
        [
            keras.Input((4, 4, 2)),
            keras.layers.PReLU(
                alpha_initializer=keras.initializers.RandomUniform(-0.3, 0.6, seed=4),
                shared_axes=[1, 2],
                name="builtin_channels",
            ),
            keras.layers.PReLU(
                alpha_initializer=keras.initializers.RandomUniform(-0.3, 0.6, seed=5),
                shared_axes=[-1],
                name="builtin_negative_axis",
            ),
        ],
        name="builtin",
    )
    return model, (2, 4, 4, 2)


def functional_op():
    """The functional op `keras_prelu.prelu` on symbolic tensors, next to the layer.

    Its slopes: a Python number, a NumPy array and a backend tensor, stored
    in the config as they are.
    """
    inputs = keras.Input((2, 3))
    x = keras.layers.Dense(3, name="dense")(inputs)
    x = keras_prelu.prelu(x, 0.2)
    x = keras_prelu.prelu(x, np.array([0.5, -0.3, 1.5], "float32"))
    x = keras_prelu.prelu(x, keras.ops.convert_to_tensor(np.array([[0.1], [0.7]], "float32")))
    outputs = keras_prelu.PReLU(
        layout="channelwise",
        data_format="channels_last",
        alpha_initializer=keras.initializers.RandomUniform(0.1, 0.9, seed=6),
        name="prelu_layer",
    )(x)
    return keras.Model(inputs, outputs, name="functional_op"), (2, 2, 3)


MODELS = {
    "full": full,
    "channelwise_last": channelwise_last,
    "channelwise_first": channelwise_first,
    "scalar_trained": scalar_trained,
    "builtin": builtin,
    "functional_op": functional_op,
}


def prelu_configs(model):
    return [
        layer.get_config()
        for layer in model.layers
        if isinstance(layer, (keras_prelu.PReLU, keras.layers.PReLU))
    ]


def framework_version(backend):
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    return __import__(module).__version__


def write(name, output_dir):
    keras.utils.set_random_seed(SEED)
    model, input_shape = MODELS[name]()
    x = np.random.default_rng(SEED).standard_normal(input_shape).astype("float32")
    y = keras.ops.convert_to_numpy(model(x, training=False))
    model.save(output_dir / f"{name}.keras")
    backend = keras.backend.backend()
    metadata = {
        "backend": backend,
        "framework_version": framework_version(backend),
        "keras_version": keras.__version__,
        "keras_prelu_version": keras_prelu.__version__,
        "numpy_version": np.__version__,
        "prelu_configs": json.dumps(prelu_configs(model)),
    }
    if getattr(model, "optimizer", None) is not None:
        metadata["optimizer_iterations"] = int(model.optimizer.iterations)
    np.savez_compressed(
        output_dir / f"{name}.npz",
        input=x,
        output=y,
        **{key: np.asarray(value) for key, value in metadata.items()},
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_dir = (
        Path(__file__).resolve().parent / keras_prelu.__version__ / keras.backend.backend()
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=default_dir,
        help=f"Where to write (default: {default_dir}).",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="Overwrite existing files. Never use it on checked-in golden files.",
    )
    args = parser.parse_args(argv)
    targets = [
        args.output_dir / f"{name}{suffix}" for name in MODELS for suffix in (".keras", ".npz")
    ]
    existing = [str(path) for path in targets if path.exists()]
    if existing and not args.force:
        sys.exit(
            "Refusing to overwrite golden files (they must never be regenerated "
            "to make a test pass; a format change adds a new version folder):\n  "
            + "\n  ".join(existing)
        )
    os.makedirs(args.output_dir, exist_ok=True)
    for name in MODELS:
        write(name, args.output_dir)
        print(f"wrote {args.output_dir / name}.keras and .npz")


if __name__ == "__main__":
    main()
