"""The method contract: what every subnetwork method implements, and what it declares.

A method sees a freshly initialised network and:

1. ``prepare``s it: every prunable layer becomes a masked layer (:mod:`subnetbench.methods.layers`,
   same parameters, same state-dict keys), the tensors it must not train are frozen, and its own
   tensors (scores, scales, masks) are created on each layer by :meth:`Method.init_layer`;
2. decides what each masked layer's forward uses as its weight: :meth:`Method.keep_mask` and
   :meth:`Method.deterministic_weight` (evaluation), :meth:`Method.sampled_weight` (training);
3. gives the optimisers of its recipe (:meth:`Method.optimizer_specs`);
4. ``extract``s the deterministic subnetwork as an ordinary torch module whose removed weights are
   exactly zero, with its sparsity statistics.

What the engine, the studies, the report and the conformance suite need to know of a method, it
declares in one place: :meth:`Method.traits`, a :class:`MethodTraits`. Configuration reaches a
method through its ``Options`` dataclass; random streams are ``torch.Generator`` objects passed in.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from subnetbench.methods.layers import (
    MaskedLayer,
    masked_copy,
    masked_layers,
    plain_layer,
    prunable_layers,
    replace_module,
)
from subnetbench.methods.options import OPTIMIZER_ALGORITHMS, NoOptions, OptionError, check_option

MASK_ONLY = "mask-only"
WEIGHT_TRAINING = "weight-training"
FAMILIES = (MASK_ONLY, WEIGHT_TRAINING)


@dataclass
class OptimizerSpec:
    """One optimiser of a method's recipe: which tensors, which algorithm, which settings."""

    label: str
    params: list[Tensor]
    algorithm: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        check_option(self.algorithm in OPTIMIZER_ALGORITHMS, "OptimizerSpec", "algorithm",
                     self.algorithm, f"one of {OPTIMIZER_ALGORITHMS}")
        for name, value, allowed in (("lr", self.lr, "a positive number"),
                                     ("momentum", self.momentum, "a number >= 0"),
                                     ("weight_decay", self.weight_decay, "a number >= 0")):
            check_option(isinstance(value, (int, float)) and not isinstance(value, bool)
                         and (value > 0 if name == "lr" else value >= 0), "OptimizerSpec", name, value,
                         allowed)

    def build(self) -> torch.optim.Optimizer:
        if self.algorithm == "adam":
            return torch.optim.Adam(self.params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(self.params, lr=self.lr, momentum=self.momentum,
                               weight_decay=self.weight_decay)


@dataclass
class SparsityStats:
    """Kept weights of an extracted subnetwork, over all prunable layers and per layer."""

    kept: int
    total: int
    layer_kept: dict[str, int] = field(default_factory=dict)
    layer_total: dict[str, int] = field(default_factory=dict)

    @property
    def kept_fraction(self) -> float:
        return self.kept / self.total if self.total else 1.0

    @property
    def layer_kept_fraction(self) -> dict[str, float]:
        return {name: self.layer_kept[name] / self.layer_total[name] for name in self.layer_total}


@dataclass(frozen=True)
class StepProgress:
    """Where a training step stands in its round's budget, for schedules in steps or epochs.

    ``step`` counts the round's steps before this one (0-based); the budget is the recipe's
    ``epochs`` of ``steps_per_epoch`` steps each, whether or not early stopping ends it sooner. It
    is computed from the loop's state, so a resumed run continues the same schedule."""

    step: int
    steps_per_epoch: int
    epochs: int

    @property
    def epoch(self) -> int:
        """The 0-based epoch of the round this step belongs to."""
        return self.step // self.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _update_passes(value: Any) -> tuple[tuple[str, ...], ...] | None:
    """``value`` as a tuple of tuples of optimiser labels (None: one pass stepping every optimiser)."""
    if value is None:
        return None
    sequences = isinstance(value, (list, tuple)) and all(isinstance(x, (list, tuple)) for x in value)
    passes = tuple(tuple(labels) for labels in value) if sequences else ()
    check_option(bool(passes) and all(labels and all(_text(x) for x in labels) for labels in passes),
                 "MethodTraits", "update_passes", value,
                 "None or a non-empty sequence of non-empty sequences of OptimizerSpec labels")
    return passes


def _test_options(value: Any) -> tuple[dict[str, Any], ...]:
    options = tuple(value) if isinstance(value, (list, tuple)) else ()
    check_option(bool(options) and all(isinstance(o, Mapping) for o in options) and options[0] == {},
                 "MethodTraits", "test_options", value,
                 "a non-empty sequence of option dicts, the defaults ({}) first")
    return tuple(dict(o) for o in options)


@dataclass(frozen=True)
class MethodTraits:
    """What the engine, the studies, the report and the conformance suite know of a method.

    A method returns it from :meth:`Method.traits`, computed from its options. Construction checks
    each value's type and range and the declarations' consistency with one another (a sampled
    evaluation or validation needs a ``stochastic`` method; several rounds need a seed-batch
    refusal); the conformance suite checks them against the method's behaviour.
    """

    family: str  # MASK_ONLY (weights and biases frozen, a mask learned) or WEIGHT_TRAINING
    trainable_tensors: frozenset[str]  # per-layer tensor names trained ("scores", "weight", ...)
    stochastic: bool = False  # training samples masks: a sampled evaluation differs
    evaluation_samples: int = 1  # sampled masks whose test accuracies test_acc averages
    sampled_validation: bool = False  # validation_masks=sampled applies (stochastic methods only)
    rounds: int = 1  # training rounds of the recipe (magnitude pruning: train, prune, train)
    seed_batch_refusal: str | None = None  # why seeds cannot train together; None: they can
    fixed_keep_fraction: float | None = None  # fraction kept, when fixed in advance; None: learned
    rescaling: str | None = None  # the SR axis: names of the rescaling options on, joined by "+"
    update_passes: tuple[tuple[str, ...], ...] | None = None  # optimiser labels stepped per pass
    test_options: tuple[dict[str, Any], ...] = ({},)  # option sets of the conformance suite

    def __post_init__(self) -> None:
        owner = "MethodTraits"
        check_option(self.family in FAMILIES, owner, "family", self.family, f"one of {FAMILIES}")
        tensors = self.trainable_tensors
        check_option(isinstance(tensors, (set, frozenset, tuple, list))
                     and all(_text(name) for name in tensors), owner, "trainable_tensors", tensors,
                     "a set of per-layer tensor names")
        object.__setattr__(self, "trainable_tensors", frozenset(tensors))
        check_option(self.family != MASK_ONLY or not {"weight", "bias"} & set(tensors), owner,
                     "trainable_tensors", tensors, "no 'weight' or 'bias' for a mask-only method")
        for name in ("stochastic", "sampled_validation"):
            check_option(isinstance(getattr(self, name), bool), owner, name, getattr(self, name),
                         "true or false")
        self._check_counts(owner)
        fixed = self.fixed_keep_fraction
        check_option(fixed is None or (isinstance(fixed, (int, float)) and not isinstance(fixed, bool)
                                       and 0 < fixed <= 1), owner, "fixed_keep_fraction", fixed,
                     "None or a number in (0, 1]")
        check_option(self.rescaling is None or _text(self.rescaling), owner, "rescaling",
                     self.rescaling, "None or a non-empty name")
        object.__setattr__(self, "update_passes", _update_passes(self.update_passes))
        object.__setattr__(self, "test_options", _test_options(self.test_options))

    def _check_counts(self, owner: str) -> None:
        samples, rounds, refusal = self.evaluation_samples, self.rounds, self.seed_batch_refusal
        check_option(isinstance(samples, int) and not isinstance(samples, bool) and samples >= 1
                     and (samples == 1 or self.stochastic), owner, "evaluation_samples", samples,
                     "an integer >= 1, and 1 unless the method is stochastic")
        check_option(not self.sampled_validation or self.stochastic, owner, "sampled_validation",
                     self.sampled_validation, "false unless the method is stochastic")
        check_option(isinstance(rounds, int) and not isinstance(rounds, bool) and rounds >= 1, owner,
                     "rounds", rounds, "an integer >= 1")
        check_option(refusal is None or _text(refusal), owner, "seed_batch_refusal", refusal,
                     "None or the reason why seeds cannot train together")
        check_option(rounds == 1 or refusal is not None, owner, "seed_batch_refusal", refusal,
                     f"a reason, since the method trains in {rounds} rounds and seeds trained "
                     "together share one round")

    @property
    def update_pass_count(self) -> int:
        """Training passes a batch: one, or one per entry of :attr:`update_passes`."""
        return len(self.update_passes) if self.update_passes else 1


class Method:
    """Base class of every subnetwork method. Subclass it, set ``name`` and ``Options``, implement
    the core (:meth:`traits`, :meth:`keep_mask` or the weight hooks, :meth:`optimizer_specs`,
    usually :meth:`init_layer`), and register nothing else.

    - ``name``: unique lower-case registry name (empty on abstract bases, which are not registered);
    - ``Options``: a frozen dataclass of the method's options, validated in its ``__post_init__``.

    The optional hooks (``after_prepare``, ``draw_noise``, ``keep_probability``, ``begin_round``,
    ``begin_step``, ``end_step``) default to nothing; docs/plugins.md lists when each is called.
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any = None, **overrides: Any) -> None:
        if options is None:
            options = self.Options(**overrides)
        elif overrides:
            options = dataclasses.replace(options, **overrides)
        if not isinstance(options, self.Options):
            raise OptionError(f"{type(self).__name__} takes options of type {self.Options.__name__}, "
                              f"got {type(options).__name__}")
        self.options = options
        self.sample_generator: torch.Generator | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options!r})"

    # -- the core a method implements -------------------------------------------------------------
    def traits(self) -> MethodTraits:
        """What the engine and the studies know of this method with its options (one place)."""
        raise NotImplementedError(f"{type(self).__name__} must define traits()")

    def init_layer(self, layer: MaskedLayer, generator: torch.Generator | None) -> None:
        """Create this method's per-layer tensors (parameters or buffers). Default: none."""

    def keep_mask(self, layer: MaskedLayer) -> Tensor:
        """The deterministic keep/drop decision of each weight (bool tensor of the weight's shape)."""
        return torch.ones_like(layer.weight, dtype=torch.bool)

    def deterministic_weight(self, layer: MaskedLayer) -> Tensor:
        """The weight of the evaluation forward and of the extracted layer (before the removed
        weights are zeroed). Default: the kept weights."""
        return layer.weight * self.keep_mask(layer).to(layer.weight.dtype)

    def sampled_weight(self, layer: MaskedLayer) -> Tensor:
        """The weight of a training forward pass (or of a stochastic evaluation). Default: the
        deterministic one."""
        return self.deterministic_weight(layer)

    def optimizer_specs(self, model: nn.Module) -> list[OptimizerSpec]:
        """The optimisers of the recipe; every tensor that requires a gradient in exactly one."""
        raise NotImplementedError(f"{type(self).__name__} must define optimizer_specs")

    # -- optional hooks ---------------------------------------------------------------------------
    def after_prepare(self, model: nn.Module, generator: torch.Generator | None) -> None:
        """Whole-network step after every layer is prepared (e.g. global mask allocation)."""

    def draw_noise(self, layer: MaskedLayer) -> tuple[Tensor, ...]:
        """The random draws one sampled forward of ``layer`` takes from :attr:`sample_generator`,
        in order (:meth:`sampled_weight` reads them with :meth:`noise`). Declared apart from the
        forward so that a compiled forward receives them as inputs (``noise_drawn_ahead``)."""
        return ()

    def keep_probability(self, layer: MaskedLayer) -> Tensor | None:
        """The learned probability of keeping each weight of ``layer``, or None when the method
        learns none (the result file then has no keep-probability histogram)."""
        return None

    def begin_round(self, model: nn.Module, round_index: int) -> None:
        """Called before training round ``round_index`` (0-based); the optimiser is rebuilt after."""

    def begin_step(self, model: nn.Module, progress: StepProgress) -> None:
        """Called before the forward pass of each training step (a schedule's temperature or
        budget, a periodic re-randomisation)."""

    def end_step(self, model: nn.Module, progress: StepProgress) -> None:
        """Called after each training step's optimiser steps (a projection of what they moved)."""

    # -- what the engine calls (not overridden) ---------------------------------------------------
    def noise(self, layer: MaskedLayer) -> tuple[Tensor, ...]:
        """This forward's draws of ``layer``: those drawn ahead of it, else drawn now."""
        drawn = layer.drawn_noise
        return drawn if drawn is not None else self.draw_noise(layer)

    def set_sample_generator(self, generator: torch.Generator | None) -> None:
        """The stream masks are sampled from; it must live on the device of the parameters."""
        self.sample_generator = generator

    def prepare(self, model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
        """Turn a freshly initialised network into this method's trainable network, in place.

        ``generator`` seeds the method's own extra tensors (scores, random masks); it is a CPU
        generator so that initialisation is the same on every device.
        """
        for name, layer in list(prunable_layers(model)):
            if isinstance(layer, MaskedLayer):
                raise ValueError(f"layer {name!r} is already prepared by {layer.method!r}")
            replace_module(model, name, masked_copy(layer, self))
        trains_weights = self.traits().family == WEIGHT_TRAINING
        for _, layer in masked_layers(model):
            layer.weight.requires_grad_(trains_weights)
            if layer.bias is not None:
                layer.bias.requires_grad_(trains_weights)
            self.init_layer(layer, generator)
        self.after_prepare(model, generator)
        return model

    @torch.no_grad()
    def extract(self, model: nn.Module) -> tuple[nn.Module, SparsityStats]:
        """An ordinary network (plain conv/linear layers) computing the deterministic forward.

        Removed weights are exactly zero; kept weights carry the deterministic scale.
        """
        extracted = copy.deepcopy(model)
        stats = SparsityStats(kept=0, total=0)
        for name, layer in list(masked_layers(extracted)):
            weight = self.deterministic_weight(layer).detach().clone()
            weight[~self.keep_mask(layer)] = 0.0  # exact zeros, also where a scale is not finite
            replace_module(extracted, name, plain_layer(layer, weight))
            kept = int(torch.count_nonzero(weight))
            stats.kept += kept
            stats.total += weight.numel()
            stats.layer_kept[name] = kept
            stats.layer_total[name] = weight.numel()
        extracted.eval()
        return extracted, stats
