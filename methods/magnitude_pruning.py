"""Magnitude pruning (Han et al. 2015) and its iterative, rewinding form (Frankle and Carbin 2019);
docs/methods.md.

Round 0 trains the dense network. Each of the ``prune_rounds`` following rounds first removes, among
the surviving weights, those of smallest |w| (``scope``: ``global`` ranks all prunable layers
together, ``layer`` ranks each layer alone), then trains again: from the trained weights
(fine-tuning, ``rewind=False``) or from the initial weights (``rewind=True``, the lottery-ticket
form). Rounds compound: after prune round r of R the network keeps keep_fraction ** (r / R) of its
weights (exactly kept_count of it and the count, globally or per layer), so every round
removes the same fraction of the survivors. ``one_shot`` is R = 1 without rewinding; ``iterative``
defaults to R = 3 with rewinding.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from subnetbench.methods.base import MethodTraits
from subnetbench.methods.layers import MaskedLayer, kept_count, masked_layers
from subnetbench.methods.options import check_keep_fraction, check_option
from subnetbench.methods.weight_training import FixedMaskWeightTrainingMethod, WeightTrainingOptions

SCOPES = ("global", "layer")
SCHEDULES = ("one_shot", "iterative")


def magnitude_mask(weights: list[Tensor], alive: list[Tensor], kept_fraction: float,
                   scope: str) -> list[Tensor]:
    """Keep the largest |w| among the alive weights: kept_count(kept_fraction, n) of them, with
    n counted over all layers (``global``) or per layer (``layer``). Ties go to the lower index."""
    def top(values: list[Tensor], alive_masks: list[Tensor]) -> list[Tensor]:
        flat = torch.cat([v.detach().abs().flatten() for v in values])
        flat_alive = torch.cat([a.flatten() for a in alive_masks])
        flat = torch.where(flat_alive, flat, torch.full_like(flat, -1.0))  # dead weights rank last
        k = kept_count(kept_fraction, flat.numel())
        order = torch.argsort(flat, descending=True, stable=True)
        keep = torch.zeros_like(flat_alive)
        keep[order[:k]] = True
        return list(torch.split(keep, [v.numel() for v in values]))

    if scope == "global":
        flat_masks = top(weights, alive)
    else:
        flat_masks = [top([w], [a])[0] for w, a in zip(weights, alive)]
    return [m.view_as(w) for m, w in zip(flat_masks, weights)]


@dataclass(frozen=True)
class MagnitudePruningOptions(WeightTrainingOptions):
    keep_fraction: float = 0.5  # kept after the last round
    scope: str = "global"
    schedule: str = "one_shot"
    prune_rounds: int = 3  # iterative only; one_shot prunes once
    rewind: bool | None = None  # None: False for one_shot (fine-tune), True for iterative

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        check_keep_fraction(owner, self.keep_fraction)
        check_option(self.scope in SCOPES, owner, "scope", self.scope, f"one of {SCOPES}")
        check_option(self.schedule in SCHEDULES, owner, "schedule", self.schedule,
                     f"one of {SCHEDULES}")
        check_option(isinstance(self.prune_rounds, int) and self.prune_rounds >= 1, owner,
                     "prune_rounds", self.prune_rounds, "an integer >= 1")
        check_option(self.rewind is None or isinstance(self.rewind, bool), owner, "rewind",
                     self.rewind, "true, false or unset")


class MagnitudePruning(FixedMaskWeightTrainingMethod):
    """Trains ``weight`` and ``bias``; the mask buffer changes only between rounds."""

    name = "magnitude_pruning"
    Options = MagnitudePruningOptions

    @property
    def prune_rounds(self) -> int:
        return 1 if self.options.schedule == "one_shot" else self.options.prune_rounds

    @property
    def rewinds(self) -> bool:
        if self.options.rewind is not None:
            return self.options.rewind
        return self.options.schedule == "iterative"

    @property
    def rounds(self) -> int:
        return 1 + self.prune_rounds

    def traits(self) -> MethodTraits:
        return dataclasses.replace(
            super().traits(), rounds=self.rounds, fixed_keep_fraction=self.options.keep_fraction,
            seed_batch_refusal=(f"{self.name} trains in {self.rounds} rounds, and seeds trained "
                                "together share one round"),
            test_options=({}, {"schedule": "iterative", "scope": "layer", "prune_rounds": 2}))

    def kept_fraction_after(self, prune_round: int) -> float:
        return self.options.keep_fraction ** (prune_round / self.prune_rounds)

    def init_layer(self, layer: MaskedLayer, generator: torch.Generator | None) -> None:
        super().init_layer(layer, generator)
        if self.rewinds:
            layer.register_buffer("initial_weight", layer.weight.detach().clone())
            if layer.bias is not None:
                layer.register_buffer("initial_bias", layer.bias.detach().clone())

    @torch.no_grad()
    def begin_round(self, model: nn.Module, round_index: int) -> None:
        if round_index == 0:
            return
        layers = [layer for _, layer in masked_layers(model)]
        masks = magnitude_mask([layer.weight for layer in layers], [layer.mask for layer in layers],
                               self.kept_fraction_after(round_index), self.options.scope)
        for layer, mask in zip(layers, masks):
            layer.mask.copy_(mask)
            if self.rewinds:
                layer.weight.copy_(layer.initial_weight)
                if layer.bias is not None:
                    layer.bias.copy_(layer.initial_bias)
