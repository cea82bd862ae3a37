"""The training loop's step hooks (Method.begin_step / end_step): called around every training step
with the step's place in the round's budget, continued by a resumed run."""
from __future__ import annotations

import json

import pytest
import torch

from subnetbench.benchmark import training
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.data import DATASET_INFO, DeviceData, Split
from subnetbench.benchmark.recipe import Recipe
from subnetbench.benchmark.runner import execute
from subnetbench.benchmark.training import TRAINING_STREAMS, Trainer
from subnetbench.methods.edge_popup import EdgePopup
from tests.helpers import (
    prepared,
    single_torch_thread,  # noqa: F401  (autouse fixture)
)


class Recording(EdgePopup):
    """Edge-popup that records its hook calls (not registered: defined in a test module)."""

    name = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, int, int, int]] = []

    def begin_step(self, model, progress):
        self.calls.append(("begin", progress.step, progress.steps_per_epoch, progress.epochs))

    def end_step(self, model, progress):
        self.calls.append(("end", progress.step, progress.steps_per_epoch, progress.epochs))


def _trainer(epochs: int) -> Trainer:
    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        return Split(torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=generator),
                     torch.randint(0, 10, (n,), generator=generator))

    model, method = prepared(Recording)
    generators = {stream: torch.Generator().manual_seed(i) for i, stream in enumerate(TRAINING_STREAMS)}
    data = DeviceData(DATASET_INFO["digits"], split(40), split(8), split(8))
    return Trainer(model, method, data, Recipe(batch_size=16, epochs=epochs, patience=0), generators)


def test_every_step_is_announced_before_its_forward_and_closed_after_its_update():
    trainer = _trainer(epochs=3)
    trainer.fit()
    steps_per_epoch = 3  # 40 images in batches of 16
    expected = [(kind, step, steps_per_epoch, 3) for step in range(3 * steps_per_epoch)
                for kind in ("begin", "end")]
    assert trainer.method.calls == expected


def test_a_resumed_run_continues_the_step_count():
    first = _trainer(epochs=3)
    first.begin_epoch()
    first.end_epoch(*first.train_epoch(), first.validate(), 0.0)
    checkpoint = first.state_dict()
    resumed = _trainer(epochs=3)
    resumed.load_state_dict(checkpoint)
    resumed.fit()
    assert [call[1] for call in resumed.method.calls if call[0] == "begin"] == list(range(3, 9))


# -- real runs: the schedules of probmask and iterand survive an interruption -------------------------
RESUMABLE = {"epochs": "4", "patience": "0", "checkpoint_interval": "1"}
OUTCOME_KEYS = ("metrics", "curves", "layer_kept_fraction")


@pytest.mark.parametrize("method, options", [
    ("probmask", {}), ("iterand", {"iterand.rerand_period": "7"}),
], ids=["probmask", "iterand"])
def test_an_interrupted_run_resumes_its_schedule_to_the_uninterrupted_result(method, options, tmp_path,
                                                                            monkeypatch):
    """Temperature, budget and projection (probmask) and the re-randomisations and their stream
    (iterand) continue from the checkpoint exactly: the same curves, metrics and masks."""
    config = make_config("digits-conv2", method, 0, {**RESUMABLE, **options}, [method])
    reference = execute(config, tmp_path / "whole", device="cpu", progress=False)
    original, calls = training.train_epoch, []

    def interrupted(trainers, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # two epochs finish, the third is interrupted
            raise KeyboardInterrupt
        return original(trainers, *args, **kwargs)

    monkeypatch.setattr(training, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute(config, tmp_path / "resumed", device="cpu", progress=False)
    monkeypatch.setattr(training, "train_epoch", original)
    resumed = execute(config, tmp_path / "resumed", device="cpu", progress=False)
    outcome = lambda result: json.loads(json.dumps({k: result[k] for k in OUTCOME_KEYS}))  # noqa: E731
    assert resumed["status"] == reference["status"] == "completed"
    assert outcome(resumed) == outcome(reference)
