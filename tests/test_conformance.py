"""The conformance suite: properties every registered method must have, built-in or plugin.

It runs over ``methods.names()`` (so an installed plugin is tested too: ``pytest
tests/test_conformance.py -k NAME``) and the plugin guide's examples (one of them learns nothing),
each method with the option sets it declares in
``traits().test_options``: what trains and what stays frozen, what extraction yields, that
preparation is seeded, that the traits the engine reads are well formed and agree with the
method's behaviour, and that seeds of the method can be trained together in one grouped step unless
the method says why not.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from subnetbench import methods
from subnetbench.benchmark.data import DATASET_INFO, DeviceData, Split
from subnetbench.benchmark.grouped import grouped_forward
from subnetbench.benchmark.recipe import Recipe
from subnetbench.benchmark.training import TRAINING_STREAMS, Trainer, separate_forward
from subnetbench.methods.base import FAMILIES, MASK_ONLY, WEIGHT_TRAINING, MethodTraits
from subnetbench.methods.layers import MaskedLayer, masked_layers
from tests.helpers import (
    digits_batch,
    example_methods,
    prepared,
    single_torch_thread,  # noqa: F401  (autouse fixture)
)

# Every registered method, and the plugin guide's examples (one of which learns nothing).
CLASSES = [methods.get(name) for name in methods.names()] + example_methods()
CONFIGS = [(cls, options) for cls in CLASSES for options in cls().traits().test_options]


def config_id(config: tuple[type[methods.Method], dict]) -> str:
    cls, options = config
    return cls.name + "".join(f"-{k}={v}" for k, v in options.items())


@torch.no_grad()
def make_nontrivial(model: nn.Module, method: methods.Method, seed: int = 0) -> None:
    """Random values for the per-layer tensors a mask-only method learns (positive for scalars,
    such as smart rescale's scale), then every training round's start (pruning rounds)."""
    generator = torch.Generator().manual_seed(seed)
    learned = method.traits().trainable_tensors - {"weight", "bias"}
    for _, layer in masked_layers(model):
        for name in learned:
            tensor = getattr(layer, name)
            if tensor.dim() == 0:
                tensor.copy_(0.5 + torch.rand((), generator=generator))
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
    for round_index in range(method.traits().rounds):
        method.begin_round(model, round_index)


MASK_ONLY_CONFIGS = [c for c in CONFIGS if c[0](**c[1]).traits().family == MASK_ONLY]
WEIGHT_TRAINING_CONFIGS = [c for c in CONFIGS if c[0](**c[1]).traits().family == WEIGHT_TRAINING]


def one_step(model: nn.Module, method: methods.Method, seed: int = 0) -> None:
    optimisers = [spec.build() for spec in method.optimizer_specs(model)]
    model.train()
    loss = F.cross_entropy(model(digits_batch(seed=seed)), torch.arange(6))
    if not optimisers:  # a method that learns nothing: no backward, as in the engine
        assert not loss.requires_grad
        return
    for optimiser in optimisers:
        optimiser.zero_grad()
    loss.backward()
    for optimiser in optimisers:
        optimiser.step()


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_trainable_tensors_are_exactly_the_declared_ones(config):
    cls, options = config
    model, method = prepared(cls, options)
    traits = method.traits()
    assert methods.trainable_tensor_names(model) == traits.trainable_tensors
    # and the optimiser groups hold exactly the tensors that require gradients, each once
    in_specs = [id(p) for spec in method.optimizer_specs(model) for p in spec.params]
    assert sorted(in_specs) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert traits.family in FAMILIES
    if traits.family == MASK_ONLY:
        assert not {"weight", "bias"} & traits.trainable_tensors


@pytest.mark.parametrize("config", MASK_ONLY_CONFIGS, ids=config_id)
def test_an_optimiser_step_leaves_weights_and_biases_bit_identical(config):
    cls, options = config
    model, method = prepared(cls, options)
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
    # not vacuous: every kind of tensor the method learns did move
    moved = {n.rpartition(".")[2] for n, p in model.named_parameters()
             if n in learned and not torch.equal(p, learned[n])}
    assert moved == method.traits().trainable_tensors


@pytest.mark.parametrize("config", WEIGHT_TRAINING_CONFIGS, ids=config_id)
def test_weight_training_methods_train_weights_and_biases(config):
    cls, options = config
    model, method = prepared(cls, options)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    masks = {n: layer.mask.clone() for n, layer in masked_layers(model) if hasattr(layer, "mask")}
    one_step(model, method)
    for n, p in model.named_parameters():
        assert not torch.equal(p, before[n]), n
    for n, layer in masked_layers(model):
        if n in masks:
            assert torch.equal(layer.mask, masks[n])  # a step never changes the mask


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_extraction_reports_its_nonzeros_and_computes_the_deterministic_forward(config):
    cls, options = config
    model, method = prepared(cls, options)
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
    if method.traits().fixed_keep_fraction != 1.0:
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


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_preparation_is_determined_by_the_generator(config):
    cls, options = config
    first, _ = prepared(cls, options, seed=5)
    again, _ = prepared(cls, options, seed=5)
    a, b = first.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_prepared_network_cannot_be_prepared_twice():
    model, _ = prepared("aslp")
    with pytest.raises(ValueError, match="already prepared"):
        methods.get("supermask")().prepare(model)


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_stochastic_methods_sample_and_deterministic_ones_do_not(config):
    cls, options = config
    x = digits_batch()
    model, method = prepared(cls, options)
    make_nontrivial(model, method)
    model.eval()
    with torch.no_grad():
        deterministic = model(x)
        methods.set_mask_sampling(model, True)
        sampled = model(x)
    assert torch.equal(sampled, deterministic) != method.traits().stochastic


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_the_declarations_the_engine_reads_are_consistent(config):
    cls, options = config
    model, method = prepared(cls, options)
    make_nontrivial(model, method, seed=3)
    traits = method.traits()
    assert isinstance(traits, MethodTraits)
    assert traits == MethodTraits(**vars(traits))  # what construction checks holds (types, ranges)
    samples = traits.evaluation_samples
    assert isinstance(samples, int) and samples >= 1
    assert samples == 1 or traits.stochastic  # only a sampling method averages samples
    assert not traits.sampled_validation or traits.stochastic  # only a sampling one
    assert isinstance(traits.rounds, int) and traits.rounds >= 1
    assert traits.rescaling is None or (isinstance(traits.rescaling, str) and traits.rescaling)
    refusal = traits.seed_batch_refusal
    assert refusal is None or (isinstance(refusal, str) and refusal)
    assert traits.rounds == 1 or refusal  # seeds trained together share one round
    assert traits.test_options[0] == {} and cls(**options).traits().test_options == traits.test_options
    labels = {spec.label for spec in method.optimizer_specs(model)}
    for labels_of_pass in traits.update_passes or ():  # each pass steps optimisers the method has
        assert labels_of_pass and set(labels_of_pass) <= labels
    for _, layer in masked_layers(model):
        probability = method.keep_probability(layer)
        if probability is not None:
            assert probability.shape == layer.weight.shape
            assert torch.all((0 <= probability) & (probability <= 1))
            # the extraction keeps the weights whose keep probability is at least one half
            assert torch.equal(method.keep_mask(layer), probability >= 0.5)
    # The options every method names alike mean the same: what the engine reads follows them.
    if hasattr(method.options, "eval_samples"):
        assert samples == method.options.eval_samples
    if hasattr(method.options, "keep_fraction"):
        assert traits.fixed_keep_fraction == method.options.keep_fraction
    fixed = traits.fixed_keep_fraction
    if fixed is not None:
        assert 0 < fixed <= 1
        _, stats = method.extract(model)
        layers = len(stats.layer_total)  # each layer rounds its count by at most one weight
        assert abs(stats.kept - fixed * stats.total) <= layers


def _digits_trainer(cls: type[methods.Method], options: dict, seed: int) -> Trainer:
    generator = torch.Generator().manual_seed(100 + seed)

    def split(n: int) -> Split:
        return Split(torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=generator),
                     torch.randint(0, 10, (n,), generator=generator))

    model, method = prepared(cls, options, seed=seed)
    for round_index in range(method.traits().rounds):
        method.begin_round(model, round_index)
    generators = {stream: torch.Generator().manual_seed(10 * seed + i)
                  for i, stream in enumerate(TRAINING_STREAMS)}
    method.set_sample_generator(generators["mask-sampling"])
    data = DeviceData(DATASET_INFO["digits"], split(32), split(8), split(8))
    return Trainer(model, method, data, Recipe(batch_size=16, epochs=1), generators)


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_seeds_train_together_in_one_grouped_step_unless_the_method_refuses(config):
    """What --seed-batch on a GPU computes (one grouped forward for k seeds) is what the seeds
    compute alone: same logits and same gradients, for every method that can be seed-batched."""
    cls, options = config
    if cls(**options).traits().seed_batch_refusal is not None:
        pytest.skip(f"{cls.name} declares it cannot be seed-batched")
    together = [_digits_trainer(cls, options, seed) for seed in range(3)]
    alone = [_digits_trainer(cls, options, seed) for seed in range(3)]  # identical twins
    images = [t.preprocess(t.data.train.images[:16]) for t in together]
    labels = [t.data.train.labels[:16] for t in together]
    for trainer in together + alone:
        trainer.model.train()
    logits = grouped_forward(together, images)
    expected = separate_forward(alone, images)
    for out, ref in zip(logits, expected):
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    if not together[0].method.optimizer_specs(together[0].model):
        return  # a method that learns nothing has no gradient to compare
    torch.autograd.backward([F.cross_entropy(out, y) for out, y in zip(logits, labels)])
    torch.autograd.backward([F.cross_entropy(out, y) for out, y in zip(expected, labels)])
    for trainer, twin in zip(together, alone):
        grads = {n: p.grad for n, p in trainer.model.named_parameters() if p.grad is not None}
        reference = {n: p.grad for n, p in twin.model.named_parameters() if p.grad is not None}
        assert grads.keys() == reference.keys() and grads
        for key in grads:
            torch.testing.assert_close(grads[key], reference[key], rtol=1e-4, atol=1e-5)
