"""FLOPs of a training step, counted from the network's shapes (conv and linear layers only)."""
from __future__ import annotations

import math

from torch import nn

from subnetbench.benchmark.data import DATASET_INFO
from subnetbench.benchmark.networks import ConvNet, build_network


def forward_macs(model: nn.Module, image_size: int) -> int:
    """Multiply-accumulates of one image's forward pass through a Conv-k network (conv + linear)."""
    if not isinstance(model, ConvNet):
        raise TypeError("forward_macs counts the Conv-k networks")
    macs, size = 0, image_size
    for module in model.features:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs += size * size * module.out_channels * module.in_channels * kh * kw // module.groups
        elif isinstance(module, nn.MaxPool2d):
            size = math.ceil(size / 2)
    for module in model.classifier:
        if isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features
    return macs


def train_flop_per_image(network: str, dataset: str = "cifar10") -> int:
    """2 FLOP per multiply-accumulate, 3 forward passes' worth per training step (the forward, the
    gradient of the input and that of the weights)."""
    info = DATASET_INFO[dataset]
    model = build_network(network, info.in_channels, info.image_size, info.num_classes)
    return 3 * 2 * forward_macs(model, info.image_size)
