"""Benchmark keras_prelu against keras.layers.PReLU, ReLU and LeakyReLU.

Run once per backend; every candidate runs interleaved in this one process,
so the ratios compare like with like on a noisy machine:

    KERAS_BACKEND=tensorflow python benchmarks/benchmark.py
    KERAS_BACKEND=jax        python benchmarks/benchmark.py
    KERAS_BACKEND=torch      python benchmarks/benchmark.py

It measures, in each backend's default training mode (TensorFlow
`tf.function` without XLA, JAX `jax.jit`, PyTorch eager):

  (a) one activation layer, forward + backward, NHWC float32 32x64x64x64,
      channel-wise and full slope layouts;
  (b) one `model.fit` epoch of a 4x Conv-BN-activation CNN, batch 128,
      32x32x3 inputs;
  (c) memory: the peak resident-memory growth over a CNN training epoch (one
      fresh process per candidate), and, where the backend can tell exactly
      (JAX, PyTorch), the bytes one layer keeps for its backward pass.

It prints medians and ratios as each section finishes and writes them to a
JSON file (--out, default benchmarks/results/<backend>.json).
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras_prelu  # noqa: E402

BACKEND = keras.backend.backend()
CHANNELS = 64


# -- candidates ---------------------------------------------------------------


def layer_candidates(layout):
    """Activation layers to compare, by name, for NHWC inputs."""
    if layout == "channelwise":

        def ours():
            return keras_prelu.PReLU(layout="channelwise")

        def builtin():
            return keras.layers.PReLU(
                alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2]
            )
    else:

        def ours():
            return keras_prelu.PReLU()

        def builtin():
            return keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25))

    return {
        "keras_prelu.PReLU": ours,
        "keras.layers.PReLU": builtin,
        "keras.layers.ReLU": keras.layers.ReLU,
        "keras.layers.LeakyReLU": lambda: keras.layers.LeakyReLU(0.25),
    }


# -- (a) one layer, forward + backward ----------------------------------------


def _layer_step_tensorflow(layer, x, upstream):
    import tensorflow as tf

    x, upstream = tf.constant(x), tf.constant(upstream)
    variables = layer.trainable_weights

    @tf.function(jit_compile=False)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x)
        # The output is returned too: in a model the next layer reads it, and
        # an unused forward would be pruned from the graph.
        return out, tape.gradient(
            out, [x] + [v.value for v in variables], output_gradients=upstream
        )

    def run():
        out, grads = step(x)
        out.numpy(), grads[0].numpy()  # synchronise

    return run


def _layer_step_jax(layer, x, upstream):
    import jax

    x, upstream = jax.numpy.asarray(x), jax.numpy.asarray(upstream)
    trainable = [v.value for v in layer.trainable_variables]

    @jax.jit
    def step(trainable, x):
        def forward(trainable, x):
            out, _ = layer.stateless_call(trainable, [], x)
            return out

        # The output is returned too: in a model the next layer reads it, and
        # an unused forward would be removed by XLA.
        out, vjp = jax.vjp(forward, trainable, x)
        return out, vjp(upstream)

    def run():
        jax.block_until_ready(step(trainable, x))

    return run


def _layer_step_torch(layer, x, upstream):
    import torch

    x = torch.tensor(x, requires_grad=True)
    upstream = torch.tensor(upstream)

    def run():
        x.grad = None
        for v in layer.trainable_weights:
            v.value.grad = None
        layer(x).backward(upstream)

    return run


def _torch_module_step(x_nhwc, upstream_nhwc):
    """torch.nn.PReLU(C) on the same data in its own NCHW layout."""
    import torch

    module = torch.nn.PReLU(x_nhwc.shape[-1])
    x = torch.tensor(x_nhwc.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    upstream = torch.tensor(upstream_nhwc.transpose(0, 3, 1, 2).copy())

    def run():
        x.grad = None
        module.weight.grad = None
        module(x).backward(upstream)

    return run


LAYER_STEPS = {
    "tensorflow": _layer_step_tensorflow,
    "jax": _layer_step_jax,
    "torch": _layer_step_torch,
}


def interleaved_medians(runs, repeats, warmup=3):
    """Times every callable `repeats` times, in a fresh random order each
    round, and returns the median seconds per callable."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runs}
    names = list(runs)
    for _ in range(repeats):
        random.shuffle(names)
        for name in names:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_layers(shape, repeats):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype("float32")
    upstream = rng.standard_normal(shape).astype("float32")
    results = {}
    for layout in ("channelwise", "full"):
        runs = {}
        for name, make in layer_candidates(layout).items():
            layer = make()
            layer.build(shape)
            runs[name] = LAYER_STEPS[BACKEND](layer, x, upstream)
        if BACKEND == "torch" and layout == "channelwise":
            runs["torch.nn.PReLU"] = _torch_module_step(x, upstream)
        results[layout] = interleaved_medians(runs, repeats)
    return results


# -- (b) CNN epoch ------------------------------------------------------------


def cnn(activation):
    layers = [keras.Input((32, 32, 3))]
    for filters in (32, 32, 64, 64):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            activation(),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)]
    model = keras.Sequential(layers)
    model.compile(
        keras.optimizers.SGD(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False if BACKEND != "jax" else "auto",
    )
    return model


def bench_cnn(samples, repeats):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, samples)
    runs = {}
    for name, make in layer_candidates("channelwise").items():
        keras.utils.set_random_seed(0)
        model = cnn(make)
        runs[name] = lambda model=model: model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    return interleaved_medians(runs, repeats, warmup=1)


# -- (c) memory ------------------------------------------------------------


def activation_memory(shape):
    """Bytes one layer's training step keeps for its backward pass, where the
    backend can say exactly: JAX, the compiled step's temporary buffers (XLA
    memory analysis); PyTorch, the tensors autograd saves beyond the input
    (saved-tensor hooks). TensorFlow has no CPU allocator statistics."""
    if BACKEND == "tensorflow":
        return None
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype("float32")
    results = {}
    for name, make in layer_candidates("channelwise").items():
        layer = make()
        layer.build(shape)
        results[name] = _saved_bytes(layer, x)
    return results


def _saved_bytes(layer, x):
    if BACKEND == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]

        def loss(trainable, x):
            out, _ = layer.stateless_call(trainable, [], x)
            return (out * out).sum()

        compiled = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(trainable, x).compile()
        return compiled.memory_analysis().temp_size_in_bytes
    import torch

    saved = {}

    def pack(tensor):
        saved[tensor.data_ptr()] = tensor.numel() * tensor.element_size()
        return tensor

    x_t = torch.tensor(x, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x_t)
    saved.pop(x_t.data_ptr(), None)  # the input is alive anyway
    return sum(saved.values())


def peak_training_memory(samples, repeats):
    """Peak resident-memory growth over a CNN training epoch, one fresh
    process per candidate and repeat, so no candidate inherits another's
    allocator state."""
    peaks = {name: [] for name in layer_candidates("channelwise")}
    for _ in range(repeats):
        names = list(peaks)
        random.shuffle(names)
        for name in names:
            output = subprocess.run(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--memory-child",
                    name,
                    "--cnn-samples",
                    str(samples),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            peaks[name].append(json.loads(output.strip().splitlines()[-1])["peak_growth_bytes"])
    return {name: statistics.median(values) for name, values in peaks.items()}


def _current_rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory_child(name, samples):
    import threading

    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, samples)
    model = cnn(layer_candidates("channelwise")[name])
    model.train_on_batch(x[:8], y[:8])  # trace and compile on a tiny batch
    # The process's lifetime peak (ru_maxrss) is set by imports, so sample
    # the resident size while the steps run instead (Linux /proc).
    before = _current_rss()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _current_rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    done.set()
    sampler.join()
    print(json.dumps({"peak_growth_bytes": peak[0] - before}))


# -- report -------------------------------------------------------------------


def ratios(medians, baseline):
    return {name: medians[name] / medians[baseline] for name in medians}


def _save(report, path):
    # Rewritten after each section, so an interrupted run keeps what it measured.
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="one-layer timings per candidate")
    parser.add_argument("--cnn-samples", type=int, default=512, help="samples per CNN epoch")
    parser.add_argument("--cnn-repeats", type=int, default=3, help="timed CNN epochs per candidate")
    parser.add_argument("--batch", type=int, default=32, help="batch of the one-layer input")
    parser.add_argument("--skip-cnn", action="store_true", help="only the one-layer timings")
    parser.add_argument("--memory-repeats", type=int, default=2, help="memory runs per candidate")
    parser.add_argument("--out", default=f"benchmarks/results/{BACKEND}.json")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return _memory_child(args.memory_child, args.cnn_samples)

    shape = (args.batch, 64, 64, CHANNELS)
    report = {
        "backend": BACKEND,
        "keras": keras.__version__,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "layer_shape": shape,
    }
    print(f"backend={BACKEND} keras={keras.__version__} shape={shape}", flush=True)

    report["layer_seconds"] = bench_layers(shape, args.repeats)
    report["layer_vs_relu"] = {
        k: ratios(v, "keras.layers.ReLU") for k, v in report["layer_seconds"].items()
    }
    report["layer_vs_builtin_prelu"] = {
        k: ratios(v, "keras.layers.PReLU") for k, v in report["layer_seconds"].items()
    }
    for layout, meds in report["layer_seconds"].items():
        print(f"\n(a) one layer fwd+bwd, {layout} slopes: median ms, x ReLU, x keras PReLU")
        for name, seconds in sorted(meds.items(), key=lambda kv: kv[1]):
            print(
                f"  {name:24s} {seconds * 1e3:8.2f}  {report['layer_vs_relu'][layout][name]:5.2f}x"
                f"  {report['layer_vs_builtin_prelu'][layout][name]:5.2f}x"
            )
    report["layer_saved_for_backward_bytes"] = activation_memory(shape)
    if report["layer_saved_for_backward_bytes"] is not None:
        print("\n(c) one layer: memory kept for backward beyond the input, MiB")
        for name, size in report["layer_saved_for_backward_bytes"].items():
            print(f"  {name:24s} {size / 2**20:8.1f}")
    _save(report, args.out)
    if args.skip_cnn:
        print(f"\nwrote {args.out}")
        return

    report["cnn_epoch_seconds"] = bench_cnn(args.cnn_samples, args.cnn_repeats)
    report["cnn_epoch_vs_relu"] = ratios(report["cnn_epoch_seconds"], "keras.layers.ReLU")
    print(f"\n(b) CNN epoch ({args.cnn_samples} samples, batch 128): median s, x ReLU", flush=True)
    for name, seconds in sorted(report["cnn_epoch_seconds"].items(), key=lambda kv: kv[1]):
        print(f"  {name:24s} {seconds:8.3f}  {report['cnn_epoch_vs_relu'][name]:5.3f}x", flush=True)
    _save(report, args.out)

    report["cnn_peak_memory_growth_bytes"] = peak_training_memory(
        args.cnn_samples, args.memory_repeats
    )
    report["cnn_peak_memory_vs_relu"] = ratios(
        report["cnn_peak_memory_growth_bytes"], "keras.layers.ReLU"
    )
    print("\n(c) CNN training: peak RSS growth over an epoch, median MiB, x ReLU")
    for name, size in report["cnn_peak_memory_growth_bytes"].items():
        print(f"  {name:24s} {size / 2**20:8.1f}  {report['cnn_peak_memory_vs_relu'][name]:5.3f}x")
    _save(report, args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
