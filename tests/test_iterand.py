"""IteRand (docs/methods/iterand.md): which weights a re-randomisation may replace, at which rate,
at which steps, from which stream, and with which distribution."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subnetbench.methods.base import StepProgress
from subnetbench.methods.edge_popup import percentile_mask
from subnetbench.methods.initialisation import initialise
from subnetbench.methods.iterand import PAPER_PERIOD_FRACTION, IteRand, rerandomise
from subnetbench.methods.layers import masked_layers
from subnetbench.methods.options import OptionError
from tests.helpers import (
    binomial_tolerance,
    digits_net,
    ks_critical,
    prepared,
    randomise_scores,
    single_torch_thread,  # noqa: F401  (autouse fixture)
)

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)


def _weights(model) -> list[torch.Tensor]:
    return [layer.weight.detach().clone() for _, layer in masked_layers(model)]


@SETTINGS
@given(rate=st.floats(0, 1), seed=st.integers(0, 100))
def test_rerandomise_replaces_only_candidates_each_with_the_stated_probability(rate, seed):
    generator = torch.Generator().manual_seed(seed)
    n = 20_000
    weight, fresh = torch.randn(n, generator=generator), torch.randn(n, generator=generator) + 10
    candidates = torch.rand(n, generator=generator) < 0.5
    out = rerandomise(weight, candidates, fresh, torch.rand(n, generator=generator), rate)
    assert torch.equal(out[~candidates], weight[~candidates])  # kept weights never move
    replaced = out[candidates] == fresh[candidates]
    assert torch.all(replaced | (out[candidates] == weight[candidates]))
    assert abs(float(replaced.float().mean()) - rate) < binomial_tolerance(rate, int(candidates.sum()))


@settings(max_examples=12, deadline=None, derandomize=True)
@given(keep_fraction=st.floats(0.05, 0.95), rerand_rate=st.one_of(st.just(1.0), st.floats(0.01, 1.0)),
       seed=st.integers(0, 50))
def test_the_candidates_are_the_lowest_scores_of_the_pruned_fraction_times_the_rate(
        keep_fraction, rerand_rate, seed):
    """The code's mask of sparsity (1 - k) * rate: at rate 1 exactly the pruned weights."""
    model, method = prepared("iterand", {"keep_fraction": keep_fraction, "rerand_rate": rerand_rate})
    randomise_scores(model, seed)
    for _, layer in masked_layers(model):
        candidates = method.candidates(layer)
        removed = (1 - keep_fraction) * rerand_rate
        assert torch.equal(candidates, ~percentile_mask(layer.scores, 1 - removed))
        if rerand_rate == 1.0:
            assert torch.equal(candidates, ~method.keep_mask(layer))
        assert torch.all(candidates <= ~method.keep_mask(layer))  # never a kept weight


@pytest.mark.parametrize("period", [1, 3, 7])
def test_weights_change_exactly_before_the_steps_of_the_period(period):
    """The code's callback: before step t when (t + 1) % K == 0, and only pruned weights."""
    model, method = prepared("iterand", {"rerand_period": period, "rerand_lambda": 0.5})
    randomise_scores(model, 1)
    for step in range(15):
        before = _weights(model)
        method.begin_step(model, StepProgress(step, 5, 3))
        after = _weights(model)
        changed = any(not torch.equal(a, b) for a, b in zip(before, after))
        assert changed == ((step + 1) % period == 0), step
        for (_, layer), a, b in zip(masked_layers(model), before, after):
            keep = method.keep_mask(layer)
            assert torch.equal(a[keep], b[keep])


def test_the_default_period_is_the_papers_share_of_the_budget():
    method = IteRand()
    assert method.period(StepProgress(0, 352, 100)) == 300  # the paper's CIFAR-10 recipe
    assert method.period(StepProgress(0, 41, 30)) == round(PAPER_PERIOD_FRACTION * 41 * 30) == 10
    assert method.period(StepProgress(0, 2, 3)) == 1  # never 0
    assert IteRand(rerand_period=17).period(StepProgress(0, 352, 100)) == 17


def test_the_draws_come_from_the_runs_seeded_stream_not_the_global_one():
    """Same preparation seed, same events: same weights, whatever else was drawn, and the global
    generator untouched; another seed gives other draws; a resumed run (fresh preparation,
    later event) draws what the uninterrupted run drew."""
    def run(seed: int, steps: range):
        model, method = prepared("iterand", {"rerand_period": 2, "rerand_lambda": 1.0}, seed=seed)
        randomise_scores(model, 0)
        for step in steps:
            method.begin_step(model, StepProgress(step, 4, 2))
        return model

    state = torch.get_rng_state()
    a, b = run(0, range(8)), run(0, range(8))
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(b)))
    assert not all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(run(1, range(8)))))
    # the last event (step 7) alone, on a network holding the state before it
    resumed = run(0, range(6))
    _, method = prepared("iterand", {"rerand_period": 2, "rerand_lambda": 1.0}, seed=0)
    method.begin_step(resumed, StepProgress(7, 4, 2))
    assert all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(resumed)))


@pytest.mark.parametrize("scheme", ["kaiming_normal", "signed_constant"])
def test_fresh_weights_follow_the_layers_initial_distribution(scheme):
    model = digits_net(0)
    initialise(model, scheme, torch.Generator().manual_seed(0))
    method = IteRand(rerand_period=1, rerand_lambda=1.0)
    method.prepare(model, torch.Generator().manual_seed(1))
    layer = dict(masked_layers(model))["classifier.1"]
    initial = layer.weight.detach().clone()
    assert layer.redraw == scheme  # recognised at preparation ("auto")
    method.begin_step(model, StepProgress(0, 1, 1))
    candidates = ~method.keep_mask(layer)
    fresh = layer.weight.detach()[candidates]
    assert not torch.equal(fresh, initial[candidates])
    if scheme == "signed_constant":
        constant = float(initial.abs()[0, 0])
        assert torch.all(fresh.abs() == constant)
        assert abs(float((fresh > 0).float().mean()) - 0.5) < binomial_tolerance(0.5, fresh.numel())
    else:
        std = math.sqrt(2 / initial[0].numel())
        normal = torch.distributions.Normal(0.0, std)
        values, _ = torch.sort(fresh.double())
        cdf = normal.cdf(values.float()).double()
        empirical = torch.arange(1, values.numel() + 1, dtype=torch.float64) / values.numel()
        assert float((cdf - empirical).abs().max()) < ks_critical(values.numel()) + 1 / values.numel()


@pytest.mark.parametrize("options, message", [
    ({"rerand_lambda": 1.5}, "rerand_lambda"), ({"rerand_period": -1}, "rerand_period"),
    ({"rerand_period_fraction": 0}, "rerand_period_fraction"), ({"redraw": "uniform"}, "redraw"),
])
def test_bad_options_are_refused_by_name(options, message):
    with pytest.raises(OptionError, match=message):
        IteRand(**options)
