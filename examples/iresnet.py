"""
Title: ArcFace IResNet from a PyTorch checkpoint
Author: keras_prelu maintainers
Date created: 2026/11/30
Description: Convert an InsightFace IResNet `backbone.pth` to Keras, TFLite and ONNX,
    checked against PyTorch before anything is written.

InsightFace's face-recognition backbones (iresnet18/34/50/100/200) put a
per-channel `torch.nn.PReLU` in every residual block: in Keras, a
`keras_prelu.PReLU(layout="channelwise")`. The port's pitfalls and every check
are in docs/iresnet.md. Needs torch; `--onnx` needs the backend's export extra,
e.g. `pip install 'keras-prelu[export-tensorflow]'`:

    python -m examples.iresnet --torch-checkpoint backbone.pth --depth 18 \\
        --out model.keras [--tflite model.tflite] [--onnx model.onnx]
"""

import argparse
import contextlib
import importlib.util
import os
import tempfile

import keras
import numpy as np

import keras_prelu
from keras_prelu.migration import slopes_from_torch

# Blocks per stage of the upstream `iresnetNN` constructors.
DEPTHS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
    200: (6, 26, 60, 6),
}
STAGE_CHANNELS = (64, 128, 256, 512)
DOWNSAMPLING = 16  # each of the four stages halves the resolution
INPUT_SIZE = 112
NUM_FEATURES = 512
DATA_FORMAT = "channels_last"
# Largest distance accepted from torch's embeddings, relative to their norm.
TOLERANCE = 1e-4
# Ops that only a decomposed PReLU brings into this network.
DECOMPOSED_TFLITE_OPS = ("RELU", "SELECT", "SELECT_V2", "GREATER_EQUAL")


def _require(valid, requirement, **received):
    if not valid:
        ((name, value),) = received.items()
        raise ValueError(f"`{name}` must be {requirement}. Received: {name}={value!r}")


def stage_blocks(depth) -> tuple[int, ...]:
    """The blocks per stage of an upstream depth, or of 4 block counts such as (1, 1, 1, 1)."""
    if isinstance(depth, int) and depth in DEPTHS:
        return DEPTHS[depth]
    valid = isinstance(depth, (list, tuple)) and len(depth) == 4
    valid = valid and all(isinstance(n, int) and n >= 1 for n in depth)
    _require(valid, f"one of {sorted(DEPTHS)} or 4 positive block counts", depth=depth)
    return tuple(depth)


def check_sizes(input_size, num_features):
    valid = isinstance(input_size, int) and input_size > 0 and input_size % DOWNSAMPLING == 0
    _require(valid, f"a positive multiple of {DOWNSAMPLING}", input_size=input_size)
    valid = isinstance(num_features, int) and num_features > 0
    _require(valid, "a positive int", num_features=num_features)


def model_name(depth) -> str:
    blocks = stage_blocks(depth)
    named = [f"iresnet{n}" for n, known in DEPTHS.items() if known == blocks]
    return named[0] if named else "iresnet_" + "_".join(map(str, blocks))


"""
## Build the model

Layers are named after the torch modules with `_` for `.`: `layer1_0_conv2`
takes `layer1.0.conv2.weight`. Every layer fixes its data format, whatever
`keras.config.image_data_format()` says.
"""


# The whole architecture in one function, block by block as InsightFace
# writes it, so that it reads against the original.
def build_iresnet(
    depth=18,
    input_size=INPUT_SIZE,
    num_features=NUM_FEATURES,
    dropout=0.0,
    kernel_initializer=None,
    dtype=None,
):
    """InsightFace's IResNet, channels_last: images `(batch, size, size, 3)` to embeddings.

    `kernel_initializer=None` initialises like InsightFace; `"zeros"` builds
    fastest for weights that will be overwritten.
    """
    blocks = stage_blocks(depth)
    check_sizes(input_size, num_features)
    conv_init = kernel_initializer or keras.initializers.RandomNormal(stddev=0.1)
    fc_init = kernel_initializer or keras.initializers.VarianceScaling(
        1 / 3, distribution="uniform"
    )
    common = {"data_format": DATA_FORMAT, "dtype": dtype}

    def conv(x, name, filters, kernel, strides=1):
        name = name.replace(".", "_")
        pad = strides == 2 and kernel == 3
        if pad:  # torch pads every side; Keras's "same" would pad bottom/right only.
            x = keras.layers.ZeroPadding2D(1, name=name + "_pad", **common)(x)
        layer = keras.layers.Conv2D(
            filters,
            kernel,
            strides=strides,
            padding="valid" if pad else "same",
            use_bias=False,
            kernel_initializer=conv_init,
            name=name,
            **common,
        )
        return layer(x)

    def norm(x, name):
        # torch's BatchNorm defaults: eps=1e-5, momentum=0.1 (Keras's 0.9).
        layer = keras.layers.BatchNormalization(
            momentum=0.9, epsilon=1e-5, name=name.replace(".", "_"), dtype=dtype
        )
        return layer(x)

    def prelu(x, name):
        return keras_prelu.PReLU(layout="channelwise", name=name.replace(".", "_"), **common)(x)

    inputs = keras.Input((input_size, input_size, 3), name="images", dtype=dtype)
    x = prelu(norm(conv(inputs, "conv1", STAGE_CHANNELS[0], 3), "bn1"), "prelu")
    for stage, (count, width) in enumerate(zip(blocks, STAGE_CHANNELS, strict=True), start=1):
        for index in range(count):
            prefix, strides = f"layer{stage}.{index}", 2 if index == 0 else 1
            y = conv(norm(x, f"{prefix}.bn1"), f"{prefix}.conv1", width, 3)
            y = prelu(norm(y, f"{prefix}.bn2"), f"{prefix}.prelu")
            y = norm(conv(y, f"{prefix}.conv2", width, 3, strides), f"{prefix}.bn3")
            if index == 0:
                x = conv(x, f"{prefix}.downsample.0", width, 1, strides)
                x = norm(x, f"{prefix}.downsample.1")
            x = keras.layers.Add(dtype=dtype, name=prefix.replace(".", "_") + "_add")([y, x])
    x = keras.layers.Flatten(name="flatten", **common)(norm(x, "bn2"))
    if dropout:
        x = keras.layers.Dropout(dropout, dtype=dtype, name="dropout")(x)
    x = keras.layers.Dense(num_features, kernel_initializer=fc_init, dtype=dtype, name="fc")(x)
    return keras.Model(inputs, norm(x, "features"), name=model_name(blocks))


"""
## Convert, and check against PyTorch

The converted model must give the embeddings of the PyTorch original, run in
float64, on seeded random images.
"""


def _keras_weights(layer, weights, grid):
    """The weights of one Keras layer, from the torch module of the same name."""
    name = layer.name.replace("_", ".")
    keys = ("weight", "bias", "running_mean", "running_var")
    weight, bias, mean, var = (weights.get(f"{name}.{key}") for key in keys)
    if isinstance(layer, keras.layers.Conv2D):
        return [weight.transpose(2, 3, 1, 0)]  # OIHW -> HWIO
    if isinstance(layer, keras.layers.BatchNormalization):
        return [weight, bias, mean, var]
    if isinstance(layer, keras_prelu.PReLU):
        return [slopes_from_torch(weight, rank=4, data_format=DATA_FORMAT)]
    # fc: torch flattens (C, H, W), this model (H, W, C).
    kernel = weight.reshape(weight.shape[0], -1, grid, grid).transpose(2, 3, 1, 0)
    return [kernel.reshape(-1, kernel.shape[-1]), bias]


def relative_error(actual, expected) -> float:
    """Largest distance between matching rows, relative to the row's norm; inf for other shapes."""
    actual, expected = np.asarray(actual, "float64"), np.asarray(expected, "float64")
    if actual.shape != expected.shape:
        return float("inf")
    norms = np.maximum(np.linalg.norm(expected, axis=1), np.finfo("float64").tiny)
    return float(np.max(np.linalg.norm(actual - expected, axis=1) / norms))


def _verify(what, actual, expected) -> float:
    error = relative_error(actual, expected)
    if not error <= TOLERANCE:  # NaN fails too
        raise ValueError(
            f"{what} gives embeddings {error:.2e} away from the checkpoint's (relative to "
            f"their norm; tolerance {TOLERANCE:g}) on the check images. Nothing was written."
        )
    return error


def embeddings(model, images):
    """Inference outputs as NumPy; on JAX through `predict`, which compiles the model once."""
    if keras.backend.backend() == "jax":
        return model.predict(images, batch_size=len(images), verbose=0)
    return keras.ops.convert_to_numpy(model(images, training=False))


def _convert(state_dict, depth, input_size, num_features):
    from examples import iresnet_torch

    blocks = stage_blocks(depth)
    state_dict = iresnet_torch.unwrap_state_dict(state_dict)
    weights = iresnet_torch.check_state_dict(state_dict, blocks, input_size, num_features)
    model = build_iresnet(
        blocks, input_size, weights["fc.bias"].shape[0], kernel_initializer="zeros", dtype="float32"
    )
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(_keras_weights(layer, weights, input_size // DOWNSAMPLING))
    images = np.random.default_rng(0).uniform(-1, 1, (2, input_size, input_size, 3))
    images = images.astype("float32")
    expected = iresnet_torch.reference_embeddings(weights, images, blocks, input_size)
    _verify("The Keras model", embeddings(model, images), expected)
    return model, images, expected


def convert_state_dict(state_dict, depth=18, input_size=INPUT_SIZE, num_features=None):
    """The float32 Keras IResNet of a state_dict, checked against torch; `ValueError` if not."""
    return _convert(state_dict, depth, input_size, num_features)[0]


"""
## Deploy: TFLite and ONNX

Each PReLU layer must become one native op: TFLite `PRELU`, ONNX `PRelu`.
"""


def _check_tflite_backend():
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            "TFLite conversion needs the TensorFlow backend: run with "
            f"KERAS_BACKEND=tensorflow. Received: backend={backend!r}"
        )


def tflite_flatbuffer(model) -> bytes:
    """The `.tflite` flatbuffer of `model`, through a SavedModel (TensorFlow backend)."""
    _check_tflite_backend()
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as directory:
        model.export(directory, format="tf_saved_model", verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(directory).convert()


def run_tflite(flatbuffer, images):
    """`(outputs, op names or None)` of a TFLite flatbuffer on `images`."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own, deprecated since TF 2.20
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_content=flatbuffer)
    # No public API lists a flatbuffer's ops; without this one, ops go unchecked.
    details = getattr(interpreter, "_get_ops_details", None)
    ops = [op["op_name"] for op in details()] if details is not None else None
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), ops


def run_onnx(path, images):
    """The outputs of an ONNX file on `images`, with onnxruntime."""
    import onnxruntime

    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


"""
## Write the files, all or nothing

Every argument is checked before the conversion starts. Outputs go to scratch
folders beside their targets and are moved into place once every check has
passed, so a failed run leaves every file as it was.
"""


def _check_outputs(checkpoint, paths):
    if not paths["out"].endswith(".keras"):
        raise ValueError(
            f"The Keras model file must end in '.keras'. Received: out={paths['out']!r}"
        )
    if "tflite" in paths:
        _check_tflite_backend()
    if "onnx" in paths and not all(map(importlib.util.find_spec, ("onnx", "onnxruntime"))):
        raise ValueError(
            "ONNX export needs the `onnx` and `onnxruntime` packages: pip install "
            f"'keras-prelu[export-{keras.backend.backend()}]'. Received: onnx={paths['onnx']!r}"
        )
    absolute = [os.path.abspath(path) for path in paths.values()]
    if len(set(absolute)) < len(absolute) or os.path.abspath(checkpoint) in absolute:
        raise ValueError(
            "The checkpoint and the outputs must be different files. Received: "
            + ", ".join(f"{key}={value!r}" for key, value in paths.items())
        )
    for key, path in paths.items():
        directory = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise ValueError(f"'{path}' is a folder. Received: {key}={path!r}")
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            raise ValueError(f"Cannot write to the folder '{directory}'. Received: {key}={path!r}")


def _scratch_path(stack, path):
    """`path`'s name in a new folder beside it, removed when `stack` closes."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(stack.enter_context(tempfile.TemporaryDirectory(dir=directory)), name)


def convert_checkpoint(
    torch_checkpoint,
    out,
    depth=18,
    input_size=INPUT_SIZE,
    num_features=None,
    tflite=None,
    onnx=None,
) -> dict:
    """Converts a `backbone.pth` to `.keras`, and optionally `.tflite` and `.onnx`.

    Returns, for each written path, the relative error of its embeddings
    against torch's. Raises `ValueError` (`FileNotFoundError` for a missing
    checkpoint) before anything is written.
    """
    from examples import iresnet_torch

    stage_blocks(depth)
    check_sizes(input_size, NUM_FEATURES if num_features is None else num_features)
    paths = {"out": out, "tflite": tflite, "onnx": onnx}
    paths = {key: os.fspath(path) for key, path in paths.items() if path is not None}
    _check_outputs(torch_checkpoint, paths)
    state = iresnet_torch.load_torch_checkpoint(torch_checkpoint)
    model, images, expected = _convert(state, depth, input_size, num_features)
    prelus = len(keras_prelu.callbacks.prelu_layers(model))
    errors = {}
    with contextlib.ExitStack() as stack:
        temporaries = {key: _scratch_path(stack, path) for key, path in paths.items()}
        model.save(temporaries["out"])
        reloaded = keras_prelu.saving.load_model(temporaries["out"], compile=False)
        outputs = embeddings(reloaded, images)
        errors[paths["out"]] = _verify("The saved .keras model", outputs, expected)
        if "tflite" in paths:
            flatbuffer = tflite_flatbuffer(model)
            with open(temporaries["tflite"], "wb") as handle:
                handle.write(flatbuffer)
            outputs, ops = run_tflite(flatbuffer, images)
            if ops is not None and (
                ops.count("PRELU") != prelus or {*DECOMPOSED_TFLITE_OPS} & {*ops}
            ):
                raise ValueError(
                    f"The TFLite model has {ops.count('PRELU')} native PRELU ops for {prelus} "
                    f"PReLU layers, and ops {sorted(set(ops))}. Nothing was written."
                )
            errors[paths["tflite"]] = _verify("The TFLite model", outputs, expected)
        if "onnx" in paths:
            # Keras refuses to export a model only run through predict (as
            # `embeddings` does on JAX) without an explicit signature.
            signature = [keras.InputSpec(shape=(None, *images.shape[1:]), dtype="float32")]
            keras_prelu.export.export_onnx(
                model, temporaries["onnx"], strict=True, input_signature=signature
            )
            outputs = run_onnx(temporaries["onnx"], images)
            errors[paths["onnx"]] = _verify("The ONNX model", outputs, expected)
        for key, temporary in temporaries.items():
            os.replace(temporary, paths[key])
    return errors


"""
## Command line
"""


def _depth_argument(text):
    try:
        return stage_blocks([int(n) for n in text.split(",")] if "," in text else int(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected one of {sorted(DEPTHS)} or 4 comma-separated block counts, got {text!r}"
        ) from error


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m examples.iresnet",
        description="Convert an InsightFace ArcFace IResNet checkpoint (PyTorch state_dict) "
        "to Keras, and optionally to TFLite and ONNX with native PReLU ops.",
    )
    parser.add_argument("--torch-checkpoint", required=True, help="the backbone.pth state_dict")
    depths = ", ".join(map(str, DEPTHS)) + ", or blocks per stage such as 1,1,1,1"
    parser.add_argument("--depth", type=_depth_argument, required=True, help=depths)
    parser.add_argument("--out", required=True, help="the .keras file to write")
    parser.add_argument("--tflite", help="also write a TFLite model (KERAS_BACKEND=tensorflow)")
    parser.add_argument("--onnx", help="also write an ONNX model")
    parser.add_argument(
        "--input-size", type=int, default=INPUT_SIZE, help="a multiple of 16 (default: 112)"
    )
    parser.add_argument("--num-features", type=int, help="default: read from the checkpoint")
    try:
        errors = convert_checkpoint(**vars(parser.parse_args(argv)))
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    for path, error in errors.items():
        print(f"wrote {path}: embeddings within {error:.1e} of the checkpoint's (relative)")
    return errors


if __name__ == "__main__":
    main()
