"""Seconds and peak memory of a block of work, by the best means of the device (the package
docstring says what each figure includes)."""
from __future__ import annotations

import gc
import os
import resource
import sys

import torch

from subnetbench.benchmark.timing import sync


class PeakMemory:
    """Peak memory a block adds, by the best means of the device:

    - ``cuda_max_memory_allocated``: torch.cuda.max_memory_allocated less the allocation before;
    - ``cpu_peak_rss_growth`` (Linux): the process's peak resident set is reset to the current one
      (``/proc/self/clear_refs``), then ``resource.getrusage(...).ru_maxrss`` less that;
    - ``cpu_ru_maxrss_growth`` (no reset possible): growth of the process's lifetime peak, a lower
      bound (0 when the process had already peaked higher).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.bytes = 0
        self.kind = ("cuda_max_memory_allocated" if device.type == "cuda" else
                     "cpu_peak_rss_growth" if _can_reset_peak_rss() else "cpu_ru_maxrss_growth")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        elif self.kind == "cpu_peak_rss_growth":
            gc.collect()
            _release_free_memory()
            _reset_peak_rss()
            self.base = _rss_bytes()
        else:
            self.base = _maxrss_bytes()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            sync(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self.bytes = max(0, _maxrss_bytes() - self.base)


def _maxrss_bytes() -> int:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib if sys.platform == "darwin" else kib * 1024  # Linux reports KiB, macOS bytes


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_free_memory() -> None:
    """Give the allocator's free pages back (glibc malloc_trim), so that a block's growth is not
    hidden by memory that earlier rows freed but the process kept."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets the peak resident set (VmHWM, ru_maxrss) to the current one


def _can_reset_peak_rss() -> bool:
    try:
        _reset_peak_rss()
        _rss_bytes()
    except OSError:
        return False
    return True
