"""Runs on a SLURM cluster through submitit (``subnetbench run ... --executor slurm``), or through
submitit's local executor (``--executor submitit-local``: the very same job path, on this machine,
which is what the tests use).

The planned runs are cut into units (one run, or with ``--seed-batch K`` a seed batch of K seeds
trained together) and the units into jobs of up to ``--runs-per-job`` runs (:func:`pack_jobs`); the
jobs are submitted as one job array (``executor.map_array``). Each job calls :func:`run_task` on a
:class:`JobTask`, plain data (configurations, the results directory, the options of the run), which
runs its units one after another through the same lifecycle as an inline run
(:func:`benchmark.runner.execute_runs`, locks included): on a CPU its result files are those of an
inline run. A job at its time limit, or preempted, is requeued by submitit
(:class:`subnetbench.cluster_job.TaskRunner` is checkpointable) with the same task, or with
``--force`` a copy that does not force again what the stopped attempt did (:func:`requeued`): its
finished runs are reused and the others resume from their last checkpoint.

``subnetbench run`` waits for the jobs and prints every run as an inline run does, or with
``--no-wait`` returns once they are submitted, printing their ids and the ``subnetbench status``
command that follows them. The job ids are recorded in the results directory's plan
(:mod:`subnetbench.plans`). submitit is an optional dependency: ``pip install 'subnetbench[cluster]'``.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from subnetbench.errors import OptionError, SubnetbenchError

EXECUTORS = ("inline", "slurm", "submitit-local")
INSTALL = "pip install 'subnetbench[cluster]'"
LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # submitit's local executor kills a job after 2 minutes by default
JOB_NAME = "subnetbench"
POLL_S = {"slurm": 15.0, "submitit-local": 0.5}
# --slurm-* options: attribute, flag, submitit parameter of AutoExecutor (None: handled apart).
SLURM_OPTIONS = (
    ("slurm_partition", "--slurm-partition", "slurm_partition"),
    ("slurm_time", "--slurm-time", None),
    ("slurm_gpus_per_task", "--slurm-gpus-per-task", "slurm_gpus_per_task"),
    ("slurm_cpus_per_task", "--slurm-cpus-per-task", "slurm_cpus_per_task"),
    ("slurm_mem", "--slurm-mem", "slurm_mem"),
    ("slurm_array_parallelism", "--slurm-array-parallelism", "slurm_array_parallelism"),
    ("slurm_account", "--slurm-account", "slurm_account"),
    ("slurm_qos", "--slurm-qos", "slurm_qos"),
    ("slurm_constraint", "--slurm-constraint", "slurm_constraint"),
    ("slurm_setup", "--slurm-setup", "slurm_setup"),
    ("slurm_param", "--slurm-param", None),
    ("slurm_job_name", "--slurm-job-name", None),
)
LOCAL_OPTIONS = ("slurm_time", "slurm_gpus_per_task")  # what submitit-local takes of them


class MissingDependency(SubnetbenchError):
    """An optional package a command needs is not installed."""


def import_submitit(executor: str) -> Any:
    """The submitit module, or a one-paragraph error that says how to install it."""
    try:
        return importlib.import_module("submitit")
    except ImportError:
        raise MissingDependency(
            f"--executor {executor} needs the package submitit, which is not installed in this "
            f"environment; install it with {INSTALL} (or pip install submitit), or run the runs "
            "on this machine without --executor") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``run`` for submitit executors."""
    group = parser.add_argument_group(
        "clusters (submitit)", "--executor slurm submits the runs as a SLURM job array and waits "
        "for them (--no-wait: returns after submitting); --executor submitit-local runs the same "
        "jobs on this machine. The --slurm-* options are sbatch's; submitit-local takes only "
        "--slurm-time and --slurm-gpus-per-task.")
    group.add_argument("--executor", choices=EXECUTORS, default="inline",
                       help="inline (the default): in this process, or --jobs/--devices workers; "
                       "slurm: a SLURM job array through submitit; submitit-local: submitit's local "
                       "executor (the same job path, on this machine)")
    group.add_argument("--runs-per-job", type=int, default=1, metavar="N",
                       help="runs per job (default 1; with --seed-batch K at least the K seeds of a "
                       "batch): several short runs share one job's start-up and queueing")
    group.add_argument("--no-wait", action="store_true",
                       help="return once the jobs are submitted (follow them with subnetbench status)")
    group.add_argument("--submitit-folder", metavar="DIR",
                       help="submitit's job files and logs (default RESULTS/submitit)")
    group.add_argument("--slurm-partition", metavar="NAME", help="sbatch --partition")
    group.add_argument("--slurm-time", metavar="TIME",
                       help="wall time of one job (required with --executor slurm): minutes, "
                       "HH:MM:SS or D-HH:MM:SS; a job that reaches it is requeued (3 times at most, "
                       "submitit's default) and its runs resume from their checkpoints")
    group.add_argument("--slurm-gpus-per-task", type=int, metavar="N", help="sbatch --gpus-per-task "
                       "of the job's one task (--ntasks-per-node=1); 1 for the CIFAR grids (each "
                       "job's runs use its first GPU)")
    group.add_argument("--slurm-cpus-per-task", type=int, metavar="N", help="sbatch --cpus-per-task")
    group.add_argument("--slurm-mem", metavar="SIZE", help="sbatch --mem, such as 16G")
    group.add_argument("--slurm-array-parallelism", type=int, metavar="N",
                       help="array tasks running at once (sbatch --array=...%%N; default 256)")
    group.add_argument("--slurm-account", metavar="NAME", help="sbatch --account")
    group.add_argument("--slurm-qos", metavar="NAME", help="sbatch --qos")
    group.add_argument("--slurm-constraint", metavar="FEATURES", help="sbatch --constraint")
    group.add_argument("--slurm-setup", action="append", metavar="LINE",
                       help="a shell line run before each job, such as 'module load cuda' "
                       "(repeatable)")
    group.add_argument("--slurm-param", action="append", metavar="KEY=VALUE",
                       help="any other sbatch option, such as mail-type=END (repeatable)")
    group.add_argument("--slurm-job-name", metavar="NAME", help=f"job name (default {JOB_NAME})")


def parse_minutes(text: str) -> int:
    """A SLURM time (``minutes``, ``minutes:seconds``, ``hours:minutes:seconds``, ``days-hours``,
    ``days-hours:minutes``, ``days-hours:minutes:seconds``) in whole minutes, rounded up."""
    allowed = ("expected minutes (720), HH:MM:SS (12:00:00) or D-HH:MM:SS (1-00:00:00), as sbatch "
               "--time takes it")
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if match is None:
        raise OptionError(f"--slurm-time {text!r} is not allowed; {allowed}")
    days, first, second, third = match.groups()
    numbers = [int(first)] + [int(x) for x in (second, third) if x is not None]
    if days is not None:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = (numbers + [0, 0])[:3]
        total = ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
    elif len(numbers) == 1:
        total = numbers[0] * 60
    elif len(numbers) == 2:  # minutes:seconds
        total = numbers[0] * 60 + numbers[1]
    else:
        total = (numbers[0] * 60 + numbers[1]) * 60 + numbers[2]
    if total < 1:
        raise OptionError(f"--slurm-time {text!r} is not allowed; a job needs at least a minute; "
                          f"{allowed}")
    return math.ceil(total / 60)


def _parse_params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key.strip()) or not value.strip():
            raise OptionError(f"--slurm-param {item!r} is not allowed; expected KEY=VALUE with an "
                              "sbatch option name as KEY, such as mail-type=END or exclusive=user")
        params[key.strip().replace("-", "_")] = value.strip()
    return params


def check_options(args: argparse.Namespace) -> None:
    """The cluster options of ``run``, before anything is planned or written."""
    given = [flag for attr, flag, _ in SLURM_OPTIONS if getattr(args, attr) not in (None, [])]
    if args.executor == "inline":
        extra = given + [flag for flag, value in (("--no-wait", args.no_wait),
                                                   ("--submitit-folder", args.submitit_folder),
                                                   ("--runs-per-job", args.runs_per_job != 1))
                         if value]
        if extra:
            raise OptionError(f"{extra[0]} is an option of --executor slurm or submitit-local; add "
                              "one of them, or leave it out to run here")
        return
    if args.executor == "submitit-local":
        ignored = [flag for attr, flag, _ in SLURM_OPTIONS
                   if flag in given and attr not in LOCAL_OPTIONS]
        if ignored:
            raise OptionError(f"{ignored[0]} is an option of --executor slurm; submitit-local runs "
                              "on this machine and takes only --slurm-time and --slurm-gpus-per-task")
    if args.executor == "slurm" and args.slurm_time is None:
        raise OptionError("--executor slurm needs --slurm-time, the wall time of one job (minutes, "
                          "HH:MM:SS or D-HH:MM:SS, within the partition's limit); a job that reaches "
                          "it is requeued and its runs resume from their checkpoints")
    if args.slurm_time is not None:
        parse_minutes(args.slurm_time)
    _parse_params(args.slurm_param or [])
    if args.slurm_mem is not None and not re.fullmatch(r"\d+[KMGTkmgt]?", args.slurm_mem.strip()):
        raise OptionError(f"--slurm-mem {args.slurm_mem!r} is not allowed; expected a size as sbatch "
                          "--mem takes it, such as 16G or 16000M")
    for option, value in (("--runs-per-job", args.runs_per_job),
                          ("--slurm-gpus-per-task", args.slurm_gpus_per_task),
                          ("--slurm-cpus-per-task", args.slurm_cpus_per_task),
                          ("--slurm-array-parallelism", args.slurm_array_parallelism)):
        if value is not None and value < 1:
            raise OptionError(f"{option} {value} is not allowed; expected an integer >= 1")
    for option, value in (("--slurm-partition", args.slurm_partition),
                          ("--slurm-account", args.slurm_account), ("--slurm-qos", args.slurm_qos),
                          ("--slurm-constraint", args.slurm_constraint),
                          ("--slurm-job-name", args.slurm_job_name),
                          ("--submitit-folder", args.submitit_folder)):
        if value is not None and not value.strip():
            raise OptionError(f"{option} {value!r} is not allowed; expected a name")
    if args.jobs > 1:
        raise OptionError(f"--jobs {args.jobs} is not allowed with --executor {args.executor}: each "
                          "job trains its runs one after another; use --runs-per-job and the array")
    submitit = import_submitit(args.executor)
    if args.executor == "slurm" and submitit.SlurmExecutor.affinity() <= 0:
        raise SubnetbenchError("--executor slurm cannot submit from this machine: SLURM's srun is "
                               "not on its PATH; run the command on the cluster's login node, "
                               "where sbatch and srun are, or use --executor submitit-local to run "
                               "the same jobs here")


def executor_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``AutoExecutor.update_parameters`` for ``args``."""
    minutes = parse_minutes(args.slurm_time) if args.slurm_time is not None else None
    params: dict[str, Any] = {"name": args.slurm_job_name or JOB_NAME}
    if args.executor == "submitit-local":
        params["timeout_min"] = minutes or LOCAL_TIMEOUT_MIN
        params["gpus_per_node"] = args.slurm_gpus_per_task or 0
        return params
    params["timeout_min"] = minutes
    # One task per job: run_task is one process. Said explicitly, because sbatch (since 23.11)
    # refuses --gpus-per-task without a task count when --cpus-per-task is given; with --nodes=1,
    # which submitit writes, --ntasks-per-node=1 is that count.
    params["slurm_ntasks_per_node"] = 1
    for attr, _, name in SLURM_OPTIONS:
        value = getattr(args, attr)
        if name is not None and value not in (None, []):
            params[name] = value
    if args.slurm_param:
        params["slurm_additional_parameters"] = _parse_params(args.slurm_param)
    return params


def pack_jobs(units: list[list], runs_per_job: int) -> list[list[list]]:
    """Consecutive units (runs or seed batches) gathered into jobs of at most ``runs_per_job`` runs;
    a unit larger than that is a job of its own."""
    jobs: list[list[list]] = []
    size = 0
    for unit in units:
        if jobs and size + len(unit) <= runs_per_job:
            jobs[-1].append(unit)
            size += len(unit)
        else:
            jobs.append([unit])
            size = len(unit)
    return jobs


@dataclass(frozen=True)
class JobTask:
    """What one job runs: plain, picklable data (no open file, no process state)."""

    units: list[list]  # each a list of RunConfig: one run, or one seed batch
    results_dir: str
    options: dict[str, Any]  # the keyword options of execute_runs (device unresolved: "auto")
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
    if not task.options.get("force"):
        return task
    return dataclasses.replace(task, completed=task.completed | attempt.completed,
                               begun=task.begun | attempt.begun)


def _execute_unit(unit: list, task: JobTask, attempt: Attempt) -> list[dict[str, Any]]:
    """The results of one unit, as execute_runs gives them; in a requeued task (:func:`requeued`)
    its runs completed before are reused, not forced again, and the others forced without their
    checkpoints removed when a stopped attempt began them (a seed batch begins all its seeds
    together)."""
    from subnetbench.benchmark.runner import execute_runs

    options = {**task.options, "progress": attempt, "seed_batch_mode": task.seed_batch_mode}
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
    return [results[config.run_id] for config in unit]


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


def run_task(task: JobTask, attempt: Attempt | None = None) -> list[dict[str, Any]]:
    """The body of every job: its units one after another, as an inline run trains them. A unit
    that fails (a run's error, CUDA out of memory, any exception) does not stop the others; the job
    then fails, naming the units that failed. An interrupt, an exit (submitit's requeue) and
    submitit's own end of a job stop it at once. ``attempt`` follows what it does (for
    :func:`requeued`). Returns each run's id, status and what happened to it."""
    import torch

    from subnetbench.benchmark.runner import resolve_device
    from subnetbench.cli import show_warnings
    from subnetbench.scaleout import outcome_text

    show_warnings()
    if resolve_device(task.options.get("device")).type == "cpu":
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
        for config, result in zip(unit, results):
            print(f"{config.run_id}: {outcome_text(result)}", flush=True)
            done.append({"run_id": config.run_id, "status": result.get("status"),
                         "skipped": bool(result.get("skipped")),
                         "running_elsewhere": result.get("running_elsewhere")})
    if problems:
        raise JobFailed(f"{len(problems)} of the job's {len(task.units)} unit(s) failed: "
                        + "; ".join(problems))
    return done


@dataclass
class Submitted:
    """Jobs submitted by one command."""

    jobs: list[Any]
    folder: Path

    @property
    def job_ids(self) -> list[str]:
        return [str(job.job_id) for job in self.jobs]


def submit(args: argparse.Namespace, units: list[list], options: dict[str, Any],
           results_dir: Path) -> Submitted:
    """Submit the units as one job array; FileFault/SubnetbenchError when submission fails."""
    submitit = import_submitit(args.executor)
    from subnetbench.cluster_job import TaskRunner

    folder = Path(args.submitit_folder) if args.submitit_folder else results_dir / "submitit"
    folder = folder.resolve()
    cluster = "slurm" if args.executor == "slurm" else "local"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**executor_parameters(args))
    tasks = [JobTask(job, str(results_dir.resolve()), options, args.seed_batch_mode, args.threads)
             for job in pack_jobs(units, args.runs_per_job)]
    try:
        jobs = executor.map_array(TaskRunner(), tasks)
    except Exception as error:  # sbatch refused (a partition, a time limit...), or is missing
        raise SubnetbenchError(f"the submission of {len(tasks)} job(s) through submitit "
                               f"({args.executor}) failed: {type(error).__name__}: "
                               f"{' '.join(str(error).split())[:1500]}") from None
    return Submitted(list(jobs), folder)


def stop_waiting(submitted: Submitted, executor: str, results: str) -> str:
    """What ``run`` does when it is interrupted (Ctrl-C) while it waits for its jobs; the line it
    prints. SLURM's jobs go on: they are the cluster's. The jobs of submitit-local are processes of
    this machine in this terminal's process group, which Ctrl-C interrupts as well: each is stopped
    (its controller interrupted, so also when only this command was), and its runs are left to
    resume."""
    if executor != "submitit-local":
        return f"stopped waiting; the jobs go on: subnetbench status {results}"
    for job in submitted.jobs:
        job.cancel(check=False)
    return (f"stopped; the local jobs are stopped too, and the same command resumes their runs "
            f"(subnetbench status {results} shows them)")


def _failure_text(job: Any, error: BaseException) -> str:
    """One paragraph: the exception line of the job's traceback (submitit quotes it), or the first
    line of submitit's message (a job killed or cancelled), and the job's log."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*: ", line)]
    cause = (raised or lines or [type(error).__name__])[-1 if raised else 0]
    return f"job {job.job_id} failed ({cause[:800]}); its log: {job.paths.stderr}"


def wait(submitted: Submitted, executor: str) -> list[str]:
    """Wait for every job; print each as it ends; return the one-paragraph failures."""
    pending, failures = list(submitted.jobs), []
    while pending:
        for job in [job for job in pending if job.done()]:
            pending.remove(job)
            try:
                outcomes = job.result()
            except Exception as error:  # the job raised, was cancelled or killed
                failures.append(_failure_text(job, error))
                print(f"subnetbench: {failures[-1]}", file=sys.stderr, flush=True)
                continue
            print(f"job {job.job_id} done: {len(outcomes)} run(s) ({len(pending)} job(s) left)",
                  flush=True)
        if pending:
            time.sleep(POLL_S[executor])
    return failures
