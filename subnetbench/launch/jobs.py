"""The submitit executor: the runs as a job array of SLURM (``--executor slurm``) or of submitit's
local executor (``--executor submitit-local``: the same job path, on this machine). ``run`` waits for
the jobs and gives every run's outcome as its result file says, or with ``--no-wait`` returns once
they are submitted; the job ids go into the results directory's plan."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from subnetbench import locks, plans
from subnetbench.benchmark.results import read_result
from subnetbench.benchmark.run_record import run_identity
from subnetbench.launch import cluster
from subnetbench.launch.base import Execution, Executor
from subnetbench.launch.options import RunOptions, RunSettings
from subnetbench.launch.outcome import RunOutcome
from subnetbench.layout import ResultsLayout


def outcome_on_disk(config: Any, results_dir: Path) -> RunOutcome:
    """A run's outcome as a job left it: its result file, else its lock's holder, else missing."""
    record = read_result(ResultsLayout(results_dir).run_file(config.run_id))
    if record is not None and record.status == "completed":
        return RunOutcome(config, record.to_json())
    holder = locks.holder(results_dir, config.run_id)
    if holder is not None:
        return RunOutcome(config, run_identity(config, "running"), holder=holder)
    return RunOutcome(config, record.to_json() if record is not None else
                      run_identity(config, "missing"))


class JobsExecutor(Executor):
    """Submits the units through submitit, in jobs of up to ``--runs-per-job`` runs."""

    local = False

    def __init__(self, options: RunOptions, device: str) -> None:
        super().__init__(device)
        self.options = options
        self.name = options.cluster.executor

    def execute(self, units: list[list], results_dir: str, settings: RunSettings, display: Any,
                plan_entry: dict[str, Any]) -> Execution:
        results, wanted = Path(results_dir), self.options.cluster
        configs = [config for unit in units for config in unit]
        submitted = cluster.submit(wanted, units, settings, results, self.options.seed_batch_mode,
                                   self.options.threads)
        plan_entry.update(job_ids=submitted.job_ids, job_folder=str(submitted.folder))
        plans.record(results, [config.run_id for config in configs], plan_entry)
        ids = submitted.job_ids
        shown = ", ".join(ids[:6]) + (f", ... ({len(ids)} jobs)" if len(ids) > 6 else "")
        print(f"submitted {len(ids)} job(s) for {len(configs)} run(s) with --executor {self.name}: "
              f"{shown}; logs in {submitted.folder}", flush=True)
        if not wanted.wait:
            print(f"follow them with: subnetbench status {results_dir}")
            return Execution([], waited=False)
        try:
            failures = cluster.wait(submitted, self.name)
        except KeyboardInterrupt:
            print(f"\n{cluster.stop_waiting(submitted, self.name, results_dir)}", flush=True)
            return Execution([], waited=False, code=130)
        return Execution([outcome_on_disk(config, results) for config in configs],
                         code=int(bool(failures)))
