"""The masked layers a method drives, and the counts taken over a network's prunable layers.

A prunable layer (every ``nn.Conv2d`` / ``nn.Linear``) becomes a :class:`MaskedConv2d` /
:class:`MaskedLinear` holding the very same parameters; its forward asks the method for the weight
to use: :meth:`~LayerWeights.sampled_weight` (training, or a stochastic evaluation) or
:meth:`~LayerWeights.deterministic_weight` (evaluation).
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from fractions import Fraction
from typing import Protocol

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class LayerWeights(Protocol):
    """What a masked layer asks of its method (:class:`subnetbench.methods.base.Method`)."""

    def sampled_weight(self, layer: MaskedLayer) -> Tensor: ...

    def deterministic_weight(self, layer: MaskedLayer) -> Tensor: ...

    def draw_noise(self, layer: MaskedLayer) -> tuple[Tensor, ...]: ...


class MaskedLayer:
    """Mixin of the masked layers: the weight used in forward comes from the method.

    ``mask_sampling`` is None (sample masks in training mode, use the deterministic mask in eval
    mode), or True/False to force one of the two, e.g. for stochastic evaluation.
    """

    method: LayerWeights
    mask_sampling: bool | None

    def _attach(self, method: LayerWeights) -> None:
        self.method = method
        self.mask_sampling = None
        # The random draws of the next sampled forward when drawn ahead of it (noise_drawn_ahead).
        self.drawn_noise: tuple[Tensor, ...] | None = None

    @property
    def sampling(self) -> bool:
        return self.training if self.mask_sampling is None else self.mask_sampling

    def effective_weight(self) -> Tensor:
        if self.sampling:
            return self.method.sampled_weight(self)
        return self.method.deterministic_weight(self)

    def __deepcopy__(self, memo):
        # The method (and the generator it holds) is shared configuration, not layer state.
        memo[id(self.method)] = self.method
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            clone.__dict__[key] = copy.deepcopy(value, memo)
        return clone


class MaskedConv2d(MaskedLayer, nn.Conv2d):
    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


class MaskedLinear(MaskedLayer, nn.Linear):
    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.effective_weight(), self.bias)


def masked_copy(layer: nn.Module, method: LayerWeights) -> MaskedLayer:
    """A masked layer holding the very same parameter tensors as ``layer``."""
    cls = MaskedConv2d if isinstance(layer, nn.Conv2d) else MaskedLinear
    masked = cls.__new__(cls)
    masked.__dict__.update(layer.__dict__)
    masked._attach(method)
    return masked


def plain_layer(layer: MaskedLayer, weight: Tensor) -> nn.Module:
    """An ordinary conv or linear layer like ``layer``, with ``weight`` and a copy of its bias."""
    bias = layer.bias is not None
    if isinstance(layer, MaskedConv2d):
        plain: nn.Module = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                     stride=layer.stride, padding=layer.padding,
                                     dilation=layer.dilation, groups=layer.groups, bias=bias,
                                     padding_mode=layer.padding_mode, device=weight.device,
                                     dtype=weight.dtype)
    else:
        plain = nn.Linear(layer.in_features, layer.out_features, bias=bias, device=weight.device,
                          dtype=weight.dtype)
    plain.weight = nn.Parameter(weight, requires_grad=False)
    if bias:
        plain.bias = nn.Parameter(layer.bias.detach().clone(), requires_grad=False)
    return plain


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def prunable_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """All conv and linear layers, in definition order: the layers every method prunes."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            yield name, module


def masked_layers(model: nn.Module) -> Iterator[tuple[str, MaskedLayer]]:
    for name, module in model.named_modules():
        if isinstance(module, MaskedLayer):
            yield name, module


@contextlib.contextmanager
def noise_drawn_ahead(model: nn.Module) -> Iterator[None]:
    """The random draws of the next forward of ``model``, drawn now for every sampling masked layer
    in layer order (the order of the forward's own draws: the same numbers), and handed to it.

    A seeded draw inside a compiled forward breaks its graph: drawn ahead, the draws are inputs of
    the graph, and the named, seeded streams give the same numbers as an eager run."""
    layers = [layer for _, layer in masked_layers(model) if layer.sampling]
    for layer in layers:
        layer.drawn_noise = layer.method.draw_noise(layer)
    try:
        yield
    finally:
        for layer in layers:
            layer.drawn_noise = None


def set_mask_sampling(model: nn.Module, sampling: bool | None) -> None:
    """Force masks to be sampled (True), deterministic (False), or follow train/eval (None)."""
    for _, layer in masked_layers(model):
        layer.mask_sampling = sampling


def count_nonzero_weights(model: nn.Module) -> tuple[int, int]:
    """(nonzero, total) over the weights of every conv and linear layer of ``model``."""
    nonzero = total = 0
    for _, layer in prunable_layers(model):
        nonzero += int(torch.count_nonzero(layer.weight))
        total += layer.weight.numel()
    return nonzero, total


def trainable_tensor_names(model: nn.Module) -> set[str]:
    """The per-layer tensor names (``weight``, ``scores``, ...) that require gradients."""
    return {name.rpartition(".")[2] for name, p in model.named_parameters() if p.requires_grad}


def kept_count(fraction: float, n: int) -> int:
    """How many of ``n`` weights a fraction keeps: round_half_up(fraction * n), computed exactly.

    The product is taken on the decimal value of ``fraction`` (its shortest repr, the number the
    user typed: 0.58 is 58/100), so an exact decimal half rounds up: 0.58 of 25 weights is 14.5,
    which keeps 15, where the float product 0.58 * 25 = 14.499999999999998 would keep 14. A
    computed fraction (ERK densities, compounded pruning rounds) is treated the same way. ``n``
    may be a symbolic size of torch.compile (SymInt): the arithmetic on it is integer only.
    """
    numerator, denominator = Fraction(repr(float(fraction))).as_integer_ratio()
    return (2 * numerator * n + denominator) // (2 * denominator)
