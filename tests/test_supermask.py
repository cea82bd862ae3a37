"""Supermask (docs/methods.md): Bernoulli(sigmoid(m)) masks, straight-through through the
sigmoid, and the dynamic weight rescaling (DWR), differentiable as in the official codes or
detached."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from subnetbench.methods.layers import masked_layers
from subnetbench.methods.supermask import Supermask, dwr_factor
from tests.helpers import (
    binomial_tolerance,
    digits_batch,
    prepared,
    randomise_scores,
    single_torch_thread,  # noqa: F401  (autouse fixture)
)

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
seeds = st.integers(0, 2**31 - 1)


def tiny_layer(method: Supermask, out_features: int, in_features: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(in_features, out_features))
    method.prepare(model, torch.Generator().manual_seed(seed))
    return model[0]


@SETTINGS
@given(logits=st.lists(st.floats(-4, 4), min_size=1, max_size=6), seed=seeds)
def test_keep_frequency_is_sigmoid_of_the_score(logits, seed):
    # 3000 rows sharing one row of scores: each column is 3000 draws of the same keep decision
    n = 3000
    method = Supermask()
    layer = tiny_layer(method, n, len(logits))
    m = torch.tensor(logits)
    with torch.no_grad():
        layer.scores.copy_(m.expand_as(layer.scores))
    method.set_sample_generator(torch.Generator().manual_seed(seed))
    sampled = method.sampled_weight(layer).detach()
    kept = sampled != 0
    assert torch.equal(sampled[kept], layer.weight[kept])  # 0/1 mask, no rescaling without DWR
    for f, q in zip(kept.double().mean(0).tolist(), torch.sigmoid(m.double()).tolist()):
        assert abs(f - q) <= binomial_tolerance(q, n), (f, q)


@pytest.mark.parametrize("dwr", [False, True])
@SETTINGS
@given(seed=seeds)
def test_straight_through_gradient_is_the_sigmoid_derivative(dwr, seed):
    """Without DWR, or with its factor detached, each score gets upstream * w * factor * p(1-p)."""
    method = Supermask(dynamic_weight_rescale=dwr, dwr_gradient="detached")
    layer = tiny_layer(method, 6, 5, seed % 100)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.scores.copy_(2 * torch.randn(layer.scores.shape, generator=generator))
    upstream = torch.randn(layer.weight.shape, generator=generator)
    method.set_sample_generator(torch.Generator().manual_seed(seed))
    sampled = method.sampled_weight(layer)
    (sampled * upstream).sum().backward()
    kept = int((sampled != 0).sum())
    factor = layer.weight.numel() / kept if dwr and kept else 1.0
    p = torch.sigmoid(layer.scores.detach())
    expected = upstream * layer.weight * factor * p * (1 - p)
    torch.testing.assert_close(layer.scores.grad, expected, rtol=1e-5, atol=1e-7)
    assert layer.weight.grad is None and layer.bias.grad is None


@SETTINGS
@given(seed=seeds, bias=st.floats(-1, 1))
def test_the_differentiable_dwr_gradient_is_that_of_the_official_code(seed, bias):
    """The default DWR (``dwr_gradient=straight_through``) computes the official
    ``(n / sample.sum()) * weight * sample`` with ``sample = bernoulli(p) + p - p.detach()``: the
    same forward and, through the factor, the same gradient of every score."""
    method = Supermask(dynamic_weight_rescale=True)
    assert method.options.dwr_gradient == "straight_through"  # the default: the released code
    layer = tiny_layer(method, 6, 5, seed % 100)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.scores.copy_(bias + torch.randn(layer.scores.shape, generator=generator))
    upstream = torch.randn(layer.weight.shape, generator=generator)
    method.set_sample_generator(torch.Generator().manual_seed(seed))
    ours = method.sampled_weight(layer)
    (ours * upstream).sum().backward()
    # the official form, on the very same uniform draws
    uniform = torch.rand(layer.scores.shape, generator=torch.Generator().manual_seed(seed))
    scores = layer.scores.detach().clone().requires_grad_(True)
    p = torch.sigmoid(scores)
    sample = (uniform < p).float() + p - p.detach()
    official = (layer.weight.numel() / sample.sum()) * layer.weight * sample
    (official * upstream).sum().backward()
    if int((uniform < p).sum()) == 0:
        return  # the official factor is infinite there; ours is defined as 1 (another test)
    torch.testing.assert_close(ours.detach(), official.detach())
    torch.testing.assert_close(layer.scores.grad, scores.grad, rtol=1e-4, atol=1e-6)
    # not vacuous: the factor's gradient reaches the scores of weights the sample dropped
    dropped = ~(uniform < torch.sigmoid(layer.scores.detach()))
    if dropped.any():
        assert torch.count_nonzero(layer.scores.grad[dropped]) > 0


@SETTINGS
@given(seed=seeds, bias=st.floats(-2, 2))
def test_dwr_factor_is_weights_over_kept(seed, bias):
    method = Supermask(dynamic_weight_rescale=True)
    layer = tiny_layer(method, 7, 9, seed % 100)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.scores.copy_(bias + torch.randn(layer.scores.shape, generator=generator))
    method.set_sample_generator(generator)
    sampled = method.sampled_weight(layer).detach()
    kept = sampled != 0
    n_kept = int(kept.sum())
    if n_kept:
        ratio = sampled[kept] / layer.weight[kept]
        torch.testing.assert_close(ratio, torch.full_like(ratio, layer.weight.numel() / n_kept))
    assert float(dwr_factor(kept)) == pytest.approx(layer.weight.numel() / n_kept if n_kept else 1.0)


@SETTINGS
@given(bits=st.lists(st.booleans(), min_size=1, max_size=40))
def test_dwr_factor_function(bits):
    keep = torch.tensor(bits, dtype=torch.float32)
    expected = len(bits) / sum(bits) if any(bits) else 1.0
    assert float(dwr_factor(keep)) == pytest.approx(expected, rel=1e-6)


def test_a_sample_keeping_nothing_has_factor_one_and_finite_gradients():
    assert float(dwr_factor(torch.zeros(10))) == 1.0
    method = Supermask(dynamic_weight_rescale=True)
    layer = tiny_layer(method, 4, 3)
    with torch.no_grad():
        layer.scores.fill_(-200.0)  # sigmoid(-200) is 0 in float32: nothing can be kept
    method.set_sample_generator(torch.Generator().manual_seed(0))
    sampled = method.sampled_weight(layer)
    assert torch.equal(sampled.detach(), torch.zeros_like(sampled))
    sampled.sum().backward()
    assert torch.all(torch.isfinite(layer.scores.grad))
    # A whole network whose first layer keeps nothing trains with finite values everywhere.
    model, method = prepared("supermask", {"dynamic_weight_rescale": True, "smart_rescale": True})
    randomise_scores(model)
    first = next(layer for _, layer in masked_layers(model))
    with torch.no_grad():
        first.scores.fill_(-200.0)
    model.train()
    loss = F.cross_entropy(model(digits_batch()), torch.arange(6))
    loss.backward()
    assert torch.isfinite(loss)
    for _, layer in masked_layers(model):
        assert torch.all(torch.isfinite(layer.scores.grad)) and torch.isfinite(layer.scale.grad)
    # and its extraction is finite too, with the empty layer exactly zero
    extracted, stats = method.extract(model)
    for module in extracted.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            assert torch.all(torch.isfinite(module.weight))
    assert torch.count_nonzero(extracted.features[0].weight) == 0
    assert stats.layer_kept["features.0"] == 0


@pytest.mark.parametrize("dwr", [False, True])
@pytest.mark.parametrize("smart_rescale", [False, True])
def test_extraction_keeps_nonnegative_scores_with_the_factor_of_that_mask(dwr, smart_rescale):
    model, method = prepared("supermask", {"dynamic_weight_rescale": dwr,
                                           "smart_rescale": smart_rescale})
    randomise_scores(model, seed=2)
    for _, layer in masked_layers(model):
        with torch.no_grad():
            layer.scores.view(-1)[:3] = torch.tensor([0.0, -0.0, -1e-6])  # the boundary
    extracted, stats = method.extract(model)
    for name, layer in masked_layers(model):
        keep = layer.scores >= 0
        assert keep.view(-1)[:3].tolist() == [True, True, False]
        factor = layer.weight.numel() / int(keep.sum()) if dwr else 1.0
        if smart_rescale:
            factor = factor * layer.scale.detach().item()
        weight = extracted.get_submodule(name).weight
        assert torch.equal(weight != 0, keep)
        torch.testing.assert_close(weight, layer.weight * keep * factor)
        assert stats.layer_kept[name] == int(keep.sum())
    x = digits_batch()
    model.eval()
    torch.testing.assert_close(extracted(x), model(x))


def test_initial_scores_give_probability_one_half():
    model, method = prepared("supermask")
    for _, layer in masked_layers(model):
        assert torch.equal(method.keep_probability(layer), torch.full_like(layer.weight, 0.5))
