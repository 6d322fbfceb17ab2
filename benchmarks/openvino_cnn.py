"""OpenVINO inference of a CNN exported by Keras: keras_prelu.PReLU vs keras.layers.PReLU vs ReLU.

An 8-block CNN (3x3 Conv2D, 32 channels, then the activation; 56x56x32
inputs) is built three times with the same weights, with a channel-wise
`keras_prelu.PReLU`, `keras.layers.PReLU(shared_axes=[1, 2])` and ReLU, and
exported with `model.export(path, format="openvino")`. OpenVINO's CPU plugin
runs each graph (one thread by default, float32 inference precision),
interleaved in a shuffled order each round, and the median time per batch
is reported with its ratio to ReLU, beside the ops each graph holds.

Keras exports OpenVINO from TensorFlow and PyTorch only:

    KERAS_BACKEND=tensorflow python benchmarks/openvino_cnn.py
    KERAS_BACKEND=torch      python benchmarks/openvino_cnn.py
"""

import argparse
import collections
import os
import random
import statistics
import sys
import tempfile
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras_prelu  # noqa: E402

ACTIVATIONS = {
    "keras_prelu.PReLU": lambda: keras_prelu.PReLU(
        layout="channelwise", data_format="channels_last", alpha_initializer=0.1
    ),
    "keras.layers.PReLU": lambda: keras.layers.PReLU(
        shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.1)
    ),
    "ReLU": keras.layers.ReLU,
}


def build(activation, blocks, channels, size):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((size, size, channels))]
    for _ in range(blocks):
        layers += [
            keras.layers.Conv2D(channels, 3, padding="same", data_format="channels_last"),
            activation(),
        ]
    return keras.Sequential(layers)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import openvino

    core = openvino.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": args.threads}
    x = np.random.default_rng(0).standard_normal((args.batch, args.size, args.size, args.channels))
    x = x.astype("float32")
    runs, ops = {}, {}
    with tempfile.TemporaryDirectory() as directory:
        for name, activation in ACTIVATIONS.items():
            model = build(activation, args.blocks, args.channels, args.size)
            path = os.path.join(directory, f"{len(runs)}.xml")
            model.export(path, format="openvino", verbose=False)
            ov_model = core.read_model(path)
            counts = collections.Counter(op.get_type_name() for op in ov_model.get_ordered_ops())
            ops[name] = {k: v for k, v in counts.items() if k not in ("Constant", "Parameter")}
            compiled = core.compile_model(ov_model, "CPU", config)
            error = np.max(np.abs(compiled(x)[0] - keras.ops.convert_to_numpy(model(x))))
            assert error < 1e-4, (name, error)
            runs[name] = lambda compiled=compiled: compiled(x)[0]
    times = {name: [] for name in runs}
    order = list(runs)
    shuffler = random.Random(0)
    for _ in range(args.rounds):
        shuffler.shuffle(order)
        for name in order:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"backend={keras.backend.backend()} keras={keras.__version__} "
        f"openvino={openvino.__version__} threads={args.threads} "
        f"input=({args.batch}, {args.size}, {args.size}, {args.channels}) blocks={args.blocks}"
    )
    for name, seconds in medians.items():
        ratio = seconds / medians["ReLU"]
        print(f"  {name:20s} {seconds * 1e3:7.1f} ms  {ratio:5.2f}x ReLU  {ops[name]}")
    return medians


if __name__ == "__main__":
    main()
