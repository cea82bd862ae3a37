"""The Conv-k networks of Frankle and Carbin, as in the ASLP code (docs/methods.md).

3x3 convolutions, stride 1, "same" padding, each followed by ReLU; 2x2 max-pool (stride 2) after
every second convolution; then fully connected 256 -> ReLU -> 256 -> ReLU -> classes. No batch norm.
Pools use ceil mode, which changes nothing for even sizes (CIFAR's 32x32) and lets Conv8's fourth
pool run on the 1x1 maps of the 8x8 digits.
"""
from __future__ import annotations

import math

from torch import Tensor, nn

from subnetbench.errors import OptionError

POOL = "pool"
ARCHITECTURES: dict[str, tuple[int | str, ...]] = {
    "conv2": (64, 64, POOL),
    "conv4": (64, 64, POOL, 128, 128, POOL),
    "conv6": (64, 64, POOL, 128, 128, POOL, 256, 256, POOL),
    "conv8": (64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL),
}
HIDDEN = 256


class ConvNet(nn.Module):
    def __init__(self, architecture: str, in_channels: int = 3, image_size: int = 32,
                 num_classes: int = 10, bias: bool = True) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise OptionError(f"unknown network {architecture!r}; expected one of "
                              f"{sorted(ARCHITECTURES)}")
        for label, value in (("in_channels", in_channels), ("image_size", image_size),
                             ("num_classes", num_classes)):
            if not isinstance(value, int) or value < 1:
                raise OptionError(f"{label}={value!r} is not allowed; expected a positive integer")
        self.architecture = architecture
        layers: list[nn.Module] = []
        channels, size = in_channels, image_size
        for item in ARCHITECTURES[architecture]:
            if item == POOL:
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
                size = math.ceil(size / 2)
            else:
                layers += [nn.Conv2d(channels, item, 3, stride=1, padding=1, bias=bias), nn.ReLU()]
                channels = item
        self.features = nn.Sequential(*layers)
        self.fc_in = channels * size * size
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(self.fc_in, HIDDEN, bias=bias), nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN, bias=bias), nn.ReLU(),
            nn.Linear(HIDDEN, num_classes, bias=bias),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def build_network(architecture: str, in_channels: int = 3, image_size: int = 32,
                  num_classes: int = 10, bias: bool = True) -> ConvNet:
    return ConvNet(architecture, in_channels, image_size, num_classes, bias)
