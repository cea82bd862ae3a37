"""SHA-256 checks of the files the suite writes and later trusts, and moving bad files aside.

Checkpoints and saved subnetworks get a digest file beside them, ``<name>.sha256``, written before
the data file; a crash between the two writes leaves the previous file, which is accepted and its
digest file repaired (docs/results-format.md#integrity gives the format and the rule). Result files
carry their digest inside (``subnetbench.records``). :func:`quarantine` carries out the quarantine
rule of docs/faults.md. Nothing here imports torch.
"""
from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path

from subnetbench.errors import FileFault, IntegrityError, NotARegularFile, file_fault
from subnetbench.files import (
    TooLarge,
    atomic_write_bytes,
    atomic_write_text,
    read_regular_file,
    strict_json,
    strict_loads,
)

DIGEST_FORMAT = "subnetbench.digest"
DIGEST_SUFFIX = ".sha256"
QUARANTINE_MARK = ".corrupt-"
MAX_DIGEST_BYTES = 64 * 1024  # a digest file is about 250 bytes


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_path(path: str | Path) -> Path:
    """The digest file of ``path``: ``<name>.sha256`` beside it."""
    path = Path(path)
    return path.with_name(path.name + DIGEST_SUFFIX)


def _write_digest(path: Path, sha256: str, previous: str | None) -> None:
    record = {"format": DIGEST_FORMAT, "format_version": 1, "file": path.name, "sha256": sha256,
              "previous_sha256": previous}
    atomic_write_text(digest_path(path), strict_json(record, indent=1) + "\n")


def _read_digest(path: Path) -> tuple[str, str | None]:
    """(sha256, previous_sha256) of ``path``'s digest file; IntegrityError when it is missing or
    malformed, FileFault when it cannot be read."""
    sidecar = digest_path(path)
    try:
        text = read_regular_file(sidecar, MAX_DIGEST_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise IntegrityError(f"{path} has no digest file ({sidecar.name}), so its integrity cannot "
                             "be checked (it was written by a subnetbench without digests, or the "
                             "digest file was removed)") from None
    except UnicodeDecodeError:
        raise IntegrityError(f"the digest file {sidecar} of {path} is not text") from None
    except NotARegularFile as error:
        raise IntegrityError(f"the digest file {sidecar} of {path} is {error.kind}, not a regular "
                             "file") from None
    except TooLarge as error:
        raise IntegrityError(f"the digest file {sidecar} of {path} is not one: {error}") from None
    except OSError as error:
        raise file_fault(error, sidecar, "read the digest file") from error
    try:
        record = strict_loads(text)
        if not isinstance(record, dict) or record.get("format") != DIGEST_FORMAT:
            raise ValueError(f"format is not {DIGEST_FORMAT!r}")
        sha256, previous = record["sha256"], record.get("previous_sha256")
        if not _is_hex_digest(sha256) or not (previous is None or _is_hex_digest(previous)):
            raise ValueError("sha256 is not a hex SHA-256 digest")
    except (ValueError, KeyError) as error:
        raise IntegrityError(f"the digest file {sidecar} of {path} is malformed ({error})") from None
    return sha256, previous


def _is_hex_digest(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def write_with_digest(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, its digest file first (see the module's docstring)."""
    path = Path(path)
    previous = None
    if path.exists():
        try:
            previous = _read_digest(path)[0]
        except IntegrityError:
            previous = None  # the file on disk was never verified: it must not be accepted later
    _write_digest(path, sha256_hex(data), previous)
    atomic_write_bytes(path, data)
    return path


def check_verified(path: str | Path) -> tuple[bytes, bool]:
    """Read-only :func:`read_verified`: the bytes of ``path`` once they match its digest file, and
    whether the digest file is to be repaired (the bytes are the previous file's: see the module).
    Changes no file, so that it can be asked without holding the run's lock."""
    path = Path(path)
    try:
        data = read_regular_file(path)
    except NotARegularFile as error:  # never opened: a FIFO would block; unusable like bad bytes
        raise IntegrityError(f"{path} is {error.kind}, not a regular file the suite wrote") from None
    except OSError as error:
        raise file_fault(error, path, "read") from error
    expected, previous = _read_digest(path)
    actual = sha256_hex(data)
    if actual == expected:
        return data, False
    if actual == previous:
        return data, True
    raise IntegrityError(f"{path} fails its SHA-256 check: its {len(data)} bytes hash to "
                         f"{actual[:12]}..., its digest file {digest_path(path).name} says "
                         f"{expected[:12]}... (the file was truncated, damaged or replaced after "
                         "it was written)")


def read_verified(path: str | Path) -> bytes:
    """The bytes of ``path`` once they match its digest file. IntegrityError when they do not (or
    there is no digest file), FileFault when the file cannot be read."""
    data, stale = check_verified(path)
    if stale:
        # The last write stopped between the digest file and the data file: this is the file before
        # it, intact. Name it as the current one, so that the next write keeps it as previous.
        _write_digest(Path(path), sha256_hex(data), None)
    return data


def remove_with_digest(path: str | Path) -> None:
    """Delete a file the suite no longer needs (a finished run's checkpoint) and its digest file."""
    path = Path(path)
    for target in (path, digest_path(path)):
        try:
            target.unlink(missing_ok=True)
        except OSError as error:
            raise file_fault(error, target, "remove") from error


def quarantine(path: str | Path) -> Path | None:
    """Move a bad file (and its digest file) aside to ``<name>.corrupt-<UTC timestamp>`` in the same
    directory, never overwriting anything; returns the new path, or None when the file is no longer
    there (another process moved it aside first). Nothing is deleted."""
    path = Path(path)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}{QUARANTINE_MARK}{stamp}")
    counter = 1
    while target.exists() or digest_path(target).exists():
        target = path.with_name(f"{path.name}{QUARANTINE_MARK}{stamp}-{counter}")
        counter += 1
    for source, destination in ((path, target), (digest_path(path), digest_path(target))):
        try:
            os.rename(source, destination)
        except FileNotFoundError:
            if source == path:  # gone: what was to be moved aside is not there any more
                return None
        except OSError as error:
            fault = file_fault(error, source, "move the bad file aside")
            raise FileFault(f"{fault}; move it away by hand and run the command again") from error
    return target


def moved_text(moved: Path | None) -> str:
    """Where :func:`quarantine` put a file, for the warning that says so."""
    return f"It was moved to {moved}" if moved is not None else \
        "Another process moved it aside meanwhile"
