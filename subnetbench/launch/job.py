"""The body of every submitit job (:mod:`subnetbench.launch.cluster` submits them): its units run
one after another through the same lifecycle as an inline run; a job stopped at its time limit or
preempted is requeued with :func:`requeued`'s task and its runs resume from their checkpoints."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from subnetbench.benchmark.device import resolve_device
from subnetbench.benchmark.runner import execute_runs
from subnetbench.console import show_warnings
from subnetbench.errors import SubnetbenchError
from subnetbench.launch.options import RunSettings
from subnetbench.launch.outcome import RunOutcome


@dataclass(frozen=True)
class JobTask:
    """What one job runs: plain, picklable data (no open file, no process state)."""

    units: list[list]  # each a list of RunConfig: one run, or one seed batch
    results_dir: str
    settings: RunSettings  # what its runs are run with (the device unresolved: "auto")
    seed_batch_mode: str
    threads: int
    # Of a task run with force and requeued (requeued()): the runs the stopped attempts completed,
    # reused rather than forced again, and those they began, resumed from their checkpoints.
    completed: frozenset[str] = frozenset()
    begun: frozenset[str] = frozenset()


class Attempt:
    """What one attempt of a job did, as its runs' progress events tell it: the runs it began and
    those it completed. Said in the job's log: the runs that resume from a checkpoint."""

    def __init__(self) -> None:
        self.begun: set[str] = set()
        self.completed: set[str] = set()

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "start":
            self.begun.add(event["run_id"])
            if event.get("epoch"):
                print(f"{event['run_id']}: resumes from its checkpoint after epoch {event['epoch']}",
                      flush=True)
        elif event.get("kind") == "completed":
            self.completed.add(event["run_id"])


def requeued(task: JobTask, attempt: Attempt) -> JobTask:
    """The task a stopped job (time limit, preemption) is requeued with. Without force, ``task``
    itself: its completed runs are reused and the others resume from their checkpoints. With
    force, a copy that does not force again what the stopped attempts did: what they completed is
    reused, and what they began resumes from the checkpoints they wrote (forcing again would
    train completed runs a second time and restart the others from scratch)."""
    if not task.settings.force:
        return task
    return dataclasses.replace(task, completed=task.completed | attempt.completed,
                               begun=task.begun | attempt.begun)


def _execute_unit(unit: list, task: JobTask, attempt: Attempt) -> list[RunOutcome]:
    """The outcomes of one unit; in a requeued task (:func:`requeued`) its runs completed before
    are reused, not forced again, and the others forced without their checkpoints removed when a
    stopped attempt began them (a seed batch begins all its seeds together)."""
    options = {**task.settings.keywords(), "progress": attempt, "seed_batch_mode": task.seed_batch_mode}
    before = [config for config in unit if config.run_id in task.completed]
    rest = [config for config in unit if config.run_id not in task.completed]
    results: dict[str, dict[str, Any]] = {}
    if before:
        results.update(zip([c.run_id for c in before],
                           execute_runs(before, task.results_dir, **{**options, "force": False})))
    if rest:
        begun = any(config.run_id in task.begun for config in rest)
        results.update(zip([c.run_id for c in rest],
                           execute_runs(rest, task.results_dir, **options, keep_checkpoints=begun)))
    return [RunOutcome.from_runner(config, results[config.run_id]) for config in unit]


class JobFailed(SubnetbenchError):
    """A job whose runs did not all finish; the message names them."""

    exit_code = 1


def _job_stops() -> tuple[type[BaseException], ...]:
    """The exceptions by which submitit ends a job (raised inside it from its signal handler: a
    job out of requeues at its time limit); they end the job, not one unit."""
    try:
        from submitit.core.utils import UncompletedJobError
    except ImportError:
        return ()
    return (UncompletedJobError,)


def run_task(task: JobTask, attempt: Attempt | None = None) -> list[RunOutcome]:
    """The body of every job: its units one after another, as an inline run trains them. A unit
    that fails (a run's error, CUDA out of memory, any exception) does not stop the others; the job
    then fails, naming the units that failed. An interrupt, an exit (submitit's requeue) and
    submitit's own end of a job stop it at once. ``attempt`` follows what it does (for
    :func:`requeued`). Returns what happened to each run."""
    show_warnings()
    if resolve_device(task.settings.device).type == "cpu":
        torch.set_num_threads(task.threads)  # as an inline run: the same arithmetic
    stops = _job_stops()
    attempt = attempt if attempt is not None else Attempt()
    done, problems = [], []
    for unit in task.units:
        try:
            results = _execute_unit(unit, task, attempt)
        except Exception as error:
            if isinstance(error, stops):
                raise
            names = ", ".join(config.run_id for config in unit)
            problems.append(f"{names}: {type(error).__name__}: {' '.join(str(error).split())}")
            print(f"{names}: failed: {type(error).__name__}: {error}", flush=True)
            continue
        for outcome in results:
            print(f"{outcome.run_id}: {outcome.text()}", flush=True)
            done.append(outcome)
    if problems:
        raise JobFailed(f"{len(problems)} of the job's {len(task.units)} unit(s) failed: "
                        + "; ".join(problems))
    return done
