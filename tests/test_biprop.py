"""biprop (docs/methods/biprop.md): binarised kept weights alpha * sign(w) with the paper's gain, the
edge-popup mask, and the gradient the scores receive."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from subnetbench.methods.biprop import binary_gain
from subnetbench.methods.edge_popup import top_k_mask
from subnetbench.methods.layers import kept_count, masked_layers
from tests.helpers import (
    digits_batch,
    prepared,
    randomise_scores,
    single_torch_thread,  # noqa: F401  (autouse fixture)
)

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


@SETTINGS
@given(keep_fraction=st.floats(0.05, 1.0), seed=st.integers(0, 100))
def test_kept_weights_are_the_gain_times_their_sign_and_the_gain_is_the_papers(keep_fraction, seed):
    """w_hat = alpha * sign(w) * m, alpha = ||m * w||_1 / ||m||_1 over the top-|score| mask m, and
    every layer keeps exactly its rounded fraction."""
    model, method = prepared("biprop", {"keep_fraction": keep_fraction})
    randomise_scores(model, seed)
    model.eval()
    for _, layer in masked_layers(model):
        keep = top_k_mask(layer.scores.abs(), keep_fraction)
        assert torch.equal(method.keep_mask(layer), keep)
        assert int(keep.sum()) == kept_count(keep_fraction, keep.numel())
        weight = layer.weight.detach()
        alpha = weight.abs()[keep].sum() / keep.sum()
        expected = torch.where(keep, alpha * torch.sign(weight), torch.zeros_like(weight))
        torch.testing.assert_close(layer.effective_weight().detach(), expected)


@SETTINGS
@given(values=st.lists(st.floats(-5, 5).filter(lambda v: abs(v) > 1e-3), min_size=1, max_size=40),
       other=st.floats(0, 10))
def test_the_gain_is_the_best_scale_of_a_binary_approximation(values, other):
    """alpha = mean |w| minimises ||w - a sign(w)||^2 over a (the paper's optimal gain)."""
    weight = torch.tensor(values, dtype=torch.float64)
    keep = torch.ones_like(weight, dtype=torch.bool)
    alpha = float(binary_gain(weight, keep))
    error = float(((weight - alpha * weight.sign()) ** 2).sum())
    assert error <= float(((weight - other * weight.sign()) ** 2).sum()) + 1e-9


def test_scores_receive_the_gradient_of_the_kept_weight_through_abs():
    """The code's backward: d loss / d |score| = g * |w| * sign(w) = g * w, with g the gradient of
    the binarised weight (the gain a constant), then times sign(score) through |score|."""
    model, method = prepared("biprop")
    randomise_scores(model, 3)
    model.train()
    weights = {}
    for name, layer in masked_layers(model):
        original = layer.effective_weight

        def capture(layer=layer, name=name, original=original):
            weights[name] = original()
            weights[name].retain_grad()
            return weights[name]
        layer.effective_weight = capture
    F.cross_entropy(model(digits_batch()), torch.arange(6)).backward()
    for name, layer in masked_layers(model):
        g = weights[name].grad
        expected = g * layer.weight.detach() * torch.sign(layer.scores.detach())
        torch.testing.assert_close(layer.scores.grad, expected)
        assert layer.weight.grad is None


@pytest.mark.parametrize("keep_fraction", [0.5, 0.2])
def test_the_extracted_network_holds_two_magnitudes_per_layer(keep_fraction):
    """A multi-prize ticket: each extracted layer holds 0 and +-alpha only."""
    model, method = prepared("biprop", {"keep_fraction": keep_fraction})
    randomise_scores(model, 0)
    extracted, stats = method.extract(model)
    assert stats.kept == sum(kept_count(keep_fraction, layer.weight.numel())
                             for _, layer in masked_layers(model))
    for module in extracted.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            magnitudes = module.weight.abs().unique()
            assert len(magnitudes) == 2 and magnitudes[0] == 0
