"""A method that learns nothing: a fixed random mask (a classic baseline of pruning at random).

Mask-only and without any trainable tensor: each layer keeps a random ``keep_fraction`` of its
weights, drawn once at preparation from the method's seeded generator. ``optimizer_specs`` returns
no optimiser, so training runs no backward pass and steps nothing; the engine still validates,
evaluates, extracts and reports the masked network like any other.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from subnetbench.methods.base import MASK_ONLY, Method, MethodTraits, OptimizerSpec
from subnetbench.methods.layers import MaskedLayer, kept_count
from subnetbench.methods.options import check_keep_fraction


@dataclass(frozen=True)
class FixedMaskOptions:
    keep_fraction: float = 0.5

    def __post_init__(self) -> None:
        check_keep_fraction(type(self).__name__, self.keep_fraction)


class FixedRandomMask(Method):
    """Trains nothing; keeps the ``mask`` buffer drawn at preparation."""

    name = "fixed_random_mask"
    Options = FixedMaskOptions

    def traits(self) -> MethodTraits:
        return MethodTraits(family=MASK_ONLY, trainable_tensors=frozenset(),
                            fixed_keep_fraction=self.options.keep_fraction,
                            test_options=({}, {"keep_fraction": 0.9}))

    def init_layer(self, layer: MaskedLayer, generator: torch.Generator | None) -> None:
        n = layer.weight.numel()
        kept = torch.randperm(n, generator=generator)[:kept_count(self.options.keep_fraction, n)]
        mask = torch.zeros(n, dtype=torch.bool)
        mask[kept] = True
        layer.register_buffer("mask", mask.view_as(layer.weight).to(layer.weight.device))

    def keep_mask(self, layer: MaskedLayer) -> Tensor:
        return layer.mask

    def optimizer_specs(self, model: nn.Module) -> list[OptimizerSpec]:
        return []  # nothing to learn: no optimiser, no backward pass
