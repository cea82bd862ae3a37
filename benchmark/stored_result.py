"""What a run's stored result means for the run about to start, decided in one place.

:func:`judge` reads the run's result file (and saved subnetwork) and changes nothing, so it answers
the first look without the run's lock, ``subnetbench run``'s checks before anything is written, and
the look under the lock. Only :func:`settle`, under the lock, acts on a decision. The policy
(reuse, resume, refuse, quarantine) is stated in docs/faults.md.
"""
from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from subnetbench.benchmark.config import RunConfig
from subnetbench.benchmark.results import inspect_result
from subnetbench.benchmark.subnetworks import has_checked_subnetwork
from subnetbench.errors import IntegrityError, NewerFormatError, OptionError
from subnetbench.integrity import check_verified, moved_text, quarantine, read_verified
from subnetbench.layout import ResultsLayout
from subnetbench.records import RunRecord

log = logging.getLogger("subnetbench")


class Verdict(enum.Enum):
    REUSE = "reuse"            # a completed result of this configuration: returned as it is
    RESUME = "resume"          # none to reuse: trained, from its checkpoint if that passes its checks
    REFUSE = "refuse"          # other options than now, or a newer format version: an error
    QUARANTINE = "quarantine"  # an unusable result file or saved subnetwork: moved aside, run again


@dataclass(frozen=True)
class Decision:
    """A :class:`Verdict` and what acting on it needs."""

    verdict: Verdict
    record: RunRecord | None = None    # the stored record, when there is a usable one
    error: Exception | None = None     # REFUSE: the error to raise
    bad_file: Path | None = None       # QUARANTINE: the file to move aside...
    problem: str | None = None         # ...and why
    stale_digest: bool = False         # REUSE: the subnetwork's digest file is to be repaired first

    def reusable(self) -> dict[str, Any] | None:
        """The result to return instead of running (marked ``skipped``) when it can be used as it
        is, without changing a file; None otherwise. Raises a refusal."""
        if self.verdict is Verdict.REFUSE:
            raise self.error
        if self.verdict is Verdict.REUSE and not self.stale_digest:
            return {**self.record.to_json(), "skipped": True}
        return None


def judge(config: RunConfig, layout: ResultsLayout, force: bool = False,
          check_subnetwork: bool = False) -> Decision:
    """What the stored result of ``config`` means (``force``: a completed result is run again;
    ``check_subnetwork``: a completed run's saved subnetwork must pass its check). Reads only;
    FileFault when the result file cannot be read at all."""
    path = layout.run_file(config.run_id)
    try:
        record, problem = inspect_result(path)
    except NewerFormatError as error:
        return Decision(Verdict.REFUSE, error=error)
    if problem is not None:
        return Decision(Verdict.QUARANTINE, bad_file=path, problem=problem)
    if record is None or force:
        return Decision(Verdict.RESUME, record)
    # Defaults stay out of the hash; a changed default must not pass old results off as new.
    stored, now = record.options, json.loads(json.dumps(config.options_dict()))
    if stored and stored != now:
        return Decision(Verdict.REFUSE, record, error=OptionError(
            f"{path} holds run {config.run_id} with other options than now (a default changed "
            f"since it ran?): {'; '.join(_differences(stored, now))}; move it away or pass --force "
            "to rerun it"))
    if record.status != "completed":
        return Decision(Verdict.RESUME, record)
    subnetwork = layout.subnetwork(config.run_id)
    if not (check_subnetwork and has_checked_subnetwork(record, subnetwork)):
        return Decision(Verdict.REUSE, record)
    try:
        _, stale = check_verified(subnetwork)
    except IntegrityError as error:
        return Decision(Verdict.QUARANTINE, record, bad_file=subnetwork, problem=str(error))
    return Decision(Verdict.REUSE, record, stale_digest=stale)


def settle(decision: Decision, config: RunConfig, layout: ResultsLayout) -> dict[str, Any] | None:
    """Act on ``decision`` under the run's lock: the result to return instead of running, or None
    (the run trains). A bad file is moved aside with a warning, a stale digest file repaired."""
    if decision.verdict is Verdict.QUARANTINE:
        moved = quarantine(decision.bad_file)
        if decision.bad_file == layout.run_file(config.run_id):
            start = ("resumes from its checkpoint if that passes its checks"
                     if layout.checkpoint(config.run_id).exists() else "starts again from scratch")
            log.warning("the result file %s cannot be used (%s). %s and run %s %s.",
                        decision.bad_file, decision.problem, moved_text(moved), config.run_id, start)
        else:
            log.warning("%s. %s and run %s is computed again from scratch to recreate it.",
                        decision.problem, moved_text(moved), config.run_id)
        return None
    if decision.verdict is Verdict.REUSE and decision.stale_digest:
        read_verified(layout.subnetwork(config.run_id))  # names the intact file as the current one
        return {**decision.record.to_json(), "skipped": True}
    return decision.reusable()


def _differences(stored: dict, now: dict, prefix: str = "") -> list[str]:
    """'key: stored X, now Y' for each option that differs, nested keys dotted (missing: absent)."""
    out = []
    for key in [*stored, *(k for k in now if k not in stored)]:
        old, new = stored.get(key, "absent"), now.get(key, "absent")
        if isinstance(old, dict) and isinstance(new, dict):
            out += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            out.append(f"{prefix}{key}: stored {old!r}, now {new!r}")
    return out
