"""SlopeMonitor, DeadUnitMonitor and exclude_slopes_from_weight_decay."""

import csv
import glob
import importlib.util
import math
import os

import keras
import numpy as np
import pytest

import keras_prelu
from keras_prelu.callbacks import DeadUnitMonitor
from keras_prelu.callbacks import SlopeMonitor
from keras_prelu.callbacks import exclude_slopes_from_weight_decay
from keras_prelu.callbacks import prelu_layers

RNG = np.random.default_rng(0)
X = RNG.standard_normal((24, 6, 6, 2)).astype("float32")
Y = RNG.integers(0, 3, 24).astype("int32")


def _prelu_model():
    """Two slope layouts of ours and Keras's own PReLU, in one small CNN."""
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(4, 3, data_format="channels_last"),
            keras_prelu.PReLU(layout="channelwise", data_format="channels_last", name="p1"),
            keras.layers.GlobalAveragePooling2D(data_format="channels_last"),
            keras.layers.Dense(5),
            keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.1), name="p2"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def _fit(model, callbacks, epochs=2, optimizer="sgd"):
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model.fit(X, Y, batch_size=8, epochs=epochs, callbacks=callbacks, verbose=0)


def _alpha(layer):
    return keras.ops.convert_to_numpy(layer.alpha).ravel()


def test_slope_monitor_writes_stats_into_history_and_csv(tmp_path):
    model = _prelu_model()
    monitor = SlopeMonitor(bins=5)
    path = tmp_path / "log.csv"
    history = _fit(model, [monitor, keras.callbacks.CSVLogger(str(path))])
    for name in ("p1", "p2"):
        slopes = _alpha(model.get_layer(name))
        for stat, expected in (
            ("mean", slopes.mean()),
            ("min", slopes.min()),
            ("max", slopes.max()),
        ):
            values = history.history[f"slope/{name}/{stat}"]
            assert len(values) == 2
            np.testing.assert_allclose(values[-1], expected, rtol=1e-6)
        assert len(monitor.histograms[name]) == 2
        counts, edges = monitor.histograms[name][-1]
        assert counts.sum() == slopes.size and len(edges) == 6
    # The slopes moved away from their initial value during training.
    assert history.history["slope/p1/mean"][0] != pytest.approx(0.25, abs=1e-7)
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    np.testing.assert_allclose(
        float(rows[1]["slope/p2/max"]), history.history["slope/p2/max"][1], rtol=1e-6
    )


def _epoch_logs(monitor, epochs=1):
    logs = []
    for epoch in range(epochs):
        logs.append({})
        monitor.on_epoch_end(epoch, logs[-1])
    return logs


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_slope_monitor_survives_non_finite_slopes(bad):
    model = _prelu_model()
    p1 = model.get_layer("p1")
    p1.alpha.assign(np.array([0.1, bad, 0.2, 0.3], "float32").reshape(1, 1, 4))
    monitor = SlopeMonitor(bins=5)
    monitor.set_model(model)
    monitor.on_train_begin()
    with pytest.warns(UserWarning, match="'p1' has slopes that are NaN or infinite") as caught:
        logs = _epoch_logs(monitor, epochs=2)
    ours = [w for w in caught if str(w.message).startswith("SlopeMonitor")]
    assert len(ours) == 1  # once per layer, not once per epoch
    for epoch_logs in logs:
        for stat in ("mean", "min", "max"):
            assert math.isnan(epoch_logs[f"slope/p1/{stat}"])
        assert epoch_logs["slope/p2/mean"] == pytest.approx(0.1)  # the healthy layer
    assert monitor.histograms["p1"] == [None, None]
    assert monitor.histograms["p2"][0][0].sum() == 5
    monitor.on_train_begin()  # a new fit warns again
    with pytest.warns(UserWarning, match="'p1'"):
        _epoch_logs(monitor)


def test_slope_monitor_marks_slopes_too_far_apart_to_bin():
    # Finite float64 slopes whose range overflows: numpy cannot make the bins.
    model = keras.Sequential(
        [keras.Input((2,)), keras_prelu.PReLU(name="p", dtype="float64", alpha_initializer=1.0)]
    )
    model.get_layer("p").alpha.assign(np.array([-1e308, 1e308]))
    monitor = SlopeMonitor()
    monitor.set_model(model)
    monitor.on_train_begin()
    with pytest.warns(UserWarning, match="too far apart to bin"):
        (logs,) = _epoch_logs(monitor)
    assert logs["slope/p/max"] == 1e308 and monitor.histograms["p"] == [None]


def test_slope_monitor_finds_layers_of_nested_models():
    inner = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(3), keras_prelu.PReLU(name="p")], name="inner"
    )
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.PReLU(name="outer_p")(inner(inputs)))
    assert list(prelu_layers(model)) == ["inner/p", "outer_p"]
    monitor = SlopeMonitor()
    monitor.set_model(model)
    monitor.on_train_begin()
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert logs["slope/inner/p/mean"] == pytest.approx(0.25)
    assert logs["slope/outer_p/max"] == pytest.approx(0.0)


def test_slope_monitor_warns_on_a_model_without_prelu():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="relu")])
    monitor = SlopeMonitor()
    monitor.set_model(model)
    with pytest.warns(UserWarning, match="no PReLU layer"):
        monitor.on_train_begin()
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert logs == {}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"bins": 0}, "Received: bins=0"),
        ({"bins": 2.5}, "bins=2.5"),
        ({"tensorboard": 3}, "tensorboard=3"),
    ],
)
def test_slope_monitor_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SlopeMonitor(**kwargs)


def _events(directory):
    import tensorflow as tf

    found = {}
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append(
                    (
                        event.step,
                        value.metadata.plugin_data.plugin_name,
                        tf.make_ndarray(value.tensor),
                    )
                )
    return found


@pytest.mark.requires_backend("tensorflow")
def test_slope_monitor_writes_tensorboard_histograms_and_scalars(tmp_path):
    # Reason for the TF-only marker: summaries are written with tf.summary on
    # every backend; the TF process already has TensorFlow loaded.
    model = _prelu_model()
    history = _fit(model, [SlopeMonitor(bins=4, tensorboard=str(tmp_path))])
    events = _events(str(tmp_path))
    histograms = events["slope/p1"]
    assert [step for step, _, _ in histograms] == [0, 1]
    step, plugin, buckets = histograms[-1]
    assert plugin == "histograms" and buckets.shape == (4, 3)
    assert buckets[:, 2].sum() == 4  # four channel slopes
    np.testing.assert_allclose(buckets[0, 0], _alpha(model.get_layer("p1")).min(), rtol=1e-6)
    step, plugin, value = events["slope/p2/mean"][-1]
    assert plugin == "scalars"
    np.testing.assert_allclose(value, history.history["slope/p2/mean"][-1], rtol=1e-6)


@pytest.mark.requires_backend("tensorflow")
def test_slope_monitor_sends_histograms_to_the_tensorboard_callbacks_train_run(tmp_path):
    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path))
    callbacks = [SlopeMonitor(tensorboard=board)]
    has_tensorboard = importlib.util.find_spec("tensorboard") is not None
    if has_tensorboard:  # keras.callbacks.TensorBoard itself needs the package.
        callbacks.append(board)
    _fit(_prelu_model(), callbacks)
    events = _events(str(tmp_path / "train"))
    assert events["slope/p1"][0][1] == "histograms"
    # Scalars reach TensorBoard through the logs, via the TensorBoard callback.
    assert "slope/p1/mean" not in events
    if has_tensorboard:
        assert "epoch_slope/p1/mean" in events


def _activation_zoo(data_format=None):
    """Every watched kind of activation layer, plus tanh, which is not watched."""
    return keras.Sequential(
        [
            keras.Input((2, 2, 3)),
            keras_prelu.PReLU(name="ours"),
            keras.layers.ReLU(name="relu"),
            keras.layers.Activation("relu", name="activation_relu"),
            keras.layers.LeakyReLU(name="leaky"),
            keras.layers.PReLU(name="keras_prelu"),
            keras.layers.Activation("tanh", name="tanh"),
        ]
    )


def _zoo_data():
    # Channel 0 is negative everywhere, channel 2 is zero everywhere, channel 1
    # is positive in one position of one sample only.
    x = np.full((5, 2, 2, 3), -1.0, "float32")
    x[..., 2] = 0.0
    x[3, 1, 0, 1] = 2.0
    return x


def _measure(monitor, model):
    monitor.set_model(model)
    monitor.on_train_begin()
    logs = {}
    monitor.on_epoch_end(0, logs)
    return logs


@pytest.mark.parametrize("batch_size", [1, 2, 256])
def test_dead_unit_monitor_counts_channels_without_positive_input(batch_size):
    logs = _measure(
        DeadUnitMonitor(_zoo_data(), batch_size=batch_size, data_format="channels_last"),
        _activation_zoo(),
    )
    expected = {
        f"dead_units/{name}": 2 / 3
        for name in ("ours", "relu", "activation_relu", "leaky", "keras_prelu")
    }
    expected["dead_units"] = 2 / 3
    assert logs == pytest.approx(expected)


def test_dead_unit_monitor_channels_first_reads_axis_1():
    # On axis 1 each "channel" is a row of the image, and row 1 holds the one
    # positive value: one of the two rows is alive.
    logs = _measure(DeadUnitMonitor(_zoo_data(), data_format="channels_first"), _activation_zoo())
    assert logs["dead_units/relu"] == pytest.approx(0.5)


def test_dead_unit_monitor_feeds_history_and_keeps_initial_values():
    model = _prelu_model()
    monitor = DeadUnitMonitor(X[:16], data_format="channels_last")
    history = _fit(model, [monitor], epochs=2)
    for key in ("dead_units/p1", "dead_units/p2", "dead_units"):
        assert len(history.history[key]) == 2
        assert 0.0 <= history.history[key][-1] <= 1.0
    assert set(monitor.initial) == {"dead_units/p1", "dead_units/p2", "dead_units"}
    # The total weighs layers by their units: 4 channels and 5 features.
    total = (
        4 * history.history["dead_units/p1"][-1] + 5 * history.history["dead_units/p2"][-1]
    ) / 9
    assert history.history["dead_units"][-1] == pytest.approx(total)


def test_dead_unit_monitor_takes_several_inputs():
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    model = keras.Model({"a": a, "b": b}, keras.layers.ReLU(name="r")(keras.layers.Add()([a, b])))
    data = {"a": -np.ones((4, 3), "float32"), "b": np.zeros((4, 3), "float32")}
    data["b"][2, 1] = 5.0
    logs = _measure(DeadUnitMonitor(data, batch_size=3), model)
    assert logs["dead_units/r"] == pytest.approx(2 / 3)


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(3)
        self.act = keras.layers.ReLU()

    def call(self, x):
        return self.act(self.dense(x))


def test_dead_unit_monitor_explains_what_it_cannot_probe():
    fused = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="relu")])
    with pytest.raises(ValueError, match="no activation layer.*fused"):
        _measure(DeadUnitMonitor(np.ones((2, 3), "float32")), fused)
    subclassed = _Subclassed()
    subclassed(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="functional or Sequential"):
        _measure(DeadUnitMonitor(np.ones((2, 3), "float32")), subclassed)
    with pytest.raises(ValueError, match="batch_size=0"):
        DeadUnitMonitor(np.ones((2, 3)), batch_size=0)
    with pytest.raises(ValueError, match="data_format='NHWC'"):
        DeadUnitMonitor(np.ones((2, 3)), data_format="NHWC")


def _decay_step(optimizer, model):
    """One AdamW step with zero gradients: only weight decay moves a variable."""
    variables = model.trainable_variables
    before = {v.path: keras.ops.convert_to_numpy(v) for v in variables}
    optimizer.apply_gradients([(keras.ops.zeros(v.shape, v.dtype), v) for v in variables])
    return before, {v.path: keras.ops.convert_to_numpy(v) for v in variables}


def test_slopes_are_excluded_from_weight_decay_and_others_are_not():
    model = _prelu_model()
    optimizer = keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    excluded = exclude_slopes_from_weight_decay(optimizer, model)
    assert {v.path for v in excluded} == {model.get_layer(n).alpha.path for n in ("p1", "p2")}
    before, after = _decay_step(optimizer, model)
    for path in before:
        if path.endswith("alpha"):
            np.testing.assert_array_equal(after[path], before[path])
        elif path.endswith("kernel"):
            np.testing.assert_allclose(after[path], before[path] * (1 - 0.1 * 0.5), rtol=1e-6)


def test_weight_decay_exclusion_keeps_extra_variables_and_names():
    model = _prelu_model()
    optimizer = keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    last_kernel = model.layers[-1].kernel
    exclude_slopes_from_weight_decay(optimizer, model, var_list=[last_kernel], var_names=["bias"])
    before, after = _decay_step(optimizer, model)
    for path in before:
        kept = path.endswith(("alpha", "bias")) or path == last_kernel.path
        assert np.array_equal(after[path], before[path]) == kept, path


def test_weight_decay_exclusion_needs_built_model_and_unbuilt_optimizer():
    unbuilt = keras.Sequential([keras.layers.Dense(2), keras_prelu.PReLU()])
    with pytest.raises(ValueError, match="not built"):
        exclude_slopes_from_weight_decay(keras.optimizers.AdamW(), unbuilt)
    model = _prelu_model()
    optimizer = keras.optimizers.AdamW()
    optimizer.build(model.trainable_variables)
    with pytest.raises(ValueError, match="before the optimizer is built"):
        exclude_slopes_from_weight_decay(optimizer, model)


def test_weight_decay_exclusion_of_a_reparameterized_slope():
    """A subclass whose `alpha` is computed from another variable (alpha = c * v)
    gets that variable excluded (it raised on TensorFlow before)."""

    class ScaledPReLU(keras_prelu.PReLU):
        @property
        def alpha(self):
            return keras.ops.multiply(10.0, self.v)

        @alpha.setter
        def alpha(self, variable):
            self.v = variable

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), ScaledPReLU(name="p")])
    optimizer = keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    excluded = exclude_slopes_from_weight_decay(optimizer, model)
    assert [v.path for v in excluded] == [model.get_layer("p").v.path]
    before, after = _decay_step(optimizer, model)
    np.testing.assert_array_equal(after[excluded[0].path], before[excluded[0].path])


@pytest.mark.parametrize(
    "probe",
    [
        None,
        np.zeros((0, 3), "float32"),
        [],
        [[1.0, 2.0, 3.0]],
        "x",
        [np.ones((2, 3)), np.ones((3, 3))],
    ],
    ids=["none", "empty", "empty_list", "nested_list", "string", "unequal_lengths"],
)
def test_dead_unit_monitor_checks_its_probe_when_made(probe):
    with pytest.raises(ValueError, match=r"`probe_data` must be an array.*Received: probe_data="):
        DeadUnitMonitor(probe)


def test_dead_unit_monitor_names_itself_for_a_probe_of_the_wrong_width():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.ReLU()])
    model.compile("sgd", "mse")
    monitor = DeadUnitMonitor(np.ones((2, 5), "float32"))
    with pytest.raises(ValueError, match=r"DeadUnitMonitor: the probe batch does not fit"):
        model.fit(np.ones((4, 3)), np.ones((4, 4)), epochs=1, verbose=0, callbacks=[monitor])
