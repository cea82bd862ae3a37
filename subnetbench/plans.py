"""What ``subnetbench run`` was asked to run, kept in the results directory, so that ``subnetbench
status`` can tell the planned runs that are missing from those that are done, running or failed.

Each distinct set of runs has its own file in the plans folder (:mod:`subnetbench.layout`), named by
16 hex digits of the SHA-256 of its sorted run ids, written atomically::

    {"format": "subnetbench.plan", "format_version": 1, "runs": ["<run id>", ...],
     "commands": [{"id": "<hex>", "argv": [...], "cwd": "...", "host": "...", "created": "<UTC>",
                   "executor": "inline" | "slurm" | "submitit-local", "job_ids": [...],
                   "job_folder": "..."}, ...]}

Several commands on one results directory (another grid, other seeds) add files of their own, so no
two commands ever write one file, except the same command run again (to resume, or resubmitted),
which adds its command to the list (the last :data:`MAX_COMMANDS` are kept; should two copies of one
command write at the same instant, one entry of the list can be lost, never a run id).

A plan file is read like a result file (regular files only, strict JSON, nesting refused, not
parsed recursively into a crash). One that is not a plan (garbage, a FIFO) is shown by ``status``
and, when a run command would write it, moved aside (the quarantine rule, docs/faults.md); one of a
newer format version, or one that cannot be read, is shown and left as it is, never overwritten.
Nothing here imports torch.
"""
from __future__ import annotations

import datetime
import hashlib
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from subnetbench.errors import NotARegularFile, describe_os_error
from subnetbench.files import atomic_write_text, read_regular_file, strict_json, strict_loads
from subnetbench.integrity import quarantine
from subnetbench.layout import ResultsLayout

FORMAT = "subnetbench.plan"
FORMAT_VERSION = 1
MAX_COMMANDS = 20
MAX_PLAN_BYTES = 64 * 1024 * 1024  # a plan is a few kB per thousand runs
log = logging.getLogger("subnetbench")


def plan_path(results_dir: str | Path, run_ids: list[str]) -> Path:
    digest = hashlib.sha256("\n".join(sorted(set(run_ids))).encode()).hexdigest()[:16]
    return ResultsLayout(results_dir).plan(digest)


def new_command(argv: list[str], executor: str) -> dict[str, Any]:
    """The description of one invocation of ``subnetbench run``; its ``id`` lets a later
    :func:`record` (after a submission) update it rather than add another."""
    return {"id": uuid.uuid4().hex[:12], "argv": list(argv), "cwd": os.getcwd(),
            "host": socket.gethostname(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "executor": executor, "job_ids": [], "job_folder": None}


class _Unusable(Exception):
    """A plan file that cannot be used; ``kind`` is "damaged" (not a plan: moved aside when a run
    command writes there), "newer" (of a newer format version: left as it is) or "unreadable" (the
    path cannot be read: no permission; left as it is)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


def _read(path: Path) -> dict[str, Any] | None:
    """A plan file's content, None when there is none; :class:`_Unusable` when it cannot be used.
    Read like a result file: a FIFO is never opened, NaN and deep nesting are refused."""
    try:
        data = strict_loads(read_regular_file(path, MAX_PLAN_BYTES).decode("utf-8"))
    except FileNotFoundError:
        return None
    except NotARegularFile as error:
        raise _Unusable("damaged", f"it is {error.kind}, not a regular file") from None
    except OSError as error:
        raise _Unusable("unreadable", describe_os_error(error, path, "read")) from None
    except (ValueError, UnicodeDecodeError) as error:  # TooLarge, JSONDecodeError, NaN, too deep
        raise _Unusable("damaged", f"it is not a plan file: {error}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _Unusable("damaged", f"its format is not {FORMAT!r}")
    version = data.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise _Unusable("newer", f"its format_version is {version}, newer than the {FORMAT_VERSION} "
                        "this subnetbench reads: it was written by a newer subnetbench")
    if version != FORMAT_VERSION or not isinstance(data.get("runs"), list) or \
            not isinstance(data.get("commands"), list):
        raise _Unusable("damaged", "it is not a plan of this format (format_version, runs, commands)")
    return data


def record(results_dir: str | Path, run_ids: list[str], command: dict[str, Any]) -> Path | None:
    """Write (or update) the plan of ``run_ids`` with ``command`` (from :func:`new_command`): a
    command of the same ``id`` is replaced, another one added. A plan file that is not one (garbage,
    a FIFO) is moved aside (docs/faults.md) and written anew;
    one of a newer format version, or one that cannot be read, is left as it is (a warning says
    so, and returns None): a plan only serves ``status``, never worth overwriting what another
    subnetbench wrote or stopping the runs."""
    path = plan_path(results_dir, run_ids)
    try:
        existing = _read(path)
    except _Unusable as problem:
        if problem.kind != "damaged":
            log.warning("the plan file %s cannot be used (%s). It is left as it is and this command "
                        "is not recorded in it (subnetbench status may not count these runs as "
                        "planned).", path, problem)
            return None
        moved = quarantine(path)
        log.warning("the plan file %s cannot be used (%s). It was moved to %s and is written anew.",
                    path, problem, moved)
        existing = None
    commands = [c for c in (existing or {}).get("commands", [])
                if isinstance(c, dict) and c.get("id") != command["id"]]
    commands = (commands + [command])[-MAX_COMMANDS:]
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "runs": sorted(set(run_ids)),
            "commands": commands}
    atomic_write_text(path, strict_json(data, indent=1) + "\n")
    return path


def read_plans(results_dir: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every plan of the results directory, and the names of plan files that cannot be used."""
    plans, problems = inspect_plans(results_dir)
    return plans, list(problems)


def inspect_plans(results_dir: str | Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every plan of the results directory, and why each plan file that cannot be used cannot be
    (by path). Nothing is moved: ``status`` only looks."""
    folder = ResultsLayout(results_dir).plans
    plans, problems = [], {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = _read(path)
        except _Unusable as problem:
            problems[str(path)] = str(problem)
            continue
        if data is not None:
            plans.append(data)
    return plans, problems
