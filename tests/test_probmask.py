"""ProbMask (docs/methods/probmask.md): the projection onto the global budget, the relaxed sample
and its temperature, the schedules, and the global top-k extraction."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from subnetbench.methods.base import StepProgress
from subnetbench.methods.layers import kept_count, masked_layers
from subnetbench.methods.options import OptionError
from subnetbench.methods.probmask import (
    ProbMask,
    annealed_temperature,
    budget_shift,
    keep_budget,
    relaxed_keep,
)
from tests.helpers import (
    binomial_tolerance,
    digits_batch,
    prepared,
    single_torch_thread,  # noqa: F401  (autouse fixture)
)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def scores_and_budget(draw):
    n = draw(st.integers(1, 60))
    values = draw(st.lists(st.one_of(st.floats(-1, 2.5), st.sampled_from([0.0, 0.5, 1.0, 1.5])),
                           min_size=n, max_size=n))
    return torch.tensor(values, dtype=torch.float64), draw(st.floats(0, n))


@SETTINGS
@given(case=scores_and_budget())
def test_the_projection_keeps_exactly_the_budget_in_expectation(case):
    """ProbMask's projection: p = clamp(s - v, 0, 1) with v >= 0 the smallest shift such that
    sum p <= K; where clamping alone exceeds K, sum p == K (the expected kept count is the budget)."""
    scores, budget = case
    v = float(budget_shift(scores, budget))
    p = (scores - v).clamp(0, 1)
    assert v >= 0 and torch.all((0 <= p) & (p <= 1))
    if float(scores.clamp(0, 1).sum()) <= budget:
        assert v == 0  # already within the budget: only clamped
    else:
        assert math.isclose(float(p.sum()), budget, rel_tol=1e-9, abs_tol=1e-9)


@SETTINGS
@given(case=scores_and_budget())
def test_the_projection_is_the_nearest_point_of_the_budget_set(case):
    """Euclidean projection: no feasible point nearer than p (checked against random feasible
    points and small feasible moves of p)."""
    scores, budget = case
    p = (scores - budget_shift(scores, budget)).clamp(0, 1)
    distance = float(((p - scores) ** 2).sum())
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        q = torch.rand(scores.shape, generator=generator, dtype=scores.dtype)
        if q.sum() > budget:
            q = q * (budget / float(q.sum()))
        assert float(((q - scores) ** 2).sum()) >= distance - 1e-9


def test_the_relaxation_is_a_bernoulli_of_p_and_hardens_as_the_temperature_falls():
    """sigmoid((logit p + L) / tau) > 1/2 exactly when a Bernoulli(p) keeps (any tau), and its
    distance to that hard sample shrinks to 0 as tau falls (the concrete relaxation's limit)."""
    generator = torch.Generator().manual_seed(0)
    n = 200_000
    p = torch.full((n,), 0.3)
    u_a, u_b = torch.rand(n, generator=generator), torch.rand(n, generator=generator)
    hard = (relaxed_keep(p, u_a, u_b, 1.0) > 0.5).float()
    assert abs(float(hard.mean()) - 0.3) < binomial_tolerance(0.3, n)
    gaps = []
    for tau in (1.0, 0.3, 0.03, 0.003):
        soft = relaxed_keep(p, u_a, u_b, tau)
        assert torch.equal(soft > 0.5, hard > 0.5)
        gaps.append(float((soft - hard).abs().mean()))
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 0.01 and gaps[0] > 0.1


@SETTINGS
@given(p=st.floats(0.05, 0.95), tau=st.floats(0.05, 2.0))
def test_the_gradient_of_the_relaxation_is_its_derivative_in_p(p, tau):
    """d/dp sigmoid((logit p + L) / tau) = s (1 - s) / tau * (1 / p + 1 / (1 - p))."""
    u_a, u_b = torch.tensor([0.3]), torch.tensor([0.6])
    probability = torch.tensor([p], requires_grad=True)
    soft = relaxed_keep(probability, u_a, u_b, tau)
    soft.sum().backward()
    s = float(soft.detach())
    expected = s * (1 - s) / tau * (1 / p + 1 / (1 - p))
    assert math.isclose(float(probability.grad), expected, rel_tol=1e-3, abs_tol=1e-6)


@SETTINGS
@given(epochs=st.integers(1, 400), fraction=st.floats(0.01, 1.0))
def test_the_schedules_scale_to_the_budget_of_epochs(epochs, fraction):
    """tau falls linearly per epoch from 1 to 0.03 over the round (the code's annealing); the
    budget ramps cubically from every weight to the target between the ramp's epochs."""
    first, last = StepProgress(0, 7, epochs), StepProgress(7 * epochs - 1, 7, epochs)
    assert annealed_temperature(first, 1.0, 0.03) == 1.0
    assert math.isclose(annealed_temperature(last, 1.0, 0.03), 0.03 + 0.97 / epochs)
    taus = [annealed_temperature(StepProgress(7 * e, 7, epochs), 1.0, 0.03) for e in range(epochs)]
    assert taus == sorted(taus, reverse=True)
    budgets = [keep_budget(StepProgress(7 * e, 7, epochs), fraction, 0.16, 0.6, 1.0)
               for e in range(epochs)]
    assert budgets == sorted(budgets, reverse=True)
    assert budgets[0] == (1.0 if int(0.16 * epochs) > 0 or int(0.6 * epochs) > 0 else fraction)
    assert budgets[-1] == fraction  # the ramp ends at epoch int(0.6 E) <= E - 1
    for e, b in enumerate(budgets):
        assert fraction <= b <= 1.0
        if e >= int(0.6 * epochs):
            assert b == fraction


def _train_steps(model, method, steps: int, steps_per_epoch: int, epochs: int) -> None:
    optimiser = method.optimizer_specs(model)[0].build()
    model.train()
    for step in range(steps):
        progress = StepProgress(step, steps_per_epoch, epochs)
        method.begin_step(model, progress)
        loss = F.cross_entropy(model(digits_batch(seed=step)), torch.arange(6))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        method.end_step(model, progress)


@pytest.mark.parametrize("keep_fraction", [0.5, 0.2])
def test_training_keeps_the_sum_of_probabilities_at_the_budget_and_extracts_the_target(keep_fraction):
    model, method = prepared("probmask", {"keep_fraction": keep_fraction, "lr": 0.05})
    _train_steps(model, method, steps=12, steps_per_epoch=2, epochs=6)
    layers = [layer for _, layer in masked_layers(model)]
    total = sum(layer.scores.numel() for layer in layers)
    probabilities = torch.cat([layer.scores.detach().flatten() for layer in layers])
    assert torch.all((0 <= probabilities) & (probabilities <= 1))
    # past the ramp's end the budget is the target: sum p == keep_fraction * n
    assert math.isclose(float(probabilities.double().sum()), keep_fraction * total, rel_tol=1e-5)
    assert float(layers[0].temperature) == pytest.approx(0.03 + 0.97 * (1 - 5 / 6))
    _, stats = method.extract(model)
    assert stats.kept == kept_count(keep_fraction, total)
    # the kept weights are the highest probabilities of the whole network
    threshold = probabilities.kthvalue(total - stats.kept + 1).values
    for _, layer in masked_layers(model):
        keep = method.keep_mask(layer)
        assert torch.all(layer.scores[keep] >= threshold) and torch.all(layer.scores[~keep] <= threshold)


def test_evaluation_on_sampled_masks_takes_the_zero_temperature_limit_a_bernoulli_of_p():
    """The released code's discrete evaluation: each weight kept or dropped, kept with probability p;
    validation follows the extracted (deterministic) network instead."""
    model, method = prepared("probmask")
    layer = dict(masked_layers(model))["classifier.1"]
    with torch.no_grad():
        layer.scores.fill_(0.3)
    layer.eval()
    layer.mask_sampling = True
    weight = layer.effective_weight()
    kept = weight != 0
    assert torch.equal(weight[kept], layer.weight[kept])
    assert abs(float(kept.float().mean()) - 0.3) < binomial_tolerance(0.3, kept.numel())
    assert method.traits().sampled_validation is False and method.traits().stochastic


def test_the_noise_of_a_forward_is_two_uniforms_per_weight_from_the_sample_stream():
    model, method = prepared("probmask")
    layer = next(layer for _, layer in masked_layers(model))
    method.set_sample_generator(torch.Generator().manual_seed(9))
    first = method.draw_noise(layer)
    method.set_sample_generator(torch.Generator().manual_seed(9))
    assert len(first) == 2 and all(torch.equal(a, b) for a, b in zip(first, method.draw_noise(layer)))
    assert all(u.shape == layer.weight.shape for u in first)


@pytest.mark.parametrize("options, message", [
    ({"keep_fraction": 0.0}, "keep_fraction"), ({"temperature_end": 0}, "temperature_end"),
    ({"ramp_start": 0.7, "ramp_end": 0.6}, "ramp_end"), ({"initial_keep": 0.2}, "initial_keep"),
    ({"initial_probability": 1.5}, "initial_probability"),
])
def test_bad_options_are_refused_by_name(options, message):
    with pytest.raises(OptionError, match=message):
        ProbMask(**options)
