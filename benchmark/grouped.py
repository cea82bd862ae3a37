"""The grouped forward of seed batches: k Conv-k networks in one pass (a :data:`StepForward`).

Conv layers run as one grouped convolution (seed i's channels are group i), linear layers as one
batched matrix product: k times fewer, k times larger kernels, which is what pays on a GPU. Each
seed's weight is its layer's own ``effective_weight()``, taken in layer order, so each seed samples
its masks from its own generator in the order of a separate run. The arithmetic differs from
separate runs at the rounding level (another convolution algorithm for the first layer, for
instance), so the seeds' curves are close to, not identical with, those of separate runs.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from subnetbench.benchmark.networks import ConvNet
from subnetbench.benchmark.training import Trainer
from subnetbench.methods.layers import MaskedLayer
from subnetbench.methods.options import OptionError

MODES = ("auto", "grouped", "loop")


def resolve_mode(mode: str, device: torch.device | str) -> str:
    """``auto`` is ``grouped`` on CUDA and ``loop`` (each seed's own forward) elsewhere: on a CPU
    the grouped step does not pay (see ``subnetbench speed``, rows with ``seeds_batched``)."""
    if mode not in MODES:
        raise OptionError(f"seed-batch mode {mode!r} is not allowed; expected one of {MODES}")
    if mode == "auto":
        return "grouped" if torch.device(device).type == "cuda" else "loop"
    return mode


def _layer_weight(layer: nn.Module) -> Tensor:
    return layer.effective_weight() if isinstance(layer, MaskedLayer) else layer.weight


def grouped_forward(trainers: Sequence[Trainer], images: Sequence[Tensor]) -> list[Tensor]:
    """Logits of the trainers' Conv-k networks on their own batches, in one pass."""
    models: list[ConvNet] = [trainer.model for trainer in trainers]
    k = len(models)
    first = models[0]
    x = torch.cat(list(images), 1)
    for index, module in enumerate(first.features):
        if isinstance(module, nn.Conv2d):
            layers = [model.features[index] for model in models]
            weight = torch.cat([_layer_weight(layer) for layer in layers], 0)
            bias = torch.cat([layer.bias for layer in layers]) if module.bias is not None else None
            x = F.conv2d(x, weight, bias, module.stride, module.padding, module.dilation,
                         k * module.groups)
        else:  # ReLU and max-pool act on each channel alone
            x = module(x)
    x = x.reshape(x.shape[0], k, -1).transpose(0, 1)  # k x B x features, each seed's own flatten
    for index, module in enumerate(first.classifier):
        if isinstance(module, nn.Flatten):
            continue
        if isinstance(module, nn.Linear):
            layers = [model.classifier[index] for model in models]
            weight = torch.stack([_layer_weight(layer) for layer in layers]).transpose(1, 2)
            if module.bias is not None:
                bias = torch.stack([layer.bias for layer in layers]).unsqueeze(1)
                x = torch.baddbmm(bias, x, weight)
            else:
                x = torch.bmm(x, weight)
        else:
            x = module(x)
    return list(x.unbind(0))

