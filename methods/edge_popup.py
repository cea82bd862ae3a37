"""Edge-popup (Ramanujan et al. 2020; PAPER.md section 2.2).

A score per weight (Kaiming uniform, a = sqrt(5)); every forward pass keeps, in each layer, the
``keep_fraction`` of weights with the largest |score| (exactly kept_count(keep_fraction, n) of
them; ties go to the lower flat index); the backward pass hands the incoming gradient unchanged to
|score| (straight-through), so a score receives sign(score) times it, as in the official
``GetSubnet.apply(scores.abs(), k)``. ``keep_fraction`` is the fraction KEPT (0.9 keeps 90%),
never the fraction removed: the official ``prune_rate`` was read both ways (hidden-networks
issue #9).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from subnetbench.methods.base import (
    MaskedLayer,
    ScoredMaskMethod,
    ScoredMaskOptions,
    check_keep_fraction,
    kept_count,
)


def top_k_mask(scores: Tensor, keep_fraction: float) -> Tensor:
    """Bool mask of the kept_count(keep_fraction, n) largest |scores|; ties to the lower index.

    A selection (k-th value) rather than a sort: linear time, and no host synchronisation.
    """
    flat = scores.detach().abs().flatten()
    n = flat.numel()
    k = kept_count(keep_fraction, n)
    if k >= n:
        return torch.ones_like(scores, dtype=torch.bool)
    if k == 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    threshold = torch.kthvalue(flat, n - k + 1).values  # the k-th largest
    above = flat > threshold
    tied = flat == threshold
    missing = k - above.sum()
    mask = above | (tied & (torch.cumsum(tied, 0) <= missing))
    return mask.view_as(scores)


class TopKStraightThrough(torch.autograd.Function):
    """Forward: the 0/1 top-|score| mask. Backward: the gradient, unchanged."""

    @staticmethod
    def forward(ctx, scores: Tensor, keep_fraction: float) -> Tensor:
        return top_k_mask(scores, keep_fraction).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


@dataclass(frozen=True)
class EdgePopupOptions(ScoredMaskOptions):
    keep_fraction: float = 0.5
    # The edge-popup recipe's optimiser (SGD 0.1, momentum 0.9, weight decay 1e-4).
    mask_lr: float = 0.1
    mask_weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        check_keep_fraction(type(self).__name__, self.keep_fraction)


class EdgePopup(ScoredMaskMethod):
    """Trains ``scores`` (and ``scale`` with smart_rescale)."""

    name = "edge_popup"
    Options = EdgePopupOptions

    def initial_scores(self, layer: MaskedLayer, generator: torch.Generator | None) -> Tensor:
        scores = torch.empty(layer.weight.shape, dtype=layer.weight.dtype)
        nn.init.kaiming_uniform_(scores, a=math.sqrt(5), generator=generator)
        return scores

    def keep_mask(self, layer: MaskedLayer) -> Tensor:
        return top_k_mask(layer.scores, self.options.keep_fraction)

    @property
    def fixed_keep_fraction(self) -> float | None:
        return self.options.keep_fraction

    @classmethod
    def test_options(cls) -> list[dict]:
        return [{}, {"smart_rescale": True}, {"keep_fraction": 0.9}]

    def deterministic_weight(self, layer: MaskedLayer) -> Tensor:
        # The forward pass is deterministic but must route gradients to the scores in training.
        # abs() stays outside the straight-through function, as in the official code: the mask
        # ranks |score|, so the chain rule through abs() must give a negative score the gradient's
        # opposite sign (without it, training pushes negative scores the wrong way and fails).
        keep = TopKStraightThrough.apply(layer.scores.abs(), self.options.keep_fraction)
        return self.rescaled(layer, layer.weight * keep)
