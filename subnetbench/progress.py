"""Live progress of a long command: runs done of the total with elapsed time and ETA, and the epoch
of every run in training, also when runs train in worker processes (``--jobs``: their events come
through a queue).

On a terminal it is a ``rich`` display that refreshes itself; elsewhere (a log file, CI) it prints
a plain status line every ``every`` seconds (10, or $SUBNETBENCH_PROGRESS_SECONDS), so that no step
is silent for long. The lines of finished runs and the summary go to standard output as before; the
live status goes to standard error.

The time left (:func:`estimate_remaining`) is costed in epochs, not in runs: a grid's first runs
are often its cheapest (no rescaling, one training pass a batch), and the mean time of the runs
done so far said 3 minutes left where 12 remained. Each run's epoch budget is known before it
starts (:class:`PlannedRun`); the seconds an epoch takes are measured per configuration as its
runs train, and a configuration not yet timed is costed from its protocol and method, times its
training passes a batch.
"""
from __future__ import annotations

import io
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

# Seconds between two status lines when the output is not a terminal.
HEARTBEAT_S = float(os.environ.get("SUBNETBENCH_PROGRESS_SECONDS", "10"))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


# -- the time left ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedRun:
    """What is known of a run before it starts."""

    run_id: str
    label: str  # configuration_label with protocol and seed: 'digits-conv2 aslp SR seed 0'
    key: str  # its configuration: the seeds of one configuration cost about the same an epoch
    group: str  # its protocol and method: a configuration not yet timed is costed as its group
    epochs: int | None  # the most epochs it may train (the recipe's epochs times the method's rounds)
    passes: int = 1  # training passes a batch (MethodTraits.update_passes): the released code's SR makes two


@dataclass(frozen=True)
class RunWork:
    """One run as :func:`estimate_remaining` sees it."""

    key: str
    group: str
    budget: int | None  # the most epochs it may train (None: not known yet)
    passes: int = 1
    epoch: int = 0  # epochs done, those of an earlier, interrupted session included
    timed_epochs: int = 0  # the epochs of this session, watched as they trained
    timed_s: float = 0.0  # their wall-clock seconds
    finished: bool = False
    tail_s: float | None = None  # a finished run: seconds from its last epoch to its end (tests, extraction)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def estimate_remaining(runs: Sequence[RunWork], slots: int = 1, unseen: int = 0) -> float | None:
    """Wall-clock seconds until every run of ``runs`` (and ``unseen`` more, not described yet) is
    finished, ``slots`` runs training at a time; None until an epoch has been timed.

    - An epoch of a run costs what the epochs of its configuration (``key``) cost so far; a
      configuration not yet timed costs its ``passes`` times the per-pass cost of its ``group``
      (protocol and method), or of all the runs timed.
    - A run trains its ``budget`` times the share of the budget that the finished runs of its
      configuration (else of its group, else all of them) used before early stopping stopped them,
      never less than it has done; the whole budget while no run has finished. (The whole budget
      for every group not yet finished said twice the truth early in the digits grid:
      tests/test_progress.py replays that grid.) Then its ``tail_s`` (testing, extracting).
    - The runs left share ``slots``: their total over the slots in use, but never less than the
      longest of them alone.
    Runs finished without being watched (already done before the command) count for nothing.
    """
    timed = [r for r in runs if r.timed_epochs > 0 and r.timed_s > 0]
    if not timed:
        return None

    def per_epoch(rs: Sequence[RunWork], per_pass: bool = False) -> float | None:
        epochs = sum(r.timed_epochs * (r.passes if per_pass else 1) for r in rs)
        return sum(r.timed_s for r in rs) / epochs if epochs else None

    keys = {r.key for r in timed}
    by_key = {k: per_epoch([r for r in timed if r.key == k]) for k in keys}
    by_group = {g: per_epoch([r for r in timed if r.group == g], per_pass=True)
                for g in {r.group for r in timed}}
    overall = per_epoch(timed, per_pass=True)

    finished = [r for r in runs if r.finished and r.budget and r.epoch > 0 and r.timed_epochs > 0]

    def share(r: RunWork) -> float:
        for same in (lambda f: f.key == r.key, lambda f: f.group == r.group, lambda f: True):
            used = _mean([min(1.0, f.epoch / f.budget) for f in finished if same(f)])
            if used is not None:
                return used
        return 1.0

    tails = [r for r in runs if r.finished and r.tail_s is not None]

    def tail(r: RunWork) -> float:
        return (_mean([f.tail_s for f in tails if f.key == r.key]) or _mean([f.tail_s for f in tails])
                or 0.0)

    budgets = [r.budget for r in runs if r.budget]

    def left(r: RunWork, epoch: int = 0) -> float:
        seconds = by_key.get(r.key) or r.passes * (by_group.get(r.group) or overall)
        budget = r.budget or (max(budgets) if budgets else epoch)
        return max(0.0, max(budget * share(r), epoch) - epoch) * seconds + tail(r)

    remaining = [left(r, r.epoch) for r in runs if not r.finished]
    if unseen and timed:  # runs not described yet: each as the mean of the described ones, from scratch
        typical = _mean([left(r) for r in runs])
        remaining += [typical or 0.0] * unseen
    if not remaining:
        return 0.0
    return max(sum(remaining) / max(1, min(slots, len(remaining))), max(remaining))


class RunProgress:
    """Receives progress events (benchmark.callbacks.ProgressSink) and :meth:`finished` calls;
    use it as a context manager around the runs. ``plan`` describes the runs before they start
    (their labels, epoch budgets and configurations: what the time left is costed from), ``slots``
    is how many train at a time (--jobs, --devices, --seed-batch)."""

    def __init__(self, total: int, stream: TextIO | None = None, interactive: bool | None = None,
                 every: float | None = None, enabled: bool = True,
                 plan: Sequence[PlannedRun] | None = None, slots: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.every = HEARTBEAT_S if every is None else every
        self.slots = max(1, slots)
        self.clock = clock
        self.plan = {p.run_id: p for p in plan or ()}
        self.running: dict[str, dict[str, Any]] = {}  # run_id -> label, epoch, epochs, val, stage
        self.work: dict[str, dict[str, Any]] = {}  # run_id -> what estimate_remaining needs
        self.eta: tuple[float, float] | None = None  # (seconds left, when estimated)
        self.started = clock()
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
                TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
                console=Console(file=self.stream), transient=False)
            self.display.start()
            self.overall = self.display.add_task("runs", total=self.total, note="", eta="")
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
    def _work(self, run_id: str) -> dict[str, Any]:
        if run_id not in self.work:
            planned = self.plan.get(run_id)
            self.work[run_id] = {
                "key": planned.key if planned else run_id, "group": planned.group if planned else run_id,
                "budget": planned.epochs if planned else None, "passes": planned.passes if planned else 1,
                "epoch": 0, "first": None, "since": None, "last": None, "finished": False, "tail": None}
        return self.work[run_id]

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "message":  # a worker's standard error (QueuedLines)
            self.message(event["text"])
            return
        if not self.enabled:
            return
        with self.lock:
            now = self.clock()
            run_id, kind = event.get("run_id"), event.get("kind")
            if self.work.get(run_id, {}).get("finished"):
                # A worker's events travel on a queue, its result on another pipe: a late event of a
                # run already done must not list it as running again.
                return
            planned = self.plan.get(run_id)
            state = self.running.setdefault(run_id, {"label": planned.label if planned else run_id,
                                                     "epoch": 0, "epochs": None, "val": None,
                                                     "stage": "starting"})
            work = self._work(run_id)
            if kind == "start":
                state.update(label=event["label"], epoch=event.get("epoch", 0), epochs=event["epochs"],
                             stage="training")
                # timed from here: the epochs of an earlier, interrupted session took no time now
                work.update(budget=event["epochs"], epoch=event.get("epoch", 0),
                            first=event.get("epoch", 0), since=now)
            elif kind == "epoch":
                state.update(epoch=event["epoch"], epochs=event["epochs"], val=event["val_acc"],
                             stage="training")
                work.update(budget=event["epochs"], epoch=event["epoch"], last=now)
                if work["since"] is None:  # no start seen (it went missing): time from this epoch
                    work.update(first=event["epoch"], since=now)
            elif kind == "stage":
                state["stage"] = event["text"]
            elif kind in ("trained", "completed"):
                state["stage"] = kind
            self._estimate(now)
            self._show(run_id, state)

    def finished(self, run_id: str, line: str) -> None:
        """A run (or a stored one) is done: its line goes to standard output."""
        with self.lock:
            now = self.clock()
            self.done += 1
            self.running.pop(run_id, None)
            work = self._work(run_id)
            work.update(finished=True, tail=None if work["last"] is None else now - work["last"])
            self._estimate(now)
            if self.display is not None:
                task = self.tasks.pop(run_id, None)
                if task is not None:
                    self.display.remove_task(task)
                self.display.update(self.overall, completed=self.done, eta=self.eta_text(now))
                self.display.console.print(line, markup=False, highlight=False)
            else:
                print(line, flush=True)

    def message(self, text: str) -> None:
        """A line for standard error, printed above the live display (never through it)."""
        with self.lock:
            if self.display is not None:
                self.display.console.print(text, markup=False, highlight=False)
            else:
                print(text, file=self.stream, flush=True)

    # -- the time left -------------------------------------------------------------------------
    def _estimate(self, now: float) -> None:
        runs = []
        for w in self.work.values():
            timed = w["epoch"] - w["first"] if w["first"] is not None and w["last"] is not None else 0
            runs.append(RunWork(w["key"], w["group"], w["budget"], w["passes"], w["epoch"],
                                max(0, timed), (w["last"] - w["since"]) if timed > 0 else 0.0,
                                w["finished"], w["tail"]))
        for run_id, planned in self.plan.items():  # planned and not started: nothing done yet
            if run_id not in self.work:
                runs.append(RunWork(planned.key, planned.group, planned.epochs, planned.passes))
        left = estimate_remaining(runs, self.slots, unseen=max(0, self.total - len(runs)))
        self.eta = None if left is None else (left, now)

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds left, as last estimated, less the time since (None: nothing timed yet)."""
        if self.eta is None:
            return None
        left, when = self.eta
        return max(0.0, left - ((self.clock() if now is None else now) - when))

    def eta_text(self, now: float | None = None) -> str:
        left = self.remaining(now)
        return "" if left is None or self.done >= self.total else f"ETA {_duration(left)}"

    # -- rendering -----------------------------------------------------------------------------
    def _show(self, run_id: str, state: dict[str, Any]) -> None:
        if self.display is None:
            return
        note = (f"val {100 * state['val']:.1f}%" if state["val"] is not None else "") + (
            "" if state["stage"] == "training" else f" {state['stage']}")
        description = f"  {state['label']}"
        if run_id not in self.tasks:
            self.tasks[run_id] = self.display.add_task(description, total=state["epochs"], note=note, eta="")
        self.display.update(self.tasks[run_id], completed=state["epoch"], total=state["epochs"],
                            note=note.strip(), description=description)
        self.display.update(self.overall, eta=self.eta_text())

    def status_line(self) -> str:
        """One line: runs done of the total, elapsed, the time left, and each running run's epoch."""
        now = self.clock()
        eta = self.eta_text(now)
        running = "; ".join(
            f"{s['label']} epoch {s['epoch']}/{s['epochs'] or '?'}"
            + (f" val {100 * s['val']:.1f}%" if s["val"] is not None else "")
            + ("" if s["stage"] == "training" else f" ({s['stage']})")
            for s in self.running.values())
        return (f"[{time.strftime('%H:%M:%S')}] {self.done}/{self.total} runs done, elapsed "
                f"{_duration(now - self.started)}" + (f", {eta}" if eta else "")
                + (f"; running: {running}" if running else ""))

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
    (None: send none), and its standard error too, line by line (:class:`QueuedLines`)."""
    global _worker_events
    _worker_events = events
    if events is not None:
        sys.stderr = QueuedLines(events)


class QueuedLines(io.TextIOBase):
    """A worker's standard error as ``message`` events: the parent prints each line through its
    live display. A worker writing to the terminal behind the display's back moves the cursor the
    display counts on, and its next refresh overwrote a finished run's line with a stale bar."""

    def __init__(self, events: Any) -> None:
        self.events, self.pending = events, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self.events.put({"kind": "message", "text": line})
        return len(text)

    def flush(self) -> None:
        """Nothing: only whole lines are sent (a put at interpreter exit could find the queue's
        feeder thread gone)."""


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
