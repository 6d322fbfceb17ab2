"""Training diagnostics for PReLU networks, as Keras callbacks.

- `SlopeMonitor`: the learned slopes of every PReLU layer, once per epoch.
- `DeadUnitMonitor`: the fraction of "dead" units of every ReLU-family
  activation layer, once per epoch.
- `exclude_slopes_from_weight_decay`: keeps the slopes out of weight decay.

Both monitors add their numbers to the epoch `logs`, so every callback after
them in the `callbacks` list sees them: `History` (always last),
`keras.callbacks.CSVLogger` and `keras.callbacks.TensorBoard`. Put the
monitors *before* those callbacks in the list.
"""

import os
import warnings
from typing import Any

import keras
import numpy as np

from keras_prelu._layer import PReLU
from keras_prelu._layer import channel_axis
from keras_prelu._layer import check_data_format
from keras_prelu._layer import check_positive_int

__all__ = ["SlopeMonitor", "DeadUnitMonitor", "exclude_slopes_from_weight_decay", "prelu_layers"]

PRELU_LAYERS = (PReLU, keras.layers.PReLU)
_RELU_FAMILY = ("relu", "leaky_relu", "relu6")


def _named_layers(model, prefix=""):
    """Yields `(name, layer)` for every layer, descending into nested models.

    A nested model's layers are named `<model>/<layer>`.
    """
    for layer in model.layers:
        name = f"{prefix}{layer.name}"
        yield name, layer
        if isinstance(layer, keras.Model):
            yield from _named_layers(layer, prefix=f"{name}/")


def prelu_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """The PReLU layers of `model` (ours and `keras.layers.PReLU`), by name."""
    return {name: layer for name, layer in _named_layers(model) if isinstance(layer, PRELU_LAYERS)}


def _is_activation_layer(layer) -> bool:
    if isinstance(layer, PRELU_LAYERS + (keras.layers.ReLU, keras.layers.LeakyReLU)):
        return True
    if isinstance(layer, keras.layers.Activation):
        return getattr(layer.activation, "__name__", None) in _RELU_FAMILY
    return False


def _slopes(layer) -> np.ndarray:
    if not layer.built:
        raise ValueError(
            f"PReLU layer {layer.name!r} is not built, so it has no slopes yet. "
            "Build the model first (e.g. give it a keras.Input or call it once)."
        )
    return np.asarray(keras.ops.convert_to_numpy(layer.alpha), dtype="float64")


class _SummaryWriter:
    """Writes TensorBoard scalars and histograms with TensorFlow's core ops.

    `tf.summary.scalar` and `tf.summary.histogram` need the `tensorboard`
    package; `tf.summary.write` with the plugins' metadata does not, and gives
    the same records, so this works with TensorFlow alone on any backend.
    """

    def __init__(self, log_dir: str):
        try:
            import tensorflow as tf
        except ImportError as error:
            raise ImportError(
                "Writing TensorBoard summaries needs TensorFlow (any Keras backend): "
                "pip install tensorflow-cpu"
            ) from error
        self._tf = tf
        self._writer = tf.summary.create_file_writer(log_dir)

    def _metadata(self, plugin_name: str):
        metadata = self._tf.compat.v1.SummaryMetadata()
        metadata.plugin_data.plugin_name = plugin_name
        return metadata

    def scalar(self, tag: str, value: float, step: int) -> None:
        with self._writer.as_default():
            self._tf.summary.write(
                tag,
                self._tf.constant(value, "float32"),
                step=step,
                metadata=self._metadata("scalars"),
            )

    def histogram(self, tag: str, counts: np.ndarray, edges: np.ndarray, step: int) -> None:
        # The histograms plugin's format: one row [left edge, right edge, count] per bin.
        buckets = np.stack([edges[:-1], edges[1:], counts], axis=1).astype("float64")
        with self._writer.as_default():
            self._tf.summary.write(
                tag, self._tf.constant(buckets), step=step, metadata=self._metadata("histograms")
            )

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class SlopeMonitor(keras.callbacks.Callback):
    """Records the slopes of every PReLU layer at the end of each epoch.

    For each `keras_prelu.PReLU` or `keras.layers.PReLU` layer (also inside
    nested models, named `<model>/<layer>`) it adds to the epoch logs:

    - `slope/<layer>/mean`, `slope/<layer>/min`, `slope/<layer>/max`,

    so `History`, `keras.callbacks.CSVLogger` and
    `keras.callbacks.TensorBoard` record them when they come after this
    callback in the `callbacks` list. It also keeps a histogram of each
    layer's slopes per epoch in `histograms`, and can write those histograms
    (and, with a plain directory, the scalars too) to TensorBoard. A model
    without PReLU layers gets a warning and no entries.

    When training diverges, a layer's slopes can become NaN or infinite. Then
    its three stats are logged as NaN, its histogram for that epoch is `None`
    (and is not written to TensorBoard), and a warning names the layer, once
    per layer and `fit`; training goes on, so `keras.callbacks.TerminateOnNaN`
    or the caller decides what to do about the divergence.

    Args:
        bins: int. Number of histogram bins. Defaults to `20`.
        tensorboard: `None`, a `keras.callbacks.TensorBoard` callback or a
            directory. With a callback, the histograms go to its `train` run
            and the scalars reach it through the logs (list this monitor
            before it). With a directory, histograms and scalars are written
            there. Writing needs TensorFlow installed, on any backend; the
            `tensorboard` package is needed only to view them. Defaults to
            `None`.

    Attributes:
        histograms: dict. Layer name to a list, one entry per epoch, of
            `(counts, bin_edges)` NumPy arrays, or `None` for an epoch whose
            slopes could not be binned (not finite).

    Example:

    >>> history = model.fit(
    ...     x, y, epochs=5,
    ...     callbacks=[SlopeMonitor(), keras.callbacks.CSVLogger("log.csv")],
    ... )
    >>> history.history["slope/act1/mean"]
    """

    def __init__(
        self,
        bins: int = 20,
        tensorboard: keras.callbacks.TensorBoard | str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        bins = check_positive_int(bins, "bins")
        if tensorboard is None or isinstance(tensorboard, (str, os.PathLike)):
            self._log_dir = tensorboard
            self._scalars_to_tensorboard = True
        elif isinstance(tensorboard, keras.callbacks.TensorBoard):
            self._log_dir = os.path.join(tensorboard.log_dir, "train")
            self._scalars_to_tensorboard = False
        else:
            raise ValueError(
                "`tensorboard` must be None, a keras.callbacks.TensorBoard or a "
                f"directory. Received: tensorboard={tensorboard!r}"
            )
        self.bins = bins
        self.histograms: dict[str, list[tuple[np.ndarray, np.ndarray] | None]] = {}
        self._writer = None
        self._warned: set[str] = set()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._layers = prelu_layers(self.model)
        if not self._layers:
            warnings.warn(
                f"SlopeMonitor: model {self.model.name!r} has no PReLU layer; nothing to record.",
                stacklevel=2,
            )
        self.histograms = {name: [] for name in self._layers}
        self._warned = set()
        if self._log_dir is not None and self._layers:
            self._writer = _SummaryWriter(os.fspath(self._log_dir))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, layer in self._layers.items():
            stats, histogram = self._layer_stats(name, _slopes(layer).ravel(), epoch)
            self.histograms[name].append(histogram)
            if logs is not None:
                logs.update({f"slope/{name}/{stat}": value for stat, value in stats.items()})
            if self._writer is not None:
                if histogram is not None:
                    self._writer.histogram(f"slope/{name}", *histogram, step=epoch)
                if self._scalars_to_tensorboard:
                    for stat, value in stats.items():
                        self._writer.scalar(f"slope/{name}/{stat}", value, step=epoch)
        if self._writer is not None:
            self._writer.flush()

    def _layer_stats(self, name: str, slopes: np.ndarray, epoch: int):
        """The stats and histogram of one layer's slopes; NaN and None when not finite."""
        if np.isfinite(slopes).all():
            # Huge slopes may overflow the mean or the bin width: those are handled below.
            with np.errstate(over="ignore", invalid="ignore"):
                stats = {"mean": slopes.mean(), "min": slopes.min(), "max": slopes.max()}
                try:
                    histogram = np.histogram(slopes, self.bins)
                    return {k: float(v) for k, v in stats.items()}, histogram
                except ValueError:  # a finite range too wide for finite-sized bins
                    reason = "slopes too far apart to bin"
        else:
            stats = dict.fromkeys(("mean", "min", "max"), float("nan"))
            reason = "slopes that are NaN or infinite, so its slope stats are logged as NaN"
        if name not in self._warned:
            self._warned.add(name)
            warnings.warn(
                f"SlopeMonitor: PReLU layer {name!r} has {reason} at epoch {epoch + 1} "
                "(did training diverge?); its histogram for that epoch is None and not "
                "written. This warning is given once per layer.",
                stacklevel=2,
            )
        return {k: float(v) for k, v in stats.items()}, None

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class DeadUnitMonitor(keras.callbacks.Callback):
    """Measures "dying ReLU": the share of units that never turn on.

    At the end of each epoch it runs the model in inference mode on a fixed
    probe batch and, for every activation layer, counts the units whose
    pre-activation (the layer's input) is <= 0 for every sample of the batch
    (and, for feature maps, every spatial position). A unit is a channel of a
    feature map or a feature of a `(batch, features)` tensor. Such a unit
    outputs 0 under ReLU and receives no gradient through it; under PReLU or
    LeakyReLU it still passes `slope * x`, which is why PReLU is said to
    mitigate dying units.

    Watched layers: `keras_prelu.PReLU`, `keras.layers.PReLU`,
    `keras.layers.ReLU`, `keras.layers.LeakyReLU` and
    `keras.layers.Activation` with `relu`, `leaky_relu` or `relu6`, at the
    top level of a functional or Sequential model. Activations fused into
    another layer (`Conv2D(..., activation="relu")`) have no public
    pre-activation and are not watched.

    It adds `dead_units/<layer>` (a fraction in [0, 1]) and `dead_units`
    (dead units over all watched units) to the epoch logs, so `History`,
    `CSVLogger` and `TensorBoard` listed after it record them. The values
    before training are kept in `initial`.

    Args:
        probe_data: The inputs of the probe batch: an array, or a list or
            dict of arrays for a model with several inputs. A few hundred
            training samples are typical.
        batch_size: int. The probe batch is run in chunks of this size.
            Defaults to `256`.
        data_format: `"channels_last"` or `"channels_first"`: where the
            channel axis of feature maps (rank > 2) is. Defaults to
            `keras.config.image_data_format()` when the callback is made.

    Attributes:
        initial: dict. The fractions before the first epoch, with the same
            keys as the logs.
    """

    def __init__(
        self, probe_data: Any, batch_size: int = 256, data_format: str | None = None
    ) -> None:
        super().__init__()
        self.probe_data = _check_probe(probe_data)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.data_format = check_data_format(data_format)
        self.initial: dict[str, float] = {}

    def _probe_model(self) -> tuple[list[str], keras.Model]:
        model = self.model
        layers = [layer for layer in model.layers if _is_activation_layer(layer)]
        if not layers:
            raise ValueError(
                f"DeadUnitMonitor found no activation layer at the top level of model "
                f"{model.name!r}. It watches PReLU, ReLU, LeakyReLU and Activation('relu') "
                "layers, not activations fused into Conv2D/Dense."
            )
        try:
            if not getattr(model, "inputs", None):
                raise ValueError("it has no symbolic inputs (is it a subclassed model?)")
            # A functional model's `input` keeps the structure of its inputs
            # (one tensor, a list or a dict), so the probe takes data as `fit`
            # does; a Sequential model has exactly one input.
            inputs = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
            pre_activations = [layer.input for layer in layers]
        except (AttributeError, ValueError) as error:
            raise ValueError(
                "DeadUnitMonitor needs a built functional or Sequential model whose "
                f"activation layers are each called once. Model {model.name!r}: {error}"
            ) from error
        self._check_probe_fits(inputs)
        return [layer.name for layer in layers], keras.Model(inputs, pre_activations)

    def _check_probe_fits(self, inputs) -> None:
        expected = [tuple(tensor.shape[1:]) for tensor in keras.tree.flatten(inputs)]
        received = [tuple(array.shape[1:]) for array in keras.tree.flatten(self.probe_data)]
        fits = len(expected) == len(received) and all(
            len(want) == len(got)
            and all(w is None or w == g for w, g in zip(want, got, strict=True))
            for want, got in zip(expected, received, strict=True)
        )
        if not fits:
            raise ValueError(
                f"DeadUnitMonitor: the probe batch does not fit model {self.model.name!r}, "
                f"whose inputs are (batch, ...) + {expected}. "
                f"Received: probe_data with shapes (batch, ...) + {received}"
            )

    def _channel_axis(self, rank: int) -> int:
        # A (batch, features) tensor has its units last in either format.
        return channel_axis(self.data_format, rank) if rank > 2 else rank - 1

    def _measure(self) -> dict[str, float]:
        any_positive = [None] * len(self._names)
        for chunk in _chunks(self.probe_data, self.batch_size):
            outputs = self._probe(chunk, training=False)
            if not isinstance(outputs, (list, tuple)):
                outputs = [outputs]
            for index, output in enumerate(outputs):
                output = keras.ops.convert_to_numpy(output)
                axis = self._channel_axis(output.ndim)
                reduce_axes = tuple(a for a in range(output.ndim) if a != axis)
                positive = np.any(output > 0, axis=reduce_axes)
                previous = any_positive[index]
                any_positive[index] = positive if previous is None else previous | positive
        fractions = {
            f"dead_units/{name}": float(1.0 - alive.mean())
            for name, alive in zip(self._names, any_positive, strict=True)
        }
        dead = sum(int((~alive).sum()) for alive in any_positive)
        fractions["dead_units"] = dead / sum(alive.size for alive in any_positive)
        return fractions

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._names, self._probe = self._probe_model()
        self.initial = self._measure()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        fractions = self._measure()
        if logs is not None:
            logs.update(fractions)


def _check_probe(probe_data):
    """`probe_data` if it is one array, or a list or dict of arrays, of the
    same number (> 0) of samples; else a `ValueError`."""
    if isinstance(probe_data, dict):
        arrays = list(probe_data.values())
    elif isinstance(probe_data, (list, tuple)):
        arrays = list(probe_data)
    else:
        arrays = [probe_data]
    lengths = {array.shape[0] if getattr(array, "shape", None) else None for array in arrays}
    if not arrays or None in lengths or 0 in lengths or len(lengths) != 1:
        shapes = [getattr(array, "shape", type(array).__name__) for array in arrays]
        raise ValueError(
            "`probe_data` must be an array of at least one sample, or a list or dict "
            "of such arrays with the same number of samples, as the model takes its "
            f"inputs. Received: probe_data={type(probe_data).__name__} of {shapes}"
        )
    return probe_data


def _chunks(data, size: int):
    """Splits an array, or a list/dict of arrays, along the batch axis."""
    if isinstance(data, dict):
        total = len(next(iter(data.values())))
        for start in range(0, total, size):
            yield {key: value[start : start + size] for key, value in data.items()}
    elif isinstance(data, (list, tuple)):
        total = len(data[0])
        for start in range(0, total, size):
            yield [value[start : start + size] for value in data]
    else:
        for start in range(0, len(data), size):
            yield data[start : start + size]


def exclude_slopes_from_weight_decay(
    optimizer: keras.optimizers.Optimizer,
    model: keras.Model,
    var_list: list[keras.Variable] | None = None,
    var_names: list[str] | None = None,
) -> list[keras.Variable]:
    """Keeps every PReLU slope of `model` out of the optimizer's weight decay.

    He et al. 2015 and `torch.nn.PReLU`'s documentation advise against weight
    decay on the slopes: it pulls them towards 0, that is towards ReLU. This
    calls Keras's `optimizer.exclude_from_weight_decay` with the slopes of
    every `keras_prelu.PReLU` and `keras.layers.PReLU` layer in `model`
    (nested models included). That Keras method *replaces* any earlier
    exclusion, so pass other variables or name patterns to keep excluded
    through `var_list` and `var_names` here, and do not call it again after.

    Call it after the model is built and before the optimizer is (that is,
    before `fit`). It has no effect on optimizers without weight decay, and
    does not touch `alpha_regularizer`.

    Args:
        optimizer: A `keras.optimizers.Optimizer`, e.g. `AdamW`.
        model: The model whose slopes to exclude.
        var_list: Other variables to exclude too. Defaults to `None`.
        var_names: Name patterns of other variables to exclude too (as in
            `exclude_from_weight_decay`). Defaults to `None`.

    Returns:
        The list of slope variables now excluded.

    Example:

    >>> optimizer = keras.optimizers.AdamW(weight_decay=1e-4)
    >>> exclude_slopes_from_weight_decay(optimizer, model)
    >>> model.compile(optimizer, "sparse_categorical_crossentropy")
    """
    if optimizer.built:
        # Keras's own check looks at a private flag the optimizer never sets,
        # and compiled train steps would keep the decay they were traced with.
        raise ValueError(
            "exclude_slopes_from_weight_decay() must be called before the optimizer "
            "is built, that is before the first `fit` or `apply_gradients`."
        )
    slopes = []
    for layer in prelu_layers(model).values():
        _slopes(layer)  # raises if unbuilt
        # The layer's variables, not `layer.alpha`: a subclass may compute
        # its slopes from another variable (a reparameterization).
        slopes.extend(layer.weights)
    optimizer.exclude_from_weight_decay(var_list=slopes + list(var_list or []), var_names=var_names)
    return slopes
