"""The report of `examples.compare_activations`: Markdown, figures and a summary.

Every sentence of the conclusions is computed from the numbers in
`results.json`. `write(results, out_dir)` rebuilds `report.md` and the
figures from them, so it also works on the results of an interrupted run, and
from the command line on any `results.json`:

    python -m examples.activation_report runs/compare_activations/results.json [--out DIR]

A variant with a diverged seed (a loss, metric or slope that became NaN or
infinite) is reported as diverged and left out of every comparison: the
surviving seeds alone would flatter it.
"""

import argparse
import dataclasses
import io
import json
import os
import tempfile
import warnings
from collections.abc import Callable

import numpy as np

BASELINE = "relu"
# Each PReLU variant against ReLU, and against a slope fixed at its initial value.
PAIRS = (
    ("prelu", "relu"),
    ("prelu_channelwise", "relu"),
    ("leaky_relu", "relu"),
    ("prelu", "leaky_relu"),
    ("prelu_channelwise", "leaky_relu"),
)
# Colour, line style and marker per variant: LeakyReLU's and the PReLUs' curves
# often coincide, and each must stay visible under the others.
STYLES = {
    "relu": {"color": "tab:gray", "linestyle": "-", "marker": "o"},
    "leaky_relu": {"color": "tab:orange", "linestyle": "--", "marker": "s"},
    "prelu": {"color": "tab:blue", "linestyle": "-.", "marker": "^"},
    "prelu_channelwise": {"color": "tab:green", "linestyle": ":", "marker": "D"},
}
FIGURES = {
    "training_curves.png": "Training curves: loss and accuracy per epoch, mean over seeds "
    "with a ±1 std band.",
    "dead_units.png": "Dead units per activation layer and in total, per epoch "
    "(epoch 0 is before training).",
    "slopes.png": "Learned PReLU slopes: per layer after training (left) and their mean over "
    "the epochs (right).",
}
SEED_ARTICLE = (
    'The questions come from the blog post "How does using a PReLU activation function affect '
    'CNN training?", which claims that PReLU, compared with ReLU, keeps units from dying, can '
    "speed up convergence and raise accuracy, costs little compute, and can drive its slope to "
    "bad values."
)
TIME_CAVEAT = (
    "Wall time per epoch on a shared machine is not a measure of the layer's cost: the load "
    "of other processes moves it by more than the activation does, beyond the seed-to-seed "
    "spread and in either direction from run to run. `benchmarks/benchmark.py` measures the "
    "cost of the layer itself; no cost conclusion is drawn here."
)


def label(variant: str, slope: float | None = None) -> str:
    """The human name of a variant, e.g. "PReLU (one slope per channel)"."""
    if variant == "leaky_relu":
        return "LeakyReLU (fixed slope)" if slope is None else f"LeakyReLU (slope {slope:g}, fixed)"
    return {
        "relu": "ReLU",
        "prelu": "PReLU (one slope per layer)",
        "prelu_channelwise": "PReLU (one slope per channel)",
    }.get(variant, variant)


def _label(variants: dict, name: str) -> str:
    return label(name, variants[name]["initial_slope"])


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _pp(value: float) -> str:
    rounded = round(100 * value, 1)
    return f"{rounded + 0.0:+.1f} pp"  # + 0.0 turns -0.0 into 0.0


def _number(value: float) -> str:
    return f"{value:.3f}"


def _loss(value: float) -> str:
    # Three significant digits, as losses fall by orders of magnitude; "#" keeps
    # trailing zeros ("1.30", not "1.3").
    return f"{value:#.3g}".rstrip(".")


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _slope_text(value: float) -> str:
    return f"{value:g}"


def describe(values) -> dict:
    """Per-seed values with their mean and sample std (None for one seed).

    A non-finite value (a diverged seed) makes the mean and std NaN.
    """
    values = [float(v) for v in values]
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"per_seed": values, "mean": float(np.mean(values)), "std": std}


def _mean_std(stats: dict, fmt=_pct) -> str:
    if stats["std"] is None:
        return fmt(stats["mean"])
    return f"{fmt(stats['mean'])} ± {fmt(stats['std'])}"


def spread_verdict(a: dict, b: dict) -> tuple[str, float | None]:
    """Compares the difference of two means with their seed-to-seed std.

    Returns a phrase and the ratio |difference| / spread, where the spread is
    the larger of the two standard deviations across seeds.
    """
    difference = abs(a["mean"] - b["mean"])
    if a["std"] is None or b["std"] is None:
        return (
            "one seed only, so the seed-to-seed spread is unknown and the difference "
            "cannot be judged",
            None,
        )
    spread = max(a["std"], b["std"])
    if spread <= 1e-12 * max(abs(a["mean"]), abs(b["mean"]), 1.0):  # equal up to rounding
        if difference <= 1e-12:
            return "no difference and no spread between seeds", 0.0
        return "every seed gave the same value, so any difference stands out", float("inf")
    ratio = round(difference / spread, 1)  # decide on the ratio as printed
    if ratio <= 1:
        return (
            f"within the seed-to-seed spread ({ratio:.1f}x the larger std): "
            "no measurable difference",
            ratio,
        )
    if ratio <= 2:
        return (
            "larger than the seed-to-seed spread, but less than twice it "
            f"({ratio:.1f}x): suggestive only",
            ratio,
        )
    return f"more than twice the seed-to-seed spread ({ratio:.1f}x): a clear difference", ratio


def spearman(x, y) -> float | None:
    """Spearman's rank correlation; None when undefined (under 3 points, or a constant)."""
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(spearmanr(x, y).statistic)


@dataclasses.dataclass(frozen=True)
class Measure:
    """One number per seed, read from a variant's summary, and how to print it."""

    title: str
    read: Callable[[dict], dict]
    fmt: Callable[[float], str]
    fmt_difference: Callable[[float], str]
    lower_is_better: bool


def _per_seed_column(v: dict, key: str, column: int) -> dict:
    return describe(np.asarray(v["curves"][key]["per_seed"], dtype="float64")[:, column])


def _loss_difference(d: float) -> str:
    return f"{d:+.2g}"


MEASURES = {
    "accuracy": Measure("test accuracy", lambda v: v["test_accuracy"], _pct, _pp, False),
    "first_loss": Measure(
        "training loss after epoch 1",
        lambda v: _per_seed_column(v, "loss", 0),
        _loss,
        _loss_difference,
        True,
    ),
    "last_loss": Measure(
        "training loss at the end",
        lambda v: _per_seed_column(v, "loss", -1),
        _loss,
        _loss_difference,
        True,
    ),
    "averaged_accuracy": Measure(
        "validation accuracy averaged over the epochs",
        lambda v: describe(np.asarray(v["curves"]["val_accuracy"]["per_seed"]).mean(axis=1)),
        _pct,
        _pp,
        False,
    ),
    "dead_end": Measure(
        "dead units at the end", lambda v: v["dead_units"]["total_last_epoch"], _pct, _pp, True
    ),
    "dead_worst": Measure(
        "dead units at the worst epoch",
        lambda v: v["dead_units"]["total_worst_epoch"],
        _pct,
        _pp,
        True,
    ),
}


def healthy(variants: dict) -> dict:
    """The variants none of whose seeds diverged: the only ones compared."""
    return {name: v for name, v in variants.items() if not v["diverged"]}


def compare(variants: dict, measure: str, a: str, b: str) -> dict:
    """Variant `a` against `b` on one measure, judged against the seed spread."""
    m = MEASURES[measure]
    stats_a, stats_b = m.read(variants[a]), m.read(variants[b])
    verdict, ratio = spread_verdict(stats_a, stats_b)
    difference = stats_a["mean"] - stats_b["mean"]
    if ratio is None or ratio <= 1 or difference == 0:
        outcome = "unknown" if ratio is None else "none"
    else:
        outcome = "better" if (difference < 0) == m.lower_is_better else "worse"
    return {
        "measure": measure, "a": a, "b": b, "stats_a": stats_a, "stats_b": stats_b,
        "difference": difference, "ratio": ratio, "verdict": verdict, "outcome": outcome,
    }  # fmt: skip


def comparisons(variants: dict, measure: str, pairs=PAIRS) -> list[dict]:
    """The comparisons of `pairs` whose variants both completed without diverging."""
    ok = healthy(variants)
    return [compare(ok, measure, a, b) for a, b in pairs if a in ok and b in ok]


def _short_verdict(c: dict) -> str:
    ratio = c["ratio"]
    if ratio is None:
        return "one seed: spread unknown"
    if ratio == float("inf"):
        return "no spread between seeds"
    if ratio <= 1:
        return f"within the seed spread, {ratio:.1f}x"
    if ratio <= 2:
        return f"beyond the seed spread but under twice it, {ratio:.1f}x"
    return f"more than twice the seed spread, {ratio:.1f}x"


def _overall(found: list[dict], effect: str) -> str:
    """One sentence on what the PReLU-vs-ReLU comparisons say together."""
    against_relu = [c for c in found if c["a"].startswith("prelu") and c["b"] == BASELINE]
    outcomes = {c["outcome"] for c in against_relu}
    if outcomes == {"unknown"}:
        return f"With one seed, whether PReLU changed {effect} cannot be judged."
    if outcomes <= {"none", "unknown"}:
        return (
            f"PReLU did not measurably change {effect}: the differences are within the "
            "seed-to-seed spread."
        )
    clear = any(c["outcome"] in ("better", "worse") and c["ratio"] > 2 for c in against_relu)
    strength = (
        "clearly (by more than twice the seed spread)"
        if clear
        else "slightly (beyond the seed spread)"
    )
    directions = sorted(outcomes & {"better", "worse"})
    return f"PReLU {strength} changed {effect}, for the {' and '.join(directions)}."


def _attribution(found: list[dict], variants: dict) -> str:
    """Whether LeakyReLU with the initial slope had the same effect as PReLU."""
    by_pair = {(c["a"], c["b"]): c for c in found}
    leaky = by_pair.get(("leaky_relu", BASELINE))
    effects = [
        c
        for c in found
        if c["a"].startswith("prelu") and c["b"] == BASELINE and c["outcome"] in ("better", "worse")
    ]
    if leaky is None or not effects:
        return ""
    fixed = _slope_text(variants["leaky_relu"]["initial_slope"])
    learned = [by_pair.get((c["a"], "leaky_relu")) for c in effects]
    learned = [c for c in learned if c is not None and c["outcome"] in ("better", "worse")]
    if learned:
        m = MEASURES[learned[0]["measure"]]
        details = "; ".join(
            f"{_label(variants, c['a'])} {m.fmt_difference(c['difference'])}, {c['outcome']}, "
            f"{_short_verdict(c)}"
            for c in learned
        )
        return (
            f"Against a slope fixed at {fixed} (LeakyReLU), learning it made a difference: "
            f"{details}."
        )
    if leaky["outcome"] == effects[0]["outcome"]:
        return (
            f"LeakyReLU, with the slope fixed at {fixed}, did the same: the fixed slope made the "
            "difference, and learning it added nothing measurable."
        )
    return ""


def _headline(variants: dict, measure: str) -> str:
    """The verdict on one measure, with ReLU's and each PReLU's numbers."""
    m = MEASURES[measure]
    found = comparisons(variants, measure)
    vs_relu = [c for c in found if c["a"].startswith("prelu") and c["b"] == BASELINE]
    if not vs_relu:
        return "Needs ReLU and a PReLU variant among the completed, non-diverged ones."
    numbers = "; ".join(
        f"{_label(variants, c['a'])} {_mean_std(c['stats_a'], m.fmt)} "
        f"({m.fmt_difference(c['difference'])}, {_short_verdict(c)})"
        for c in vs_relu
    )
    text = f"{_overall(found, m.title)} ReLU {_mean_std(vs_relu[0]['stats_b'], m.fmt)}; {numbers}."
    attribution = _attribution(found, variants)
    return f"{text} {attribution}" if attribution else text


def divergence_findings(variants: dict) -> list[str]:
    lines = []
    for name, v in variants.items():
        if v["diverged"]:
            runs = ", ".join(f"seed {d['seed']} (epoch {d['epoch']})" for d in v["diverged"])
            seeds = len(v["test_accuracy"]["per_seed"])
            lines.append(
                f"{_label(variants, name)} diverged in {len(v['diverged'])} of {seeds} seeds: "
                f"{runs}. Its losses became NaN or infinite, so it is left out of every comparison."
            )
    return lines


def accuracy_findings(variants: dict) -> list[str]:
    return [_headline(variants, "accuracy")]


def convergence_findings(variants: dict) -> list[str]:
    return [
        _headline(variants, measure) for measure in ("first_loss", "last_loss", "averaged_accuracy")
    ]


def _final_per_layer(v: dict) -> dict[str, float]:
    return {layer: curve["mean"][-1] for layer, curve in v["dead_units"]["per_epoch"].items()}


def dead_unit_findings(variants: dict, batch_norm: bool) -> list[str]:
    ok = healthy(variants)
    lines = []
    for name, v in ok.items():
        dead = v["dead_units"]
        layers = [
            f"{layer} {_pct(max(curve['mean']))}"
            for layer, curve in dead["per_epoch"].items()
            if max(curve["mean"]) > 0
        ]
        lines.append(
            f"{_label(variants, name)}: {_mean_std(dead['total_worst_epoch'])} at the worst "
            f"epoch, {_mean_std(dead['total_last_epoch'])} at the end"
            + (f" (worst epoch per layer: {', '.join(layers)})" if layers else "")
            + "."
        )
    if ok and all(max(v["dead_units"]["total_worst_epoch"]["per_seed"]) == 0 for v in ok.values()):
        lines.append(
            "No variant had a dead unit on the probe batch after any epoch: dying ReLU did not "
            "occur in this setting, so there was nothing for PReLU to mitigate."
        )
    elif ok:
        lines.append(_headline(variants, "dead_end"))
        relu = _final_per_layer(ok[BASELINE]) if BASELINE in ok else {}
        dying = [layer for layer, share in relu.items() if share > 0]
        if dying:
            shares = ", ".join(f"{layer} {_pct(relu[layer])}" for layer in dying)
            text = f"ReLU ended with dead units in {len(dying)} of {len(relu)} layers ({shares}; "
            text += "mean over seeds)."
            fewer = [
                f"{_label(variants, name)} in "
                f"{sum(_final_per_layer(v)[layer] < relu[layer] for layer in dying)}"
                for name, v in ok.items()
                if name != BASELINE
            ]
            if fewer:
                text += f" Fewer dead units at the end in those layers: {', '.join(fewer)}."
            lines.append(f"{text} Per layer and epoch: the tables below and `dead_units.png`.")
    lines.append(
        "A PReLU or LeakyReLU unit counted as dead here (input <= 0 on every probe sample) "
        "still passes slope * x and a gradient; a dead ReLU unit passes neither."
    )
    if batch_norm:
        lines.append(
            "Before the first epoch BatchNormalization's moving statistics are still at their "
            "initial values, so only the epochs after it are compared."
        )
    return lines


def slope_findings(variants: dict) -> list[str]:
    lines = []
    for name, v in healthy(variants).items():
        slopes = v.get("slopes")
        if not slopes:
            continue
        layers = list(slopes)
        means = [slopes[layer]["mean"]["mean"] for layer in layers]
        depths = [slopes[layer]["depth"] for layer in layers]
        start = v["initial_slope"]
        profile = ", ".join(
            f"{layer} {mean:.3f}" for layer, mean in zip(layers, means, strict=True)
        )
        text = (
            f"{_label(variants, name)}: mean learned slope by depth (initially "
            f"{_slope_text(start)}): {profile}. "
        )
        if len(layers) > 1:
            smallest, largest = int(np.argmin(means)), int(np.argmax(means))
            rho = spearman(depths, means)
            text += f"Largest in {layers[largest]}, smallest in {layers[smallest]}"
            if rho is not None:
                trend = "fall" if rho < -0.5 else "rise" if rho > 0.5 else "show no clear trend"
                text += f"; the slopes {trend} with depth (Spearman rho {rho:+.2f})"
            text += ". "
            falling = rho < -0.5 if rho is not None else means[-1] < means[0]
            if largest == 0 and falling:
                text += (
                    "This matches He et al. 2015: large slopes in the first layer, smaller "
                    "ones deeper."
                )
            else:
                seen = "only partly seen here." if largest == 0 or falling else "not seen here."
                text += (
                    "He et al. 2015 report the largest slopes in the first layer and smaller "
                    f"ones deeper; that pattern is {seen}"
                )
        moves = [mean - start for mean in means]
        farthest = int(np.argmax(np.abs(moves)))
        text += (
            f" No layer mean moved more than {abs(moves[farthest]):.3f} from the start "
            f"({layers[farthest]}, {moves[farthest]:+.3f}): where that is small, the initial "
            "slope (`--slope-init`) decided the learned one more than training did."
        )
        values = np.concatenate([np.ravel(slopes[layer]["per_seed"]) for layer in layers])
        text += f" Range over all seeds and units: [{values.min():.3f}, {values.max():.3f}]"
        negative, above_one = int(np.sum(values < 0)), int(np.sum(values > 1))
        if negative or above_one:
            text += (
                f"; {negative} of {values.size} slopes went negative and {above_one} above 1 "
                "(non-monotone or amplifying activations: the bad values the blog post warns "
                "about)."
            )
        else:
            text += "; none went negative or above 1."
        lines.append(text)
    return lines


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _seconds_per_epoch(v: dict) -> dict:
    """Later epochs, as the first one also traces and compiles; the first if it is all."""
    seconds = v["seconds_per_epoch"]
    return seconds["later_epochs"] or seconds["first_epoch"]


def _diverged_text(v: dict) -> str:
    seeds = ", ".join(str(d["seed"]) for d in v["diverged"])
    return f"diverged (seed{'s' if len(v['diverged']) > 1 else ''} {seeds})"


SUMMARY_HEADER = [
    "variant",
    "test accuracy",
    "training loss after epoch 1",
    "dead units at the end",
    "s/epoch",
]


def summary_rows(variants: dict) -> list[list[str]]:
    """Per variant: test accuracy, first-epoch loss, final dead units and s/epoch."""
    rows = []
    for name, v in variants.items():
        if v["diverged"]:
            rows.append([_label(variants, name), _diverged_text(v), "", "", ""])
            continue
        rows.append(
            [
                _label(variants, name),
                _mean_std(v["test_accuracy"]),
                _mean_std(MEASURES["first_loss"].read(v), _loss),
                _mean_std(v["dead_units"]["total_last_epoch"]),
                _mean_std(_seconds_per_epoch(v), lambda s: f"{s:.2f}"),
            ]
        )
    return rows


def summary_text(results: dict) -> str:
    """The summary as aligned plain text, for the console."""
    rows = [SUMMARY_HEADER] + summary_rows(results["variants"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    seeds = len(results["config"]["seeds"])
    note = f"Mean ± std over {seeds} seed(s). s/epoch: wall time on this machine, not a cost."
    return "\n".join([line.rstrip() for line in lines] + [note])


def comparison_table(variants: dict) -> list[str]:
    rows = []
    for measure, m in MEASURES.items():
        for c in comparisons(variants, measure):
            rows.append(
                [
                    m.title,
                    f"{_label(variants, c['a'])} vs {_label(variants, c['b'])}",
                    _mean_std(c["stats_a"], m.fmt),
                    _mean_std(c["stats_b"], m.fmt),
                    m.fmt_difference(c["difference"]),
                    _short_verdict(c),
                ]
            )
    if not rows:
        return []
    note = (
        "Each difference is judged against the seed-to-seed spread: the larger of the two "
        "standard deviations over seeds; the verdict gives the ratio of the difference to it."
    )
    header = ["measure", "comparison", "first", "second", "difference", "verdict"]
    return ["## Comparisons", "", note, "", _table(header, rows), ""]


def _accuracy_table(variants: dict) -> list[str]:
    base = healthy(variants).get(BASELINE)
    rows = []
    for name, v in variants.items():
        accuracy = v["test_accuracy"]
        per_seed = ", ".join("diverged" if a is None else _pct(a) for a in accuracy["per_seed"])
        if v["diverged"]:
            mean, versus = _diverged_text(v), ""
        else:
            mean = _mean_std(accuracy)
            versus = (
                _pp(accuracy["mean"] - base["test_accuracy"]["mean"])
                if base and name != BASELINE
                else ""
            )
        rows.append([_label(variants, name), mean, per_seed, versus, str(v["params"])])
    header = ["variant", "mean ± std", "per seed", "vs ReLU", "parameters"]
    return ["## Test accuracy", "", _table(header, rows), ""]


def _dead_unit_tables(variants: dict, probe_size: int) -> list[str]:
    ok = healthy(variants)
    if not ok:
        return []
    layers = next(iter(ok.values()))["dead_units"]["layers"]
    rows = []
    for name, v in ok.items():
        dead = v["dead_units"]
        rows.append(
            [_label(variants, name), _pct(dead["total_before_training"]["mean"])]
            + [_pct(max(dead["per_epoch"][layer]["mean"])) for layer in layers]
            + [_mean_std(dead["total_worst_epoch"]), _mean_std(dead["total_last_epoch"])]
        )
    header = ["variant", "before training"] + [f"{layer}, worst epoch" for layer in layers]
    header += ["all, worst epoch", "all, end"]
    note = (
        f"Share of units whose input is <= 0 on all {probe_size} probe samples (training "
        "data); mean over seeds, ± std for the totals."
    )
    out = ["## Dead units", "", note, "", _table(header, rows), ""]
    out += [
        "### Dead units per layer and epoch",
        "",
        "Mean over seeds; epoch 0 is before training.",
        "",
    ]
    for name, v in ok.items():
        dead = v["dead_units"]
        epochs = len(dead["total_per_epoch"]["mean"])
        # At most a dozen columns: the first epochs, where units die, and the last.
        shown = sorted(set(np.linspace(0, epochs, min(epochs + 1, 12)).round().astype(int)))
        body = []
        for layer in layers + ["all"]:
            if layer == "all":
                curve = [dead["total_before_training"]["mean"]] + dead["total_per_epoch"]["mean"]
            else:
                curve = [dead["before_training"][layer]["mean"]] + dead["per_epoch"][layer]["mean"]
            body.append([layer] + [_pct(curve[e]) for e in shown])
        out += [
            f"**{_label(variants, name)}**",
            "",
            _table(["layer"] + [f"epoch {e}" for e in shown], body),
            "",
        ]
    return out


def _slope_table(variants: dict) -> list[str]:
    prelus = {name: v["slopes"] for name, v in healthy(variants).items() if v.get("slopes")}
    if not prelus:
        return []
    starts = sorted({variants[name]["initial_slope"] for name in prelus})
    rows = []
    for layer in next(iter(prelus.values())):
        row = [layer]
        for slopes in prelus.values():
            entry = slopes[layer]
            mean = _mean_std(entry["mean"], fmt=_number)
            row.append(f"{mean} [{entry['min']:.3f}, {entry['max']:.3f}]")
        rows.append(row)
    note = (
        "The layer's mean slope ± std over seeds, then [min, max] over seeds and units; "
        f"every slope starts at {' or '.join(_slope_text(value) for value in starts)}."
    )
    header = ["layer"] + [_label(variants, n) for n in prelus]
    return ["## Learned slopes per layer", "", note, "", _table(header, rows), ""]


def _time_table(variants: dict) -> list[str]:
    rows = []
    for name, v in healthy(variants).items():
        seconds = v["seconds_per_epoch"]
        later = seconds["later_epochs"]
        rows.append(
            [
                _label(variants, name),
                _mean_std(seconds["first_epoch"], fmt=_seconds),
                _mean_std(later, fmt=_seconds) if later else "n/a",
            ]
        )
    note = f"Training plus validation, monitors excluded; mean ± std over seeds. {TIME_CAVEAT}"
    header = ["variant", "first epoch (compiles)", "later epochs"]
    return ["## Time per epoch", "", note, "", _table(header, rows), ""]


def render(results: dict, figures=tuple(FIGURES)) -> str:
    """The report as Markdown, showing the named figure files."""
    config = results["config"]
    variants = results["variants"]
    samples = config["samples"]
    wall = sum(v["wall_seconds"] for v in variants.values())
    out = [f"# How PReLU changed training: {config['model']} on {config['dataset']}", ""]
    out += [SEED_ARTICLE, ""]
    out.append(
        f"{len(config['seeds'])} seed(s) x {config['epochs']} epoch(s) per variant; "
        f"{samples['train']} training, {samples['val']} validation and {samples['test']} test "
        f"samples; batch size {config['batch_size']}; {config['optimizer']} "
        f"(learning rate: {config['learning_rate_source']}). PReLU slopes start at, and "
        f"LeakyReLU's is fixed at, {_slope_text(config['slope_init'])}. Backend "
        f"{config['backend']} (Keras {config['keras_version']}, {results['machine']['cpu_count']} "
        f"CPUs), {config['distribution']}. Training time {wall:.0f} s."
    )
    out += ["", f"Model: {config['model_description']}"]
    if results["pending"]:
        out += ["", f"**Incomplete run**: not yet trained: {', '.join(results['pending'])}."]
    if not variants:
        return "\n".join(out) + "\n"
    out += ["", "## Summary", "", _table(SUMMARY_HEADER, summary_rows(variants)), ""]
    findings = {
        "Diverged runs": divergence_findings(variants),
        "Accuracy": accuracy_findings(variants),
        "Convergence": convergence_findings(variants),
        "Dead units": dead_unit_findings(variants, config["batch_norm"]),
        "Learned slopes": slope_findings(variants) or ["No PReLU variant was trained."],
        "Time": [TIME_CAVEAT],
    }
    out += ["## Conclusions", "", "Computed from the numbers below (and in `results.json`).", ""]
    for title, lines in findings.items():
        if lines:
            out.append(f"**{title}.**")
            out += [f"- {line}" for line in lines]
            out.append("")
    out += comparison_table(variants)
    out += _accuracy_table(variants)
    out += _dead_unit_tables(variants, config["probe_size"])
    out += _slope_table(variants)
    out += _time_table(variants)
    if figures:
        out += ["## Figures", ""]
    for filename in figures:
        out += [f"![{FIGURES[filename]}]({filename})", "", f"*{FIGURES[filename]}*", ""]
    return "\n".join(out)


def _array(values) -> np.ndarray:
    """Numbers from results.json as floats; null (a non-finite value) becomes NaN."""
    return np.asarray(values, dtype="float64")


def _legend_label(variants: dict, name: str) -> str:
    text = _label(variants, name)
    return f"{text} (diverged)" if variants[name]["diverged"] else text


def _curve(ax, x, y, variants: dict, name: str, **kwargs):
    style = STYLES.get(name, {})
    return ax.plot(x, y, markersize=4, label=_legend_label(variants, name), **style, **kwargs)


def figures(results: dict) -> dict:
    """The matplotlib figures of the report, by file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    variants = results["variants"]
    config = results["config"]
    made = {}

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    panels = [
        ("loss", "training loss", 1),
        ("val_loss", "validation loss", 1),
        ("accuracy", "training accuracy (%)", 100),
        ("val_accuracy", "validation accuracy (%)", 100),
    ]
    for ax, (key, title, scale) in zip(axes.flat, panels, strict=True):
        for name, v in variants.items():
            # nanmean: a diverged seed drops out of the epochs where it has no number.
            per_seed = _array(v["curves"][key]["per_seed"]) * scale
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # epochs where all diverged
                mean, std = np.nanmean(per_seed, axis=0), np.nanstd(per_seed, axis=0)
            epochs = np.arange(1, len(mean) + 1)
            _curve(ax, epochs, mean, variants, name)
            ax.fill_between(epochs, mean - std, mean + std, color=STYLES[name]["color"], alpha=0.15)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[0]:
        # Losses span orders of magnitude; a panel with no positive number stays linear.
        if any(np.nanmax(line.get_ydata(), initial=0) > 0 for line in ax.get_lines()):
            ax.set_yscale("log")
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    axes[0, 0].legend(fontsize=8)
    title = f"{config['model']} on {config['dataset']}: mean ± std over seeds"
    if any(v["diverged"] for v in variants.values()):
        title += "; a diverged seed drops out from the epoch where it has no numbers"
    fig.suptitle(title)
    fig.tight_layout()
    made["training_curves.png"] = fig

    layers = next(iter(variants.values()))["dead_units"]["layers"] if variants else []
    panels = layers + ["all layers"]
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.5 * columns, 2.8 * rows + 0.6), squeeze=False, sharey=True
    )
    for ax, panel in zip(axes.flat, panels, strict=False):
        for name, v in variants.items():
            dead = v["dead_units"]
            if panel == "all layers":
                curve = [dead["total_before_training"]["mean"]] + dead["total_per_epoch"]["mean"]
            else:
                curve = [dead["before_training"][panel]["mean"]] + dead["per_epoch"][panel]["mean"]
            _curve(ax, np.arange(len(curve)), _array(curve) * 100, variants, name)
        ax.set_title(panel)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("dead units (%)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Units whose input is <= 0 on every probe sample (mean over seeds)")
    fig.tight_layout()
    made["dead_units.png"] = fig

    prelus = {name: v["slopes"] for name, v in variants.items() if v.get("slopes")}
    if prelus:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5))
        layer_styles = ["-", "--", ":", "-."]
        for index, (name, slopes) in enumerate(prelus.items()):
            names = list(slopes)
            depths = np.asarray([slopes[layer]["depth"] for layer in names])
            means = _array([slopes[layer]["mean"]["mean"] for layer in names])
            stds = _array([slopes[layer]["mean"]["std"] or 0 for layer in names])
            offset = 0.08 * (index - (len(prelus) - 1) / 2)
            style = STYLES[name]
            left.errorbar(
                depths + offset,
                means,
                yerr=stds,
                capsize=3,
                label=_legend_label(variants, name),
                **style,
            )
            left.vlines(
                depths + offset,
                _array([slopes[layer]["min"] for layer in names]),
                _array([slopes[layer]["max"] for layer in names]),
                color=style["color"],
                alpha=0.35,
                linewidth=6,
            )
            start = variants[name]["initial_slope"]
            for layer, color in zip(
                names, plt.cm.viridis(np.linspace(0, 0.9, len(names))), strict=True
            ):
                curve = _array([start] + slopes[layer]["mean_per_epoch"]["mean"])
                right.plot(
                    np.arange(len(curve)),
                    curve,
                    linestyle=layer_styles[index % len(layer_styles)],
                    marker=style["marker"],
                    markersize=3,
                    color=color,
                    label=f"{layer}, {_legend_label(variants, name)}",
                )
        for start in sorted({variants[name]["initial_slope"] for name in prelus}):
            for ax in (left, right):
                ax.axhline(start, color="black", linestyle=":", linewidth=1)
            left.plot([], [], color="black", linestyle=":", label=f"initial {_slope_text(start)}")
        left.set_xticks(depths, names)
        left.set_xlabel("layer (input to output)")
        left.set_ylabel("slope")
        left.set_title("after training: mean ± std over seeds; bar = min..max")
        left.legend(fontsize=8)
        right.set_xlabel("epoch (0: initial value)")
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set_title("layer mean slope per epoch (mean over seeds)")
        right.legend(fontsize=7, ncol=len(prelus), loc="upper center", bbox_to_anchor=(0.5, -0.18))
        for ax in (left, right):
            ax.grid(alpha=0.3)
        fig.tight_layout()
        made["slopes.png"] = fig
    return made


def write_atomic(path: str, data: str | bytes) -> None:
    """Writes a file whole or not at all, with the usual permissions (0666 less the umask).

    A temporary file in the same directory is renamed over `path`, so an
    interrupted run never leaves half a file; `tempfile` creates it 0600,
    which the rename would keep.
    """
    directory = os.path.dirname(path) or "."
    mode = "wb" if isinstance(data, bytes) else "w"
    with tempfile.NamedTemporaryFile(mode, dir=directory, suffix=".tmp", delete=False) as handle:
        handle.write(data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(handle.name, 0o666 & ~umask)
    os.replace(handle.name, path)


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def write(results: dict, out_dir: str) -> str:
    """Writes `report.md` and the figures into `out_dir`; returns the report's path.

    `results` is in its `results.json` form (a non-finite number is None).
    Without matplotlib the report is written without figures.
    """
    try:
        made = figures(results)
    except ImportError:
        print("matplotlib is not installed: no figures (pip install matplotlib).")
        made = {}
    for filename, fig in made.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        fig.clf()  # figures() made them with pyplot, which keeps them until closed
        _close(fig)
        write_atomic(os.path.join(out_dir, filename), buffer.getvalue())
    path = os.path.join(out_dir, "report.md")
    write_atomic(path, render(results, tuple(made)))
    return path


REQUIRED = {
    "config": dict,
    "machine": dict,
    "variants": dict,
    "pending": list,
}


def _reject_constant(name: str):
    raise ValueError(
        f"not strict JSON: it contains {name} (results.json stores non-finite numbers as null)"
    )


def load(path: str) -> dict:
    """Reads a results.json written by `examples.compare_activations`.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not strict JSON, or not such a results file.
    """
    with open(path) as handle:
        try:
            results = json.load(handle, parse_constant=_reject_constant)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON ({error})") from error
    if not isinstance(results, dict):
        raise ValueError("not a results.json of examples.compare_activations (not an object)")
    for key, kind in REQUIRED.items():
        if not isinstance(results.get(key), kind):
            raise ValueError(
                f"not a results.json of examples.compare_activations (no {key!r} {kind.__name__})"
            )
    return results


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m examples.activation_report",
        description="Rebuild report.md and the figures from a results.json of "
        "examples.compare_activations.",
    )
    parser.add_argument("results", metavar="RESULTS.json", help="the results file to report on")
    parser.add_argument(
        "--out", default=None, help="output directory (default: the folder of RESULTS.json)"
    )
    args = parser.parse_args(argv)
    try:
        results = load(args.results)
    except OSError as error:
        parser.error(f"cannot read RESULTS.json {args.results!r}: {error.strerror or error}")
    except ValueError as error:
        parser.error(f"RESULTS.json {args.results!r} is {error}")
    out = args.out if args.out is not None else os.path.dirname(args.results) or "."
    try:
        os.makedirs(out, exist_ok=True)
        path = write(results, out)
    except OSError as error:
        parser.error(f"--out {out!r} cannot be written: {error}")
    except (KeyError, TypeError, IndexError) as error:
        parser.error(
            f"RESULTS.json {args.results!r} lacks the fields this version of "
            f"examples.compare_activations writes ({type(error).__name__}: {error})"
        )
    print(f"Wrote {path} and its figures.")
    print(summary_text(results))
    return path


if __name__ == "__main__":
    main()
