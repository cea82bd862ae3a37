"""Random pruning (docs/methods.md): a random mask drawn once, uniform or ERK densities."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from subnetbench.methods.layers import kept_count, masked_layers
from subnetbench.methods.random_pruning import RandomPruning, erk_densities, random_mask
from tests.helpers import (
    chi_square_sf,
    prepared,
    single_torch_thread,  # noqa: F401  (autouse fixture)
)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
keep_fractions = st.floats(0.01, 1.0)

conv_shapes = st.tuples(st.integers(1, 64), st.integers(1, 64), st.sampled_from([1, 3, 5]),
                        st.sampled_from([1, 3, 5])).map(lambda s: (s[0], s[1], s[2], s[2]))
linear_shapes = st.tuples(st.integers(1, 300), st.integers(1, 300))
layer_shapes = st.lists(st.one_of(conv_shapes, linear_shapes), min_size=1, max_size=8)


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8, 20), nn.Linear(20, 4))


@pytest.mark.parametrize("distribution", ["uniform", "erk"])
@SETTINGS
@given(keep_fraction=keep_fractions, seed=st.integers(0, 10**6))
def test_every_layer_keeps_exactly_its_rounded_density(distribution, keep_fraction, seed):
    method = RandomPruning(keep_fraction=keep_fraction, distribution=distribution)
    model = small_model()
    method.prepare(model, torch.Generator().manual_seed(seed))
    densities = method.layer_densities(model)
    if distribution == "uniform":
        assert densities == [keep_fraction] * len(densities)
    for (_, layer), density in zip(masked_layers(model), densities):
        assert layer.mask.dtype == torch.bool and layer.mask.shape == layer.weight.shape
        assert int(layer.mask.sum()) == kept_count(density, layer.weight.numel())
    _, stats = method.extract(model)
    assert stats.kept == sum(int(layer.mask.sum()) for _, layer in masked_layers(model))


@SETTINGS
@given(shapes=layer_shapes, keep_fraction=keep_fractions)
# keep_fraction 1 once divided by zero: a layer wanting density 1.0000000000000002 was made dense
# and no sparse layer was left to share the (empty) budget
@example(shapes=[(264, 283, 8, 83)], keep_fraction=1.0)
@example(shapes=[(190, 60), (12, 100), (64, 246), (32, 12), (52, 134, 36, 114)], keep_fraction=1.0)
@example(shapes=[(3, 5), (7, 2, 3, 3)], keep_fraction=1 - 1e-15)
def test_erk_densities_meet_the_target(shapes, keep_fraction):
    densities = erk_densities(shapes, keep_fraction)
    sizes = [math.prod(shape) for shape in shapes]
    total = sum(sizes)
    assert len(densities) == len(shapes)
    assert all(0 < d <= 1 for d in densities), densities
    assert abs(sum(d * n for d, n in zip(densities, sizes)) - keep_fraction * total) <= 1e-6 * total
    kept = sum(kept_count(d, n) for d, n in zip(densities, sizes))
    assert abs(kept - keep_fraction * total) <= len(shapes)
    # Erdos-Renyi-Kernel: the layers that are not dense share one factor epsilon of
    # (sum of the kernel's dimensions) / (number of weights), and no dense layer would have wanted less
    raw = [sum(shape) / n for shape, n in zip(shapes, sizes)]
    epsilons = [d / r for d, r in zip(densities, raw) if d < 1]
    if epsilons:
        assert max(epsilons) - min(epsilons) <= 1e-9 * max(epsilons)
        assert all(epsilons[0] * r >= 1 - 1e-9 for d, r in zip(densities, raw) if d == 1)


def test_erk_gives_small_layers_higher_density():
    shapes = [(64, 1, 3, 3), (64, 64, 3, 3), (256, 1024), (256, 256), (10, 256)]
    densities = erk_densities(shapes, 0.1)
    assert densities[0] == 1.0 and densities[4] == 1.0
    assert densities[1] < densities[2] < densities[3] < 1


def test_same_seed_same_mask_different_seed_different_mask():
    def masks(seed: int, distribution: str = "uniform") -> list[torch.Tensor]:
        model, _ = prepared("random_pruning", {"distribution": distribution}, seed=seed)
        return [layer.mask.clone() for _, layer in masked_layers(model)]

    for distribution in ("uniform", "erk"):
        first, again, other = masks(3, distribution), masks(3, distribution), masks(4, distribution)
        assert all(torch.equal(a, b) for a, b in zip(first, again))
        sparse = [(a, b) for a, b in zip(first, other) if not torch.all(a)]  # ERK makes some dense
        assert sparse and all(not torch.equal(a, b) for a, b in sparse)


def test_positions_are_uniform_over_subsets():
    """Every one of the C(6, 2) = 15 masks of a 6-weight layer at keep 1/3 is equally likely, over
    masks drawn by `prepare` from generators seeded 0..M-1 (Pearson chi-square, 14 dof)."""
    method = RandomPruning(keep_fraction=1 / 3)
    subsets = {s: 0 for s in itertools.combinations(range(6), 2)}
    draws = 3000
    for seed in range(draws):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 2))
        method.prepare(model, torch.Generator().manual_seed(seed))
        kept = tuple(torch.nonzero(model[0].mask.flatten()).flatten().tolist())
        subsets[kept] += 1
    expected = draws / len(subsets)
    statistic = sum((count - expected) ** 2 / expected for count in subsets.values())
    assert chi_square_sf(statistic, len(subsets) - 1) > 1e-4, subsets


@pytest.mark.parametrize("n, density", [(50, 0.3), (200, 0.05), (64, 0.9)])
def test_each_position_is_kept_equally_often(n, density):
    """Position counts over M masks of k = round(density n) weights: with p = k / n their covariance
    is M p (1 - p) n / (n - 1) (I - J / n), so sum (O - Mp)^2 / (M p (1 - p)) (n - 1) / n is
    chi-square with n - 1 degrees of freedom."""
    draws = 4000
    generator = torch.Generator().manual_seed(n)
    counts = torch.zeros(n, dtype=torch.float64)
    for _ in range(draws):
        counts += random_mask(torch.Size([n]), density, generator).double()
    k = kept_count(density, n)
    p = k / n
    statistic = float(((counts - draws * p) ** 2).sum()) / (draws * p * (1 - p)) * (n - 1) / n
    assert chi_square_sf(statistic, n - 1) > 1e-4


def test_chi_square_helper_rejects_a_biased_mask():
    """The statistic above is not blind: a sampler that favours the first position is rejected."""
    n, draws, k = 50, 4000, 15
    generator = torch.Generator().manual_seed(1)
    counts = torch.zeros(n, dtype=torch.float64)
    for _ in range(draws):
        mask = random_mask(torch.Size([n]), k / n, generator)
        if not mask[0] and torch.rand((), generator=generator) < 0.1:
            mask[torch.nonzero(mask)[0]] = False
            mask[0] = True
        counts += mask.double()
    p = k / n
    statistic = float(((counts - draws * p) ** 2).sum()) / (draws * p * (1 - p)) * (n - 1) / n
    assert chi_square_sf(statistic, n - 1) < 1e-4


def test_the_mask_stays_fixed_while_weights_train():
    model, method = prepared("random_pruning", {"keep_fraction": 0.3, "lr": 0.01})
    masks = {name: layer.mask.clone() for name, layer in masked_layers(model)}
    weights = {name: layer.weight.detach().clone() for name, layer in masked_layers(model)}
    optimiser = method.optimizer_specs(model)[0].build()
    model.train()
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.nn.functional.cross_entropy(model(x), torch.arange(6)).backward()
    optimiser.step()
    for name, layer in masked_layers(model):
        assert torch.equal(layer.mask, masks[name])
        assert not torch.equal(layer.weight[layer.mask], weights[name][layer.mask])
        # the removed weights get no gradient, so Adam without weight decay leaves them alone
        assert torch.equal(layer.weight[~layer.mask], weights[name][~layer.mask])
