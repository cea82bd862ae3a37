"""Summary statistics, Student-t confidence intervals and the verdict rules of the report.

Every rule the report applies lives here, as a function with a docstring that the report quotes, so the
text shown to a reader and the code that decides cannot drift apart.

Intervals. The mean of n seeds gets the Student-t interval ``mean +- t(1 - alpha/2, n - 1) * s / sqrt(n)``;
a paired difference is the t interval of the per-pair differences. It is exact for normal data at every
n >= 2, where a percentile bootstrap of 3 seeds is about the sample's range and covers the true mean
about 3 times in 4 (docs/statistics.md measures both, and tests/test_coverage.py asserts the t
interval's coverage). A median of repeated timings gets the distribution-free order-statistic interval
(:func:`median_ci`). With n = 1 no interval exists (``None``).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

CONFIDENCE = 0.95
MAX_SEEDS = 100_000  # "seeds to decide" beyond this is reported as "more than"

# Reproduction of a published number (percentage points).
REPRODUCTION_TOLERANCE_PP = 1.0
# Claims: a paired difference inside +-margin is "no practical difference".
ACCURACY_MARGIN_PP = 1.0
EPOCHS_MARGIN_RELATIVE = 0.05  # of the baseline's mean epochs_to_best, at least EPOCHS_MARGIN_MIN
EPOCHS_MARGIN_MIN = 1.0
# Claim 5: a learned pruning rate is "substantial" when at most this fraction of weights is kept.
SUBSTANTIAL_KEPT_FRACTION = 0.9

# Verdict labels.
REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NO_PUBLISHED = "no published value"
# A configuration whose variant matches a published value but whose options are not those that
# reproduce it (docs/published-values.md): shown beside the value, never judged against it.
OTHER_OPTIONS = "other options"
SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
MIXED = "mixed"
# The seeds cannot support a verdict: the interval is too wide for either conclusion.
TOO_FEW_SEEDS = "too few seeds"
# A timing whose repeats scatter more than the effect they measure.
TOO_NOISY = "inconclusive: too noisy"


@dataclass(frozen=True)
class Summary:
    """n values: their mean, sample standard deviation (ddof 1) and Student-t CI of the mean."""

    n: int
    mean: float | None
    std: float | None
    ci: tuple[float, float] | None


@dataclass(frozen=True)
class Verdict:
    label: str
    reason: str
    seeds_needed: int | None = None  # with "too few seeds": the fewest that would decide

    @property
    def css(self) -> str:
        return self.label.replace(" ", "-").replace(":", "")


def _as_array(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    if array.ndim != 1:
        raise ValueError(f"expected a flat sequence of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("an interval of non-finite values (NaN or infinity) is undefined")
    return array


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


@functools.lru_cache(maxsize=4096)  # pure, and the search of seeds_to_decide asks it often
def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student-t critical value of a mean of n values (n - 1 degrees of freedom)."""
    _check_confidence(confidence)
    if n < 2:
        raise ValueError(f"a t interval needs n >= 2 values, got n={n}")
    return float(_scipy_stats.t.ppf((1 + confidence) / 2, n - 1))


def t_half_width(std: float, n: int, confidence: float = CONFIDENCE) -> float:
    """Half-width of the t interval of a mean of n values of standard deviation ``std``."""
    return t_quantile(n, confidence) * std / math.sqrt(n)


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Student-t ``confidence`` interval of the mean; ``None`` when n < 2 (undefined)."""
    _check_confidence(confidence)
    data = _as_array(values)
    if data.size < 2:
        return None
    mean = float(data.mean())
    half = t_half_width(float(np.std(data, ddof=1)), data.size, confidence)
    return mean - half, mean + half


def summarise(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    data = _as_array(values)
    if data.size == 0:
        return Summary(0, None, None, None)
    std = float(np.std(data, ddof=1)) if data.size >= 2 else None
    return Summary(int(data.size), float(data.mean()), std, t_interval(data, confidence))


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (k, n + 1 - k) of the order statistics that bracket the median of n values
    with at least ``confidence`` for any continuous law (binomial(n, 1/2) tails); ``None`` when
    even the sample's range is too short (n < 6 at 95 %)."""
    _check_confidence(confidence)
    best = None
    for k in range(1, n // 2 + 1):
        if 1 - 2 * _scipy_stats.binom.cdf(k - 1, n, 0.5) >= confidence:
            best = (k, n + 1 - k)
    return best


def median_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Distribution-free ``confidence`` interval of the median (order statistics), for repeated
    timings whose noise is skewed; ``None`` when there are too few values for one."""
    data = np.sort(_as_array(values))
    ranks = median_ci_ranks(data.size, confidence)
    if ranks is None:
        return None
    return float(data[ranks[0] - 1]), float(data[ranks[1] - 1])


# ---------------------------------------------------------------------------------------------------
# What the seeds can tell
# ---------------------------------------------------------------------------------------------------
def seeds_to_decide(std: float, target: float, n: int, confidence: float = CONFIDENCE) -> int | None:
    """The fewest seeds N > n whose t interval, at the standard deviation ``std`` observed, has a
    half-width below ``target`` (the distance the interval must shrink to for a decision). ``None``
    when no number of seeds would (``target`` <= 0); ``MAX_SEEDS + 1`` when more than MAX_SEEDS
    would. The t quantile depends on N, so N is searched, not solved for."""
    if not (math.isfinite(std) and std >= 0 and math.isfinite(target)):
        raise ValueError(f"std and target must be finite, std >= 0; got std={std}, target={target}")
    if target <= 0:
        return None
    low = max(n + 1, 2)
    if t_half_width(std, low, confidence) < target:
        return low
    if t_half_width(std, MAX_SEEDS, confidence) >= target:
        return MAX_SEEDS + 1
    high = MAX_SEEDS  # the half-width decreases with N: bisect for the first N below target
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if t_half_width(std, mid, confidence) < target else (mid, high)
    return high


def seeds_text(needed: int | None) -> str:
    if needed is None:
        return "no number of seeds would decide at the observed mean (it lies on the margin)"
    if needed > MAX_SEEDS:
        return f"more than {MAX_SEEDS:,} seeds would be needed at the observed spread"
    return f"at least {needed} seeds would decide at the observed spread"


@dataclass(frozen=True)
class Sensitivity:
    """What a paired comparison's seeds could tell (see :func:`sensitivity`)."""

    resolution: float | None  # half-width of the CI: smaller differences look like no difference
    bound: float | None  # the CI excludes differences beyond +-bound
    seeds_needed: int | None  # for a decision, at the observed spread; None: decided (or n < 2)
    decided: bool = False


def sensitivity(difference: Summary, margin: float, equivalence: bool = False,
                confidence: float = CONFIDENCE) -> Sensitivity:
    """The smallest difference the seeds could have told from zero, and how many seeds a decision
    would need.

    - ``resolution`` is the half-width h of the t interval of the mean difference: a true
      difference smaller than about h leaves 0 inside it, so "no practical difference" reads as
      "no difference larger than ``bound``" (the interval's end farthest from 0).
    - A directional comparison is decided when the interval lies on one side of 0 (h < |mean|) or
      within the margin (|mean| + h <= margin): the interval must shrink to h* = max(|mean|,
      margin - |mean|). An ``equivalence`` test (claim 5) is decided inside or entirely outside the
      margin: h* = |margin - |mean||.
    - The seeds needed are :func:`seeds_to_decide` at the observed SD and h*: an estimate, since
      the SD of a few seeds is itself uncertain.
    """
    if difference.n < 2 or difference.ci is None or difference.mean is None or difference.std is None:
        return Sensitivity(None, None, None)
    low, high = difference.ci
    half = (high - low) / 2
    bound = max(abs(low), abs(high))
    mean = abs(difference.mean)
    within = -margin <= low and high <= margin
    if equivalence:
        decided = within or low > margin or high < -margin
        target = abs(margin - mean)
    else:
        decided = within or low > 0 or high < 0
        target = max(mean, margin - mean)
    if decided:
        return Sensitivity(half, bound, None, True)
    return Sensitivity(half, bound, seeds_to_decide(difference.std, target, difference.n, confidence))


def _too_few(difference: Summary, why: str, needed: int | None) -> Verdict:
    if difference.n < 2 or difference.ci is None:
        return Verdict(TOO_FEW_SEEDS, f"n={difference.n}: an interval needs at least 2 seeds, and "
                                      "their spread tells how many would decide", 2)
    spread = f" (SD {difference.std:.3g})" if difference.std is not None else ""
    return Verdict(TOO_FEW_SEEDS, f"{why}: {seeds_text(needed)}{spread}", needed)


# ---------------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------------
def reproduction_verdict(published: float | None, ours: Summary,
                         tolerance: float = REPRODUCTION_TOLERANCE_PP) -> Verdict:
    """Reproduced if the published value lies inside our 95% t interval widened by +-tolerance pp.

    The tolerance allows for the published value being a single number read off a bar chart to one
    decimal, with no standard deviation. Not reproduced if it lies outside the widened CI.
    Inconclusive if we have fewer than 2 seeds (the CI is undefined). No published value: said so.
    """
    if published is None:
        return Verdict(NO_PUBLISHED, "no published value for this dataset, network, method and variant")
    if ours.n < 2 or ours.ci is None:
        return Verdict(INCONCLUSIVE, f"n={ours.n}: the confidence interval needs at least 2 seeds")
    low, high = ours.ci[0] - tolerance, ours.ci[1] + tolerance
    where = f"published {published:.1f} vs our widened CI [{low:.2f}, {high:.2f}]"
    if low <= published <= high:
        return Verdict(REPRODUCED, f"{where}: inside")
    return Verdict(NOT_REPRODUCED, f"{where}: outside")


def directional_verdict(difference: Summary, margin: float, direction: int = +1) -> Verdict:
    """Verdict on a claim "A is higher than B" (``direction=+1``) or "A is lower than B"
    (``direction=-1``) from the t interval of the paired difference d = A - B.

    - the CI lies entirely on the claimed side of 0: supported;
    - the CI lies entirely on the other side: not supported (the opposite is observed);
    - the CI contains 0 and lies within [-margin, +margin]: not supported (no practical difference);
    - otherwise (contains 0, wider than the margin), or n < 2: too few seeds, with how many would
      decide at the observed spread (:func:`sensitivity`).
    """
    if direction not in (+1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction}")
    if difference.n < 2 or difference.ci is None:
        return _too_few(difference, "", None)
    low, high = difference.ci
    claimed, other = ("above", "below") if direction > 0 else ("below", "above")
    if (low > 0) if direction > 0 else (high < 0):
        return Verdict(SUPPORTED, f"the CI of the difference lies {claimed} 0, as claimed")
    if (high < 0) if direction > 0 else (low > 0):
        return Verdict(NOT_SUPPORTED, f"the CI of the difference lies {other} 0: the opposite is observed")
    if -margin <= low and high <= margin:
        return Verdict(NOT_SUPPORTED, f"the CI contains 0 and lies within ±{margin:.3g}: "
                                      "no practical difference")
    needed = sensitivity(difference, margin).seeds_needed
    return _too_few(difference, f"the CI contains 0 and is wider than ±{margin:.3g}", needed)


def equivalence_verdict(difference: Summary, margin: float, kept_fraction: float | None,
                        substantial: float = SUBSTANTIAL_KEPT_FRACTION) -> Verdict:
    """Verdict on "about as accurate, at a substantial pruning rate" (claim 5).

    d = extracted - stochastic accuracy (pp), paired within each run.

    - the CI lies within [-margin, +margin] and the mean kept fraction <= ``substantial``: supported;
    - the CI lies within the margin but the kept fraction is above ``substantial``: not supported
      (the pruning rate is not substantial);
    - the CI lies entirely outside the margin: not supported;
    - otherwise (the CI straddles a margin), or n < 2: too few seeds, with how many would decide.
    """
    if difference.n < 2 or difference.ci is None:
        return _too_few(difference, "", None)
    low, high = difference.ci
    if -margin <= low and high <= margin:
        if kept_fraction is None or not math.isfinite(kept_fraction):
            return Verdict(INCONCLUSIVE, "equivalent within the margin, but the kept fraction is unknown")
        if kept_fraction <= substantial:
            return Verdict(SUPPORTED, f"the CI lies within ±{margin:.3g} pp and "
                                      f"{kept_fraction:.1%} of weights are kept")
        return Verdict(NOT_SUPPORTED, f"equivalent within ±{margin:.3g} pp, but {kept_fraction:.1%} of "
                                      f"weights are kept (> {substantial:.0%}): pruning not substantial")
    if low > margin or high < -margin:
        side = "better" if low > margin else "worse"
        return Verdict(NOT_SUPPORTED, f"the CI lies outside ±{margin:.3g} pp: the extracted "
                                      f"subnetwork is {side}")
    needed = sensitivity(difference, margin, equivalence=True).seeds_needed
    return _too_few(difference, f"the CI straddles the ±{margin:.3g} pp margin", needed)


def aggregate_verdict(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict for a claim from the verdicts of its comparisons.

    - no comparison: inconclusive (the caller says which runs are needed);
    - at least one supported and none not supported: supported;
    - at least one not supported and none supported: not supported;
    - both: mixed;
    - otherwise, if a comparison has too few seeds: too few seeds, with the fewest seeds that would
      decide one of them; else inconclusive.
    The counts are always shown.
    """
    labels = (SUPPORTED, NOT_SUPPORTED, TOO_FEW_SEEDS, INCONCLUSIVE)
    counts = {label: sum(v.label == label for v in verdicts) for label in labels}
    total = len(verdicts)
    text = ", ".join(f"{counts[label]} {label}" for label in labels if counts[label] or label in labels[:2])
    text += f" of {total} comparison{'s' if total != 1 else ''}"
    if total == 0:
        return Verdict(INCONCLUSIVE, "no comparison could be made")
    if counts[SUPPORTED] and not counts[NOT_SUPPORTED]:
        return Verdict(SUPPORTED, text)
    if counts[NOT_SUPPORTED] and not counts[SUPPORTED]:
        return Verdict(NOT_SUPPORTED, text)
    if counts[SUPPORTED] and counts[NOT_SUPPORTED]:
        return Verdict(MIXED, text)
    if counts[TOO_FEW_SEEDS]:
        needed = [v.seeds_needed for v in verdicts if v.label == TOO_FEW_SEEDS and v.seeds_needed]
        fewest = min(needed) if needed else None
        nearest = " (the comparison nearest a decision)" if counts[TOO_FEW_SEEDS] > 1 else ""
        return Verdict(TOO_FEW_SEEDS, f"{seeds_text(fewest)}{nearest}; {text}", fewest)
    return Verdict(INCONCLUSIVE, text)


def timing_verdict(differences: Sequence[float], margin: float, direction: int = -1,
                   confidence: float = CONFIDENCE) -> Verdict:
    """Verdict on a timing claim from repeated paired measurements (e.g. overhead of A minus
    overhead of B, one value per repeat), judged on their median and its order-statistic CI:

    - fewer repeats than an interval of the median needs: too few repeats (inconclusive);
    - the CI contains 0 and is wider than ±margin (the noise exceeds the effect): inconclusive: too
      noisy;
    - otherwise as :func:`directional_verdict` (supported, opposite observed, no practical
      difference).
    """
    ci = median_ci(differences, confidence)
    if ci is None:
        return Verdict(INCONCLUSIVE, f"{len(differences)} repeats: an interval of the median needs "
                                     f"at least {min_repeats(confidence)}")
    low, high = ci
    if low <= 0 <= high and not (-margin <= low and high <= margin):
        return Verdict(TOO_NOISY, f"the CI of the median [{low:.3g}, {high:.3g}] contains 0 and is "
                                  f"wider than ±{margin:.3g}: the noise exceeds the effect")
    median = float(np.median(differences))
    return directional_verdict(Summary(len(differences), median, None, ci), margin, direction)


def min_repeats(confidence: float = CONFIDENCE) -> int:
    """The fewest values whose median has a distribution-free ``confidence`` interval."""
    n = 1
    while median_ci_ranks(n, confidence) is None:
        n += 1
    return n
