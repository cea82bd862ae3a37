"""What ``subnetbench run`` was asked to run, kept in the results directory, so that ``subnetbench
status`` can tell the planned runs that are missing from those that are done, running or failed.

Each distinct set of runs has its own file, ``RESULTS/plans/<16 hex digits of the SHA-256 of its
sorted run ids>.json``, written atomically::

    {"format": "subnetbench.plan", "format_version": 1, "runs": ["<run id>", ...],
     "commands": [{"id": "<hex>", "argv": [...], "cwd": "...", "host": "...", "created": "<UTC>",
                   "executor": "inline" | "slurm" | "submitit-local", "job_ids": [...],
                   "job_folder": "..."}, ...]}

Several commands on one results directory (another grid, other seeds) add files of their own, so no
two commands ever write one file, except the same command run again (to resume, or resubmitted),
which adds its command to the list (the last :data:`MAX_COMMANDS` are kept; should two copies of one
command write at the same instant, one entry of the list can be lost, never a run id). Nothing here
imports torch.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from subnetbench.files import atomic_write_text, strict_json

FORMAT = "subnetbench.plan"
FORMAT_VERSION = 1
PLANS_FOLDER = "plans"
MAX_COMMANDS = 20


def plan_path(results_dir: str | Path, run_ids: list[str]) -> Path:
    digest = hashlib.sha256("\n".join(sorted(set(run_ids))).encode()).hexdigest()[:16]
    return Path(results_dir) / PLANS_FOLDER / f"{digest}.json"


def new_command(argv: list[str], executor: str) -> dict[str, Any]:
    """The description of one invocation of ``subnetbench run``; its ``id`` lets a later
    :func:`record` (after a submission) update it rather than add another."""
    return {"id": uuid.uuid4().hex[:12], "argv": list(argv), "cwd": os.getcwd(),
            "host": socket.gethostname(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "executor": executor, "job_ids": [], "job_folder": None}


def _read(path: Path) -> dict[str, Any] | None:
    """A plan file's content, or None when it is missing or not a plan of this format."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or \
            not isinstance(data.get("runs"), list) or not isinstance(data.get("commands"), list):
        return None
    return data


def record(results_dir: str | Path, run_ids: list[str], command: dict[str, Any]) -> Path:
    """Write (or update) the plan of ``run_ids`` with ``command`` (from :func:`new_command`): a
    command of the same ``id`` is replaced, another one added."""
    path = plan_path(results_dir, run_ids)
    existing = _read(path)
    commands = [c for c in (existing or {}).get("commands", [])
                if isinstance(c, dict) and c.get("id") != command["id"]]
    commands = (commands + [command])[-MAX_COMMANDS:]
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "runs": sorted(set(run_ids)),
            "commands": commands}
    atomic_write_text(path, strict_json(data, indent=1) + "\n")
    return path


def read_plans(results_dir: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every plan of the results directory, and the names of plan files that cannot be read."""
    folder = Path(results_dir) / PLANS_FOLDER
    plans, unreadable = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = _read(path)
        if data is None:
            unreadable.append(str(path))
        else:
            plans.append(data)
    return plans, unreadable
