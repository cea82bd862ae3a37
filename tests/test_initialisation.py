"""Weight initialisations (docs/methods.md): Kaiming normal, signed constant (SC), edge-popup's
scaled signed constant, PyTorch's default; and which layers SC reaches (docs/released-code.md)."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from subnetbench import methods
from subnetbench.benchmark.networks import ConvNet
from subnetbench.methods.initialisation import INITIALISATIONS, initialise
from subnetbench.methods.layers import prunable_layers
from tests.helpers import single_torch_thread  # noqa: F401  (autouse fixture)

GAIN = math.sqrt(2.0)  # ReLU


def network() -> nn.Module:
    return ConvNet("conv2", in_channels=1, image_size=8, num_classes=10)


def initialised(scheme: str, seed: int, keep_fraction: float = 1.0) -> nn.Module:
    return initialise(network(), scheme, torch.Generator().manual_seed(seed), keep_fraction)


def layers(model: nn.Module) -> list[nn.Module]:
    return [layer for _, layer in prunable_layers(model)]


def fan_in(layer: nn.Module) -> int:
    return layer.weight[0].numel()


def test_kaiming_normal_has_the_relu_fan_in_standard_deviation():
    model = initialised("kaiming_normal", 0)
    for layer in layers(model):
        w = layer.weight.detach().double().flatten()
        n, sigma = w.numel(), GAIN / math.sqrt(fan_in(layer))
        # mean: 5 standard errors; variance: its standard error is sigma^2 sqrt(2 / n) for a normal
        assert abs(float(w.mean())) <= 5 * sigma / math.sqrt(n)
        assert abs(float((w ** 2).mean()) / sigma ** 2 - 1) <= 5 * math.sqrt(2 / n)
        # and it is normal: about 68.3% within one sigma
        inside = float((w.abs() <= sigma).double().mean())
        p = math.erf(1 / math.sqrt(2))
        assert abs(inside - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-3


def test_signed_constant_is_the_sign_of_kaiming_normal_times_its_std():
    kaiming = initialised("kaiming_normal", 3)
    signed = initialised("signed_constant", 3)  # same seed: the same underlying normal draw
    for k, s in zip(layers(kaiming), layers(signed)):
        magnitude = s.weight.detach().abs()
        assert torch.all(magnitude == magnitude.flatten()[0])  # one constant per layer
        torch.testing.assert_close(magnitude.flatten()[0], k.weight.std(), rtol=1e-6, atol=0)
        assert torch.equal(torch.sign(s.weight), torch.sign(k.weight))  # signs preserved
        n, sigma = k.weight.numel(), GAIN / math.sqrt(fan_in(k))
        assert abs(float(magnitude.flatten()[0]) / sigma - 1) <= 5 * math.sqrt(1 / (2 * n)) + 1e-3
        assert torch.equal(s.bias, k.bias)


@pytest.mark.parametrize("scheme", ["signed_constant", "scaled_signed_constant"])
def test_signed_constants_reach_convolutions_only_in_the_released_codes_scope(scheme):
    """``signed_constant_layers=conv`` (the released ASLP code: linear layers are re-drawn with
    Kaiming normal after SC): convolutions get the signed constant, linear layers keep exactly the
    Kaiming normal draw, and nothing else of the network changes; ``all`` reaches every layer."""
    generator = lambda: torch.Generator().manual_seed(11)  # noqa: E731
    kaiming = initialise(network(), "kaiming_normal", generator())
    conv_only = initialise(network(), scheme, generator(), 0.5, signed_constant_layers="conv")
    everywhere = initialise(network(), scheme, generator(), 0.5, signed_constant_layers="all")
    for k, c, a in zip(layers(kaiming), layers(conv_only), layers(everywhere)):
        assert torch.equal(c.bias, k.bias) and torch.equal(a.bias, k.bias)
        constant = a.weight.abs().unique().numel() == 1
        assert constant and torch.equal(torch.sign(a.weight), torch.sign(k.weight))
        if isinstance(k, nn.Conv2d):
            assert torch.equal(c.weight, a.weight)
        else:
            assert torch.equal(c.weight, k.weight)  # the linear layer's Kaiming normal draw


def test_the_recipe_defaults_to_the_released_scope_and_the_hidden_networks_preset_to_all():
    from subnetbench.benchmark.recipe import RECIPE_PRESETS, Recipe

    assert Recipe().signed_constant_layers == "conv"
    assert RECIPE_PRESETS["edge_popup"]["signed_constant_layers"] == "all"
    with pytest.raises(methods.OptionError, match="signed_constant_layers='dense'"):
        initialise(network(), "signed_constant", signed_constant_layers="dense")


@settings(max_examples=20, deadline=None, derandomize=True)
@given(keep_fraction=st.floats(0.01, 1.0), seed=st.integers(0, 10**6))
def test_scaled_signed_constant_uses_the_kept_fan_in(keep_fraction, seed):
    model = nn.Sequential(nn.Conv2d(3, 5, 3), nn.Flatten(), nn.Linear(20, 7))
    kaiming = initialise(model, "kaiming_normal", torch.Generator().manual_seed(seed))
    kaiming_weights = [layer.weight.clone() for layer in layers(kaiming)]
    scaled = initialise(model, "scaled_signed_constant", torch.Generator().manual_seed(seed),
                        keep_fraction)
    for layer, reference in zip(layers(scaled), kaiming_weights):
        expected = GAIN / math.sqrt(fan_in(layer) * keep_fraction)
        torch.testing.assert_close(layer.weight.abs(), torch.full_like(layer.weight, expected))
        assert torch.equal(torch.sign(layer.weight), torch.sign(reference))


def test_pytorch_default_stays_within_its_bound():
    model = initialised("pytorch_default", 1)
    for layer in layers(model):
        bound = 1 / math.sqrt(fan_in(layer))  # kaiming_uniform with a = sqrt(5)
        w = layer.weight.detach().double().flatten()
        assert float(w.abs().max()) <= bound
        n = w.numel()
        # uniform on [-bound, bound]: variance bound^2 / 3, standard error of that about
        # (bound^2 / 3) * sqrt(4 / (5 n))
        assert abs(float((w ** 2).mean()) * 3 / bound ** 2 - 1) <= 5 * math.sqrt(0.8 / n)
        assert float(w.abs().max()) >= bound * (1 - 20 / n)


@pytest.mark.parametrize("scheme", INITIALISATIONS)
def test_biases_keep_the_default_bound(scheme):
    model = initialised(scheme, 2)
    for layer in layers(model):
        bound = 1 / math.sqrt(fan_in(layer))
        assert float(layer.bias.detach().abs().max()) <= bound
        assert torch.count_nonzero(layer.bias) == layer.bias.numel()


@pytest.mark.parametrize("scheme", INITIALISATIONS)
def test_the_generator_seed_determines_the_weights(scheme):
    first, again, other = initialised(scheme, 7), initialised(scheme, 7), initialised(scheme, 8)
    for a, b, c in zip(first.parameters(), again.parameters(), other.parameters()):
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


def test_the_global_stream_is_not_used_when_a_generator_is_given():
    torch.manual_seed(0)
    first = initialised("kaiming_normal", 4)
    torch.manual_seed(1)
    second = initialised("kaiming_normal", 4)
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_bad_arguments_are_option_errors():
    with pytest.raises(methods.OptionError, match="'xavier'.*kaiming_normal"):
        initialise(network(), "xavier")
    for bad in (0.0, 1.5):
        with pytest.raises(methods.OptionError, match=f"keep_fraction={bad!r}"):
            initialise(network(), "scaled_signed_constant", keep_fraction=bad)
