"""The engine's side of result files (docs/results-format.md, defined in subnetbench/records.py):
writing and reading them, checking their folders, and the run's provenance.

Every file the engine writes and later trusts is checked when it is read back: result files by
their embedded SHA-256 (``subnetbench.records``), checkpoints and saved subnetworks by their digest
files (``subnetbench.integrity``); docs/faults.md says what happens to one that fails.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import io
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from subnetbench.errors import IntegrityError, NewerFormatError, file_fault
from subnetbench.files import atomic_write_bytes, check_writable_directory
from subnetbench.integrity import read_verified, write_with_digest
from subnetbench.layout import ResultsLayout
from subnetbench.record_reading import InvalidRecord, NewerFormat, read_result_file
from subnetbench.records import Provenance, RunRecord

REPO_ROOT = Path(__file__).resolve().parent.parent


def write_record(path: Path, record: RunRecord, keep_completed: bool = False) -> bool:
    """Write a result file; False when ``keep_completed`` kept the completed result found there.

    ``keep_completed`` is for the ``running`` and ``failed`` records: the file is read again just
    before it is replaced, and a completed result there is kept. Under the run's lock nobody else
    writes it, but where locks are local to one node a process on another node may have completed
    the run since this one started it."""
    keep = (lambda: _holds_completed(path)) if keep_completed else None
    return atomic_write_bytes(path, record.dumps().encode(), keep=keep) is not None


def _holds_completed(path: Path) -> bool:
    record = read_result(path)
    return record is not None and record.status == "completed"


def atomic_torch_save(path: Path, payload: Any) -> None:
    """torch.save through the same atomic write (serialised in memory: checkpoints are small), with
    its digest file written first (``subnetbench.integrity``). The file stays a plain torch file."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_with_digest(path, buffer.getvalue())


def load_verified(path: Path, map_location: Any = "cpu") -> Any:
    """A ``.pt`` file the suite wrote, after its SHA-256 check, with ``weights_only=True``.
    IntegrityError when the check fails or the bytes cannot be decoded; FileFault when the file
    cannot be read."""
    data = read_verified(path)
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for bytes it cannot decode
        raise IntegrityError(f"{path} passes its SHA-256 check but cannot be decoded by "
                             f"torch.load ({type(error).__name__}: {str(error)[:200]})") from None


def prepare_results_dir(results_dir: Path, subnetworks: bool) -> None:
    """Check, before a run starts, that its files can be written: RESULTS and the folders a run
    writes into are directories this user can write into. FileFault naming the path otherwise."""
    check_writable_directory(results_dir, "results directory")
    for folder in ResultsLayout(results_dir).run_folders(subnetworks):
        check_writable_directory(folder, f"{folder.name}/ folder of the results")


def read_result(path: Path) -> RunRecord | None:
    """The record at ``path``, or None if it is missing, unreadable or not a usable result file."""
    try:
        record, _ = inspect_result(path)
    except (OSError, NewerFormatError):
        return None
    return record


def inspect_result(path: Path) -> tuple[RunRecord | None, str | None]:
    """What the engine finds at a run's result file: ``(record, None)`` for a usable one,
    ``(None, None)`` for none, ``(None, reason)`` for one that cannot be used (not JSON, damaged,
    failing its digest). A file of a newer format version raises NewerFormatError; a path that
    cannot be read (a directory, no permission) raises FileFault."""
    path = Path(path)
    try:
        record, _ = read_result_file(path)
    except FileNotFoundError:
        return None, None
    except NewerFormat as error:
        raise NewerFormatError(
            f"the result file {path} cannot be used: {error}. It was left as it is (never "
            "overwritten); run this with the newer subnetbench (pip install -U subnetbench), or "
            "choose another --results directory") from None
    except InvalidRecord as error:  # damaged, not strict JSON, a FIFO...: moved aside by the caller
        return None, str(error)
    except OSError as error:
        raise file_fault(error, path, "read the result file") from error
    return record, None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def cpu_model() -> str | None:
    """The processor's model name (Linux), which decides the float arithmetic of a CPU run."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


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
                   else cpu_model() or platform.processor() or "cpu")
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
