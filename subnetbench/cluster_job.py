"""The callable every submitit job runs (imported only where submitit is installed).

It is checkpointable: when SLURM signals a job before its time limit, or preempts it, submitit
requeues the job with the same task instead of losing it. The requeued job reuses the runs finished
before and resumes the others from their last checkpoint (benchmark/runner.py); their locks were
released when the old job's process ended.
"""
from __future__ import annotations

from typing import Any

import submitit

from subnetbench.cluster import JobTask, run_task


class TaskRunner(submitit.helpers.Checkpointable):
    """Runs one :class:`~subnetbench.cluster.JobTask`; requeued as it is (the default
    ``checkpoint``) when the job is stopped."""

    def __call__(self, task: JobTask) -> list[dict[str, Any]]:
        return run_task(task)
