"""Callbacks of the training loop: checkpoints and the progress line."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from subnetbench.benchmark.results import atomic_torch_save
from subnetbench.benchmark.training import Callback, Trainer


class Checkpoint(Callback):
    """Writes the whole loop state atomically every ``every`` epochs (and at round ends), with its
    SHA-256 digest file; ``run_id`` is stored in it, so that a checkpoint of another run is never
    resumed."""

    def __init__(self, path: Path, every: int = 1, run_id: str | None = None) -> None:
        self.path = Path(path)
        self.every = max(1, every)
        self.run_id = run_id

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        s = trainer.state
        if record["epoch"] % self.every == 0 or s.epoch_in_round == 0 or s.finished:
            owner = {} if self.run_id is None else {"run_id": self.run_id}
            atomic_torch_save(self.path, {**owner, **trainer.state_dict()})


class Progress(Callback):
    """One self-updating line per run on a terminal; silent when the output is not a terminal."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        s = trainer.state
        rounds = trainer.method.rounds
        round_text = f" round {record['round'] + 1}/{rounds}" if rounds > 1 else ""
        self.stream.write(f"\r{self.label}{round_text} epoch {record['epoch']} "
                          f"loss {record['train_loss']:.3f} val {record['val_acc']:.3f} "
                          f"best {max(s.best_val_acc, 0):.3f}\x1b[K")
        self.stream.flush()

    def on_run_end(self, trainer: Trainer) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
