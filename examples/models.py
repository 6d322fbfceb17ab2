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
# With the default 0.99, the moving statistics lag far behind after the few dozen steps
# per epoch of a small data set, which would distort the monitors' inference-mode probes.
BN_MOMENTUM = 0.9


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


def _pool(name: str) -> keras.layers.MaxPooling2D:
    return keras.layers.MaxPooling2D(data_format=DATA_FORMAT, name=name)


def _global_pool() -> keras.layers.GlobalAveragePooling2D:
    return keras.layers.GlobalAveragePooling2D(data_format=DATA_FORMAT, name="gap")


def _classifier(num_classes: int) -> keras.layers.Dense:
    return keras.layers.Dense(num_classes, activation="softmax", name="classifier")


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
        layers += [
            _conv(width, 3, f"conv{depth}"),
            _batch_norm(f"bn{depth}"),
            make_activation(activation, f"act{depth}", slope, slope_lr_scale),
        ]
        if depth < len(filters) and size > 2:
            layers.append(_pool(f"pool{depth}"))
            size //= 2
    layers += [
        _global_pool(),
        keras.layers.Dense(dense_units, name="dense"),
        make_activation(activation, f"act{len(filters) + 1}", slope, slope_lr_scale),
        _classifier(num_classes),
    ]
    return keras.Sequential(layers, name=f"cnn_{activation}")


def build_plain(
    activation: str = "relu",
    input_shape: tuple[int, int, int] = (8, 8, 1),
    num_classes: int = 10,
    filters: tuple[int, ...] = (16, 16, 32, 32, 64, 64),
    slope: float = keras_prelu.DEFAULT_SLOPE,
    slope_lr_scale: float = 1.0,
) -> keras.Sequential:
    """A deeper CNN of He-initialised Conv-activation layers without BatchNormalization.

    Nothing re-centres the pre-activations: the classic setting of dying ReLU.
    """
    layers = [keras.Input(input_shape)]
    size = min(input_shape[:2])
    for depth, width in enumerate(filters, start=1):
        layers += [
            keras.layers.Conv2D(
                width,
                3,
                padding="same",
                kernel_initializer="he_normal",
                data_format=DATA_FORMAT,
                name=f"conv{depth}",
            ),
            make_activation(activation, f"act{depth}", slope, slope_lr_scale),
        ]
        if depth % 2 == 0 and depth < len(filters) and size > 2:
            layers.append(_pool(f"pool{depth // 2}"))
            size //= 2
    layers += [_global_pool(), _classifier(num_classes)]
    return keras.Sequential(layers, name=f"plain_{activation}")


def build_resnet(
    activation: str = "prelu_channelwise",
    input_shape: tuple[int, int, int] = (8, 8, 1),
    num_classes: int = 10,
    widths: tuple[int, ...] = (16, 32),
    blocks_per_stage: int = 1,
    slope: float = keras_prelu.DEFAULT_SLOPE,
    slope_lr_scale: float = 1.0,
) -> keras.Model:
    """A small ResNet-style CNN: a stem, then stages of basic blocks (He et al. 2016).

    The first block of every later stage halves the resolution, with a 1x1
    projection on the shortcut.
    """
    inputs = keras.Input(input_shape)
    depth = itertools.count(1)

    def act():
        return make_activation(activation, f"act{next(depth)}", slope, slope_lr_scale)

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
    outputs = _classifier(num_classes)(_global_pool()(x))
    return keras.Model(inputs, outputs, name=f"resnet_{activation}")


BUILDERS = {"cnn": build_cnn, "plain": build_plain, "resnet": build_resnet}


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


def describe_model(model: keras.Model) -> str:
    """Says what feeds each activation layer (`act*`), back through BatchNormalization."""
    producers = {id(layer.output): layer for layer in model.layers}

    def feeding(tensor) -> list[str]:
        chain = []
        layer = producers.get(id(tensor))
        while layer is not None:
            text = _layer_text(layer)
            if isinstance(layer.input, (list, tuple)):  # a merge, e.g. a residual Add
                inputs = [producers.get(id(t)) for t in layer.input]
                text += " of " + " and ".join(p.name if p else "the input" for p in inputs)
            chain.append(text)
            if not isinstance(layer, keras.layers.BatchNormalization):
                break
            layer = producers.get(id(layer.input))
        return chain or ["the input"]

    acts = [layer for layer in model.layers if layer.name.startswith("act")]
    normalised = sum(
        isinstance(producers.get(id(layer.input)), keras.layers.BatchNormalization)
        for layer in acts
    )
    parts = [f"{layer.name} <- {' <- '.join(feeding(layer.input))}" for layer in acts]
    return (
        f"{model.name}, {model.count_params()} parameters; {len(acts)} activation layers, "
        f"{normalised} of them right after BatchNormalization: " + "; ".join(parts) + "."
    )
