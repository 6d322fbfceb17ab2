"""How does PReLU change CNN training? Train one CNN with four activations.

The same CNN (`examples.models`) is trained with `relu`, `leaky_relu`
(fixed slope 0.25, PReLU's initial value), `prelu` (one learned slope per
layer) and `prelu_channelwise` (one learned slope per channel), for several
seeds. It records test accuracy, training curves, dead units
(`keras_prelu.callbacks.DeadUnitMonitor`), learned slopes
(`keras_prelu.callbacks.SlopeMonitor`) and time per epoch, and writes:

- `OUT/results.json`: every number, under `"variants"`;
- `OUT/report.md`: tables and conclusions computed from those numbers;
- `OUT/training_curves.png`, `OUT/dead_units.png`, `OUT/slopes.png`;
- `OUT/logs/<variant>_seed<k>.csv`: the per-epoch logs of each run.

Results are rewritten after each variant, so an interrupted run keeps the
variants it completed.

`--distribute` trains data-parallel over all local devices
(`keras.distribution.DataParallel` on JAX, `tf.distribute.MirroredStrategy`
on TensorFlow; PyTorch is refused). The batch size is global; every split is
cut to a multiple of the device count so that each batch divides evenly.
Under MirroredStrategy, BatchNormalization uses per-replica statistics.

Run: `KERAS_BACKEND=jax python -m examples.compare_activations`
(any backend; `--help` lists the options). The default, scikit-learn's
bundled 8x8 digits, needs no download.
"""

import argparse
import contextlib
import json
import math
import os
import tempfile
import time

import keras
import numpy as np

from examples import activation_report
from examples.activation_report import describe
from examples.models import ACTIVATIONS
from examples.models import INITIAL_SLOPE
from examples.models import build_cnn
from examples.models import build_resnet
from examples.models import describe_model
from keras_prelu.callbacks import DeadUnitMonitor
from keras_prelu.callbacks import SlopeMonitor
from keras_prelu.callbacks import exclude_slopes_from_weight_decay
from keras_prelu.callbacks import prelu_layers

VARIANTS = ACTIVATIONS
DATASETS = ("digits", "fashion_mnist", "cifar10")
OFFLINE_DATASET = "digits"
MODELS = {"cnn": build_cnn, "resnet": build_resnet}
DEFAULT_OUT = os.path.join("runs", "compare_activations")
# The split of the data is fixed; the seeds vary initialisation and shuffling.
SPLIT_SEED = 0


class DatasetUnavailableError(RuntimeError):
    """A dataset that has to be downloaded could not be."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.compare_activations",
        description="Train one CNN with ReLU, LeakyReLU, PReLU and channel-wise PReLU and compare.",
    )
    parser.add_argument(
        "--seeds", type=int, default=4, help="number of seeds per variant (default: 4)"
    )
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (default: 10)")
    parser.add_argument(
        "--dataset",
        default=OFFLINE_DATASET,
        help=f"one of {', '.join(DATASETS)} (default: {OFFLINE_DATASET}, bundled with "
        "scikit-learn; the others are downloaded by keras.datasets)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated subset of {', '.join(VARIANTS)} (default: all)",
    )
    parser.add_argument("--model", default="cnn", help=f"one of {', '.join(MODELS)} (default: cnn)")
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="global batch size (default: 32)"
    )
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="AdamW learning rate (default: 1e-3)"
    )
    parser.add_argument(
        "--slope-init",
        type=float,
        default=INITIAL_SLOPE,
        help=f"initial PReLU slope, and the fixed LeakyReLU slope (default: {INITIAL_SLOPE}, as in He et al. "
        "2015 and torch; 0 starts PReLU as ReLU)",
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=1e-4,
        help="AdamW weight decay, never applied to PReLU slopes (default: 1e-4)",
    )
    parser.add_argument(
        "--probe-size",
        type=int,
        default=256,
        help="training samples in the dead-unit probe batch (default: 256)",
    )
    parser.add_argument(
        "--limit",
        type=int,
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
        choices=(0, 1, 2),
        help="Keras fit verbosity; 1 shows progress bars",
    )
    return parser


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parses and checks the options; bad ones end in `parser.error`."""
    args = parser.parse_args(argv)
    if args.dataset not in DATASETS:
        parser.error(f"unknown --dataset {args.dataset!r}; choose one of: {', '.join(DATASETS)}")
    if args.model not in MODELS:
        parser.error(f"unknown --model {args.model!r}; choose one of: {', '.join(MODELS)}")
    variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown or not variants:
        parser.error(
            f"unknown variant(s) {unknown or variants}; choose from: {', '.join(VARIANTS)}"
        )
    args.variants = list(dict.fromkeys(variants))
    for option in ("seeds", "epochs", "batch_size", "probe_size"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1, got {getattr(args, option)}")
    if not math.isfinite(args.slope_init):
        parser.error(f"--slope-init must be a finite number, got {args.slope_init}")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1, got {args.limit}")
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


def train_once(
    variant: str, seed: int, data: dict, args, distribution: Distribution, log_dir: str
) -> dict:
    """Trains one variant with one seed; returns its numbers."""
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        distribution.trim(*data["splits"][key]) for key in ("train", "val", "test")
    )
    with distribution.scope():
        model = MODELS[args.model](
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
    callbacks = [timer, dead_units]
    if variant.startswith("prelu"):
        callbacks.append(SlopeMonitor())
    callbacks.append(keras.callbacks.CSVLogger(os.path.join(log_dir, f"{variant}_seed{seed}.csv")))
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_val, y_val),
        callbacks=callbacks,
        verbose=args.verbose,
    )
    test = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0, return_dict=True)
    return {
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
        "test_accuracy": float(test["accuracy"]),
        "test_loss": float(test["loss"]),
        "seconds_per_epoch": timer.seconds,
        "dead_units_before_training": dead_units.initial,
        "slopes": {
            name: keras.ops.convert_to_numpy(layer.alpha).ravel().tolist()
            for name, layer in prelu_layers(model).items()
        },
        "params": int(model.count_params()),
    }


def _curves(per_seed) -> dict:
    array = np.asarray(per_seed, dtype="float64")
    return {
        "per_seed": array.tolist(),
        "mean": array.mean(axis=0).tolist(),
        "std": (array.std(axis=0, ddof=1) if len(array) > 1 else np.zeros(array.shape[1])).tolist(),
    }


def summarize(runs: list[dict], initial_slope: float | None = None) -> dict:
    """Aggregates the runs (one per seed) of one variant.

    `initial_slope` is the variant's initial (PReLU) or fixed (LeakyReLU)
    slope; None for ReLU.
    """
    histories = [run["history"] for run in runs]
    layers = [key[len("dead_units/") :] for key in histories[0] if key.startswith("dead_units/")]
    seconds = np.asarray([run["seconds_per_epoch"] for run in runs])
    summary = {
        "params": runs[0]["params"],
        "initial_slope": initial_slope,
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


def save_json(results: dict, path: str) -> None:
    """Writes atomically, so an interrupted run never leaves half a file."""
    directory = os.path.dirname(path) or "."
    with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".tmp", delete=False) as handle:
        json.dump(results, handle, indent=1)
    os.replace(handle.name, path)


def main(argv=None) -> dict:
    parser = build_parser()
    args = parse_args(parser, argv)
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
    if args.distribute:
        if args.batch_size % distribution.devices:
            parser.error(
                f"--batch-size {args.batch_size} must be a multiple of the {distribution.devices} devices"
            )
        print(f"Data-parallel training: {distribution.description}")
        if distribution.devices == 1:
            print(
                "Only one device is visible. To try data parallelism on CPU, start with "
                "XLA_FLAGS=--xla_force_host_platform_device_count=N (JAX), or split the CPU with "
                "tf.config.set_logical_device_configuration before Keras starts (TensorFlow)."
            )
    sizes = {key: len(distribution.trim(*split)[0]) for key, split in data["splits"].items()}
    results = {
        "config": {
            "dataset": args.dataset,
            "model": args.model,
            "model_description": describe_model(args.model),
            "samples": sizes,
            "input_shape": list(data["input_shape"]),
            "seeds": list(range(args.seeds)),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "slope_init": args.slope_init,
            "optimizer": f"AdamW(learning_rate={args.learning_rate}, weight_decay={args.weight_decay}), "
            "no weight decay on PReLU slopes",
            "probe_size": min(args.probe_size, sizes["train"]),
            "distribution": distribution.description,
            "backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "cpu_count": os.cpu_count(),
        },
        "variants": {},
        "pending": list(args.variants),
        "wall_seconds": 0.0,
    }
    start = time.perf_counter()
    try:
        for variant in args.variants:
            runs = []
            for seed in range(args.seeds):
                print(f"=== {variant}, seed {seed + 1}/{args.seeds} ===", flush=True)
                runs.append(train_once(variant, seed, data, args, distribution, log_dir))
            results["variants"][variant] = summarize(
                runs, None if variant == "relu" else args.slope_init
            )
            results["pending"].remove(variant)
            results["wall_seconds"] = time.perf_counter() - start
            save_json(results, os.path.join(args.out, "results.json"))
            activation_report.write(results, args.out)
    finally:
        distribution.close()
    print(
        f"Done in {results['wall_seconds']:.0f} s; wrote {args.out}/results.json, report.md and plots."
    )
    return results


if __name__ == "__main__":
    main()
