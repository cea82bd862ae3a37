"""The base of the mask-only methods that learn one score per weight (ASLP, supermask, edge-popup,
IteRand, biprop), with the paper's optional smart rescale (SR, its section 1.2):
w_hat = s * w * keep, s a trainable scalar per layer initialised to 1, multiplied into the kept
weights at extraction."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from subnetbench.methods.base import MASK_ONLY, Method, MethodTraits, OptimizerSpec
from subnetbench.methods.layers import MaskedLayer, masked_layers
from subnetbench.methods.options import check_option

SMART_RESCALE_UPDATES = ("alternating", "joint")


@dataclass(frozen=True)
class ScoredMaskOptions:
    """Options shared by the mask-only methods that learn one score per weight."""

    smart_rescale: bool = False  # one learned scalar per layer multiplying the kept weights
    mask_lr: float = 50.0
    mask_momentum: float = 0.9
    mask_weight_decay: float = 0.0
    scale_lr: float = 1e-3
    scale_momentum: float = 0.9
    # With smart rescale, the released ASLP code's two optimisers run as Lightning 1.x runs them:
    # per batch one pass that steps the scores, then one with a fresh sample that steps the scales.
    smart_rescale_update: str = "alternating"  # or "joint": one pass steps both

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_option(isinstance(self.smart_rescale, bool), owner, "smart_rescale",
                     self.smart_rescale, "true or false")
        check_option(self.smart_rescale_update in SMART_RESCALE_UPDATES, owner, "smart_rescale_update",
                     self.smart_rescale_update,
                     f"one of {SMART_RESCALE_UPDATES} (alternating: the released code)")
        for name in ("mask_lr", "scale_lr"):
            value = getattr(self, name)
            check_option(isinstance(value, (int, float)) and value > 0, owner, name, value,
                         "a positive number")
        for name in ("mask_momentum", "scale_momentum"):
            value = getattr(self, name)
            check_option(isinstance(value, (int, float)) and 0 <= value < 1, owner, name, value,
                         "a number in [0, 1)")
        check_option(isinstance(self.mask_weight_decay, (int, float)) and self.mask_weight_decay >= 0,
                     owner, "mask_weight_decay", self.mask_weight_decay, "a number >= 0")


class ScoredMaskMethod(Method):
    """A mask-only method: frozen weights and biases, one trainable ``scores`` tensor per layer
    (a subclass implements :meth:`initial_scores`), and the optional smart rescale."""

    Options = ScoredMaskOptions

    def initial_scores(self, layer: MaskedLayer, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define initial_scores")

    def traits(self) -> MethodTraits:
        o = self.options
        alternating = o.smart_rescale and o.smart_rescale_update == "alternating"
        return MethodTraits(
            family=MASK_ONLY,
            trainable_tensors=frozenset({"scores", "scale"} if o.smart_rescale else {"scores"}),
            rescaling="smart_rescale" if o.smart_rescale else None,
            update_passes=(("scores",), ("scale",)) if alternating else None)

    def init_layer(self, layer: MaskedLayer, generator: torch.Generator | None) -> None:
        scores = self.initial_scores(layer, generator)
        layer.scores = nn.Parameter(scores.to(device=layer.weight.device, dtype=layer.weight.dtype))
        if self.options.smart_rescale:
            layer.scale = nn.Parameter(torch.ones((), device=layer.weight.device,
                                                  dtype=layer.weight.dtype))

    def deterministic_scale(self, layer: MaskedLayer) -> Tensor | float:
        """The factor of the kept weights in the deterministic (and extracted) layer."""
        return layer.scale if self.options.smart_rescale else 1.0

    def deterministic_weight(self, layer: MaskedLayer) -> Tensor:
        weight = layer.weight * self.keep_mask(layer).to(layer.weight.dtype)
        scale = self.deterministic_scale(layer)
        return weight if isinstance(scale, float) and scale == 1.0 else weight * scale

    def rescaled(self, layer: MaskedLayer, weight: Tensor) -> Tensor:
        return weight * layer.scale if self.options.smart_rescale else weight

    def optimizer_specs(self, model: nn.Module) -> list[OptimizerSpec]:
        layers = [layer for _, layer in masked_layers(model)]
        o = self.options
        specs = [OptimizerSpec("scores", [layer.scores for layer in layers], "sgd", o.mask_lr,
                               o.mask_momentum, o.mask_weight_decay)]
        if o.smart_rescale:
            specs.append(OptimizerSpec("scale", [layer.scale for layer in layers], "sgd", o.scale_lr,
                                       o.scale_momentum, 0.0))
        return specs
