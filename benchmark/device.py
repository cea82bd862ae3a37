"""Which device a run trains on, and the device settings that make it repeatable."""
from __future__ import annotations

import os

import torch

from subnetbench.errors import OptionError


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise OptionError(f"device {device!r} is not allowed; expected cpu, cuda, cuda:N or auto")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError(f"device {device!r} was asked for but CUDA is not available here")
    return torch.device(device)


def set_deterministic(device: torch.device, deterministic: bool) -> None:
    """CPU runs are deterministic as they are; on CUDA this trades speed for repeatability."""
    if device.type == "cuda":
        if deterministic:
            # cuBLAS is deterministic only with a fixed workspace, read when a process first uses
            # it (torch's reproducibility notes); a command that asks sets it before any run.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
