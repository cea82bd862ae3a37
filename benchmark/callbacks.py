"""Callbacks of the training loop: checkpoints, progress events and TensorBoard curves."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from subnetbench.benchmark.recipe import AUTO_CHECKPOINT_FACTOR, parse_checkpoint_interval
from subnetbench.benchmark.results import atomic_torch_save
from subnetbench.benchmark.training import Callback, Trainer


class Checkpoint(Callback):
    """Writes the whole loop state atomically, with its SHA-256 digest file, at round ends, at the
    end, and at the ends of epochs that are multiples of ``every`` once ``interval`` (the recipe's
    ``checkpoint_interval``) says one is due; ``run_id`` is stored in it, so that a checkpoint of
    another run is never resumed. The first epoch's end always writes one: "auto" learns from it
    what a checkpoint costs."""

    def __init__(self, path: Path, every: int = 1, run_id: str | None = None,
                 interval: str = "1") -> None:
        self.path = Path(path)
        self.every = max(1, every)
        self.run_id = run_id
        parsed = parse_checkpoint_interval(interval)
        if parsed is None:
            raise ValueError(f"checkpoint interval {interval!r}: expected auto, N or Ns")
        self.kind, self.amount = parsed
        self.last_epoch: int | None = None
        self.last_time = time.monotonic()
        self.cost_s = 0.0

    def due(self, epoch: int) -> bool:
        if epoch % self.every:
            return False
        if self.last_epoch is None:
            return True
        if self.kind == "epochs":
            return epoch - self.last_epoch >= self.amount
        since = time.monotonic() - self.last_time
        if self.kind == "seconds":
            return since >= self.amount
        return since >= AUTO_CHECKPOINT_FACTOR * self.cost_s

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        s = trainer.state
        if self.due(record["epoch"]) or s.epoch_in_round == 0 or s.finished:
            started = time.monotonic()
            owner = {} if self.run_id is None else {"run_id": self.run_id}
            atomic_torch_save(self.path, {**owner, **trainer.state_dict()})
            self.last_time = time.monotonic()
            self.cost_s, self.last_epoch = self.last_time - started, record["epoch"]


ProgressSink = Callable[[dict[str, Any]], None]
"""Receives a run's progress events, plain dicts (they cross process boundaries): ``start``
(run_id, label, epochs: the most it can train, epoch: the epochs done before, by a resumed run),
``epoch`` (run_id, epoch, epochs, val_acc, best_val_acc), ``stage`` (run_id, text: what the run does
between epochs), ``trained`` and ``completed`` (its completed result file is written; sent by
benchmark.runner)."""


class Progress(Callback):
    """Sends the training loop's progress to a sink (the command line's live display)."""

    def __init__(self, run_id: str, label: str, sink: ProgressSink) -> None:
        self.run_id, self.label, self.sink = run_id, label, sink

    def _epochs(self, trainer: Trainer) -> int:
        return trainer.recipe.epochs * trainer.method.traits().rounds

    def on_run_start(self, trainer: Trainer) -> None:
        self.sink({"kind": "start", "run_id": self.run_id, "label": self.label,
                   "epochs": self._epochs(trainer), "epoch": len(trainer.state.history)})

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.sink({"kind": "epoch", "run_id": self.run_id, "epoch": record["epoch"],
                   "epochs": self._epochs(trainer), "val_acc": record["val_acc"],
                   "best_val_acc": max(trainer.state.best_val_acc, 0.0)})

    def on_run_end(self, trainer: Trainer) -> None:
        self.sink({"kind": "trained", "run_id": self.run_id})


TENSORBOARD_HINT = "pip install tensorboard"


def tensorboard_missing() -> str | None:
    """None when per-epoch curves can be written for TensorBoard, else why not. TensorBoard is no
    dependency of subnetbench: torch's writer needs the ``tensorboard`` package installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as error:
        return f"the tensorboard package is not installed ({TENSORBOARD_HINT}): {error}"
    return None


class TensorBoard(Callback):
    """Writes a run's per-epoch curves as TensorBoard scalars under ``log_dir/<run_id>``, as the
    released ASLP code logged its training (Lightning's TensorBoard logger): train/loss, train/acc,
    val/acc and the epoch's seconds, at the run's 1-based epoch over all rounds. A resumed run goes
    on from its next epoch, in a new event file of the same folder."""

    def __init__(self, log_dir: str | Path, run_id: str) -> None:
        from torch.utils.tensorboard import SummaryWriter  # ImportError: see tensorboard_missing

        self.writer = SummaryWriter(log_dir=str(Path(log_dir) / run_id))

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        epoch = record["epoch"]
        for tag, key in (("train/loss", "train_loss"), ("train/acc", "train_acc"), ("val/acc", "val_acc"),
                         ("time/epoch_s", "seconds")):
            if record.get(key) is not None:
                self.writer.add_scalar(tag, record[key], epoch)
        self.writer.flush()  # a curve to look at while the run trains, and after a crash

    def on_run_end(self, trainer: Trainer) -> None:
        self.writer.close()
