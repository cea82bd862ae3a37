"""Several GPUs of one machine: which process trains on which device.

``subnetbench run ... --devices 0,1,2,3`` (or ``all``) runs that many runs at once, like ``--jobs`` on
a CPU: a pool of worker processes (spawned, never forked), one per listed device, each bound to its
device when it starts (``torch.cuda.set_device``; its runs name it, ``cuda:N``). A worker takes the
next run (or seed batch) when it is done with one, so long and short runs share the devices. Naming
an index twice runs two runs on that device at once. Indices are torch's, that is positions in
``CUDA_VISIBLE_DEVICES`` when it is set.

The benchmark suite's pytest-xdist workers are bound the same way (benchmark/suite/conftest.py):
worker ``gwN`` to device N modulo the number of visible devices.

The assignment is pure functions, tested on a machine without GPU; the pool itself is
:mod:`subnetbench.launch.pool`. Nothing here imports torch.
"""
from __future__ import annotations

import os

from subnetbench.errors import OptionError

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
