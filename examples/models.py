"""Example CNNs whose activation is chosen by name.

Every builder names its activation layers `act1`, `act2`, ... in depth order,
so that monitors, logs and the experiment's tables line up across variants.
Layers get an explicit `data_format="channels_last"`, so the models work
whatever `keras.config.image_data_format()` says.

- `build_cnn`: Conv-BatchNorm-activation blocks, then a Dense-activation layer.
- `build_resnet`: a small ResNet-style CNN with BatchNorm.
- `build_plain`: a deeper CNN without BatchNorm, He-initialised: the classic
  setting of dying ReLU units.

`describe_model(model)` says, from a built model, what feeds each activation.
"""

import itertools

import keras

import keras_prelu

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "prelu_channelwise")
DATA_FORMAT = "channels_last"
# The default 0.99 leaves BatchNorm's moving statistics far from the batch
# statistics after the few dozen steps per epoch of a small data set, which
# would distort the inference-mode probes of the monitors.
BN_MOMENTUM = 0.9


class ScaledPReLU(keras_prelu.PReLU):
    """A PReLU whose slopes learn `slope_lr_scale` times as fast under Adam.

    The trained variable is `v` and the slope is `alpha = slope_lr_scale * v`,
    the "equalized learning rate" of Karras et al. 2018. Adam's step on `v` is
    about the learning rate whatever the size of its gradient, so `alpha`
    moves `slope_lr_scale` times as far per step as a plain slope would
    (`slope_lr_scale**2` times under plain SGD). `alpha` reads the slopes as
    for `PReLU`, so `SlopeMonitor` and `DeadUnitMonitor` work unchanged; the
    variable to keep out of weight decay is `v`. The config does not record
    the scale: this layer is for experiments, not for saved models.
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
    """Returns a new activation layer for one of `ACTIVATIONS`.

    `slope` is PReLU's initial slope and LeakyReLU's fixed one; ReLU has none.
    A `slope_lr_scale` other than 1 makes the PReLUs `ScaledPReLU`s.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation variant {name!r}; choose one of {ACTIVATIONS}.")
    if name == "relu":
        return keras.layers.ReLU(name=layer_name)
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=slope, name=layer_name)
    kwargs = {"layout": "scalar"} if name == "prelu" else {"layout": "channelwise"}
    if name == "prelu_channelwise":
        kwargs["data_format"] = DATA_FORMAT
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


def conv_bn_act(
    filters: int, activation: str, depth: int, slope: float, slope_lr_scale: float = 1.0
) -> list[keras.layers.Layer]:
    """Conv2D (3x3) -> BatchNormalization -> activation, numbered `depth`."""
    return [
        _conv(filters, 3, f"conv{depth}"),
        _batch_norm(f"bn{depth}"),
        make_activation(activation, f"act{depth}", slope, slope_lr_scale),
    ]


def build_cnn(
    activation: str = "prelu_channelwise",
    input_shape: tuple[int, int, int] = (8, 8, 1),
    num_classes: int = 10,
    filters: tuple[int, ...] = (16, 32, 64),
    dense_units: int = 64,
    slope: float = keras_prelu.DEFAULT_SLOPE,
    slope_lr_scale: float = 1.0,
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
        layers += conv_bn_act(width, activation, depth, slope, slope_lr_scale)
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
    """A deeper Sequential CNN without BatchNormalization: Conv-activation only.

    Each entry of `filters` is a 3x3 convolution (with bias, He-normal
    initialised, as He et al. 2015 derived for rectifiers) followed by the
    activation; a 2x2 max pool follows every second convolution while the
    feature map is larger than 2x2. Global average pooling feeds the softmax
    classifier. Nothing re-centres the pre-activations, so a large update can
    push a ReLU unit's input below zero for every sample: the unit then
    outputs 0 and gets no gradient, that is, it dies. `slope` is the PReLU
    initial slope and the LeakyReLU fixed slope.
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
    """Says what feeds each activation layer (`act*`) of a built model.

    The description is read from the model itself: for every activation
    layer, the layers that produce its input, back through BatchNormalization
    to the convolution, dense or merge layer before it.
    """
    producers = {}
    for layer in model.layers:
        try:
            producers[id(layer.output)] = layer
        except (AttributeError, ValueError):  # not called, or called more than once
            continue

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
