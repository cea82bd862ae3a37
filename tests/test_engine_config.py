"""Typed options of a run: parsing from strings, validation messages, namespaces, the config hash."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from subnetbench import methods
from subnetbench.benchmark import protocols
from subnetbench.benchmark.config import (
    build_method_options,
    build_recipe,
    make_config,
    parse_assignments,
)
from subnetbench.benchmark.recipe import RECIPE_PRESETS, Recipe
from subnetbench.methods.initialisation import INITIALISATIONS
from subnetbench.methods.options import OptionError

# A non-default value of every recipe key and how it is written on the command line.
RECIPE_VALUES = {
    "batch_size": (64, "64"),
    "epochs": (7, "7"),
    "patience": (0, "0"),
    "schedule": ("cosine", "cosine"),
    "init": ("signed_constant", "signed_constant"),
    "augmentation": (True, "true"),
    "normalise": (False, "false"),
    "validation_fraction": (0.25, "0.25"),
    "bias": (False, "0"),
    "eval_batch_size": (17, "17"),
    "signed_constant_layers": ("all", "all"),
    "validation_masks": ("deterministic", "deterministic"),
    # the fast-path keys (being added alongside this suite): used only where Recipe has them
    "channels_last": (True, "true"),
    "autocast": ("bf16", "bf16"),
    "compile": (True, "1"),
    "tf32": ("conv", "conv"),
    "checkpoint_interval": ("5", "5"),
}
RECIPE_KEYS = [f.name for f in dataclasses.fields(Recipe)]


def test_tf32_at_its_default_leaves_hashes_and_stored_options_as_they_were():
    """The default (the released code's stack: TF32 for convolutions and matrix products) changes
    nothing on a CPU: a configuration keeps its hash and its stored options; another value is a
    configuration of its own."""
    plain = make_config("digits-conv2", "aslp", 0)
    assert Recipe().tf32 == "all"
    assert "tf32" not in plain.options_dict()["recipe"] and not plain.non_default_options()
    strict = make_config("digits-conv2", "aslp", 0, {"tf32": "none"})
    assert strict.config_hash != plain.config_hash
    assert strict.options_dict()["recipe"]["tf32"] == "none"
    with pytest.raises(OptionError, match="tf32='half'"):
        make_config("digits-conv2", "aslp", 0, {"tf32": "half"})


def test_every_recipe_key_is_covered():
    missing = set(RECIPE_KEYS) - set(RECIPE_VALUES)
    assert not missing, f"add a non-default value of {sorted(missing)} to RECIPE_VALUES"


@pytest.mark.parametrize("key", RECIPE_KEYS)
def test_recipe_key_round_trips_from_a_string(key):
    value, text = RECIPE_VALUES[key]
    default = Recipe()
    assert getattr(default, key) != value  # the test sets a value the default does not have
    recipe = build_recipe(default, {key: text})
    assert getattr(recipe, key) == value
    assert type(getattr(recipe, key)) is type(value)
    # every other key keeps its default
    for other in RECIPE_KEYS:
        if other != key:
            assert getattr(recipe, other) == getattr(default, other)
    # str(value) parses back to the same value (the command line round trip)
    assert getattr(build_recipe(default, {key: str(value)}), key) == value


@pytest.mark.parametrize("text, expected", [("true", True), ("false", False), ("1", True),
                                            ("0", False), ("TRUE", True), ("False", False)])
def test_bools_accept_true_false_1_0(text, expected):
    recipe = build_recipe(Recipe(), {"augmentation": text, "bias": text})
    assert recipe.augmentation is expected and recipe.bias is expected


def test_optional_bool_accepts_none():
    assert build_recipe(Recipe(normalise=True), {"normalise": "none"}).normalise is None
    assert build_recipe(Recipe(), {"normalise": "1"}).normalise is True


@pytest.mark.parametrize("init", INITIALISATIONS)
def test_every_initialisation_is_accepted(init):
    assert build_recipe(Recipe(), {"init": init}).init == init


def test_unknown_key_names_it_and_suggests_the_closest():
    with pytest.raises(OptionError) as info:
        build_recipe(Recipe(), {"epocs": "3"})
    message = str(info.value)
    assert "'epocs'" in message
    assert "did you mean 'epochs'" in message


def test_unknown_key_through_make_config():
    with pytest.raises(OptionError, match="did you mean 'patience'"):
        make_config("digits-conv2", "aslp", 0, {"patiense": "3"})


@pytest.mark.parametrize("key, text, allowed", [
    ("epochs", "three", "an integer"),
    ("epochs", "2.5", "an integer"),
    ("batch_size", "", "an integer"),
    ("augmentation", "maybe", "true or false"),
    ("validation_fraction", "tenth", "a number"),
    ("normalise", "sometimes", "true or false"),
])
def test_wrong_type_names_key_value_and_what_is_allowed(key, text, allowed):
    with pytest.raises(OptionError) as info:
        build_recipe(Recipe(), {key: text})
    message = str(info.value)
    assert f"{key}={text!r}" in message
    assert allowed in message


@pytest.mark.parametrize("key, text, allowed", [
    ("epochs", "0", ">= 1"),
    ("batch_size", "-3", ">= 1"),
    ("patience", "-1", ">= 0"),
    ("validation_fraction", "0.9", "(0, 0.5]"),
    ("validation_fraction", "0", "(0, 0.5]"),
    ("schedule", "linear", "cosine"),
    ("init", "xavier", "signed_constant"),
    ("eval_batch_size", "0", ">= 1"),
])
def test_out_of_range_names_key_value_and_what_is_allowed(key, text, allowed):
    with pytest.raises(OptionError) as info:
        build_recipe(Recipe(), {key: text})
    message = str(info.value)
    assert key in message
    assert text in message
    assert allowed in message


def test_parse_assignments():
    assert parse_assignments(["epochs=5", " method.hard = false "]) == {
        "epochs": "5", "method.hard": "false"}
    assert parse_assignments(["init=a=b"]) == {"init": "a=b"}  # only the first '=' splits
    for bad in ("epochs", "=5", " =5"):
        with pytest.raises(OptionError, match="KEY=VALUE"):
            parse_assignments([bad])


# -- method options ---------------------------------------------------------------------------------

def test_method_option_through_make_config():
    config = make_config("digits-conv2", "aslp", 0, {"method.smart_rescale": "true",
                                                     "method.temperature": "0.5"})
    assert config.method_options.smart_rescale is True
    assert config.method_options.temperature == 0.5
    assert config.variant()["smart_rescale"] is True


def test_per_method_namespace_applies_to_that_method_only():
    overrides = {"aslp.smart_rescale": "true", "supermask.dynamic_weight_rescale": "1"}
    chosen = ["aslp", "supermask", "dense"]
    aslp = make_config("digits-conv2", "aslp", 0, overrides, chosen)
    supermask = make_config("digits-conv2", "supermask", 0, overrides, chosen)
    dense = make_config("digits-conv2", "dense", 0, overrides, chosen)
    assert aslp.method_options.smart_rescale is True
    assert supermask.method_options.smart_rescale is False
    assert supermask.method_options.dynamic_weight_rescale is True
    assert dense.method_options == type(dense.method_options)()
    assert dense.non_default_options() == {}


def test_option_another_selected_method_lacks_errors_with_a_hint():
    with pytest.raises(OptionError) as info:
        make_config("digits-conv2", "dense", 0, {"method.smart_rescale": "true"},
                    ["aslp", "dense"])
    message = str(info.value)
    assert "method.smart_rescale" in message and "'dense'" in message
    assert "aslp.smart_rescale=true" in message  # how to set it for some methods only


def test_unknown_method_option_suggests_the_closest():
    with pytest.raises(OptionError, match="did you mean 'method.temperature'"):
        build_method_options(methods.get("aslp"), {"temprature": "2"})


def test_method_option_wrong_type_and_out_of_range():
    with pytest.raises(OptionError) as info:
        make_config("digits-conv2", "aslp", 0, {"method.eval_samples": "ten"})
    assert "method.eval_samples='ten'" in str(info.value) and "an integer" in str(info.value)
    with pytest.raises(OptionError) as info:
        make_config("digits-conv2", "edge_popup", 0, {"method.keep_fraction": "1.5"})
    message = str(info.value)
    assert "keep_fraction" in message and "1.5" in message and "edge_popup" in message


def test_unknown_namespace_is_an_error():
    with pytest.raises(OptionError, match="unknown option namespace 'aslq'"):
        make_config("digits-conv2", "aslp", 0, {"aslq.smart_rescale": "true"})


def test_bad_seed_preset_protocol_method():
    with pytest.raises(OptionError, match="seed"):
        make_config("digits-conv2", "aslp", -1)
    with pytest.raises(OptionError, match="unknown recipe 'fast'"):
        make_config("digits-conv2", "aslp", 0, preset="fast")
    with pytest.raises(OptionError, match="did you mean 'digits-conv2'"):
        make_config("digts-conv2", "aslp", 0)
    with pytest.raises(LookupError, match="did you mean 'aslp'"):
        make_config("digits-conv2", "aslq", 0)


# -- the configuration hash -----------------------------------------------------------------------

def test_hash_ignores_values_equal_to_the_defaults():
    plain = make_config("digits-conv2", "aslp", 0)
    digits_defaults = protocols.get("digits-conv2").recipe
    explicit = make_config("digits-conv2", "aslp", 0, {
        "epochs": str(digits_defaults.epochs), "normalise": "true", "batch_size": "32",
        "method.smart_rescale": "false", "method.temperature": "1.0", "aslp.eval_samples": "10"})
    assert explicit.non_default_options() == {}
    assert explicit.config_hash == plain.config_hash
    assert explicit.run_id == plain.run_id


def test_protocol_defaults_not_global_defaults_are_the_reference():
    # digits' default is 30 epochs; 1000 (the global Recipe default) is a change on digits
    changed = make_config("digits-conv2", "aslp", 0, {"epochs": str(Recipe().epochs)})
    assert changed.non_default_options() == {"epochs": 1000}
    assert changed.config_hash != make_config("digits-conv2", "aslp", 0).config_hash


@pytest.mark.parametrize("overrides", [{"epochs": "3"}, {"method.smart_rescale": "true"},
                                       {"init": "signed_constant"}, {"augmentation": "true"}])
def test_a_non_default_value_changes_the_hash(overrides):
    plain = make_config("digits-conv2", "aslp", 0)
    changed = make_config("digits-conv2", "aslp", 0, overrides)
    assert changed.config_hash != plain.config_hash
    assert changed.run_id != plain.run_id


def test_protocol_and_method_are_in_the_hash():
    hashes = {make_config(p, m, 0).config_hash
              for p in ("digits-conv2", "digits-conv4") for m in ("aslp", "supermask")}
    assert len(hashes) == 4


def test_seed_is_in_run_id_not_in_hash():
    zero = make_config("digits-conv2", "aslp", 0, {"epochs": "3"})
    seven = make_config("digits-conv2", "aslp", 7, {"epochs": "3"})
    assert zero.config_hash == seven.config_hash
    assert zero.run_id != seven.run_id
    assert seven.run_id == f"digits-conv2.aslp.{seven.config_hash}.seed7"


def test_edge_popup_preset_is_non_default_and_explicit_values_match_it():
    preset = make_config("digits-conv2", "edge_popup", 0, preset="edge_popup")
    assert preset.recipe.schedule == "cosine" and preset.recipe.augmentation is True
    # every preset value differs from the digits recipe, so all of them are in the hash
    assert set(preset.non_default_options()) == set(RECIPE_PRESETS["edge_popup"])
    spelled = make_config("digits-conv2", "edge_popup", 0, {
        k: str(v).lower() for k, v in RECIPE_PRESETS["edge_popup"].items()})
    assert spelled.config_hash == preset.config_hash


def test_hash_is_sha256_of_the_canonical_json_of_non_default_values():
    config = make_config("digits-conv2", "aslp", 3, {"epochs": "3", "method.smart_rescale": "true"})
    # Written out by hand: sorted keys, no whitespace, dotted option keys, JSON literals.
    canonical = ('{"method":"aslp","options":{"epochs":3,"method.smart_rescale":true},'
                 '"protocol":"digits-conv2"}')
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
    assert config.config_hash == expected
    assert config.run_id == f"digits-conv2.aslp.{expected}.seed3"
    # the canonical text above is what json gives for the documented payload
    assert json.loads(canonical) == {"protocol": "digits-conv2", "method": "aslp",
                                     "options": config.non_default_options()}


def test_hash_is_stable_for_a_fixed_config():
    config = make_config("digits-conv2", "dense", 0)
    canonical = '{"method":"dense","options":{},"protocol":"digits-conv2"}'
    assert config.config_hash == hashlib.sha256(canonical.encode()).hexdigest()[:12]
    # and the same value from a second construction (no dependence on object identity or order)
    again = make_config("digits-conv2", "dense", 5, {})
    assert again.config_hash == config.config_hash


def test_config_hash_does_not_depend_on_override_order():
    a = make_config("digits-conv2", "aslp", 0, {"epochs": "3", "method.hard": "false",
                                                "init": "signed_constant"})
    b = make_config("digits-conv2", "aslp", 0, {"init": "signed_constant", "method.hard": "false",
                                                "epochs": "3"})
    assert a.config_hash == b.config_hash
