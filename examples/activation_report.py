"""
Title: The report of the PReLU experiment
Author: keras_prelu contributors
Date created: 2026/11/30
Last modified: 2026/12/04
Description: Paired statistics, the learning-rate choice, report.md and its figures, from
the results.json of `examples.compare_activations`.

`python -m examples.activation_report RESULTS.json [--out DIR]` rebuilds them (by default
next to RESULTS.json) and prints the summary. A variant with a diverged seed is marked
"diverged" and left out of the comparisons.
"""

import argparse
import io
import json
import math
import os
import tempfile
import warnings

import numpy as np

# Name, then colour, line style (ls) and marker: curves that coincide stay visible.
VARIANTS = {
    "relu": ("ReLU", dict(color="tab:gray", ls="-", marker="o")),
    "leaky_relu": ("LeakyReLU (fixed slope)", dict(color="tab:orange", ls="--", marker="s")),
    "prelu": ("PReLU (one slope per layer)", dict(color="tab:blue", ls="-.", marker="^")),
    "prelu_channelwise": ("PReLU (one slope per channel)", dict(color="g", ls=":", marker="D")),
}
PAIRS = [(v, "relu") for v in ("leaky_relu", "prelu", "prelu_channelwise")]
PAIRS += [(v, "leaky_relu") for v in ("prelu", "prelu_channelwise")]
CHOSEN_BY = "validation accuracy after the last epoch, mean over seeds"
FIGURES = {
    "training_curves.png": "Loss and accuracy per epoch, mean ± std over seeds.",
    "dead_units.png": "Dead (ReLU) or never-positive units per layer; epoch 0: before training.",
    "slopes.png": "PReLU slopes per epoch, layer mean over seeds, per slope learning-rate scale.",
}


# ## Paired statistics


def paired_stats(a, b) -> dict:
    """Per-seed differences `a - b`, their mean with a 95% t-interval, and the p-values of
    `ttest_rel` and `wilcoxon`; NaN where undefined (one seed, all differences zero)."""
    from scipy import stats

    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    d = a - b
    n, mean = len(d), float(d.mean())
    out = {"differences": d.tolist(), "mean": mean, "ci95": [math.nan] * 2}
    out.update(p_ttest=math.nan, p_wilcoxon=math.nan)
    if n < 2:
        return out
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    out["ci95"] = [mean - half, mean + half]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero spread: scipy warns and returns NaN
        out["p_ttest"] = float(stats.ttest_rel(a, b).pvalue)
        if np.any(d != 0):
            out["p_wilcoxon"] = float(stats.wilcoxon(a, b).pvalue)
    return out


def per_seed(group: dict, key: str) -> np.ndarray:
    """One number per seed; null (a diverged seed) becomes NaN."""
    return np.asarray([run[key] for run in group["seeds"]], "float64")


def curve(group: dict, key: str) -> np.ndarray:
    """A history entry, seeds x epochs."""
    return np.asarray([run["history"][key] for run in group["seeds"]], "float64")


# Per measure: title, per-seed values, and whether it is a share (printed in %).
MEASURES = {
    "test_accuracy": ("test accuracy", lambda g: per_seed(g, "test_accuracy"), True),
    "first_loss": ("training loss after epoch 1", lambda g: curve(g, "loss")[:, 0], False),
    "last_loss": ("training loss at the end", lambda g: curve(g, "loss")[:, -1], False),
    "dead_end": ("dead units at the end", lambda g: curve(g, "dead_units")[:, -1], True),
    "slope_moved": ("slope moved (mean abs)", lambda g: per_seed(g, "slope_moved"), False),
    "seconds": ("s/epoch", lambda g: _later_epochs(per_seed(g, "seconds_per_epoch")), False),
}


def _later_epochs(seconds: np.ndarray) -> np.ndarray:
    """Mean seconds per epoch, per seed, without epoch 1 (it also compiles) if there are more."""
    return seconds[:, 1:].mean(axis=1) if seconds.shape[1] > 1 else seconds[:, 0]


def find(results: dict, variant: str, rate: float, scale: float = 1.0) -> dict | None:
    """The runs (all seeds) of one variant at one learning rate and slope scale."""
    wanted = {"variant": variant, "learning_rate": rate, "slope_lr_scale": scale}
    return next((group for group in results["runs"] if wanted.items() <= group.items()), None)


PAIRED_MEASURES = ("test_accuracy", "first_loss", "dead_end")
SLOPE_MEASURES = ("slope_moved", "first_loss", "last_loss", "test_accuracy")
SUMMARY_MEASURES = ("test_accuracy", "first_loss", "dead_end", "seconds")


def diverged(group: dict) -> list[int]:
    return [run["seed"] for run in group["seeds"] if run["diverged_at"] is not None]


def analyse(results: dict) -> dict:
    """The learning rate chosen per variant, and the paired comparisons."""
    chosen = {}
    for variant in dict.fromkeys(group["variant"] for group in results["runs"]):
        scores = {
            group["learning_rate"]: float(np.mean(curve(group, "val_accuracy")[:, -1]))
            for group in results["runs"]
            if group["variant"] == variant and group["slope_lr_scale"] == 1
        }
        finite = {rate: score for rate, score in scores.items() if math.isfinite(score)}
        best = max(finite, key=finite.get) if finite else min(scores)
        validation = [[rate, score] for rate, score in scores.items()]
        chosen[variant] = {"learning_rate": best, "chosen_by": CHOSEN_BY}
        chosen[variant]["validation_accuracy"] = validation

    def compare(first: dict, second: dict, measures, **names) -> list[dict]:
        read = {m: MEASURES[m][1] for m in measures}
        return [
            {**names, "measure": m, **paired_stats(read[m](first), read[m](second))}
            for m in measures
        ]

    groups = {v: find(results, v, c["learning_rate"]) for v, c in chosen.items()}
    healthy = {v: group for v, group in groups.items() if not diverged(group)}
    paired, slope_lr = [], []
    for a, b in PAIRS:
        if a in healthy and b in healthy:
            paired += compare(healthy[a], healthy[b], PAIRED_MEASURES, a=a, b=b)
    for variant, group in healthy.items():
        for scale in results["config"]["slope_lr_scales"]:
            other = find(results, variant, group["learning_rate"], scale)
            if scale != 1 and other is not None and not diverged(other):
                names = {"variant": variant, "slope_lr_scale": scale}
                slope_lr += compare(other, group, SLOPE_MEASURES, **names)
    return {"chosen": chosen, "paired": paired, "slope_lr": slope_lr}


# ## The report: a template filled with numbers

TEMPLATE = """# PReLU against ReLU: {model} on {dataset}

{seeds} seeds x {epochs} epochs per run; {train} training, {val} validation, {test} test images; \
batch size {batch_size}; AdamW, weight decay {weight_decay:g}, none on the slopes; learning rates \
{rates}; slope learning-rate scales {scales}; initial (PReLU) and fixed (LeakyReLU) slope \
{slope_init:g}. Backend {backend}, Keras {keras_version}, {cpu_count} CPUs; {wall:.0f} s of \
training. {pending}

Model: {model_description}

## Summary

Each variant at its chosen learning rate, c = 1; mean ± std over seeds. s/epoch: wall time \
on a shared machine, not a cost.

{summary}

## Learning rates

Validation accuracy per learning rate. The rate is chosen on {chosen_by}; the validation \
split is carved from the training data, and test accuracy is read at the chosen rate only.

{rates_table}

## Paired comparisons

Per seed, the first variant minus the second (percentage points for accuracy and dead units); \
their mean with a 95% t-interval; p-values of the paired t-test (`scipy.stats.ttest_rel`) and \
the Wilcoxon signed-rank test (smallest possible two-sided p with {seeds} seeds: \
{wilcoxon_floor:.3g}).

{paired}

## Slope learning rate

The slopes are alpha = c·v with v trained: under Adam they learn c times as fast as the \
other weights. "slope moved": mean over all slopes of |final - initial|. At each variant's \
chosen learning rate; the paired differences are against c = 1.

{slope_runs}

{slope_paired}

## Dead units

A unit is a channel of a convolution's output or a feature of a Dense layer's. It counts \
when its input is <= 0 at every spatial position of every probe image: the first \
{probe_size} images of the training split, run in inference mode (BatchNormalization with \
its moving statistics) after each epoch. A ReLU unit that counts is dead: output 0, no \
gradient. A LeakyReLU or PReLU unit still passes slope·x and a gradient: it is only \
*never-positive*. At the end of training, mean over seeds:

{dead}

## Learned slopes

Layer mean slope after training, mean ± std over seeds, [min, max] over seeds and units.

{slopes}

## Diverged runs

Runs whose loss or slopes became NaN or infinite (stopped by Keras's `TerminateOnNaN`):

{diverged}

{figures}
"""


def label(variant: str) -> str:
    return VARIANTS[variant][0]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _loss(value: float) -> str:
    return f"{value:#.3g}".rstrip(".")


def _mean_std(values, fmt=_pct) -> str:
    values = np.asarray(values, "float64")
    spread = f" ± {fmt(values.std(ddof=1))}" if len(values) > 1 else ""
    return fmt(values.mean()) + spread


def _cell(group: dict, measure: str) -> str:
    _, read, share = MEASURES[measure]
    return _mean_std(read(group), _pct if share else _loss)


def _difference(value, share: bool) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100 * value:+.2f}" if share else f"{value:+.3g}"


def _table(header: str, rows: list[list[str]]) -> str:
    """A Markdown table; `header` is the column titles separated by "|"."""
    if not rows:
        return "(none)"
    lines = [f"| {header.replace('|', ' | ')} |", "|---" * (header.count("|") + 1) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _chosen_groups(results: dict) -> dict:
    return {v: find(results, v, c["learning_rate"]) for v, c in results["chosen"].items()}


def _slope_groups(results: dict) -> list[dict]:
    """The PReLU runs, at every slope learning-rate scale, at their chosen learning rate."""
    chosen = {v: c["learning_rate"] for v, c in results["chosen"].items()}
    prelus = [g for g in results["runs"] if g["seeds"][0]["slopes"]]
    return [g for g in prelus if g["learning_rate"] == chosen[g["variant"]]]


def _rows(groups, key: str, measures) -> tuple[str, list[list[str]]]:
    """A table's header and rows: per group, its variant, `key` and `measures`."""
    header = "|".join(["variant", key.replace("_", " ")] + [MEASURES[m][0] for m in measures])
    rows = []
    for group in groups:
        row = [label(group["variant"]), f"{group[key]:g}"]
        if diverged(group):
            seeds = ", ".join(map(str, diverged(group)))
            rows.append(row + [f"diverged (seeds {seeds})"] + [""] * (len(measures) - 1))
        else:
            rows.append(row + [_cell(group, m) for m in measures])
    return header, rows


def summary_text(results: dict) -> str:
    """The summary table: each variant at its chosen learning rate, mean ± std over seeds."""
    return _table(*_rows(_chosen_groups(results).values(), "learning_rate", SUMMARY_MEASURES))


def _paired_table(entries: list[dict]) -> str:
    rows = []
    for entry in entries:
        title, _, share = MEASURES[entry["measure"]]
        if "a" in entry:
            name = f"{label(entry['a'])} − {label(entry['b'])}"
        else:
            name = f"{label(entry['variant'])}: c = {entry['slope_lr_scale']:g} − c = 1"
        low, high = (_difference(value, share) for value in entry["ci95"])
        diffs = ", ".join(_difference(d, share) for d in entry["differences"])
        mean = f"{_difference(entry['mean'], share)} [{low}, {high}]"
        p_values = [_difference(entry[key], False).lstrip("+") for key in ("p_ttest", "p_wilcoxon")]
        rows.append([title, name, diffs, mean, *p_values])
    header = "measure|comparison|per-seed differences|mean [95% CI]|t-test p|Wilcoxon p"
    return _table(header, rows)


def _rates_table(results: dict) -> str:
    rows = []
    for variant, entry in results["chosen"].items():
        scores = [_pct(s) if s is not None else "diverged" for _, s in entry["validation_accuracy"]]
        rows.append([label(variant), *scores, f"{entry['learning_rate']:g}"])
    rates = [f"{rate:g}" for rate in results["config"]["learning_rates"]]
    return _table("|".join(["variant", *rates, "chosen"]), rows)


def _dead_columns(groups: dict) -> dict:
    """The dead-unit history keys, with their titles: per layer, then all layers."""
    history = next(iter(groups.values()))["seeds"][0]["history"]
    keys = [key for key in history if key.startswith("dead_units")]
    return {key: key.split("/")[-1].replace("dead_units", "all layers") for key in keys}


def _dead_table(groups: dict) -> str:
    columns = _dead_columns(groups)
    rows = [
        [label(v), "dead" if v == "relu" else "never-positive"]
        + [_pct(np.mean(curve(group, key)[:, -1])) for key in columns]
        for v, group in groups.items()
    ]
    return _table("variant|counted as|" + "|".join(columns.values()), rows)


def _slope_table(groups: dict) -> str:
    prelus = {v: g for v, g in groups.items() if g["seeds"][0]["slopes"]}
    rows = []
    for layer in next(iter(prelus.values()))["seeds"][0]["slopes"] if prelus else []:
        row = [layer]
        for group in prelus.values():
            values = [np.asarray(run["slopes"][layer], "float64") for run in group["seeds"]]
            low, high = min(v.min() for v in values), max(v.max() for v in values)
            row.append(f"{_mean_std([v.mean() for v in values], _loss)} [{low:.3f}, {high:.3f}]")
        rows.append(row)
    return _table("|".join(["layer"] + [label(v) for v in prelus]), rows)


def render(results: dict, figures=tuple(FIGURES)) -> str:
    """The report as Markdown, showing the named figure files."""
    config, pending = results["config"], ", ".join(results["pending"])
    groups = {v: g for v, g in _chosen_groups(results).items() if not diverged(g)}
    broken = [
        [label(g["variant"]), f"{g['learning_rate']:g}", f"{g['slope_lr_scale']:g}"]
        + [str(run["seed"]), str(run["diverged_at"])]
        for g in results["runs"]
        for run in g["seeds"]
        if run["diverged_at"] is not None
    ]
    fields = {**config, **config["samples"], "seeds": len(config["seeds"])}
    return TEMPLATE.format(
        **fields,
        rates=", ".join(f"{rate:g}" for rate in config["learning_rates"]),
        scales=", ".join(f"{c:g}" for c in config["slope_lr_scales"]),
        wall=sum(g["wall_seconds"] for g in results["runs"]),
        pending=f"**Incomplete run**: not trained: {pending}." if pending else "",
        summary=summary_text(results),
        chosen_by=CHOSEN_BY,
        rates_table=_rates_table(results),
        wilcoxon_floor=2 / 2 ** len(config["seeds"]),
        paired=_paired_table(results["paired"]),
        slope_runs=_table(*_rows(_slope_groups(results), "slope_lr_scale", SLOPE_MEASURES)),
        slope_paired=_paired_table(results["slope_lr"]),
        dead=_dead_table(groups) if groups else "(none)",
        slopes=_slope_table(groups),
        diverged=_table("variant|learning rate|c|seed|epoch", broken),
        figures="\n\n".join(f"![{FIGURES[name]}]({name})" for name in figures),
    )


# ## Figures


def figures(results: dict) -> dict:
    """The matplotlib figures of the report, by file name."""
    from matplotlib.figure import Figure  # no pyplot: nothing global to close

    def grid(panels: list, ylabel: str):
        columns = min(4, len(panels))
        rows = -(-len(panels) // columns)
        fig = Figure(figsize=(3.6 * columns, 3.2 * rows))
        axes = fig.subplots(rows, columns, squeeze=False)
        for ax, title in zip(axes.flat, panels, strict=False):
            ax.set(title=title, xlabel="epoch", ylabel=ylabel)
            ax.grid(alpha=0.3)
        for ax in axes.flat[len(panels) :]:
            ax.axis("off")
        return fig, axes.flat

    groups = _chosen_groups(results)
    made = {}
    keys = ["loss", "val_loss", "accuracy", "val_accuracy"]
    fig, axes = grid([key.replace("val_", "validation ") for key in keys], "mean ± std")
    for ax, key in zip(axes, keys, strict=False):
        for variant, group in groups.items():
            mean, std = np.nanmean(curve(group, key), 0), np.nanstd(curve(group, key), 0)
            name = label(variant) + (" (diverged)" if diverged(group) else "")
            epochs = np.arange(1, len(mean) + 1)
            ax.plot(epochs, mean, label=name, markersize=4, **VARIANTS[variant][1])
            ax.fill_between(
                epochs, mean - std, mean + std, alpha=0.15, color=ax.lines[-1].get_color()
            )
    made["training_curves.png"] = fig

    columns = _dead_columns(groups)
    fig, axes = grid(list(columns.values()), "%")
    for ax, key in zip(axes, columns, strict=False):
        for variant, group in groups.items():
            before = [run["dead_units_before_training"][key] for run in group["seeds"]]
            y = 100 * np.concatenate([[np.mean(before)], np.mean(curve(group, key), 0)])
            ax.plot(y, label=label(variant), markersize=4, **VARIANTS[variant][1])
    made["dead_units.png"] = fig

    slope_groups = _slope_groups(results)
    if slope_groups:
        titles = [f"{label(g['variant'])}, c = {g['slope_lr_scale']:g}" for g in slope_groups]
        fig, axes = grid(titles, "layer mean slope")
        for ax, group in zip(axes, slope_groups, strict=False):
            for layer in group["seeds"][0]["slopes"]:
                y = np.nanmean(curve(group, f"slope/{layer}/mean"), 0)
                ax.plot([results["config"]["slope_init"], *y], label=layer)
        made["slopes.png"] = fig
    for fig in made.values():
        fig.axes[0].legend(fontsize=7)
        fig.tight_layout()
    return made


# ## Write the files


def write_atomic(path: str, data: str | bytes) -> None:
    """Writes a file whole or not at all, with the usual permissions (0666 less the umask)."""
    mode = "wb" if isinstance(data, bytes) else "w"
    directory = os.path.dirname(path) or "."
    with tempfile.NamedTemporaryFile(mode, dir=directory, suffix=".tmp", delete=False) as handle:
        handle.write(data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(handle.name, 0o666 & ~umask)  # tempfile makes it 0600
    os.replace(handle.name, path)


def write(results: dict, out_dir: str) -> str:
    """Writes `report.md` and the figures into `out_dir`; returns the report's path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean where every seed diverged
        made = figures(results) if results["runs"] else {}
    for filename, fig in made.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        write_atomic(os.path.join(out_dir, filename), buffer.getvalue())
    path = os.path.join(out_dir, "report.md")
    write_atomic(path, render(results, tuple(made)))
    return path


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(prog="python -m examples.activation_report")
    parser.add_argument("results", metavar="RESULTS.json")
    parser.add_argument("--out", help="output folder (default: the folder of RESULTS.json)")
    args = parser.parse_args(argv)
    try:
        with open(args.results) as handle:
            results = json.load(handle)
    except (OSError, ValueError) as error:
        parser.error(f"cannot read RESULTS.json {args.results!r}: {error}")
    if not isinstance(results, dict) or not {"config", "runs"} <= set(results):
        parser.error(f"{args.results!r} is not a results.json of examples.compare_activations")
    results.update(analyse(results))
    out = args.out or os.path.dirname(args.results) or "."
    os.makedirs(out, exist_ok=True)
    path = write(results, out)
    print(f"Wrote {path} and its figures.")
    print(summary_text(results))
    return path


if __name__ == "__main__":
    main()
