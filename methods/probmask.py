"""ProbMask (Zhou et al., CVPR 2021): keep probabilities under a global budget (docs/methods/probmask.md).

Each weight has a keep probability p in [0, 1] (the trained ``scores``, initialised to 1). A training
forward multiplies the frozen weights by a relaxed Bernoulli(p) sample,
``sigmoid((logit p + L) / tau)`` with L logistic noise, whose temperature tau falls linearly from
``temperature_start`` to ``temperature_end`` over the round's epochs. After every optimiser step
the probabilities of all layers together are projected onto {p in [0, 1]^n : sum p <= budget}
(``p <- clamp(p - v, 0, 1)``, v >= 0 the smallest shift meeting the budget), so the expected number
of kept weights is at most the budget; the budget falls from every weight to ``keep_fraction`` of
them along the released code's cubic ramp. The extracted network keeps the ``keep_fraction`` of
weights with the highest p, over all layers together.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from subnetbench.methods.base import MASK_ONLY, Method, MethodTraits, OptimizerSpec, StepProgress
from subnetbench.methods.edge_popup import top_k_mask
from subnetbench.methods.layers import MaskedLayer, masked_layers
from subnetbench.methods.options import check_eval_samples, check_keep_fraction, check_option

_EPS = 1e-20  # the released code's guard of log(p) and log(1 - p)
_BISECTION_STEPS = 60  # halvings of the shift's bracket (float64) before the exact linear solve


def relaxed_keep(probabilities: Tensor, uniform_a: Tensor, uniform_b: Tensor,
                 temperature: Tensor | float) -> Tensor:
    """The relaxed Bernoulli(p) sample of the released code: sigmoid((logit p + L) / tau), with
    L = log(-log u_b) - log(-log u_a) logistic noise made of two uniforms."""
    p = probabilities.clamp(0, 1)
    logit = torch.log(p + _EPS) - torch.log(1 - p + _EPS)
    noise = -torch.log(torch.log(uniform_a + _EPS) / torch.log(uniform_b + _EPS) + _EPS)
    return torch.sigmoid((logit + noise) / temperature)


def budget_shift(values: Tensor, budget: float) -> Tensor:
    """The shift v >= 0 with sum(clamp(values - v, 0, 1)) == budget, or 0 when clamping alone
    meets the budget: the Euclidean projection onto {p in [0, 1]^n : sum p <= budget} is
    clamp(values - v, 0, 1). Bisection brackets v, then the sum, linear in v between the
    breakpoints, is solved exactly on the bracket's set of partly kept values."""
    x = values.detach().flatten().double()
    target = torch.tensor(float(budget), dtype=x.dtype, device=x.device)
    low, high = torch.zeros_like(target), x.max().clamp(min=0)
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2
        over = (x - middle).clamp(0, 1).sum() > target
        low, high = torch.where(over, middle, low), torch.where(over, high, middle)
    partial = (x > high) & (x < high + 1)
    full = (x >= high + 1).sum()
    count = partial.sum()
    exact = (torch.where(partial, x, 0).sum() + full - target) / count.clamp(min=1)
    shift = torch.where(count > 0, exact.clamp(low, high), high)
    return torch.where((x.clamp(0, 1).sum() > target), shift, torch.zeros_like(shift))


def keep_budget(progress: StepProgress, keep_fraction: float, ramp_start: float, ramp_end: float,
                initial_keep: float) -> float:
    """The fraction kept in expectation during ``progress``'s epoch: the released code's cubic ramp,
    ``initial_keep`` before epoch int(ramp_start * E), ``keep_fraction`` from int(ramp_end * E),
    ``target + (initial - target) * (1 - (e - s) / (t - s)) ** 3`` between."""
    start, end = int(ramp_start * progress.epochs), int(ramp_end * progress.epochs)
    epoch = progress.epoch
    if epoch < start:
        return initial_keep
    if epoch >= end:
        return keep_fraction
    return keep_fraction + (initial_keep - keep_fraction) * (1 - (epoch - start) / (end - start)) ** 3


def annealed_temperature(progress: StepProgress, start: float, end: float) -> float:
    """The released code's linear annealing per epoch: tau = end + (start - end) * (1 - e / E)."""
    return end + (start - end) * (1 - progress.epoch / progress.epochs)


@dataclass(frozen=True)
class ProbMaskOptions:
    keep_fraction: float = 0.5
    lr: float = 6e-3  # Adam on the probabilities (the released CIFAR configurations)
    weight_decay: float = 0.0
    temperature_start: float = 1.0
    temperature_end: float = 0.03
    ramp: bool = True  # the released code's budget ramp (its default ``iterative``)
    # Fractions of the round's epochs (the code's ts = 0.16 and te = 0.6). The code holds every weight
    # until ts while it trains the weights; with frozen weights p = 1 has no gradient, so the ramp
    # starts at once here (docs/methods/probmask.md).
    ramp_start: float = 0.0
    ramp_end: float = 0.6
    initial_keep: float = 1.0  # the budget before the ramp (the code's pr_start)
    initial_probability: float = 1.0  # every p starts here (the code's score_init_constant)
    eval_samples: int = 10

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_keep_fraction(owner, self.keep_fraction)
        for name in ("lr", "temperature_start", "temperature_end"):
            value = getattr(self, name)
            check_option(isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0,
                         owner, name, value, "a positive number")
        check_option(isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0, owner,
                     "weight_decay", self.weight_decay, "a number >= 0")
        check_option(isinstance(self.ramp, bool), owner, "ramp", self.ramp, "true or false")
        check_option(isinstance(self.ramp_start, (int, float)) and 0 <= self.ramp_start < 1, owner,
                     "ramp_start", self.ramp_start, "a fraction of the epochs in [0, 1)")
        check_option(isinstance(self.ramp_end, (int, float)) and self.ramp_start < self.ramp_end <= 1,
                     owner, "ramp_end", self.ramp_end, "a fraction of the epochs in (ramp_start, 1]")
        check_option(isinstance(self.initial_keep, (int, float)) and
                     self.keep_fraction <= self.initial_keep <= 1, owner, "initial_keep",
                     self.initial_keep, "a number in [keep_fraction, 1]")
        check_option(isinstance(self.initial_probability, (int, float)) and
                     0 <= self.initial_probability <= 1, owner, "initial_probability",
                     self.initial_probability, "a number in [0, 1]")
        check_eval_samples(owner, self.eval_samples)


class ProbMask(Method):
    """Trains ``scores`` (the keep probabilities) with Adam; weights and biases stay frozen."""

    name = "probmask"
    Options = ProbMaskOptions

    def init_layer(self, layer: MaskedLayer, generator: torch.Generator | None) -> None:
        layer.scores = nn.Parameter(torch.full_like(layer.weight, self.options.initial_probability))
        # A tensor (not a Python float) so that a compiled forward reads it as an input.
        layer.register_buffer("temperature", torch.tensor(float(self.options.temperature_start),
                                                          device=layer.weight.device,
                                                          dtype=layer.weight.dtype))

    def traits(self) -> MethodTraits:
        # Not sampled_validation: the extracted network is the global top-k of p, which samples at a
        # budget above the target (the ramp) or a high temperature do not resemble, so the best
        # checkpoint and early stopping follow the network that is extracted.
        return MethodTraits(family=MASK_ONLY, trainable_tensors=frozenset({"scores"}), stochastic=True,
                            evaluation_samples=self.options.eval_samples,
                            fixed_keep_fraction=self.options.keep_fraction,
                            test_options=({}, {"ramp": False, "keep_fraction": 0.3}))

    def optimizer_specs(self, model: nn.Module) -> list[OptimizerSpec]:
        scores = [layer.scores for _, layer in masked_layers(model)]
        return [OptimizerSpec("scores", scores, "adam", self.options.lr, 0.0, self.options.weight_decay)]

    # -- masks --------------------------------------------------------------------------------------
    def after_prepare(self, model: nn.Module, generator: torch.Generator | None) -> None:
        # The extracted mask ranks p over the whole network, so each layer knows its peers (a
        # plain list: no state-dict entry; a deep copy of the network copies it consistently).
        layers = [layer for _, layer in masked_layers(model)]
        for layer in layers:
            layer.__dict__["network_layers"] = layers

    def keep_mask(self, layer: MaskedLayer) -> Tensor:
        """The top ``keep_fraction`` of p over all layers together, this layer's share of it."""
        peers = layer.__dict__["network_layers"]
        flat = torch.cat([peer.scores.detach().flatten() for peer in peers])
        keep = top_k_mask(flat, self.options.keep_fraction)
        start = 0
        for peer in peers:
            if peer is layer:
                return keep[start:start + layer.scores.numel()].view_as(layer.scores)
            start += peer.scores.numel()
        raise ValueError("this layer is not among the layers ProbMask prepared together")

    def draw_noise(self, layer: MaskedLayer) -> tuple[Tensor, ...]:
        return tuple(torch.rand(layer.scores.shape, generator=self.sample_generator,
                                device=layer.scores.device, dtype=layer.scores.dtype)
                     for _ in range(2))

    def sampled_weight(self, layer: MaskedLayer) -> Tensor:
        """Training: the relaxed sample at the current temperature. Evaluation on sampled masks:
        its zero-temperature limit from the same draws, a hard Bernoulli(p) sample (the released
        code's discrete evaluation)."""
        uniform_a, uniform_b = self.noise(layer)
        if layer.training:
            return layer.weight * relaxed_keep(layer.scores, uniform_a, uniform_b, layer.temperature)
        hard = relaxed_keep(layer.scores, uniform_a, uniform_b, 1.0) > 0.5
        return layer.weight * hard.to(layer.weight.dtype)

    # -- schedule and projection ------------------------------------------------------------------
    def budget(self, progress: StepProgress) -> float:
        o = self.options
        if not o.ramp:
            return o.keep_fraction
        return keep_budget(progress, o.keep_fraction, o.ramp_start, o.ramp_end, o.initial_keep)

    @torch.no_grad()
    def begin_step(self, model: nn.Module, progress: StepProgress) -> None:
        o = self.options
        temperature = annealed_temperature(progress, o.temperature_start, o.temperature_end)
        for _, layer in masked_layers(model):
            layer.temperature.fill_(temperature)

    @torch.no_grad()
    def end_step(self, model: nn.Module, progress: StepProgress) -> None:
        self.project(model, self.budget(progress))

    @torch.no_grad()
    def project(self, model: nn.Module, keep: float) -> None:
        """p <- clamp(p - v, 0, 1) over all layers, v the budget's shift (:func:`budget_shift`)."""
        layers = [layer for _, layer in masked_layers(model)]
        flat = torch.cat([layer.scores.flatten() for layer in layers])
        shift = budget_shift(flat, keep * flat.numel()).to(flat.dtype)
        for layer in layers:
            layer.scores.sub_(shift).clamp_(0, 1)
