"""The callable every submitit job runs (imported only where submitit is installed).

It is checkpointable: when SLURM signals a job before its time limit, or preempts it, submitit
requeues the job instead of losing it, with the task :func:`subnetbench.launch.job.requeued` gives:
the same one, or with ``--force`` a copy that does not force again what the stopped attempt did.
The requeued job reuses the runs finished before and resumes the others from their last checkpoint
(benchmark/runner.py); their locks were released when the old job's process ended.
"""
from __future__ import annotations

import submitit

from subnetbench.launch.job import Attempt, JobTask, requeued, run_task
from subnetbench.launch.outcome import RunOutcome


class TaskRunner(submitit.helpers.Checkpointable):
    """Runs one :class:`~subnetbench.launch.job.JobTask`; requeued with :func:`requeued`'s task when
    the job is stopped (submitit calls :meth:`checkpoint` from its signal handler, in the job's
    process, while :meth:`__call__` runs)."""

    def __call__(self, task: JobTask) -> list[RunOutcome]:
        self.attempt = Attempt()
        return run_task(task, self.attempt)

    def checkpoint(self, task: JobTask) -> submitit.helpers.DelayedSubmission:
        attempt = getattr(self, "attempt", None) or Attempt()
        return submitit.helpers.DelayedSubmission(TaskRunner(), requeued(task, attempt))
