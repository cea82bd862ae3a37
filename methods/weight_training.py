"""The base of the methods that train weights and biases (dense, random and magnitude pruning),
with an optional fixed boolean ``mask`` buffer per layer that the method sets (not learned)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from subnetbench.methods.base import WEIGHT_TRAINING, Method, MethodTraits, OptimizerSpec
from subnetbench.methods.layers import MaskedLayer
from subnetbench.methods.options import OPTIMIZER_ALGORITHMS, check_option


@dataclass(frozen=True)
class WeightTrainingOptions:
    """Optimiser of the methods that train weights (defaults: Frankle and Carbin's Conv-4/6 Adam)."""

    optimizer: str = "adam"
    lr: float = 3e-4
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_option(self.optimizer in OPTIMIZER_ALGORITHMS, owner, "optimizer", self.optimizer,
                     f"one of {OPTIMIZER_ALGORITHMS}")
        check_option(isinstance(self.lr, (int, float)) and self.lr > 0, owner, "lr", self.lr,
                     "a positive number")
        check_option(isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1, owner,
                     "momentum", self.momentum, "a number in [0, 1)")
        check_option(isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0, owner,
                     "weight_decay", self.weight_decay, "a number >= 0")


class WeightTrainingMethod(Method):
    """Trains weights and biases with one Adam or SGD optimiser; keeps every weight."""

    Options = WeightTrainingOptions

    def traits(self) -> MethodTraits:
        return MethodTraits(family=WEIGHT_TRAINING, trainable_tensors=frozenset({"weight", "bias"}),
                            fixed_keep_fraction=1.0)

    def optimizer_specs(self, model: nn.Module) -> list[OptimizerSpec]:
        o = self.options
        params = [p for p in model.parameters() if p.requires_grad]
        return [OptimizerSpec("weights", params, o.optimizer, o.lr, o.momentum, o.weight_decay)]


class FixedMaskWeightTrainingMethod(WeightTrainingMethod):
    """Trains weights under a boolean ``mask`` buffer per layer that the method sets (not learned)."""

    def init_layer(self, layer: MaskedLayer, generator: torch.Generator | None) -> None:
        layer.register_buffer("mask", torch.ones_like(layer.weight, dtype=torch.bool))

    def keep_mask(self, layer: MaskedLayer) -> Tensor:
        return layer.mask
