"""Supermask (Zhou et al. 2019; docs/methods.md).

A score m per weight; keep ~ Bernoulli(sigmoid(m)), straight-through through the sigmoid (forward is
the 0/1 sample, backward is d sigmoid(m)). Optional dynamic weight rescaling (DWR) multiplies the
layer's masked weights by (number of weights) / (number kept in this sample). Extraction keeps
{m >= 0}, i.e. sigmoid(m) >= 0.5; with DWR the extracted kept weights carry the factor of that mask.
The stochastic evaluation (the ASLP code's) averages the accuracy over ``eval_samples`` masks.

``dwr_gradient``: both official codes compute the factor n / sum(sample) on the straight-through
sample, so the factor itself carries a gradient to every score (``straight_through``, the
default, docs/released-code.md); ``detached`` makes it a constant of the backward pass.
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


class BernoulliStraightThrough(torch.autograd.Function):
    """Forward 1[u < sigmoid(m)]; backward grad * sigmoid'(m)."""

    @staticmethod
    def forward(ctx, scores: Tensor, uniform: Tensor) -> Tensor:
        p = torch.sigmoid(scores)
        ctx.save_for_backward(p)
        return (uniform < p).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        p, = ctx.saved_tensors
        return grad * p * (1 - p), None


DWR_GRADIENTS = ("straight_through", "detached")


def dwr_factor(keep: Tensor, differentiable: bool = False) -> Tensor:
    """(number of weights) / (number kept): differentiated through the sample ``keep`` (a
    straight-through sample: its backward is that of the keep probabilities), or a constant of the
    backward pass.

    A sample that keeps nothing has every masked weight at zero whatever the factor; the factor is
    then defined as 1 so that it stays finite (no inf or nan reaches the gradients).
    """
    kept = keep.sum() if differentiable else keep.detach().sum()
    return torch.where(kept > 0, keep.numel() / kept.clamp(min=1), torch.ones_like(kept))


@dataclass(frozen=True)
class SupermaskOptions(ScoredMaskOptions):
    dynamic_weight_rescale: bool = False
    eval_samples: int = 10
    dwr_gradient: str = "straight_through"  # the official codes' differentiable factor

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        check_option(isinstance(self.dynamic_weight_rescale, bool), owner, "dynamic_weight_rescale",
                     self.dynamic_weight_rescale, "true or false")
        check_eval_samples(owner, self.eval_samples)
        check_option(self.dwr_gradient in DWR_GRADIENTS, owner, "dwr_gradient", self.dwr_gradient,
                     f"one of {DWR_GRADIENTS} (straight_through: the official codes)")


class Supermask(ScoredMaskMethod):
    """Trains ``scores`` (and ``scale`` if smart_rescale is also set)."""

    name = "supermask"
    Options = SupermaskOptions

    def initial_scores(self, layer: MaskedLayer, generator: torch.Generator | None) -> Tensor:
        return torch.zeros_like(layer.weight)  # P(keep) = 0.5, as ASLP's logits

    def keep_probability(self, layer: MaskedLayer) -> Tensor:
        return torch.sigmoid(layer.scores)

    def traits(self) -> MethodTraits:
        inherited = super().traits()
        names = ["dynamic_weight_rescale"] if self.options.dynamic_weight_rescale else []
        names += [inherited.rescaling] if inherited.rescaling else []
        return dataclasses.replace(
            inherited, stochastic=True, sampled_validation=True,
            evaluation_samples=self.options.eval_samples, rescaling="+".join(names) or None,
            test_options=({}, {"smart_rescale": True}, {"dynamic_weight_rescale": True},
                          {"dynamic_weight_rescale": True, "dwr_gradient": "detached"},
                          {"dynamic_weight_rescale": True, "smart_rescale": True}))

    def keep_mask(self, layer: MaskedLayer) -> Tensor:
        return layer.scores >= 0

    def _dwr(self, keep: Tensor) -> Tensor | float:
        if not self.options.dynamic_weight_rescale:
            return 1.0
        return dwr_factor(keep, differentiable=self.options.dwr_gradient == "straight_through")

    def deterministic_scale(self, layer: MaskedLayer) -> Tensor | float:
        dwr = self._dwr(self.keep_mask(layer).to(layer.weight.dtype))
        return dwr * super().deterministic_scale(layer)

    def draw_noise(self, layer: MaskedLayer) -> tuple[Tensor, ...]:
        scores = layer.scores
        return (torch.rand(scores.shape, generator=self.sample_generator, device=scores.device,
                           dtype=scores.dtype),)

    def sampled_weight(self, layer: MaskedLayer) -> Tensor:
        uniform, = self.noise(layer)
        keep = BernoulliStraightThrough.apply(layer.scores, uniform)
        return self.rescaled(layer, layer.weight * keep * self._dwr(keep))
