"""A minimal subnetbench method: keep the weights whose learned score exceeds a threshold.

Mask-only: weights and biases stay frozen. Each weight has a trainable score, drawn uniformly in
[-init_range, init_range]; a weight is kept when its score is above ``threshold``. The backward pass
hands the mask's gradient to the scores unchanged (straight-through), so the pruning rate is learned.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from subnetbench.methods.base import MethodTraits
from subnetbench.methods.layers import MaskedLayer
from subnetbench.methods.options import check_option
from subnetbench.methods.scored import ScoredMaskMethod, ScoredMaskOptions


class ThresholdStraightThrough(torch.autograd.Function):
    """Forward: 1[score > threshold]. Backward: the incoming gradient, unchanged."""

    @staticmethod
    def forward(ctx, scores: Tensor, threshold: float) -> Tensor:
        return (scores > threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


@dataclass(frozen=True)
class ThresholdOptions(ScoredMaskOptions):
    threshold: float = 0.0
    init_range: float = 0.01
    mask_lr: float = 0.1  # overrides the ASLP default of 50

    def __post_init__(self) -> None:
        super().__post_init__()  # validates smart_rescale, the learning rates and momenta
        owner = type(self).__name__
        check_option(isinstance(self.threshold, (int, float)), owner, "threshold",
                     self.threshold, "a number")
        check_option(isinstance(self.init_range, (int, float)) and self.init_range > 0, owner,
                     "init_range", self.init_range, "a positive number")


class ThresholdMask(ScoredMaskMethod):
    """Trains ``scores`` (and ``scale`` with smart_rescale)."""

    name = "threshold"
    Options = ThresholdOptions

    def traits(self) -> MethodTraits:
        """The base's traits (mask-only, ``scores``, smart rescale), plus the option sets of the
        conformance suite (every trait: docs/plugins.md, section 2)."""
        return dataclasses.replace(super().traits(), test_options=({}, {"smart_rescale": True}))

    def initial_scores(self, layer: MaskedLayer, generator: torch.Generator | None) -> Tensor:
        uniform = torch.rand(layer.weight.shape, generator=generator, dtype=layer.weight.dtype)
        return (2 * uniform - 1) * self.options.init_range

    def keep_mask(self, layer: MaskedLayer) -> Tensor:
        return layer.scores > self.options.threshold

    def deterministic_weight(self, layer: MaskedLayer) -> Tensor:
        keep = ThresholdStraightThrough.apply(layer.scores, self.options.threshold)
        return self.rescaled(layer, layer.weight * keep)
