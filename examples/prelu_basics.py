"""
Title: First uses of keras_prelu.PReLU
Author: keras_prelu contributors
Date created: 2026/11/30
Last modified: 2026/12/04
Description: Three first uses of `keras_prelu.PReLU`, on any Keras backend.

1. A standalone PReLU with a single slope, applied to a (1, 64, 64, 3) batch.
2. A Conv2D -> BatchNormalization -> PReLU block.
3. A PReLU with one slope per channel.

Run: `KERAS_BACKEND=jax python -m examples.prelu_basics` (or tensorflow, torch).
Images are channels-last, `(batch, height, width, channels)`, as in Keras;
PyTorch code would use `(batch, channels, height, width)`.
"""

import argparse

import keras
import numpy as np

import keras_prelu


def _slopes(layer) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer.alpha)


def single_slope_prelu(seed: int = 0) -> dict:
    """A PReLU with one slope shared by every element (`layout="scalar"`)."""
    images = np.random.default_rng(seed).standard_normal((1, 64, 64, 3)).astype("float32")
    layer = keras_prelu.PReLU(layout="scalar")
    outputs = layer(images)
    return {
        "input_shape": images.shape,
        "output_shape": tuple(outputs.shape),
        "slopes": _slopes(layer),
    }


def conv_bn_prelu_block(
    in_channels: int = 3, out_channels: int = 16, layout: str = "scalar"
) -> keras.Sequential:
    """Conv2D (3x3, "same") -> BatchNormalization -> PReLU, as a reusable block.

    `layout="scalar"` gives the block one slope, as `torch.nn.PReLU()` does;
    `layout="channelwise"` gives one slope per output channel.
    """
    kwargs = {"data_format": "channels_last"} if layout == "channelwise" else {}
    return keras.Sequential(
        [
            keras.Input((None, None, in_channels)),
            keras.layers.Conv2D(out_channels, 3, padding="same", data_format="channels_last"),
            keras.layers.BatchNormalization(),
            keras_prelu.PReLU(layout=layout, **kwargs),
        ],
        name="conv_bn_prelu",
    )


def run_block(seed: int = 0) -> dict:
    images = np.random.default_rng(seed).standard_normal((1, 32, 32, 3)).astype("float32")
    block = conv_bn_prelu_block()
    outputs = block(images)
    return {
        "input_shape": images.shape,
        "output_shape": tuple(outputs.shape),
        "slopes": _slopes(block.layers[-1]),
    }


def per_channel_prelu(seed: int = 0) -> dict:
    """A PReLU with one learnable slope per input channel (`layout="channelwise"`)."""
    images = np.random.default_rng(seed).standard_normal((1, 32, 32, 3)).astype("float32")
    layer = keras_prelu.PReLU(layout="channelwise", data_format="channels_last")
    outputs = layer(images)
    return {
        "input_shape": images.shape,
        "output_shape": tuple(outputs.shape),
        "slopes": _slopes(layer),
    }


def main(argv=None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description="Three first uses of keras_prelu.PReLU.")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    args = parser.parse_args(argv)
    results = {
        "single slope": single_slope_prelu(args.seed),
        "Conv-BN-PReLU block": run_block(args.seed),
        "per-channel slopes": per_channel_prelu(args.seed),
    }
    print(f"Keras backend: {keras.backend.backend()}")
    for title, result in results.items():
        slopes = result["slopes"]
        print(f"{title}: input {result['input_shape']} -> output {result['output_shape']}")
        plural = "s" if slopes.size > 1 else ""
        print(f"  initial slope{plural} (shape {slopes.shape}): {slopes.ravel().tolist()}")
    return results


if __name__ == "__main__":
    main()
