"""How does PReLU change CNN training? Train one CNN with four activations.

The same CNN (`examples.models`) is trained with `relu`, `leaky_relu` (slope
fixed at PReLU's initial value), `prelu` (one learned slope per layer) and
`prelu_channelwise` (one learned slope per channel), for several seeds. It
records test accuracy, training curves, dead units
(`keras_prelu.callbacks.DeadUnitMonitor`), learned slopes
(`keras_prelu.callbacks.SlopeMonitor`) and time per epoch, prints a summary
table, and writes:

- `OUT/results.json`: every number (strict JSON: a non-finite number is null);
- `OUT/report.md`: tables and conclusions computed from those numbers;
- `OUT/training_curves.png`, `OUT/dead_units.png`, `OUT/slopes.png`;
- `OUT/logs/<variant>_seed<k>.csv`: the per-epoch logs of each run.

Results are rewritten after each variant. Run again with the same options
into the same `--out`, and it resumes: variants already complete there are
kept, not retrained. Results of other options in that `--out` are never
mixed in: the run is refused. Ctrl-C keeps the complete variants.

A run whose loss or slopes become NaN or infinite stops (Keras's
`TerminateOnNaN`) and is recorded as diverged; the other runs go on.

`--distribute` trains data-parallel over all local devices
(`keras.distribution.DataParallel` on JAX, `tf.distribute.MirroredStrategy`
on TensorFlow; PyTorch is refused). The batch size is global; every split is
cut to a multiple of the device count so that each batch divides evenly.
Under MirroredStrategy, BatchNormalization uses per-replica statistics.

Run from the project root: `KERAS_BACKEND=tensorflow python -m
examples.compare_activations` (any backend; `--help` lists the options).
The default data set, scikit-learn's bundled 8x8 digits, needs no download.
"""

import os
import sys

if not __package__:  # run as a script: `python examples/compare_activations.py`
    # Python put examples/ first on the path, so `examples` would resolve to
    # whichever package of that name is installed (tf2onnx ships one).
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import contextlib
import json
import math
import tempfile
import time

import keras
import numpy as np

import keras_prelu
from examples import activation_report
from examples.activation_report import describe
from examples.models import ACTIVATIONS
from examples.models import BUILDERS
from examples.models import check_slope
from examples.models import describe_model
from keras_prelu.callbacks import DeadUnitMonitor
from keras_prelu.callbacks import SlopeMonitor
from keras_prelu.callbacks import exclude_slopes_from_weight_decay
from keras_prelu.callbacks import prelu_layers

VARIANTS = ACTIVATIONS
DATASETS = ("digits", "fashion_mnist", "cifar10")
OFFLINE_DATASET = "digits"
# AdamW's learning rate per model when --learning-rate is not given. The plain
# model's is where ReLU units die there (examples/README.md has the search).
LEARNING_RATES = {"cnn": 1e-3, "plain": 1e-2, "resnet": 1e-3}
MAX_SEEDS = 100
MAX_EPOCHS = 1000
DEFAULT_OUT = os.path.join("runs", "compare_activations")
# The split of the data is fixed; the seeds vary initialisation and shuffling.
SPLIT_SEED = 0


class DatasetUnavailableError(RuntimeError):
    """A dataset that has to be downloaded could not be."""


def _integer(low: int, high: int | None = None):
    """An argparse type: an int in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be an integer {bounds}. Received: {text!r}")
        return value

    return parse


def _real(minimum: float, inclusive: bool):
    """An argparse type: a finite float above (or at) `minimum`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}. Received: {text!r}")
        return value

    return parse


def _slope(text: str) -> float:
    try:
        return check_slope(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number that is finite in float32. Received: {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.compare_activations",
        description="Train one CNN with ReLU, LeakyReLU, PReLU and channel-wise PReLU and "
        "compare them. Run it from the project root.",
    )
    parser.add_argument(
        "--seeds",
        type=_integer(1, MAX_SEEDS),
        default=4,
        help=f"number of seeds per variant, 1 to {MAX_SEEDS} (default: 4)",
    )
    parser.add_argument(
        "--epochs",
        type=_integer(1, MAX_EPOCHS),
        default=10,
        help=f"epochs per run, 1 to {MAX_EPOCHS} (default: 10)",
    )
    parser.add_argument(
        "--dataset",
        default=OFFLINE_DATASET,
        choices=DATASETS,
        help=f"default: {OFFLINE_DATASET}, bundled with scikit-learn; the others are "
        "downloaded by keras.datasets",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated subset of {', '.join(VARIANTS)} (default: all)",
    )
    parser.add_argument(
        "--model",
        default="cnn",
        choices=tuple(BUILDERS),
        help="cnn: Conv-BatchNorm blocks; plain: a deeper CNN without BatchNorm, where ReLU "
        "units die; resnet: a small ResNet (default: cnn)",
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--batch-size", type=_integer(1, 2**16), default=32, help="global batch size (default: 32)"
    )
    parser.add_argument(
        "--learning-rate",
        type=_real(0, inclusive=False),
        default=None,
        help="AdamW learning rate, > 0 (default: per model: "
        + ", ".join(f"{model} {rate:g}" for model, rate in LEARNING_RATES.items())
        + ")",
    )
    parser.add_argument(
        "--slope-init",
        type=_slope,
        default=keras_prelu.DEFAULT_SLOPE,
        help="initial PReLU slope, and the fixed LeakyReLU slope (default: "
        f"{keras_prelu.DEFAULT_SLOPE}, as in He et al. 2015 and torch; 0 starts PReLU as ReLU)",
    )
    parser.add_argument(
        "--weight-decay",
        type=_real(0, inclusive=True),
        default=1e-4,
        help="AdamW weight decay, >= 0, never applied to PReLU slopes (default: 1e-4)",
    )
    parser.add_argument(
        "--probe-size",
        type=_integer(1, 100_000),
        default=256,
        help="training samples in the dead-unit probe batch (default: 256)",
    )
    parser.add_argument(
        "--limit",
        type=_integer(1),
        default=None,
        help="use at most this many samples of each split (quick trials, tests)",
    )
    parser.add_argument(
        "--distribute",
        action="store_true",
        help="data-parallel training over all local devices: keras.distribution.DataParallel "
        "on JAX, tf.distribute.MirroredStrategy on TensorFlow; not on PyTorch",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=(0, 1),
        help="1: one progress bar per run (default); 0: none",
    )
    return parser


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parses and checks the options; bad ones end in `parser.error`."""
    args = parser.parse_args(argv)
    variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown or not variants:
        parser.error(
            f"argument --variants: unknown variant(s) {unknown or variants}; "
            f"choose from: {', '.join(VARIANTS)}. Received: {args.variants!r}"
        )
    args.variants = [name for name in VARIANTS if name in variants]
    args.learning_rate_source = "--learning-rate"
    if args.learning_rate is None:
        args.learning_rate = LEARNING_RATES[args.model]
        args.learning_rate_source = f"the default for --model {args.model}"
    if args.distribute and keras.backend.backend() not in ("jax", "tensorflow"):
        parser.error(
            f"--distribute is not supported on the {keras.backend.backend()} backend; "
            "run with KERAS_BACKEND=jax (keras.distribution.DataParallel) or "
            "KERAS_BACKEND=tensorflow (tf.distribute.MirroredStrategy)"
        )
    return args


def check_out_dir(path: str) -> None:
    """Raises OSError unless `path` exists (or can be made) and takes files."""
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path):
        pass


def _split(x, y, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)


def load_dataset(name: str, limit: int | None = None) -> dict:
    """Returns float32 NHWC images in [0, 1] and int labels, split three ways.

    Raises:
        ValueError: for an unknown name.
        DatasetUnavailableError: when a `keras.datasets` download fails.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {DATASETS}.")
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = (digits.images / 16.0).astype("float32")[..., None]
        x_rest, x_test, y_rest, y_test = _split(x, digits.target, 0.2, SPLIT_SEED)
        x_train, x_val, y_train, y_val = _split(x_rest, y_rest, 0.15, SPLIT_SEED)
    else:
        module = getattr(keras.datasets, name)
        try:
            (x_rest, y_rest), (x_test, y_test) = module.load_data()
        except Exception as error:  # the download raises many kinds of errors
            raise DatasetUnavailableError(
                f"Could not load {name} through keras.datasets, which downloads it "
                f"({type(error).__name__}: {error}). Offline? Use --dataset {OFFLINE_DATASET} "
                "(the default), which scikit-learn ships and needs no download."
            ) from error
        x_rest, x_test = (np.asarray(a, "float32") / 255.0 for a in (x_rest, x_test))
        if x_rest.ndim == 3:
            x_rest, x_test = x_rest[..., None], x_test[..., None]
        y_rest, y_test = np.ravel(y_rest), np.ravel(y_test)
        x_train, x_val, y_train, y_val = _split(x_rest, y_rest, 0.1, SPLIT_SEED)
    splits = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
    if limit is not None:
        splits = {key: (x[:limit], y[:limit]) for key, (x, y) in splits.items()}
    return {
        "name": name,
        "splits": {
            key: (np.asarray(x, "float32"), np.asarray(y, "int32"))
            for key, (x, y) in splits.items()
        },
        "input_shape": tuple(int(d) for d in x_train.shape[1:]),
        "num_classes": int(max(y_train.max(), y_test.max()) + 1),
    }


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds per epoch, training plus validation (list it first)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class EpochProgress(keras.callbacks.Callback):
    """One progress bar over all epochs of a `fit`, with training loss and accuracy."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_train_begin(self, logs=None):
        self._bar = keras.utils.Progbar(
            self.epochs, unit_name="epoch", stateful_metrics=("loss", "accuracy")
        )
        self._done = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self._done = epoch + 1
        self._bar.update(self._done, [(k, logs[k]) for k in ("loss", "accuracy") if k in logs])

    def on_train_end(self, logs=None):
        if self._done < self.epochs:  # stopped early: end the bar's line
            self._bar.update(self._done, finalize=True)


class Distribution:
    """Where a run's variables live: one device, or data-parallel over all."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.devices = 1
        self.description = "single device"
        self._strategy = None
        if not enabled:
            return
        backend = keras.backend.backend()
        if backend == "jax":
            devices = keras.distribution.list_devices()
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
            self.devices = len(devices)
            self.description = f"keras.distribution.DataParallel over {devices}"
        elif backend == "tensorflow":
            import tensorflow as tf

            devices = [d.name for d in tf.config.list_logical_devices("GPU")]
            devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
            self._strategy = tf.distribute.MirroredStrategy(devices=devices)
            self.devices = self._strategy.num_replicas_in_sync
            self.description = f"tf.distribute.MirroredStrategy over {devices}"
        else:
            raise ValueError(f"Data-parallel training is not supported on the {backend} backend.")

    def scope(self):
        if self._strategy is not None:
            return self._strategy.scope()
        # keras.distribution (JAX) is global, so there is no scope to enter.
        return contextlib.nullcontext()

    def close(self) -> None:
        if self.enabled and keras.backend.backend() == "jax":
            keras.distribution.set_distribution(None)

    def trim(self, x, y):
        """Drops the last few samples so every batch splits evenly over the devices."""
        keep = len(x) - len(x) % self.devices
        return x[:keep], y[:keep]


def log_path(log_dir: str, variant: str, seed: int) -> str:
    return os.path.join(log_dir, f"{variant}_seed{seed}.csv")


def _first_non_finite_epoch(history: dict, slopes: dict) -> int | None:
    """The first epoch (from 1) with a non-finite loss or slope statistic, or None."""
    keys = [key for key in history if key.endswith("loss") or key.startswith("slope/")]
    bad = [
        epoch
        for key in keys
        for epoch, value in enumerate(history[key], start=1)
        if not math.isfinite(value)
    ]
    if bad:
        return min(bad)
    if not all(np.isfinite(values).all() for values in slopes.values()):
        return len(history["loss"])
    return None


def train_once(
    variant: str, seed: int, data: dict, args, distribution: Distribution, log_dir: str
) -> dict:
    """Trains one variant with one seed; returns its numbers.

    A diverged run (a NaN or infinite loss stops it) has `diverged_at` set to
    the epoch, its history padded with NaN to `args.epochs`, and NaN test
    numbers: the accuracy of a network of NaNs would mean nothing.
    """
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        distribution.trim(*data["splits"][key]) for key in ("train", "val", "test")
    )
    with distribution.scope():
        model = BUILDERS[args.model](
            variant,
            input_shape=data["input_shape"],
            num_classes=data["num_classes"],
            slope=args.slope_init,
        )
        optimizer = keras.optimizers.AdamW(
            learning_rate=args.learning_rate, weight_decay=args.weight_decay
        )
        exclude_slopes_from_weight_decay(optimizer, model)
        model.compile(
            optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    timer = EpochTimer()
    dead_units = DeadUnitMonitor(x_train[: args.probe_size], data_format="channels_last")
    # Monitors before CSVLogger, which writes the logs they add.
    callbacks = [timer, dead_units]
    if variant.startswith("prelu"):
        callbacks.append(SlopeMonitor())
    callbacks += [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(log_path(log_dir, variant, seed)),
    ]
    if args.verbose:
        callbacks.append(EpochProgress(args.epochs))
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_val, y_val),
        callbacks=callbacks,
        verbose=0,
    ).history
    slopes = {
        name: keras.ops.convert_to_numpy(layer.alpha).ravel()
        for name, layer in prelu_layers(model).items()
    }
    diverged_at = _first_non_finite_epoch(history, slopes)
    missing = args.epochs - len(history["loss"])
    history = {
        key: [float(v) for v in values] + [math.nan] * missing for key, values in history.items()
    }
    if diverged_at is None:
        test = model.evaluate(
            x_test, y_test, batch_size=args.batch_size, verbose=0, return_dict=True
        )
    else:
        test = {"accuracy": math.nan, "loss": math.nan}
    return {
        "history": history,
        "diverged_at": diverged_at,
        "test_accuracy": float(test["accuracy"]),
        "test_loss": float(test["loss"]),
        "seconds_per_epoch": timer.seconds + [math.nan] * missing,
        "dead_units_before_training": dead_units.initial,
        "slopes": {name: values.tolist() for name, values in slopes.items()},
        "params": int(model.count_params()),
    }


def _curves(per_seed) -> dict:
    array = np.asarray(per_seed, dtype="float64")
    return {
        "per_seed": array.tolist(),
        "mean": array.mean(axis=0).tolist(),
        "std": (array.std(axis=0, ddof=1) if len(array) > 1 else np.zeros(array.shape[1])).tolist(),
    }


def summarize(runs: list[dict], initial_slope: float | None, wall_seconds: float) -> dict:
    """Aggregates the runs (one per seed, in seed order) of one variant.

    `initial_slope` is the variant's initial (PReLU) or fixed (LeakyReLU)
    slope; None for ReLU.
    """
    histories = [run["history"] for run in runs]
    layers = [key[len("dead_units/") :] for key in histories[0] if key.startswith("dead_units/")]
    seconds = np.asarray([run["seconds_per_epoch"] for run in runs])
    summary = {
        "params": runs[0]["params"],
        "initial_slope": initial_slope,
        "wall_seconds": wall_seconds,
        "diverged": [
            {"seed": seed, "epoch": run["diverged_at"]}
            for seed, run in enumerate(runs)
            if run["diverged_at"] is not None
        ],
        "test_accuracy": describe(run["test_accuracy"] for run in runs),
        "test_loss": describe(run["test_loss"] for run in runs),
        "curves": {
            key: _curves([h[key] for h in histories])
            for key in ("loss", "accuracy", "val_loss", "val_accuracy")
        },
        "dead_units": {
            "layers": layers,
            "before_training": {
                name: describe(
                    run["dead_units_before_training"][f"dead_units/{name}"] for run in runs
                )
                for name in layers
            },
            "per_epoch": {
                name: _curves([h[f"dead_units/{name}"] for h in histories]) for name in layers
            },
            "total_before_training": describe(
                run["dead_units_before_training"]["dead_units"] for run in runs
            ),
            "total_per_epoch": _curves([h["dead_units"] for h in histories]),
            "total_worst_epoch": describe(max(h["dead_units"]) for h in histories),
            "total_last_epoch": describe(h["dead_units"][-1] for h in histories),
        },
        "seconds_per_epoch": {
            "per_seed": seconds.tolist(),
            # The first epoch includes tracing and compilation.
            "first_epoch": describe(seconds[:, 0]),
            "later_epochs": describe(seconds[:, 1:].mean(axis=1)) if seconds.shape[1] > 1 else None,
        },
    }
    if runs[0]["slopes"]:
        summary["slopes"] = {}
        for depth, name in enumerate(runs[0]["slopes"], start=1):
            values = np.asarray([run["slopes"][name] for run in runs])
            summary["slopes"][name] = {
                "depth": depth,
                "count": int(values.shape[1]),
                "per_seed": values.tolist(),
                "mean": describe(values.mean(axis=1)),
                "min": float(values.min()),
                "max": float(values.max()),
                "mean_per_epoch": _curves([h[f"slope/{name}/mean"] for h in histories]),
            }
    return summary


def strict(value):
    """`value` with every non-finite float replaced by None, as strict JSON needs."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(item) for item in value]
    return value


def save_results(results: dict, out_dir: str) -> dict:
    """Writes results.json (strict JSON), report.md and figures; returns the strict form."""
    clean = strict(results)
    text = json.dumps(clean, indent=1, allow_nan=False)
    activation_report.write_atomic(os.path.join(out_dir, "results.json"), text)
    activation_report.write(clean, out_dir)
    return clean


def _config(args, data: dict, distribution: Distribution) -> dict:
    """What defines the results: a resumed run must match it exactly."""
    sizes = {key: len(distribution.trim(*split)[0]) for key, split in data["splits"].items()}
    model = BUILDERS[args.model](
        VARIANTS[0],
        input_shape=data["input_shape"],
        num_classes=data["num_classes"],
        slope=args.slope_init,
    )
    return {
        "dataset": args.dataset,
        "model": args.model,
        "model_description": describe_model(model),
        "batch_norm": any(isinstance(x, keras.layers.BatchNormalization) for x in model.layers),
        "samples": sizes,
        "input_shape": list(data["input_shape"]),
        "seeds": list(range(args.seeds)),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "slope_init": args.slope_init,
        "learning_rate": args.learning_rate,
        "learning_rate_source": args.learning_rate_source,
        "weight_decay": args.weight_decay,
        "optimizer": f"AdamW(learning_rate={args.learning_rate:g}, "
        f"weight_decay={args.weight_decay:g}), no weight decay on PReLU slopes",
        "probe_size": min(args.probe_size, sizes["train"]),
        "distribution": distribution.description,
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
    }


def completed_variants(out_dir: str, config: dict) -> dict:
    """The variants already complete in `out_dir` with exactly this `config`.

    Raises:
        ValueError: `out_dir` holds results that cannot be read, or of another
            configuration.
    """
    path = os.path.join(out_dir, "results.json")
    if not os.path.exists(path):
        return {}
    try:
        previous = activation_report.load(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"its results.json cannot be resumed: {error}") from error
    # Through JSON, so that tuples and lists, ints and floats compare alike.
    config = json.loads(json.dumps(config))
    differences = [
        f"{key} {previous['config'].get(key)!r} there, {value!r} now"
        for key, value in config.items()
        # Where the learning rate came from does not change the results; its value does.
        if previous["config"].get(key) != value and key != "learning_rate_source"
    ]
    if differences:
        raise ValueError(
            "it holds results of another configuration ("
            + "; ".join(differences)
            + "), which would be mixed with these"
        )
    return previous["variants"]


def main(argv=None) -> dict:
    """Runs the experiment; returns the results in their `results.json` form.

    Ctrl-C ends it with exit status 130 and keeps what was complete.
    """
    parser = build_parser()
    args = parse_args(parser, argv)
    try:
        return run(parser, args)
    except KeyboardInterrupt:  # before training; during it, `run` says what it kept
        print("\nInterrupted before training started: nothing was written.", file=sys.stderr)
        raise SystemExit(130) from None


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """The experiment with parsed options; bad circumstances end in `parser.error`."""
    try:
        check_out_dir(args.out)
    except OSError as error:
        parser.error(f"--out {args.out!r} cannot be written: {error}")
    try:
        data = load_dataset(args.dataset, args.limit)
    except DatasetUnavailableError as error:
        parser.error(str(error))
    log_dir = os.path.join(args.out, "logs")
    os.makedirs(log_dir, exist_ok=True)

    distribution = Distribution(args.distribute)
    try:
        return _train_all(parser, args, data, log_dir, distribution)
    finally:
        distribution.close()


def _train_all(parser, args, data: dict, log_dir: str, distribution: Distribution) -> dict:
    """Trains every pending variant and seed, saving after each variant."""
    if args.distribute:
        if args.batch_size % distribution.devices:
            parser.error(
                f"--batch-size {args.batch_size} must be a multiple of the "
                f"{distribution.devices} devices"
            )
        print(f"Data-parallel training: {distribution.description}")
        if distribution.devices == 1:
            print(
                "Only one device is visible. To try data parallelism on CPU, start with "
                "XLA_FLAGS=--xla_force_host_platform_device_count=N (JAX), or split the CPU with "
                "tf.config.set_logical_device_configuration before Keras starts (TensorFlow)."
            )
    config = _config(args, data, distribution)
    try:
        done = completed_variants(args.out, config)
    except ValueError as error:
        parser.error(
            f"--out {args.out!r}: {error}. Choose another --out, or delete "
            f"{os.path.join(args.out, 'results.json')} to start over."
        )
    results = {
        "config": config,
        "machine": {"cpu_count": os.cpu_count()},
        "variants": done,
        "pending": [name for name in args.variants if name not in done],
    }
    if done:
        print(
            f"Resuming in {args.out}: {', '.join(done)} already complete with these options; "
            f"to train: {', '.join(results['pending']) or 'nothing'}."
        )
    current = None
    try:
        for variant in list(results["pending"]):
            runs = []
            start = time.perf_counter()
            slope = None if variant == "relu" else args.slope_init
            for seed in config["seeds"]:
                current = log_path(log_dir, variant, seed)
                if args.verbose:
                    name = activation_report.label(variant, slope)
                    print(f"{name}, seed {seed + 1}/{args.seeds}", flush=True)
                runs.append(train_once(variant, seed, data, args, distribution, log_dir))
            current = None
            results["variants"][variant] = summarize(runs, slope, time.perf_counter() - start)
            results["variants"] = {
                name: results["variants"][name] for name in VARIANTS if name in results["variants"]
            }
            results["pending"].remove(variant)
            results = save_results(results, args.out)
    except KeyboardInterrupt:
        if current is not None and os.path.exists(current):
            os.remove(current)
        kept = ", ".join(results["variants"]) or "nothing (no variant was complete)"
        removed = f"; removed the partial log {current}" if current else ""
        print(f"\nInterrupted: kept {kept} in {args.out}{removed}.", file=sys.stderr)
        raise SystemExit(130) from None
    print()
    print(activation_report.summary_text(results))
    print(f"Wrote {args.out}/results.json, report.md, figures and logs/.")
    return results


if __name__ == "__main__":
    main()
