"""The worker pool of ``--jobs N`` (CPU processes) and ``--devices`` (one process per listed GPU).

Workers are spawned, never forked (CUDA cannot be used in a forked child), and each is bound to its
device when it starts (``torch.cuda.set_device``; its runs name it, ``cuda:N``). A worker takes the
next run (or seed batch) when it is done with one, so long and short runs share the devices. Each
unit is reported as soon as it finishes; a unit whose worker raises gives its runs failed outcomes
at once, and the other units go on.
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from subnetbench.benchmark.callbacks import ProgressSink
from subnetbench.benchmark.run_record import run_identity
from subnetbench.benchmark.runner import execute_runs
from subnetbench.console import show_warnings
from subnetbench.launch.options import RunSettings
from subnetbench.launch.outcome import RunOutcome
from subnetbench.progress import as_finished, bind_worker_events, worker_sink

_bound: dict[str, Any] = {}  # in a worker: its slot and device


def _bind_worker(slots: Any, threads: int, device_type: str, events: Any = None) -> None:
    """A worker's initializer: take the next free device from the queue ``slots`` and keep to it;
    its runs' progress events go to the queue ``events``."""
    slot = slots.get(timeout=600)
    if device_type == "cuda":
        torch.cuda.set_device(slot)
        _bound["device"] = f"cuda:{slot}"
    else:
        _bound["device"] = device_type
    _bound["slot"] = slot
    torch.set_num_threads(threads)
    show_warnings()
    bind_worker_events(events)


@dataclass(frozen=True)
class UnitDone:
    """What a worker gives back for one run or seed batch: where it ran and the results."""

    pid: int
    slot: int
    results: list[dict[str, Any]]


def _execute_unit(unit: list, results_dir: str, settings: RunSettings, mode: str) -> UnitDone:
    results = execute_runs(unit, results_dir, **{**settings.keywords(), "device": _bound["device"],
                                                 "progress": worker_sink()}, seed_batch_mode=mode)
    return UnitDone(os.getpid(), _bound["slot"], results)


def _outcome(future: Future) -> UnitDone | Exception:
    """What a worker gave back: its results, or the error its unit raised. An interrupt or an exit
    in a worker is not one unit's failure: it is raised here."""
    error = future.exception()
    if error is None:
        return future.result()
    if not isinstance(error, Exception):
        raise error
    return error


def pooled(units: Sequence[list], results_dir: str, settings: RunSettings, slots: Sequence[int],
           threads: int, mode: str, device_type: str = "cuda",
           display: ProgressSink | None = None) -> Iterator[tuple[list, UnitDone | Exception]]:
    """Each unit (one run, or one seed batch) trained by a worker bound to one of ``slots``, as it
    finishes: its :class:`UnitDone`, or the error it raised (the other units go on); the runs'
    progress events go to ``display``."""
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
    free = context.Queue()
    for slot in slots:
        free.put(slot)
    events = context.Queue() if display is not None else None
    with ProcessPoolExecutor(len(slots), mp_context=context, initializer=_bind_worker,
                             initargs=(free, threads, device_type, events)) as pool:
        pending = {pool.submit(_execute_unit, unit, results_dir, settings, mode): index
                   for index, unit in enumerate(units)}
        for index, future in as_finished(pending, events, display or (lambda event: None)):
            yield units[index], _outcome(future)


def outcomes(units: Sequence[list], results_dir: str, settings: RunSettings, slots: Sequence[int],
             threads: int, mode: str, device_type: str = "cuda",
             display: ProgressSink | None = None) -> Iterator[RunOutcome]:
    """The outcome of every run of ``units``, trained on the devices ``slots`` (CPU processes with
    ``device_type="cpu"``), unit by unit as each finishes; the runs of a unit whose worker raised
    are failed, with the error (their result files say so too when it came in training)."""
    for unit, done in pooled(units, results_dir, settings, slots, threads, mode, device_type,
                             display):
        if isinstance(done, Exception):
            yield from (RunOutcome.raised(config, run_identity(config, "failed"), done)
                        for config in unit)
        else:
            yield from (RunOutcome.from_runner(c, r) for c, r in zip(unit, done.results))
