"""Random pruning (Liu et al. 2022; docs/methods.md).

A random mask is drawn once, at preparation, then the surviving weights (and all biases) are trained
with the mask fixed. Per-layer densities are ``uniform`` (every layer keeps ``keep_fraction``) or
``erk`` (Erdos-Renyi-Kernel: density proportional to (sum of the kernel's dimensions) / (product),
layers that would exceed 1 made dense, the others rescaled so the network keeps ``keep_fraction``
overall). A layer of n weights with density d keeps exactly kept_count(d, n) of them, at
positions drawn uniformly without replacement.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from subnetbench.methods.base import MethodTraits
from subnetbench.methods.layers import kept_count, masked_layers
from subnetbench.methods.options import check_keep_fraction, check_option
from subnetbench.methods.weight_training import FixedMaskWeightTrainingMethod, WeightTrainingOptions

DISTRIBUTIONS = ("uniform", "erk")


def erk_densities(shapes: list[tuple[int, ...]], keep_fraction: float) -> list[float]:
    """Layer densities whose weighted mean (by layer size) is ``keep_fraction``; all in (0, 1]."""
    sizes = [int(torch.Size(shape).numel()) for shape in shapes]
    raw = [sum(shape) / n for shape, n in zip(shapes, sizes)]
    target_kept = keep_fraction * sum(sizes)
    dense: set[int] = set()
    while True:
        sparse = [i for i in range(len(shapes)) if i not in dense]
        if not sparse:  # keep_fraction 1 (up to rounding) makes every layer dense
            return [1.0] * len(shapes)
        budget = target_kept - sum(sizes[i] for i in dense)
        epsilon = budget / sum(raw[i] * sizes[i] for i in sparse)
        too_dense = {i for i in sparse if epsilon * raw[i] > 1}
        if not too_dense:
            return [1.0 if i in dense else epsilon * raw[i] for i in range(len(shapes))]
        dense |= too_dense


def random_mask(shape: torch.Size, density: float, generator: torch.Generator | None) -> torch.Tensor:
    n = int(torch.Size(shape).numel())
    kept = torch.randperm(n, generator=generator)[:kept_count(density, n)]
    mask = torch.zeros(n, dtype=torch.bool)
    mask[kept] = True
    return mask.view(shape)


@dataclass(frozen=True)
class RandomPruningOptions(WeightTrainingOptions):
    keep_fraction: float = 0.5
    distribution: str = "uniform"

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        check_keep_fraction(owner, self.keep_fraction)
        check_option(self.distribution in DISTRIBUTIONS, owner, "distribution", self.distribution,
                     f"one of {DISTRIBUTIONS}")


class RandomPruning(FixedMaskWeightTrainingMethod):
    """Trains ``weight`` and ``bias``; the mask buffer never changes after preparation."""

    name = "random_pruning"
    Options = RandomPruningOptions

    def traits(self) -> MethodTraits:
        return dataclasses.replace(super().traits(), fixed_keep_fraction=self.options.keep_fraction,
                                   test_options=({}, {"distribution": "erk", "keep_fraction": 0.2}))

    def layer_densities(self, model: nn.Module) -> list[float]:
        shapes = [tuple(layer.weight.shape) for _, layer in masked_layers(model)]
        if self.options.distribution == "erk":
            return erk_densities(shapes, self.options.keep_fraction)
        return [self.options.keep_fraction] * len(shapes)

    def after_prepare(self, model: nn.Module, generator: torch.Generator | None) -> None:
        layers = [layer for _, layer in masked_layers(model)]
        for layer, density in zip(layers, self.layer_densities(model)):
            layer.mask.copy_(random_mask(layer.weight.shape, density, generator))
