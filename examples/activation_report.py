"""The report of `examples.compare_activations`: Markdown and plots.

Every sentence of the conclusions is computed from the numbers in
`results.json`; `write(results, out_dir)` rebuilds the report from them, so
it also works on the results of an interrupted run.
"""

import os

import numpy as np

BASELINE = "relu"
VARIANT_LABELS = {
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU (fixed slope)",
    "prelu": "PReLU (one slope per layer)",
    "prelu_channelwise": "PReLU (one slope per channel)",
}
COLORS = {
    "relu": "tab:gray",
    "leaky_relu": "tab:orange",
    "prelu": "tab:blue",
    "prelu_channelwise": "tab:green",
}
# The initial slope of results written before it was recorded per variant.
DEFAULT_INITIAL_SLOPE = 0.25
FIGURES = {
    "training_curves.png": "Training curves: loss and accuracy per epoch, mean over seeds with a ±1 std band.",
    "dead_units.png": "Dead units per activation layer and in total, per epoch (epoch 0 is before training).",
    "slopes.png": "Learned PReLU slopes: per layer after training (left) and their mean over the epochs (right).",
}


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _pp(value: float) -> str:
    rounded = round(100 * value, 1)
    return f"{rounded + 0.0:+.1f} pp"  # + 0.0 turns -0.0 into 0.0


def describe(values) -> dict:
    """Per-seed values with their mean and sample std (None for one seed)."""
    values = [float(v) for v in values]
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"per_seed": values, "mean": float(np.mean(values)), "std": std}


def _mean_std(stats: dict, fmt=_pct) -> str:
    if stats["std"] is None:
        return fmt(stats["mean"])
    return f"{fmt(stats['mean'])} ± {fmt(stats['std'])}"


def _number(value: float) -> str:
    return f"{value:.3f}"


def _loss(value: float) -> str:
    return f"{value:.3g}"  # losses fall by orders of magnitude


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _label(name: str) -> str:
    return VARIANT_LABELS.get(name, name)


def initial_slope(variant: dict) -> float:
    """A variant's initial (PReLU) or fixed (LeakyReLU) slope."""
    value = variant.get("initial_slope")
    return DEFAULT_INITIAL_SLOPE if value is None else float(value)


def _slope_text(value: float) -> str:
    return f"{value:g}"


def spread_verdict(a: dict, b: dict) -> tuple[str, float | None]:
    """Compares the difference of two means with their seed-to-seed std.

    Returns a phrase and the ratio |difference| / spread, where the spread is
    the larger of the two standard deviations across seeds.
    """
    difference = abs(a["mean"] - b["mean"])
    if a["std"] is None or b["std"] is None:
        return (
            "one seed only, so the seed-to-seed spread is unknown and the difference cannot be judged",
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
            f"within the seed-to-seed spread ({ratio:.1f}x the larger std): no measurable difference",
            ratio,
        )
    if ratio <= 2:
        return (
            f"larger than the seed-to-seed spread, but less than twice it ({ratio:.1f}x): suggestive only",
            ratio,
        )
    return f"more than twice the seed-to-seed spread ({ratio:.1f}x): a clear difference", ratio


def spearman(x, y) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None if undefined."""
    if len(x) < 3:
        return None

    def ranks(values):
        values = np.asarray(values, dtype="float64")
        order = values.argsort()
        result = np.empty(len(values))
        result[order] = np.arange(len(values))
        for value in np.unique(values):
            tied = values == value
            result[tied] = result[tied].mean()
        return result

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


class Measure:
    """One number per seed, read from a variant's summary, and how to print it."""

    def __init__(self, title: str, read, fmt, fmt_difference, lower_is_better: bool):
        self.title = title
        self.read = read
        self.fmt = fmt
        self.fmt_difference = fmt_difference
        self.lower_is_better = lower_is_better


def _seconds_key(v: dict) -> dict:
    later = v["seconds_per_epoch"]["later_epochs"]
    return later if later is not None else v["seconds_per_epoch"]["first_epoch"]


MEASURES = {
    "accuracy": Measure("test accuracy", lambda v: v["test_accuracy"], _pct, _pp, False),
    "first_loss": Measure(
        "training loss after epoch 1",
        lambda v: describe(np.asarray(v["curves"]["loss"]["per_seed"])[:, 0]),
        _loss,
        lambda d: f"{d:+.2g}",
        True,
    ),
    "last_loss": Measure(
        "training loss at the end",
        lambda v: describe(np.asarray(v["curves"]["loss"]["per_seed"])[:, -1]),
        _loss,
        lambda d: f"{d:+.2g}",
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
    "seconds": Measure("seconds per epoch", _seconds_key, _seconds, lambda d: f"{d:+.2f} s", True),
}
# Each PReLU variant against ReLU, and against a slope fixed at its initial value.
PAIRS = (
    ("prelu", "relu"),
    ("prelu_channelwise", "relu"),
    ("leaky_relu", "relu"),
    ("prelu", "leaky_relu"),
    ("prelu_channelwise", "leaky_relu"),
)


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
    return [compare(variants, measure, a, b) for a, b in pairs if a in variants and b in variants]


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
    if not against_relu:
        return "ReLU or PReLU is missing from the completed variants, so there is no verdict."
    outcomes = {c["outcome"] for c in against_relu}
    if outcomes == {"unknown"}:
        return f"With one seed, whether PReLU changed {effect} cannot be judged."
    if outcomes <= {"none", "unknown"}:
        return f"PReLU did not measurably change {effect}: the differences are within the seed-to-seed spread."
    clear = any(c["outcome"] in ("better", "worse") and c["ratio"] > 2 for c in against_relu)
    strength = (
        "clearly (by more than twice the seed spread)"
        if clear
        else "slightly (beyond the seed spread)"
    )
    directions = sorted({c["outcome"] for c in against_relu} & {"better", "worse"})
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
    fixed = _slope_text(initial_slope(variants["leaky_relu"]))
    learned = [by_pair.get((c["a"], "leaky_relu")) for c in effects]
    learned = [c for c in learned if c is not None and c["outcome"] in ("better", "worse")]
    if learned:
        m = MEASURES[learned[0]["measure"]]
        details = "; ".join(
            f"{_label(c['a'])} {m.fmt_difference(c['difference'])}, {c['outcome']}, {_short_verdict(c)}"
            for c in learned
        )
        return f"Against a slope fixed at {fixed} (LeakyReLU), learning it made a difference: {details}."
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
        return "Needs ReLU and a PReLU variant among the completed ones."
    numbers = "; ".join(
        f"{_label(c['a'])} {_mean_std(c['stats_a'], m.fmt)} ({m.fmt_difference(c['difference'])}, {_short_verdict(c)})"
        for c in vs_relu
    )
    text = f"{_overall(found, m.title)} ReLU {_mean_std(vs_relu[0]['stats_b'], m.fmt)}; {numbers}."
    attribution = _attribution(found, variants)
    return f"{text} {attribution}" if attribution else text


def accuracy_findings(variants: dict) -> list[str]:
    return [_headline(variants, "accuracy")]


def convergence_findings(variants: dict) -> list[str]:
    return [
        _headline(variants, measure) for measure in ("first_loss", "last_loss", "averaged_accuracy")
    ]


def dead_unit_findings(variants: dict) -> list[str]:
    lines = []
    for name, v in variants.items():
        dead = v["dead_units"]
        layers = [
            f"{layer} {_pct(max(curve['mean']))}"
            for layer, curve in dead["per_epoch"].items()
            if max(curve["mean"]) > 0
        ]
        lines.append(
            f"{_label(name)}: {_mean_std(dead['total_worst_epoch'])} at the worst epoch, "
            f"{_mean_std(dead['total_last_epoch'])} at the end"
            + (f" (worst epoch per layer: {', '.join(layers)})" if layers else "")
            + "."
        )
    if all(max(v["dead_units"]["total_worst_epoch"]["per_seed"]) == 0 for v in variants.values()):
        lines.append(
            "No variant had a dead unit on the probe batch after any epoch: dying ReLU did not occur in this "
            "setting, so there was nothing for PReLU to mitigate."
        )
    else:
        lines.append(_headline(variants, "dead_end"))
    lines.append(
        "A PReLU unit counted as dead here (input <= 0 on every probe sample) still passes slope * x "
        "and a gradient; a dead ReLU unit passes neither. Before the first epoch BatchNormalization's "
        "moving statistics are still at their initial values, so only the epochs after it are compared."
    )
    return lines


def slope_findings(variants: dict) -> list[str]:
    lines = []
    for name, v in variants.items():
        slopes = v.get("slopes")
        if not slopes:
            continue
        layers = list(slopes)
        means = [slopes[layer]["mean"]["mean"] for layer in layers]
        depths = [slopes[layer]["depth"] for layer in layers]
        profile = ", ".join(
            f"{layer} {mean:.3f}" for layer, mean in zip(layers, means, strict=True)
        )
        text = f"{_label(name)}: mean learned slope by depth (initially {_slope_text(initial_slope(v))}): {profile}. "
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
                text += "This matches He et al. 2015: large slopes in the first layer, smaller ones deeper."
            else:
                seen = "only partly seen here." if largest == 0 or falling else "not seen here."
                text += (
                    "He et al. 2015 report the largest slopes in the first layer and smaller ones deeper; "
                    f"that pattern is {seen}"
                )
        start = initial_slope(v)
        moves = [mean - start for mean in means]
        farthest = int(np.argmax(np.abs(moves)))
        text += (
            f" No layer mean moved more than {abs(moves[farthest]):.3f} from the start "
            f"({layers[farthest]}, {moves[farthest]:+.3f}): where that is small, the initial slope "
            "(`--slope-init`) decided the learned one more than training did."
        )
        values = np.concatenate([np.ravel(slopes[layer]["per_seed"]) for layer in layers])
        text += f" Range over all seeds and units: [{values.min():.3f}, {values.max():.3f}]"
        negative, above_one = int(np.sum(values < 0)), int(np.sum(values > 1))
        if negative or above_one:
            text += (
                f"; {negative} of {values.size} slopes went negative and {above_one} above 1 "
                "(non-monotone or amplifying activations: the bad values the seed article warns about)."
            )
        else:
            text += "; none went negative or above 1."
        lines.append(text)
    return lines


def time_findings(variants: dict) -> list[str]:
    later = all(v["seconds_per_epoch"]["later_epochs"] is not None for v in variants.values())
    which = (
        "the epochs after the first (which compiles)"
        if later
        else "the first epoch, compilation included"
    )
    lines = [_headline(variants, "seconds")]
    for c in comparisons(variants, "seconds", PAIRS[:2]):
        relative = c["stats_a"]["mean"] / c["stats_b"]["mean"] - 1
        more = "more" if relative >= 0 else "less"
        lines.append(f"{_label(c['a'])} took {abs(relative):.0%} {more} time per epoch than ReLU.")
    lines.append(f"Timed over {which}; other work on the machine widens the spread.")
    return lines


def comparison_table(variants: dict) -> list[str]:
    rows = []
    for measure, m in MEASURES.items():
        for c in comparisons(variants, measure):
            rows.append(
                [
                    m.title,
                    f"{_label(c['a'])} vs {_label(c['b'])}",
                    _mean_std(c["stats_a"], m.fmt),
                    _mean_std(c["stats_b"], m.fmt),
                    m.fmt_difference(c["difference"]),
                    _short_verdict(c),
                ]
            )
    if not rows:
        return []
    note = (
        "Each difference is judged against the seed-to-seed spread: the larger of the two standard "
        "deviations over seeds; the verdict gives the ratio of the difference to it."
    )
    header = ["measure", "comparison", "first", "second", "difference", "verdict"]
    return ["## Comparisons", "", note, "", _table(header, rows), ""]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _accuracy_table(variants: dict) -> list[str]:
    base = variants.get(BASELINE)
    rows = []
    for name, v in variants.items():
        accuracy = v["test_accuracy"]
        rows.append(
            [
                _label(name),
                _mean_std(accuracy),
                ", ".join(_pct(a) for a in accuracy["per_seed"]),
                _pp(accuracy["mean"] - base["test_accuracy"]["mean"])
                if base and name != BASELINE
                else "",
                str(v["params"]),
                str(v["params"] - base["params"]) if base else "",
            ]
        )
    header = ["variant", "mean ± std", "per seed", "vs ReLU", "parameters", "extra parameters"]
    return ["## Test accuracy", "", _table(header, rows), ""]


def _dead_unit_table(variants: dict, probe_size: int) -> list[str]:
    layers = next(iter(variants.values()))["dead_units"]["layers"]
    rows = []
    for name, v in variants.items():
        dead = v["dead_units"]
        rows.append(
            [_label(name), _pct(dead["total_before_training"]["mean"])]
            + [_pct(max(dead["per_epoch"][layer]["mean"])) for layer in layers]
            + [_mean_std(dead["total_worst_epoch"]), _mean_std(dead["total_last_epoch"])]
        )
    header = ["variant", "before training"] + [f"{layer}, worst epoch" for layer in layers]
    header += ["all, worst epoch", "all, end"]
    note = (
        f"Share of units whose input is <= 0 on all {probe_size} probe samples (training data); "
        "mean over seeds, ± std for the totals."
    )
    return ["## Dead units", "", note, "", _table(header, rows), ""]


def _slope_table(variants: dict) -> list[str]:
    prelus = {name: v["slopes"] for name, v in variants.items() if v.get("slopes")}
    if not prelus:
        return []
    starts = sorted({initial_slope(variants[name]) for name in prelus})
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
    return [
        "## Learned slopes per layer",
        "",
        note,
        "",
        _table(["layer"] + [_label(n) for n in prelus], rows),
        "",
    ]


def _time_table(variants: dict) -> list[str]:
    rows = []
    for name, v in variants.items():
        seconds = v["seconds_per_epoch"]
        later = seconds["later_epochs"]
        rows.append(
            [
                _label(name),
                _mean_std(seconds["first_epoch"], fmt=_seconds),
                _mean_std(later, fmt=_seconds) if later else "n/a",
            ]
        )
    note = "Training plus validation, monitors excluded; mean ± std over seeds."
    return [
        "## Time per epoch",
        "",
        note,
        "",
        _table(["variant", "first epoch (compiles)", "later epochs"], rows),
        "",
    ]


def render(results: dict, figures=tuple(FIGURES)) -> str:
    """The report as Markdown, showing the named figure files."""
    config = results["config"]
    variants = results["variants"]
    samples = config["samples"]
    out = [f"# How PReLU changed training: {config['model']} on {config['dataset']}", ""]
    out.append(
        f"{len(config['seeds'])} seed(s) x {config['epochs']} epoch(s) per variant; "
        f"{samples['train']} training, {samples['val']} validation and {samples['test']} test samples; "
        f"batch size {config['batch_size']}; {config['optimizer']}. "
        f"PReLU slopes start at, and LeakyReLU's is fixed at, "
        f"{_slope_text(config.get('slope_init', DEFAULT_INITIAL_SLOPE))}. "
        f"Backend {config['backend']} (Keras {config['keras_version']}, {config['cpu_count']} CPUs), "
        f"{config['distribution']}. Wall time {results['wall_seconds']:.0f} s."
    )
    if config.get("model_description"):
        out += ["", f"Model: {config['model_description']}"]
    if results["pending"]:
        out += ["", f"**Incomplete run**: not yet trained: {', '.join(results['pending'])}."]
    if not variants:
        return "\n".join(out) + "\n"
    findings = {
        "Accuracy": accuracy_findings(variants),
        "Convergence": convergence_findings(variants),
        "Dead units": dead_unit_findings(variants),
        "Learned slopes": slope_findings(variants) or ["No PReLU variant was trained."],
        "Cost": time_findings(variants),
    }
    out += [
        "",
        "## Conclusions",
        "",
        "Computed from the numbers below (and in `results.json`).",
        "",
    ]
    for title, lines in findings.items():
        out.append(f"**{title}.**")
        out += [f"- {line}" for line in lines]
        out.append("")

    out += comparison_table(variants)
    out += _accuracy_table(variants)
    out += _dead_unit_table(variants, config["probe_size"])
    out += _slope_table(variants)
    out += _time_table(variants)
    out += ["## Figures", ""]
    for filename in figures:
        out += [f"![{FIGURES[filename]}]({filename})", "", f"*{FIGURES[filename]}*", ""]
    return "\n".join(out)


def plot(results: dict, out_dir: str) -> list[str]:
    """Writes the PNG figures; returns their paths (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install matplotlib).")
        return []
    variants = results["variants"]
    paths = []

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for ax, (key, title) in zip(
        axes.flat,
        [
            ("loss", "training loss"),
            ("val_loss", "validation loss"),
            ("accuracy", "training accuracy"),
            ("val_accuracy", "validation accuracy"),
        ],
        strict=True,
    ):
        for name, v in variants.items():
            mean, std = np.asarray(v["curves"][key]["mean"]), np.asarray(v["curves"][key]["std"])
            epochs = np.arange(1, len(mean) + 1)
            ax.plot(
                epochs, mean, marker="o", markersize=3, color=COLORS.get(name), label=_label(name)
            )
            ax.fill_between(epochs, mean - std, mean + std, color=COLORS.get(name), alpha=0.2)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    for ax in axes[0]:
        ax.set_yscale("log")  # the losses span orders of magnitude
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        f"{results['config']['model']} on {results['config']['dataset']}: mean ± std over seeds"
    )
    fig.tight_layout()
    paths.append(_save(fig, out_dir, "training_curves.png"))

    layers = next(iter(variants.values()))["dead_units"]["layers"] if variants else []
    panels = layers + ["all layers"]
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False, sharey=True
    )
    for ax, panel in zip(axes.flat, panels, strict=False):
        for name, v in variants.items():
            dead = v["dead_units"]
            if panel == "all layers":
                curve = [dead["total_before_training"]["mean"]] + dead["total_per_epoch"]["mean"]
            else:
                curve = [dead["before_training"][panel]["mean"]] + dead["per_epoch"][panel]["mean"]
            ax.plot(
                range(len(curve)),
                np.asarray(curve) * 100,
                marker="o",
                markersize=3,
                color=COLORS.get(name),
                label=_label(name),
            )
        ax.set_title(panel)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("dead units (%)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Units whose input is <= 0 on every probe sample")
    fig.tight_layout()
    paths.append(_save(fig, out_dir, "dead_units.png"))

    prelus = {name: v["slopes"] for name, v in variants.items() if v.get("slopes")}
    if prelus:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5))
        styles = ["-", "--", ":"]
        starts = set()
        for index, (name, slopes) in enumerate(prelus.items()):
            names = list(slopes)
            depths = [slopes[layer]["depth"] for layer in names]
            means = [slopes[layer]["mean"]["mean"] for layer in names]
            stds = [slopes[layer]["mean"]["std"] or 0 for layer in names]
            lows = [slopes[layer]["min"] for layer in names]
            highs = [slopes[layer]["max"] for layer in names]
            offset = 0.08 * (index - (len(prelus) - 1) / 2)
            x = np.asarray(depths) + offset
            left.errorbar(
                x,
                means,
                yerr=stds,
                marker="o",
                capsize=3,
                color=COLORS.get(name),
                label=_label(name),
            )
            left.vlines(x, lows, highs, color=COLORS.get(name), alpha=0.35, linewidth=6)
            start = initial_slope(variants[name])
            starts.add(start)
            for layer, color in zip(
                names, plt.cm.viridis(np.linspace(0, 0.9, len(names))), strict=True
            ):
                curve = [start] + slopes[layer]["mean_per_epoch"]["mean"]
                right.plot(
                    range(len(curve)),
                    curve,
                    styles[index % len(styles)],
                    color=color,
                    label=f"{layer} ({name})",
                )
        for start in sorted(starts):
            left.axhline(
                start,
                color="black",
                linestyle=":",
                linewidth=1,
                label=f"initial {_slope_text(start)}",
            )
        left.set_xticks(depths, names)
        left.set_xlabel("layer (input to output)")
        left.set_ylabel("slope")
        left.set_title("after training: mean ± std over seeds; bar = min..max")
        left.legend(fontsize=8)
        for start in sorted(starts):
            right.axhline(start, color="black", linestyle=":", linewidth=1)
        right.set_xlabel("epoch (0: initial value)")
        right.set_title("layer mean slope per epoch (mean over seeds)")
        right.legend(fontsize=7, ncol=len(prelus), loc="upper center", bbox_to_anchor=(0.5, -0.18))
        for ax in (left, right):
            ax.grid(alpha=0.3)
        fig.tight_layout()
        paths.append(_save(fig, out_dir, "slopes.png"))
    return paths


def _save(fig, out_dir: str, filename: str) -> str:
    import matplotlib.pyplot as plt

    path = os.path.join(out_dir, filename)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(results: dict, out_dir: str) -> str:
    """Writes `report.md` and the figures into `out_dir`; returns the report's path."""
    figures = [os.path.basename(path) for path in plot(results, out_dir)]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as handle:
        handle.write(render(results, figures))
    return path
