"""
Title: How does PReLU change CNN training?
Author: keras_prelu contributors
Date created: 2026/11/30
Last modified: 2026/12/04
Description: One CNN trained with ReLU, LeakyReLU and PReLU over paired seeds, learning
rates chosen on validation data, and the slopes' own learning rate.

## Introduction

The blog post "How does using a PReLU activation function affect CNN training?" claims
that PReLU, compared with ReLU, keeps units from dying, speeds up convergence, raises
accuracy, and that the slope's learning rate matters. This example trains one small CNN
with `relu`, `leaky_relu` ("PReLU without learning"), `prelu` and `prelu_channelwise`,
compared seed by seed. examples/README.md describes the options and outputs.

Run from the project root: `KERAS_BACKEND=tensorflow python -m examples.compare_activations`.
"""

import os
import sys

if not __package__:  # run as a script: `python examples/compare_activations.py`
    # Python put examples/ first on the path, so `examples` would resolve to
    # whichever package of that name is installed (tf2onnx ships one).
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import json
import math
import time

import keras
import numpy as np

import keras_prelu
from examples import activation_report as report
from examples.models import ACTIVATIONS
from examples.models import BUILDERS
from examples.models import describe_model
from keras_prelu.callbacks import DeadUnitMonitor
from keras_prelu.callbacks import SlopeMonitor
from keras_prelu.callbacks import exclude_slopes_from_weight_decay
from keras_prelu.callbacks import prelu_layers

# AdamW's learning rate per model when --learning-rates is not given. The plain
# model's is one where ReLU units die there (examples/README.md).
LEARNING_RATES = {"cnn": 1e-3, "plain": 1e-2, "resnet": 1e-3}
DATASETS = ("digits", "fashion_mnist", "cifar10")
# The split of the data is fixed; the seeds vary initialisation and shuffling.
SPLIT_SEED = 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.compare_activations",
        description="Train one CNN with ReLU, LeakyReLU and PReLU and compare them, seed by "
        "seed. Run it from the project root.",
    )
    add = parser.add_argument
    add("--out", default=os.path.join("runs", "compare_activations"), help="a new or empty folder")
    add("--model", default="cnn", choices=tuple(BUILDERS), help="default: cnn")
    add("--variants", default=",".join(ACTIVATIONS), help="comma-separated (default: all four)")
    add("--dataset", default="digits", choices=DATASETS, help="only digits needs no download")
    add("--seeds", type=int, default=4, help="seeds per variant (default: 4)")
    add("--epochs", type=int, default=10, help="default: 10")
    add(
        "--learning-rates",
        "--learning-rate",
        type=float,
        nargs="+",
        help="AdamW's; with several, each variant's is chosen on validation accuracy (default: "
        + ", ".join(f"{model} {rate:g}" for model, rate in LEARNING_RATES.items())
        + ")",
    )
    add(
        "--slope-lr-scale",
        type=float,
        nargs="+",
        default=[1.0],
        help="train the PReLU slopes c times as fast as the other weights, for each c; "
        "1 is always included (default: 1)",
    )
    add("--weight-decay", type=float, default=1e-4, help="AdamW's, never on the slopes")
    add(
        "--slope-init",
        type=float,
        default=keras_prelu.DEFAULT_SLOPE,
        help="PReLU's initial slope and LeakyReLU's fixed one (default: 0.25)",
    )
    add("--batch-size", type=int, default=32, help="default: 32")
    add("--probe-size", type=int, default=256, help="training images probed for dead units")
    add("--limit", type=int, default=None, help="at most this many images per split (tests)")
    add("--verbose", type=int, default=1, choices=(0, 1), help="1: one line per run")
    return parser


"""
## Prepare the data

The validation split, carved from the training data, is what learning rates are chosen
on; the test split is only evaluated.
"""


def load_dataset(name: str, limit: int | None = None) -> dict:
    """Float32 NHWC images in [0, 1] and int labels, split into train, val and test."""
    from sklearn.model_selection import train_test_split

    if name == "digits":  # scikit-learn's bundled 8x8 digits: no download
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x_rest, x_test, y_rest, y_test = train_test_split(
            x.reshape(-1, 8, 8, 1) / 16, y, test_size=0.2, random_state=SPLIT_SEED, stratify=y
        )
        val_fraction = 0.15
    else:
        (x_rest, y_rest), (x_test, y_test) = getattr(keras.datasets, name).load_data()
        x_rest, x_test = x_rest.astype("float32") / 255, x_test.astype("float32") / 255
        if x_rest.ndim == 3:
            x_rest, x_test = x_rest[..., None], x_test[..., None]
        y_rest, y_test, val_fraction = y_rest.ravel(), y_test.ravel(), 0.1
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_fraction, random_state=SPLIT_SEED, stratify=y_rest
    )
    splits = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
    return {
        key: (np.asarray(x[:limit], "float32"), np.asarray(y[:limit], "int32"))
        for key, (x, y) in splits.items()
    }


"""
## Train one run

The library's `DeadUnitMonitor` and `SlopeMonitor` record dead units and slopes after
every epoch; Keras's `TerminateOnNaN` stops a diverging run, which is recorded as diverged.
"""


def _classes(data: dict) -> int:
    return int(max(y.max() for _, y in data.values())) + 1


def _slopes(model) -> dict:
    return {
        name: keras.ops.convert_to_numpy(layer.alpha).astype("float64").ravel()
        for name, layer in prelu_layers(model).items()
    }


def train_once(variant, seed, learning_rate, scale, data, args) -> dict:
    """Trains one run; returns its numbers, histories padded with NaN to `args.epochs`."""
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data.values()
    model = BUILDERS[args.model](
        variant, x_train.shape[1:], _classes(data), slope=args.slope_init, slope_lr_scale=scale
    )
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=args.weight_decay)
    # No weight decay on the slopes (He et al. 2015). A ScaledPReLU's slope is a
    # product, so its trained variable `v` is excluded through Keras directly.
    if scale == 1:
        exclude_slopes_from_weight_decay(optimizer, model)
    else:
        optimizer.exclude_from_weight_decay([layer.v for layer in prelu_layers(model).values()])
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    initial = _slopes(model)
    # Wall seconds per epoch, training plus validation: listed first, so the others count.
    seconds, starts = [], []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: starts.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: seconds.append(time.perf_counter() - starts[-1]),
    )
    dead = DeadUnitMonitor(x_train[: args.probe_size], data_format="channels_last")
    # The monitors come before CSVLogger, which writes what they add to the logs.
    callbacks = [timer, dead] + ([SlopeMonitor()] if initial else [])
    log = os.path.join(args.out, "logs", f"{variant}_lr{learning_rate:g}_c{scale:g}_seed{seed}.csv")
    callbacks += [keras.callbacks.TerminateOnNaN(), keras.callbacks.CSVLogger(log)]
    history = model.fit(
        x_train, y_train, args.batch_size, args.epochs, 0, callbacks, validation_data=(x_val, y_val)
    ).history
    final = _slopes(model)
    losses = np.asarray([history[key] for key in history if key.endswith("loss")])
    bad_epochs = np.flatnonzero(~np.isfinite(losses).all(axis=0))
    diverged_at = int(bad_epochs[0]) + 1 if bad_epochs.size else None
    if diverged_at is None and not all(np.isfinite(v).all() for v in final.values()):
        diverged_at = len(history["loss"])
    if diverged_at is None:
        test = model.evaluate(x_test, y_test, args.batch_size, verbose=0, return_dict=True)
    else:
        test = {"accuracy": math.nan, "loss": math.nan}
    if args.verbose:
        print(
            f"{variant}, learning rate {learning_rate:g}, c = {scale:g}, seed {seed}: loss "
            f"{history['loss'][-1]:.3g}, val_accuracy {history['val_accuracy'][-1]:.3f}",
            flush=True,
        )
    pad = [math.nan] * (args.epochs - len(history["loss"]))
    moved = [np.abs(final[name] - initial[name]) for name in final]
    return {
        "seed": seed,
        "diverged_at": diverged_at,
        "test_accuracy": float(test["accuracy"]),
        "test_loss": float(test["loss"]),
        "history": {key: [float(v) for v in values] + pad for key, values in history.items()},
        "seconds_per_epoch": seconds + pad,
        "dead_units_before_training": dead.initial,
        "slopes": {name: values.tolist() for name, values in final.items()},
        # Mean |final - initial| over all slopes of the model: how far training moved them.
        "slope_moved": float(np.concatenate(moved).mean()) if moved else None,
        "params": int(model.count_params()),
    }


"""
## Run the grid and save

`results.json` and the report are rewritten after each variant, each file replaced whole
(`activation_report.write_atomic`).
"""


def save(results: dict, out: str) -> dict:
    """Adds the analysis, writes results.json, report.md and figures; returns the saved form."""
    # Through JSON and back, with NaN and infinity (a diverged run's numbers) as null.
    text = json.dumps({**results, **report.analyse(results)})
    results = json.loads(text, parse_constant=lambda name: None)
    text = json.dumps(results, indent=1, allow_nan=False)
    report.write_atomic(os.path.join(out, "results.json"), text)
    report.write(results, out)
    return results


def main(argv=None) -> dict:
    """Runs the experiment; returns the results in their `results.json` form."""
    parser = build_parser()
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    if not set(variants) <= set(ACTIVATIONS):
        parser.error(f"argument --variants: choose from {', '.join(ACTIVATIONS)}")
    if os.path.isdir(args.out) and os.listdir(args.out):
        parser.error(f"--out {args.out!r} is not empty: choose a new folder (nothing was written)")
    rates = sorted(set(args.learning_rates or [LEARNING_RATES[args.model]]))
    scales = sorted(set(args.slope_lr_scale) | {1.0})
    try:
        data = load_dataset(args.dataset, args.limit)
    except Exception as error:  # keras.datasets downloads fail in many ways
        parser.error(f"--dataset {args.dataset}: {error} (digits needs no download)")
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    model = BUILDERS[args.model]("relu", data["train"][0].shape[1:], _classes(data))
    results = {
        "config": {
            "dataset": args.dataset,
            "model": args.model,
            "model_description": describe_model(model),
            "samples": {key: len(x) for key, (x, _) in data.items()},
            "seeds": list(range(args.seeds)),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rates": rates,
            "slope_lr_scales": scales,
            "weight_decay": args.weight_decay,
            "slope_init": args.slope_init,
            "probe_size": min(args.probe_size, len(data["train"][0])),
            "backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "cpu_count": os.cpu_count(),
        },
        "runs": [],
        "pending": [name for name in ACTIVATIONS if name in variants],
    }
    try:
        for variant in list(results["pending"]):
            for rate in rates:
                for scale in scales if variant.startswith("prelu") else [1.0]:
                    start, runs = time.perf_counter(), []
                    for seed in results["config"]["seeds"]:
                        runs.append(train_once(variant, seed, rate, scale, data, args))
                    group = dict(variant=variant, learning_rate=rate, slope_lr_scale=scale)
                    wall = time.perf_counter() - start
                    results["runs"].append({**group, "wall_seconds": wall, "seeds": runs})
            results["pending"].remove(variant)
            results = save(results, args.out)
    except KeyboardInterrupt:
        kept = ", ".join(v for v in variants if v not in results["pending"]) or "nothing"
        print(f"\nInterrupted: {args.out} keeps {kept}.", file=sys.stderr)
        raise SystemExit(130) from None
    print()
    print(report.summary_text(results))
    print(f"Wrote {args.out}/results.json, report.md, figures and logs/.")
    return results


if __name__ == "__main__":
    main()
