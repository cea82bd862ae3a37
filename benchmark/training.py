"""The training loop: rounds of epochs with per-epoch validation and early stopping, for one run or
for several runs trained together.

A :class:`Trainer` is one run's training state and its per-run steps (optimisers, validation, early
stopping, the best checkpoint, callbacks, the checkpointable state). The loop itself,
:func:`fit` and :func:`train_epoch`, drives a list of trainers whose training steps are shared: each
step takes one batch of every active run (from the run's own order and augmentation streams), then
one :data:`StepForward` computes their logits, and one backward pass gives each run the gradient of
its own loss. A run that stops early leaves; the others go on. One run is the case of a list of one
(:meth:`Trainer.fit`): the forward :func:`separate_forward` then does exactly what a single run
does. Seed batching plugs in another forward (:func:`benchmark.grouped.grouped_forward`).

The loop knows nothing of logging, checkpoints or progress display: those are :class:`Callback`s.
Everything a resumed run needs (model, optimisers, schedules, random streams, history, best
checkpoint) is in :meth:`Trainer.state_dict`, made of tensors and plain containers only, so it
loads with ``torch.load(..., weights_only=True)``.

Metrics of an epoch are accumulated on the device and read once at its end: no host
synchronisation inside the epoch.

The recipe's fast-path options (all off by default; ``subnetbench speed`` measures them):
``channels_last`` converts the model's 4-D tensors and every preprocessed batch (training and
evaluation) to NHWC; ``autocast="bf16"`` runs the training step's forward and loss under bfloat16
autocast of the run's device type (the same code on a CPU as on CUDA, so that CPU tests exercise
it), evaluation stays in float32; ``compile`` trains through ``torch.compile(model)`` (the model, its
state dict and evaluation stay eager; each step's mask noise is drawn from the run's seeded
generators ahead of the compiled forward, :class:`TrainingForward`).
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from subnetbench.benchmark.data import DeviceData, Preprocess, Split
from subnetbench.benchmark.recipe import Recipe
from subnetbench.errors import OptionError, RunFailed
from subnetbench.methods import Method, noise_drawn_ahead, set_mask_sampling
from subnetbench.methods.base import StepProgress

# The random streams a trainer draws from (benchmark/seeding.py derives each from the root seed).
TRAINING_STREAMS = ("order", "augmentation", "mask-sampling", "validation-sampling")


class Callback:
    """Extension point of the loop. Every hook gets the trainer; override what you need."""

    def on_run_start(self, trainer: Trainer) -> None: ...

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None: ...

    def on_run_end(self, trainer: Trainer) -> None: ...


@dataclass
class LoopState:
    round_index: int = 0
    epoch_in_round: int = 0  # epochs finished in the current round; 0: the round has not begun
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val_acc: float = -1.0  # of the current round
    best_epoch: int = 0  # global 1-based epoch of the current round's best
    epochs_since_best: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    elapsed_s: float = 0.0
    finished: bool = False


@torch.no_grad()
def accuracy(model: nn.Module, split: Split, preprocess: Preprocess, batch_size: int) -> float:
    correct = torch.zeros((), dtype=torch.long, device=split.labels.device)
    for start in range(0, len(split), batch_size):
        images = preprocess(split.images[start:start + batch_size])
        logits = model(images)
        correct += (logits.argmax(1) == split.labels[start:start + batch_size]).sum()
    return correct.item() / max(len(split), 1)


@torch.no_grad()
def sampled_accuracy(model: nn.Module, method: Method, split: Split, preprocess: Preprocess,
                     batch_size: int, samples: int, generator: torch.Generator) -> float:
    """Mean accuracy over ``samples`` masks sampled from ``generator`` (stochastic evaluation)."""
    training_generator = method.sample_generator
    method.set_sample_generator(generator)
    set_mask_sampling(model, True)
    try:
        return sum(accuracy(model, split, preprocess, batch_size) for _ in range(samples)) / samples
    finally:
        set_mask_sampling(model, None)
        method.set_sample_generator(training_generator)


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def check_recipe_device(recipe: Recipe, device: torch.device | str) -> None:
    """Refuse fast-path options that the device cannot honour (before any work starts)."""
    device = torch.device(device)
    if recipe.autocast == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(
            including_emulation=False):
        raise OptionError(f"option autocast='bf16' needs a GPU that computes in bfloat16, and "
                          f"{torch.cuda.get_device_name(device)} does not; leave autocast=none")


def tf32_settings(mode: str, device: torch.device | str) -> dict[str, bool]:
    """Which float32 products run in TF32 under the recipe's ``tf32`` on ``device`` (only CUDA
    has TF32: on a CPU, none)."""
    cuda = torch.device(device).type == "cuda"
    return {"matmul": cuda and mode == "all", "convolutions": cuda and mode in ("conv", "all")}


def apply_tf32(mode: str, device: torch.device | str) -> None:
    """Set PyTorch's process-wide TF32 switches as the recipe says (CUDA only)."""
    if torch.device(device).type == "cuda":
        settings = tf32_settings(mode, device)
        torch.backends.cuda.matmul.allow_tf32 = settings["matmul"]
        torch.backends.cudnn.allow_tf32 = settings["convolutions"]


class ChannelsLast:
    """A preprocessing step followed by a conversion of the batch to NHWC (channels_last)."""

    def __init__(self, preprocess: Preprocess) -> None:
        self.preprocess = preprocess

    def __call__(self, images: torch.Tensor, augment: bool = False,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x = self.preprocess(images, augment=augment, generator=generator)
        return x.contiguous(memory_format=torch.channels_last)


class TrainingForward:
    """The training forward of a run: the model (or its compiled form; state dicts stay the
    model's own), with each forward's mask noise drawn ahead of it from the run's seeded stream,
    so that a compiled forward has no graph break at the draws (the same numbers as eager)."""

    def __init__(self, model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.model, self.forward = model, forward

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with noise_drawn_ahead(self.model):
            return self.forward(images)


class Trainer:
    def __init__(self, model: nn.Module, method: Method, data: DeviceData, recipe: Recipe,
                 generators: dict[str, torch.Generator], callbacks: Sequence[Callback] = (),
                 name: str = "") -> None:
        self.name = name  # the run's id, for messages
        self.model = model
        self.method = method
        self.data = data
        self.recipe = recipe
        self.generators = generators
        self.callbacks = list(callbacks)
        device = data.train.images.device
        check_recipe_device(recipe, device)
        apply_tf32(recipe.tf32, device)
        self.preprocess: Preprocess | ChannelsLast = Preprocess(data.info, recipe.normalises, device)
        if recipe.channels_last:
            model.to(memory_format=torch.channels_last)
            self.preprocess = ChannelsLast(self.preprocess)
        if recipe.compile:
            # Dynamo's code cache is per process and keyed on the method's code and options: runs
            # of other configurations before this one (a grid, a worker, the speed study) would
            # fill it up to its recompile limit, after which compile=true silently runs eager.
            # Their compiled graphs are never this run's, so they are dropped.
            torch._dynamo.reset()
        self.forward = TrainingForward(model, torch.compile(model) if recipe.compile else model)
        self.state = LoopState()
        self.optimizers: list[torch.optim.Optimizer] = []
        self.optimizer_labels: list[str] = []
        self.schedulers: list[torch.optim.lr_scheduler.LRScheduler] = []
        if self.validates_on_sampled_masks and "validation-sampling" not in generators:
            raise ValueError("a stochastic method validated on sampled masks needs the "
                             "'validation-sampling' random stream among the generators")

    # -- optimisers ---------------------------------------------------------------------------
    def _build_optimizers(self) -> None:
        specs = self.method.optimizer_specs(self.model)
        self.optimizers = [spec.build() for spec in specs]
        self.optimizer_labels = [spec.label for spec in specs]
        epochs = self.recipe.epochs
        if self.recipe.schedule == "cosine":
            factor = lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs))  # noqa: E731
        else:
            factor = lambda e: 1.0  # noqa: E731
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in self.optimizers]

    # -- one epoch ----------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """The context of the training step's forward and loss (bf16 autocast, or nothing)."""
        if self.recipe.autocast == "bf16":
            return torch.autocast(self.data.train.images.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_epoch(self) -> tuple[float, float]:
        """One training epoch of this run alone: (train loss, train accuracy)."""
        return train_epoch([self])[0]

    def optimizers_of(self, labels: tuple[str, ...] | None) -> list[torch.optim.Optimizer]:
        """The optimisers a pass of the training step steps (None: all of them)."""
        if labels is None:
            return self.optimizers
        return [o for o, label in zip(self.optimizers, self.optimizer_labels) if label in labels]

    @contextlib.contextmanager
    def training_only(self, optimizers: list[torch.optim.Optimizer]):
        """Freeze the tensors of every other optimiser for one pass (Lightning's toggle_optimizer)."""
        stepped = {id(p) for o in optimizers for group in o.param_groups for p in group["params"]}
        others = [p for o in self.optimizers for group in o.param_groups for p in group["params"]
                  if id(p) not in stepped and p.requires_grad]
        for p in others:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in others:
                p.requires_grad_(True)

    @property
    def validates_on_sampled_masks(self) -> bool:
        return self.method.traits().sampled_validation and self.recipe.validation_masks == "sampled"

    def validate(self) -> float:
        """Validation accuracy: on masks sampled at every forward pass (one sample per batch and
        layer, from the run's validation stream) for a stochastic method whose recipe says
        ``validation_masks=sampled``, else on the deterministic network."""
        self.model.eval()
        if self.validates_on_sampled_masks:
            return sampled_accuracy(self.model, self.method, self.data.val, self.preprocess,
                                    self.recipe.eval_batch_size, 1,
                                    self.generators["validation-sampling"])
        return accuracy(self.model, self.data.val, self.preprocess, self.recipe.eval_batch_size)

    # -- the loop -----------------------------------------------------------------------------
    def fit(self) -> LoopState:
        """Train this run alone to its end (see :func:`fit`)."""
        fit([self])
        return self.state

    def begin_epoch(self) -> None:
        """Start the round (method hook, fresh optimisers, best reset) if no epoch of it ran yet."""
        s = self.state
        if s.epoch_in_round == 0:
            self.method.begin_round(self.model, s.round_index)
            self._build_optimizers()
            s.best_val_acc, s.best_epoch, s.epochs_since_best, s.best_state = -1.0, 0, 0, None

    def end_epoch(self, train_loss: float, train_acc: float, val_acc: float,
                  seconds: float) -> dict[str, Any]:
        """Record the epoch, keep the best checkpoint, stop the round early, call the callbacks.
        A non-finite training loss ends the run as failed (RunFailed): nothing it learns after that
        means anything, and result files are strict JSON."""
        s = self.state
        if not math.isfinite(train_loss):
            run = f"run {self.name}" if self.name else "the run"
            raise RunFailed(f"{run}: the training loss became {train_loss} at epoch "
                            f"{len(s.history) + 1} (round {s.round_index + 1}); the run diverged "
                            "and is recorded as failed. A smaller learning rate of the method "
                            "(e.g. --set method.lr=... or method.mask_lr=...) usually avoids it")
        s.epoch_in_round += 1
        epoch = len(s.history) + 1
        if val_acc > s.best_val_acc:
            s.best_val_acc, s.best_epoch, s.epochs_since_best = val_acc, epoch, 0
            s.best_state = _clone_state(self.model)
        else:
            s.epochs_since_best += 1
        record = {"epoch": epoch, "round": s.round_index, "train_loss": train_loss,
                  "train_acc": train_acc, "val_acc": val_acc, "seconds": seconds}
        s.history.append(record)
        s.elapsed_s += seconds
        patience = self.recipe.patience
        if s.epoch_in_round >= self.recipe.epochs or (patience and s.epochs_since_best >= patience):
            self._end_round()
        for callback in self.callbacks:
            callback.on_epoch_end(self, record)
        return record

    def _end_round(self) -> None:
        """Back to the round's best-validation checkpoint; the next round (if any) starts there."""
        s = self.state
        self.model.load_state_dict(s.best_state)
        if s.round_index + 1 < self.method.traits().rounds:
            s.round_index += 1
            s.epoch_in_round = 0
        else:
            s.finished = True

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        s = self.state
        return {
            "model": self.model.state_dict(),
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [sch.state_dict() for sch in self.schedulers],
            "generators": {name: g.get_state() for name, g in self.generators.items()},
            "loop": {"round_index": s.round_index, "epoch_in_round": s.epoch_in_round,
                     "history": s.history, "best_val_acc": s.best_val_acc,
                     "best_epoch": s.best_epoch, "epochs_since_best": s.epochs_since_best,
                     "elapsed_s": s.elapsed_s, "finished": s.finished},
            "best_state": s.best_state,
        }

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        for name, state in checkpoint["generators"].items():
            self.generators[name].set_state(state.cpu() if state.device.type != "cpu" else state)
        loop = checkpoint["loop"]
        self.state = LoopState(**loop, best_state=checkpoint["best_state"])
        if self.state.epoch_in_round > 0:  # mid-round: same optimisers, same momentum, same schedule
            self._build_optimizers()
            for optimizer, state in zip(self.optimizers, checkpoint["optimizers"]):
                optimizer.load_state_dict(state)
            for scheduler, state in zip(self.schedulers, checkpoint["schedulers"]):
                scheduler.load_state_dict(state)


# -- the loop, for one run or several trained together ----------------------------------------------
StepForward = Callable[[Sequence[Trainer], Sequence[torch.Tensor]], list[torch.Tensor]]
"""The forward pass of a shared step: the trainers and one batch of images each -> their logits."""


def separate_forward(trainers: Sequence[Trainer], images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Each run's own forward in turn: for one run, exactly its training forward."""
    return [trainer.forward(x) for trainer, x in zip(trainers, images)]


def train_epoch(trainers: Sequence[Trainer],
                forward: StepForward = separate_forward) -> list[tuple[float, float]]:
    """One training epoch of every trainer, the steps shared; (train loss, train acc) per trainer.

    Every trainer must train the same recipe on training sets of one size on one device. Random
    streams are drawn per run, each in the order a run trained alone draws them; metrics stay on the
    device until the epoch's end (one host synchronisation per epoch for all runs). A method with
    several update passes (``MethodTraits.update_passes``) runs each pass on the same batch with its
    own sampled masks; the epoch's loss and accuracy are those of each batch's first pass.
    """
    first = trainers[0]
    recipe = first.recipe
    n = len(first.data.train)
    if any(len(t.data.train) != n for t in trainers):
        raise ValueError("runs trained together must have training sets of one size")
    device = first.data.train.labels.device
    for trainer in trainers:
        trainer.model.train()
    orders = [torch.randperm(n, generator=t.generators["order"], device=device) for t in trainers]
    loss_sums = [torch.zeros((), device=device) for _ in trainers]
    corrects = [torch.zeros((), dtype=torch.long, device=device) for _ in trainers]
    batch = recipe.batch_size
    passes = first.method.traits().update_passes or (None,)  # None: one pass stepping every optimiser
    steps_per_epoch = -(-n // batch)
    for batch_index, start in enumerate(range(0, n, batch)):
        progresses = [StepProgress(t.state.epoch_in_round * steps_per_epoch + batch_index,
                                   steps_per_epoch, recipe.epochs) for t in trainers]
        for trainer, progress in zip(trainers, progresses):
            trainer.method.begin_step(trainer.model, progress)
        images, labels = [], []
        for trainer, order in zip(trainers, orders):
            index = order[start:start + batch]
            train = trainer.data.train
            images.append(trainer.preprocess(train.images[index], augment=recipe.augmentation,
                                             generator=trainer.generators["augmentation"]))
            labels.append(train.labels[index])
        for pass_index, pass_labels in enumerate(passes):
            stepped = [trainer.optimizers_of(pass_labels) for trainer in trainers]
            with contextlib.ExitStack() as frozen:
                if pass_labels is not None:
                    for trainer, optimizers in zip(trainers, stepped):
                        frozen.enter_context(trainer.training_only(optimizers))
                with first.autocast():
                    logits = forward(trainers, images)
                    losses = [F.cross_entropy(out, y) for out, y in zip(logits, labels)]
                if any(stepped):  # a method that learns nothing has no optimiser: no backward
                    _step(stepped, losses)
            if pass_index == 0:
                for i, (loss, out, y) in enumerate(zip(losses, logits, labels)):
                    loss_sums[i] += loss.detach() * y.shape[0]
                    corrects[i] += (out.detach().argmax(1) == y).sum()
        for trainer, progress in zip(trainers, progresses):
            trainer.method.end_step(trainer.model, progress)
    for trainer in trainers:
        for scheduler in trainer.schedulers:
            scheduler.step()
    loss_totals = torch.stack(loss_sums).tolist()  # the epoch's one host synchronisation
    correct_totals = torch.stack(corrects).tolist()
    return [(loss / n, correct / n) for loss, correct in zip(loss_totals, correct_totals)]


def _step(stepped: list[list[torch.optim.Optimizer]], losses: list[torch.Tensor]) -> None:
    """Backward of every run's loss (disjoint graphs: each run gets its own loss's gradient), then
    a step of the optimisers of this pass."""
    for optimizers in stepped:
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
    torch.autograd.backward(losses)
    for optimizers in stepped:
        for optimizer in optimizers:
            optimizer.step()


def fit(trainers: Sequence[Trainer], forward: StepForward = separate_forward,
        on_finished: Callable[[Trainer], None] | None = None) -> None:
    """Train every trainer to its end, the training epochs shared; ``on_finished(trainer)`` is
    called as soon as a run ends (before the others go on). A run's epoch time is the shared
    training epoch plus its own validation."""
    for trainer in trainers:
        for callback in trainer.callbacks:
            callback.on_run_start(trainer)
    for trainer in trainers:
        if trainer.state.finished:  # resumed from the checkpoint of a finished training
            _finish(trainer, on_finished)
    active = [t for t in trainers if not t.state.finished]
    while active:
        for trainer in active:
            trainer.begin_epoch()
        started = time.perf_counter()
        try:
            results = train_epoch(active, forward)
        except RuntimeError as error:
            if not _is_overflow(error):
                raise
            # The arithmetic left float32 (a step size the option checks let through, a loss that
            # grew past it): the same end as a loss that became inf, a failed run, not a bug.
            names = ", ".join(t.name or "the run" for t in active)
            raise RunFailed(f"{names}: a training step overflowed float32 at epoch "
                            f"{len(active[0].state.history) + 1} ({' '.join(str(error).split())}); "
                            "the run diverged and is recorded as failed. A smaller learning rate of "
                            "the method (e.g. --set method.lr=... or method.mask_lr=...) usually "
                            "avoids it") from error
        shared_s = time.perf_counter() - started
        for trainer, (train_loss, train_acc) in zip(active, results):
            validation_started = time.perf_counter()
            val_acc = trainer.validate()
            seconds = shared_s + time.perf_counter() - validation_started
            trainer.end_epoch(train_loss, train_acc, val_acc, seconds)
            if trainer.state.finished:
                _finish(trainer, on_finished)
        active = [t for t in active if not t.state.finished]


def _is_overflow(error: RuntimeError) -> bool:
    """Whether torch raised ``error`` because a number did not fit its float type (e.g. "value
    cannot be converted to type float without overflow"): only that, never a shape or device
    error, which is a bug to see as one."""
    return "overflow" in str(error).lower()


def _finish(trainer: Trainer, on_finished: Callable[[Trainer], None] | None) -> None:
    for callback in trainer.callbacks:
        callback.on_run_end(trainer)
    if on_finished is not None:
        on_finished(trainer)
