"""Result files (docs/results-format.md): atomic JSON writes, reads, and the run's provenance."""
from __future__ import annotations

import datetime
import importlib.metadata
import io
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

# One implementation of the atomic write (temporary file, fsync, rename) for the engine and the
# report; it lives in reports/, which imports no torch.
from subnetbench.reports.output import atomic_write_bytes

FORMAT = "subnetbench.result"
FORMAT_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parent.parent


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=1, sort_keys=False) + "\n").encode())


def atomic_torch_save(path: Path, payload: Any) -> None:
    """torch.save through the same atomic write (serialised in memory: checkpoints are small)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def run_path(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / "runs" / f"{run_id}.json"


def checkpoint_path(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / "checkpoints" / f"{run_id}.pt"


def read_result(path: Path) -> dict[str, Any] | None:
    """The result at ``path``, or None if it is missing, unreadable or of another format."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(payload, dict) or payload.get("format") != FORMAT
            or payload.get("format_version") != FORMAT_VERSION):
        return None
    return payload


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def provenance(device: torch.device) -> dict[str, Any]:
    versions = {}
    for package in ("torch", "torchvision", "numpy", "scikit-learn"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    try:
        own = importlib.metadata.version("subnetbench")
    except importlib.metadata.PackageNotFoundError:
        own = None
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else platform.processor() or "cpu")
    return {
        "subnetbench_version": own,
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        "device_name": device_name,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
