"""Example CNNs whose activation is chosen by name (see examples/README.md).

Activation layers are named `act1`, `act2`, ... in depth order, so that
monitors, logs and tables line up across variants. Every layer is
channels_last, whatever `keras.config.image_data_format()` says.
"""

import itertools

import keras

import keras_prelu

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "prelu_channelwise")
DATA_FORMAT = "channels_last"
# The default 0.99 lags far behind after a small data set's few dozen steps per epoch.
BN_MOMENTUM = 0.9
CONV = {"padding": "same", "data_format": DATA_FORMAT}


class ScaledPReLU(keras_prelu.PReLU):
    """A PReLU whose slopes `alpha = slope_lr_scale * v` learn that much faster under Adam.

    The trained variable, to keep out of weight decay, is `v`. The config does
    not record the scale: this layer is for experiments, not for saved models.
    """

    def __init__(self, slope_lr_scale: float, alpha_initializer: float, **kwargs):
        super().__init__(alpha_initializer=alpha_initializer / slope_lr_scale, **kwargs)
        self.slope_lr_scale = slope_lr_scale

    @property
    def alpha(self):
        return keras.ops.multiply(self.slope_lr_scale, self.v)

    @alpha.setter
    def alpha(self, variable):  # `PReLU.build` stores its variable here
        self.v = variable


def make_activation(
    name: str,
    layer_name: str | None = None,
    slope: float = keras_prelu.DEFAULT_SLOPE,
    slope_lr_scale: float = 1.0,
) -> keras.layers.Layer:
    """A new activation layer; `slope` is PReLU's initial slope and LeakyReLU's fixed one."""
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation variant {name!r}; choose one of {ACTIVATIONS}.")
    if name == "relu":
        return keras.layers.ReLU(name=layer_name)
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=slope, name=layer_name)
    kwargs = {"layout": "scalar"}
    if name == "prelu_channelwise":
        kwargs = {"layout": "channelwise", "data_format": DATA_FORMAT}
    if slope_lr_scale != 1:
        return ScaledPReLU(slope_lr_scale, slope, name=layer_name, **kwargs)
    return keras_prelu.PReLU(alpha_initializer=slope, name=layer_name, **kwargs)


def build_cnn(
    activation: str = "prelu_channelwise",
    input_shape: tuple[int, int, int] = (8, 8, 1),
    num_classes: int = 10,
    filters: tuple[int, ...] = (16, 32, 64),
    dense_units: int = 64,
    slope: float = keras_prelu.DEFAULT_SLOPE,
    slope_lr_scale: float = 1.0,
) -> keras.Sequential:
    """Conv-BN-activation blocks with max pooling, then a Dense-activation layer.

    The Dense layer has no BatchNorm, so its units can die as in a plain MLP.
    """
    layers = [keras.Input(input_shape)]
    size = min(input_shape[:2])
    for depth, width in enumerate(filters, start=1):
        # No bias: the BatchNormalization after every convolution has an offset.
        conv = keras.layers.Conv2D(width, 3, use_bias=False, name=f"conv{depth}", **CONV)
        bn = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{depth}")
        layers += [conv, bn, make_activation(activation, f"act{depth}", slope, slope_lr_scale)]
        if depth < len(filters) and size > 2:
            layers.append(keras.layers.MaxPooling2D(data_format=DATA_FORMAT, name=f"pool{depth}"))
            size //= 2
    layers += [
        keras.layers.GlobalAveragePooling2D(data_format=DATA_FORMAT, name="gap"),
        keras.layers.Dense(dense_units, name="dense"),
        make_activation(activation, f"act{len(filters) + 1}", slope, slope_lr_scale),
        keras.layers.Dense(num_classes, activation="softmax", name="classifier"),
    ]
    return keras.Sequential(layers, name=f"cnn_{activation}")


def build_plain(
    activation: str = "relu",
    input_shape: tuple[int, int, int] = (8, 8, 1),
    num_classes: int = 10,
    depth: int = 6,
    widths: tuple[int, ...] = (16, 32, 64),
    slope: float = keras_prelu.DEFAULT_SLOPE,
    slope_lr_scale: float = 1.0,
) -> keras.Sequential:
    """`depth` He-initialised Conv-activation layers without BatchNormalization.

    The convolutions form `len(widths)` stages of (nearly) equal length, with max
    pooling between stages. Nothing re-centres the pre-activations: the classic
    setting of dying ReLU.
    """
    stages = len(widths)
    lengths = [depth // stages + (stage < depth % stages) for stage in range(stages)]
    layers, index = [keras.Input(input_shape)], itertools.count(1)
    for stage, (width, length) in enumerate(zip(widths, lengths, strict=True), start=1):
        for i in itertools.islice(index, length):
            conv = keras.layers.Conv2D(
                width, 3, kernel_initializer="he_normal", name=f"conv{i}", **CONV
            )
            layers += [conv, make_activation(activation, f"act{i}", slope, slope_lr_scale)]
        if stage < stages:
            layers.append(keras.layers.MaxPooling2D(data_format=DATA_FORMAT, name=f"pool{stage}"))
    pool = keras.layers.GlobalAveragePooling2D(data_format=DATA_FORMAT, name="gap")
    layers += [pool, keras.layers.Dense(num_classes, activation="softmax", name="classifier")]
    return keras.Sequential(layers, name=f"plain{depth}_{activation}")


BUILDERS = {"cnn": build_cnn, "plain": build_plain}


def _layer_text(layer) -> str:
    """A layer's name, class and (for Conv2D and Dense) size and initializer."""
    details = ""
    if isinstance(layer, keras.layers.Conv2D):
        size = "x".join(str(k) for k in layer.kernel_size)
        init = type(layer.kernel_initializer).__name__
        details = f" {layer.filters} {size}, {init}{'' if layer.use_bias else ', no bias'}"
    elif isinstance(layer, keras.layers.Dense):
        details = f" {layer.units}, {type(layer.kernel_initializer).__name__}"
    return f"{layer.name} ({type(layer).__name__}{details})"


def describe_model(model: keras.Sequential) -> str:
    """Says what feeds each activation layer (`act*`), back through BatchNormalization."""
    layers, parts, normalised = model.layers, [], 0
    for i, layer in enumerate(layers):
        if layer.name.startswith("act"):
            chain = (
                layers[i - 2 : i]
                if isinstance(layers[i - 1], keras.layers.BatchNormalization)
                else layers[i - 1 : i]
            )
            normalised += len(chain) == 2
            parts.append(f"{layer.name} <- " + " <- ".join(map(_layer_text, chain[::-1])))
    return (
        f"{model.name}, {model.count_params()} parameters; {len(parts)} activation layers, "
        f"{normalised} of them right after BatchNormalization: " + "; ".join(parts) + "."
    )
