"""Live progress of a long command: runs done of the total with elapsed time and ETA, and the epoch
of every run in training, also when runs train in worker processes (``--jobs``: their events come
through a queue).

On a terminal it is a ``rich`` display that refreshes itself; elsewhere (a log file, CI) it prints
a plain status line every ``every`` seconds (10, or $SUBNETBENCH_PROGRESS_SECONDS), so that no step
is silent for long. The lines of finished runs and the summary go to standard output as before; the
live status goes to standard error.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, TextIO, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# Seconds between two status lines when the output is not a terminal.
HEARTBEAT_S = float(os.environ.get("SUBNETBENCH_PROGRESS_SECONDS", "10"))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class RunProgress:
    """Receives progress events (benchmark.callbacks.ProgressSink) and :meth:`finished` calls;
    use it as a context manager around the runs."""

    def __init__(self, total: int, stream: TextIO | None = None, interactive: bool | None = None,
                 every: float | None = None, enabled: bool = True) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.every = HEARTBEAT_S if every is None else every
        self.running: dict[str, dict[str, Any]] = {}  # run_id -> label, epoch, epochs, val, stage
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.tasks: dict[str, TaskID] = {}
        self.display: Progress | None = None
        self.heartbeat: threading.Thread | None = None
        self.stopping = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> RunProgress:
        if not self.enabled:
            return self
        if self.interactive:
            self.display = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=Console(file=self.stream), transient=False)
            self.display.start()
            self.overall = self.display.add_task("runs", total=self.total, note="")
        else:
            self.heartbeat = threading.Thread(target=self._beat, daemon=True)
            self.heartbeat.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        if self.display is not None:
            self.display.stop()
        if self.heartbeat is not None:
            self.heartbeat.join(timeout=1.0)

    # -- events --------------------------------------------------------------------------------
    def __call__(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.lock:
            run_id, kind = event.get("run_id"), event.get("kind")
            state = self.running.setdefault(run_id, {"label": run_id, "epoch": 0, "epochs": None,
                                                     "val": None, "stage": "starting"})
            if kind == "start":
                state.update(label=event["label"], epoch=event.get("epoch", 0), epochs=event["epochs"],
                             stage="training")
            elif kind == "epoch":
                state.update(epoch=event["epoch"], epochs=event["epochs"], val=event["val_acc"],
                             stage="training")
            elif kind == "stage":
                state["stage"] = event["text"]
            elif kind in ("trained", "completed"):
                state["stage"] = kind
            self._show(run_id, state)

    def finished(self, run_id: str, line: str) -> None:
        """A run (or a stored one) is done: its line goes to standard output."""
        with self.lock:
            self.done += 1
            self.running.pop(run_id, None)
            if self.display is not None:
                task = self.tasks.pop(run_id, None)
                if task is not None:
                    self.display.remove_task(task)
                self.display.update(self.overall, completed=self.done)
                self.display.console.print(line, markup=False, highlight=False)
            else:
                print(line, flush=True)

    # -- rendering -----------------------------------------------------------------------------
    def _show(self, run_id: str, state: dict[str, Any]) -> None:
        if self.display is None:
            return
        note = (f"val {100 * state['val']:.1f}%" if state["val"] is not None else "") + (
            "" if state["stage"] == "training" else f" {state['stage']}")
        description = f"  {state['label']}"
        if run_id not in self.tasks:
            self.tasks[run_id] = self.display.add_task(description, total=state["epochs"], note=note)
        self.display.update(self.tasks[run_id], completed=state["epoch"], total=state["epochs"],
                            note=note.strip(), description=description)

    def status_line(self) -> str:
        """One line: runs done of the total, elapsed, ETA, and each running run's epoch."""
        elapsed = time.monotonic() - self.started
        eta = (f", ETA {_duration(elapsed / self.done * (self.total - self.done))}"
               if 0 < self.done < self.total else "")
        running = "; ".join(
            f"{s['label']} epoch {s['epoch']}/{s['epochs'] or '?'}"
            + (f" val {100 * s['val']:.1f}%" if s["val"] is not None else "")
            + ("" if s["stage"] == "training" else f" ({s['stage']})")
            for s in self.running.values())
        return (f"[{time.strftime('%H:%M:%S')}] {self.done}/{self.total} runs done, elapsed "
                f"{_duration(elapsed)}{eta}" + (f"; running: {running}" if running else ""))

    def _beat(self) -> None:
        while not self.stopping.wait(self.every):
            with self.lock:
                line = self.status_line()
            print(line, file=self.stream, flush=True)


# -- worker processes ---------------------------------------------------------------------------
# Runs in worker processes (--jobs, --devices) send their events through a queue that the parent
# drains into its display while it waits for the runs.

_worker_events: Any = None  # in a worker process: the queue its runs' progress events go to
Key = TypeVar("Key")


def bind_worker_events(events: Any) -> None:
    """In a worker's initializer: send this process's progress events to the queue ``events``
    (None: send none)."""
    global _worker_events
    _worker_events = events


def worker_sink() -> Callable[[dict[str, Any]], None] | None:
    """The progress sink of a run in this worker process (None when nobody listens)."""
    return _worker_events.put if _worker_events is not None else None


def as_finished(pending: dict[Future, Key], events: Any,
                display: Callable[[dict[str, Any]], None]) -> Iterator[tuple[Key, Future]]:
    """(key, future) of each future of ``pending`` as it finishes, while the workers' events of
    the queue ``events`` go to ``display``."""
    pending = dict(pending)
    while pending:
        done, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
        _drain(events, display)
        for future in done:
            yield pending.pop(future), future
    _drain(events, display)


def _drain(events: Any, display: Callable[[dict[str, Any]], None]) -> None:
    while events is not None:
        try:
            display(events.get_nowait())
        except queue.Empty:
            return
