"""Writing files so that nothing computed is lost or half-written: one atomic write for the engine
(result files, checkpoints, saved subnetworks) and the report, the checks of a directory before
work starts, and strict JSON. Nothing here imports torch.

Every ``OSError`` of a write becomes a :class:`~subnetbench.errors.FileFault` whose message names the
path and what to do (a path that is a file, no permission, a full disk).
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import math
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from subnetbench.errors import FileFault, NotARegularFile, file_fault


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
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_writer_tag()}.",
                                   suffix=".tmp")
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


# -- what a killed writer leaves ------------------------------------------------------------------
# A temporary file's name says who writes it (``.<name>.w<host hash>-<pid>.<random>.tmp``), so that
# the next command removes those of a dead process of this host at once. One of another host, or
# without the tag, is removed only when nobody has touched it for STALE_AFTER_S: an atomic write
# takes seconds, and a live writer of a shared results folder must never lose its file.
STALE_AFTER_S = 24 * 3600
_TAGGED = re.compile(r"\..+\.w([0-9a-f]{8})-(\d+)\.[^.]+\.(?:tmp|staging)")


def _host_hash() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _writer_tag() -> str:
    return f"w{_host_hash()}-{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_stale_temporary(path: Path, now: float | None = None) -> bool:
    """Whether ``path``, a temporary file of an atomic write, was left by a writer that is gone."""
    tagged = _TAGGED.fullmatch(path.name)
    if tagged and tagged.group(1) == _host_hash() and int(tagged.group(2)) != os.getpid():
        if not _process_alive(int(tagged.group(2))):
            return True
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return age > STALE_AFTER_S


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files (``.*.tmp``) that killed writers left in ``folder``; returns them.
    A file that vanishes meanwhile (its writer finished) is no fault."""
    folder = Path(folder)
    removed = []
    for path in sorted(folder.glob(".*.tmp")) if folder.is_dir() else []:
        if path.is_file() and not path.is_symlink() and is_stale_temporary(path):
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as error:
                raise file_fault(error, path, "remove the stale temporary file") from error
            removed.append(path)
    return removed


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


# -- reading ----------------------------------------------------------------------------------------

def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return kind
    return "not a regular file"


class TooLarge(ValueError):
    """A file larger than what it can be (a result file of 64 MiB is not one)."""


def read_regular_file(path: str | Path, max_bytes: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a regular file (a symbolic link to one is fine).

    A FIFO, socket or device is never read (:class:`~subnetbench.errors.NotARegularFile`): opening
    a FIFO for reading blocks until a writer comes, which would hang ``status`` or ``run``. The
    path is looked at before it is opened, and opened without blocking and looked at again, so a
    FIFO put there in between cannot block either. A directory raises ``IsADirectoryError`` (as
    reading it always did), a file over ``max_bytes`` :class:`TooLarge` (unread), a missing one
    ``FileNotFoundError``; other ``OSError`` as they come."""
    path = Path(path)
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        _refuse(path, mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            _refuse(path, info.st_mode)
        if max_bytes is not None and info.st_size > max_bytes:
            raise TooLarge(f"it is {info.st_size} bytes, more than the {max_bytes} such a file can be")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            if max_bytes is not None and sum(map(len, chunks)) > max_bytes:  # grew while read
                raise TooLarge(f"it is more than the {max_bytes} bytes such a file can be")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _refuse(path: Path, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    raise NotARegularFile(path, _kind(mode))


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"it holds the non-finite number {token}: strict JSON allows finite numbers "
                     "only")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf without passing through parse_constant
        raise ValueError(f"it holds the non-finite number {text[:40]} (beyond a float's range): "
                         "strict JSON allows finite numbers only")
    return value


def strict_loads(text: str | bytes) -> Any:
    """``json.loads`` of strict JSON only: the tokens ``NaN``, ``Infinity``, ``-Infinity`` and
    numbers that overflow to infinity are refused (``ValueError``), like anything else that is not
    JSON, and so is input nested too deeply for the parser (``RecursionError`` becomes a
    ``ValueError``). Every JSON file the suite trusts is read with it: a non-finite number read
    back would fail every later strict write of the same data."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("it is nested too deeply to be JSON the suite wrote") from None


# -- a folder written as a whole ------------------------------------------------------------------
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _replace_path(new: Path, old: Path) -> None:
    """Put ``new`` at ``old``'s place; ``new`` then holds what ``old`` held (or nothing)."""
    if not old.exists() and not old.is_symlink():
        os.rename(new, old)
    elif not _exchange(new, old):  # two renames: only a kill between them leaves ``old`` missing
        aside = new.with_name(new.name + ".old")
        os.rename(old, aside)
        os.rename(new, old)
        os.rename(aside, new)


def _remove_stale_stagings(parent: Path, name: str) -> None:
    for path in parent.glob(f".{glob_escape(name)}.*.staging"):
        if path.is_dir() and not path.is_symlink() and is_stale_temporary(path):
            shutil.rmtree(path, ignore_errors=True)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?[])", r"[\1]", name)


@contextlib.contextmanager
def folder_written_whole(folder: str | Path, owned: frozenset[str]) -> Iterator[Path]:
    """An empty staging folder beside ``folder`` to write into; when the block ends without error
    it takes ``folder``'s place in one step, so that a killed writer leaves the old folder or the
    new one, never a mix. Where ``folder`` holds entries not in ``owned`` (files of the user's), only
    the owned entries are replaced, each in one step, and the others are kept."""
    folder = Path(folder)
    parent = ensure_directory(folder.absolute().parent, "parent directory")
    _remove_stale_stagings(parent, folder.name)
    try:
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{folder.name}.{_writer_tag()}.",
                                        suffix=".staging"))
    except OSError as error:
        raise file_fault(error, parent, "write into the directory") from error
    try:
        yield staging
        os.chmod(staging, 0o755)
        present = set(os.listdir(folder)) if folder.is_dir() else set()
        if present <= owned:
            _replace_path(staging, folder)
        else:  # folders first, the entry files last (they name what the folders hold)
            for entry in sorted(os.listdir(staging), key=lambda n: (not (staging / n).is_dir(), n)):
                _replace_path(staging / entry, folder / entry)
    except OSError as error:
        if isinstance(error, FileFault):
            raise
        raise file_fault(error, folder, "write") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
