"""What ``pytest benchmark/ --runslow`` will do, said before it starts: the runs it trains, where it
keeps them, those it reuses, those it skips and why, and how long the rest should take here.

By default each data set's runs live in ``results/<dataset>``, the folder the README's first
command (``--results results/digits``) and the GPU guide's grid command use, so the suite reuses
what they trained instead of training it again.
"""
from __future__ import annotations

import functools
import statistics
from pathlib import Path

from subnetbench.benchmark import grids, protocols
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.data import DataUnavailableError, load_raw
from subnetbench.benchmark.device import resolve_device
from subnetbench.layout import ResultsLayout
from subnetbench.record_reading import read_result_file

SUITE_GRIDS = ("digits-full", "cifar10", "cifar100")
DATASETS = ("digits", "cifar10", "cifar100")  # the data sets of SUITE_GRIDS, in order
# Seconds a digits run takes on this project's 2-core CPU, one torch thread, one run at a time:
# the estimate where the results folder holds no finished run of that network yet.
DIGITS_RUN_S = {"conv2": 15.0, "conv4": 90.0, "conv6": 150.0}


def results_dir_for(option: str | None, dataset: str) -> Path:
    """``--results-dir`` when given (one folder for every data set), else ``results/<dataset>``."""
    return Path(option) if option else Path("results") / dataset


@functools.cache
def skip_reason(dataset: str, device: str) -> str | None:
    """Why runs of ``dataset`` cannot run on ``device`` here (None when they can): CIFAR needs CUDA
    and the data already on disk (the suite never downloads)."""
    if dataset == "digits":
        return None
    if resolve_device(device).type != "cuda":
        return f"{dataset} protocols need CUDA (device here: {resolve_device(device)})"
    try:
        load_raw(dataset, download=False)
    except DataUnavailableError as error:
        return str(error)
    return None


def _finished(folder: Path, run_id: str) -> float | None:
    """The wall time of the completed run ``run_id`` stored in ``folder``; None if there is none."""
    path = ResultsLayout(folder).run_file(run_id)
    if not path.is_file():
        return None
    try:
        record, _ = read_result_file(path)
    except (OSError, ValueError):
        return None
    if record.status != "completed":
        return None
    return (record.timings.total_s if record.timings else None) or 0.0


def outline(results_option: str | None, seeds: list[int], device: str) -> list[str]:
    """Lines that say what a ``--runslow`` session will run on ``device``."""
    lines = []
    for grid in SUITE_GRIDS:
        configurations = grids.expand(grid)
        dataset = protocols.get(configurations[0][0]).dataset
        total = len(configurations) * len(seeds)
        reason = skip_reason(dataset, device)
        if reason:
            lines.append(f"{grid}: {total} runs skipped: {reason}")
            continue
        folder = results_dir_for(results_option, dataset)
        todo, times = [], {}
        for protocol, method, overrides, preset in configurations:
            network = protocols.get(protocol).network
            for seed in seeds:
                config = make_config(protocol, method, seed, overrides, [method], preset)
                seconds = _finished(folder, config.run_id)
                if seconds is None:
                    todo.append(network)
                else:
                    times.setdefault(network, []).append(seconds)
        estimate = sum(statistics.median(times[n]) if n in times else DIGITS_RUN_S.get(n, 600.0)
                       for n in todo)
        lines.append(f"{grid}: {total} runs in {folder}/, {total - len(todo)} already finished (reused), "
                     f"{len(todo)} to train: about {_duration(estimate)} one at a time on this machine")
    return lines


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(minutes, 1)} min"
