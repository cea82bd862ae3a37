"""Properties every method shares: what trains, what stays frozen, what extraction yields, and how
bad options are refused."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from subnetbench import methods
from subnetbench.methods.base import MASK_ONLY, WEIGHT_TRAINING, MaskedLayer, masked_layers
from tests.helpers import (
    ALL_CONFIGS,
    MASK_ONLY_CONFIGS,
    WEIGHT_TRAINING_CONFIGS,
    config_id,
    digits_batch,
    make_nontrivial,
    prepared,
    single_torch_thread,  # noqa: F401  (autouse fixture)
)

DOCUMENTED_TRAINABLE = {
    "aslp": {"scores"}, "supermask": {"scores"}, "edge_popup": {"scores"},
    "dense": {"weight", "bias"}, "random_pruning": {"weight", "bias"},
    "magnitude_pruning": {"weight", "bias"},
}


def one_step(model: nn.Module, method: methods.Method, seed: int = 0) -> None:
    optimisers = [spec.build() for spec in method.optimizer_specs(model)]
    model.train()
    for optimiser in optimisers:
        optimiser.zero_grad()
    F.cross_entropy(model(digits_batch(seed=seed)), torch.arange(6)).backward()
    for optimiser in optimisers:
        optimiser.step()


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
def test_trainable_tensors_are_exactly_the_documented_ones(config):
    name, options = config
    model, method = prepared(name, options)
    documented = set(DOCUMENTED_TRAINABLE[name])
    if options.get("smart_rescale"):
        documented.add("scale")
    assert methods.trainable_tensor_names(model) == set(method.trainable_tensors()) == documented
    # and the optimiser groups hold exactly the tensors that require gradients
    in_specs = {id(p) for spec in method.optimizer_specs(model) for p in spec.params}
    assert in_specs == {id(p) for p in model.parameters() if p.requires_grad}
    assert method.family == (MASK_ONLY if name in ("aslp", "supermask", "edge_popup")
                             else WEIGHT_TRAINING)


@pytest.mark.parametrize("config", MASK_ONLY_CONFIGS, ids=config_id)
def test_an_optimiser_step_leaves_weights_and_biases_bit_identical(config):
    name, options = config
    model, method = prepared(name, options)
    make_nontrivial(model, method)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()
              if n.rpartition(".")[2] in ("weight", "bias")}
    learned = {n: p.detach().clone() for n, p in model.named_parameters()
               if n.rpartition(".")[2] not in ("weight", "bias")}
    one_step(model, method)
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
            assert p.grad is None
    # not vacuous: the mask parameters (and scales) did move
    moved = [n for n, p in model.named_parameters() if n in learned and not torch.equal(p, learned[n])]
    assert any(n.endswith("scores") for n in moved)
    if options.get("smart_rescale"):
        assert any(n.endswith("scale") for n in moved)


@pytest.mark.parametrize("config", WEIGHT_TRAINING_CONFIGS, ids=config_id)
def test_weight_training_methods_train_weights_and_biases(config):
    name, options = config
    model, method = prepared(name, options)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    masks = {n: layer.mask.clone() for n, layer in masked_layers(model) if hasattr(layer, "mask")}
    one_step(model, method)
    for n, p in model.named_parameters():
        assert not torch.equal(p, before[n]), n
    for n, layer in masked_layers(model):
        if n in masks:
            assert torch.equal(layer.mask, masks[n])  # a step never changes the mask


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
def test_extraction_reports_its_nonzeros_and_computes_the_deterministic_forward(config):
    name, options = config
    model, method = prepared(name, options)
    make_nontrivial(model, method, seed=7)
    assert all(torch.all(layer.weight != 0) for _, layer in masked_layers(model))
    state = copy.deepcopy(model.state_dict())
    extracted, stats = method.extract(model)
    # only plain layers remain
    assert not any(isinstance(m, MaskedLayer) for m in extracted.modules())
    plain = [m for m in extracted.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert plain and all(type(m) in (nn.Conv2d, nn.Linear) for m in plain)
    # the reported sparsity is what the extracted module holds, and what the method keeps
    nonzero, total = methods.count_nonzero_weights(extracted)
    assert (stats.kept, stats.total) == (nonzero, total)
    assert stats.kept_fraction == nonzero / total
    expected_kept = sum(int(method.keep_mask(layer).sum()) for _, layer in masked_layers(model))
    assert stats.kept == expected_kept
    for layer_name, layer in masked_layers(model):
        assert stats.layer_kept[layer_name] == int(method.keep_mask(layer).sum())
        assert stats.layer_total[layer_name] == layer.weight.numel()
    if name != "dense":
        assert 0 < stats.kept < stats.total  # the mask is not trivial
    # the extracted network computes the deterministic (evaluation) forward
    x = digits_batch(seed=3)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(extracted(x), model(x), rtol=1e-5, atol=1e-6)
    # extraction leaves the trainable network untouched
    assert all(isinstance(m, MaskedLayer) for _, m in masked_layers(model))
    after = model.state_dict()
    assert state.keys() == after.keys() and all(torch.equal(state[k], after[k]) for k in state)
    assert not any(p.requires_grad for p in extracted.parameters())


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
def test_preparation_is_determined_by_the_generator(config):
    name, options = config
    first, _ = prepared(name, options, seed=5)
    again, _ = prepared(name, options, seed=5)
    a, b = first.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_prepared_network_cannot_be_prepared_twice():
    model, _ = prepared("aslp")
    with pytest.raises(ValueError, match="already prepared"):
        methods.get("supermask")().prepare(model)


def test_stochastic_methods_sample_and_deterministic_ones_do_not():
    x = digits_batch()
    for name in methods.names():
        model, method = prepared(name)
        make_nontrivial(model, method)
        model.eval()
        with torch.no_grad():
            deterministic = model(x)
            methods.set_mask_sampling(model, True)
            sampled = model(x)
        assert torch.equal(sampled, deterministic) != type(method).stochastic, name


BAD_OPTIONS = [
    ("aslp", "temperature", 0.0),
    ("aslp", "temperature", -1),
    ("aslp", "estimator", "gumbel"),
    ("aslp", "hard", "yes"),
    ("aslp", "eval_samples", 0),
    ("aslp", "mask_lr", 0),
    ("aslp", "mask_momentum", 1.0),
    ("aslp", "smart_rescale", 1),
    ("supermask", "dynamic_weight_rescale", "on"),
    ("supermask", "eval_samples", 2.5),
    ("edge_popup", "keep_fraction", 0.0),
    ("edge_popup", "keep_fraction", 1.5),
    ("edge_popup", "keep_fraction", True),
    ("edge_popup", "scale_lr", -0.1),
    ("random_pruning", "distribution", "normal"),
    ("random_pruning", "keep_fraction", 0),
    ("magnitude_pruning", "scope", "network"),
    ("magnitude_pruning", "schedule", "gradual"),
    ("magnitude_pruning", "prune_rounds", 0),
    ("magnitude_pruning", "rewind", "yes"),
    ("dense", "optimizer", "rmsprop"),
    ("dense", "lr", -1e-3),
    ("dense", "weight_decay", -1),
    ("dense", "momentum", 1.0),
]


@pytest.mark.parametrize("name, option, value", BAD_OPTIONS)
def test_a_bad_option_names_itself_its_value_and_what_is_allowed(name, option, value):
    with pytest.raises(methods.OptionError) as info:
        methods.get(name)(**{option: value})
    message = str(info.value)
    assert f"{option}={value!r}" in message
    assert "expected" in message
    allowed = message.split("expected", 1)[1].strip()
    assert allowed  # says what is allowed
    # the same holds when the options object is built directly
    with pytest.raises(methods.OptionError):
        methods.get(name).Options(**{option: value})


def test_options_of_another_method_are_refused():
    aslp_options = methods.get("aslp").Options()
    with pytest.raises(methods.OptionError, match="ASLPOptions"):
        methods.get("supermask")(aslp_options)


def test_allowed_values_are_listed():
    with pytest.raises(methods.OptionError, match="logistic.*gumbel_pair"):
        methods.get("aslp")(estimator="exact")
    with pytest.raises(methods.OptionError, match="KEPT"):
        methods.get("edge_popup")(keep_fraction=2)
    with pytest.raises(methods.OptionError, match="lr"):
        methods.OptimizerSpec("x", [], lr=0)
