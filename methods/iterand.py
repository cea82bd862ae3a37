"""IteRand (Chijiwa et al., NeurIPS 2021): edge-popup whose pruned weights are periodically
re-randomised (docs/methods/iterand.md).

The mask is the released code's edge-popup: the signed scores ranked per layer, kept at or above
the percentile of the fraction removed (``selection=percentile``, ``score_ranking=raw``),
straight-through. Before every training step t with (t + 1) % period == 0 (the code's callback),
each weight outside the mask of the lowest ``(1 - keep_fraction) * rerand_rate`` scores is replaced,
with probability ``rerand_lambda``, by a fresh draw of the layer's initial distribution. The draws
come from a stream of the run's own: a seed per layer drawn at preparation from the method's
generator, and the event's index, hashed (stateless, so a resumed run draws the same numbers).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from subnetbench.methods.base import MethodTraits, StepProgress
from subnetbench.methods.edge_popup import SELECTIONS, EdgePopup, EdgePopupOptions
from subnetbench.methods.layers import MaskedLayer, masked_layers
from subnetbench.methods.options import check_option

REDRAWS = ("auto", "kaiming_normal", "signed_constant")
# The paper's CIFAR-10 recipe re-randomises every 300 of 100 epochs x 352 steps (45 000 images in
# batches of 128): the default period is that fraction of the round's budget.
PAPER_PERIOD_FRACTION = 300 / (100 * 352)


def event_generator(layer_seed: int, event: int) -> torch.Generator:
    """The CPU generator of re-randomisation ``event`` of a layer: a hash of its seed and index."""
    digest = hashlib.sha256(f"{layer_seed}/iterand-rerandomisation/{event}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def fresh_weights(like: Tensor, redraw: str, constant: float, generator: torch.Generator) -> Tensor:
    """A new draw of a layer's initial distribution (on the CPU, so every device gets the same):
    Kaiming normal N(0, 2 / fan_in), or the signed constant +-``constant``."""
    fan_in = like[0].numel()
    draw = torch.randn(like.shape, generator=generator, dtype=torch.float32) * math.sqrt(2 / fan_in)
    if redraw == "signed_constant":
        draw = torch.where(draw >= 0, constant, -constant)
    return draw.to(device=like.device, dtype=like.dtype)


def rerandomise(weight: Tensor, candidates: Tensor, fresh: Tensor, replace_uniform: Tensor,
                rate: float) -> Tensor:
    """The paper's partial re-randomisation (the code's ``bernoulli`` mode): each candidate weight
    becomes its fresh draw with probability ``rate``; every other weight stays."""
    replaced = candidates & (replace_uniform < rate)
    return torch.where(replaced, fresh, weight)


@dataclass(frozen=True)
class IteRandOptions(EdgePopupOptions):
    # The released code's edge-popup and the paper's Conv6 recipe (SGD 0.3, weight decay 1e-4).
    selection: str = "percentile"
    score_ranking: str = "raw"
    mask_lr: float = 0.3
    mask_weight_decay: float = 1e-4
    rerand_lambda: float = 0.1  # probability that a candidate weight is re-drawn
    rerand_rate: float = 1.0  # candidates: the lowest (1 - keep_fraction) * rate of scores
    rerand_period: int = 0  # steps between re-randomisations; 0: rerand_period_fraction of the budget
    rerand_period_fraction: float = PAPER_PERIOD_FRACTION
    redraw: str = "auto"  # the distribution of fresh weights; auto: recognised at preparation

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        for name in ("rerand_lambda", "rerand_rate"):
            value = getattr(self, name)
            check_option(isinstance(value, (int, float)) and not isinstance(value, bool)
                         and 0 <= value <= 1, owner, name, value, "a number in [0, 1]")
        check_option(isinstance(self.rerand_period, int) and not isinstance(self.rerand_period, bool)
                     and self.rerand_period >= 0, owner, "rerand_period", self.rerand_period,
                     "an integer >= 0 (0: rerand_period_fraction of the round's steps)")
        check_option(isinstance(self.rerand_period_fraction, (int, float)) and
                     0 < self.rerand_period_fraction <= 1, owner, "rerand_period_fraction",
                     self.rerand_period_fraction, "a number in (0, 1]")
        check_option(self.redraw in REDRAWS, owner, "redraw", self.redraw, f"one of {REDRAWS}")


class IteRand(EdgePopup):
    """Trains ``scores`` as edge-popup does; re-randomises pruned weights between steps."""

    name = "iterand"
    Options = IteRandOptions

    def initial_scores(self, layer: MaskedLayer, generator: torch.Generator | None) -> Tensor:
        # The released code's score initialisation: Kaiming uniform with the ReLU gain.
        scores = torch.empty(layer.weight.shape, dtype=layer.weight.dtype)
        nn.init.kaiming_uniform_(scores, mode="fan_in", nonlinearity="relu", generator=generator)
        return scores

    def init_layer(self, layer: MaskedLayer, generator: torch.Generator | None) -> None:
        super().init_layer(layer, generator)
        seed = int(torch.randint(2**62, (), generator=generator))
        layer.register_buffer("rerand_seed", torch.tensor(seed, device=layer.weight.device))
        magnitudes = layer.weight.detach().abs()
        constant = float(magnitudes.flatten()[0])
        signed = bool(torch.all(magnitudes == constant)) and constant > 0
        redraw = self.options.redraw
        layer.redraw = ("signed_constant" if signed else "kaiming_normal") if redraw == "auto" else redraw
        layer.register_buffer("redraw_constant", torch.tensor(
            constant if signed else float(magnitudes.std()), device=layer.weight.device))

    def traits(self) -> MethodTraits:
        return dataclasses.replace(super().traits(), test_options=(
            {}, {"redraw": "signed_constant", "rerand_rate": 0.5}, {"smart_rescale": True}))

    def period(self, progress: StepProgress) -> int:
        """Steps between re-randomisations: the option, or its fraction of the round's budget."""
        if self.options.rerand_period:
            return self.options.rerand_period
        return max(1, round(self.options.rerand_period_fraction * progress.total_steps))

    def candidates(self, layer: MaskedLayer) -> Tensor:
        """The weights a re-randomisation may replace: outside the mask that removes the lowest
        (1 - keep_fraction) * rerand_rate of the ranked scores (the pruned ones at rate 1)."""
        o = self.options
        removed = (1 - o.keep_fraction) * o.rerand_rate
        return ~SELECTIONS[o.selection](self.ranked(layer.scores), 1 - removed)

    @torch.no_grad()
    def begin_step(self, model: nn.Module, progress: StepProgress) -> None:
        period = self.period(progress)
        if (progress.step + 1) % period:
            return
        event = (progress.step + 1) // period
        for _, layer in masked_layers(model):
            self.rerandomise_layer(layer, event)

    @torch.no_grad()
    def rerandomise_layer(self, layer: MaskedLayer, event: int) -> None:
        generator = event_generator(int(layer.rerand_seed), event)
        constant = float(layer.redraw_constant)
        fresh = fresh_weights(layer.weight, layer.redraw, constant, generator)
        uniform = torch.rand(layer.weight.shape, generator=generator).to(layer.weight.device)
        layer.weight.copy_(rerandomise(layer.weight, self.candidates(layer), fresh, uniform,
                                       self.options.rerand_lambda))
