"""biprop (Diffenderfer and Kailkhura, ICLR 2021): multi-prize tickets, pruned and binarised random
weights (docs/methods/biprop.md).

An edge-popup mask (the top ``keep_fraction`` of |score| per layer, straight-through) over binarised
frozen weights: a kept weight w becomes ``alpha * sign(w)``, with the layer's gain
``alpha = sum(|w| * mask) / (number kept)``, the mean magnitude of the kept weights (the L1-optimal
scale of a binary approximation of them). As in the released code, the gain is a constant of the
backward pass, and the scores receive the gradient the kept weight w itself would give them
(``grad * sign(w) * |w|``), as edge-popup's do; the mask is binary weights' MPT-1/32.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from subnetbench.methods.base import MethodTraits
from subnetbench.methods.edge_popup import SELECTIONS, EdgePopup, EdgePopupOptions
from subnetbench.methods.layers import MaskedLayer


def binary_gain(weight: Tensor, keep: Tensor) -> Tensor:
    """alpha = ||w * mask||_1 / (number kept): the mean magnitude of the kept weights (0 when
    nothing is kept, where every weight is removed anyway)."""
    kept = keep.sum()
    return (weight.abs() * keep).sum() / kept.clamp(min=1)


class BinarisedMaskStraightThrough(torch.autograd.Function):
    """Forward: alpha * mask, the factor of sign(w) in the binarised layer. Backward: the incoming
    gradient times |w| (the released code's), to the ranked scores."""

    @staticmethod
    def forward(ctx, ranked: Tensor, weight: Tensor, keep_fraction: float, selection: str) -> Tensor:
        keep = SELECTIONS[selection](ranked, keep_fraction).to(weight.dtype)
        magnitude = weight.detach().abs()
        ctx.save_for_backward(magnitude)
        return binary_gain(weight.detach(), keep) * keep

    @staticmethod
    def backward(ctx, grad: Tensor):
        magnitude, = ctx.saved_tensors
        return grad * magnitude, None, None, None


@dataclass(frozen=True)
class BipropOptions(EdgePopupOptions):
    """The released CIFAR-10 Conv configurations: SGD 0.1, momentum 0.9, weight decay 1e-4 (those
    of edge-popup), layerwise top-k of |score| (the code's own sort)."""


class Biprop(EdgePopup):
    """Trains ``scores`` (and ``scale`` with smart_rescale); the weights stay frozen and are used
    through their signs."""

    name = "biprop"
    Options = BipropOptions

    def traits(self) -> MethodTraits:
        return dataclasses.replace(super().traits(), test_options=(
            {}, {"keep_fraction": 0.3, "selection": "percentile"}))

    def gain(self, layer: MaskedLayer) -> Tensor:
        return binary_gain(layer.weight.detach(), self.keep_mask(layer).to(layer.weight.dtype))

    def deterministic_weight(self, layer: MaskedLayer) -> Tensor:
        o = self.options
        factor = BinarisedMaskStraightThrough.apply(self.ranked(layer.scores), layer.weight,
                                                    o.keep_fraction, o.selection)
        return self.rescaled(layer, torch.sign(layer.weight) * factor)
