"""The executors of this machine (inline, the worker pool) and :func:`choose_executor`, the one
place that picks the executor of a command (:mod:`.base` is the interface, :mod:`.jobs` submitit's)."""
from __future__ import annotations

import re
from collections.abc import Iterator

import torch

from subnetbench.benchmark.device import resolve_device
from subnetbench.benchmark.runner import execute_runs
from subnetbench.devices import parse_devices
from subnetbench.errors import OptionError
from subnetbench.launch import cluster, pool
from subnetbench.launch.base import Execution, Executor
from subnetbench.launch.jobs import JobsExecutor
from subnetbench.launch.options import RunOptions
from subnetbench.launch.outcome import RunOutcome


class InlineExecutor(Executor):
    """In this process, one unit after another, in the planned order."""

    def __init__(self, device: str, threads: int, seed_batch_mode: str) -> None:
        super().__init__(device)
        self.threads, self.seed_batch_mode = threads, seed_batch_mode

    def execute(self, units, results_dir, settings, display, plan_entry) -> Execution:
        return Execution(self._outcomes(units, results_dir, settings, display))

    def _outcomes(self, units, results_dir, settings, display) -> Iterator[RunOutcome]:
        if settings.device == "cpu":  # every run this many threads: its numbers do not depend on --jobs
            torch.set_num_threads(self.threads)
        for unit in units:
            results = execute_runs(unit, results_dir, seed_batch_mode=self.seed_batch_mode,
                                   progress=display, **settings.keywords())
            yield from (RunOutcome.from_runner(c, r) for c, r in zip(unit, results))


class PoolExecutor(Executor):
    """Worker processes (:mod:`.pool`): ``--jobs N`` CPU slots, or one per ``--devices`` GPU."""

    def __init__(self, device: str, slots: list[int], device_type: str, threads: int,
                 seed_batch_mode: str) -> None:
        super().__init__(device, len(slots))
        self.slot_ids, self.device_type = slots, device_type
        self.threads, self.seed_batch_mode = threads, seed_batch_mode

    def execute(self, units, results_dir, settings, display, plan_entry) -> Execution:
        if settings.device == "cpu":
            torch.set_num_threads(self.threads)
        return Execution(pool.outcomes(units, results_dir, settings, self.slot_ids, self.threads,
                                       self.seed_batch_mode, self.device_type, display))


def _check_device_name(device: str) -> str:
    if device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", device):
        return device
    raise OptionError(f"device {device!r} is not allowed; expected cpu, cuda, cuda:N or auto")


def _on_devices(options: RunOptions) -> Executor:
    """``--devices``: one worker per listed GPU."""
    if options.cluster.executor != "inline":
        raise OptionError(f"--devices {options.devices!r} runs on this machine's GPUs; with "
                          f"--executor {options.cluster.executor} ask for GPUs with "
                          "--slurm-gpus-per-task")
    if options.jobs > 1:
        raise OptionError(f"--devices and --jobs {options.jobs} are exclusive: --devices runs one "
                          "run per listed GPU, --jobs N runs N CPU runs; give one of them")
    if options.device not in ("auto", "cuda"):
        raise OptionError(f"--device {options.device} is not allowed with --devices, which binds "
                          "each run to one of the listed GPUs; leave --device out")
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return PoolExecutor("cuda", parse_devices(options.devices, visible), "cuda", options.threads,
                        options.seed_batch_mode)


def choose_executor(options: RunOptions) -> Executor:
    """The executor of a command, its options checked: ``--executor``, ``--devices``, ``--jobs``."""
    cluster.check_options(options.cluster, options.jobs)
    if options.devices is not None:
        executor = _on_devices(options)
    elif options.cluster.executor != "inline":  # the device is the job's: this machine may have no GPU
        executor = JobsExecutor(options, _check_device_name(options.device))
    else:
        device = str(resolve_device(options.device))
        if options.jobs > 1 and device != "cpu":
            raise OptionError(f"--jobs {options.jobs} runs several CPU runs at once; on {device} use "
                              "--jobs 1")
        executor = (PoolExecutor(device, list(range(options.jobs)), "cpu", options.threads, "auto")
                    if options.jobs > 1 else
                    InlineExecutor(device, options.threads, options.seed_batch_mode))
    if options.seed_batch > 1 and options.jobs > 1:
        raise OptionError(f"--seed-batch {options.seed_batch} is not allowed here; use --jobs 1 with "
                          "a seed batch (one process trains it)")
    return executor
