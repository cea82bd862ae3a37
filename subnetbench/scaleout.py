"""What ``subnetbench run`` records of its plan for ``subnetbench status``, and what it prints of
each run, whatever ran it: a run that another process is training (it holds the run's lock,
:mod:`subnetbench.locks`) is left to it and shown as running elsewhere.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from subnetbench import locks, plans


def record_plan(args: argparse.Namespace, configs: list) -> None:
    """Check the results directory's folders (nothing is written before) and record what this
    command plans, for ``subnetbench status``."""
    from subnetbench.benchmark.results import prepare_results_dir

    prepare_results_dir(Path(args.results), not args.no_save_subnetwork)
    command = plans.new_command(["subnetbench", *args.argv], "inline")
    plans.record(args.results, [config.run_id for config in configs], command)


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
    return (f"{elsewhere} run(s) are being trained by another process and were left to it; "
            f"subnetbench status {results_dir} shows them, and this command run again later "
            "reports their results")
