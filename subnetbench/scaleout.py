"""What ``subnetbench run`` prints of each run, whatever ran it: a run that another process is training
(it holds the run's lock, :mod:`subnetbench.locks`) is left to it and shown as running elsewhere.
"""
from __future__ import annotations

from typing import Any

from subnetbench import locks


def outcome_text(result: dict[str, Any]) -> str:
    """What happened to one run, for the line ``run`` prints of it."""
    status = result.get("status")
    if status == "completed":
        metrics = result["metrics"]
        state = "skipped (done)" if result.get("skipped") else "done"
        return (f"{state}, extracted test acc {100 * metrics['final_test_acc']:.2f}%, kept "
                f"{100 * metrics['kept_fraction']:.1f}%")
    if "running_elsewhere" in result:
        return f"running elsewhere ({locks.holder_text(result['running_elsewhere'])}), left to it"
    if status == "failed":
        return f"failed: {' '.join(str(result.get('error')).split())[:300]}"
    if status == "running":
        return "not finished (interrupted; the same command resumes it)"
    return "no result"


def closing_note(results: list[dict[str, Any]], results_dir: str) -> str | None:
    """A line after the summary when some runs were left to other processes."""
    elsewhere = sum("running_elsewhere" in r for r in results)
    if not elsewhere:
        return None
    return (f"{elsewhere} run(s) are being trained by another process and were left to it; this "
            f"command run again later (with --results {results_dir}) reports their results")
