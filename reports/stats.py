"""Summary statistics, percentile-bootstrap confidence intervals and the verdict rules of the report.

Every rule the report applies lives here, as a function with a docstring that the report quotes, so the
text shown to a reader and the code that decides cannot drift apart.

The bootstrap is a *percentile* bootstrap of the mean: ``n_resamples`` samples of size n are drawn with
replacement (vectorised, one ``numpy.random.Generator`` seeded with a fixed seed per call, so the same
data always gives the same interval), their means are taken, and the interval is the
``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of those means. With n = 1 the interval
is undefined (``None``). With very few values (n = 2, 3) the percentile bootstrap is known to be too
narrow; the report shows n beside every interval so a reader can judge.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SEED = 20220225  # fixed: the arXiv submission date of the paper; any constant would do
BOOTSTRAP_RESAMPLES = 10_000
CONFIDENCE = 0.95

# Reproduction of a published number (percentage points).
REPRODUCTION_TOLERANCE_PP = 1.0
# Claims: a paired difference inside +-margin is "no practical difference".
ACCURACY_MARGIN_PP = 1.0
EPOCHS_MARGIN_RELATIVE = 0.05  # of the baseline's mean epochs_to_best, at least EPOCHS_MARGIN_MIN
EPOCHS_MARGIN_MIN = 1.0
# Claim 4: a learned pruning rate is "substantial" when at most this fraction of weights is kept.
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

_MAX_BATCH_ELEMENTS = 4_000_000  # resample in chunks so memory stays small for large n


@dataclass(frozen=True)
class Summary:
    """n values: their mean, sample standard deviation (ddof 1) and bootstrap CI of the mean."""

    n: int
    mean: float | None
    std: float | None
    ci: tuple[float, float] | None


@dataclass(frozen=True)
class Verdict:
    label: str
    reason: str

    @property
    def css(self) -> str:
        return self.label.replace(" ", "-")


def _as_array(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    if array.ndim != 1:
        raise ValueError(f"expected a flat sequence of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("bootstrap of non-finite values (NaN or infinity) is undefined")
    return array


def bootstrap_means(values: Sequence[float], *, n_resamples: int = BOOTSTRAP_RESAMPLES,
                    seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """The means of ``n_resamples`` resamples (with replacement) of ``values``; vectorised."""
    data = _as_array(values)
    n = data.size
    if n == 0:
        raise ValueError("bootstrap of an empty sample is undefined")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples)
    chunk = max(1, _MAX_BATCH_ELEMENTS // n)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = data[idx].mean(axis=1)
    return out


def bootstrap_ci(values: Sequence[float], *, confidence: float = CONFIDENCE,
                 n_resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """Percentile-bootstrap ``confidence`` interval of the mean; ``None`` when n < 2 (undefined)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    data = _as_array(values)
    if data.size < 2:
        return None
    means = bootstrap_means(data, n_resamples=n_resamples, seed=seed)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    # The percentile interval of the mean always lies within [min, max]; clip rounding noise (both
    # ends into the range: with equal values the means can be one ulp below the minimum).
    lowest, highest = data.min(), data.max()
    return float(min(max(low, lowest), highest)), float(max(min(high, highest), lowest))


def summarise(values: Sequence[float], **bootstrap_kwargs) -> Summary:
    data = _as_array(values)
    if data.size == 0:
        return Summary(0, None, None, None)
    std = float(np.std(data, ddof=1)) if data.size >= 2 else None
    return Summary(int(data.size), float(data.mean()), std, bootstrap_ci(data, **bootstrap_kwargs))


# ---------------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------------
def reproduction_verdict(published: float | None, ours: Summary,
                         tolerance: float = REPRODUCTION_TOLERANCE_PP) -> Verdict:
    """Reproduced if the published value lies inside our 95% bootstrap CI widened by +-tolerance pp.

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


def directional_verdict(n: int, ci: tuple[float, float] | None, margin: float,
                        direction: int = +1) -> Verdict:
    """Verdict on a claim "A is higher than B" (``direction=+1``) or "A is lower than B"
    (``direction=-1``) from the CI of the paired difference d = A - B.

    - n < 2: inconclusive (the CI is undefined);
    - the CI lies entirely on the claimed side of 0: supported;
    - the CI lies entirely on the other side: not supported (the opposite is observed);
    - the CI contains 0 and lies within [-margin, +margin]: not supported (no practical difference);
    - otherwise (contains 0, wider than the margin): inconclusive (more seeds are needed).
    """
    if direction not in (+1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction}")
    if n < 2 or ci is None:
        return Verdict(INCONCLUSIVE, f"n={n} pair{'s' if n != 1 else ''}: the CI needs at least 2")
    low, high = ci
    claimed, other = ("above", "below") if direction > 0 else ("below", "above")
    if (low > 0) if direction > 0 else (high < 0):
        return Verdict(SUPPORTED, f"the CI of the difference lies {claimed} 0, as claimed")
    if (high < 0) if direction > 0 else (low > 0):
        return Verdict(NOT_SUPPORTED, f"the CI of the difference lies {other} 0: the opposite is observed")
    if -margin <= low and high <= margin:
        return Verdict(NOT_SUPPORTED, f"the CI contains 0 and lies within ±{margin:.3g}: "
                                      "no practical difference")
    return Verdict(INCONCLUSIVE, f"the CI contains 0 and is wider than ±{margin:.3g}: more seeds needed")


def equivalence_verdict(n: int, ci: tuple[float, float] | None, margin: float,
                        kept_fraction: float | None,
                        substantial: float = SUBSTANTIAL_KEPT_FRACTION) -> Verdict:
    """Verdict on "about as accurate, at a substantial pruning rate" (claim 4).

    d = extracted - stochastic accuracy (pp), paired within each run.

    - n < 2: inconclusive;
    - the CI lies within [-margin, +margin] and the mean kept fraction <= ``substantial``: supported;
    - the CI lies within the margin but the kept fraction is above ``substantial``: not supported
      (the pruning rate is not substantial);
    - the CI lies entirely outside the margin: not supported;
    - otherwise (the CI straddles a margin): inconclusive.
    """
    if n < 2 or ci is None:
        return Verdict(INCONCLUSIVE, f"n={n}: the CI needs at least 2 runs")
    low, high = ci
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
    return Verdict(INCONCLUSIVE, f"the CI straddles the ±{margin:.3g} pp margin: more runs needed")


@dataclass(frozen=True)
class Sensitivity:
    """What a paired comparison's seeds could tell (see :func:`sensitivity`)."""

    resolution: float | None  # half-width of the CI: smaller differences look like no difference
    bound: float | None  # the CI excludes differences beyond +-bound
    seeds_needed: int | None  # for a conclusive verdict, at the observed spread; None: already is


def sensitivity(difference: Summary, margin: float, equivalence: bool = False) -> Sensitivity:
    """The smallest difference the seeds could have told from zero, and how many seeds a conclusive
    answer would need.

    - ``resolution`` is the half-width h of the 95% CI of the mean difference: a true difference
      smaller than about h leaves 0 inside the interval, so "not supported" reads as "no difference
      larger than ``bound``" (the CI end farthest from 0).
    - A verdict is conclusive when the CI lies on one side of 0 (h < |mean|) or within the margin of
      no practical difference (|mean| + h <= margin). The CI's width shrinks as 1/sqrt(n), so at the
      observed spread the seeds needed are n * (h / h*)^2 with h* = max(|mean|, margin - |mean|), the
      easier of the two ways to conclude; rounded up, at least n + 1. An estimate: the spread of a
      few seeds is itself uncertain.
    - For an ``equivalence`` test (claim 5) the verdict is conclusive when the CI lies within the
      margin or entirely outside it, so h* = | margin - |mean| |.
    """
    if difference.n < 2 or difference.ci is None or difference.mean is None:
        return Sensitivity(None, None, None)
    low, high = difference.ci
    half = (high - low) / 2
    bound = max(abs(low), abs(high))
    mean = abs(difference.mean)
    within = -margin <= low and high <= margin
    if equivalence:
        conclusive = within or low > margin or high < -margin
        target = abs(margin - mean)
    else:
        conclusive = within or low > 0 or high < 0
        target = max(mean, margin - mean)
    if conclusive:
        return Sensitivity(half, bound, None)
    needed = math.ceil(difference.n * (half / target) ** 2 - 1e-9) if target > 0 else None
    return Sensitivity(half, bound, max(difference.n + 1, needed) if needed else None)


def aggregate_verdict(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict for a claim from the verdicts of its comparisons.

    - no comparison: inconclusive (the caller says which runs are needed);
    - at least one supported and none not supported: supported;
    - at least one not supported and none supported: not supported;
    - both: mixed;
    - only inconclusive ones: inconclusive.
    The counts are always shown.
    """
    counts = {label: sum(v.label == label for v in verdicts)
              for label in (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)}
    total = len(verdicts)
    text = (f"{counts[SUPPORTED]} supported, {counts[NOT_SUPPORTED]} not supported, "
            f"{counts[INCONCLUSIVE]} inconclusive of {total} comparison{'s' if total != 1 else ''}")
    if total == 0:
        return Verdict(INCONCLUSIVE, "no comparison could be made")
    if counts[SUPPORTED] and not counts[NOT_SUPPORTED]:
        return Verdict(SUPPORTED, text)
    if counts[NOT_SUPPORTED] and not counts[SUPPORTED]:
        return Verdict(NOT_SUPPORTED, text)
    if counts[SUPPORTED] and counts[NOT_SUPPORTED]:
        return Verdict(MIXED, text)
    return Verdict(INCONCLUSIVE, text)
