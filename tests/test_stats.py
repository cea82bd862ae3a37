"""The report's estimators and verdict rules (reports/stats.py): Student-t intervals, the seeds
that would decide, the interval of a median and the verdicts built on them."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from subnetbench.reports import stats

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)


# -- the t interval ---------------------------------------------------------------------------------
def test_t_interval_is_the_textbook_one():
    values = [96.2, 97.8, 95.1]
    low, high = stats.t_interval(values)
    mean, sd = np.mean(values), np.std(values, ddof=1)
    half = scipy_stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert (low, high) == pytest.approx((mean - half, mean + half))
    assert stats.t_quantile(3) == pytest.approx(4.302653, abs=1e-6)  # t(0.975, 2) from the tables


def test_t_interval_is_undefined_below_two_values_and_refuses_bad_input():
    assert stats.t_interval([0.7]) is None
    summary = stats.summarise([70.0])
    assert (summary.n, summary.mean, summary.std, summary.ci) == (1, 70.0, None, None)
    assert stats.summarise([]).n == 0
    with pytest.raises(ValueError, match="non-finite"):
        stats.t_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        stats.t_interval([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="n >= 2"):
        stats.t_quantile(1)


def test_t_interval_of_constant_values_is_a_point():
    assert stats.t_interval([3.0, 3.0, 3.0]) == (3.0, 3.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=2, max_size=12), finite, st.floats(min_value=0.1, max_value=10))
def test_t_interval_is_centred_and_moves_and_scales_with_the_data(values, shift, scale):
    low, high = stats.t_interval(values)
    mean = float(np.mean(values))
    assert low <= mean <= high and (low + high) / 2 == pytest.approx(mean, abs=1e-6)
    moved = stats.t_interval([scale * v + shift for v in values])
    assert moved[0] == pytest.approx(scale * low + shift, abs=1e-6)
    assert moved[1] == pytest.approx(scale * high + shift, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(finite, min_size=2, max_size=10))
def test_a_higher_confidence_gives_a_wider_interval(values):
    low90, high90 = stats.t_interval(values, confidence=0.90)
    low95, high95 = stats.t_interval(values)
    assert low95 <= low90 + 1e-9 and high90 <= high95 + 1e-9


# -- the seeds that would decide ----------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0.01, max_value=20), st.floats(min_value=0.05, max_value=5),
       st.integers(min_value=2, max_value=30))
def test_seeds_to_decide_is_the_fewest_whose_interval_is_narrow_enough(sd, target, n):
    needed = stats.seeds_to_decide(sd, target, n)
    assert needed > n
    if needed <= stats.MAX_SEEDS:
        assert stats.t_half_width(sd, needed) < target
        if needed - 1 > n:
            assert stats.t_half_width(sd, needed - 1) >= target


def test_seeds_to_decide_accounts_for_t_growing_at_few_seeds():
    # normal theory would say (1.96 * 2 / 1)^2 = 15.4, so 16; but t(0.975, 15) * 2 / 4 = 1.07 and
    # t(0.975, 16) * 2 / sqrt(17) = 1.03 are still too wide: t(0.975, 17) * 2 / sqrt(18) = 0.995
    assert stats.seeds_to_decide(2.0, 1.0, 3) == 18
    assert stats.seeds_to_decide(2.0, 0.0, 3) is None
    assert stats.seeds_to_decide(1e6, 1e-3, 3) == stats.MAX_SEEDS + 1
    with pytest.raises(ValueError):
        stats.seeds_to_decide(float("nan"), 1.0, 3)


def test_sensitivity_says_what_the_seeds_could_detect_and_how_many_would_decide():
    wide = stats.summarise([0.5 - 2.0, 0.5, 0.5 + 2.0])  # mean 0.5, SD 2: contains 0, wider than 1
    s = stats.sensitivity(wide, 1.0)
    assert s.resolution == pytest.approx(stats.t_half_width(2.0, 3))
    assert s.bound == pytest.approx(max(abs(wide.ci[0]), abs(wide.ci[1])))
    assert s.seeds_needed == stats.seeds_to_decide(2.0, 0.5, 3) and not s.decided  # target max(0.5, 0.5)
    narrow = stats.summarise([0.1, 0.2, 0.0, 0.1, 0.1])
    assert stats.sensitivity(narrow, 1.0).decided and stats.sensitivity(narrow, 1.0).seeds_needed is None
    near_margin = stats.summarise([0.8, 0.9, 1.0])  # equivalence: the interval straddles +1
    assert stats.sensitivity(near_margin, 1.0).decided  # one side of 0: a directional verdict
    assert stats.sensitivity(near_margin, 1.0, equivalence=True).seeds_needed == \
        stats.seeds_to_decide(0.1, 0.1, 3)
    assert stats.sensitivity(stats.summarise([0.5]), 1.0) == stats.Sensitivity(None, None, None)


# -- the median of timings ------------------------------------------------------------------------------
def test_median_ci_ranks_are_the_binomial_ones():
    assert stats.median_ci_ranks(5) is None  # the range covers 1 - 2/32 = 93.75 % only
    assert stats.median_ci_ranks(6) == (1, 6)
    assert stats.median_ci_ranks(10) == (2, 9)
    assert stats.median_ci_ranks(30) == (10, 21)
    assert stats.min_repeats() == 6


@settings(max_examples=40, deadline=None)
@given(st.lists(finite, min_size=6, max_size=40))
def test_median_ci_brackets_the_sample_median(values):
    low, high = stats.median_ci(values)
    assert low <= float(np.median(values)) <= high
    assert min(values) <= low and high <= max(values)


# -- verdicts -------------------------------------------------------------------------------------------
def test_directional_verdict_decides_only_where_the_interval_does():
    supported = stats.summarise([1.0, 1.2, 1.4])
    assert stats.directional_verdict(supported, 1.0).label == stats.SUPPORTED
    assert stats.directional_verdict(supported, 1.0, direction=-1).label == stats.NOT_SUPPORTED
    no_difference = stats.summarise([0.1, -0.1, 0.05, 0.0])
    verdict = stats.directional_verdict(no_difference, 1.0)
    assert verdict.label == stats.NOT_SUPPORTED and "no practical difference" in verdict.reason
    wide = stats.summarise([-2.0, 0.5, 3.0])
    verdict = stats.directional_verdict(wide, 1.0)
    needed = stats.sensitivity(wide, 1.0).seeds_needed
    assert verdict.label == stats.TOO_FEW_SEEDS and verdict.seeds_needed == needed
    assert f"at least {needed} seeds would decide at the observed spread" in verdict.reason
    single = stats.directional_verdict(stats.summarise([1.0]), 1.0)
    assert single.label == stats.TOO_FEW_SEEDS and "at least 2 seeds" in single.reason
    with pytest.raises(ValueError, match="direction"):
        stats.directional_verdict(wide, 1.0, direction=0)


@pytest.mark.parametrize("values, kept, label, words", [
    ([-0.3, 0.0, 0.2, -0.1], 0.45, stats.SUPPORTED, "kept"),
    ([-0.3, 0.0, 0.2, -0.1], 0.95, stats.NOT_SUPPORTED, "not substantial"),
    ([-2.5, -2.2, -2.4], 0.45, stats.NOT_SUPPORTED, "worse"),
    ([1.6, 1.8, 1.7], 0.45, stats.NOT_SUPPORTED, "better"),
    ([-1.5, 0.2, -0.4], 0.45, stats.TOO_FEW_SEEDS, "straddles"),
])
def test_equivalence_verdict(values, kept, label, words):
    verdict = stats.equivalence_verdict(stats.summarise(values), 1.0, kept)
    assert verdict.label == label and words in verdict.reason


def test_aggregate_verdict_keeps_the_fewest_seeds_that_would_decide():
    sup, nots = stats.Verdict(stats.SUPPORTED, ""), stats.Verdict(stats.NOT_SUPPORTED, "")
    few = [stats.Verdict(stats.TOO_FEW_SEEDS, "", 40), stats.Verdict(stats.TOO_FEW_SEEDS, "", 12)]
    assert stats.aggregate_verdict([sup, few[0]]).label == stats.SUPPORTED
    assert stats.aggregate_verdict([nots, few[0]]).label == stats.NOT_SUPPORTED
    assert stats.aggregate_verdict([sup, nots]).label == stats.MIXED
    both = stats.aggregate_verdict(few)
    assert both.label == stats.TOO_FEW_SEEDS and both.seeds_needed == 12
    assert "at least 12 seeds" in both.reason and "2 too few seeds of 2 comparisons" in both.reason
    assert stats.aggregate_verdict([]).label == stats.INCONCLUSIVE


def test_timing_verdict_is_too_noisy_when_the_noise_exceeds_the_effect():
    rng = np.random.default_rng(7)
    noisy = list(rng.normal(2.0, 30.0, size=15))  # effect 2 points, noise 30
    assert stats.timing_verdict(noisy, 5.0).label == stats.TOO_NOISY
    clear = list(rng.normal(-40.0, 3.0, size=15))  # SR 40 points cheaper than DWR
    assert stats.timing_verdict(clear, 5.0).label == stats.SUPPORTED
    assert stats.timing_verdict([-x for x in clear], 5.0).label == stats.NOT_SUPPORTED
    flat = list(rng.normal(0.0, 0.5, size=15))
    assert "no practical difference" in stats.timing_verdict(flat, 5.0).reason
    short = stats.timing_verdict(clear[:4], 5.0)
    assert short.label == stats.INCONCLUSIVE and "at least 6" in short.reason
