"""
Title: The report of the PReLU experiment
Author: keras_prelu contributors
Date created: 2026/11/30
Last modified: 2026/12/07
Description: Exact paired tests with Holm's correction, the choice on validation data,
report.md and its figure, from the results.json of `examples.compare_activations`.

`python -m examples.activation_report RESULTS.json [--out DIR]` rebuilds them (by default
next to RESULTS.json) and prints the summary.
"""

import argparse
import io
import json
import math
import os
import tempfile
import warnings

import numpy as np

from examples import stats

VARIANTS = {
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU (best fixed slope)",
    "prelu": "PReLU (one slope per layer)",
    "prelu_channelwise": "PReLU (one slope per channel)",
}
PAIRS = [(v, "relu") for v in ("leaky_relu", "prelu", "prelu_channelwise")]
PAIRS += [(v, "leaky_relu") for v in ("prelu", "prelu_channelwise")]
ALPHA = 0.05
NEAR_DEAD = 0.01  # a unit positive on less than 1% of its probe values is near-dead
BINS = [0.0, NEAR_DEAD, 0.1, 0.5, 1.0]
FIGURES = {"curves.png": "Validation accuracy per epoch, mean ± std over evaluation seeds."}


def per_seed(group: dict, key: str) -> np.ndarray:
    """One number per seed; null (a diverged seed) becomes NaN."""
    return np.asarray([run[key] for run in group["seeds"]], "float64")


def curve(group: dict, key: str) -> np.ndarray:
    """A history entry, seeds x epochs."""
    return np.asarray([run["history"][key] for run in group["seeds"]], "float64")


def fractions(run: dict, mode: str = "inference") -> np.ndarray:
    return np.concatenate(list(run["positive_fraction"][mode].values()))


def _near_dead(mode: str):
    return lambda g: np.asarray([np.mean(fractions(r, mode) < NEAR_DEAD) for r in g["seeds"]])


def _steps(group: dict) -> np.ndarray:
    """Steps to the target; a run that never reached it counts as its length plus one."""
    return np.asarray([r["steps"] + 1 if r["steps_to_target"] is None else r["steps_to_target"]
                       for r in group["seeds"]], "float64")  # fmt: skip


def _seconds(group: dict) -> np.ndarray:
    """Mean seconds per epoch, without epoch 1 (it also compiles) when there are more."""
    seconds = per_seed(group, "seconds_per_epoch")
    return np.nanmean(seconds[:, 1:] if seconds.shape[1] > 1 else seconds, axis=1)


# Per measure: title, per-seed values, and unit ("pp": a share, printed in %).
MEASURES = {
    "test_accuracy": ("test accuracy", lambda g: per_seed(g, "test_accuracy"), "pp"),
    "loss_before": ("val. loss before training", lambda g: per_seed(g, "loss_before_training"), ""),
    "steps_to_target": ("steps to target", _steps, "steps"),
    "dead_end": ("dead units", lambda g: curve(g, "dead_units")[:, -1], "pp"),
    "near_dead": ("positive < 1% (inference)", _near_dead("inference"), "pp"),
    "near_dead_training": ("positive < 1% (training)", _near_dead("training"), "pp"),
    "slope_moved": ("slope moved (mean abs)", lambda g: per_seed(g, "slope_moved"), ""),
    "seconds": ("s/epoch", _seconds, ""),
}
PAIRED_MEASURES = ("test_accuracy", "steps_to_target", "dead_end", "near_dead")
SLOPE_MEASURES = ("test_accuracy", "steps_to_target", "slope_moved")
SUMMARY_MEASURES = ("test_accuracy", "loss_before", "steps_to_target", "dead_end",
                    "near_dead", "near_dead_training", "seconds")  # fmt: skip


def diverged(group: dict) -> list[int]:
    return [run["seed"] for run in group["seeds"] if run["diverged_at"] is not None]


# ## The choice on validation data, and the paired comparisons


def _groups(results: dict, phase: str, depth, variant: str) -> list[dict]:
    key = (phase, depth, variant)
    return [g for g in results["runs"] if (g["phase"], g["depth"], g["variant"]) == key]


def choose(results: dict, depth, variant: str) -> tuple[float, float] | None:
    """The (learning rate, slope) with the best mean final validation accuracy on the tuning
    seeds (a diverged candidate never wins); None when nothing was tuned."""
    tuned = _groups(results, "tune", depth, variant)
    scores = [np.nan_to_num(np.mean(curve(g, "val_accuracy")[:, -1]), nan=-1.0) for g in tuned]
    if not tuned:
        return None
    best = tuned[int(np.argmax(scores))]
    return best["learning_rate"], best["slope"]


def main_groups(results: dict, depth) -> dict:
    """Per variant, its evaluation runs at the chosen setting (c = 1, PReLU's base slope)."""
    base = results["config"]["slope_base"]
    found = {}
    for v in VARIANTS:
        for g in _groups(results, "eval", depth, v):
            if g["slope_lr_scale"] == 1 and (v == "leaky_relu" or g["slope"] == base):
                found[v] = g
    return found


def analyse(results: dict) -> dict:
    """Every paired comparison of the report, with Holm's correction over all of them."""
    margin, entries = results["config"]["margin"], []

    def compare(first, second, measures, **names):
        for m in measures:
            a, b = MEASURES[m][1](first), MEASURES[m][1](second)
            entries.append({**names, "measure": m, **stats.paired_stats(
                a, b, margin if m == "test_accuracy" else None)})  # fmt: skip

    for depth in results["config"]["depths"]:
        healthy = {v: g for v, g in main_groups(results, depth).items() if not diverged(g)}
        for a, b in PAIRS:
            if a in healthy and b in healthy:
                compare(healthy[a], healthy[b], PAIRED_MEASURES, depth=depth, a=a, b=b)
        for v, group in healthy.items():
            for other in _groups(results, "eval", depth, v):
                if other is not group and v != "leaky_relu" and not diverged(other):
                    names = dict(depth=depth, variant=v, slope=other["slope"])
                    compare(other, group, SLOPE_MEASURES, c=other["slope_lr_scale"], **names)
    for key in ("p", "p_tost"):
        for entry, adjusted in zip(entries, stats.holm([e[key] for e in entries]), strict=True):
            entry[key + "_holm"] = adjusted
    for e in entries:
        e["verdict"] = "not resolved"
        if e["p_holm"] < ALPHA:
            e["verdict"] = "higher" if e["mean"] > 0 else "lower"
        elif e["p_tost_holm"] < ALPHA:
            e["verdict"] = f"equivalent within ±{100 * margin:g} pp"
    tests = sum(math.isfinite(e["p"]) for e in entries)
    equivalence = sum(math.isfinite(e["p_tost"]) for e in entries)
    return {"comparisons": entries, "tests": tests, "equivalence_tests": equivalence}


# ## The report: a template filled with numbers

TEMPLATE = """# PReLU against ReLU: {model} on {dataset}

`{command}`: commit {commit}, keras_prelu {keras_prelu_version}, backend {backend}, Keras \
{keras_version}, {machine}; {wall:.0f} s of training. {pending} A diverged variant (loss \
or slopes NaN or infinite, stopped by `TerminateOnNaN`) is marked in the summary and left \
out of the comparisons; a diverged candidate is never chosen.

{train} training, {val} validation, {test} test images; {epochs} epochs, batch size \
{batch_size}; AdamW, weight decay {weight_decay:g}, none on the slopes. Candidates: learning \
rates {learning_rates}; LeakyReLU slopes {leaky_slopes}; each variant's is chosen on the mean \
validation accuracy after the last epoch of the tuning seeds ({tune_seeds}), then trained on \
{seeds} evaluation seeds (0 to {last_seed}), the same for every variant. PReLU's initial slope \
{slope_base:g}; its study also trains slope learning-rate scales {slope_lr_scales} and initial \
slopes {slope_inits}.

Model: {models}

## The tests

Each comparison is paired by evaluation seed. The primary test is the exact sign-flip \
permutation test of the per-seed differences ({exact}); with {seeds} seeds its smallest \
two-sided p is {p_floor:.3g}. This report makes {tests} such tests, Holm-corrected together: \
the smallest corrected p it can reach is {holm_floor:.3g}, so a difference is resolved only \
when at least {needed} seeds all differ in one direction; {seeds} seeds resolve only large, \
consistent effects{none}. It also makes {equivalence} equivalence tests of test accuracy \
(TOST: two one-sided sign-flip tests, margin ±{margin_pp:g} pp, fixed before the run), also \
Holm-corrected. Verdict at corrected p < {alpha:g}: "higher"/"lower" from the test of \
difference, else "equivalent" from TOST, else "not resolved"; for bounded counts (dead units) \
only the exact test is read, and the 95% t-interval only describes the spread.

## Summary

Evaluation seeds, mean ± std. Steps to target: until validation accuracy first reached \
{target:g}, checked every {eval_every} steps (a run that never did counts as its length plus \
one: {not_reached} did not). Dead: positive on no probe value (inference mode, the first \
{probe_size} training images); positive < 1%: near-dead, dead included. s/epoch: shared machine.

{summary}

## The choice on validation data

Mean validation accuracy after the last epoch, tuning seeds; **bold**: chosen.

{choice}

## Paired comparisons

First minus second, per evaluation seed (pp for shares). Seeds +/−/0: how many seeds the \
difference was above, below or at zero.

{paired}

## Positive fractions

Share of units whose share of positive inputs on the probe falls in each bin, mean over \
seeds; inference and training mode (they differ only with BatchNormalization).

{bins}

## Learned slopes

After training, all evaluation runs: layer mean slopes (mean over seeds, first layer to \
last); the share of all slopes (all seeds and units) below 0 or above 1, and their range.

{slopes}

{figures}
"""


def _num(value: float, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if unit in ("pp", "p"):
        return f"{100 * value:.2f}" if unit == "pp" else f"{value:.3g}"
    return f"{value:.1f}".removesuffix(".0") if unit == "steps" else f"{value:#.3g}".rstrip(".")


def _mean_std(values, unit: str) -> str:
    values = np.asarray(values, "float64")
    spread = f" ± {_num(values.std(ddof=1), unit)}" if len(values) > 1 else ""
    return _num(values.mean(), unit) + spread + ("%" if unit == "pp" else "")


def _table(header: str, rows: list[list[str]]) -> str:
    """A Markdown table; `header` is the column titles separated by "|"."""
    if not rows:
        return "(none)"
    lines = [f"| {header.replace('|', ' | ')} |", "|---" * (header.count("|") + 1) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _depth(depth) -> str:
    return "–" if depth is None else str(depth)


def _depths(results: dict) -> list:
    return [(d, g) for d in results["config"]["depths"] for g in [main_groups(results, d)] if g]


def _setting(g: dict) -> list[str]:
    slope = "–" if g["variant"] == "relu" else f"{g['slope']:g}"
    return [_depth(g["depth"]), VARIANTS[g["variant"]], f"{g['learning_rate']:g}", slope]


def summary_text(results: dict) -> str:
    """Each variant at its chosen setting, mean ± std over evaluation seeds."""
    titles, rows = [MEASURES[m][0] for m in SUMMARY_MEASURES], []
    for g in [g for _, groups in _depths(results) for g in groups.values()]:
        measures = () if diverged(g) else SUMMARY_MEASURES
        cells = [_mean_std(MEASURES[m][1](g), MEASURES[m][2]) for m in measures]
        rows.append(_setting(g) + (cells or [f"diverged: seeds {diverged(g)}"]))
    return _table("|".join(["depth", "variant", "learning rate", "slope", *titles]), rows)


def _choice_table(results: dict) -> str:
    rows = []
    for g in [g for g in results["runs"] if g["phase"] == "tune"]:
        score = _mean_std(curve(g, "val_accuracy")[:, -1], "pp")
        chosen = choose(results, g["depth"], g["variant"]) == (g["learning_rate"], g["slope"])
        rows.append([*_setting(g), f"**{score}**" if chosen else score])
    return _table("depth|variant|learning rate|slope|validation accuracy", rows)


def _paired_table(results: dict) -> str:
    rows = []
    for e in results["comparisons"]:
        unit = MEASURES[e["measure"]][2]
        if "a" in e:
            name = f"{VARIANTS[e['a']]} − {VARIANTS[e['b']]}"
        else:
            name = f"{VARIANTS[e['variant']]}: c = {e['c']:g}, init {e['slope']:g} − base"
        low, high = (_num(v, unit) for v in e["ci95"])
        diffs = ", ".join(_num(d, unit) for d in e["differences"])
        p_values = [_num(e[k], "p").replace("n/a", "") for k in ("p", "p_holm", "p_tost_holm")]
        rows.append([_depth(e["depth"]), MEASURES[e["measure"]][0], name, diffs,
                     f"{_num(e['mean'], unit)} [{low}, {high}]", "/".join(map(str, e["signs"])),
                     *p_values, e["verdict"]])  # fmt: skip
    header = "depth|measure|comparison|per-seed differences|mean [95% t-interval]|seeds +/−/0"
    return _table(header + "|exact p|Holm p|TOST Holm p|verdict", rows)


def _bins(found: np.ndarray) -> np.ndarray:
    return np.histogram(found, [-1, 1e-12, *BINS[1:-1], 2])[0] / found.size


def _bins_table(results: dict) -> str:
    names = ["0", "(0, 1%)", "[1%, 10%)", "[10%, 50%)", "[50%, 100%]"]
    rows = []
    for depth, groups in _depths(results):
        for v, g in groups.items():
            for mode in () if diverged(g) else ("inference", "training"):
                shares = np.mean([_bins(fractions(r, mode)) for r in g["seeds"]], axis=0)
                row = [_depth(depth), VARIANTS[v], mode, *(f"{100 * s:.1f}%" for s in shares)]
                rows.append(row)
    return _table("depth|variant|mode|" + "|".join(names), rows)


def _slope_table(results: dict) -> str:
    rows = []
    prelus = [g for g in results["runs"] if g["phase"] == "eval" and g["seeds"][0]["slopes"]]
    for g in [g for g in prelus if not diverged(g)]:
        layers = g["seeds"][0]["slopes"]
        means = [np.mean([np.mean(r["slopes"][k]) for r in g["seeds"]]) for k in layers]
        every = np.concatenate([r["slopes"][k] for r in g["seeds"] for k in layers])
        outside = f"{np.mean((every < 0) | (every > 1)):.1%} [{every.min():.3f}, {every.max():.3f}]"
        setting = [_depth(g["depth"]), VARIANTS[g["variant"]], f"{g['slope_lr_scale']:g}"]
        rows += [[*setting, f"{g['slope']:g}", ", ".join(f"{m:.3f}" for m in means), outside]]
    return _table("depth|variant|c|initial slope|layer means|< 0 or > 1 [min, max]", rows)


def render(results: dict, figures=tuple(FIGURES)) -> str:
    """The report as Markdown, showing the named figure files."""
    config, n = results["config"], len(results["config"]["seeds"])
    evaluated = [r for g in results["runs"] if g["phase"] == "eval" for r in g["seeds"]]
    p_floor = 2 / 2**n if n else math.nan
    needed = next(k for k in range(1, 64) if results["tests"] * 2 / 2**k < ALPHA)
    lists = ("learning_rates", "leaky_slopes", "slope_lr_scales", "slope_inits", "tune_seeds")
    fields = {**config, **config["samples"], "seeds": n, "last_seed": n - 1}
    fields.update({key: ", ".join(f"{x:g}" for x in config[key]) for key in lists})
    pending = ", ".join(f"{v} (depth {d})" for d, v in results["pending"])
    return TEMPLATE.format(
        **fields,
        models="; ".join(config["model_description"]),
        wall=sum(g["wall_seconds"] for g in results["runs"]),
        pending=f"**Incomplete run**: not trained: {pending}." if pending else "",
        exact="enumerated" if n <= stats.EXACT_UP_TO else "100,000 sampled sign patterns",
        p_floor=p_floor,
        tests=results["tests"],
        holm_floor=min(1.0, results["tests"] * p_floor),
        needed=needed,
        none="; this run has fewer, so it resolves none" if n < needed else "",
        equivalence=results["equivalence_tests"],
        margin_pp=100 * config["margin"],
        alpha=ALPHA,
        not_reached=sum(r["steps_to_target"] is None for r in evaluated),
        summary=summary_text(results),
        choice=_choice_table(results),
        paired=_paired_table(results),
        bins=_bins_table(results),
        slopes=_slope_table(results),
        figures="\n\n".join(f"![{FIGURES[name]}]({name})" for name in figures),
    )


# ## Figures


def figures(results: dict) -> dict:
    """The matplotlib figures of the report, by file name."""
    from matplotlib.figure import Figure  # no pyplot: nothing global to close

    depths = _depths(results)
    fig = Figure(figsize=(3.8 * len(depths), 3.2))
    axes = fig.subplots(1, len(depths), squeeze=False).flat
    for ax, (depth, groups) in zip(axes, depths, strict=True):
        for v, g in groups.items():
            y = curve(g, "val_accuracy")
            x, mean, std = np.arange(1, y.shape[1] + 1), np.nanmean(y, 0), np.nanstd(y, 0)
            ax.errorbar(x, mean, std, label=VARIANTS[v], capsize=2, marker="o", markersize=3)
        title = f"depth {depth}" if depth else results["config"]["model"]
        ax.set(title=title, xlabel="epoch", ylabel="validation accuracy")
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    return {"curves.png": fig}


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
        made = figures(results) if _depths(results) else {}
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
    print(f"Wrote {path} and its figure.\n{summary_text(results)}")
    return path


if __name__ == "__main__":
    main()
