"""ArcFace IResNet (InsightFace) in Keras 3, converted from a PyTorch checkpoint.

InsightFace's face-recognition backbones `iresnet18/34/50/100/200`
(`recognition/arcface_torch/backbones/iresnet.py` of deepinsight/insightface)
put a per-channel `torch.nn.PReLU` in every residual block. This module
builds the same network in Keras, channels_last, with
`keras_prelu.PReLU(layout="channelwise")`, and loads an InsightFace
`state_dict` into it, so that the model runs on TensorFlow, JAX and PyTorch
and deploys with native PReLU ops (TFLite `PRELU`, ONNX `PRelu`).

A port by hand goes wrong in five places, each handled here:

- stride-2 3x3 convolutions: torch pads one pixel on every side, Keras
  `padding="same"` pads only after; an explicit `ZeroPadding2D(1)` before a
  `"valid"` convolution pads like torch;
- BatchNormalization epsilon: torch's 1e-5, not Keras's 1e-3;
- the flatten before `fc`: torch flattens (C, H, W), a channels_last model
  (H, W, C), so the rows of `fc.weight` are permuted once at conversion;
- the `features` BatchNorm1d after `fc`, whose scale InsightFace keeps at 1
  (frozen): its stored values are loaded as they are;
- dropout before `fc`: inactive at inference (PyTorch `eval()`), so the
  converted model has none unless `build_iresnet(dropout=...)` asks for it.

The converter reads NumPy arrays; torch is only needed to read a `.pth`
file. Before anything is written, the checkpoint's keys, shapes and values
are checked, and each output (the `.keras` file reloaded, the TFLite and ONNX
models) must reproduce, within `TOLERANCE`, the embeddings of a float64
NumPy re-implementation of the PyTorch forward pass (channels_first, torch's
padding and flatten order) on seeded random images. Outputs are written to
temporary files and renamed into place only when every check has passed.

Run (`--help` lists the options):

    python -m examples.iresnet --torch-checkpoint backbone.pth --depth 18 \\
        --out model.keras [--tflite model.tflite] [--onnx model.onnx]

`--tflite` needs `KERAS_BACKEND=tensorflow`; `--onnx` works on every backend.
"""

import argparse
import importlib
import os
import re
import tempfile
from collections.abc import Mapping

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
STEM_CHANNELS = 64
STAGE_CHANNELS = (64, 128, 256, 512)
# Every stage halves the resolution, so the input side must divide by 16.
DOWNSAMPLING = 2 ** len(STAGE_CHANNELS)
INPUT_SIZE = 112
NUM_FEATURES = 512
# torch.nn.BatchNorm's defaults, which InsightFace keeps.
BATCH_NORM_EPSILON = 1e-5
BATCH_NORM_MOMENTUM = 0.9  # Keras's name for torch's momentum=0.1
DATA_FORMAT = "channels_last"
# Largest relative distance (to the embedding's norm) accepted between an
# output and the float64 reference of the checkpoint.
TOLERANCE = 1e-4
CHECK_IMAGES = 2
# Containers that training scripts wrap a state_dict in, and the key prefixes
# of torch.nn.DataParallel / DistributedDataParallel and torch.compile.
WRAPPER_KEYS = ("state_dict", "model", "state_dict_backbone")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Ops that only a decomposed PReLU brings into this network (BatchNorm may
# bring Neg, so it is not among them).
DECOMPOSED_ONNX_OPS = ("Where", "GreaterOrEqual", "Relu")
DECOMPOSED_TFLITE_OPS = ("RELU", "SELECT", "SELECT_V2", "GREATER_EQUAL")


# Architecture -----------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def stage_blocks(depth) -> tuple[int, ...]:
    """Returns the residual blocks per stage for `depth`.

    Args:
        depth: int or sequence of 4 ints. One of the upstream depths
            (18, 34, 50, 100, 200), or the number of blocks of each of the
            four stages, e.g. `(1, 1, 1, 1)` for a small test network.

    Returns:
        A tuple of 4 positive ints.
    """
    if _is_int(depth) and int(depth) in DEPTHS:
        return DEPTHS[int(depth)]
    if isinstance(depth, (list, tuple)) and len(depth) == len(STAGE_CHANNELS):
        if all(_is_int(count) and count >= 1 for count in depth):
            return tuple(int(count) for count in depth)
    raise ValueError(
        f"`depth` must be one of {sorted(DEPTHS)} or a list of {len(STAGE_CHANNELS)} "
        f"positive block counts, one per stage. Received: depth={depth!r}"
    )


def check_input_size(input_size) -> int:
    """Returns `input_size` if it is a positive multiple of 16, else raises."""
    if not _is_int(input_size) or input_size < DOWNSAMPLING or input_size % DOWNSAMPLING:
        raise ValueError(
            f"`input_size` must be a positive multiple of {DOWNSAMPLING}: the four "
            "stride-2 stages halve it four times before `fc`. "
            f"Received: input_size={input_size!r}"
        )
    return int(input_size)


def _check_num_features(num_features) -> int:
    if not _is_int(num_features) or num_features < 1:
        raise ValueError(
            f"`num_features` must be a positive int. Received: num_features={num_features!r}"
        )
    return int(num_features)


def model_name(depth) -> str:
    """`"iresnet18"` for an upstream depth, else `"iresnet_1_1_1_1"`."""
    blocks = stage_blocks(depth)
    for known, known_blocks in DEPTHS.items():
        if blocks == known_blocks:
            return f"iresnet{known}"
    return "iresnet_" + "_".join(str(n) for n in blocks)


def _modules(blocks, input_size, num_features):
    """The upstream modules with weights: `(torch name, kind, shapes)`, in torch's order."""
    grid = input_size // DOWNSAMPLING

    def conv(out_channels, in_channels, kernel):
        return {"weight": (out_channels, in_channels, kernel, kernel)}

    def norm(channels):
        return {name: (channels,) for name in ("weight", "bias", "running_mean", "running_var")}

    modules = [
        ("conv1", "conv", conv(STEM_CHANNELS, 3, 3)),
        ("bn1", "norm", norm(STEM_CHANNELS)),
        ("prelu", "prelu", {"weight": (STEM_CHANNELS,)}),
    ]
    channels = STEM_CHANNELS
    for stage, (count, width) in enumerate(zip(blocks, STAGE_CHANNELS, strict=True), start=1):
        for index in range(count):
            prefix = f"layer{stage}.{index}"
            modules += [
                (f"{prefix}.bn1", "norm", norm(channels)),
                (f"{prefix}.conv1", "conv", conv(width, channels, 3)),
                (f"{prefix}.bn2", "norm", norm(width)),
                (f"{prefix}.prelu", "prelu", {"weight": (width,)}),
                (f"{prefix}.conv2", "conv", conv(width, width, 3)),
                (f"{prefix}.bn3", "norm", norm(width)),
            ]
            if index == 0:  # every stage starts with a stride-2 block
                modules += [
                    (f"{prefix}.downsample.0", "conv", conv(width, channels, 1)),
                    (f"{prefix}.downsample.1", "norm", norm(width)),
                ]
            channels = width
    modules += [
        ("bn2", "norm", norm(channels)),
        (
            "fc",
            "dense",
            {"weight": (num_features, channels * grid * grid), "bias": (num_features,)},
        ),
        ("features", "norm", norm(num_features)),
    ]
    return modules


def _keras_name(torch_name: str) -> str:
    return torch_name.replace(".", "_")


def state_dict_shapes(depth=18, input_size=INPUT_SIZE, num_features=NUM_FEATURES) -> dict:
    """Returns the shapes of an InsightFace IResNet `state_dict`, by key.

    The `num_batches_tracked` counters of the BatchNorm layers are left out:
    the converter accepts and ignores them.

    Args:
        depth: int or sequence of 4 ints. See `stage_blocks`. Defaults to 18.
        input_size: int. Height and width of the input images, a multiple of
            16. Defaults to 112.
        num_features: int. Size of the embedding. Defaults to 512.

    Returns:
        A dict from parameter name to shape tuple, in torch's order.
    """
    blocks = stage_blocks(depth)
    input_size = check_input_size(input_size)
    num_features = _check_num_features(num_features)
    return {
        f"{name}.{key}": shape
        for name, _, shapes in _modules(blocks, input_size, num_features)
        for key, shape in shapes.items()
    }


def build_iresnet(
    depth=18,
    input_size=INPUT_SIZE,
    num_features=NUM_FEATURES,
    dropout=0.0,
    kernel_initializer=None,
    dtype=None,
):
    """Builds an InsightFace IResNet as a Keras functional model.

    The network of `iresnet.py` in InsightFace's `arcface_torch`, channels_last:
    a 3x3 stem with BatchNorm and PReLU, four stages of residual blocks
    (BN, 3x3 conv, BN, PReLU, 3x3 conv with the stage's stride, BN, plus a
    1x1 stride-2 shortcut in each stage's first block), then BN, flatten,
    `fc` and a BatchNorm on the embedding. Every PReLU is a
    `keras_prelu.PReLU(layout="channelwise")`. Layers are named after the
    torch modules with `_` for `.` (`layer1.0.conv2` is `layer1_0_conv2`),
    and the data format is fixed, whatever `keras.config.image_data_format()`
    says.

    Args:
        depth: int or sequence of 4 ints. 18, 34, 50, 100 or 200, or the
            blocks of each stage. Defaults to 18.
        input_size: int. Height and width of the input, a multiple of 16
            (InsightFace's `fc` expects 7x7 features, i.e. 112). Defaults to
            112.
        num_features: int. Size of the embedding. Defaults to 512.
        dropout: float. Dropout rate before `fc`, active in training only.
            Defaults to 0.
        kernel_initializer: Initializer of the convolution and `fc` kernels.
            Defaults to `None`: InsightFace's, a normal distribution of
            standard deviation 0.1 for convolutions, and torch's default for
            `fc` (uniform within 1/sqrt(fan_in)); biases start at zero.
            `"zeros"` builds fastest, for weights that will be overwritten.
        dtype: Dtype or dtype policy of every layer, e.g. `"float32"`.
            Defaults to `None` (the global policy).

    Returns:
        A `keras.Model` from `(batch, input_size, input_size, 3)` images to
        `(batch, num_features)` embeddings.

    Example:

    >>> model = build_iresnet(18)
    >>> model.output_shape
    (None, 512)
    """
    blocks = stage_blocks(depth)
    input_size = check_input_size(input_size)
    num_features = _check_num_features(num_features)
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be a rate in [0, 1). Received: dropout={dropout!r}")
    conv_initializer = kernel_initializer or keras.initializers.RandomNormal(stddev=0.1)
    fc_initializer = kernel_initializer or keras.initializers.VarianceScaling(
        1 / 3, mode="fan_in", distribution="uniform"
    )

    def conv(name, filters, kernel, strides=1):
        # torch pads a stride-2 3x3 conv by one pixel on every side; "same"
        # would pad only the bottom and right.
        padding = "same" if strides == 1 or kernel == 1 else "valid"
        layer = keras.layers.Conv2D(
            filters,
            kernel,
            strides=strides,
            padding=padding,
            use_bias=False,
            kernel_initializer=conv_initializer,
            data_format=DATA_FORMAT,
            dtype=dtype,
            name=_keras_name(name),
        )
        if padding == "valid" and kernel > 1:
            pad = keras.layers.ZeroPadding2D(
                kernel // 2, data_format=DATA_FORMAT, dtype=dtype, name=_keras_name(name) + "_pad"
            )
            return lambda x: layer(pad(x))
        return layer

    def norm(name):
        return keras.layers.BatchNormalization(
            axis=-1,
            epsilon=BATCH_NORM_EPSILON,
            momentum=BATCH_NORM_MOMENTUM,
            dtype=dtype,
            name=_keras_name(name),
        )

    def prelu(name):
        return keras_prelu.PReLU(
            layout="channelwise", data_format=DATA_FORMAT, dtype=dtype, name=_keras_name(name)
        )

    inputs = keras.Input((input_size, input_size, 3), name="images", dtype=dtype)
    x = conv("conv1", STEM_CHANNELS, 3)(inputs)
    x = norm("bn1")(x)
    x = prelu("prelu")(x)
    for stage, (count, width) in enumerate(zip(blocks, STAGE_CHANNELS, strict=True), start=1):
        for index in range(count):
            prefix = f"layer{stage}.{index}"
            strides = 2 if index == 0 else 1
            y = norm(f"{prefix}.bn1")(x)
            y = conv(f"{prefix}.conv1", width, 3)(y)
            y = norm(f"{prefix}.bn2")(y)
            y = prelu(f"{prefix}.prelu")(y)
            y = conv(f"{prefix}.conv2", width, 3, strides)(y)
            y = norm(f"{prefix}.bn3")(y)
            if index == 0:
                x = conv(f"{prefix}.downsample.0", width, 1, strides)(x)
                x = norm(f"{prefix}.downsample.1")(x)
            x = keras.layers.Add(dtype=dtype, name=_keras_name(prefix) + "_add")([y, x])
    x = norm("bn2")(x)
    x = keras.layers.Flatten(data_format=DATA_FORMAT, dtype=dtype, name="flatten")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, dtype=dtype, name="dropout")(x)
    fc = keras.layers.Dense(num_features, kernel_initializer=fc_initializer, dtype=dtype, name="fc")
    outputs = norm("features")(fc(x))
    return keras.Model(inputs, outputs, name=model_name(blocks))


# Checkpoints --------------------------------------------------------------------------


def load_torch_checkpoint(path) -> dict:
    """Reads an InsightFace `backbone.pth` into a dict of NumPy arrays.

    Uses `torch.load(path, map_location="cpu", weights_only=True)`, which
    refuses a whole pickled model (loading one would run arbitrary code:
    save `model.state_dict()` instead). Common wrappers are removed, see
    `unwrap_state_dict`.

    Args:
        path: str or `pathlib.Path`. The checkpoint file.

    Returns:
        A dict from parameter name to NumPy array.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if torch cannot read it as weights, or it holds no
            state_dict.
    """
    import pickle

    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"Reading a PyTorch checkpoint needs the `torch` package: {error}"
        ) from error

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at '{path}'. Received: path={path!r}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        # torch's first line says why; it may carry terminal colour codes.
        reason = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
        reason = reason.splitlines()[0] if reason else type(error).__name__
        raise ValueError(
            f"'{path}' is not a state_dict that torch.load(weights_only=True) can read "
            f"({reason}). A whole pickled model is refused: save `model.state_dict()`. "
            f"Received: path={path!r}"
        ) from error
    return unwrap_state_dict(loaded, source=f"'{path}'")


def unwrap_state_dict(checkpoint, source="The checkpoint") -> dict:
    """Returns the state_dict inside `checkpoint`, as NumPy arrays.

    Accepted: a state_dict (a mapping of names to tensors or arrays); a
    mapping that holds one under exactly one of the keys `"state_dict"`,
    `"model"` or `"state_dict_backbone"` (InsightFace's training checkpoints)
    and has no parameter keys of its own; keys that all start with
    `"module."` (DataParallel, DistributedDataParallel) or `"_orig_mod."`
    (`torch.compile`), which is removed. Keys are only renamed, never
    guessed: whatever remains must match the architecture exactly.

    Args:
        checkpoint: What `torch.load` returned, or a dict of arrays.
        source: str. How error messages name the checkpoint.

    Returns:
        A dict from parameter name to NumPy array.

    Raises:
        ValueError: if `checkpoint` is not a mapping of names to arrays.
    """
    if not isinstance(checkpoint, Mapping):
        hint = " Pass `model.state_dict()`." if hasattr(checkpoint, "state_dict") else ""
        raise ValueError(
            f"{source} is not a state_dict (a dict of parameter names to tensors).{hint} "
            f"Received: an object of type {type(checkpoint).__name__}"
        )
    state = checkpoint
    wrappers = [key for key in WRAPPER_KEYS if isinstance(state.get(key), Mapping)]
    if len(wrappers) == 1 and not any(_is_array(value) for value in state.values()):
        state = state[wrappers[0]]
    bad_keys = [key for key in state if not isinstance(key, str)]
    if bad_keys:
        raise ValueError(
            f"{source} is not a state_dict: its keys must be parameter names. "
            f"Received: keys {_some(bad_keys)}"
        )
    changed = True
    while changed and state:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(key.startswith(prefix) for key in state):
                state = {key[len(prefix) :]: value for key, value in state.items()}
                changed = True
    arrays, not_arrays = {}, []
    for key, value in state.items():
        array = _to_numpy(value)
        if array is None:
            not_arrays.append(key)
        else:
            arrays[key] = array
    if not_arrays:
        raise ValueError(
            f"{source} is not a state_dict: {len(not_arrays)} entries are not tensors "
            f"or numeric arrays: {_some(not_arrays)}. Received: keys {_some(list(state))}"
        )
    return arrays


def _is_array(value) -> bool:
    return hasattr(value, "detach") or isinstance(value, np.ndarray)


def _to_numpy(value):
    """A NumPy array for a tensor or array, or None for anything else."""
    if hasattr(value, "detach"):  # a torch tensor, read without importing torch
        value = value.detach().cpu()
        if getattr(value, "is_floating_point", lambda: False)() and value.element_size() == 2:
            value = value.float()  # bfloat16, which NumPy lacks; float16 too, exactly
        value = value.numpy()
    if not isinstance(value, (np.ndarray, np.generic, int, float)) or isinstance(value, bool):
        return None
    array = np.asarray(value)
    return array if array.dtype.kind in "biuf" else None


def _some(items, limit=4) -> str:
    """The first few `items`, quoted, and how many more there are."""
    shown = ", ".join(f"'{item}'" for item in list(items)[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _detected_blocks(keys):
    counts = []
    for stage in range(1, len(STAGE_CHANNELS) + 1):
        pattern = re.compile(rf"layer{stage}\.(\d+)\.")
        indices = {int(m.group(1)) for key in keys if (m := pattern.match(key))}
        counts.append(max(indices) + 1 if indices else 0)
    return tuple(counts)


def check_state_dict(state_dict, depth=18, input_size=INPUT_SIZE, num_features=None) -> dict:
    """Checks a state_dict against the architecture; returns its float32 arrays.

    Every key must be there with its exact shape, and nothing else
    (`num_batches_tracked` counters excepted); values must be finite floats
    and variances non-negative. All problems are reported at once.

    Args:
        state_dict: dict. Parameter names to NumPy arrays, e.g. from
            `unwrap_state_dict`.
        depth: int or sequence of 4 ints. See `stage_blocks`. Defaults to 18.
        input_size: int. Input height and width. Defaults to 112.
        num_features: int or None. Embedding size; `None` reads it from
            `fc.weight`. Defaults to `None`.

    Returns:
        A dict from parameter name to float32 array, without the counters.

    Raises:
        ValueError: naming the missing, unexpected and misshapen keys (a
            few of each, with counts) and what the keys suggest instead.
    """
    blocks = stage_blocks(depth)
    input_size = check_input_size(input_size)
    if num_features is None:
        fc = state_dict.get("fc.weight")
        num_features = fc.shape[0] if fc is not None and fc.ndim == 2 else NUM_FEATURES
    num_features = _check_num_features(num_features)
    expected = state_dict_shapes(blocks, input_size, num_features)
    counters = {
        f"{name}.num_batches_tracked"
        for name, kind, _ in _modules(blocks, input_size, num_features)
        if kind == "norm"
    }
    present = [key for key in expected if key in state_dict]
    misshapen = [key for key in present if tuple(state_dict[key].shape) != expected[key]]
    not_float = [key for key in present if state_dict[key].dtype.kind != "f"]
    floats = [key for key in present if key not in not_float]
    findings = {
        "missing": [key for key in expected if key not in state_dict],
        "unexpected": [key for key in state_dict if key not in expected and key not in counters],
        "with the wrong shape": [
            f"{key} {tuple(state_dict[key].shape)} (expected {expected[key]})" for key in misshapen
        ],
        "not floating point": not_float,
        "with NaN or infinite values": [
            key for key in floats if not np.all(np.isfinite(state_dict[key]))
        ],
        "with negative variances": [
            key for key in floats if key.endswith(".running_var") and np.any(state_dict[key] < 0)
        ],
    }
    problems = [
        f"{len(keys)} key{'s' if len(keys) > 1 else ''} {what}: {_some(keys)}"
        for what, keys in findings.items()
        if keys
    ]
    if problems:
        hints = []
        found = _detected_blocks(state_dict)
        if all(found) and found != blocks:
            named = [depth for depth, known in DEPTHS.items() if known == found]
            hints.append(
                f"its blocks per stage are {list(found)}: "
                f"try depth={named[0] if named else list(found)}"
            )
        fc = state_dict.get("fc.weight")
        if fc is not None and fc.ndim == 2 and fc.shape[1] % STAGE_CHANNELS[-1] == 0:
            side = int(round((fc.shape[1] // STAGE_CHANNELS[-1]) ** 0.5))
            if (
                side * side * STAGE_CHANNELS[-1] == fc.shape[1]
                and side * DOWNSAMPLING != input_size
            ):
                hints.append(
                    f"its fc.weight takes {fc.shape[1]} = {STAGE_CHANNELS[-1]}*{side}*{side} "
                    f"inputs, which fits input_size={side * DOWNSAMPLING}"
                )
        raise ValueError(
            f"The state_dict does not fit {model_name(blocks)} (blocks per stage "
            f"{list(blocks)}, input_size={input_size}, num_features={num_features}): "
            + "; ".join(problems)
            + "."
            + (" Note: " + "; ".join(hints) + "." if hints else "")
            + f" Received: {len(state_dict)} keys"
        )
    return {key: state_dict[key].astype("float32") for key in expected}


# Conversion ---------------------------------------------------------------------------


def _keras_weights(kind, arrays, input_size):
    """The Keras weights of one torch module, from its NumPy arrays."""
    if kind == "conv":
        return [np.transpose(arrays["weight"], (2, 3, 1, 0))]  # OIHW -> HWIO
    if kind == "norm":
        return [arrays[k] for k in ("weight", "bias", "running_mean", "running_var")]
    if kind == "prelu":
        return [slopes_from_torch(arrays["weight"], rank=4, data_format=DATA_FORMAT)]
    # dense: torch flattened (C, H, W), this model flattens (H, W, C).
    grid = input_size // DOWNSAMPLING
    weight = arrays["weight"]
    weight = weight.reshape(weight.shape[0], -1, grid, grid).transpose(2, 3, 1, 0)
    return [weight.reshape(-1, weight.shape[-1]), arrays["bias"]]


def check_images(input_size=INPUT_SIZE, count=CHECK_IMAGES):
    """The seeded images the converter checks outputs on: NHWC float32 in [-1, 1]."""
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (count, input_size, input_size, 3)).astype("float32")


def relative_error(actual, expected) -> float:
    """Largest distance between matching rows, relative to the row's norm; inf for other shapes."""
    actual = np.asarray(actual, "float64")
    expected = np.asarray(expected, "float64")
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


def reference_embeddings(weights, images, depth=18):
    """The PyTorch eval-mode forward pass in float64 NumPy, channels_first.

    An independent oracle for the converted models: it uses the torch layout
    and parameters as stored (NCHW activations, OIHW kernels, symmetric
    padding, (C, H, W) flatten), none of the conversions above.

    Args:
        weights: dict. Parameter names to arrays, as `check_state_dict`
            returns.
        images: NumPy array. `(batch, size, size, 3)` channels_last images.
        depth: int or sequence of 4 ints. See `stage_blocks`. Defaults to 18.

    Returns:
        A float64 array of shape `(batch, num_features)`.
    """
    blocks = stage_blocks(depth)

    def conv(x, name, stride=1):
        kernel = weights[f"{name}.weight"].astype("float64")
        size = kernel.shape[-1]
        pad = size // 2
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        height = (x.shape[2] - size) // stride + 1
        width = (x.shape[3] - size) // stride + 1
        patches = np.stack(
            [
                x[:, :, i : i + stride * height : stride, j : j + stride * width : stride]
                for i in range(size)
                for j in range(size)
            ],
            axis=2,
        )  # (N, C, size*size, H, W)
        kernel = kernel.reshape(kernel.shape[0], kernel.shape[1], -1)
        return np.einsum("nckhw,ock->nohw", patches, kernel, optimize=True)

    def norm(x, name):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean, var, scale, shift = (
            weights[f"{name}.{key}"].astype("float64").reshape(shape)
            for key in ("running_mean", "running_var", "weight", "bias")
        )
        return (x - mean) / np.sqrt(var + BATCH_NORM_EPSILON) * scale + shift

    def prelu(x, name):
        slope = weights[f"{name}.weight"].astype("float64").reshape(1, -1, 1, 1)
        return np.where(x >= 0, x, slope * x)

    x = np.transpose(np.asarray(images, "float64"), (0, 3, 1, 2))
    x = prelu(norm(conv(x, "conv1"), "bn1"), "prelu")
    for stage, count in enumerate(blocks, start=1):
        for index in range(count):
            prefix = f"layer{stage}.{index}"
            stride = 2 if index == 0 else 1
            y = conv(norm(x, f"{prefix}.bn1"), f"{prefix}.conv1")
            y = prelu(norm(y, f"{prefix}.bn2"), f"{prefix}.prelu")
            y = norm(conv(y, f"{prefix}.conv2", stride), f"{prefix}.bn3")
            if index == 0:
                x = norm(conv(x, f"{prefix}.downsample.0", stride), f"{prefix}.downsample.1")
            x = y + x
    x = norm(x, "bn2").reshape(len(x), -1)
    x = x @ weights["fc.weight"].astype("float64").T + weights["fc.bias"].astype("float64")
    return norm(x, "features")


def _convert(state_dict, depth, input_size, num_features):
    blocks = stage_blocks(depth)
    input_size = check_input_size(input_size)
    weights = check_state_dict(
        unwrap_state_dict(state_dict), blocks, input_size, num_features=num_features
    )
    num_features = weights["fc.bias"].shape[0]
    model = build_iresnet(
        blocks, input_size, num_features, kernel_initializer="zeros", dtype="float32"
    )
    for name, kind, shapes in _modules(blocks, input_size, num_features):
        arrays = {key: weights[f"{name}.{key}"] for key in shapes}
        model.get_layer(_keras_name(name)).set_weights(_keras_weights(kind, arrays, input_size))
    images = check_images(input_size)
    expected = reference_embeddings(weights, images, blocks)
    _verify("The Keras model", embeddings(model, images), expected)
    return model, images, expected


def embeddings(model, images):
    """Returns `model`'s inference-mode outputs for `images` as a NumPy array.

    A plain call, except on JAX, which runs an uncompiled call op by op and
    compiles each op on its own: there `predict` compiles the model once,
    which is much faster for a network this deep.
    """
    if keras.backend.backend() == "jax":
        return model.predict(images, batch_size=len(images), verbose=0)
    return keras.ops.convert_to_numpy(model(images, training=False))


def convert_state_dict(state_dict, depth=18, input_size=INPUT_SIZE, num_features=None):
    """Builds the Keras IResNet holding the weights of an InsightFace state_dict.

    The state_dict is checked first (`check_state_dict`); then the converted
    model's embeddings of `check_images` must be within `TOLERANCE` of
    `reference_embeddings`, the PyTorch computation redone in float64.

    Args:
        state_dict: A state_dict: parameter names to torch tensors or NumPy
            arrays, optionally wrapped (see `unwrap_state_dict`).
        depth: int or sequence of 4 ints. 18, 34, 50, 100, 200, or the
            blocks per stage. Defaults to 18.
        input_size: int. Input height and width, a multiple of 16; upstream
            checkpoints need 112. Defaults to 112.
        num_features: int or None. Embedding size; `None` reads it from
            `fc.weight`. Defaults to `None`.

    Returns:
        A float32 `keras.Model` from channels_last images to embeddings.

    Raises:
        ValueError: for a checkpoint that does not fit, or a conversion that
            does not reproduce it.

    Example:

    >>> state = load_torch_checkpoint("backbone.pth")
    >>> model = convert_state_dict(state, depth=50)
    """
    return _convert(state_dict, depth, input_size, num_features)[0]


# Deployment --------------------------------------------------------------------------


def prelu_count(model) -> int:
    """The number of `keras_prelu.PReLU` layers in `model`."""
    return sum(isinstance(layer, keras_prelu.PReLU) for layer in model.layers)


def tflite_flatbuffer(model) -> bytes:
    """Converts `model` to TFLite (TensorFlow backend only), through a SavedModel.

    Args:
        model: A built Keras model.

    Returns:
        The `.tflite` flatbuffer, whose PReLUs are native `PRELU` ops.

    Raises:
        ValueError: on a backend other than TensorFlow.
    """
    _check_tflite_backend()
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as directory:
        saved_model = os.path.join(directory, "saved_model")
        model.export(saved_model, format="tf_saved_model", verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(saved_model).convert()


def run_tflite(flatbuffer, images):
    """Returns `(outputs, op names or None)` of a TFLite flatbuffer on `images`."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    # No public API lists a flatbuffer's ops; without this one, ops go unchecked.
    details = getattr(interpreter, "_get_ops_details", None)
    ops = [op["op_name"] for op in details()] if details is not None else None
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), ops


def export_onnx(model, filepath) -> None:
    """Writes `model` to one self-contained ONNX file with native `PRelu` nodes.

    `keras_prelu.export.export_onnx` in a scratch folder, then saved again as
    a single file: some exporters (jax2onnx) put the weights in a side file
    named after the model, which a rename would cut off.

    Args:
        model: A Keras model with one input.
        filepath: str or `pathlib.Path`. Where to write the `.onnx` file.
    """
    import onnx

    # An explicit signature: Keras refuses to export a model that was only
    # run through predict (as `embeddings` does on JAX) without one.
    signature = [
        keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="float32", name="images")
    ]
    with tempfile.TemporaryDirectory() as directory:
        exported = os.path.join(directory, "model.onnx")
        keras_prelu.export.export_onnx(model, exported, input_signature=signature)
        onnx_model = onnx.load(exported)  # with any side file's weights
    onnx.save(onnx_model, os.fspath(filepath))


def run_onnx(path, images):
    """Returns `(outputs, op types)` of an ONNX file on `images`, with onnxruntime."""
    import onnx
    import onnxruntime

    ops = [node.op_type for node in onnx.load(os.fspath(path)).graph.node]
    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: images})[0]
    return outputs, ops


def _check_native_ops(what, ops, native, decomposed, count):
    if ops is None:
        print(f"{what}: this TensorFlow cannot list TFLite ops; op types not checked.")
        return
    found = ops.count(native)
    leftovers = sorted(set(decomposed) & set(ops))
    if found != count or leftovers:
        raise ValueError(
            f"{what} has {found} native {native} ops for {count} PReLU layers"
            + (f" and decomposed-PReLU ops {leftovers}" if leftovers else "")
            + ". Nothing was written."
        )


def _check_tflite_backend():
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            "TFLite conversion needs the TensorFlow backend: run with "
            f"KERAS_BACKEND=tensorflow. Received: backend={backend!r}"
        )


def _temporary_path(path):
    directory, name = os.path.split(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(
        prefix=f".{name}.", suffix=os.path.splitext(name)[1] or ".tmp", dir=directory
    )
    os.close(handle)
    # mkstemp makes the file private; the output gets the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    return temporary


def _check_outputs(out, tflite, onnx, checkpoint):
    out, tflite, onnx = (None if path is None else os.fspath(path) for path in (out, tflite, onnx))
    if not out.endswith(".keras"):
        raise ValueError(f"The Keras model file must end in '.keras'. Received: out={out!r}")
    if tflite is not None:
        _check_tflite_backend()
    if onnx is not None:
        try:
            for package in ("onnx", "onnxruntime"):
                importlib.import_module(package)
        except ImportError as error:
            raise ValueError(
                "ONNX export needs the `onnx` and `onnxruntime` packages "
                f"(pip install 'keras-prelu[export]'): {error}. Received: onnx={onnx!r}"
            ) from error
    paths = {"out": out, "tflite": tflite, "onnx": onnx}
    paths = {key: os.path.abspath(value) for key, value in paths.items() if value is not None}
    if len(set(paths.values())) < len(paths) or os.path.abspath(checkpoint) in paths.values():
        raise ValueError(
            "The checkpoint and the outputs must be different files. Received: "
            + ", ".join(f"{key}={value!r}" for key, value in paths.items())
        )
    for key, path in paths.items():
        if os.path.isdir(path):
            raise ValueError(f"'{path}' is a folder. Received: {key}={path!r}")
        directory = os.path.dirname(path)
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            raise ValueError(f"Cannot write to the folder '{directory}'. Received: {key}={path!r}")


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

    Everything is checked before anything is written: the arguments, the
    checkpoint (`check_state_dict`), then each output against
    `reference_embeddings` (the `.keras` file as `keras_prelu.saving`
    reloads it, the TFLite interpreter's and onnxruntime's results), plus
    one native PReLU op per layer in the TFLite and ONNX graphs. Outputs are
    written to temporary files beside their targets and renamed into place
    at the end; on any error no target is created or changed.

    Args:
        torch_checkpoint: str or `pathlib.Path`. The InsightFace state_dict.
        out: str or `pathlib.Path`. The `.keras` file to write.
        depth: int or sequence of 4 ints. See `stage_blocks`. Defaults to 18.
        input_size: int. Input height and width. Defaults to 112.
        num_features: int or None. Embedding size; `None` reads it from the
            checkpoint. Defaults to `None`.
        tflite: str, `pathlib.Path` or None. Where to write a TFLite model
            (TensorFlow backend only). Defaults to `None`.
        onnx: str, `pathlib.Path` or None. Where to write an ONNX model with
            native `PRelu` nodes. Defaults to `None`.

    Returns:
        A dict: for each written path, the relative error of its embeddings.

    Raises:
        ValueError: for bad arguments, a checkpoint that does not fit, or an
            output that does not reproduce it.
    """
    stage_blocks(depth)
    check_input_size(input_size)
    if num_features is not None:
        _check_num_features(num_features)
    _check_outputs(out, tflite, onnx, torch_checkpoint)
    state = load_torch_checkpoint(torch_checkpoint)
    model, images, expected = _convert(state, depth, input_size, num_features)
    temporaries = {}  # target path -> temporary file beside it
    errors = {}
    try:
        keras_path = temporaries[os.fspath(out)] = _temporary_path(out)
        model.save(keras_path)
        reloaded = keras_prelu.saving.load_model(keras_path, compile=False)
        errors[os.fspath(out)] = _verify(
            "The saved .keras model", embeddings(reloaded, images), expected
        )
        if tflite is not None:
            path = temporaries[os.fspath(tflite)] = _temporary_path(tflite)
            flatbuffer = tflite_flatbuffer(model)
            with open(path, "wb") as handle:
                handle.write(flatbuffer)
            outputs, ops = run_tflite(flatbuffer, images)
            _check_native_ops(
                "The TFLite model", ops, "PRELU", DECOMPOSED_TFLITE_OPS, prelu_count(model)
            )
            errors[os.fspath(tflite)] = _verify("The TFLite model", outputs, expected)
        if onnx is not None:
            path = temporaries[os.fspath(onnx)] = _temporary_path(onnx)
            export_onnx(model, path)
            outputs, ops = run_onnx(path, images)
            _check_native_ops(
                "The ONNX model", ops, "PRelu", DECOMPOSED_ONNX_OPS, prelu_count(model)
            )
            errors[os.fspath(onnx)] = _verify("The ONNX model", outputs, expected)
        for target, temporary in temporaries.items():
            os.replace(temporary, target)
        temporaries.clear()
    finally:
        for temporary in temporaries.values():
            if os.path.exists(temporary):
                os.remove(temporary)
    return errors


# Command line ------------------------------------------------------------------------


def _depth_argument(text):
    try:
        value = int(text) if "," not in text else [int(part) for part in text.split(",")]
        stage_blocks(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected one of {sorted(DEPTHS)} or 4 comma-separated block counts, got {text!r}"
        ) from error
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of `main`."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.iresnet",
        description="Convert an InsightFace ArcFace IResNet checkpoint (PyTorch state_dict) "
        "to Keras, and optionally to TFLite and ONNX with native PReLU ops.",
    )
    parser.add_argument("--torch-checkpoint", required=True, help="the backbone.pth state_dict")
    parser.add_argument(
        "--depth",
        type=_depth_argument,
        required=True,
        help=f"{', '.join(map(str, DEPTHS))}, or blocks per stage such as 1,1,1,1",
    )
    parser.add_argument("--out", required=True, help="the .keras file to write")
    parser.add_argument("--tflite", help="also write a TFLite model (KERAS_BACKEND=tensorflow)")
    parser.add_argument("--onnx", help="also write an ONNX model")
    parser.add_argument(
        "--input-size",
        type=int,
        default=INPUT_SIZE,
        help=f"input height and width, a multiple of {DOWNSAMPLING} (default: {INPUT_SIZE})",
    )
    parser.add_argument(
        "--num-features", type=int, help="embedding size (default: read from the checkpoint)"
    )
    return parser


def main(argv=None) -> dict:
    """Runs `convert_checkpoint` from the command line; errors end in `parser.error`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        errors = convert_checkpoint(
            args.torch_checkpoint,
            args.out,
            depth=args.depth,
            input_size=args.input_size,
            num_features=args.num_features,
            tflite=args.tflite,
            onnx=args.onnx,
        )
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    for path, error in errors.items():
        print(f"wrote {path}: embeddings within {error:.1e} of the checkpoint's (relative)")
    return errors


if __name__ == "__main__":
    main()
