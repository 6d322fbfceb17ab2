"""Exact paired statistics for the PReLU experiment (see examples/README.md).

Seed k gives every variant the same initial weights and batches, so two variants are
compared through their per-seed differences `d`. The primary test is the sign-flip
permutation test: under "no difference" each `d_k` is as likely to be `-d_k`, so the
observed sum is ranked among the sums of all 2**n sign patterns (exact up to
`EXACT_UP_TO` seeds, sampled beyond). It needs no normality and no continuity, so it also
serves bounded counts such as dead units. Its p is never below 2 / 2**n.
"""

import math
import warnings

import numpy as np

EXACT_UP_TO = 16


def sign_flip_p(d, alternative="two-sided", samples=100_000, seed=0) -> float:
    """The p-value of the sign-flip test of "the differences are centred on 0"."""
    d = np.asarray(d, "float64")
    n = d.size
    if n == 0 or not np.isfinite(d).all():
        return math.nan
    signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) if n <= EXACT_UP_TO else None
    if signs is None:  # sampled, with the observed pattern counted once
        signs = np.random.default_rng(seed).choice([-1, 1], (samples + 1, n))
        signs[0] = 1
    sums, observed = signs @ d, d.sum()
    tol = 1e-9 * max(1.0, np.abs(d).sum())  # equal sums that rounding tells apart
    if alternative == "greater":
        return float(np.mean(sums >= observed - tol))
    if alternative == "less":
        return float(np.mean(sums <= observed + tol))
    return float(np.mean(np.abs(sums) >= abs(observed) - tol))


def tost_p(d, margin: float) -> float:
    """Two one-sided sign-flip tests of "the mean difference lies within ±margin"."""
    d = np.asarray(d, "float64")
    return max(sign_flip_p(d + margin, "greater"), sign_flip_p(d - margin, "less"))


def holm(p_values) -> list[float]:
    """Holm's step-down adjustment; NaN entries are not tests and stay NaN."""
    p = np.asarray(p_values, "float64")
    tests = np.flatnonzero(np.isfinite(p))
    order = tests[np.argsort(p[tests], kind="stable")]
    adjusted, running = np.full(p.shape, math.nan), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def paired_stats(a, b, margin: float | None = None) -> dict:
    """Per-seed differences `a - b`: the sign-flip p (and TOST p at `margin`); the mean with a
    95% t-interval and the t-test's p, as a description; seeds above, below and at 0."""
    from scipy import stats

    d = np.asarray(a, "float64") - np.asarray(b, "float64")
    n, mean = len(d), float(d.mean())
    out = {"differences": d.tolist(), "mean": mean, "ci95": [math.nan] * 2}
    out.update(p=sign_flip_p(d), p_tost=tost_p(d, margin) if margin else math.nan)
    out.update(
        p_ttest=math.nan, signs=[int((d > 0).sum()), int((d < 0).sum()), int((d == 0).sum())]
    )
    if n < 2:
        return out
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    out["ci95"] = [mean - half, mean + half]
    if np.ptp(d) > 1e-12 * max(1.0, abs(mean)):  # equal differences: t is undefined, not p = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["p_ttest"] = float(stats.ttest_rel(a, b).pvalue)
    return out
