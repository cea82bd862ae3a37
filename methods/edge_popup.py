"""Edge-popup (Ramanujan et al. 2020; docs/methods.md).

A score per weight (Kaiming uniform, a = sqrt(5)); every forward pass keeps, in each layer, the
``keep_fraction`` of weights whose scores rank highest; the backward pass hands the incoming gradient
unchanged to the ranked values (straight-through). ``keep_fraction`` is the fraction KEPT (0.9 keeps
90%), never the fraction removed: the official ``prune_rate`` was read both ways (hidden-networks
issue #9).

Two codes define the rule, and both are offered (docs/released-code.md):

- the hidden-networks code (the default): rank |score| (``score_ranking=magnitude``) and keep exactly
  kept_count(keep_fraction, n) of them (``selection=top_k``; ties go to the lower flat index). The
  gradient reaches a score through abs(), so it receives sign(score) times it, as in the official
  ``GetSubnet.apply(scores.abs(), k)``;
- the ASLP repository's own edge-popup: a ``percentile`` threshold at the fraction removed,
  ``k = 1 + round(0.01 * q * (n - 1))`` with q = 100 * (1 - keep_fraction) and Python's round,
  keeping every value at or above the k-th smallest (so ties are all kept), trained with ASLP's
  mask optimiser (``mask_lr=50``, ``mask_weight_decay=0``). Its file ranks ``mask.abs()`` too;
  ``score_ranking=raw`` ranks the signed scores instead.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from subnetbench.methods.base import MethodTraits
from subnetbench.methods.layers import MaskedLayer, kept_count
from subnetbench.methods.options import check_keep_fraction, check_option
from subnetbench.methods.scored import ScoredMaskMethod, ScoredMaskOptions


def top_k_mask(values: Tensor, keep_fraction: float) -> Tensor:
    """Bool mask of the kept_count(keep_fraction, n) largest ``values``; ties to the lower index.

    A selection (k-th value) rather than a sort: linear time, and no host synchronisation.
    """
    flat = values.detach().flatten()
    n = flat.numel()
    k = kept_count(keep_fraction, n)
    if k >= n:
        return torch.ones_like(values, dtype=torch.bool)
    if k == 0:
        return torch.zeros_like(values, dtype=torch.bool)
    threshold = torch.kthvalue(flat, n - k + 1).values  # the k-th largest
    above = flat > threshold
    tied = flat == threshold
    missing = k - above.sum()
    mask = above | (tied & (torch.cumsum(tied, 0) <= missing))
    return mask.view_as(values)


def percentile_mask(values: Tensor, keep_fraction: float) -> Tensor:
    """The ASLP repository's rule: keep the values at or above its ``percentile`` of the fraction
    removed (the k-th smallest value, k = 1 + round(0.01 * q * (n - 1)), q = 100 * removed)."""
    flat = values.detach().flatten()
    removed_percent = (1 - keep_fraction) * 100
    k = 1 + round(0.01 * float(removed_percent) * (flat.numel() - 1))
    return values.detach() >= flat.kthvalue(k).values


SELECTIONS = {"top_k": top_k_mask, "percentile": percentile_mask}
SCORE_RANKINGS = ("magnitude", "raw")


class SubnetStraightThrough(torch.autograd.Function):
    """Forward: the 0/1 mask a selection rule makes of the ranked values. Backward: the gradient,
    unchanged."""

    @staticmethod
    def forward(ctx, values: Tensor, keep_fraction: float, selection: str = "top_k") -> Tensor:
        return SELECTIONS[selection](values, keep_fraction).to(values.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None, None


@dataclass(frozen=True)
class EdgePopupOptions(ScoredMaskOptions):
    keep_fraction: float = 0.5
    # The edge-popup recipe's optimiser (SGD 0.1, momentum 0.9, weight decay 1e-4).
    mask_lr: float = 0.1
    mask_weight_decay: float = 1e-4
    score_ranking: str = "magnitude"  # rank |score| (both codes); "raw" ranks the signed score
    selection: str = "top_k"  # hidden-networks; "percentile" is the ASLP repository's rule

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        check_keep_fraction(owner, self.keep_fraction)
        check_option(self.score_ranking in SCORE_RANKINGS, owner, "score_ranking",
                     self.score_ranking, f"one of {SCORE_RANKINGS}")
        check_option(self.selection in SELECTIONS, owner, "selection", self.selection,
                     f"one of {tuple(SELECTIONS)} (top_k: hidden-networks; percentile: the ASLP "
                     "repository)")


class EdgePopup(ScoredMaskMethod):
    """Trains ``scores`` (and ``scale`` with smart_rescale)."""

    name = "edge_popup"
    Options = EdgePopupOptions

    def initial_scores(self, layer: MaskedLayer, generator: torch.Generator | None) -> Tensor:
        scores = torch.empty(layer.weight.shape, dtype=layer.weight.dtype)
        nn.init.kaiming_uniform_(scores, a=math.sqrt(5), generator=generator)
        return scores

    def ranked(self, scores: Tensor) -> Tensor:
        """What the selection ranks: |score|, or the score itself (``score_ranking=raw``)."""
        return scores.abs() if self.options.score_ranking == "magnitude" else scores

    def keep_mask(self, layer: MaskedLayer) -> Tensor:
        return SELECTIONS[self.options.selection](self.ranked(layer.scores), self.options.keep_fraction)

    def traits(self) -> MethodTraits:
        return dataclasses.replace(
            super().traits(), fixed_keep_fraction=self.options.keep_fraction,
            test_options=({}, {"smart_rescale": True}, {"keep_fraction": 0.9},
                          {"selection": "percentile", "mask_lr": 50.0, "mask_weight_decay": 0.0},
                          {"score_ranking": "raw"}))

    def deterministic_weight(self, layer: MaskedLayer) -> Tensor:
        # The forward pass is deterministic but must route gradients to the scores in training.
        # abs() stays outside the straight-through function, as in the official code: the mask
        # ranks |score|, so the chain rule through abs() must give a negative score the gradient's
        # opposite sign (without it, training pushes negative scores the wrong way and fails).
        o = self.options
        keep = SubnetStraightThrough.apply(self.ranked(layer.scores), o.keep_fraction, o.selection)
        return self.rescaled(layer, layer.weight * keep)
