"""Magnitude pruning (docs/methods.md): largest |w| kept, one-shot or iterative, fine-tuning or
rewinding to the initial weights."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from subnetbench.methods.layers import kept_count, masked_layers
from subnetbench.methods.magnitude_pruning import MagnitudePruning, magnitude_mask
from tests.helpers import single_torch_thread  # noqa: F401  (autouse fixture)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


def reference(values: list[float], alive: list[bool], k: int) -> set[int]:
    """The k alive weights of largest |w|, lower index first among equals."""
    candidates = sorted((i for i in range(len(values)) if alive[i]), key=lambda i: (-abs(values[i]), i))
    return set(candidates[:k])


@st.composite
def weight_lists(draw) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    shapes = draw(st.lists(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
                           min_size=1, max_size=4))
    weights, alive = [], []
    for shape in shapes:
        n = math.prod(shape)
        values = draw(st.lists(st.one_of(st.integers(-3, 3).map(float), st.floats(-5, 5)),
                               min_size=n, max_size=n))
        weights.append(torch.tensor(values).view(shape))
        alive.append(torch.tensor(draw(st.lists(st.booleans(), min_size=n, max_size=n))).view(shape))
    return weights, alive


@SETTINGS
@given(data=weight_lists(), fraction=st.floats(0.0, 1.0))
def test_global_scope_keeps_the_largest_magnitudes_of_the_whole_network(data, fraction):
    weights, _ = data
    alive = [torch.ones_like(w, dtype=torch.bool) for w in weights]
    masks = magnitude_mask(weights, alive, fraction, "global")
    flat = torch.cat([w.flatten() for w in weights]).tolist()
    k = kept_count(fraction, len(flat))
    kept = torch.cat([m.flatten() for m in masks])
    assert [m.shape for m in masks] == [w.shape for w in weights]
    assert set(torch.nonzero(kept).flatten().tolist()) == reference(flat, [True] * len(flat), k)


@SETTINGS
@given(data=weight_lists(), fraction=st.floats(0.0, 1.0))
def test_layer_scope_keeps_the_largest_magnitudes_of_each_layer(data, fraction):
    weights, _ = data
    alive = [torch.ones_like(w, dtype=torch.bool) for w in weights]
    for weight, mask in zip(weights, magnitude_mask(weights, alive, fraction, "layer")):
        flat = weight.flatten().tolist()
        k = kept_count(fraction, len(flat))
        assert set(torch.nonzero(mask.flatten()).flatten().tolist()) == \
            reference(flat, [True] * len(flat), k)


@pytest.mark.parametrize("scope", ["global", "layer"])
@SETTINGS
@given(data=weight_lists(), share=st.floats(0.0, 1.0))
def test_dead_weights_never_come_back(scope, data, share):
    weights, alive = data
    groups = [list(range(len(weights)))] if scope == "global" else [[i] for i in range(len(weights))]
    # a fraction small enough that every group has enough alive weights
    fraction = share * min(sum(int(alive[i].sum()) for i in g) / sum(weights[i].numel() for i in g)
                           for g in groups)
    masks = magnitude_mask(weights, alive, fraction, scope)
    for group in groups:
        flat = torch.cat([weights[i].flatten() for i in group]).tolist()
        flat_alive = torch.cat([alive[i].flatten() for i in group]).tolist()
        kept = torch.cat([masks[i].flatten() for i in group])
        k = kept_count(fraction, len(flat))
        assert set(torch.nonzero(kept).flatten().tolist()) == reference(flat, flat_alive, k)


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4, 30), nn.ReLU(),
                         nn.Linear(30, 3))


@torch.no_grad()
def pretend_to_train(model: nn.Module, seed: int) -> None:
    """Move every weight, dead ones included, to new random values (dead ones made large)."""
    generator = torch.Generator().manual_seed(seed)
    for _, layer in masked_layers(model):
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
        layer.weight[~layer.mask] *= 100
        layer.bias.add_(1.0)


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("schedule, prune_rounds", [("one_shot", 3), ("iterative", 1),
                                                    ("iterative", 3), ("iterative", 5)])
@settings(max_examples=10, deadline=None, derandomize=True)
@given(keep_fraction=st.floats(0.02, 1.0), seed=st.integers(0, 1000))
def test_rounds_compound_and_pruned_weights_stay_pruned(scope, schedule, prune_rounds,
                                                        keep_fraction, seed):
    method = MagnitudePruning(keep_fraction=keep_fraction, scope=scope, schedule=schedule,
                              prune_rounds=prune_rounds)
    model = small_model(seed)
    method.prepare(model)
    R = 1 if schedule == "one_shot" else prune_rounds
    assert method.rounds == 1 + R
    layers = [layer for _, layer in masked_layers(model)]
    method.begin_round(model, 0)  # round 0 trains the dense network
    assert all(torch.all(layer.mask) for layer in layers)
    for r in range(1, R + 1):
        pretend_to_train(model, seed + r)
        alive = [layer.mask.clone() for layer in layers]
        current = [layer.weight.detach().clone() for layer in layers]
        method.begin_round(model, r)
        fraction = keep_fraction ** (r / R)
        assert method.kept_fraction_after(r) == pytest.approx(fraction)
        groups = [layers] if scope == "global" else [[layer] for layer in layers]
        for group in groups:
            n = sum(layer.weight.numel() for layer in group)
            assert sum(int(layer.mask.sum()) for layer in group) == kept_count(fraction, n)
        for layer, before in zip(layers, alive):
            assert not torch.any(layer.mask & ~before)  # already pruned stays pruned
        # the survivors are the largest |w| among the alive, measured on the trained weights
        for group in groups:
            index = [layers.index(layer) for layer in group]
            flat = torch.cat([current[i].flatten() for i in index]).tolist()
            flat_alive = torch.cat([alive[i].flatten() for i in index]).tolist()
            kept = torch.cat([layers[i].mask.flatten() for i in index])
            assert set(torch.nonzero(kept).flatten().tolist()) == \
                reference(flat, flat_alive, int(kept.sum()))
    _, stats = method.extract(model)
    if scope == "global":
        assert stats.kept == kept_count(keep_fraction, stats.total)
    else:
        assert stats.kept == sum(kept_count(keep_fraction, layer.weight.numel())
                                 for layer in layers)


def test_rewind_restores_the_initial_weights_and_fine_tuning_does_not():
    for schedule, rewind, expect_rewind in [("iterative", None, True), ("one_shot", None, False),
                                            ("one_shot", True, True), ("iterative", False, False)]:
        method = MagnitudePruning(schedule=schedule, rewind=rewind, prune_rounds=2)
        assert method.rewinds == expect_rewind
        model = small_model(1)
        method.prepare(model)
        initial = {name: p.detach().clone() for name, p in model.named_parameters()}
        method.begin_round(model, 0)
        for r in range(1, method.rounds):
            pretend_to_train(model, 10 + r)
            trained = {name: p.detach().clone() for name, p in model.named_parameters()}
            method.begin_round(model, r)
            for name, p in model.named_parameters():
                assert torch.equal(p, initial[name]) == expect_rewind, (schedule, rewind, name, r)
                assert torch.equal(p, trained[name]) != expect_rewind, (schedule, rewind, name, r)
        # the final mask applies on top of the rewound / fine-tuned weights
        for _, layer in masked_layers(model):
            assert not torch.all(layer.mask)
            assert torch.equal(method.deterministic_weight(layer), layer.weight * layer.mask)


def test_default_is_half_of_the_weights_globally_after_one_prune():
    method = MagnitudePruning()
    assert (method.options.scope, method.options.schedule, method.rounds) == ("global", "one_shot", 2)
    assert not method.rewinds
    model = small_model()
    method.prepare(model)
    method.begin_round(model, 1)
    _, stats = method.extract(model)
    assert stats.kept == kept_count(0.5, stats.total)
