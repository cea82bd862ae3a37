"""The coverage of every interval the report shows and the error rates of its verdict rules,
measured by simulation with fixed seeds (reports/coverage.py; the table is in docs/statistics.md).

With 20,000 trials a coverage of 95 % is estimated within a Monte-Carlo standard error of 0.15
points, so the bar of 94 % is more than 6 standard errors below it: a failure is a real defect,
not bad luck. The verdict rules are run on their real functions, 4,000 trials a case (standard
error 0.25 points at a 2.5 % rate)."""
from __future__ import annotations

import numpy as np
import pytest

from subnetbench.reports import coverage, stats

TRIALS = 20_000
VERDICT_TRIALS = 4_000


@pytest.mark.parametrize("n", coverage.SAMPLE_SIZES)
def test_the_t_interval_covers_the_mean_of_normal_data_at_every_seed_count(n):
    covered = coverage.t_coverage("normal", n, TRIALS)
    assert covered >= 0.94, f"n={n}: {covered:.3f} ± {coverage.monte_carlo_error(covered, TRIALS):.3f}"
    assert covered <= 0.96  # exact, not merely wide


def test_the_percentile_bootstrap_it_replaces_undercovers_at_few_seeds():
    """Why the report changed: at 3 seeds the old interval covered the mean 3 times in 4."""
    covered = coverage.percentile_bootstrap_coverage("normal", 3, 2_000, resamples=1_000)
    assert covered < 0.80


@pytest.mark.parametrize("law", [law for law in coverage.LAWS if law != "normal"])
def test_on_skewed_accuracies_the_t_interval_still_beats_the_old_bootstrap(law):
    """The skewed laws' coverage is documented (docs/statistics.md), not promised: t stays above
    the percentile bootstrap at every seed count, and closes in on 95 % as seeds grow."""
    for n in (3, 5, 10):
        t_cover = coverage.t_coverage(law, n, 4_000)
        assert t_cover > coverage.percentile_bootstrap_coverage(law, n, 1_000, resamples=500)
    assert coverage.t_coverage(law, 30, TRIALS) >= coverage.t_coverage(law, 3, TRIALS) + 0.02


@pytest.mark.parametrize("n", [6, 10, 15, 30])
def test_the_interval_of_a_median_covers_skewed_timings(n):
    covered = coverage.median_coverage(n, TRIALS)
    assert covered >= 0.94


def _verdicts(rule, truth: float, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [rule(stats.summarise(rng.normal(truth, 1.0, size=n))).label for _ in range(VERDICT_TRIALS)]


@pytest.mark.parametrize("n", [3, 5, 10])
def test_a_directional_claim_is_rarely_supported_when_there_is_no_difference(n):
    labels = _verdicts(lambda d: stats.directional_verdict(d, 1.0), 0.0, n, seed=n)
    assert labels.count(stats.SUPPORTED) / len(labels) <= 0.025 + 3 * 0.0025


@pytest.mark.parametrize("n", [3, 5, 10])
def test_no_practical_difference_is_rarely_declared_when_the_difference_is_the_margin(n):
    labels = _verdicts(lambda d: stats.directional_verdict(d, 1.0), 1.0, n, seed=100 + n)
    # "not supported" here can only be "no practical difference": the CI lies within the margin
    assert labels.count(stats.NOT_SUPPORTED) / len(labels) <= 0.025 + 3 * 0.0025


@pytest.mark.parametrize("n", [3, 5, 10])
def test_equivalence_is_rarely_supported_when_the_difference_is_the_margin(n):
    labels = _verdicts(lambda d: stats.equivalence_verdict(d, 1.0, 0.5), 1.0, n, seed=200 + n)
    assert labels.count(stats.SUPPORTED) / len(labels) <= 0.025 + 3 * 0.0025


def test_a_timing_claim_is_rarely_supported_when_both_rescalings_cost_the_same():
    rng = np.random.default_rng(5)
    labels = [stats.timing_verdict(list(rng.lognormal(0.0, 0.5, size=15) - 1.0), 0.1).label
              for _ in range(VERDICT_TRIALS)]
    assert labels.count(stats.SUPPORTED) / len(labels) <= 0.025 + 3 * 0.0025
