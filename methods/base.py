"""The one interface every subnetwork method implements, and the masked layers it drives.

A method sees a freshly initialised network and:

1. ``prepare``s it: every prunable ``nn.Conv2d``/``nn.Linear`` becomes a :class:`MaskedConv2d` /
   :class:`MaskedLinear` (same parameters, same state-dict keys for ``weight`` and ``bias``), the
   tensors it must not train are frozen, and its own extra tensors (scores, scales, masks) are
   created on each layer by :meth:`Method.init_layer`;
2. decides what each prunable layer's forward does with its weight: :meth:`Method.sampled_weight`
   (training, or stochastic evaluation) and :meth:`Method.deterministic_weight` (evaluation);
3. gives the optimiser groups of its recipe (:meth:`Method.optimizer_specs`);
4. ``extract``s the final deterministic subnetwork as an ordinary torch module whose removed weights
   are exactly zero, with its sparsity statistics.

Configuration reaches a method through its ``Options`` dataclass, passed in; nothing reads globals.
Random streams (initialisation of extra tensors, mask sampling) are ``torch.Generator`` objects
passed in by the caller, so one root seed can derive them all.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from subnetbench.errors import OptionError  # re-exported: the plugin API's error of bad options

MASK_ONLY = "mask-only"
WEIGHT_TRAINING = "weight-training"
FAMILIES = (MASK_ONLY, WEIGHT_TRAINING)
OPTIMIZER_ALGORITHMS = ("sgd", "adam")


# The range of float32, in which networks, optimisers and temperatures compute (torch.finfo): an
# option beyond it overflows to inf in the first step (or raises), and a nonzero one below the
# smallest normal float32 becomes 0 or a subnormal (a temperature of 1e-320 divides by 0).
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_SMALLEST_NORMAL = 1.1754943508222875e-38
FLOAT32_RANGE = (f"a number in float32's normal range, 0 or a magnitude in "
                 f"[{FLOAT32_SMALLEST_NORMAL:.4g}, {FLOAT32_MAX:.4g}]: the networks compute in float32")


def float32_problem(value: Any) -> str | None:
    """Why the number ``value`` cannot be an option of a network that computes in float32 (beyond
    its largest value, or nonzero below its smallest normal one); None when it can, or when
    ``value`` is not a number (a bool, a string: for the option's own check)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "a finite number: inf and nan are refused"
    if abs(value) > FLOAT32_MAX or (value != 0 and abs(value) < FLOAT32_SMALLEST_NORMAL):
        return FLOAT32_RANGE
    return None


def check_option(condition: bool, owner: str, name: str, value: Any, allowed: str) -> None:
    """Raise :class:`OptionError` unless ``condition``; ``owner`` (e.g. ``ASLPOptions``) prefixes
    the message when given. A number outside float32's normal range is refused whatever the
    condition (:func:`float32_problem`): inf and nan mean nothing as options and result files are
    strict JSON; 1e308 overflows in the first optimiser step and 1e-320 rounds to 0 in float32."""
    problem = float32_problem(value)
    if not condition or problem:
        prefix = f"{owner}: " if owner else ""
        extra = f" ({problem})" if problem else ""
        raise OptionError(f"{prefix}option {name}={value!r} is not allowed; expected {allowed}{extra}")


@dataclass(frozen=True)
class NoOptions:
    """Options of a method that has none."""


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


class MaskedLayer:
    """Mixin of the masked layers: the weight used in forward comes from the method.

    ``mask_sampling`` is None (sample masks in training mode, use the deterministic mask in eval
    mode), or True/False to force one of the two, e.g. for stochastic evaluation.
    """

    method: Method
    mask_sampling: bool | None

    def _attach(self, method: Method) -> None:
        self.method = method
        self.mask_sampling = None
        # The random draws of the next sampled forward when drawn ahead of it (noise_drawn_ahead).
        self.drawn_noise: tuple[Tensor, ...] | None = None

    @property
    def sampling(self) -> bool:
        return self.training if self.mask_sampling is None else self.mask_sampling

    def effective_weight(self) -> Tensor:
        if self.sampling:
            return self.method.sampled_weight(self)
        return self.method.deterministic_weight(self)

    def __deepcopy__(self, memo):
        # The method (and the generator it holds) is shared configuration, not layer state.
        memo[id(self.method)] = self.method
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            clone.__dict__[key] = copy.deepcopy(value, memo)
        return clone


class MaskedConv2d(MaskedLayer, nn.Conv2d):
    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


class MaskedLinear(MaskedLayer, nn.Linear):
    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.effective_weight(), self.bias)


def _masked_copy(layer: nn.Module, method: Method) -> MaskedLayer:
    """A masked layer holding the very same parameter tensors as ``layer``."""
    cls = MaskedConv2d if isinstance(layer, nn.Conv2d) else MaskedLinear
    masked = cls.__new__(cls)
    masked.__dict__.update(layer.__dict__)
    masked._attach(method)
    return masked


def prunable_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """All conv and linear layers, in definition order: the layers every method prunes."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            yield name, module


def masked_layers(model: nn.Module) -> Iterator[tuple[str, MaskedLayer]]:
    for name, module in model.named_modules():
        if isinstance(module, MaskedLayer):
            yield name, module


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


@contextlib.contextmanager
def noise_drawn_ahead(model: nn.Module) -> Iterator[None]:
    """The random draws of the next forward of ``model``, drawn now for every sampling masked layer
    in layer order (the order of the forward's own draws: the same numbers), and handed to it.

    A seeded draw inside a compiled forward breaks its graph: drawn ahead, the draws are inputs of
    the graph, and the named, seeded streams give the same numbers as an eager run."""
    layers = [layer for _, layer in masked_layers(model) if layer.sampling]
    for layer in layers:
        layer.drawn_noise = layer.method.draw_noise(layer)
    try:
        yield
    finally:
        for layer in layers:
            layer.drawn_noise = None


def set_mask_sampling(model: nn.Module, sampling: bool | None) -> None:
    """Force masks to be sampled (True), deterministic (False), or follow train/eval (None)."""
    for _, layer in masked_layers(model):
        layer.mask_sampling = sampling


class Method:
    """Base class of every subnetwork method. Subclass it, set ``name``, and register nothing else.

    Class attributes a plugin sets:

    - ``name``: unique lower-case registry name (empty on abstract bases, which are not registered);
    - ``family``: ``"mask-only"`` (weights frozen, a mask is learned) or ``"weight-training"``;
    - ``Options``: a dataclass of the method's options, validated in its ``__post_init__``;
    - ``stochastic``: whether training samples masks (so a sampled evaluation differs from the
      deterministic one).

    What the engine, the speed study and the report need to know of a method, it declares (section
    "declarations" below: :attr:`evaluation_samples`, :meth:`keep_probability`,
    :attr:`fixed_keep_fraction`, :attr:`rescaling`, :attr:`rounds`, :meth:`seed_batch_refusal`,
    :meth:`test_options`); nothing is probed with getattr. :meth:`trainable_tensors` documents which
    per-layer tensors receive updates (and is tested).
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = MASK_ONLY
    Options: ClassVar[type] = NoOptions
    stochastic: ClassVar[bool] = False

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

    # -- 1. preparation ---------------------------------------------------------------------------
    def prepare(self, model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
        """Turn a freshly initialised network into this method's trainable network, in place.

        ``generator`` seeds the method's own extra tensors (scores, random masks); it is a CPU
        generator so that initialisation is the same on every device.
        """
        for name, layer in list(prunable_layers(model)):
            if isinstance(layer, MaskedLayer):
                raise ValueError(f"layer {name!r} is already prepared by {layer.method!r}")
            masked = _masked_copy(layer, self)
            _replace(model, name, masked)
        for _, layer in masked_layers(model):
            trains_weights = self.family == WEIGHT_TRAINING
            layer.weight.requires_grad_(trains_weights)
            if layer.bias is not None:
                layer.bias.requires_grad_(trains_weights)
            self.init_layer(layer, generator)
        self.after_prepare(model, generator)
        return model

    def init_layer(self, layer: MaskedLayer, generator: torch.Generator | None) -> None:
        """Create this method's per-layer tensors (parameters or buffers). Default: none."""

    def after_prepare(self, model: nn.Module, generator: torch.Generator | None) -> None:
        """Whole-network step after every layer is prepared (e.g. global mask allocation)."""

    def trainable_tensors(self) -> frozenset[str]:
        """Names of the per-layer tensors this method trains (``weight``, ``bias``, ``scores``...)."""
        return frozenset({"weight", "bias"}) if self.family == WEIGHT_TRAINING else frozenset()

    def set_sample_generator(self, generator: torch.Generator | None) -> None:
        """The stream masks are sampled from; it must live on the device of the parameters."""
        self.sample_generator = generator

    # -- 2. forward -------------------------------------------------------------------------------
    def draw_noise(self, layer: MaskedLayer) -> tuple[Tensor, ...]:
        """The random draws one sampled forward of ``layer`` takes from :attr:`sample_generator`,
        in order (:meth:`sampled_weight` reads them with :meth:`noise`). Declared apart from the
        forward so that a compiled forward receives them as inputs (:func:`noise_drawn_ahead`).
        Default: none (a forward that draws nothing)."""
        return ()

    def noise(self, layer: MaskedLayer) -> tuple[Tensor, ...]:
        """This forward's draws of ``layer``: those drawn ahead of it, else drawn now."""
        drawn = layer.drawn_noise
        return drawn if drawn is not None else self.draw_noise(layer)

    def keep_mask(self, layer: MaskedLayer) -> Tensor:
        """The deterministic keep/drop decision of each weight (bool tensor of the weight's shape)."""
        return torch.ones_like(layer.weight, dtype=torch.bool)

    def deterministic_scale(self, layer: MaskedLayer) -> Tensor | float:
        """Factor applied to the kept weights of the deterministic (and extracted) layer."""
        return 1.0

    def deterministic_weight(self, layer: MaskedLayer) -> Tensor:
        weight = layer.weight * self.keep_mask(layer).to(layer.weight.dtype)
        scale = self.deterministic_scale(layer)
        return weight if isinstance(scale, float) and scale == 1.0 else weight * scale

    def sampled_weight(self, layer: MaskedLayer) -> Tensor:
        """The weight of a training forward pass. Deterministic methods use the deterministic one."""
        return self.deterministic_weight(layer)

    # -- 3. recipe --------------------------------------------------------------------------------
    def optimizer_specs(self, model: nn.Module) -> list[OptimizerSpec]:
        raise NotImplementedError(f"{type(self).__name__} must define optimizer_specs")

    def begin_round(self, model: nn.Module, round_index: int) -> None:
        """Called before training round ``round_index`` (0-based); the optimiser is rebuilt after."""

    def begin_step(self, model: nn.Module, progress: StepProgress) -> None:
        """Called before the forward pass of each training step (a schedule's temperature or
        budget, a periodic re-randomisation). Default: nothing."""

    def end_step(self, model: nn.Module, progress: StepProgress) -> None:
        """Called after each training step's optimiser steps (a projection of what they moved).
        Default: nothing."""

    # -- declarations: what the engine, the speed study and the report read -----------------------
    @property
    def rounds(self) -> int:
        """Training rounds of the recipe (magnitude pruning trains, prunes, trains again)."""
        return 1

    @property
    def evaluation_samples(self) -> int:
        """Sampled masks whose test accuracies are averaged into ``test_acc`` (the stochastic
        evaluation of a ``stochastic`` method); 1 for a method evaluated deterministically."""
        return 1

    @property
    def sampled_validation(self) -> bool:
        """Whether the recipe's ``validation_masks=sampled`` applies: early stopping and the best
        checkpoint then follow sampled masks. False for a method whose extracted network is not
        what its samples concentrate on (it is then validated on that deterministic network).
        Default: :attr:`stochastic`."""
        return type(self).stochastic

    def keep_probability(self, layer: MaskedLayer) -> Tensor | None:
        """The learned probability of keeping each weight of ``layer``, or None when the method
        learns none (the result file then has no keep-probability histogram)."""
        return None

    @property
    def fixed_keep_fraction(self) -> float | None:
        """The fraction of prunable weights kept, when the method fixes it in advance; None when the
        method learns it. The scaled signed-constant initialisation reads it (1.0 when None)."""
        return None

    @property
    def rescaling(self) -> str | None:
        """The rescaling of the kept weights (the paper's SR axis): ``"smart_rescale"``,
        ``"dynamic_weight_rescale"``, both joined by ``+``, another name of the method's, or None."""
        return None

    def update_passes(self) -> tuple[tuple[str, ...], ...] | None:
        """How a training step updates the optimisers (``OptimizerSpec.label``) on one batch.
        None (the default): one pass (sample, forward, backward) that steps every optimiser.
        Otherwise one pass per entry, each with its own sampled masks, stepping only the optimisers
        it names while the tensors of the others are frozen for it (how PyTorch Lightning 1.x runs
        several optimisers, as the released ASLP code does for smart rescale)."""
        return None

    @classmethod
    def smart_rescale_options(cls) -> dict[str, Any] | None:
        """The option values that add the paper's smart rescale to this method (``NAME+sr`` of the
        speed study), or None when it cannot have one (the default)."""
        return None

    def without_rescaling(self) -> Method | None:
        """The same method with its rescaling (:attr:`rescaling`) turned off, for measuring what
        the rescaling costs per epoch (claim 4 of the paper); None when it has none or cannot."""
        return None

    def single_pass(self) -> Method | None:
        """The same method updated in one pass a batch, when :meth:`update_passes` gives several;
        None otherwise (the default). The measurement of claim 4 times it beside the run, to tell
        the cost of the rescaling's arithmetic from that of the extra passes."""
        return None

    def seed_batch_refusal(self) -> str | None:
        """None when several seeds of this configuration can train together in one process
        (``subnetbench run --seed-batch``), else the reason why not. Seed batching trains one round
        of the masked layers' ``effective_weight``; override to refuse for a reason of your own."""
        if self.rounds != 1:
            return (f"{self.name} trains in {self.rounds} rounds, and seeds trained together share "
                    "one round")
        return None

    @classmethod
    def test_options(cls) -> list[dict[str, Any]]:
        """Small option sets that the common conformance tests (tests/test_conformance.py) run the
        method with, the defaults first; list the variants whose code paths differ."""
        return [{}]

    # -- 4. extraction ----------------------------------------------------------------------------
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
            plain = _plain_layer(layer, weight)
            _replace(extracted, name, plain)
            kept = int(torch.count_nonzero(weight))
            stats.kept += kept
            stats.total += weight.numel()
            stats.layer_kept[name] = kept
            stats.layer_total[name] = weight.numel()
        extracted.eval()
        return extracted, stats


def _plain_layer(layer: MaskedLayer, weight: Tensor) -> nn.Module:
    bias = layer.bias is not None
    if isinstance(layer, MaskedConv2d):
        plain: nn.Module = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                     stride=layer.stride, padding=layer.padding,
                                     dilation=layer.dilation, groups=layer.groups, bias=bias,
                                     padding_mode=layer.padding_mode, device=weight.device,
                                     dtype=weight.dtype)
    else:
        plain = nn.Linear(layer.in_features, layer.out_features, bias=bias, device=weight.device,
                          dtype=weight.dtype)
    plain.weight = nn.Parameter(weight, requires_grad=False)
    if bias:
        plain.bias = nn.Parameter(layer.bias.detach().clone(), requires_grad=False)
    return plain


def count_nonzero_weights(model: nn.Module) -> tuple[int, int]:
    """(nonzero, total) over the weights of every conv and linear layer of ``model``."""
    nonzero = total = 0
    for _, layer in prunable_layers(model):
        nonzero += int(torch.count_nonzero(layer.weight))
        total += layer.weight.numel()
    return nonzero, total


def trainable_tensor_names(model: nn.Module) -> set[str]:
    """The per-layer tensor names (``weight``, ``scores``, ...) that require gradients."""
    return {name.rpartition(".")[2] for name, p in model.named_parameters() if p.requires_grad}


def kept_count(fraction: float, n: int) -> int:
    """How many of ``n`` weights a fraction keeps: round_half_up(fraction * n), computed exactly.

    The product is taken on the decimal value of ``fraction`` (its shortest repr, the number the
    user typed: 0.58 is 58/100), so an exact decimal half rounds up: 0.58 of 25 weights is 14.5,
    which keeps 15, where the float product 0.58 * 25 = 14.499999999999998 would keep 14. A
    fraction computed by the code (ERK densities, compounded pruning rounds) is treated the same
    way, on the decimal that represents its float exactly enough to round-trip. ``n`` may be a
    symbolic size of torch.compile (SymInt): the arithmetic on it is integer only.
    """
    numerator, denominator = Fraction(repr(float(fraction))).as_integer_ratio()
    return (2 * numerator * n + denominator) // (2 * denominator)


SMART_RESCALE_UPDATES = ("alternating", "joint")


@dataclass(frozen=True)
class ScoredMaskOptions:
    """Options shared by the mask-only methods that learn one score per weight."""

    smart_rescale: bool = False  # one learned scalar per layer multiplying the kept weights
    mask_lr: float = 50.0
    mask_momentum: float = 0.9
    mask_weight_decay: float = 0.0
    scale_lr: float = 1e-3
    scale_momentum: float = 0.9
    # With smart rescale, the released ASLP code's two optimisers run as Lightning 1.x runs them:
    # per batch one pass that steps the scores, then one with a fresh sample that steps the scales.
    smart_rescale_update: str = "alternating"  # or "joint": one pass steps both

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_option(isinstance(self.smart_rescale, bool), owner, "smart_rescale",
                     self.smart_rescale, "true or false")
        check_option(self.smart_rescale_update in SMART_RESCALE_UPDATES, owner, "smart_rescale_update",
                     self.smart_rescale_update,
                     f"one of {SMART_RESCALE_UPDATES} (alternating: the released code)")
        for name in ("mask_lr", "scale_lr"):
            value = getattr(self, name)
            check_option(isinstance(value, (int, float)) and value > 0, owner, name, value,
                         "a positive number")
        for name in ("mask_momentum", "scale_momentum"):
            value = getattr(self, name)
            check_option(isinstance(value, (int, float)) and 0 <= value < 1, owner, name, value,
                         "a number in [0, 1)")
        check_option(isinstance(self.mask_weight_decay, (int, float)) and self.mask_weight_decay >= 0,
                     owner, "mask_weight_decay", self.mask_weight_decay, "a number >= 0")


class ScoredMaskMethod(Method):
    """A mask-only method: frozen weights and biases, one trainable score per weight, and the
    optional smart rescale of the paper (section 1.2): w_hat = s * w * keep, s a trainable scalar
    per layer initialised to 1, multiplied into the kept weights at extraction."""

    family = MASK_ONLY
    Options = ScoredMaskOptions

    def initial_scores(self, layer: MaskedLayer, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    def init_layer(self, layer: MaskedLayer, generator: torch.Generator | None) -> None:
        scores = self.initial_scores(layer, generator)
        layer.scores = nn.Parameter(scores.to(device=layer.weight.device, dtype=layer.weight.dtype))
        if self.options.smart_rescale:
            layer.scale = nn.Parameter(torch.ones((), device=layer.weight.device,
                                                  dtype=layer.weight.dtype))

    def trainable_tensors(self) -> frozenset[str]:
        return frozenset({"scores", "scale"} if self.options.smart_rescale else {"scores"})

    def deterministic_scale(self, layer: MaskedLayer) -> Tensor | float:
        return layer.scale if self.options.smart_rescale else 1.0

    @property
    def rescaling(self) -> str | None:
        return "smart_rescale" if self.options.smart_rescale else None

    def update_passes(self) -> tuple[tuple[str, ...], ...] | None:
        if self.options.smart_rescale and self.options.smart_rescale_update == "alternating":
            return (("scores",), ("scale",))
        return None

    def single_pass(self) -> Method | None:
        if self.update_passes() is None:
            return None
        return type(self)(dataclasses.replace(self.options, smart_rescale_update="joint"))

    @classmethod
    def smart_rescale_options(cls) -> dict[str, Any] | None:
        return {"smart_rescale": True}

    def rescaling_options(self) -> dict[str, Any]:
        """The option values that turn this method's rescaling off (:meth:`without_rescaling`
        builds the method without it from them); a subclass with a rescaling of its own adds its
        option, as supermask adds ``dynamic_weight_rescale``."""
        return {"smart_rescale": False}

    def without_rescaling(self) -> Method | None:
        if self.rescaling is None:
            return None
        return type(self)(dataclasses.replace(self.options, **self.rescaling_options()))

    def rescaled(self, layer: MaskedLayer, weight: Tensor) -> Tensor:
        return weight * layer.scale if self.options.smart_rescale else weight

    def optimizer_specs(self, model: nn.Module) -> list[OptimizerSpec]:
        layers = [layer for _, layer in masked_layers(model)]
        o = self.options
        specs = [OptimizerSpec("scores", [layer.scores for layer in layers], "sgd", o.mask_lr,
                               o.mask_momentum, o.mask_weight_decay)]
        if o.smart_rescale:
            specs.append(OptimizerSpec("scale", [layer.scale for layer in layers], "sgd", o.scale_lr,
                                       o.scale_momentum, 0.0))
        return specs


@dataclass(frozen=True)
class WeightTrainingOptions:
    """Optimiser of the methods that train weights (defaults: Frankle and Carbin's Conv-4/6 Adam)."""

    optimizer: str = "adam"
    lr: float = 3e-4
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_option(self.optimizer in OPTIMIZER_ALGORITHMS, owner, "optimizer", self.optimizer,
                     f"one of {OPTIMIZER_ALGORITHMS}")
        check_option(isinstance(self.lr, (int, float)) and self.lr > 0, owner, "lr", self.lr,
                     "a positive number")
        check_option(isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1, owner,
                     "momentum", self.momentum, "a number in [0, 1)")
        check_option(isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0, owner,
                     "weight_decay", self.weight_decay, "a number >= 0")


# Each sampled mask of a stochastic evaluation is one more pass over the whole test set (the
# released code averages 10): beyond this the evaluation alone outlasts any training, and a typo
# (eval_samples=1000000) would look like a hung run.
MAX_EVAL_SAMPLES = 10_000


def check_eval_samples(owner: str, value: Any) -> None:
    check_option(isinstance(value, int) and not isinstance(value, bool)
                 and 1 <= value <= MAX_EVAL_SAMPLES, owner, "eval_samples", value,
                 f"an integer in [1, {MAX_EVAL_SAMPLES}] (sampled masks, each a pass over the test "
                 "set)")


def check_keep_fraction(owner: str, value: Any) -> None:
    check_option(isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1,
                 owner, "keep_fraction", value, "a number in (0, 1] (the fraction of weights KEPT)")


class WeightTrainingMethod(Method):
    """Trains weights and biases (with a fixed mask buffer where the method prunes)."""

    family = WEIGHT_TRAINING
    Options = WeightTrainingOptions

    @property
    def fixed_keep_fraction(self) -> float | None:
        return 1.0

    def optimizer_specs(self, model: nn.Module) -> list[OptimizerSpec]:
        o = self.options
        params = [p for p in model.parameters() if p.requires_grad]
        return [OptimizerSpec("weights", params, o.optimizer, o.lr, o.momentum, o.weight_decay)]


class FixedMaskWeightTrainingMethod(WeightTrainingMethod):
    """Trains weights under a boolean ``mask`` buffer per layer that the method sets (not learned)."""

    def init_layer(self, layer: MaskedLayer, generator: torch.Generator | None) -> None:
        layer.register_buffer("mask", torch.ones_like(layer.weight, dtype=torch.bool))

    def keep_mask(self, layer: MaskedLayer) -> Tensor:
        return layer.mask
