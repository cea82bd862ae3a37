"""Weight initialisations of the prunable layers (docs/methods.md).

- ``kaiming_normal``: N(0, gain / sqrt(fan_in)), gain for ReLU (both official code bases);
- ``signed_constant``: Kaiming normal, then every weight becomes sign(w) * std(w of its layer) (SC);
- ``scaled_signed_constant``: edge-popup's: sign(w) * gain / sqrt(fan_in * keep_fraction);
- ``pytorch_default``: the layer's own ``reset_parameters`` (Kaiming uniform, a = sqrt(5)).

The signed constants reach the layers ``signed_constant_layers`` names: ``all``, or ``conv``
(convolutions only; linear layers keep their Kaiming normal draw), as the released ASLP code does:
it applies SC before the linear layer's ``reset_parameters`` re-draws the weight. Every layer draws
its Kaiming normal weights either way, so the scope changes nothing else of the network.

Biases keep PyTorch's default initialisation (drawn from the same generator).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from subnetbench.methods.layers import prunable_layers
from subnetbench.methods.options import OptionError

INITIALISATIONS = ("kaiming_normal", "signed_constant", "scaled_signed_constant", "pytorch_default")
SIGNED_CONSTANT_LAYERS = ("conv", "all")


def _fan_in(weight: torch.Tensor) -> int:
    return int(weight[0].numel())


@torch.no_grad()
def _pytorch_default(layer: nn.Module, generator: torch.Generator | None) -> None:
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    _default_bias(layer, generator)


@torch.no_grad()
def _default_bias(layer: nn.Module, generator: torch.Generator | None) -> None:
    if layer.bias is not None:
        bound = 1 / math.sqrt(_fan_in(layer.weight))
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


@torch.no_grad()
def initialise(model: nn.Module, scheme: str, generator: torch.Generator | None = None,
               keep_fraction: float = 1.0, signed_constant_layers: str = "all") -> nn.Module:
    """Initialise every conv and linear layer of ``model`` in place with ``scheme``; a signed
    constant reaches the layers ``signed_constant_layers`` names (``all`` or ``conv``)."""
    if scheme not in INITIALISATIONS:
        raise OptionError(f"unknown initialisation {scheme!r}; expected one of {INITIALISATIONS}")
    if signed_constant_layers not in SIGNED_CONSTANT_LAYERS:
        raise OptionError(f"signed_constant_layers={signed_constant_layers!r} is not allowed; "
                          f"expected one of {SIGNED_CONSTANT_LAYERS}")
    if not 0 < keep_fraction <= 1:
        raise OptionError(f"keep_fraction={keep_fraction!r} is not allowed; expected a number in (0, 1]")
    gain = nn.init.calculate_gain("relu")
    for _, layer in prunable_layers(model):
        if scheme == "pytorch_default":
            _pytorch_default(layer, generator)
            continue
        weight = layer.weight
        nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu", generator=generator)
        if signed_constant_layers == "conv" and not isinstance(layer, nn.Conv2d):
            pass  # the released code's linear layers keep this Kaiming normal draw
        elif scheme == "signed_constant":
            weight.copy_(torch.sign(weight) * weight.std())
        elif scheme == "scaled_signed_constant":
            weight.copy_(torch.sign(weight) * gain / math.sqrt(_fan_in(weight) * keep_fraction))
        _default_bias(layer, generator)
    return model
