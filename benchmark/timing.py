"""Seconds of a block of work on a device: CUDA events on a GPU (after which the device is
synchronised), ``time.perf_counter`` on a CPU. The speed study and the engine's rescaling-overhead
measurement time with it."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op off CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work: Callable[[], Any]) -> float:
    """Seconds of ``work()`` on the device: CUDA events on a GPU, perf_counter on a CPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        work()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    started = time.perf_counter()
    work()
    return time.perf_counter() - started
