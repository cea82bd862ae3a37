"""The errors a user sees as one paragraph: faults of the machine or of files, not of options.

A bad option (of a method, a run, the command line) is an :class:`OptionError`, a ``ValueError``:
the one error type of validation, also importable as ``subnetbench.methods.OptionError``.
Everything else a user can act on is a :class:`SubnetbenchError`: a path that is a file, a directory
without write permission, a full disk, a corrupt or foreign file, a file of a newer format, missing
data. Its message is one paragraph that names the thing and says what to do; the command line
prints it as ``subnetbench: error: ...`` and exits with the error's ``exit_code`` (2, or 1 for a run
that failed by itself). Nothing here imports torch.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path


class OptionError(ValueError):
    """A bad option, of a method or of a run (recipe, protocol, seeds, command line): the one error
    type of validation; the message names the option, the value and what is allowed."""


class SubnetbenchError(Exception):
    """A fault the user can act on; the message is one paragraph naming the thing and what to do."""

    exit_code = 2


class FileFault(SubnetbenchError, OSError):
    """A file or directory that cannot be read or written (a path that is a file, no permission, a
    full disk). Also an ``OSError``, so code that catches those keeps working."""


class PathNotFound(FileFault, FileNotFoundError):
    """A path the command needs does not exist."""


class NotARegularFile(FileFault):
    """A path the suite would read that is a FIFO, a socket or a device, not a regular file. It is
    never read: a FIFO would block the command forever, a device stream without end. ``kind`` says
    what it is ("a FIFO (named pipe)")."""

    def __init__(self, path: str | Path, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a regular file")
        self.path, self.kind = Path(path), kind


class IntegrityError(SubnetbenchError):
    """A file the suite wrote that fails its SHA-256 check, or cannot be decoded, or belongs to
    another run: it is never used."""


class NewerFormatError(SubnetbenchError):
    """A file written by a newer subnetbench (a format version this one does not know): it is
    refused and left as it is, never overwritten."""


class RunFailed(SubnetbenchError):
    """A run that cannot give a meaningful result (its training loss became NaN or infinite); it is
    recorded as ``failed``."""

    exit_code = 1


_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space on it or choose a directory on another disk",
    errno.EDQUOT: "the disk quota is exhausted: free some space or choose another directory",
    errno.EACCES: "permission denied: make it writable (and readable) for this user or choose "
                  "another directory",
    errno.EPERM: "operation not permitted: make it writable for this user or choose another "
                 "directory",
    errno.EROFS: "the file system is read-only: choose a directory on a writable file system",
    errno.EISDIR: "it is a directory where a file is expected: move the directory away or choose "
                  "another path",
    errno.ENOENT: "it does not exist: check the path",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
}


def _file_in_the_way(path: Path) -> Path | None:
    """The first component of ``path`` (itself included) that exists and is not a directory."""
    for candidate in reversed([path, *path.parents]):
        if candidate.exists() and not candidate.is_dir():
            return candidate
        if not candidate.exists():
            return None
    return None


def _broken_link(path: Path) -> tuple[Path, str] | None:
    """The first component of ``path`` (itself included) that is a symbolic link leading nowhere,
    and what is wrong with it: mkdir answers such a path with "File exists", which helps nobody."""
    for candidate in reversed([path, *path.parents]):
        if not os.path.islink(candidate):
            continue
        try:
            os.stat(candidate)
        except OSError as error:
            if error.errno == errno.ELOOP:
                return candidate, ("a symbolic link that leads back to itself (a loop of links); "
                                   "remove the link or choose another path")
            return candidate, (f"a symbolic link to {os.readlink(candidate)}, which does not exist; "
                               "remove the link, create what it points to, or choose another path")
    return None


def describe_os_error(error: OSError, path: str | Path, action: str) -> str:
    """One paragraph for an ``OSError`` met while doing ``action`` (e.g. "write") on ``path``:
    what failed, why, and what to do."""
    path = Path(path)
    code = error.errno
    if code in (errno.EEXIST, errno.ENOENT, errno.ELOOP, errno.ENOTDIR) or code is None:
        broken = _broken_link(path)
        if broken is not None:
            link, what = broken
            return f"cannot {action} {path}: {link} is {what}"
    if code in (errno.ENOTDIR, errno.EEXIST) or (code is None and _file_in_the_way(path)):
        blocker = _file_in_the_way(path)
        if blocker is not None:
            return (f"cannot {action} {path}: {blocker} is a file, not a directory; move it away or "
                    "choose another directory")
    reason = error.strerror or str(error) or type(error).__name__
    advice = _ADVICE.get(code, "check the path and its permissions, or choose another path")
    return f"cannot {action} {path}: {reason} (errno {code}); {advice}"


class StdoutFault(FileFault):
    """Standard output cannot be written (redirected to a full disk or a device that refuses)."""


def stdout_fault(error: OSError) -> StdoutFault:
    """The :class:`StdoutFault` for a failed write of standard output, to raise ``from`` it: the
    message names standard output (an OSError of a write to it has no file name of its own)."""
    reason = error.strerror or str(error) or type(error).__name__
    advice = ("free some space where it is redirected to" if error.errno in (errno.ENOSPC, errno.EDQUOT)
              else "check the file or device it is redirected to")
    fault = StdoutFault(f"cannot write the output to standard output: {reason} (errno {error.errno}); "
                        f"{advice}, or redirect it (> FILE) somewhere else")
    fault.errno = error.errno
    return fault


def file_fault(error: OSError, path: str | Path, action: str) -> FileFault:
    """The :class:`FileFault` (or :class:`PathNotFound`) for ``error``, to raise ``from`` it."""
    cls = PathNotFound if isinstance(error, FileNotFoundError) else FileFault
    fault = cls(describe_os_error(error, path, action))
    fault.errno = error.errno  # callers (and tests) can still tell a full disk from a permission
    return fault
