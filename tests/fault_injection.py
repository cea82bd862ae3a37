"""Generated faults for the fault-injection tests (tests/test_faults_*.py): damaged bytes, failing
system calls, and the checks every test makes of what a user sees.

A fault is a function of the original bytes (and a position in [0, 1) where it applies), so that a
hypothesis strategy or a parametrised sweep can draw kinds and positions.
"""
from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from subnetbench import files

Fault = Callable[[bytes, float], bytes]


def empty(data: bytes, position: float) -> bytes:
    return b""


def truncated(data: bytes, position: float) -> bytes:
    """The first part of the file, as a copy or a write interrupted at ``position`` leaves it."""
    return data[:min(int(position * len(data)), len(data) - 1)]


def bit_flipped(data: bytes, position: float) -> bytes:
    """One bit changed at ``position``: a bad sector, a bad cable, cosmic rays."""
    index = min(int(position * len(data)), len(data) - 1)
    bit = int(position * 8 * len(data)) % 8
    return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1:]


def random_bytes(data: bytes, position: float) -> bytes:
    """Garbage of the same length, seeded by ``position``."""
    return random.Random(position).randbytes(max(len(data), 1))


def zeroed_block(data: bytes, position: float) -> bytes:
    """512 bytes from ``position`` overwritten with zeros (a sector lost in place)."""
    start = min(int(position * len(data)), max(len(data) - 1, 0))
    end = min(start + 512, len(data))
    return data[:start] + bytes(end - start) + data[end:]


def appended(data: bytes, position: float) -> bytes:
    """Bytes left after the end (a file written over a longer one without truncation)."""
    return data + b"\x00garbage" * (1 + int(position * 8))


FAULTS: dict[str, Fault] = {"empty": empty, "truncated": truncated, "bit-flip": bit_flipped,
                            "random": random_bytes, "zeroed-block": zeroed_block,
                            "appended": appended}


def damage(path: Path, fault: str, position: float = 0.5) -> bytes:
    """Apply ``fault`` to the file at ``path`` in place; returns the new bytes."""
    data = FAULTS[fault](path.read_bytes(), position)
    path.write_bytes(data)
    return data


# -- things that are not regular files ---------------------------------------------------------------

# A FIFO blocks whoever opens it for reading until a writer comes; a socket cannot be opened; a
# character device such as /dev/zero (here through a symbolic link) never ends.
NOT_REGULAR = ("fifo", "socket", "endless device")


def plant_not_regular(path: Path, kind: str) -> None:
    """Put a non-regular file of ``kind`` (:data:`NOT_REGULAR`) at ``path``, replacing a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":  # bound under a short name (sockets allow ~108 bytes), then moved
        folder = tempfile.mkdtemp(prefix="s", dir="/tmp")
        server = socket.socket(socket.AF_UNIX)
        try:
            server.bind(os.path.join(folder, "s"))
        finally:
            server.close()
        os.rename(os.path.join(folder, "s"), path)
        os.rmdir(folder)
    elif kind == "endless device":
        path.symlink_to("/dev/zero")
    else:
        raise ValueError(kind)


class Blocked(BaseException):
    """Raised by :func:`must_not_hang`; a BaseException, so that no ``except OSError`` or ``except
    Exception`` of the code under test (the command line's) can swallow it and block again."""


@contextlib.contextmanager
def must_not_hang(seconds: int = 120):
    """Fail (:class:`Blocked`) instead of hanging when the code inside blocks for ``seconds``: on
    a FIFO opened for reading, or reading /dev/zero to its end."""
    def alarm(signum, frame):
        raise Blocked(f"blocked for {seconds} s (a FIFO opened for reading, an endless read?)")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- failing system calls ---------------------------------------------------------------------------

def failing_writes(monkeypatch: pytest.MonkeyPatch, code: int,
                   where: Callable[[Path], bool] = lambda path: True) -> list[Path]:
    """Make the suite's writes into matching directories fail with ``errno`` ``code`` (ENOSPC: a
    full disk, EACCES: no permission, EROFS: a read-only file system) where the temporary file is
    created, as the system would; returns the list of paths refused. Works as root too, where
    chmod does not stop writes."""
    refused: list[Path] = []
    real = files.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and where(Path(dir)):
            refused.append(Path(dir))
            raise OSError(code, os.strerror(code), str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(files.tempfile, "mkstemp", mkstemp)
    return refused


def full_disk_after(monkeypatch: pytest.MonkeyPatch, writes: int,
                    where: Callable[[Path], bool] = lambda path: True) -> None:
    """Let ``writes`` atomic writes into matching directories succeed, then fail every later one
    with ENOSPC at ``fsync`` (the bytes went to the temporary file, the disk filled up). ``where``
    gets the directory written into. The file of a descriptor is found through /proc (Linux)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to tell which file a descriptor writes")
    real = files.os.fsync
    count = {"n": 0}

    def fsync(fd: int) -> None:
        if where(Path(os.readlink(f"/proc/self/fd/{fd}")).parent):
            count["n"] += 1
            if count["n"] > writes:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)


RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def interrupt_after_epochs(monkeypatch: pytest.MonkeyPatch, epochs: int) -> list[int]:
    """KeyboardInterrupt (as Ctrl-C, or SIGKILL for what is on disk) when training epoch
    ``epochs + 1`` starts, once the checkpoints of the first ``epochs`` are written; returns the
    list that counts the epochs started."""
    from subnetbench.benchmark import training

    real = training.train_epoch
    started: list[int] = []

    def train_epoch(trainers, *args, **kwargs):
        started.append(1)
        if len(started) > epochs:
            raise KeyboardInterrupt
        return real(trainers, *args, **kwargs)

    monkeypatch.setattr(training, "train_epoch", train_epoch)
    return started


# -- what a user sees --------------------------------------------------------------------------------

def assert_one_paragraph_error(stderr: str, *named: str, prefix: str = "subnetbench") -> str:
    """The error of a command: no traceback, one line ``<prefix>: error: ...`` (after any warning
    lines) naming each of ``named``; returns it."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith(f"{prefix}") and ": error: " in line]
    assert len(errors) == 1, stderr
    others = [line for line in stderr.splitlines()
              if line.strip() and line not in errors and not line.startswith("subnetbench: warning: ")]
    assert others == [], stderr
    for name in named:
        assert str(name) in errors[0], (name, errors[0])
    return errors[0]
