"""MethodTraits, the one declaration of what the engine knows of a method: construction refuses
ill-typed or inconsistent values by name, normalises sequences, and the SR variants of the studies
are built from a method's options where they are used (no hook on the method)."""
from __future__ import annotations

import dataclasses

import pytest

from subnetbench import methods
from subnetbench.benchmark import rescaling_study
from subnetbench.benchmark.speed import study
from subnetbench.methods import MASK_ONLY, WEIGHT_TRAINING, MethodTraits, OptionError


def mask_only(**values) -> MethodTraits:
    return MethodTraits(**{"family": MASK_ONLY, "trainable_tensors": {"scores"}, **values})


@pytest.mark.parametrize("values, option", [
    ({"family": "pruning"}, "family"),
    ({"trainable_tensors": {"scores", "weight"}}, "trainable_tensors"),
    ({"trainable_tensors": "scores"}, "trainable_tensors"),
    ({"evaluation_samples": 10}, "evaluation_samples"),  # averaging samples needs a stochastic one
    ({"evaluation_samples": 0, "stochastic": True}, "evaluation_samples"),
    ({"sampled_validation": True}, "sampled_validation"),
    ({"stochastic": 1}, "stochastic"),
    ({"rounds": 0}, "rounds"),
    ({"rounds": 2}, "seed_batch_refusal"),  # rounds of several seeds cannot be shared
    ({"seed_batch_refusal": ""}, "seed_batch_refusal"),
    ({"fixed_keep_fraction": 0.0}, "fixed_keep_fraction"),
    ({"fixed_keep_fraction": True}, "fixed_keep_fraction"),
    ({"rescaling": ""}, "rescaling"),
    ({"update_passes": ()}, "update_passes"),
    ({"update_passes": (("scores",), ())}, "update_passes"),
    ({"update_passes": ("scores", "scale")}, "update_passes"),  # labels of passes, not a pass
    ({"test_options": ({"smart_rescale": True},)}, "test_options"),  # the defaults come first
    ({"test_options": ()}, "test_options"),
])
def test_ill_formed_traits_are_refused_by_name(values, option):
    base = {"family": MASK_ONLY, "trainable_tensors": {"scores"}}
    with pytest.raises(OptionError, match=f"MethodTraits: option {option}="):
        MethodTraits(**{**base, **values})


def test_traits_normalise_sequences_and_count_passes():
    traits = mask_only(trainable_tensors=["scores", "scale"], update_passes=[["scores"], ["scale"]],
                       test_options=[{}, {"smart_rescale": True}])
    assert traits.trainable_tensors == frozenset({"scores", "scale"})
    assert traits.update_passes == (("scores",), ("scale",)) and traits.update_pass_count == 2
    assert traits.test_options == ({}, {"smart_rescale": True})
    assert mask_only().update_pass_count == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        traits.rounds = 2  # type: ignore[misc]
    several = MethodTraits(family=WEIGHT_TRAINING, trainable_tensors={"weight", "bias"}, rounds=3,
                           seed_batch_refusal="three rounds")
    assert several.rounds == 3 and several.seed_batch_refusal == "three rounds"


@pytest.mark.parametrize("options, rescaling, passes", [
    ({}, None, 1),
    ({"smart_rescale": True}, "smart_rescale", 2),
    ({"smart_rescale": True, "smart_rescale_update": "joint"}, "smart_rescale", 1),
])
def test_aslp_declares_its_rescaling_and_passes_from_its_options(options, rescaling, passes):
    traits = methods.get("aslp")(**options).traits()
    assert (traits.rescaling, traits.update_pass_count) == (rescaling, passes)


def test_supermask_names_both_of_its_rescalings():
    traits = methods.get("supermask")(dynamic_weight_rescale=True, smart_rescale=True).traits()
    assert traits.rescaling == "dynamic_weight_rescale+smart_rescale"


def test_the_timing_study_builds_its_sr_variants_from_the_options():
    arms = dict(rescaling_study.arm_configs("digits-conv2", 0))
    assert list(arms) == ["aslp", "aslp SR", "aslp SR joint", "supermask", "supermask DWR"]
    assert arms["aslp"].method_options == methods.get("aslp").Options()
    assert arms["aslp SR joint"].method_options == methods.get("aslp").Options(
        smart_rescale=True, smart_rescale_update="joint")
    assert arms["supermask"].method_options == methods.get("supermask").Options()
    assert arms["aslp"].traits.rescaling is None
    assert arms["supermask DWR"].traits.rescaling == "dynamic_weight_rescale"


def test_the_speed_study_offers_sr_exactly_where_the_options_have_it():
    choices = study.method_choices()
    with_sr = {c.removesuffix("+sr") for c in choices if c.endswith("+sr")}
    assert with_sr == {name for name in methods.names()
                       if "smart_rescale" in {f.name for f in dataclasses.fields(methods.get(name).Options)}}
    assert {"aslp", "supermask", "edge_popup"} <= with_sr and not {"dense", "probmask"} & with_sr
    assert study.method_spec("aslp+sr") == ("aslp", {"method.smart_rescale": "true"})
    with pytest.raises(OptionError, match="dense has no smart rescale"):
        study.method_spec("dense+sr")
