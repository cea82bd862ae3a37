"""The training loop on a tiny fake data set: early stopping, the cosine schedule, the best-validation
checkpoint, epochs_to_best over rounds, and the callbacks."""
from __future__ import annotations

import math

import pytest
import torch

from subnetbench import methods
from subnetbench.benchmark.config import Recipe
from subnetbench.benchmark.data import DATASET_INFO, DeviceData, Split
from subnetbench.benchmark.networks import build_network
from subnetbench.benchmark.training import TRAINING_STREAMS, Callback, Trainer
from tests.helpers import single_torch_thread  # noqa: F401


def _split(n: int, seed: int) -> Split:
    generator = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=generator),
                 torch.randint(0, 10, (n,), generator=generator))


def _trainer(method_name="dense", callbacks=(), method_options=None, **recipe) -> Trainer:
    data = DeviceData(DATASET_INFO["digits"], _split(24, 0), _split(8, 1), _split(8, 2))
    recipe = Recipe(**{"batch_size": 8, "epochs": 5, "patience": 0, **recipe})
    torch.manual_seed(0)
    model = build_network("conv2", 1, 8, 10)
    method = methods.get(method_name)(**(method_options or {}))
    method.prepare(model, torch.Generator().manual_seed(1))
    generators = {name: torch.Generator().manual_seed(i)
                  for i, name in enumerate(TRAINING_STREAMS)}
    method.set_sample_generator(generators["mask-sampling"])
    return Trainer(model, method, data, recipe, generators, callbacks)


def _script_validation(monkeypatch, trainer: Trainer, values: list[float]) -> list[dict]:
    """validate() returns ``values`` in turn; returns the model states it saw, one per epoch."""
    seen: list[dict] = []
    queue = list(values)

    def validate():
        seen.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        return queue.pop(0)

    monkeypatch.setattr(trainer, "validate", validate)
    return seen


class Recorder(Callback):
    def __init__(self):
        self.starts, self.ends, self.records, self.lrs = 0, 0, [], []

    def on_run_start(self, trainer):
        self.starts += 1

    def on_epoch_end(self, trainer, record):
        self.records.append(record)
        self.lrs.append([group["lr"] for o in trainer.optimizers for group in o.param_groups])

    def on_run_end(self, trainer):
        self.ends += 1


@pytest.mark.parametrize("patience, values, expected_epochs", [
    (2, [0.1, 0.2, 0.2, 0.15, 0.9, 0.9], 4),  # equal is no improvement: stops after epochs 3 and 4
    (3, [0.1, 0.5, 0.2, 0.6, 0.1, 0.1, 0.1, 0.9], 7),
    (1, [0.3, 0.2, 0.9], 2),
    (0, [0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0], 8),  # 0 turns early stopping off: all epochs
])
def test_early_stopping_after_patience_epochs_without_improvement(monkeypatch, patience, values,
                                                                  expected_epochs):
    trainer = _trainer(epochs=8, patience=patience)
    _script_validation(monkeypatch, trainer, values)
    state = trainer.fit()
    assert len(state.history) == expected_epochs
    assert state.finished
    assert [h["val_acc"] for h in state.history] == values[:expected_epochs]


def test_cosine_schedule_follows_half_cosine():
    recorder = Recorder()
    epochs = 6
    trainer = _trainer(callbacks=[recorder], epochs=epochs, schedule="cosine")
    trainer.fit()
    base = methods.get("dense").Options().lr
    for e, lrs in enumerate(recorder.lrs, start=1):  # after epoch e the next epoch's lr is set
        assert lrs == pytest.approx([base * 0.5 * (1 + math.cos(math.pi * e / epochs))], rel=1e-12)
    assert recorder.lrs[-1][0] == pytest.approx(0.0, abs=1e-15)


def test_constant_schedule_keeps_lr():
    recorder = Recorder()
    _trainer(callbacks=[recorder], epochs=3).fit()
    base = methods.get("dense").Options().lr
    assert recorder.lrs == [[base]] * 3


def test_cosine_schedule_restarts_each_round():
    recorder = Recorder()
    trainer = _trainer("magnitude_pruning", callbacks=[recorder], epochs=3, schedule="cosine")
    trainer.fit()
    base = methods.get("magnitude_pruning").Options().lr
    expected = [base * 0.5 * (1 + math.cos(math.pi * e / 3)) for e in (1, 2, 3)]
    assert [lr[0] for lr in recorder.lrs] == pytest.approx(expected * 2, rel=1e-12)


def test_model_ends_with_the_best_validation_weights(monkeypatch):
    trainer = _trainer(epochs=5)
    seen = _script_validation(monkeypatch, trainer, [0.2, 0.7, 0.5, 0.6, 0.7])
    state = trainer.fit()
    final = trainer.model.state_dict()
    assert state.best_epoch == 2 and trainer.state.best_val_acc == 0.7  # ties keep the first best
    for key, value in seen[1].items():
        assert torch.equal(final[key], value), key
    assert any(not torch.equal(final[k], v) for k, v in seen[-1].items())  # not the last epoch's


def test_epochs_to_best_is_global_over_rounds(monkeypatch):
    # magnitude pruning one-shot: round 0 dense, round 1 pruned; 3 epochs each
    trainer = _trainer("magnitude_pruning", epochs=3)
    assert trainer.method.traits().rounds == 2
    seen = _script_validation(monkeypatch, trainer, [0.1, 0.9, 0.2, 0.3, 0.5, 0.4])
    state = trainer.fit()
    assert [h["round"] for h in state.history] == [0, 0, 0, 1, 1, 1]
    assert [h["epoch"] for h in state.history] == [1, 2, 3, 4, 5, 6]
    assert trainer.state.best_epoch == 5  # the best of the last round, counted from the first epoch
    assert trainer.state.best_val_acc == 0.5
    final = trainer.model.state_dict()
    assert all(torch.equal(final[k], v) for k, v in seen[4].items())
    # round 1 started from round 0's best (epoch 2): its pruning kept the largest of those weights
    layer = next(layer for _, layer in methods.masked_layers(trainer.model))
    round0_best = seen[1]["features.0.weight"]
    kept = layer.mask.bool()
    assert 0 < kept.sum() < kept.numel()
    assert round0_best[kept].abs().min() >= round0_best[~kept].abs().max()


def test_early_stopping_ends_the_round_not_the_run(monkeypatch):
    trainer = _trainer("magnitude_pruning", epochs=5, patience=1)
    _script_validation(monkeypatch, trainer, [0.5, 0.4, 0.1, 0.2, 0.3, 0.3, 0.3])
    state = trainer.fit()
    # round 0 stops after epoch 2, round 1 after epochs 3..6 (0.1 < 0.2 < 0.3 == 0.3)
    assert [h["round"] for h in state.history] == [0, 0, 1, 1, 1, 1]
    assert trainer.state.best_epoch == 5


def test_callbacks_are_called_once_per_epoch_with_the_record():
    recorder = Recorder()
    trainer = _trainer(callbacks=[recorder], epochs=4)
    state = trainer.fit()
    assert recorder.starts == 1 and recorder.ends == 1
    assert [r["epoch"] for r in recorder.records] == [1, 2, 3, 4]
    assert recorder.records == state.history
    for record in recorder.records:
        assert set(record) == {"epoch", "round", "train_loss", "train_acc", "val_acc", "seconds"}
        assert 0 <= record["train_acc"] <= 1 and 0 <= record["val_acc"] <= 1
        assert record["train_loss"] > 0 and record["seconds"] >= 0


def test_the_callback_sees_the_state_of_the_epoch_it_is_called_for():
    class Check(Callback):
        def __init__(self):
            self.lengths = []

        def on_epoch_end(self, trainer, record):
            assert trainer.state.history[-1] is record
            self.lengths.append(len(trainer.state.history))

    check = Check()
    _trainer(callbacks=[check], epochs=3).fit()
    assert check.lengths == [1, 2, 3]


def test_training_changes_only_what_the_method_trains():
    trainer = _trainer("aslp", epochs=1)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith("scores") for k in changed)


def test_train_accuracy_and_loss_are_those_of_the_epoch():
    trainer = _trainer(epochs=1, batch_size=24)  # one batch: loss and accuracy of that batch
    model_before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    state = trainer.fit()
    trainer.model.load_state_dict(model_before)
    trainer.model.train()
    order = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    images = trainer.preprocess(trainer.data.train.images[order])
    logits = trainer.model(images)
    labels = trainer.data.train.labels[order]
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    acc = (logits.argmax(1) == labels).float().mean().item()
    assert state.history[0]["train_loss"] == pytest.approx(loss, rel=1e-5)
    assert state.history[0]["train_acc"] == pytest.approx(acc)


# -- the released code's validation and smart-rescale update (docs/released-code.md) ---------------
def test_a_stochastic_method_validates_on_masks_sampled_from_its_validation_stream():
    """``validation_masks=sampled`` (the default): one sampled mask per forward pass, drawn from the
    run's validation stream; the training stream is untouched. ``deterministic``: the eval mask."""
    from subnetbench.benchmark.training import accuracy, sampled_accuracy

    trainer = _trainer("aslp", eval_batch_size=4)
    assert trainer.recipe.validation_masks == "sampled" and trainer.validates_on_sampled_masks
    with torch.no_grad():
        for _, layer in methods.masked_layers(trainer.model):
            layer.scores.copy_(torch.randn(layer.scores.shape, generator=torch.Generator().manual_seed(3)))
    training_stream = trainer.generators["mask-sampling"].get_state()
    twin = torch.Generator().manual_seed(0)
    twin.set_state(trainer.generators["validation-sampling"].get_state())
    expected = sampled_accuracy(trainer.model, trainer.method, trainer.data.val, trainer.preprocess,
                                4, 1, twin)
    assert trainer.validate() == expected
    assert torch.equal(trainer.generators["validation-sampling"].get_state(), twin.get_state())
    assert torch.equal(trainer.generators["mask-sampling"].get_state(), training_stream)
    before = trainer.generators["validation-sampling"].get_state()
    trainer.validate()
    assert not torch.equal(trainer.generators["validation-sampling"].get_state(), before)  # fresh masks
    deterministic = _trainer("aslp", eval_batch_size=4, validation_masks="deterministic")
    deterministic.model.load_state_dict(trainer.model.state_dict())
    assert not deterministic.validates_on_sampled_masks
    once = deterministic.validate()
    assert once == accuracy(deterministic.model, deterministic.data.val, deterministic.preprocess, 4)
    assert {deterministic.validate() for _ in range(3)} == {once}
    assert not _trainer("dense").validates_on_sampled_masks  # a deterministic method: no sampling


def test_sampled_validation_draws_one_mask_per_layer_and_forward_pass(monkeypatch):
    """Each validation batch is a forward pass with its own sampled mask, as the released code's
    layers sample at every forward: 8 validation images in batches of 4 are 2 masks per layer,
    none reused."""
    trainer = _trainer("aslp", eval_batch_size=4)
    draws: list[torch.Tensor] = []
    sampled_weight = trainer.method.sampled_weight

    def counting(layer):
        weight = sampled_weight(layer)
        draws.append((weight != 0).flatten())
        return weight

    monkeypatch.setattr(trainer.method, "sampled_weight", counting)
    trainer.validate()
    layers = len(list(methods.masked_layers(trainer.model)))
    assert len(draws) == 2 * layers  # 2 batches x every masked layer
    first, second = draws[:layers], draws[layers:]
    assert any(not torch.equal(a, b) for a, b in zip(first, second))  # a fresh mask per pass


def test_cifar_evaluates_in_the_released_codes_batches_and_digits_in_one():
    """The released code validates and tests in batches of 256 (its training batch), one sampled
    mask each; the digits protocols evaluate a split in one batch (CPU-sized)."""
    from subnetbench.benchmark import protocols

    for name in ("cifar10-conv2", "cifar100-conv6"):
        recipe = protocols.get(name).recipe
        assert recipe.eval_batch_size == recipe.batch_size == 256
    assert protocols.get("digits-conv2").recipe.eval_batch_size == 1024


def _one_batch_trainer(update: str) -> Trainer:
    return _trainer("aslp", batch_size=24, method_options={"smart_rescale": True,
                                                           "smart_rescale_update": update})


def _manual_step(trainer: Trainer, labels_of_pass: list[str]) -> None:
    """One pass as Lightning 1.x runs one optimiser: only its tensors require gradients."""
    model = trainer.model
    chosen = [o for o, label in zip(trainer.optimizers, trainer.optimizer_labels) if label in labels_of_pass]
    keep = {id(p) for o in chosen for g in o.param_groups for p in g["params"]}
    for p in model.parameters():
        if p.requires_grad and id(p) not in keep:
            p.requires_grad_(False)
    images = trainer.preprocess(trainer.data.train.images[trainer._order], augment=False)
    loss = torch.nn.functional.cross_entropy(model(images), trainer.data.train.labels[trainer._order])
    for o in chosen:
        o.zero_grad(set_to_none=True)
    loss.backward()
    for o in chosen:
        o.step()
    for _, layer in methods.masked_layers(model):
        layer.scores.requires_grad_(True)
        layer.scale.requires_grad_(True)


@pytest.mark.parametrize("update, passes", [("alternating", [["scores"], ["scale"]]),
                                            ("joint", [["scores", "scale"]])])
def test_smart_rescale_steps_the_scores_then_the_scale_each_with_its_own_sample(update, passes):
    """``smart_rescale_update=alternating`` (the default, the released code under Lightning 1.x):
    per batch one pass (sample, forward, backward) that steps the mask logits, then a pass with a
    fresh sample that steps the scales; ``joint``: one pass steps both."""
    trainer, manual = _one_batch_trainer(update), _one_batch_trainer(update)
    assert trainer.method.traits().update_passes == (None if update == "joint" else (("scores",), ("scale",)))
    for t in (trainer, manual):
        t.begin_epoch()
        t.model.train()
    manual._order = torch.randperm(24, generator=manual.generators["order"])
    for labels_of_pass in passes:
        _manual_step(manual, labels_of_pass)
    trainer.train_epoch()
    for (name, ours), (_, reference) in zip(trainer.model.named_parameters(),
                                            manual.model.named_parameters()):
        assert torch.equal(ours, reference), name
    assert all(p.requires_grad for n, p in trainer.model.named_parameters()
               if n.endswith(("scores", "scale")))  # every tensor trains again after the step


def test_the_two_smart_rescale_updates_differ():
    alternating, joint = _one_batch_trainer("alternating"), _one_batch_trainer("joint")
    for trainer in (alternating, joint):
        trainer.begin_epoch()
        for _ in range(2):
            trainer.train_epoch()
    for name in ("scores", "scale"):  # the scale pass drew its own masks; the next batch sees it
        pairs = [(a, j) for (n, a), (_, j) in zip(alternating.model.named_parameters(),
                                                  joint.model.named_parameters()) if n.endswith(name)]
        assert any(not torch.equal(a, j) for a, j in pairs), name
