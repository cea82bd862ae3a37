"""One lock per run in the results directory, so that no run is trained twice, whatever launches it
(two commands, two pytest-xdist workers, two SLURM array tasks, a requeued job beside its old one).

A run's lock file (:class:`~subnetbench.layout.ResultsLayout`) is held with ``flock(LOCK_EX)`` on
an open descriptor. The kernel releases it when the holder's process ends in any way (exit, crash,
SIGKILL, a job killed at its time limit), so a dead holder never leaves a run locked: the next
process that reaches the run takes the lock and resumes the run from its checkpoint. Lock files are
never deleted (deleting one races with a process that has it open: two holders of two inodes); each
holds the JSON of its last holder (pid, host, since when, SLURM job, xdist worker), which
``subnetbench status`` shows.

Whether a lock is held is asked by taking a shared lock without blocking and dropping it at once
(:func:`holder`). A runner that finds a run locked asks again a few times over half a second (so that
such a probe, which lasts microseconds, is never mistaken for a holder) and then either skips the run
(``wait=False``: the command reports it as running elsewhere) or blocks until the holder is done
(``wait=True``: the benchmark suite, whose per-configuration test needs the run's result).

File systems: on a local disk the lock is the kernel's. On NFS, Linux clients (since 2.6.12) emulate
flock with NFS byte-range locks that every client sees (NFSv4, or NFSv3 with lockd), unless the file
system is mounted with ``nolock`` or ``local_lock=flock``/``all`` (then locks are local to one
node). Lustre honours flock across nodes only when mounted with ``-o flock`` (``localflock``: within
one node; neither: flock fails and the run stops with an error that says so). BeeGFS shares flock
locks between nodes only with ``tuneUseGlobalFileLocks``. Where locks are node-local, runs launched on
different nodes can train the same run twice (each writes a completed result, the later one stays).
A ``running`` or ``failed`` record is written only after the result file is read again, just before
it is replaced, and never over a completed one; only a completed result written on the other node
in that very instant could slip between the read and the replace.
Nothing here imports torch.
"""
from __future__ import annotations

import datetime
import errno
import json
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any

from subnetbench.errors import FileFault, file_fault
from subnetbench.files import ensure_directory
from subnetbench.layout import LOCK_SUFFIX, ResultsLayout

try:
    import fcntl
except ImportError:  # not POSIX (Windows): no locks; one process per results directory there
    fcntl = None  # type: ignore[assignment]

PROBE_ATTEMPTS = 5  # a runner's tries before it treats a run as held elsewhere
PROBE_PAUSE_S = 0.1
HOLDER_BYTES = 4096
_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}

# Locks this process holds, by path: flock on NFS is emulated with per-process locks, which a
# second descriptor of the same process would neither see nor be refused; so this process never
# opens a lock file it holds again.
_held: dict[str, RunLock] = {}


def holder_info(run_id: str) -> dict[str, Any]:
    """Who holds a lock, as ``subnetbench status`` shows it."""
    info: dict[str, Any] = {
        "run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
        "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array_job}_{task}" if array_job and task else os.environ.get("SLURM_JOB_ID")
    if job:
        info["slurm_job"] = job
    if os.environ.get("PYTEST_XDIST_WORKER"):
        info["xdist_worker"] = os.environ["PYTEST_XDIST_WORKER"]
    return info


class RunLock:
    """A held lock of one run; :meth:`release` (or leaving the ``with`` block) gives it back."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd
        self.info: dict[str, Any] = {}

    def release(self) -> None:
        _held.pop(str(self.path), None)
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _unsupported(path: Path, error: OSError) -> FileFault:
    return FileFault(
        f"cannot lock {path}: {error.strerror or error} (errno {error.errno}); the file system of the "
        "results directory does not support file locks (NFS mounted with nolock, Lustre without the "
        "flock mount option), and without them two processes could train one run; choose a results "
        "directory on a local disk, NFSv4 or Lustre mounted with -o flock")


def _flock(fd: int, operation: int, path: Path) -> bool:
    """``flock(fd, operation)``: True when it got the lock, False when another process holds it
    (only with LOCK_NB). FileFault when the file system has no locks."""
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        if error.errno in _UNSUPPORTED:
            raise _unsupported(path, error) from error
        raise file_fault(error, path, "lock") from error
    return True


def _take(fd: int, path: Path, wait: bool) -> bool:
    """The exclusive lock on ``fd``: blocking with ``wait``, else a few tries (see the module)."""
    if wait:
        return _flock(fd, fcntl.LOCK_EX, path)
    for attempt in range(PROBE_ATTEMPTS):
        if _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, path):
            return True
        if attempt + 1 < PROBE_ATTEMPTS:
            time.sleep(PROBE_PAUSE_S)
    return False


def acquire(results_dir: str | Path, run_id: str, wait: bool = False) -> RunLock | None:
    """The lock of run ``run_id``, or None when another process holds it (``wait=False``). With
    ``wait=True`` this blocks until the holder is done. FileFault when the lock file cannot be
    created or the file system has no locks."""
    path = ResultsLayout(results_dir).lock(run_id)
    if str(path) in _held:
        if wait:
            raise RuntimeError(f"this process already holds the lock of {run_id} and would wait for "
                               "itself")
        return None
    if fcntl is None:
        return RunLock(path, None)
    ensure_directory(path.parent, f"{path.parent.name}/ folder of the results")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise file_fault(error, path, "create the lock file") from error
    try:
        if not _take(fd, path, wait):
            os.close(fd)
            return None
        lock = RunLock(path, fd)
        lock.info = holder_info(run_id)
        _write_info(fd, lock.info)
    except BaseException:
        try:
            os.close(fd)
        except OSError:
            pass
        raise
    _held[str(path)] = lock
    return lock


def _write_info(fd: int, info: dict[str, Any]) -> None:
    """The holder's JSON, in place (the locked inode must stay the same file)."""
    data = json.dumps(info, sort_keys=True).encode()[:HOLDER_BYTES]
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except OSError:
        pass  # the holder's description is for status only; the lock is what counts


def holder(results_dir: str | Path, run_id: str) -> dict[str, Any] | None:
    """The holder of run ``run_id``'s lock (its recorded JSON; ``{}`` when unreadable), or None when
    nobody holds it."""
    path = ResultsLayout(results_dir).lock(run_id)
    own = _held.get(str(path))
    if own is not None:
        return dict(own.info)
    if fcntl is None:
        return None
    try:
        # A FIFO, socket or device where a lock file goes is nobody's lock (acquire cannot take
        # one there); opening a FIFO for reading would hang status, a socket cannot be opened. The
        # open does not block either, should one appear between the two calls.
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise file_fault(error, path, "read the lock file") from error
    try:
        if _flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, path):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        return _read_info(fd)
    finally:
        os.close(fd)


def _read_info(fd: int) -> dict[str, Any]:
    try:
        info = json.loads(os.pread(fd, HOLDER_BYTES, 0).decode())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def locked_runs(results_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Every run whose lock is held now, with its holder."""
    folder = ResultsLayout(results_dir).locks
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.glob(f"*{LOCK_SUFFIX}")):
        run_id = path.name[:-len(LOCK_SUFFIX)]
        found = holder(results_dir, run_id)
        if found is not None:
            out[run_id] = found
    return out


def holder_text(holder: dict[str, Any]) -> str:
    """A lock's holder in words, as ``run`` and ``status`` print it."""
    if not holder:
        return "holder not recorded"
    parts = [f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"]
    if holder.get("slurm_job"):
        parts.append(f"SLURM job {holder['slurm_job']}")
    if holder.get("xdist_worker"):
        parts.append(f"xdist worker {holder['xdist_worker']}")
    return ", ".join(parts)
