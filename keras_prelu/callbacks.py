"""Training diagnostics for PReLU networks, as Keras callbacks: see docs/diagnostics.md.

The monitors add to the epoch logs: list them before `CSVLogger` and `TensorBoard`.
"""

import operator
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


def prelu_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """The PReLU layers of `model`, ours and Keras's, by name (`<model>/<layer>` if nested)."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, PRELU_LAYERS):
            found[layer.name] = layer
        if isinstance(layer, keras.Model):
            found.update({f"{layer.name}/{k}": v for k, v in prelu_layers(layer).items()})
    return found


def _is_activation_layer(layer) -> bool:
    if isinstance(layer, keras.layers.Activation):
        return getattr(layer.activation, "__name__", None) in ("relu", "leaky_relu", "relu6")
    return isinstance(layer, PRELU_LAYERS + (keras.layers.ReLU, keras.layers.LeakyReLU))


def _slopes(layer) -> np.ndarray:
    if not layer.built:
        raise ValueError(
            f"PReLU layer {layer.name!r} is not built, so it has no slopes yet. "
            "Build the model first (e.g. give it a keras.Input or call it once)."
        )
    return np.asarray(keras.ops.convert_to_numpy(layer.alpha), dtype="float64")


class SlopeMonitor(keras.callbacks.Callback):
    """Records the slopes of every PReLU layer at the end of each epoch.

    For each PReLU layer, ours or Keras's, nested models included, it adds
    `slope/<layer>/mean`, `slope/<layer>/min` and `slope/<layer>/max` to the
    epoch logs, and keeps a histogram of the slopes. Slopes that are not
    finite are logged as NaN, with a warning.

    Args:
        bins: int. Number of histogram bins. Defaults to `20`.
        tensorboard: `None`, a `keras.callbacks.TensorBoard` or a directory.
            Where to write the histograms: the callback's `train` run, or the
            directory (with the scalars). Needs TensorFlow. Defaults to `None`.

    Attributes:
        histograms: dict. Layer name to a list of `(counts, bin_edges)`, one
            per epoch, or `None` where the slopes could not be binned.

    Example:

    >>> callbacks = [SlopeMonitor(), keras.callbacks.CSVLogger("log.csv")]
    >>> history = model.fit(x, y, epochs=5, callbacks=callbacks)
    >>> history.history["slope/act1/mean"]
    """

    def __init__(
        self,
        bins: int = 20,
        tensorboard: keras.callbacks.TensorBoard | str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        self.bins = check_positive_int(bins, "bins")
        is_callback = isinstance(tensorboard, keras.callbacks.TensorBoard)
        if not (is_callback or tensorboard is None or isinstance(tensorboard, (str, os.PathLike))):
            raise ValueError(
                "`tensorboard` must be None, a keras.callbacks.TensorBoard or a "
                f"directory. Received: tensorboard={tensorboard!r}"
            )
        # Scalars reach a TensorBoard callback through the logs.
        self._scalars_to_tensorboard = not is_callback
        self._log_dir = os.path.join(tensorboard.log_dir, "train") if is_callback else tensorboard
        self.histograms: dict[str, list[tuple[np.ndarray, np.ndarray] | None]] = {}
        self._writer = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._layers = prelu_layers(self.model)
        if not self._layers:
            warnings.warn(
                f"SlopeMonitor: model {self.model.name!r} has no PReLU layer; nothing to record.",
                stacklevel=2,
            )
        self.histograms = {name: [] for name in self._layers}
        self._warned: set[str] = set()
        if self._log_dir is not None and self._layers:
            try:
                import tensorflow as tf
            except ImportError as error:
                raise ImportError(
                    "Writing TensorBoard summaries needs TensorFlow (any Keras backend): "
                    "pip install tensorflow-cpu"
                ) from error
            self._tf, self._writer = tf, tf.summary.create_file_writer(os.fspath(self._log_dir))

    def _write(self, tag: str, value: Any, step: int, plugin: str) -> None:
        # tf.summary.scalar and .histogram need the `tensorboard` package;
        # tf.summary.write with the plugin's metadata writes the same records.
        metadata = self._tf.compat.v1.SummaryMetadata()
        metadata.plugin_data.plugin_name = plugin
        with self._writer.as_default():
            self._tf.summary.write(tag, self._tf.constant(value), step=step, metadata=metadata)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, layer in self._layers.items():
            stats, histogram = self._layer_stats(name, _slopes(layer).ravel(), epoch)
            self.histograms[name].append(histogram)
            scalars = {f"slope/{name}/{stat}": value for stat, value in stats.items()}
            if logs is not None:
                logs.update(scalars)
            if self._writer is None:
                continue
            if histogram is not None:
                counts, edges = histogram
                # The histograms plugin's format: a row [left edge, right edge, count] per bin.
                buckets = np.stack([edges[:-1], edges[1:], counts], axis=1).astype("float64")
                self._write(f"slope/{name}", buckets, epoch, "histograms")
            if self._scalars_to_tensorboard:
                for tag, value in scalars.items():
                    self._write(tag, np.float32(value), epoch, "scalars")
        if self._writer is not None:
            self._writer.flush()

    def _layer_stats(self, name: str, slopes: np.ndarray, epoch: int):
        """The stats and histogram of one layer's slopes; NaN and None when not finite."""
        stats = dict.fromkeys(("mean", "min", "max"), float("nan"))
        reason = "slopes that are NaN or infinite, so its slope stats are logged as NaN"
        if np.isfinite(slopes).all():
            with np.errstate(over="ignore", invalid="ignore"):  # huge slopes may overflow
                stats = {stat: float(getattr(slopes, stat)()) for stat in stats}
                try:
                    return stats, np.histogram(slopes, self.bins)
                except ValueError:  # a finite range too wide for finite-sized bins
                    reason = "slopes too far apart to bin"
        if name not in self._warned:
            self._warned.add(name)
            warnings.warn(
                f"SlopeMonitor: PReLU layer {name!r} has {reason} at epoch {epoch + 1} "
                "(did training diverge?); its histogram for that epoch is None and not "
                "written. This warning is given once per layer.",
                stacklevel=2,
            )
        return stats, None

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class DeadUnitMonitor(keras.callbacks.Callback):
    """Measures "dying ReLU": the share of units that never turn on.

    After each epoch it runs the model in inference mode on a probe batch.
    For each PReLU, ReLU, LeakyReLU and `Activation("relu")` layer at the top
    level of a functional or Sequential model, it logs `dead_units/<layer>`:
    the fraction of its units (channels, or features) whose input is <= 0
    across the batch; `dead_units` is the fraction over all of them.

    Args:
        probe_data: array, or list or dict of arrays. The probe batch, as the
            model takes its inputs; a few hundred samples are typical.
        batch_size: int. The probe batch runs in chunks of this size.
            Defaults to `256`.
        data_format: string, `"channels_last"` or `"channels_first"`.
            Defaults to `keras.config.image_data_format()` at construction.

    Attributes:
        initial: dict. The fractions before the first epoch.

    Example:

    >>> model.fit(x, y, epochs=5, callbacks=[DeadUnitMonitor(x[:256])])
    """

    def __init__(
        self, probe_data: Any, batch_size: int = 256, data_format: str | None = None
    ) -> None:
        super().__init__()
        arrays = probe_data.values() if isinstance(probe_data, dict) else probe_data
        arrays = list(arrays) if isinstance(probe_data, (dict, list, tuple)) else [probe_data]
        lengths = {array.shape[0] if getattr(array, "shape", None) else None for array in arrays}
        if not arrays or None in lengths or 0 in lengths or len(lengths) != 1:
            shapes = [getattr(array, "shape", type(array).__name__) for array in arrays]
            raise ValueError(
                "`probe_data` must be an array of at least one sample, or a list or dict "
                "of such arrays with the same number of samples, as the model takes its "
                f"inputs. Received: probe_data={type(probe_data).__name__} of {shapes}"
            )
        self.probe_data = probe_data
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.data_format = check_data_format(data_format)
        self.initial: dict[str, float] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
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
            # A functional model's `input` keeps its structure (a tensor, a list or
            # a dict), so the probe takes data as `fit` does; a Sequential has one.
            inputs = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
            pre_activations = [layer.input for layer in layers]
        except (AttributeError, ValueError) as error:
            raise ValueError(
                "DeadUnitMonitor needs a built functional or Sequential model whose "
                f"activation layers are each called once. Model {model.name!r}: {error}"
            ) from error
        expected = [tuple(tensor.shape[1:]) for tensor in keras.tree.flatten(inputs)]
        received = [tuple(array.shape[1:]) for array in keras.tree.flatten(self.probe_data)]
        if len(expected) != len(received) or any(
            len(want) != len(got) or any(w not in (None, g) for w, g in zip(want, got, strict=True))
            for want, got in zip(expected, received, strict=True)
        ):
            raise ValueError(
                f"DeadUnitMonitor: the probe batch does not fit model {model.name!r}, "
                f"whose inputs are (batch, ...) + {expected}. "
                f"Received: probe_data with shapes (batch, ...) + {received}"
            )
        self._names = [layer.name for layer in layers]
        self._probe = keras.Model(inputs, pre_activations)
        self.initial = self._measure()

    def _measure(self) -> dict[str, float]:
        chunks = []  # per chunk, per layer: the units with a positive input
        for start in range(0, len(keras.tree.flatten(self.probe_data)[0]), self.batch_size):
            rows = operator.itemgetter(slice(start, start + self.batch_size))
            outputs = self._probe(keras.tree.map_structure(rows, self.probe_data), training=False)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            chunks.append([self._positive_units(output) for output in outputs])
        alive = [np.any(units, axis=0) for units in zip(*chunks, strict=True)]
        fractions = {
            f"dead_units/{name}": float(1.0 - units.mean())
            for name, units in zip(self._names, alive, strict=True)
        }
        dead = sum(int((~units).sum()) for units in alive)
        fractions["dead_units"] = dead / sum(units.size for units in alive)
        return fractions

    def _positive_units(self, output) -> np.ndarray:
        output = keras.ops.convert_to_numpy(output)
        # Units are channels; a (batch, features) tensor has them last in either format.
        axis = min(channel_axis(self.data_format, output.ndim), output.ndim - 1)
        return np.any(output > 0, axis=tuple(a for a in range(output.ndim) if a != axis))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs.update(self._measure())


def exclude_slopes_from_weight_decay(
    optimizer: keras.optimizers.Optimizer,
    model: keras.Model,
    var_list: list[keras.Variable] | None = None,
    var_names: list[str] | None = None,
) -> list[keras.Variable]:
    """Keeps every PReLU slope of `model` out of the optimizer's weight decay.

    Weight decay pulls the slopes towards ReLU's 0. This passes them to
    `optimizer.exclude_from_weight_decay`, which replaces any earlier
    exclusion: pass the others here. Call it before the first `fit`.

    Args:
        optimizer: `keras.optimizers.Optimizer`, e.g. `AdamW`.
        model: `keras.Model`. A built model whose slopes to exclude.
        var_list: list of variables. Others to exclude. Defaults to `None`.
        var_names: list of strings. Name patterns of others to exclude, as in
            `exclude_from_weight_decay`. Defaults to `None`.

    Returns:
        The list of slope variables now excluded.

    Raises:
        ValueError: if the optimizer is already built or a PReLU layer is not.

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
