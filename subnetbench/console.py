"""What every command shares on the terminal: errors and warnings as one paragraph on stderr, the
exit code of an error, and a standard output whose failed writes name it. Imports no torch.

Exit codes: 0 success; 2 a bad option or a fault the user can fix (every
SubnetbenchError, OptionError and OSError); 1 a run that failed by itself or an unexpected error (a
bug); 130 an interrupt.
"""
from __future__ import annotations

import logging
import sys
from typing import Any

from subnetbench.errors import OptionError, SubnetbenchError, stdout_fault

DEBUG_VARIABLE = "SUBNETBENCH_DEBUG"


def one_paragraph(text: object) -> str:
    return " ".join(str(text).split())


def say(line: str) -> None:
    """A line on stderr, at once."""
    print(line, file=sys.stderr, flush=True)


def exit_code(error: BaseException) -> int:
    """The exit code for ``error``: its own ``exit_code``, 2 for the other faults a user can fix, 1
    for the unexpected."""
    if isinstance(error, (OptionError, SubnetbenchError, OSError)):
        return getattr(error, "exit_code", 2)
    return 1


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message comes (not the one at creation)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        return f"subnetbench: {record.levelname.lower()}: {one_paragraph(record.getMessage())}"


def show_warnings() -> None:
    """Print the library's warnings (logger ``subnetbench``: a bad file moved aside) on stderr."""
    logger = logging.getLogger("subnetbench")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.INFO)


class StandardOutput:
    """``sys.stdout`` while a command runs: a failed write (to a full disk, /dev/full) raises a
    StdoutFault naming standard output; a closed pipe (``| head``) stays a BrokenPipeError."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise stdout_fault(error) from error

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise stdout_fault(error) from error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
