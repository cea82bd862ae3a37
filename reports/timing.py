"""Claim 4 from the timing studies of a results directory (``RESULTS/timing/*.json``, written by
``subnetbench timing``, benchmark/rescaling_study.py).

Each repeat of a study timed one epoch of every arm in turn, so a rescaled arm and its baseline are
paired by repeat: the overhead of a repeat is 100 * (seconds with / seconds without - 1) %, and the
claim's difference of a repeat is the overhead of aslp's SR minus that of supermask's DWR. Timing
noise is skewed (a busy machine only ever slows an epoch down), so each is summarised by its median,
its interquartile range and the distribution-free interval of the median
(:func:`reports.stats.median_ci`), and judged by :func:`reports.stats.timing_verdict`: "inconclusive:
too noisy" when the noise exceeds the effect. Only JSON is read; a bad file is skipped with a reason.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from subnetbench.errors import SubnetbenchError
from subnetbench.files import read_regular_file, strict_loads
from subnetbench.records import is_number
from subnetbench.reports import stats
from subnetbench.reports.loading import Skipped

TIMING_DIR = "timing"
FORMAT = "subnetbench.timing"
READABLE_VERSIONS = (1,)
MAX_STUDY_BYTES = 4 * 1024 * 1024
# The overheads a study estimates: (rescaled arm, its baseline).
OVERHEADS = (("aslp SR", "aslp"), ("aslp SR joint", "aslp"), ("supermask DWR", "supermask"))
CLAIMED, AGAINST, CLAIMED_JOINT = "aslp SR", "supermask DWR", "aslp SR joint"


@dataclass(frozen=True)
class Estimate:
    """Per-repeat values (%) and their median, interquartile range and 95% CI of the median."""

    name: str
    values: tuple[float, ...]
    median: float
    quartiles: tuple[float, float]
    ci: tuple[float, float] | None


@dataclass(frozen=True)
class TimingStudy:
    file: str  # the file's name (no path of the machine)
    protocol: str
    seed: int
    repeats: int
    device: str
    threads: int | None
    load_controlled: bool
    overheads: tuple[Estimate, ...]
    difference: Estimate  # aslp SR's overhead minus supermask DWR's, per repeat (points)
    verdict: stats.Verdict
    joint_difference: Estimate  # the same with SR updated in one pass a batch
    joint_verdict: stats.Verdict


def estimate(name: str, values: list[float]) -> Estimate:
    data = np.asarray(values, dtype=float)
    low, high = np.quantile(data, [0.25, 0.75])
    return Estimate(name, tuple(float(v) for v in data), float(np.median(data)),
                    (float(low), float(high)), stats.median_ci(data))


def _seconds(study: dict, arm: str) -> list[float]:
    values = study["arms"][arm]["epoch_s"]
    if not (isinstance(values, list) and values and all(is_number(v) and v > 0 for v in values)):
        raise ValueError(f"arm {arm!r} has no list of positive epoch seconds")
    return [float(v) for v in values]


def overhead(study: dict, arm: str, baseline: str) -> list[float]:
    """The arm's overhead over its baseline, in %, per repeat (paired: timed in the same repeat)."""
    with_s, without_s = _seconds(study, arm), _seconds(study, baseline)
    if len(with_s) != len(without_s):
        raise ValueError(f"arms {arm!r} and {baseline!r} have different numbers of repeats")
    return [100.0 * (w / wo - 1.0) for w, wo in zip(with_s, without_s)]


def analyse(name: str, study: dict, margin: float) -> TimingStudy:
    """The study's overheads and claim 4's verdict on it (ValueError: not a usable study)."""
    if study.get("format") != FORMAT or study.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(f"not a {FORMAT} file of version {READABLE_VERSIONS}")
    overheads = {arm: overhead(study, arm, base) for arm, base in OVERHEADS}
    difference = [a - b for a, b in zip(overheads[CLAIMED], overheads[AGAINST])]
    joint = [a - b for a, b in zip(overheads[CLAIMED_JOINT], overheads[AGAINST])]
    threads = study.get("threads")
    return TimingStudy(name, str(study["protocol"]), int(study["seed"]), len(difference),
                       str(study.get("device", "unknown")), threads if isinstance(threads, int) else None,
                       bool(study.get("load_controlled", False)),
                       tuple(estimate(arm, overheads[arm]) for arm, _ in OVERHEADS),
                       estimate(f"{CLAIMED} minus {AGAINST}", difference),
                       stats.timing_verdict(difference, margin, direction=-1),
                       estimate(f"{CLAIMED_JOINT} minus {AGAINST}", joint),
                       stats.timing_verdict(joint, margin, direction=-1))


def load_studies(results_dir: str | Path, margin: float) -> tuple[list[TimingStudy], list[Skipped]]:
    """Every timing study of ``results_dir`` (none when it has no timing folder), and the files that
    could not be used, each with why."""
    folder = Path(results_dir) / TIMING_DIR
    studies, skipped = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            raw = read_regular_file(path, MAX_STUDY_BYTES).decode("utf-8")
            studies.append(analyse(path.name, strict_loads(raw), margin))
        except (OSError, SubnetbenchError, UnicodeDecodeError, json.JSONDecodeError, ValueError,
                KeyError, TypeError, AttributeError) as error:
            skipped.append(Skipped(f"{TIMING_DIR}/{path.name}", f"not a usable timing study: {error}"))
    return studies, skipped
