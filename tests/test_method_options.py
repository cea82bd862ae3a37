"""The built-in methods: what each trains, and how each refuses a bad option (one paragraph naming
the option, the value and what is allowed). The properties every method shares are in
tests/test_conformance.py."""
from __future__ import annotations

import pytest
import torch

from subnetbench import methods
from tests.helpers import digits_net, single_torch_thread  # noqa: F401  (autouse fixture)

TRAINED = {
    "aslp": {"scores"}, "supermask": {"scores"}, "edge_popup": {"scores"},
    "dense": {"weight", "bias"}, "random_pruning": {"weight", "bias"},
    "magnitude_pruning": {"weight", "bias"},
}
MASK_ONLY = ("aslp", "supermask", "edge_popup")


@pytest.mark.parametrize("name", sorted(TRAINED))
@pytest.mark.parametrize("smart_rescale", [False, True])
def test_each_builtin_trains_what_the_paper_says(name, smart_rescale):
    if smart_rescale and name not in MASK_ONLY:
        pytest.skip("smart rescale is an option of the mask-only methods")
    method = methods.get(name)(**({"smart_rescale": True} if smart_rescale else {}))
    model = method.prepare(digits_net(), torch.Generator().manual_seed(0))
    expected = TRAINED[name] | ({"scale"} if smart_rescale else set())
    assert methods.trainable_tensor_names(model) == method.traits().trainable_tensors == expected
    assert method.traits().family == (methods.MASK_ONLY if name in MASK_ONLY else methods.WEIGHT_TRAINING)


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
