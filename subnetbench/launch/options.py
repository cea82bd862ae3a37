"""The options of one ``subnetbench run``, frozen: built once from the command line
(:func:`subnetbench.run_command.run_options`) and passed down as they are."""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any

from subnetbench.benchmark.config import MAX_SEED
from subnetbench.devices import max_threads
from subnetbench.errors import OptionError


@dataclass(frozen=True)
class ClusterOptions:
    """``--executor`` and the options of submitit jobs (``--slurm-*``: sbatch's)."""

    executor: str = "inline"  # inline, slurm or submitit-local
    runs_per_job: int = 1
    wait: bool = True
    submitit_folder: str | None = None
    slurm_partition: str | None = None
    slurm_time: str | None = None
    slurm_gpus_per_task: int | None = None
    slurm_cpus_per_task: int | None = None
    slurm_mem: str | None = None
    slurm_array_parallelism: int | None = None
    slurm_account: str | None = None
    slurm_qos: str | None = None
    slurm_constraint: str | None = None
    slurm_setup: tuple[str, ...] = ()
    slurm_param: tuple[str, ...] = ()
    slurm_job_name: str | None = None


@dataclass(frozen=True)
class RunSettings:
    """What every run of a command is run with: the keyword options of
    :func:`subnetbench.benchmark.runner.execute_runs`, as plain, picklable data."""

    device: str = "auto"
    data_dir: str | None = None
    download: bool = True
    force: bool = False
    deterministic: bool = False
    checkpoint_every: int = 1
    save_subnetwork: bool = False
    tensorboard: str | None = None
    wait_for_locks: bool = False  # wait for a run another process holds, rather than leave it

    def keywords(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunOptions:
    """Everything ``subnetbench run`` was asked, checked for form (the runs themselves are checked
    when they are planned)."""

    protocols: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    grid: str | None = None
    seeds: tuple[int, ...] = (0,)
    assignments: tuple[str, ...] = ()  # --set KEY=VALUE
    recipe: str | None = None
    results: str = "results"
    report: str | None = None
    data: str | None = None
    tensorboard: str | None = None
    device: str = "auto"
    devices: str | None = None
    download: bool = True
    force: bool = False
    progress: bool = True
    deterministic: bool = False
    jobs: int = 1
    threads: int = 1
    checkpoint_every: int = 1
    save_subnetwork: bool = True
    seed_batch: int = 1
    seed_batch_mode: str = "auto"
    cluster: ClusterOptions = ClusterOptions()
    argv: tuple[str, ...] = ()  # the command line, recorded in the plan

    def __post_init__(self) -> None:
        for option, value in (("--jobs", self.jobs), ("--threads", self.threads),
                              ("--checkpoint-every", self.checkpoint_every),
                              ("--seed-batch", self.seed_batch)):
            if value < 1:
                raise OptionError(f"{option} {value} is not allowed; expected an integer >= 1")
        if self.threads > max_threads():
            raise OptionError(f"--threads {self.threads} is not allowed; expected an integer in [1, "
                              f"{max_threads()}] (torch threads of one run; this machine has "
                              f"{os.cpu_count()} CPUs)")
        for option, value in (("--results", self.results), ("--report", self.report),
                              ("--data", self.data), ("--tensorboard", self.tensorboard)):
            check_path_option(value, option)


def check_path_option(value: str | None, option: str) -> None:
    """Refuse an empty path: ``Path("")`` is the current directory, which nobody means."""
    if value is not None and not value.strip():
        raise OptionError(f"{option} {value!r} is not allowed; expected a path")


def parse_seeds(text: str) -> tuple[int, ...]:
    """``--seeds``: comma-separated integers in [0, 2**63), in ASCII digits (``int`` also reads
    other scripts' digits, ``+3`` and ``1_0``)."""
    parts = [part.strip() for part in text.split(",")]
    if not all(re.fullmatch(r"-?[0-9]+", part) for part in parts):
        empty = " (it has an empty item)" if "" in parts and text.strip() else ""
        raise OptionError(f"--seeds {text!r} is not allowed{empty}; expected comma-separated "
                          "integers (ASCII digits) such as 0,1,2")
    seeds = tuple(int(part) for part in parts)
    if any(s < 0 for s in seeds):
        raise OptionError(f"--seeds {text!r} is not allowed; expected integers >= 0 such as 0,1,2")
    too_large = [s for s in seeds if s >= MAX_SEED]
    if too_large:
        raise OptionError(f"--seeds: seed {too_large[0]} is not allowed; expected integers in "
                          f"[0, 2**63) (the seed names the run's files and seeds 64-bit random "
                          "generators)")
    return seeds
