"""Edge-popup (docs/methods.md): the top-|score| fraction of each layer, straight-through."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from subnetbench.methods.edge_popup import EdgePopup, SubnetStraightThrough, top_k_mask
from subnetbench.methods.layers import kept_count, masked_layers
from tests.helpers import (
    digits_batch,
    prepared,
    randomise_scores,
    single_torch_thread,  # noqa: F401  (autouse fixture)
)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
keep_fractions = st.floats(0.01, 1.0, exclude_min=False)


def reference_keep(scores: list[float], keep_fraction: float) -> set[int]:
    """Pure-Python specification: the k largest |score|, the lower flat index first among equals."""
    k = kept_count(keep_fraction, len(scores))
    order = sorted(range(len(scores)), key=lambda i: (-abs(scores[i]), i))
    return set(order[:k])


@st.composite
def score_tensors(draw) -> torch.Tensor:
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    n = math.prod(shape)
    # small integers (and their negatives) make ties in |score| frequent
    values = draw(st.lists(st.one_of(st.integers(-3, 3).map(float), st.floats(-3, 3)),
                           min_size=n, max_size=n))
    return torch.tensor(values).view(shape)


@SETTINGS
@given(scores=score_tensors(), keep_fraction=keep_fractions)
def test_top_k_mask_keeps_the_largest_scores_ties_to_the_lower_index(scores, keep_fraction):
    mask = top_k_mask(scores.abs(), keep_fraction)
    assert mask.shape == scores.shape and mask.dtype == torch.bool
    assert int(mask.sum()) == kept_count(keep_fraction, scores.numel())
    kept = set(torch.nonzero(mask.flatten()).flatten().tolist())
    assert kept == reference_keep(scores.flatten().tolist(), keep_fraction)


@SETTINGS
@given(data=st.data(), keep_fraction=keep_fractions)
def test_every_layer_keeps_exactly_its_rounded_fraction(data, keep_fraction):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3, 7), nn.Linear(7, 2))
    method = EdgePopup(keep_fraction=keep_fraction)
    method.prepare(model, torch.Generator().manual_seed(1))
    randomise_scores(model, seed=data.draw(st.integers(0, 1000)))
    with torch.no_grad():  # plant ties
        model[0].scores.view(-1)[:4] = torch.tensor([1.0, -1.0, 1.0, -1.0])
    extracted, stats = method.extract(model)
    for name, layer in masked_layers(model):
        n = layer.weight.numel()
        expected = reference_keep(layer.scores.flatten().tolist(), keep_fraction)
        for mask in (method.keep_mask(layer),
                     method.deterministic_weight(layer).detach() != 0,
                     extracted.get_submodule(name).weight != 0):
            assert set(torch.nonzero(mask.flatten()).flatten().tolist()) == expected
        assert stats.layer_kept[name] == kept_count(keep_fraction, n)


@pytest.mark.parametrize("keep_fraction, low, high", [(0.9, 0.89, 0.91), (0.1, 0.09, 0.11),
                                                      (0.5, 0.49, 0.51)])
def test_keep_fraction_is_the_fraction_kept(keep_fraction, low, high):
    """Pinned down (hidden-networks issue #9): keep_fraction=0.9 KEEPS 90% and removes 10%."""
    model, method = prepared("edge_popup", {"keep_fraction": keep_fraction})
    _, stats = method.extract(model)
    assert low <= stats.kept_fraction <= high
    for name, fraction in stats.layer_kept_fraction.items():
        assert abs(fraction - keep_fraction) <= 0.5 / stats.layer_total[name]
    # the training forward keeps the same fraction as the extraction
    model.train()
    for _, layer in masked_layers(model):
        kept = int(torch.count_nonzero(method.sampled_weight(layer)))
        assert kept == kept_count(keep_fraction, layer.weight.numel())


@SETTINGS
@given(scores=score_tensors(), keep_fraction=keep_fractions, seed=st.integers(0, 10**6))
def test_scores_receive_the_incoming_gradient_unchanged(scores, keep_fraction, seed):
    upstream = torch.randn(scores.shape, generator=torch.Generator().manual_seed(seed))
    leaf = scores.clone().requires_grad_()
    SubnetStraightThrough.apply(leaf, keep_fraction).backward(upstream)
    assert torch.equal(leaf.grad, upstream)


@pytest.mark.parametrize("smart_rescale", [False, True])
def test_layer_scores_gradient_is_the_gradient_of_the_mask(smart_rescale):
    model, method = prepared("edge_popup", {"smart_rescale": smart_rescale})
    randomise_scores(model, seed=5)
    model.train()
    for index, (_, layer) in enumerate(masked_layers(model)):
        upstream = torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(index))
        (method.sampled_weight(layer) * upstream).sum().backward()
        scale = layer.scale.detach() if smart_rescale else 1.0
        # The mask ranks |score| and hands d loss / d mask = upstream * w * s to |score| unchanged,
        # for kept and removed weights alike; the chain rule through abs() (outside the
        # straight-through function, as in the official code) then multiplies by sign(score).
        expected = upstream * layer.weight * scale * torch.sign(layer.scores.detach())
        torch.testing.assert_close(layer.scores.grad, expected)
        assert layer.weight.grad is None


def test_scores_follow_kaiming_uniform_and_the_generator():
    model, _ = prepared("edge_popup", seed=3)
    again, _ = prepared("edge_popup", seed=3)
    other, _ = prepared("edge_popup", seed=4)
    pairs = zip(masked_layers(model), masked_layers(again), masked_layers(other))
    for (_, layer), (_, same), (_, different) in pairs:
        bound = 1 / math.sqrt(layer.weight[0].numel())  # kaiming_uniform, a = sqrt(5)
        assert float(layer.scores.detach().abs().max()) <= bound
        assert torch.equal(layer.scores, same.scores)
        assert not torch.equal(layer.scores, different.scores)


def test_training_moves_the_mask_but_not_the_weights():
    model, method = prepared("edge_popup", {"keep_fraction": 0.3})
    before = {name: layer.weight.detach().clone() for name, layer in masked_layers(model)}
    masks = {name: method.keep_mask(layer).clone() for name, layer in masked_layers(model)}
    optimisers = [spec.build() for spec in method.optimizer_specs(model)]
    model.train()
    for step in range(2):
        for optimiser in optimisers:
            optimiser.zero_grad()
        F.cross_entropy(model(digits_batch(seed=step)), torch.arange(6)).backward()
        for optimiser in optimisers:
            optimiser.step()
    changed = sum(int((method.keep_mask(layer) != masks[name]).sum())
                  for name, layer in masked_layers(model))
    assert changed > 0
    for name, layer in masked_layers(model):
        assert torch.equal(layer.weight, before[name])
        assert int(method.keep_mask(layer).sum()) == kept_count(0.3, layer.weight.numel())


def released_get_subnet(mask: torch.Tensor, sparsity: float) -> torch.Tensor:
    """The ASLP repository's edge-popup rule, as written in strategies/edge-popup/layer_functions.py
    (commit b99575e): percentile(t, q) and GetSubnet.forward, with target_sparsity = fraction
    removed."""
    k = 1 + round(.01 * float(sparsity * 100) * (mask.numel() - 1))
    k_val = mask.view(-1).kthvalue(k).values.item()
    return torch.where(mask < k_val, torch.zeros_like(mask), torch.ones_like(mask))


@SETTINGS
@given(scores=score_tensors(), keep_fraction=st.sampled_from([0.1, 0.25, 0.5, 0.7, 0.9]))
def test_the_percentile_selection_is_the_aslp_repositorys_rule(scores, keep_fraction):
    method = EdgePopup(selection="percentile", keep_fraction=keep_fraction)
    model = torch.nn.Sequential(torch.nn.Linear(scores.numel(), 1))
    method.prepare(model, torch.Generator().manual_seed(0))
    layer = model[0]
    with torch.no_grad():
        layer.scores.copy_(scores.reshape(layer.scores.shape))
    expected = released_get_subnet(layer.scores.detach().abs(), 1 - keep_fraction).bool()
    assert torch.equal(method.keep_mask(layer), expected)
    assert torch.equal(method.deterministic_weight(layer).detach() != 0, expected & (layer.weight != 0))


def test_score_ranking_raw_ranks_the_signed_scores_and_passes_the_gradient_as_is():
    method = EdgePopup(score_ranking="raw", keep_fraction=0.5)
    model = torch.nn.Sequential(torch.nn.Linear(4, 1, bias=False))
    method.prepare(model, torch.Generator().manual_seed(0))
    layer = model[0]
    with torch.no_grad():
        layer.scores.copy_(torch.tensor([[-3.0, 2.0, -0.5, 1.0]]))
        layer.weight.copy_(torch.ones(1, 4))
    assert method.keep_mask(layer).tolist() == [[False, True, False, True]]  # the two largest, signed
    method.deterministic_weight(layer).sum().backward()
    assert layer.scores.grad.tolist() == [[1.0, 1.0, 1.0, 1.0]]  # no sign flip through abs()
    magnitude = EdgePopup(keep_fraction=0.5)
    assert magnitude.ranked(layer.scores).tolist() == [[3.0, 2.0, 0.5, 1.0]]


@settings(deadline=None, max_examples=200)
@given(st.floats(0, 1, allow_subnormal=False), st.integers(0, 10**7))
def test_kept_count_rounds_the_decimal_product_half_up(fraction, n):
    from fractions import Fraction
    exact = Fraction(repr(float(fraction))) * n
    assert kept_count(fraction, n) == math.floor(exact + Fraction(1, 2))
    assert kept_count(0.58, 25) == 15  # 14.5 exactly: the float product 14.4999... would keep 14


def test_top_k_mask_counts_symbolic_sizes_under_torch_compile():
    """Under torch.compile sizes can be symbolic (SymInt): the count is integer arithmetic, so a
    compiled selection keeps exactly what the eager one keeps (aot_eager: dynamo's tracing, without
    the C++ compiler's minutes)."""
    torch._dynamo.reset()
    # the fraction is an option, a constant of the graph; the size is symbolic
    compiled = torch.compile(lambda values: top_k_mask(values, 0.58), backend="aot_eager",
                             dynamic=True, fullgraph=True)
    generator = torch.Generator().manual_seed(0)
    for n in (25, 40, 97):
        values = torch.randn(n, generator=generator)
        assert torch.equal(compiled(values), top_k_mask(values, 0.58))
