"""Several GPUs of one machine: which process trains on which device.

``subnetbench run ... --devices 0,1,2,3`` (or ``all``) runs that many runs at once, like ``--jobs`` on
a CPU: a pool of worker processes (spawned, never forked), one per listed device, each bound to its
device when it starts (``torch.cuda.set_device``; its runs name it, ``cuda:N``). A worker takes the
next run (or seed batch) when it is done with one, so long and short runs share the devices. Naming
an index twice runs two runs on that device at once. Indices are torch's, that is positions in
``CUDA_VISIBLE_DEVICES`` when it is set.

The benchmark suite's pytest-xdist workers are bound the same way (benchmark/suite/conftest.py):
worker ``gwN`` to device N modulo the number of visible devices.

The same pool runs ``--jobs N`` on a CPU (``device_type="cpu"``, N slots). Each unit is reported
as soon as it finishes; a unit whose worker raises gives its runs ``failed`` results with the error
(:func:`failed_results`) as soon as it fails, and the other units go on.

The assignment is pure functions (:func:`parse_devices`, :func:`xdist_worker_index`,
:func:`worker_device`), tested on a machine without GPU; the tests run the pool on CPU processes.
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from subnetbench.benchmark.callbacks import ProgressSink
from subnetbench.errors import OptionError
from subnetbench.progress import as_finished

ALL = "all"


def max_threads() -> int:
    """The most torch threads one run (or the speed study) may ask for: four per CPU of this
    machine, as more only wait for each other, but at least 256, since a cluster job may run on a
    node with more CPUs than the machine that submits it. --threads 1000000 is a typo."""
    return max(4 * (os.cpu_count() or 1), 256)


def visible_text() -> str:
    """How the visible devices were chosen, for error messages."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return "all of the machine's" if value is None else f"CUDA_VISIBLE_DEVICES={value!r}"


def parse_devices(text: str, visible: int) -> list[int]:
    """The device indices of ``--devices TEXT`` when ``visible`` CUDA devices are visible: ``all``
    or comma-separated indices (repeats allowed). OptionError, naming the value and what is
    allowed, for bad text, no CUDA or an index that is not visible."""
    if visible < 1:
        raise OptionError(f"--devices {text!r} needs CUDA GPUs, and none is visible here (torch sees "
                          f"0 CUDA devices, {visible_text()}); on a CPU use --jobs N to run N runs "
                          "at once, or --executor slurm to run on a cluster")
    allowed = f"'all' or comma-separated indices from 0 to {visible - 1} (such as 0,1)"
    if text.strip() == ALL:
        return list(range(visible))
    parts = [part.strip() for part in text.split(",")]
    try:
        indices = [int(part) for part in parts]
    except ValueError:
        raise OptionError(f"--devices {text!r} is not allowed; expected {allowed}") from None
    for index in indices:
        if not 0 <= index < visible:
            raise OptionError(f"--devices {text!r} names device {index}, but {visible} CUDA "
                              f"device(s) are visible here ({visible_text()}); expected {allowed}")
    return indices


def xdist_worker_index(worker_id: str | None) -> int | None:
    """The number of a pytest-xdist worker id (``gw3`` is 3); None outside a worker."""
    if not worker_id or not worker_id.startswith("gw") or not worker_id[2:].isdigit():
        return None
    return int(worker_id[2:])


def worker_device(worker_index: int | None, visible: int) -> int | None:
    """The CUDA device of worker ``worker_index``: its index modulo the ``visible`` devices; None
    when there is no worker or no CUDA device (then the worker runs on the CPU)."""
    if worker_index is None or visible < 1:
        return None
    return worker_index % visible


# -- the pool ---------------------------------------------------------------------------------------

_bound: dict[str, Any] = {}  # in a worker: its slot and device


def _bind_worker(slots: Any, threads: int, device_type: str, events: Any = None) -> None:
    """A worker's initializer: take the next free device from the queue ``slots`` and keep to it;
    its runs' progress events go to the queue ``events``."""
    import torch

    from subnetbench.cli import show_warnings
    from subnetbench.progress import bind_worker_events

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


def _execute_unit(unit: list, results_dir: str, options: dict[str, Any], mode: str) -> UnitDone:
    from subnetbench.benchmark.runner import execute_runs
    from subnetbench.progress import worker_sink

    results = execute_runs(unit, results_dir, **{**options, "device": _bound["device"],
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


def pooled(units: Sequence[list], results_dir: str, options: dict[str, Any], slots: Sequence[int],
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
        pending = {pool.submit(_execute_unit, unit, results_dir, options, mode): index
                   for index, unit in enumerate(units)}
        for index, future in as_finished(pending, events, display or (lambda event: None)):
            yield units[index], _outcome(future)


def failed_results(unit: list, error: Exception) -> list[dict[str, Any]]:
    """What ``run`` shows for the runs of a unit whose worker raised ``error``: each ``failed``
    with the error (its result file says so too when the error came in training), and under
    ``raised`` the error itself, from which the command takes its exit code."""
    from subnetbench.benchmark.runner import run_identity

    text = f"{type(error).__name__}: {' '.join(str(error).split())}"
    return [{**run_identity(config, "failed"), "error": text, "raised": error} for config in unit]


def execute_on_devices(units: Sequence[list], results_dir: str, options: dict[str, Any],
                       slots: Sequence[int], threads: int, mode: str, device_type: str = "cuda",
                       display: ProgressSink | None = None) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(config, result) of every run of ``units``, trained on the devices ``slots`` (CPU
    processes with ``device_type="cpu"``), unit by unit as each finishes or fails."""
    for unit, done in pooled(units, results_dir, options, slots, threads, mode, device_type,
                             display):
        results = failed_results(unit, done) if isinstance(done, Exception) else done.results
        yield from zip(unit, results)
