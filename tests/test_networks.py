"""The Conv-k networks (docs/methods.md)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from subnetbench import methods
from subnetbench.benchmark.networks import ARCHITECTURES, ConvNet, build_network
from subnetbench.methods.layers import prunable_layers
from tests.helpers import single_torch_thread  # noqa: F401  (autouse fixture)

SPEC = {  # conv widths and the fully connected input on 3x32x32 images
    "conv2": ([64, 64], 16384),
    "conv4": ([64, 64, 128, 128], 8192),
    "conv6": ([64, 64, 128, 128, 256, 256], 4096),
    "conv8": ([64, 64, 128, 128, 256, 256, 512, 512], 2048),
}


@pytest.mark.parametrize("architecture", sorted(SPEC))
def test_structure(architecture):
    widths, fc_in = SPEC[architecture]
    model = ConvNet(architecture)
    assert model.fc_in == fc_in
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == widths
    assert [c.in_channels for c in convs] == [3] + widths[:-1]
    for conv in convs:
        assert conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
        assert conv.bias is not None
    # ReLU after every convolution, a 2x2 stride-2 max-pool after every second one
    features = list(model.features)
    kinds = [type(m).__name__ for m in features]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"] * (len(widths) // 2)
    for pool in (m for m in features if isinstance(m, nn.MaxPool2d)):
        assert pool.kernel_size == 2 and pool.stride == 2
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(fc_in, 256), (256, 256), (256, 10)]
    assert [type(m) for m in model.classifier] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear,
                                                   nn.ReLU, nn.Linear]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    # every conv and linear layer is prunable
    assert len(list(prunable_layers(model))) == len(widths) + 3


@pytest.mark.parametrize("architecture", sorted(SPEC))
@pytest.mark.parametrize("in_channels, image_size, num_classes", [(3, 32, 10), (3, 32, 100),
                                                                  (1, 8, 10)])
def test_output_shapes(architecture, in_channels, image_size, num_classes):
    model = build_network(architecture, in_channels, image_size, num_classes)
    x = torch.randn(2, in_channels, image_size, image_size)
    with torch.no_grad():
        features = model.features(x)
        assert features[0].numel() == model.fc_in
        assert model(x).shape == (2, num_classes)


def test_digits_feature_sizes():
    # 8x8 halves at each pool: 4, 2, 1, and Conv8's fourth pool keeps the 1x1 map (ceil mode)
    sizes = {a: ConvNet(a, 1, 8, 10).fc_in for a in SPEC}
    assert sizes == {"conv2": 64 * 16, "conv4": 128 * 4, "conv6": 256, "conv8": 512}


def test_options():
    assert set(ARCHITECTURES) == set(SPEC)
    assert all(m.bias is None for _, m in prunable_layers(ConvNet("conv2", bias=False)))
    with pytest.raises(methods.OptionError, match="conv3"):
        ConvNet("conv3")
    for bad in ({"in_channels": 0}, {"image_size": 2.5}, {"num_classes": -1}):
        with pytest.raises(methods.OptionError, match=f"{next(iter(bad))}="):
            ConvNet("conv2", **bad)
