"""Benchmark keras_prelu.PReLU against keras.layers.PReLU and ReLU.

Run once per backend; all candidates of a measurement run interleaved, in a
fresh random order each round, in this one process, so their ratios compare
like with like on a noisy machine:

    KERAS_BACKEND=tensorflow python benchmarks/benchmark.py
    KERAS_BACKEND=jax        python benchmarks/benchmark.py
    KERAS_BACKEND=torch      python benchmarks/benchmark.py

Sections (see benchmarks/README.md for the method and figures):

  (1) one channel-wise activation layer, forward + backward, NHWC float32,
      at each --sizes shape, in the backend's plain training mode
      (TensorFlow `tf.function` without XLA, JAX `jax.jit`, PyTorch eager);
      the layer is called with `training=True`, as `fit` and a custom
      training loop call it; the loss is sum(y * y), so the gradient reaching
      the layer depends on its output as in a model, and each step returns
      the output with the gradients (so no backend prunes the forward);
  (2) the same compiled (TensorFlow `jit_compile=True`, PyTorch
      `torch.compile`; JAX is already compiled in (1));
  (3) one `model.fit` epoch of a small Conv-BN-activation CNN;
  (4) peak memory of that CNN's training epoch, one fresh process per
      candidate and repeat: device memory statistics on a GPU, resident
      memory growth on a CPU; and the bytes one layer keeps for its backward
      pass where the backend can tell (JAX, PyTorch);
  (5) the bytes one layer's training step allocates at each size, from the
      backend's allocator, compiler or profiler: a figure that does not
      depend on how fast the machine's memory is.

The device is whatever Keras uses (a GPU when the backend sees one). Results
are printed as each section finishes, saved to --out as JSON, and summed up
in one table at the end.
"""

import argparse
import inspect
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
DEFAULT_SIZES = "8x32x32x32,32x64x64x64,64x128x128x32"
OURS, BUILTIN, RELU = "keras_prelu.PReLU", "keras.layers.PReLU", "keras.layers.ReLU"


# -- device -------------------------------------------------------------------------


def device_description():
    """The device Keras computes on, in words."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return f"GPU: {details.get('device_name', gpus[0].name)}"
    elif BACKEND == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return f"{device.platform.upper()}: {device.device_kind}"
    elif BACKEND == "torch":
        import torch

        if torch.cuda.is_available():
            return f"GPU: {torch.cuda.get_device_name()}"
    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def on_gpu():
    return not device_description().startswith("CPU")


def set_threads(count):
    """CPU threads for the backend's own ops, before it runs any."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(count)
        tf.config.threading.set_inter_op_parallelism_threads(count)
    elif BACKEND == "torch":
        import torch

        torch.set_num_threads(count)


def synchronize():
    """Waits for the device to finish queued work (a no-op on CPU)."""
    if not on_gpu():
        return
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tf.test.experimental.sync_devices()
    elif BACKEND == "torch":
        import torch

        torch.cuda.synchronize()


# -- candidates ---------------------------------------------------------------------


def candidates(layouts=("channelwise",)):
    """Activation layers to compare, by name, for NHWC inputs."""
    result = {}
    for layout in layouts:
        suffix = "" if layout == "channelwise" else f" ({layout})"
        if layout == "channelwise":
            ours = lambda: keras_prelu.PReLU(layout="channelwise")  # noqa: E731
            builtin = lambda: keras.layers.PReLU(  # noqa: E731
                alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2]
            )
        else:
            ours = keras_prelu.PReLU
            builtin = lambda: keras.layers.PReLU(  # noqa: E731
                alpha_initializer=keras.initializers.Constant(0.25)
            )
        result[OURS + suffix] = ours
        result[BUILTIN + suffix] = builtin
    result[RELU] = keras.layers.ReLU
    return result


def _call_kwargs(layer):
    # `stateless_call` passes keyword arguments to `call` as they are.
    return {"training": True} if "training" in inspect.signature(layer.call).parameters else {}


# -- (1), (2) one layer, forward + backward ----------------------------------------


def _layer_step_tensorflow(layer, x, compiled):
    import tensorflow as tf

    x = tf.constant(x)
    variables = layer.trainable_weights

    @tf.function(jit_compile=compiled)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, training=True)
            loss = tf.reduce_sum(out * out)
        # The output is returned too, and the loss needs it: in a model the
        # next layer reads it, and its gradient depends on it.
        return out, tape.gradient(loss, [x] + [v.value for v in variables])

    def run():
        step(x)
        synchronize()

    return run


def _layer_step_jax(layer, x, compiled):
    import jax

    x = jax.numpy.asarray(x)
    trainable = [v.value for v in layer.trainable_variables]
    step = jax.jit(jax.value_and_grad(_jax_loss(layer), argnums=(0, 1), has_aux=True))

    def run():
        jax.block_until_ready(step(trainable, x))

    return run


def _jax_loss(layer):
    """sum(y * y) as a function of the slopes' values and x, with the output
    y as auxiliary data: returned too, as in a model, where the next layer
    reads it and its gradient depends on it."""
    kwargs = _call_kwargs(layer)

    def loss(trainable, x):
        out, _ = layer.stateless_call(trainable, [], x, **kwargs)
        return (out * out).sum(), out

    return loss


def _layer_step_torch(layer, x, compiled):
    import torch

    x = keras.ops.convert_to_tensor(x).requires_grad_()

    def forward(x):
        return layer(x, training=True)

    if compiled:
        forward = torch.compile(forward)

    def run():
        x.grad = None
        for v in layer.trainable_weights:
            v.value.grad = None
        out = forward(x)
        (out * out).sum().backward()
        synchronize()

    return run


def _torch_module_step(x_nhwc, compiled):
    """torch.nn.PReLU(C) on the same data in its own NCHW layout."""
    import torch

    device = keras.ops.convert_to_tensor(np.zeros(())).device
    module = torch.nn.PReLU(x_nhwc.shape[-1]).to(device)
    x = torch.tensor(x_nhwc.transpose(0, 3, 1, 2).copy(), device=device, requires_grad=True)
    forward = torch.compile(module) if compiled else module

    def run():
        x.grad = None
        module.weight.grad = None
        out = forward(x)
        (out * out).sum().backward()
        synchronize()

    return run


LAYER_STEPS = {
    "tensorflow": _layer_step_tensorflow,
    "jax": _layer_step_jax,
    "torch": _layer_step_torch,
}


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def interleaved_times(runs, repeats, warmup=3):
    """Times every callable `repeats` times, in a fresh random order each
    round, and returns all the times, in seconds, per callable."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runs}
    names = list(runs)
    for _ in range(repeats):
        random.shuffle(names)
        for name in names:
            start = clock()
            runs[name]()
            times[name].append(clock() - start)
    return times


def bench_layer(shape, mode, repeats, layouts):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    compiled = mode == "compiled"
    if BACKEND == "torch" and compiled:
        import torch

        # Each measurement compiles its candidates afresh, within torch's
        # recompilation limit.
        torch.compiler.reset()
    runs = {}
    for name, make in candidates(layouts).items():
        layer = make()
        layer.build(shape)
        runs[name] = LAYER_STEPS[BACKEND](layer, x, compiled)
    if BACKEND == "torch":
        runs["torch.nn.PReLU (NCHW)"] = _torch_module_step(x, compiled)
    times = interleaved_times(runs, repeats)
    return {name: statistics.median(t) for name, t in times.items()}


# -- (3) CNN epoch ------------------------------------------------------------------


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
        # Each backend's plain mode: XLA on JAX, graph without XLA on
        # TensorFlow, eager on PyTorch.
        jit_compile=BACKEND == "jax",
    )
    return model


def _cnn_data(samples):
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((samples, 32, 32, 3)).astype("float32"),
        rng.integers(0, 10, samples),
    )


def bench_cnn(samples, repeats):
    x, y = _cnn_data(samples)
    runs = {}
    for name, make in candidates().items():
        keras.utils.set_random_seed(0)
        model = cnn(make)

        def run(model=model):
            model.fit(x, y, batch_size=128, epochs=1, verbose=0)
            synchronize()

        runs[name] = run
    times = interleaved_times(runs, repeats, warmup=1)
    return (
        {name: statistics.median(t) for name, t in times.items()},
        {name: min(t) for name, t in times.items()},
    )


# -- (4) memory ---------------------------------------------------------------------


def saved_for_backward(shape):
    """Bytes one layer's training step keeps for its backward pass, where the
    backend can say exactly: JAX, the compiled step's temporary buffers (XLA
    memory analysis); PyTorch, the tensors autograd saves beyond the input
    (saved-tensor hooks). None on TensorFlow."""
    if BACKEND == "tensorflow":
        return None
    return _for_each_candidate(shape, _saved_bytes)


def _for_each_candidate(shape, measure):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    results = {}
    for name, make in candidates().items():
        layer = make()
        layer.build(shape)
        results[name] = measure(layer, x)
    return results


def _jax_memory_plan(layer, x):
    import jax

    trainable = [v.value for v in layer.trainable_variables]
    step = jax.jit(jax.value_and_grad(_jax_loss(layer), argnums=(0, 1), has_aux=True))
    return step.lower(trainable, x).compile().memory_analysis()


def _saved_bytes(layer, x):
    if BACKEND == "jax":
        return _jax_memory_plan(layer, x).temp_size_in_bytes
    import torch

    saved = {}

    def pack(tensor):
        saved[tensor.data_ptr()] = tensor.numel() * tensor.element_size()
        return tensor

    x_t = keras.ops.convert_to_tensor(x).requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x_t, training=True)
    saved.pop(x_t.data_ptr(), None)  # the input is alive anyway
    return sum(saved.values())


def step_allocations(shape):
    """Bytes one layer's training step (as in (1)) allocates, from each
    backend's own accounting, so the figure does not depend on the machine's
    speed: {candidate: {"peak": bytes, "total": bytes or None}}.

    TensorFlow: the allocator's peak during one step above what was in use
    before it (`tf.config.experimental.get_memory_info`); no total.
    JAX: XLA's buffer plan for the compiled step, temporaries plus outputs
    (allocated once per step: peak and total).
    PyTorch: the profiler's memory events of one step: the sum of all
    allocations (total) and the peak of their running sum.
    """
    return _for_each_candidate(shape, _step_bytes)


def _step_bytes(layer, x):
    if BACKEND == "jax":
        plan = _jax_memory_plan(layer, x)
        total = plan.temp_size_in_bytes + plan.output_size_in_bytes
        return {"peak": total, "total": total}
    run = LAYER_STEPS[BACKEND](layer, x, False)
    for _ in range(2):  # trace, and reach a steady state
        run()
    if BACKEND == "tensorflow":
        import tensorflow as tf

        device = "GPU:0" if on_gpu() else "CPU:0"
        tf.config.experimental.reset_memory_stats(device)
        before = tf.config.experimental.get_memory_info(device)["current"]
        run()
        peak = tf.config.experimental.get_memory_info(device)["peak"]
        return {"peak": peak - before, "total": None}
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu() else [])
    with profile(activities=activities, profile_memory=True) as profiler:
        run()
    key = "self_device_memory_usage" if on_gpu() else "self_cpu_memory_usage"
    running = peak = total = 0
    for event in sorted(profiler.events(), key=lambda e: e.time_range.start):
        change = getattr(event, key, 0) or 0
        running += change
        peak = max(peak, running)
        total += max(change, 0)
    return {"peak": peak, "total": total}


def peak_training_memory(samples, repeats):
    """Peak memory growth over a CNN training epoch, one fresh process per
    candidate and repeat, so no candidate inherits another's allocator."""
    peaks = {name: [] for name in candidates()}
    kind = None
    for _ in range(repeats):
        names = list(peaks)
        random.shuffle(names)
        for name in names:
            output = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--memory-child", name]
                + ["--cnn-samples", str(samples)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            result = json.loads(output.strip().splitlines()[-1])
            peaks[name].append(result["peak_growth_bytes"])
            kind = result["kind"]
    return kind, {name: statistics.median(values) for name, values in peaks.items()}


def _current_rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _device_memory():
    """(bytes in use, peak bytes in use) on the GPU, or None on a CPU."""
    if not on_gpu():
        return None
    if BACKEND == "tensorflow":
        import tensorflow as tf

        info = tf.config.experimental.get_memory_info("GPU:0")
        return info["current"], info["peak"]
    if BACKEND == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("bytes_in_use", 0), stats.get("peak_bytes_in_use", 0)
    import torch

    return torch.cuda.memory_allocated(), torch.cuda.max_memory_allocated()


def _reset_device_peak():
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("GPU:0")
    elif BACKEND == "torch":
        import torch

        torch.cuda.reset_peak_memory_stats()
    # JAX cannot reset its peak: the child process is fresh, and the peak
    # of compiling on a tiny batch is below the epoch's.


def _memory_child(name, samples):
    import threading

    x, y = _cnn_data(samples)
    model = cnn(candidates()[name])
    model.train_on_batch(x[:8], y[:8])  # trace and compile on a tiny batch
    synchronize()
    device = _device_memory()
    if device is not None:
        _reset_device_peak()
        before = _device_memory()[0]
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        synchronize()
        growth = _device_memory()[1] - before
        print(json.dumps({"kind": "device memory", "peak_growth_bytes": growth}))
        return
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
    print(json.dumps({"kind": "resident memory", "peak_growth_bytes": peak[0] - before}))


# -- report -------------------------------------------------------------------------


def ratios(values, baseline):
    return {name: values[name] / values[baseline] for name in values}


def _save(report, path):
    # Rewritten after each section, so an interrupted run keeps what it measured.
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)


def _print_layer(label, seconds):
    print(f"\n{label}: median ms, x ReLU, x keras PReLU", flush=True)
    vs_relu, vs_builtin = ratios(seconds, RELU), ratios(seconds, BUILTIN)
    for name, value in sorted(seconds.items(), key=lambda kv: kv[1]):
        print(f"  {name:30s} {value * 1e3:9.2f}  {vs_relu[name]:5.2f}x  {vs_builtin[name]:5.2f}x")


def summary(report):
    """The compact table printed at the end."""
    lines = [
        f"\nSUMMARY  backend={report['backend']}  device={report['device']}  "
        f"keras={report['keras']}  clock={report['clock']}  layer rounds={report['repeats']}"
        f"  CNN epochs={report.get('cnn_repeats')}",
        f"{'measurement':40s} {'ours/ReLU':>10s} {'builtin/ReLU':>13s} {'ours/builtin':>13s}",
    ]

    def row(label, values):
        if not {OURS, BUILTIN, RELU} <= set(values):
            return
        ours, builtin = values[OURS] / values[RELU], values[BUILTIN] / values[RELU]
        lines.append(f"{label:40s} {ours:9.2f}x {builtin:12.2f}x {ours / builtin:12.2f}x")

    for key, seconds in report.get("layer_seconds", {}).items():
        row(f"layer fwd+bwd {key}", seconds)
    for key, allocated in report.get("layer_step_allocated_bytes", {}).items():
        for kind in ("peak", "total"):
            if all(values[kind] for values in allocated.values()):
                row(f"layer step bytes, {kind} {key}", {n: v[kind] for n, v in allocated.items()})
    if "cnn_epoch_seconds" in report:
        row(f"CNN fit epoch ({report['cnn_samples']} samples)", report["cnn_epoch_seconds"])
        row("CNN fit epoch, fastest", report["cnn_fastest_epoch_seconds"])
    if "cnn_peak_memory_bytes" in report:
        row(f"CNN peak {report['cnn_peak_memory_kind']}", report["cnn_peak_memory_bytes"])
    return "\n".join(lines)


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help='NHWC input shapes, comma-separated ("" for none)'
    )
    parser.add_argument(
        "--repeats", type=int, default=30, help="timed rounds per layer measurement"
    )
    parser.add_argument(
        "--modes", default="plain,compiled", help="plain and/or compiled (TF XLA, torch.compile)"
    )
    parser.add_argument("--layouts", default="channelwise", help="channelwise and/or full")
    parser.add_argument("--skip-cnn", action="store_true", help="only the one-layer timings")
    parser.add_argument("--cnn-samples", type=int, default=512, help="samples per CNN epoch")
    parser.add_argument("--cnn-repeats", type=int, default=5, help="timed CNN epochs per candidate")
    parser.add_argument("--memory-repeats", type=int, default=2, help="memory runs per candidate")
    parser.add_argument("--skip-memory", action="store_true", help="no CNN memory measurement")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time, or the process's CPU time (steadier on a shared machine)",
    )
    parser.add_argument(
        "--threads", type=int, help="CPU threads for TensorFlow and PyTorch (JAX: XLA_FLAGS)"
    )
    parser.add_argument("--out", default=f"benchmarks/results/{BACKEND}.json")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    return parser


def _run_layers(report, sizes, modes, layouts, args):
    """Sections (1/2), (5) and (4): one layer's time and memory."""
    for shape in sizes:
        for mode in modes:
            key = f"{'x'.join(map(str, shape))} {mode}"
            seconds = bench_layer(shape, mode, args.repeats, layouts)
            report["layer_seconds"][key] = seconds
            _print_layer(f"(1/2) one layer fwd+bwd, {key}", seconds)
            _save(report, args.out)
    if not sizes:
        return
    report["layer_step_allocated_bytes"] = {}
    print("\n(5) one layer's training step: bytes allocated, x the input's size")
    for shape in sizes:
        key = "x".join(map(str, shape))
        allocated = step_allocations(shape)
        report["layer_step_allocated_bytes"][key] = allocated
        input_bytes = 4 * int(np.prod(shape))
        for name, values in allocated.items():
            total = values["total"]
            total = "" if total is None else f"  total {total / input_bytes:5.2f}x"
            print(f"  {key:14s} {name:30s} peak {values['peak'] / input_bytes:5.2f}x{total}")
    _save(report, args.out)
    report["layer_saved_for_backward_bytes"] = saved_for_backward(sizes[0])
    if report["layer_saved_for_backward_bytes"] is not None:
        print(f"\n(4) one layer at {sizes[0]}: memory kept for backward beyond the input, MiB")
        for name, size in report["layer_saved_for_backward_bytes"].items():
            print(f"  {name:30s} {size / 2**20:8.1f}")
    _save(report, args.out)


def _run_cnn(report, args):
    """Sections (3) and (4): a CNN's training epoch, and its peak memory."""
    report["cnn_samples"] = args.cnn_samples
    report["cnn_repeats"] = args.cnn_repeats
    epoch, fastest = bench_cnn(args.cnn_samples, args.cnn_repeats)
    report["cnn_epoch_seconds"], report["cnn_fastest_epoch_seconds"] = epoch, fastest
    label = f"(3) CNN fit epoch ({args.cnn_samples} samples)"
    print(f"\n{label}: median s, x ReLU; fastest s, x ReLU", flush=True)
    for name, seconds in sorted(epoch.items(), key=lambda kv: kv[1]):
        print(
            f"  {name:30s} {seconds:8.3f}  {seconds / epoch[RELU]:5.3f}x"
            f"  {fastest[name]:8.3f}  {fastest[name] / fastest[RELU]:5.3f}x",
            flush=True,
        )
    _save(report, args.out)
    if args.skip_memory:
        return
    kind, peaks = peak_training_memory(args.cnn_samples, args.memory_repeats)
    report["cnn_peak_memory_kind"] = kind
    report["cnn_peak_memory_bytes"] = peaks
    print(f"\n(4) CNN training: peak {kind} growth over an epoch, median MiB, x ReLU")
    for name, size in peaks.items():
        print(f"  {name:30s} {size / 2**20:8.1f}  {size / peaks[RELU]:5.3f}x")
    _save(report, args.out)


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.memory_child:
        return _memory_child(args.memory_child, args.cnn_samples)
    global clock
    clock = CLOCKS[args.clock]
    if args.threads:
        set_threads(args.threads)
    sizes = [tuple(int(d) for d in size.split("x")) for size in args.sizes.split(",") if size]
    modes = [
        mode for mode in args.modes.split(",") if not (mode == "compiled" and BACKEND == "jax")
    ]
    report = {
        "backend": BACKEND,
        "keras": keras.__version__,
        "device": device_description(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "repeats": args.repeats,
        "clock": args.clock,
        "threads": args.threads,
        "layer_seconds": {},
    }
    print(f"backend={BACKEND} keras={keras.__version__} device={report['device']}", flush=True)
    _run_layers(report, sizes, modes, tuple(args.layouts.split(",")), args)
    if not args.skip_cnn:
        _run_cnn(report, args)
    print(summary(report))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
