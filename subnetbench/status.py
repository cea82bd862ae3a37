"""subnetbench status RESULTS: what is done, running, failed, interrupted and missing in a results
directory, whatever launched the runs (commands, --jobs, --devices, xdist workers, SLURM).

Each run is in one state:

- running: its lock is held now, with the holder's pid, host, start and SLURM job;
- completed, failed: its result file says so (failed with the error);
- interrupted: its result file says running but nobody holds its lock (the process was killed, or
  its job ran out of time): the next subnetbench run that plans it resumes it from its checkpoint;
- missing: planned by a subnetbench run (its plan in RESULTS/plans) but never started;
- unreadable: its result file cannot be used: damaged, not strict JSON or not a regular file (the
  next run command moves it aside and runs it again), of a newer format version (left as it is; a
  run command refuses it) or not readable at all (no permission, a directory: to fix first); each
  says which.

Runs that no plan names (the benchmark suite's, or results copied in) are shown in their state too.
Submissions through submitit are listed with their job ids and log folder; the cluster itself is not
asked (squeue/sacct can be, with those ids). Nothing here imports torch.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from subnetbench import locks, plans
from subnetbench.errors import PathNotFound, describe_os_error
from subnetbench.files import strict_json
from subnetbench.layout import ResultsLayout
from subnetbench.record_reading import InvalidRecord, NewerFormat, read_result_file
from subnetbench.records import RunRecord

STATES = ("completed", "running", "failed", "interrupted", "missing", "unreadable")
MAX_LISTED = 20  # runs listed per state in the text output (--json lists all)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="the results directory (--results of subnetbench run)")
    parser.add_argument("--json", action="store_true", help="machine-readable output: every run "
                        "with its state, the counts and the submissions")


# What happens to an unreadable result file, by why it is unreadable (the hint status prints).
DAMAGED_HINT = "the next run command that plans it moves it aside and runs it again"
NEWER_HINT = ("left as it is: a run command refuses it (and runs nothing); use the newer "
              "subnetbench (pip install -U subnetbench) or another --results directory")
INACCESSIBLE_HINT = "a run command stops on it too: fix this first"


def _read_record(path: Path) -> tuple[RunRecord | None, str | None, str | None]:
    """A result file as status sees it: the record, or None, why it cannot be used and what to do
    about it. It is read as the engine reads it (:func:`~subnetbench.record_reading.read_result_file`: a
    FIFO is never opened, a huge file never read), so what status calls unreadable is what a run
    would not use."""
    try:
        record, _ = read_result_file(path)
    except NewerFormat as error:
        return None, f"written by a newer subnetbench ({error})", NEWER_HINT
    except InvalidRecord as error:
        return None, str(error), DAMAGED_HINT
    except OSError as error:
        return None, describe_os_error(error, path, "read"), INACCESSIBLE_HINT
    return record, None, None


def _state(record: RunRecord | None, problem: str | None, holder: dict[str, Any] | None) -> str:
    if holder is not None:
        return "running"
    if problem is not None:
        return "unreadable"
    if record is None:  # only a planned run has neither a file nor a lock
        return "missing"
    return "interrupted" if record.status == "running" else record.status


def collect(results_dir: str | Path) -> dict[str, Any]:
    """The state of every run of ``results_dir``: counts, runs, submissions (the JSON of
    ``status --json``)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise PathNotFound(f"results directory {str(results_dir)!r} does not exist or is not a "
                           "directory; give the --results directory of subnetbench run")
    found_plans, plan_problems = plans.inspect_plans(results_dir)
    planned = {run_id for plan in found_plans for run_id in plan["runs"] if isinstance(run_id, str)}
    runs_dir = ResultsLayout(results_dir).runs
    files = {path.name[:-len(".json")]: path for path in sorted(runs_dir.glob("*.json"))} \
        if runs_dir.is_dir() else {}
    held = locks.locked_runs(results_dir)
    runs = []
    for run_id in sorted(planned | set(files) | set(held)):
        record, problem, hint = _read_record(files[run_id]) if run_id in files else (None, None, None)
        state = _state(record, problem, held.get(run_id))
        entry: dict[str, Any] = {"run_id": run_id, "state": state, "planned": run_id in planned}
        if run_id in held:
            entry["holder"] = held[run_id]
        if problem is not None:
            entry["problem"], entry["hint"] = problem, hint
        if record is not None and record.status == "failed":
            entry["error"] = record.error
        runs.append(entry)
    counts = {state: sum(r["state"] == state for r in runs) for state in STATES}
    submissions = [{**command, "runs": len(plan["runs"])} for plan in found_plans
                   for command in plan["commands"]
                   if isinstance(command, dict) and isinstance(command.get("job_ids"), list)
                   and command["job_ids"]]
    submissions.sort(key=lambda c: str(c.get("created")))
    return {"results_dir": str(results_dir), "planned": len(planned), "counts": counts, "runs": runs,
            "submissions": submissions, "unreadable_plans": list(plan_problems),
            "plan_problems": plan_problems}


def _job_ids_text(job_ids: list[str]) -> str:
    shown = ", ".join(str(j) for j in job_ids[:6])
    return shown + (f", ... ({len(job_ids)} jobs)" if len(job_ids) > 6 else "")


def render(status: dict[str, Any]) -> str:
    """The text of ``subnetbench status``."""
    counts = status["counts"]
    lines = [f"{status['results_dir']}: {len(status['runs'])} runs ({status['planned']} planned): "
             + ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s] or s != "unreadable")]
    details = {
        "running": ("running (lock held)", lambda r: locks.holder_text(r.get("holder", {}))),
        "failed": ("failed", lambda r: " ".join(str(r.get("error")).split())[:300]),
        "interrupted": ("interrupted (nobody holds its lock; the next run command that plans it "
                        "resumes it from its checkpoint)", None),
        "missing": ("missing (planned, never started)", None),
        "unreadable": ("unreadable result file (why; what happens to it)",
                       lambda r: f"{r.get('problem', '')}; {r.get('hint', '')}"),
    }
    for state, (title, detail) in details.items():
        chosen = [r for r in status["runs"] if r["state"] == state]
        if not chosen:
            continue
        lines.append(f"{title}:")
        for run in chosen[:MAX_LISTED]:
            lines.append(f"  {run['run_id']}" + (f": {detail(run)}" if detail else ""))
        if len(chosen) > MAX_LISTED:
            lines.append(f"  ... and {len(chosen) - MAX_LISTED} more (--json lists them all)")
    for submission in status["submissions"]:
        lines.append(f"submitted {submission.get('created')} with --executor "
                     f"{submission.get('executor')} ({submission['runs']} runs): jobs "
                     f"{_job_ids_text(submission['job_ids'])}; logs in {submission.get('job_folder')}")
    for path in status["unreadable_plans"]:
        why = status.get("plan_problems", {}).get(path)
        lines.append(f"note: the plan file {path} cannot be used" + (f" ({why})" if why else "")
                     + "; its runs are not counted as planned")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    status = collect(args.results)
    print(strict_json(status, indent=1) if args.json else render(status))
    return 0
