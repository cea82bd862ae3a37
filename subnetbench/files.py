"""Writing files so that nothing computed is lost or half-written: one atomic write for the engine
(result files, checkpoints, saved subnetworks) and the report, the checks of a directory before
work starts, and strict JSON. Nothing here imports torch.

Every ``OSError`` of a write becomes a :class:`~subnetbench.errors.FileFault` whose message names the
path and what to do (a path that is a file, no permission, a full disk).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from subnetbench.errors import FileFault, file_fault


def ensure_directory(path: str | Path, what: str = "directory") -> Path:
    """``path`` as an existing directory (created with its parents if needed), or a FileFault that
    names it (or the file in its way)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise file_fault(error, path, f"create the {what}") from error
    if not path.is_dir():  # mkdir(exist_ok=True) accepts a symlink to a file on some systems
        raise FileFault(f"cannot use {path} as the {what}: it is a file, not a directory; move it "
                        "away or choose another directory")
    return path


def check_writable_directory(path: str | Path, what: str = "directory") -> Path:
    """Create ``path`` if needed and prove that a file can be written in it (a probe file is
    created and removed), before any work whose output would go there starts."""
    path = ensure_directory(path, what)
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".subnetbench-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise file_fault(error, path, f"write into the {what}") from error
    return path


def check_writable_file(path: str | Path, what: str = "output file") -> Path:
    """Check before the work that ``path`` can be written: its directory is writable and the path
    itself is not a directory."""
    path = Path(path)
    if path.is_dir():
        raise FileFault(f"cannot write the {what} {path}: it is a directory; give a file name")
    check_writable_directory(path.parent, f"directory of the {what}")
    return path


def atomic_write_bytes(path: str | Path, data: bytes,
                       keep: Callable[[], bool] | None = None) -> Path | None:
    """Write to a temporary file in the same directory, flush it to disk, then ``os.replace``: a
    reader sees the old file or the new one, never a part of one. ``keep`` is asked just before
    the replace: when it returns True, the file on disk is kept (the temporary one removed) and
    None is returned."""
    path = Path(path)
    ensure_directory(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise file_fault(error, path, "write") from error
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        if keep is not None and keep():
            os.unlink(tmp)
            return None
        os.replace(tmp, path)
    except BaseException as error:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(error, OSError) and not isinstance(error, FileFault):
            raise file_fault(error, path, "write") from error
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def strict_json(value: Any, **options: Any) -> str:
    """JSON text that every parser accepts: NaN and infinity are refused (``ValueError``), never
    written as the non-standard tokens ``NaN`` / ``Infinity``."""
    return json.dumps(value, allow_nan=False, **options)


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON null), for measurements where a
    figure can be undefined (a ratio over a zero time) and must not block the rest."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value
