"""What several test files share: the repository's root, a model with every
slope layout, and tools for saved `.keras` files."""

import hashlib
import json
import re
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_prelu

ROOT = Path(__file__).resolve().parents[1]


# Models -------------------------------------------------------------------------------


def mixed_sign_slopes(seed):
    """An initializer of slopes of both signs: a sign lost on the way (by an
    exporter's pattern, say) changes the outputs."""
    return keras.initializers.RandomUniform(-0.5, 0.8, seed=seed)


def every_layout_model():
    """Every slope layout and both data formats, with non-default slopes,
    regularizers and constraints; a (4, 4, 3) input, whatever the global image
    data format, and a (4, 4, 4) output."""
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(4, 1, data_format="channels_last", name="conv")(inputs)
    x = keras_prelu.PReLU(
        layout="channelwise",
        data_format="channels_last",
        alpha_initializer=mixed_sign_slopes(1),
        alpha_regularizer=keras.regularizers.L2(1e-2),
        alpha_constraint=keras.constraints.NonNeg(),
        name="channelwise",
    )(x)
    x = keras_prelu.PReLU(
        shared_axes=[1],
        alpha_initializer=mixed_sign_slopes(2),
        alpha_regularizer=keras.regularizers.L1L2(1e-3, 1e-3),
        name="full",
    )(x)
    x = keras_prelu.PReLU(
        layout="scalar",
        alpha_initializer=-0.3,
        alpha_constraint=keras.constraints.NonNeg(),
        name="scalar",
    )(x)
    x = keras.layers.Permute((3, 1, 2))(x)
    outputs = keras_prelu.PReLU(
        layout="channelwise",
        data_format="channels_first",
        alpha_initializer=mixed_sign_slopes(3),
        name="channels_first",
    )(x)
    return keras.Model(inputs, outputs)


def every_layout_input(batch=3, seed=0):
    """A batch of inputs for `every_layout_model`."""
    return np.random.default_rng(seed).standard_normal((batch, 4, 4, 3)).astype("float32")


# Saved files --------------------------------------------------------------------------


def prelu_entry(config):
    """The (first) PReLU layer's entry in a parsed `config.json`."""
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "PReLU")


def rewrite_config(source, target, edit):
    """Copies the `.keras` file `source` to `target`, with `edit(config)`
    applied to its parsed `config.json`; returns `target`."""
    with zipfile.ZipFile(source) as archive_in, zipfile.ZipFile(target, "w") as archive_out:
        for info in archive_in.infolist():
            data = archive_in.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            archive_out.writestr(info, data)
    return target


def file_state(path):
    """What changes when a file is written to: its content's hash, its size and
    its modification time. A loader that refuses a file leaves it the same."""
    stat = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size, stat.st_mtime_ns


def small_cnn(layout="channelwise"):
    """Conv, batch norm, a PReLU of `layout` (`model.layers[2]`), pooling and a
    dense head, on (6, 6, 2) channels_last images."""
    data_format = {"data_format": "channels_last"} if layout == "channelwise" else {}
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(4, 3, padding="same", data_format="channels_last"),
            keras.layers.BatchNormalization(),
            keras_prelu.PReLU(layout=layout, **data_format),
            keras.layers.GlobalAveragePooling2D(data_format="channels_last"),
            keras.layers.Dense(3),
        ]
    )


def _version(text) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", str(text))[:3])


def skip_if_saved_by_a_newer_keras(path: Path) -> None:
    """Keras loads files from its own and earlier versions, not from later ones
    (their configs may hold arguments it does not know)."""
    saved_by = np.load(path.with_suffix(".npz"), allow_pickle=False)["keras_version"]
    if _version(saved_by) > _version(keras.__version__):
        pytest.skip(f"{path.name} was saved by Keras {saved_by}, newer than {keras.__version__}")
