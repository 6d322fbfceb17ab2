"""Inference latency of a converted ArcFace iresnet18: Keras, ONNX Runtime, OpenVINO, LiteRT.

A randomly initialised PyTorch iresnet18 (InsightFace's architecture and
parameter names, from examples/iresnet_torch.py) is saved as a state_dict and
converted with `examples.iresnet.convert_checkpoint` to `.keras`, `.onnx`
and, on TensorFlow, `.tflite`. Then, for each batch size (112x112x3
float32 images), these candidates run interleaved, in a shuffled order each
round, and the median time per call is reported with its ratio to PyTorch:

- `torch eager`: the original `torch.nn.Module`, `eval()`, under
  `torch.no_grad()`, NCHW input (the baseline);
- `keras predict_on_batch`: the reloaded `.keras` model's compiled predict
  step (`tf.function` on TensorFlow, `jax.jit` on JAX, eager on PyTorch);
- `keras call`: `model(x, training=False)`, uncompiled;
- `onnxruntime`: the `.onnx` file, CPU provider, default session options;
- `openvino (onnx)`: OpenVINO's CPU plugin on that `.onnx` file (float32
  inference precision, for embeddings that match);
- `openvino (export)` and `openvino (built-in, export)`: `model.export(...,
  format="openvino")` of the converted model, and of the same model with
  `keras.layers.PReLU` (`migration.to_builtin_prelu`), on TensorFlow and
  PyTorch (Keras cannot export a JAX model to OpenVINO). The number of
  native `PRelu` ops in each graph is printed: on PyTorch the built-in's is
  decomposed;
- `tflite`: the `.tflite` file in LiteRT's interpreter
  (`ai_edge_litert.interpreter`, or `tf.lite.Interpreter` where LiteRT is not
  installed) with one thread per CPU core (TensorFlow backend only).

`--threads N` sets the threads of PyTorch, ONNX Runtime, OpenVINO, TFLite
and (on that backend) TensorFlow to N; JAX's CPU thread pool cannot be set from Python
and keeps its default. On a shared machine, one thread per framework keeps
the ratios steadier: multithreaded runtimes wait for each other's cores.

Every candidate's embeddings are checked against PyTorch's first. Run once
per backend (the ONNX file comes from that backend's exporter):

    KERAS_BACKEND=tensorflow python benchmarks/iresnet_latency.py
    KERAS_BACKEND=jax        python benchmarks/iresnet_latency.py
    KERAS_BACKEND=torch      python benchmarks/iresnet_latency.py

It prints a table and writes JSON (--out, default
benchmarks/results/iresnet_<backend>.json).
"""

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras_prelu  # noqa: E402
from examples import iresnet  # noqa: E402

BACKEND = keras.backend.backend()
BASELINE = "torch eager"


def candidates(torch_model, paths, batch, threads=None):
    """Name -> function running one batch and returning NumPy embeddings."""
    import onnxruntime
    import torch

    images = np.random.default_rng(batch).uniform(-1, 1, (batch, 112, 112, 3)).astype("float32")
    torch_images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    model = keras_prelu.saving.load_model(paths["keras"], compile=False)
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        paths["onnx"], options, providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name

    def torch_eager():
        with torch.no_grad():
            return torch_model(torch_images).numpy()

    runs = {
        BASELINE: torch_eager,
        "keras predict_on_batch": lambda: np.asarray(model.predict_on_batch(images)),
        "keras call": lambda: keras.ops.convert_to_numpy(model(images, training=False)),
        "onnxruntime": lambda: session.run(None, {input_name: images})[0],
    }
    if "tflite" in paths:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # TensorFlow's own, deprecated since TF 2.20
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
        interpreter = Interpreter(model_path=paths["tflite"], num_threads=threads or os.cpu_count())
        input_index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(input_index, images.shape)
        interpreter.allocate_tensors()
        output_index = interpreter.get_output_details()[0]["index"]

        def tflite():
            interpreter.set_tensor(input_index, images)
            interpreter.invoke()
            return interpreter.get_tensor(output_index)

        runs["tflite"] = tflite
    runs.update(_openvino_runs(paths, images, threads))
    return runs


OPENVINO_GRAPHS = {
    "openvino (onnx)": "onnx",
    "openvino (export)": "openvino",
    "openvino (built-in, export)": "openvino_builtin",
}


def _openvino_runs(paths, images, threads):
    import openvino

    core = openvino.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    runs = {}
    for name, key in OPENVINO_GRAPHS.items():
        if key in paths:
            compiled = core.compile_model(core.read_model(paths[key]), "CPU", config)
            runs[name] = lambda compiled=compiled: compiled(images)[0]
    return runs


def openvino_prelu_ops(paths):
    """The number of native `PRelu` ops in each OpenVINO graph."""
    import openvino

    core = openvino.Core()
    return {
        name: [op.get_type_name() for op in core.read_model(paths[key]).get_ordered_ops()].count(
            "PRelu"
        )
        for name, key in OPENVINO_GRAPHS.items()
        if key in paths
    }


def measure(runs, rounds, seed):
    """Median seconds per call, the candidates interleaved in a new order each round."""
    order = list(runs)
    times = {name: [] for name in order}
    shuffler = random.Random(seed)
    for _ in range(rounds):
        shuffler.shuffle(order)
        for name in order:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def convert(directory):
    """Saves a random torch iresnet18 and converts it; returns it and the file paths."""
    import torch

    from examples.iresnet_torch import TorchIResNet
    from examples.iresnet_torch import randomize

    torch_model = randomize(TorchIResNet(18), seed=0)
    checkpoint = os.path.join(directory, "backbone.pth")
    torch.save(torch_model.state_dict(), checkpoint)
    paths = {"keras": os.path.join(directory, "iresnet18.keras")}
    paths["onnx"] = os.path.join(directory, "iresnet18.onnx")
    if BACKEND == "tensorflow":
        paths["tflite"] = os.path.join(directory, "iresnet18.tflite")
    iresnet.convert_checkpoint(
        checkpoint, paths["keras"], depth=18, onnx=paths["onnx"], tflite=paths.get("tflite")
    )
    if BACKEND in ("tensorflow", "torch"):
        model = keras_prelu.saving.load_model(paths["keras"], compile=False)
        builtin = keras_prelu.migration.to_builtin_prelu(model)
        for key, exported in (("openvino", model), ("openvino_builtin", builtin)):
            paths[key] = os.path.join(directory, f"{key}.xml")
            exported.export(paths[key], format="openvino", verbose=False)
    return torch_model, paths


def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kiB on Linux


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="batch sizes")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per batch size")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per candidate")
    parser.add_argument("--threads", type=int, help="threads per framework (default: theirs)")
    parser.add_argument("--out", default=f"benchmarks/results/iresnet_{BACKEND}.json")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        if BACKEND == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)

    report = {
        "backend": BACKEND,
        "keras": keras.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_start": os.getloadavg()[0],
        "threads": args.threads or "framework defaults",
        "rounds": args.rounds,
        "seconds": {},
        "vs_torch_eager": {},
        "relative_error_vs_torch": {},
    }
    with tempfile.TemporaryDirectory() as directory:
        torch_model, paths = convert(directory)
        report["peak_rss_mib_after_conversion"] = _peak_rss_mib()
        report["openvino_prelu_ops"] = openvino_prelu_ops(paths)
        print(f"native PRelu ops in the OpenVINO graphs: {report['openvino_prelu_ops']}")
        for batch in args.batches:
            runs = candidates(torch_model, paths, batch, args.threads)
            expected = runs[BASELINE]()
            report["relative_error_vs_torch"][batch] = {
                name: iresnet.relative_error(run(), expected) for name, run in runs.items()
            }
            for run in runs.values():
                for _ in range(args.warmup):
                    run()
            seconds = measure(runs, args.rounds, seed=batch)
            report["seconds"][batch] = seconds
            report["vs_torch_eager"][batch] = {
                name: value / seconds[BASELINE] for name, value in seconds.items()
            }
            print(f"\nbatch {batch}, {BACKEND} backend: median ms per call, x torch eager")
            for name, value in sorted(seconds.items(), key=lambda item: item[1]):
                ratio = report["vs_torch_eager"][batch][name]
                print(f"  {name:28s} {value * 1e3:9.1f}  {ratio:5.2f}x", flush=True)
    report["load_average_end"] = os.getloadavg()[0]
    report["peak_rss_mib"] = _peak_rss_mib()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"\nwrote {args.out}")
    return report


if __name__ == "__main__":
    main()
