"""The engine's side of result files (docs/results-format.md, defined in subnetbench/records.py):
where a run's files live, writing and reading them, and the run's provenance."""
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

from subnetbench.files import atomic_write_bytes, check_writable_directory
from subnetbench.records import InvalidRecord, Provenance, RunRecord

REPO_ROOT = Path(__file__).resolve().parent.parent


def write_record(path: Path, record: RunRecord) -> None:
    atomic_write_bytes(path, record.dumps().encode())


def atomic_torch_save(path: Path, payload: Any) -> None:
    """torch.save through the same atomic write (serialised in memory: checkpoints are small)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def prepare_results_dir(results_dir: Path, subnetworks: bool) -> None:
    """Check, before a run starts, that its files can be written: RESULTS, runs/, checkpoints/ (and
    subnetworks/) are directories this user can write into. FileFault naming the path otherwise."""
    check_writable_directory(results_dir, "results directory")
    folders = ["runs", "checkpoints"] + (["subnetworks"] if subnetworks else [])
    for folder in folders:
        check_writable_directory(Path(results_dir) / folder, f"{folder}/ folder of the results")


def run_path(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / "runs" / f"{run_id}.json"


def checkpoint_path(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / "checkpoints" / f"{run_id}.pt"


def read_result(path: Path) -> RunRecord | None:
    """The record at ``path``, or None if it is missing, unreadable or not a usable result file."""
    try:
        record, _ = RunRecord.from_json(json.loads(Path(path).read_text()))
    except (OSError, ValueError, InvalidRecord, RecursionError):
        return None
    record.source = str(path)
    return record


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def provenance(device: torch.device) -> Provenance:
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
    return Provenance(
        subnetbench_version=own,
        git_commit=commit,
        git_dirty=bool(status) if status is not None else None,
        device_name=device_name,
        python=platform.python_version(),
        platform=platform.platform(),
        versions=versions,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
