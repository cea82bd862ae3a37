"""The coverage of the report's intervals, measured by simulation: how often a 95% interval of n
draws contains the true mean (or median), under a normal law and a skewed, bounded one.

``python -m subnetbench.reports.coverage`` prints the table of docs/statistics.md: the Student-t
interval the report uses against the percentile bootstrap it used before. tests/test_coverage.py
asserts the t interval's bar. Every simulation draws from one fixed-seed ``numpy`` generator.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numpy as np

from subnetbench.reports import stats

SEED = 20220225
SAMPLE_SIZES = (2, 3, 5, 10, 30)
NEAR_100_SIGMA = 1.0
BETA_A, BETA_B = 60.0, 1.5


def _normal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.normal(0.0, 1.0, size=shape)


def _near_100(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Accuracies (%) just under a ceiling of 100: 100 minus a lognormal shortfall (skewness 6)."""
    return 100.0 - rng.lognormal(0.0, NEAR_100_SIGMA, size=shape)


def _beta_accuracy(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Accuracies (%) from a beta law piled up near 100 (mean 97.6 %, skewness -1.5)."""
    return 100.0 * rng.beta(BETA_A, BETA_B, size=shape)


# law name -> (sampler of a (trials, n) array, true mean)
LAWS: dict[str, tuple[Callable[[np.random.Generator, tuple[int, int]], np.ndarray], float]] = {
    "normal": (_normal, 0.0),
    "near 100 %, beta(60, 1.5)": (_beta_accuracy, 100.0 * BETA_A / (BETA_A + BETA_B)),
    "near 100 %, 100 - lognormal(0, 1)": (_near_100, 100.0 - math.exp(NEAR_100_SIGMA ** 2 / 2)),
}


def monte_carlo_error(coverage: float, trials: int) -> float:
    """Standard error of a coverage estimated from ``trials`` independent intervals."""
    return math.sqrt(coverage * (1 - coverage) / trials)


def t_coverage(law: str, n: int, trials: int, seed: int = SEED) -> float:
    """Share of ``trials`` Student-t intervals (:func:`stats.t_half_width`) of n draws that contain
    the law's mean; vectorised over the trials."""
    sample, truth = LAWS[law]
    data = sample(np.random.default_rng(seed), (trials, n))
    mean = data.mean(axis=1)
    half = stats.t_quantile(n) * data.std(axis=1, ddof=1) / math.sqrt(n)
    return float(np.mean(np.abs(mean - truth) <= half))


def percentile_bootstrap_coverage(law: str, n: int, trials: int, resamples: int = 2000,
                                  seed: int = SEED) -> float:
    """The same for the percentile bootstrap of the mean the report used before (its 2.5% and 97.5%
    quantiles of ``resamples`` resampled means)."""
    sample, truth = LAWS[law]
    rng = np.random.default_rng(seed)
    data = sample(rng, (trials, n))
    hits = 0
    chunk = max(1, 2_000_000 // (resamples * n))
    for start in range(0, trials, chunk):
        block = data[start:start + chunk]
        idx = rng.integers(0, n, size=(block.shape[0], resamples, n))
        means = np.take_along_axis(block[:, None, :], idx, axis=2).mean(axis=2)
        low, high = np.quantile(means, [0.025, 0.975], axis=1)
        hits += int(np.sum((low <= truth) & (truth <= high)))
    return hits / trials


def median_coverage(n: int, trials: int, seed: int = SEED) -> float | None:
    """Share of order-statistic intervals (:func:`stats.median_ci_ranks`) of n skewed timings
    (lognormal seconds, median 1) that contain the true median; None when n is too small."""
    ranks = stats.median_ci_ranks(n)
    if ranks is None:
        return None
    data = np.sort(np.random.default_rng(seed).lognormal(0.0, 0.5, size=(trials, n)), axis=1)
    return float(np.mean((data[:, ranks[0] - 1] <= 1.0) & (1.0 <= data[:, ranks[1] - 1])))


def table(trials: int, bootstrap_trials: int) -> str:
    """The coverage table of docs/statistics.md, in Markdown."""
    lines = ["| law | n | percentile bootstrap (before) | Student t (after) |",
             "|---|---:|---:|---:|"]
    for law in LAWS:
        for n in SAMPLE_SIZES:
            before = percentile_bootstrap_coverage(law, n, bootstrap_trials)
            after = t_coverage(law, n, trials)
            lines.append(f"| {law} | {n} | {before:.1%} ± {monte_carlo_error(before, bootstrap_trials):.1%} "
                         f"| {after:.1%} ± {monte_carlo_error(after, trials):.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20_000, help="t intervals per cell")
    parser.add_argument("--bootstrap-trials", type=int, default=4_000, help="bootstrap intervals per cell")
    args = parser.parse_args()
    print(table(args.trials, args.bootstrap_trials))
    print()
    for n in (6, 10, 15, 30):
        cover = median_coverage(n, args.trials)
        error = monte_carlo_error(cover, args.trials)
        print(f"median CI, lognormal timings, n={n}: {cover:.1%} ± {error:.1%}")


if __name__ == "__main__":
    main()
