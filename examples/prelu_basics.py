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


def _apply(layer, shape, seed) -> dict:
    """The input and output shapes of `layer` on a random batch, and its last PReLU's slopes."""
    images = np.random.default_rng(seed).standard_normal(shape).astype("float32")
    outputs = layer(images)
    prelu = layer.layers[-1] if isinstance(layer, keras.Sequential) else layer
    return {
        "input_shape": images.shape,
        "output_shape": tuple(outputs.shape),
        "slopes": keras.ops.convert_to_numpy(prelu.alpha),
    }


def single_slope_prelu(seed: int = 0) -> dict:
    """A PReLU with one slope shared by every element (`layout="scalar"`)."""
    return _apply(keras_prelu.PReLU(layout="scalar"), (1, 64, 64, 3), seed)


def run_block(seed: int = 0) -> dict:
    """Conv2D -> BatchNormalization -> PReLU, with one slope as `torch.nn.PReLU()` has."""
    block = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(16, 3, padding="same", data_format="channels_last"),
            keras.layers.BatchNormalization(),
            keras_prelu.PReLU(layout="scalar"),
        ],
        name="conv_bn_prelu",
    )
    return _apply(block, (1, 32, 32, 3), seed)


def per_channel_prelu(seed: int = 0) -> dict:
    """A PReLU with one learnable slope per input channel (`layout="channelwise"`)."""
    layer = keras_prelu.PReLU(layout="channelwise", data_format="channels_last")
    return _apply(layer, (1, 32, 32, 3), seed)


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
