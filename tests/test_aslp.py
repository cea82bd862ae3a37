"""ASLP (docs/methods.md): the hard binary Gumbel-Softmax over the logits (m, 0)."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from subnetbench import methods
from subnetbench.methods.aslp import (
    ASLP,
    binary_concrete,
    gumbel_noise,
    logistic_noise,
    two_logit_gumbel_softmax,
)
from subnetbench.methods.layers import masked_layers
from tests.helpers import (
    binomial_tolerance,
    digits_batch,
    ks_critical,
    ks_two_sample,
    prepared,
    randomise_scores,
    single_torch_thread,  # noqa: F401  (autouse fixture)
)

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
seeds = st.integers(0, 2**31 - 1)
temperatures = st.sampled_from([0.25, 0.5, 1.0, 2.0, 5.0])


@st.composite
def logit_tensors(draw, low: float = -5.0, high: float = 5.0) -> torch.Tensor:
    shape = draw(shapes)
    values = draw(st.lists(st.floats(low, high, allow_nan=False, allow_infinity=False),
                           min_size=math.prod(shape), max_size=math.prod(shape)))
    return torch.tensor(values, dtype=torch.float64).view(shape)


def tiny_layer(method: ASLP, out_features: int, in_features: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(in_features, out_features))
    method.prepare(model, torch.Generator().manual_seed(seed))
    return model[0]


# -- distribution of the hard sample ------------------------------------------------------------------

@pytest.mark.parametrize("estimator", ["logistic", "gumbel_pair"])
@SETTINGS
@given(m=logit_tensors(), seed=seeds, temperature=temperatures)
def test_keep_probability_is_sigmoid_of_the_logit(estimator, m, seed, temperature):
    n = 4000
    method = ASLP(estimator=estimator, temperature=temperature)
    method.set_sample_generator(torch.Generator().manual_seed(seed))
    keep = method.sample_keep(m.float().expand(n, *m.shape).contiguous())
    assert torch.all((keep == 0) | (keep == 1))  # a hard sample is exactly 0 or 1
    frequency = keep.double().mean(0)
    p = torch.sigmoid(m)
    for f, q in zip(frequency.flatten().tolist(), p.flatten().tolist()):
        assert abs(f - q) <= binomial_tolerance(q, n), (f, q)


@SETTINGS
@given(seed=seeds, m0=st.floats(-3, 3))
def test_layer_samples_keep_or_drop_each_weight_with_probability_sigmoid_m(seed, m0):
    # A layer of 3000 rows sharing one row of logits: each column is 3000 draws of one keep decision.
    method = ASLP()
    layer = tiny_layer(method, 3000, 4)
    logits = torch.tensor([m0, -m0, 0.0, 2 * m0])
    with torch.no_grad():
        layer.scores.copy_(logits.expand_as(layer.scores))
    method.set_sample_generator(torch.Generator().manual_seed(seed))
    sampled = method.sampled_weight(layer).detach()
    kept = sampled != 0
    # samples are exactly 0 or 1: the sampled weight is either 0 or the untouched weight
    assert torch.equal(sampled[kept], layer.weight[kept])
    frequency = kept.double().mean(0)
    for f, q in zip(frequency.tolist(), torch.sigmoid(logits.double()).tolist()):
        assert abs(f - q) <= binomial_tolerance(q, 3000), (f, q)


def test_zero_logits_keep_half_the_weights_and_extreme_logits_are_certain():
    method = ASLP()
    method.set_sample_generator(torch.Generator().manual_seed(0))
    n = 20000
    keep = method.sample_keep(torch.zeros(n))
    assert abs(float(keep.mean()) - 0.5) <= binomial_tolerance(0.5, n)
    assert torch.all(method.sample_keep(torch.full((n,), 40.0)) == 1)
    assert torch.all(method.sample_keep(torch.full((n,), -40.0)) == 0)


def test_logistic_noise_is_standard_logistic():
    n = 200000
    noise = logistic_noise(torch.Size([n]), torch.Generator().manual_seed(3), "cpu", torch.float64)
    values, _ = torch.sort(noise)
    empirical = torch.arange(1, n + 1, dtype=torch.float64) / n
    distance = float((empirical - torch.sigmoid(values)).abs().max())
    assert distance <= ks_critical(n) + 1 / n


# -- straight-through gradient ------------------------------------------------------------------------

@SETTINGS
@given(m=logit_tensors(), seed=seeds, temperature=temperatures)
def test_straight_through_gradient_is_the_gradient_of_the_relaxed_sample(m, seed, temperature):
    generator = torch.Generator().manual_seed(seed)
    noise = logistic_noise(m.shape, generator, "cpu", m.dtype)
    upstream = torch.randn(m.shape, generator=generator, dtype=m.dtype)
    m_hard = m.clone().requires_grad_()
    hard = binary_concrete(m_hard, noise, temperature, hard=True)
    (hard * upstream).sum().backward()
    m_soft = m.clone().requires_grad_()
    soft = torch.sigmoid((m_soft + noise) / temperature)
    (soft * upstream).sum().backward()
    assert torch.equal(hard, ((m + noise) > 0).to(m.dtype))
    torch.testing.assert_close(m_hard.grad, m_soft.grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("smart_rescale", [False, True])
@SETTINGS
@given(seed=seeds, temperature=temperatures)
def test_layer_gradient_to_the_logits_is_the_relaxed_one(smart_rescale, seed, temperature):
    method = ASLP(temperature=temperature, smart_rescale=smart_rescale)
    layer = tiny_layer(method, 5, 7, seed % 1000)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.scores.copy_(torch.randn(layer.scores.shape, generator=generator))
        if smart_rescale:
            layer.scale.fill_(1.7)
    upstream = torch.randn(layer.weight.shape, generator=generator)
    method.set_sample_generator(torch.Generator().manual_seed(seed))
    (method.sampled_weight(layer) * upstream).sum().backward()
    # The same uniform stream gives the same logistic noise: the relaxed sample of the paper.
    noise = logistic_noise(layer.scores.shape, torch.Generator().manual_seed(seed), "cpu",
                           layer.scores.dtype)
    soft = torch.sigmoid((layer.scores.detach() + noise) / temperature)
    s = 1.7 if smart_rescale else 1.0
    expected = upstream * layer.weight * s * soft * (1 - soft) / temperature
    torch.testing.assert_close(layer.scores.grad, expected, rtol=1e-5, atol=1e-7)
    assert layer.weight.grad is None and layer.bias.grad is None  # frozen


# -- the binary logistic form is the two-logit Gumbel-Softmax -----------------------------------------

@pytest.mark.parametrize("hard", [True, False])
@SETTINGS
@given(m=logit_tensors(), seed=seeds, temperature=temperatures)
def test_coupled_noise_gives_the_two_logit_gumbel_softmax(hard, m, seed, temperature):
    generator = torch.Generator().manual_seed(seed)
    g_keep = gumbel_noise(m.shape, generator, "cpu", m.dtype)
    g_drop = gumbel_noise(m.shape, generator, "cpu", m.dtype)
    upstream = torch.randn(m.shape, generator=generator, dtype=m.dtype)
    m_pair = m.clone().requires_grad_()
    pair = two_logit_gumbel_softmax(m_pair, g_keep, g_drop, temperature, hard)
    (pair * upstream).sum().backward()
    m_logistic = m.clone().requires_grad_()
    logistic = binary_concrete(m_logistic, g_keep - g_drop, temperature, hard)
    (logistic * upstream).sum().backward()
    # Exact arithmetic agrees everywhere; in floating point only a tie at m + L = 0 (a null event)
    # may be rounded differently, so such elements are left out of the forward comparison.
    clear = (m + g_keep - g_drop).abs() > 1e-9
    torch.testing.assert_close(pair[clear], logistic[clear], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(m_pair.grad, m_logistic.grad, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(m0=st.floats(-4, 4), seed=seeds, temperature=temperatures)
def test_independent_draws_give_the_same_distribution(m0, seed, temperature):
    n = 20000
    m = torch.full((n,), m0, dtype=torch.float64)
    logistic_gen = torch.Generator().manual_seed(seed)
    pair_gen = torch.Generator().manual_seed(seed + 1)
    logistic_noise_ = logistic_noise(m.shape, logistic_gen, "cpu", m.dtype)
    g_keep = gumbel_noise(m.shape, pair_gen, "cpu", m.dtype)
    g_drop = gumbel_noise(m.shape, pair_gen, "cpu", m.dtype)
    p = 1 / (1 + math.exp(-m0))
    hard_logistic = binary_concrete(m, logistic_noise_, temperature).mean().item()
    hard_pair = two_logit_gumbel_softmax(m, g_keep, g_drop, temperature).mean().item()
    assert abs(hard_logistic - hard_pair) <= math.sqrt(2) * binomial_tolerance(p, n)
    # the relaxed samples (and so the straight-through gradients) have the same law too
    soft_logistic = binary_concrete(m, logistic_noise_, temperature, hard=False)
    soft_pair = two_logit_gumbel_softmax(m, g_keep, g_drop, temperature, hard=False)
    assert ks_two_sample(soft_logistic, soft_pair) <= ks_critical(n, n)


@pytest.mark.parametrize("estimator", ["logistic", "gumbel_pair"])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_matches_torch_gumbel_softmax_in_distribution(estimator, temperature):
    n, logits = 20000, [-2.0, -0.5, 0.0, 0.7, 2.5]
    method = ASLP(estimator=estimator, temperature=temperature)
    method.set_sample_generator(torch.Generator().manual_seed(11))
    torch.manual_seed(12)  # torch's gumbel_softmax draws from the global stream
    for m0 in logits:
        m_ours = torch.full((n,), m0, requires_grad=True)
        ours = method.sample_keep(m_ours)
        ours.sum().backward()
        m_torch = torch.full((n,), m0, requires_grad=True)
        stacked = torch.stack([m_torch, torch.zeros_like(m_torch)], -1)
        theirs = F.gumbel_softmax(stacked, tau=temperature, hard=True)[..., 0]
        theirs.sum().backward()
        assert torch.all((theirs == 0) | (theirs == 1))
        p = 1 / (1 + math.exp(-m0))
        assert abs(ours.mean().item() - theirs.mean().item()) <= math.sqrt(2) * binomial_tolerance(p, n)
        # per-sample straight-through gradients d soft / d m: same distribution
        assert ks_two_sample(m_ours.grad, m_torch.grad) <= ks_critical(n, n)


# -- temperature and hard=False -----------------------------------------------------------------------

@SETTINGS
@given(m=logit_tensors(), seed=seeds, temperature=temperatures)
def test_temperature_leaves_the_hard_forward_unchanged_and_scales_the_gradient(m, seed, temperature):
    noise = logistic_noise(m.shape, torch.Generator().manual_seed(seed), "cpu", m.dtype)
    m1 = m.clone().requires_grad_()
    at_one = binary_concrete(m1, noise, 1.0)
    at_one.sum().backward()
    m2 = m.clone().requires_grad_()
    at_t = binary_concrete(m2, noise, temperature)
    at_t.sum().backward()
    assert torch.equal(at_one, at_t)
    soft = torch.sigmoid((m + noise) / temperature)
    torch.testing.assert_close(m2.grad, soft * (1 - soft) / temperature, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("estimator", ["logistic", "gumbel_pair"])
def test_hard_false_trains_with_the_relaxed_mask_and_evaluates_with_the_hard_one(estimator):
    temperature = 0.7
    model, method = prepared("aslp", {"hard": False, "temperature": temperature,
                                      "estimator": estimator})
    randomise_scores(model)
    layer = next(layer for _, layer in masked_layers(model))
    method.set_sample_generator(torch.Generator().manual_seed(5))
    soft = method.sample_keep(layer.scores).detach()
    assert torch.all((soft > 0) & (soft < 1))
    assert not torch.all((soft == 0) | (soft == 1))
    if estimator == "logistic":
        noise = logistic_noise(layer.scores.shape, torch.Generator().manual_seed(5), "cpu",
                               layer.scores.dtype)
        torch.testing.assert_close(soft, torch.sigmoid((layer.scores.detach() + noise) / temperature))
    # the deterministic (evaluation) forward is the extracted hard mask whatever `hard` says
    model.eval()
    torch.testing.assert_close(method.deterministic_weight(layer),
                               layer.weight * (layer.scores >= 0))


def test_low_temperature_relaxed_sample_approaches_the_hard_one():
    m = torch.randn(5000, generator=torch.Generator().manual_seed(0))
    noise = logistic_noise(m.shape, torch.Generator().manual_seed(1), "cpu", m.dtype)
    clear = (m + noise).abs() > 0.05
    hard = binary_concrete(m, noise, 1.0, hard=True)
    for temperature, bound in [(0.01, 0.01), (0.001, 1e-6)]:
        soft = binary_concrete(m, noise, temperature, hard=False)
        assert float((soft - hard)[clear].abs().max()) <= bound


# -- extraction and smart rescale ---------------------------------------------------------------------

@st.composite
def score_vectors(draw, n: int) -> torch.Tensor:
    values = draw(st.lists(st.one_of(st.just(0.0), st.just(-0.0), st.floats(-3, 3)),
                           min_size=n, max_size=n))
    return torch.tensor(values)


@SETTINGS
@given(data=st.data())
def test_extraction_keeps_exactly_the_nonnegative_logits(data):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    method = ASLP()
    method.prepare(model)
    for _, layer in masked_layers(model):
        with torch.no_grad():
            layer.scores.copy_(data.draw(score_vectors(layer.scores.numel())).view_as(layer.scores))
    assert all(torch.all(layer.weight != 0) for _, layer in masked_layers(model))
    extracted, stats = method.extract(model)
    kept_total = 0
    for name, layer in masked_layers(model):
        plain = extracted.get_submodule(name)
        assert type(plain) is nn.Linear
        assert torch.equal(plain.weight != 0, layer.scores >= 0)
        assert torch.equal(plain.weight[layer.scores >= 0], layer.weight[layer.scores >= 0])
        assert torch.equal(plain.bias, layer.bias)
        kept_total += int((layer.scores >= 0).sum())
    assert stats.kept == kept_total


def test_smart_rescale_multiplies_kept_weights_at_extraction_and_in_forward():
    model, method = prepared("aslp", {"smart_rescale": True})
    randomise_scores(model, seed=3)
    scales = {}
    for index, (name, layer) in enumerate(masked_layers(model)):
        with torch.no_grad():
            layer.scale.fill_(0.5 + 0.3 * index)
        scales[name] = 0.5 + 0.3 * index
    extracted, _ = method.extract(model)
    for name, layer in masked_layers(model):
        keep = layer.scores >= 0
        expected = layer.weight * keep * scales[name]
        torch.testing.assert_close(extracted.get_submodule(name).weight, expected, rtol=0, atol=0)
        # training forward: the sampled kept weights carry the same factor
        sampled = method.sampled_weight(layer).detach()
        nonzero = sampled != 0
        torch.testing.assert_close(sampled[nonzero], layer.weight[nonzero] * scales[name])
    x = digits_batch()
    model.eval()
    torch.testing.assert_close(extracted(x), model(x))


def test_smart_rescale_scale_receives_its_gradient():
    model, method = prepared("aslp", {"smart_rescale": True})
    randomise_scores(model, seed=4)
    layer = next(layer for _, layer in masked_layers(model))
    upstream = torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(9))
    method.set_sample_generator(torch.Generator().manual_seed(8))
    (method.sampled_weight(layer) * upstream).sum().backward()
    noise = logistic_noise(layer.scores.shape, torch.Generator().manual_seed(8), "cpu",
                           layer.scores.dtype)
    keep = (layer.scores.detach() + noise) > 0
    expected = (upstream * layer.weight * keep).sum()
    assert layer.scale.grad is not None and float(layer.scale.grad) != 0
    torch.testing.assert_close(layer.scale.grad, expected, rtol=1e-5, atol=1e-6)
    # through the whole network, every layer's scale gets a gradient
    model.train()
    model.zero_grad()
    F.cross_entropy(model(digits_batch()), torch.arange(6)).backward()
    for _, layer in masked_layers(model):
        assert layer.scale.grad is not None and torch.isfinite(layer.scale.grad)
        assert layer.scores.grad is not None and torch.count_nonzero(layer.scores.grad) > 0


def test_gumbel_pair_estimator_trains_the_logits_only():
    model, method = prepared("aslp", {"estimator": "gumbel_pair"})
    weights = {name: p.detach().clone() for name, p in model.named_parameters()
               if not name.endswith("scores")}
    optimisers = [spec.build() for spec in method.optimizer_specs(model)]
    model.train()
    F.cross_entropy(model(digits_batch()), torch.arange(6)).backward()
    for optimiser in optimisers:
        optimiser.step()
    for name, p in model.named_parameters():
        if name.endswith("scores"):
            assert torch.count_nonzero(p) > 0  # moved away from the initial zeros
        else:
            assert torch.equal(p, weights[name])


def test_initial_logits_are_zero_so_every_weight_starts_at_probability_one_half():
    model, method = prepared("aslp")
    for _, layer in masked_layers(model):
        assert torch.equal(layer.scores, torch.zeros_like(layer.weight))
        assert torch.equal(method.keep_probability(layer), torch.full_like(layer.weight, 0.5))
    assert methods.get("aslp") is ASLP and ASLP().traits().stochastic


def test_removed_weights_are_exact_zeros_even_with_a_non_finite_scale():
    """base.extract documents exact zeros where a scale is not finite (0 * inf would be nan)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5))
    method = ASLP(smart_rescale=True)
    method.prepare(model)
    with torch.no_grad():
        model[0].scores.copy_(torch.randn(5, 6, generator=torch.Generator().manual_seed(1)))
        model[0].scale.fill_(float("inf"))
    extracted, stats = method.extract(model)
    keep = model[0].scores >= 0
    assert torch.all(extracted[0].weight[~keep] == 0)
    assert torch.all(torch.isinf(extracted[0].weight[keep]))
    assert stats.kept == int(keep.sum())
