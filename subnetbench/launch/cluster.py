"""Submitting runs through submitit: to SLURM (``--executor slurm``) or to submitit's local executor
(``--executor submitit-local``: the same job path, on this machine, which the tests use).

The units (runs, or seed batches) are packed into jobs of up to ``--runs-per-job`` runs
(:func:`pack_jobs`) and submitted as one job array; each job runs
:func:`subnetbench.launch.job.run_task` (requeued at its time limit, its runs resumed). This module
checks the ``--slurm-*`` options, submits, and waits. submitit is an optional dependency:
``pip install 'subnetbench[cluster]'``.
"""
from __future__ import annotations

import importlib
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from subnetbench.errors import OptionError, SubnetbenchError
from subnetbench.launch.arguments import JOB_NAME
from subnetbench.launch.job import JobTask
from subnetbench.launch.options import ClusterOptions, RunSettings
from subnetbench.layout import ResultsLayout

INSTALL = "pip install 'subnetbench[cluster]'"
LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # submitit's local executor kills a job after 2 minutes by default
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


def check_options(args: ClusterOptions, jobs: int) -> None:
    """The cluster options of ``run`` (``args``; ``jobs`` is --jobs), before anything is planned or
    written."""
    given = [flag for attr, flag, _ in SLURM_OPTIONS if getattr(args, attr) not in (None, ())]
    if args.executor == "inline":
        extra = given + [flag for flag, value in (("--no-wait", not args.wait),
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
    _parse_params(list(args.slurm_param))
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
    if jobs > 1:
        raise OptionError(f"--jobs {jobs} is not allowed with --executor {args.executor}: each "
                          "job trains its runs one after another; use --runs-per-job and the array")
    submitit = import_submitit(args.executor)
    if args.executor == "slurm" and submitit.SlurmExecutor.affinity() <= 0:
        raise SubnetbenchError("--executor slurm cannot submit from this machine: SLURM's srun is "
                               "not on its PATH; run the command on the cluster's login node, "
                               "where sbatch and srun are, or use --executor submitit-local to run "
                               "the same jobs here")


def executor_parameters(args: ClusterOptions) -> dict[str, Any]:
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
        if name is not None and value not in (None, ()):
            params[name] = list(value) if isinstance(value, tuple) else value
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


@dataclass
class Submitted:
    """Jobs submitted by one command."""

    jobs: list[Any]
    folder: Path

    @property
    def job_ids(self) -> list[str]:
        return [str(job.job_id) for job in self.jobs]


def submit(args: ClusterOptions, units: list[list], settings: RunSettings, results_dir: Path,
           seed_batch_mode: str = "auto", threads: int = 1) -> Submitted:
    """Submit the units as one job array; FileFault/SubnetbenchError when submission fails."""
    submitit = import_submitit(args.executor)
    # Imported by name: the module subclasses submitit's classes, and submitit is optional.
    task_runner = importlib.import_module("subnetbench.launch.cluster_job").TaskRunner
    folder = Path(args.submitit_folder) if args.submitit_folder else ResultsLayout(results_dir).submitit
    folder = folder.resolve()
    cluster = "slurm" if args.executor == "slurm" else "local"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**executor_parameters(args))
    tasks = [JobTask(job, str(results_dir.resolve()), settings, seed_batch_mode, threads)
             for job in pack_jobs(units, args.runs_per_job)]
    try:
        jobs = executor.map_array(task_runner(), tasks)
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
