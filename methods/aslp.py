"""ASLP: the Gumbel-Softmax subnetwork extraction of Dupont et al. (docs/methods.md).

Each weight w has a mask logit m (initialised to 0). The two categories (keep, drop) have logits
(m, 0), so P(keep) = sigmoid(m). Training draws a hard Gumbel-Softmax sample per weight and forward
pass (value exactly 0 or 1; gradient of the relaxed sample, straight-through). Extraction keeps
exactly {m >= 0}. Weights and biases stay frozen.

Two estimators compute the same thing:

- ``logistic`` (default): keep = 1[m + L > 0], L = log U - log(1 - U), relaxed sample
  sigmoid((m + L) / tau): one uniform draw per weight;
- ``gumbel_pair``: the official two-logit form, softmax over stacked (m + g1, 0 + g2) / tau with two
  Gumbel draws per weight. With L = g1 - g2 the two agree exactly; the property tests prove it in
  distribution and in gradient.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from subnetbench.methods.base import MethodTraits
from subnetbench.methods.layers import MaskedLayer
from subnetbench.methods.options import check_eval_samples, check_option
from subnetbench.methods.scored import ScoredMaskMethod, ScoredMaskOptions

ESTIMATORS = ("logistic", "gumbel_pair")
_TINY = 1e-20


class LogisticStraightThrough(torch.autograd.Function):
    """Hard binary concrete sample: forward 1[(m + noise) > 0], backward d sigmoid((m + noise)/tau)."""

    @staticmethod
    def forward(ctx, logits: Tensor, noise: Tensor, temperature: float) -> Tensor:
        z = logits + noise
        ctx.save_for_backward(torch.sigmoid(z / temperature))
        ctx.temperature = temperature
        return (z > 0).to(logits.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        soft, = ctx.saved_tensors
        return grad * soft * (1 - soft) / ctx.temperature, None, None


def uniform_draws(count: int, like: Tensor, generator: torch.Generator | None) -> tuple[Tensor, ...]:
    """``count`` uniform draws of the shape, device and dtype of ``like``, in order."""
    return tuple(torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
                 for _ in range(count))


def logistic_from_uniform(u: Tensor) -> Tensor:
    """L = log U - log(1 - U): the difference of two independent standard Gumbel variables."""
    u = u.clamp(_TINY, 1 - 1e-7)
    return torch.log(u) - torch.log1p(-u)


def gumbel_from_uniform(u: Tensor) -> Tensor:
    return -torch.log(-torch.log(u.clamp(_TINY, 1 - 1e-7)))


def logistic_noise(shape: torch.Size, generator: torch.Generator | None, device, dtype) -> Tensor:
    return logistic_from_uniform(torch.rand(shape, generator=generator, device=device, dtype=dtype))


def gumbel_noise(shape: torch.Size, generator: torch.Generator | None, device, dtype) -> Tensor:
    return gumbel_from_uniform(torch.rand(shape, generator=generator, device=device, dtype=dtype))


def binary_concrete(logits: Tensor, noise: Tensor, temperature: float = 1.0,
                    hard: bool = True) -> Tensor:
    """Keep sample from logistic noise; hard: exact 0/1 with the straight-through gradient."""
    if hard:
        return LogisticStraightThrough.apply(logits, noise, temperature)
    return torch.sigmoid((logits + noise) / temperature)


def two_logit_gumbel_softmax(logits: Tensor, gumbel_keep: Tensor, gumbel_drop: Tensor,
                             temperature: float = 1.0, hard: bool = True) -> Tensor:
    """The official form: Gumbel-Softmax over stacked (keep, drop) logits (m, 0); returns keep.

    Same arithmetic as ``torch.nn.functional.gumbel_softmax`` on the stacked logits, with the
    Gumbel draws passed in (so they can be seeded, and coupled to the logistic form in tests).
    """
    stacked = torch.stack([logits + gumbel_keep, torch.zeros_like(logits) + gumbel_drop], dim=-1)
    soft = torch.softmax(stacked / temperature, dim=-1)[..., 0]
    if not hard:
        return soft
    keep = (stacked[..., 0] >= stacked[..., 1]).to(logits.dtype)  # argmax picks index 0 on ties
    return keep - soft.detach() + soft


@dataclass(frozen=True)
class ASLPOptions(ScoredMaskOptions):
    temperature: float = 1.0
    hard: bool = True  # False trains with the relaxed (soft) mask in the forward pass
    estimator: str = "logistic"
    eval_samples: int = 10  # sampled masks averaged for the stochastic test accuracy

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        check_option(isinstance(self.temperature, (int, float)) and self.temperature > 0, owner,
                     "temperature", self.temperature, "a positive number")
        check_option(isinstance(self.hard, bool), owner, "hard", self.hard, "true or false")
        check_option(self.estimator in ESTIMATORS, owner, "estimator", self.estimator,
                     f"one of {ESTIMATORS}")
        check_eval_samples(owner, self.eval_samples)


class ASLP(ScoredMaskMethod):
    """Arbitrarily shifted log parametrisation with a hard Gumbel-Softmax; trains ``scores`` (the
    mask logits m) and, with smart rescale, ``scale``."""

    name = "aslp"
    Options = ASLPOptions

    def initial_scores(self, layer: MaskedLayer, generator: torch.Generator | None) -> Tensor:
        return torch.zeros_like(layer.weight)

    def keep_probability(self, layer: MaskedLayer) -> Tensor:
        return torch.sigmoid(layer.scores)

    def traits(self) -> MethodTraits:
        return dataclasses.replace(
            super().traits(), stochastic=True, sampled_validation=True,
            evaluation_samples=self.options.eval_samples,
            test_options=({}, {"smart_rescale": True},
                          {"smart_rescale": True, "smart_rescale_update": "joint"},
                          {"estimator": "gumbel_pair"}))

    def keep_mask(self, layer: MaskedLayer) -> Tensor:
        return layer.scores >= 0

    def draw_noise(self, layer: MaskedLayer) -> tuple[Tensor, ...]:
        return uniform_draws(2 if self.options.estimator == "gumbel_pair" else 1, layer.scores,
                             self.sample_generator)

    def sample_keep(self, scores: Tensor, uniforms: tuple[Tensor, ...] | None = None) -> Tensor:
        """A keep sample of ``scores`` from the uniform draws of :meth:`draw_noise` (None: drawn
        now from the sample generator)."""
        o = self.options
        if uniforms is None:
            uniforms = uniform_draws(2 if o.estimator == "gumbel_pair" else 1, scores,
                                     self.sample_generator)
        if o.estimator == "gumbel_pair":
            keep_u, drop_u = uniforms
            return two_logit_gumbel_softmax(scores, gumbel_from_uniform(keep_u),
                                            gumbel_from_uniform(drop_u), o.temperature, o.hard)
        return binary_concrete(scores, logistic_from_uniform(uniforms[0]), o.temperature, o.hard)

    def sampled_weight(self, layer: MaskedLayer) -> Tensor:
        keep = self.sample_keep(layer.scores, self.noise(layer))
        return self.rescaled(layer, layer.weight * keep)
