"""Several seeds of one configuration trained together, in one process (``run --seed-batch K``).

The k seeds of a configuration are built exactly as k separate runs (:func:`runner.build_run`: the
same seeded initialisation, data split and random streams) and each keeps its own
:class:`~benchmark.training.Trainer`: its optimisers, early stopping, best checkpoint, callbacks,
checkpoint file and result file. Only the training epoch is shared: every step takes one batch of
each seed (from the seed's own order and augmentation streams), samples each seed's masks from the
seed's own generator in the same order as a separate run does, and runs the forward and backward
passes of all seeds together. A seed that stops early leaves the batch; the others go on. Each seed is
evaluated and its result file written as soon as it finishes.

Two ways to run the shared step (``mode``):

- ``grouped``: one grouped convolution per conv layer (seed i's channels are group i) and one batched
  matrix product per linear layer, for all seeds at once: k times fewer, k times larger kernels,
  which is what pays on a GPU. The arithmetic differs from separate runs at the rounding level
  (another convolution algorithm for the first layer, for instance), so the seeds' curves are close
  to, not identical with, those of separate runs.
- ``loop``: each seed's own forward in turn inside the shared step: exactly the arithmetic of a
  separate run, so on a CPU the result files equal those of k separate runs (timings aside).
- ``auto`` (the default): ``grouped`` on CUDA, ``loop`` elsewhere (on a CPU the grouped step does not
  pay: see ``subnetbench speed``, rows with ``seeds_batched``).

The result files have the format and run_id of separate runs. ``timings`` says how they were
trained: ``seed_batch`` (seeds trained together at the start) and ``seed_batch_mode``; ``epoch_s``
is the wall time of the shared training epoch plus the seed's own validation, and ``total_s`` the
wall time from the start of the batch to the end of the seed's evaluation.

Supported: the methods in :data:`SUPPORTED_METHODS` (one training round, masked layers of the Conv-k
networks) without ``compile``.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from subnetbench import methods
from subnetbench.benchmark.callbacks import Checkpoint, Progress
from subnetbench.benchmark.config import ConfigError, RunConfig
from subnetbench.benchmark.networks import ConvNet
from subnetbench.benchmark.results import atomic_torch_save, atomic_write_json, checkpoint_path, run_path
from subnetbench.benchmark.runner import (
    base_record,
    build_run,
    evaluate_run,
    resolve_device,
    set_deterministic,
    stored_result,
    subnetwork_path,
)
from subnetbench.benchmark.training import Trainer, check_recipe_device
from subnetbench.methods.base import MaskedLayer

SUPPORTED_METHODS = ("aslp", "supermask", "edge_popup", "dense", "random_pruning")
MODES = ("auto", "grouped", "loop")


def resolve_mode(mode: str, device: torch.device | str) -> str:
    if mode not in MODES:
        raise ConfigError(f"seed-batch mode {mode!r} is not allowed; expected one of {MODES}")
    if mode == "auto":
        return "grouped" if torch.device(device).type == "cuda" else "loop"
    return mode


def check_batchable(configs: Sequence[RunConfig]) -> None:
    """Refuse (ConfigError) a set of runs that cannot be trained as one seed batch."""
    if not configs:
        raise ConfigError("a seed batch needs at least one run")
    first = configs[0]
    for config in configs[1:]:
        if (config.protocol, config.method, config.config_hash) != (
                first.protocol, first.method, first.config_hash):
            raise ConfigError(f"a seed batch trains seeds of one configuration; {config.run_id} and "
                              f"{first.run_id} differ in more than the seed")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"a seed batch needs distinct seeds, got {seeds}")
    if first.method not in SUPPORTED_METHODS:
        raise ConfigError(f"--seed-batch supports the methods {', '.join(SUPPORTED_METHODS)} (one "
                          f"training round); {first.method!r} is not one of them: run it without "
                          f"--seed-batch")
    if methods.get(first.method)(first.method_options).rounds != 1:
        raise ConfigError(f"--seed-batch supports one training round; {first.method} has "
                          f"{methods.get(first.method)(first.method_options).rounds}")
    if first.recipe.compile:
        raise ConfigError("--seed-batch does not support compile=true (each seed's masks are sampled "
                          "outside a compiled graph); drop one of the two")


# -- the shared training step ------------------------------------------------------------------------
def _layer_weight(layer: nn.Module) -> Tensor:
    return layer.effective_weight() if isinstance(layer, MaskedLayer) else layer.weight


def grouped_forward(models: Sequence[ConvNet], images: Sequence[Tensor]) -> Tensor:
    """Logits of k Conv-k networks on their own batches, k x B x classes, in one pass.

    Conv layers run as one grouped convolution (seed i's channels are group i), linear layers as one
    batched matrix product; each seed's weight is its layer's own ``effective_weight()``, taken in
    layer order, so each seed samples its masks from its own generator in the order of a separate run.
    """
    k = len(models)
    first = models[0]
    x = torch.cat(list(images), 1)
    for index, module in enumerate(first.features):
        if isinstance(module, nn.Conv2d):
            layers = [model.features[index] for model in models]
            weight = torch.cat([_layer_weight(layer) for layer in layers], 0)
            bias = torch.cat([layer.bias for layer in layers]) if module.bias is not None else None
            x = F.conv2d(x, weight, bias, module.stride, module.padding, module.dilation,
                         k * module.groups)
        else:  # ReLU and max-pool act on each channel alone
            x = module(x)
    x = x.reshape(x.shape[0], k, -1).transpose(0, 1)  # k x B x features, each seed's own flatten
    for index, module in enumerate(first.classifier):
        if isinstance(module, nn.Flatten):
            continue
        if isinstance(module, nn.Linear):
            layers = [model.classifier[index] for model in models]
            weight = torch.stack([_layer_weight(layer) for layer in layers]).transpose(1, 2)
            if module.bias is not None:
                bias = torch.stack([layer.bias for layer in layers]).unsqueeze(1)
                x = torch.baddbmm(bias, x, weight)
            else:
                x = torch.bmm(x, weight)
        else:
            x = module(x)
    return x


def train_epoch_batched(trainers: Sequence[Trainer], mode: str = "loop") -> list[tuple[float, float]]:
    """One training epoch of every trainer, the steps shared; (train loss, train acc) per trainer.

    Every trainer must train the same recipe on data of the same size on one device. Random streams
    are drawn per seed in the order of :meth:`Trainer.train_epoch`; metrics stay on the device until
    the epoch's end (one host synchronisation per epoch for all seeds).
    """
    if mode not in ("grouped", "loop"):
        raise ValueError(f"mode {mode!r}: expected 'grouped' or 'loop'")
    recipe = trainers[0].recipe
    n = len(trainers[0].data.train)
    if any(len(t.data.train) != n for t in trainers):
        raise ValueError("the seeds of a batch must have training sets of one size")
    device = trainers[0].data.train.labels.device
    for trainer in trainers:
        trainer.model.train()
    orders = [torch.randperm(n, generator=t.generators["order"], device=device) for t in trainers]
    loss_sums = [torch.zeros((), device=device) for _ in trainers]
    corrects = [torch.zeros((), dtype=torch.long, device=device) for _ in trainers]
    batch = recipe.batch_size
    for start in range(0, n, batch):
        images, labels = [], []
        for trainer, order in zip(trainers, orders):
            index = order[start:start + batch]
            train = trainer.data.train
            images.append(trainer.preprocess(train.images[index], augment=recipe.augmentation,
                                             generator=trainer.generators["augmentation"]))
            labels.append(train.labels[index])
        with trainers[0].autocast():
            if mode == "grouped":
                logits = list(grouped_forward([t.model for t in trainers], images).unbind(0))
            else:
                logits = [t.model(x) for t, x in zip(trainers, images)]
            losses = [F.cross_entropy(out, y) for out, y in zip(logits, labels)]
        for trainer in trainers:
            for optimizer in trainer.optimizers:
                optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(losses)  # disjoint graphs: each seed gets its own loss's gradient
        for trainer in trainers:
            for optimizer in trainer.optimizers:
                optimizer.step()
        for i, (loss, out, y) in enumerate(zip(losses, logits, labels)):
            loss_sums[i] += loss.detach() * y.shape[0]
            corrects[i] += (out.detach().argmax(1) == y).sum()
    for trainer in trainers:
        for scheduler in trainer.schedulers:
            scheduler.step()
    losses_total = torch.stack(loss_sums).tolist()  # the epoch's one host synchronisation
    corrects_total = torch.stack(corrects).tolist()
    return [(loss / n, correct / n) for loss, correct in zip(losses_total, corrects_total)]


def fit_batched(trainers: Sequence[Trainer], mode: str = "loop", on_finished=None) -> None:
    """:meth:`Trainer.fit` of every trainer, the training epochs shared; ``on_finished(trainer)`` is
    called as soon as a trainer's run ends (before the others go on)."""
    for trainer in trainers:
        for callback in trainer.callbacks:
            callback.on_run_start(trainer)
    active = [t for t in trainers if not t.state.finished]
    for trainer in trainers:
        if trainer.state.finished:
            _finish(trainer, on_finished)
    while active:
        for trainer in active:
            trainer.begin_epoch()
        started = time.perf_counter()
        results = train_epoch_batched(active, mode)
        shared_s = time.perf_counter() - started
        for trainer, (train_loss, train_acc) in zip(active, results):
            validation_started = time.perf_counter()
            val_acc = trainer.validate()
            seconds = shared_s + time.perf_counter() - validation_started
            trainer.end_epoch(train_loss, train_acc, val_acc, seconds)
            if trainer.state.finished:
                _finish(trainer, on_finished)
        active = [t for t in active if not t.state.finished]


def _finish(trainer: Trainer, on_finished) -> None:
    for callback in trainer.callbacks:
        callback.on_run_end(trainer)
    if on_finished is not None:
        on_finished(trainer)


# -- runs and result files ---------------------------------------------------------------------------
def execute_seed_batch(configs: Sequence[RunConfig], results_dir: str | Path, *,
                       device: str | None = None, data_dir: str | Path | None = None,
                       download: bool = True, force: bool = False, progress: bool | None = None,
                       deterministic: bool = False, checkpoint_every: int = 1,
                       save_subnetwork: bool = False, mode: str = "auto") -> list[dict[str, Any]]:
    """:func:`runner.execute` of each config (seeds of one configuration), trained together.

    Returns the results in the order of ``configs``. Completed runs are skipped (unless ``force``),
    interrupted ones resume from their checkpoints, as with separate runs.
    """
    configs = list(configs)
    check_batchable(configs)
    results_dir = Path(results_dir)
    results: dict[int, dict[str, Any]] = {}
    for i, config in enumerate(configs):
        existing = stored_result(config, results_dir, force)
        if existing is not None:
            results[i] = existing
    pending = [i for i in range(len(configs)) if i not in results]
    if not pending:
        return [results[i] for i in range(len(configs))]
    torch_device = resolve_device(device)
    check_recipe_device(configs[0].recipe, torch_device)
    mode = resolve_mode(mode, torch_device)
    set_deterministic(torch_device, deterministic)
    records: dict[int, dict[str, Any]] = {}
    for i in pending:
        config = configs[i]
        if force:
            checkpoint_path(results_dir, config.run_id).unlink(missing_ok=True)
        records[i] = base_record(config, torch_device)
        atomic_write_json(run_path(results_dir, config.run_id), records[i])
    try:
        trainers: dict[int, Trainer] = {}
        resumed: dict[int, float] = {}
        for i in pending:
            config = configs[i]
            ckpt = checkpoint_path(results_dir, config.run_id)
            parts = build_run(config, torch_device, data_dir=data_dir, download=download)
            label = f"{config.protocol} {config.method} seed {config.seed} (batch of {len(pending)})"
            trainer = Trainer(parts.model, parts.method, parts.data, config.recipe, parts.generators,
                              callbacks=[Checkpoint(ckpt, checkpoint_every),
                                         Progress(label, enabled=progress)])
            if ckpt.exists():
                trainer.load_state_dict(torch.load(ckpt, map_location=torch_device,
                                                   weights_only=True))
            trainers[i] = trainer
            resumed[i] = trainer.state.elapsed_s
        index_of = {id(t): i for i, t in trainers.items()}
        started = time.perf_counter()

        def finished(trainer: Trainer) -> None:
            i = index_of[id(trainer)]
            config = configs[i]
            extracted, result = evaluate_run(config, records[i], trainer, started, resumed[i])
            result["timings"]["seed_batch"] = len(pending)
            result["timings"]["seed_batch_mode"] = mode
            if save_subnetwork:
                atomic_torch_save(subnetwork_path(results_dir, config.run_id),
                                  {k: v.cpu() for k, v in extracted.state_dict().items()})
            atomic_write_json(run_path(results_dir, config.run_id), result)
            checkpoint_path(results_dir, config.run_id).unlink(missing_ok=True)
            results[i] = result

        fit_batched([trainers[i] for i in pending], mode, on_finished=finished)
    except BaseException as error:
        if not isinstance(error, KeyboardInterrupt):
            for i in pending:
                if i not in results:
                    records[i].update(status="failed", error=f"{type(error).__name__}: {error}")
                    atomic_write_json(run_path(results_dir, configs[i].run_id), records[i])
        raise
    return [results[i] for i in range(len(configs))]
