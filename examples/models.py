"""Example CNNs whose activation is chosen by name.

Every builder names its activation layers `act1`, `act2`, ... in depth order,
so that monitors, logs and the experiment's tables line up across variants.
Layers get an explicit `data_format="channels_last"`, so the models work
whatever `keras.config.image_data_format()` says.
"""

import itertools
import math

import keras

import keras_prelu

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "prelu_channelwise")
# PReLU's initial slope (He et al. 2015, torch) and LeakyReLU's fixed one: the
# leaky variant differs from the PReLU variants only in that its slope is not
# learned.
INITIAL_SLOPE = 0.25
DATA_FORMAT = "channels_last"
# The default 0.99 leaves BatchNorm's moving statistics far from the batch
# statistics after the few dozen steps per epoch of a small data set, which
# would distort the inference-mode probes of the monitors.
BN_MOMENTUM = 0.9


def describe_model(builder: str) -> str:
    """A sentence on where the default model of `builder` has its activation layers."""
    if builder == "cnn":
        return (
            "Sequential CNN (build_cnn); act1, act2 and act3 follow Conv-BatchNorm blocks of 16, 32 and 64 "
            "channels, act4 follows the Dense(64) hidden layer, which has no "
            "BatchNorm; then the softmax classifier."
        )
    if builder == "resnet":
        return (
            "ResNet-style CNN (build_resnet); act1 follows the stem's Conv-BatchNorm, then each residual "
            "block has one activation after its first Conv-BatchNorm and one after the addition."
        )
    raise ValueError(f"Unknown builder {builder!r}; choose 'cnn' or 'resnet'.")


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation variant {name!r}; choose one of {ACTIVATIONS}.")
    return name


def check_slope(slope) -> float:
    try:
        value = float(slope)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value) or isinstance(slope, bool):
        raise ValueError(f"`slope` must be a finite number. Received: slope={slope!r}")
    return value


def make_activation(
    name: str, layer_name: str | None = None, slope: float = INITIAL_SLOPE
) -> keras.layers.Layer:
    """Returns a new activation layer for one of `ACTIVATIONS`.

    `slope` is PReLU's initial slope and LeakyReLU's fixed one; ReLU has none.
    """
    check_activation(name)
    slope = check_slope(slope)
    if name == "relu":
        return keras.layers.ReLU(name=layer_name)
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=slope, name=layer_name)
    if name == "prelu":
        return keras_prelu.PReLU(alpha_initializer=slope, layout="scalar", name=layer_name)
    return keras_prelu.PReLU(
        alpha_initializer=slope, layout="channelwise", data_format=DATA_FORMAT, name=layer_name
    )


def _conv(filters: int, kernel: int, name: str, strides: int = 1) -> keras.layers.Conv2D:
    # No bias: the BatchNormalization after every convolution has an offset.
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        use_bias=False,
        data_format=DATA_FORMAT,
        name=name,
    )


def _batch_norm(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(axis=-1, momentum=BN_MOMENTUM, name=name)


def conv_bn_act(
    filters: int, activation: str, depth: int, slope: float = INITIAL_SLOPE
) -> list[keras.layers.Layer]:
    """Conv2D (3x3) -> BatchNormalization -> activation, numbered `depth`."""
    return [
        _conv(filters, 3, f"conv{depth}"),
        _batch_norm(f"bn{depth}"),
        make_activation(activation, f"act{depth}", slope),
    ]


def build_cnn(
    activation: str = "prelu_channelwise",
    input_shape: tuple[int, int, int] = (8, 8, 1),
    num_classes: int = 10,
    filters: tuple[int, ...] = (16, 32, 64),
    dense_units: int = 64,
    slope: float = INITIAL_SLOPE,
) -> keras.Sequential:
    """A Sequential CNN of Conv-BN-activation blocks.

    Each entry of `filters` is one block; a 2x2 max pool follows every block
    but the last while the feature map is larger than 2x2. Global average
    pooling then feeds a Dense-activation layer (no BatchNorm there, so units
    can die as in a plain MLP) and the softmax classifier. `slope` is the
    PReLU initial slope and the LeakyReLU fixed slope.
    """
    layers = [keras.Input(input_shape)]
    size = min(input_shape[:2])
    for depth, width in enumerate(filters, start=1):
        layers += conv_bn_act(width, activation, depth, slope)
        if depth < len(filters) and size > 2:
            layers.append(keras.layers.MaxPooling2D(data_format=DATA_FORMAT, name=f"pool{depth}"))
            size //= 2
    layers += [
        keras.layers.GlobalAveragePooling2D(data_format=DATA_FORMAT, name="gap"),
        keras.layers.Dense(dense_units, name="dense"),
        make_activation(activation, f"act{len(filters) + 1}", slope),
        keras.layers.Dense(num_classes, activation="softmax", name="classifier"),
    ]
    return keras.Sequential(layers, name=f"cnn_{activation}")


def build_resnet(
    activation: str = "prelu_channelwise",
    input_shape: tuple[int, int, int] = (8, 8, 1),
    num_classes: int = 10,
    widths: tuple[int, ...] = (16, 32),
    blocks_per_stage: int = 1,
    slope: float = INITIAL_SLOPE,
) -> keras.Model:
    """A small functional ResNet-style CNN (He et al. 2016 basic blocks).

    A Conv-BN-activation stem, then per stage `blocks_per_stage` residual
    blocks of two 3x3 convolutions; the first block of every stage after the
    first halves the resolution, with a 1x1 projection on the shortcut. The
    activation after each addition is also a chosen activation layer.
    `slope` is the PReLU initial slope and the LeakyReLU fixed slope.
    """
    inputs = keras.Input(input_shape)
    depth = itertools.count(1)

    def act():
        return make_activation(activation, f"act{next(depth)}", slope)

    x = act()(_batch_norm("stem_bn")(_conv(widths[0], 3, "stem_conv")(inputs)))
    for stage, width in enumerate(widths, start=1):
        for block in range(1, blocks_per_stage + 1):
            name = f"stage{stage}_block{block}"
            strides = 2 if stage > 1 and block == 1 else 1
            y = _conv(width, 3, f"{name}_conv1", strides)(x)
            y = act()(_batch_norm(f"{name}_bn1")(y))
            y = _batch_norm(f"{name}_bn2")(_conv(width, 3, f"{name}_conv2")(y))
            shortcut = x
            if strides != 1 or x.shape[-1] != width:
                shortcut = _batch_norm(f"{name}_proj_bn")(
                    _conv(width, 1, f"{name}_proj", strides)(x)
                )
            x = act()(keras.layers.Add(name=f"{name}_add")([shortcut, y]))
    x = keras.layers.GlobalAveragePooling2D(data_format=DATA_FORMAT, name="gap")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"resnet_{activation}")
