"""Runs described for people (subnetbench/describe.py): configuration labels in the paper's words,
and runs that ended near chance level with their likely cause, in the CLI summary and the report."""
from __future__ import annotations

import pytest

from subnetbench import reports
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.runner import execute
from subnetbench.benchmark.summary import summarise
from subnetbench.describe import at_chance, chance_cause, configuration_label
from tests.helpers import single_torch_thread  # noqa: F401  (autouse fixture)
from tests.report_fixtures import make_result, write_result

V = {"data_augmentation": False, "signed_constant": False, "smart_rescale": False}


@pytest.mark.parametrize("method, variant, non_default, label", [
    ("aslp", V, {}, "aslp"),
    ("aslp", {**V, "smart_rescale": True, "rescaling": "smart_rescale"}, {"method.smart_rescale": True},
     "aslp SR"),
    ("supermask", {**V, "smart_rescale": True, "rescaling": "dynamic_weight_rescale"},
     {"method.dynamic_weight_rescale": True}, "supermask DWR"),
    # supermask with ASLP's smart rescale and no DWR is SR, never DWR
    ("supermask", {**V, "smart_rescale": True, "rescaling": "smart_rescale"}, {"method.smart_rescale": True},
     "supermask SR"),
    ("supermask", {**V, "smart_rescale": True, "signed_constant": True,
                   "rescaling": "dynamic_weight_rescale+smart_rescale"},
     {"method.dynamic_weight_rescale": True, "method.smart_rescale": True, "init": "signed_constant"},
     "supermask SC+DWR+SR"),
    # a plugin's DWR is labelled by what it declares, not by its name
    ("threshold", {**V, "smart_rescale": True, "rescaling": "dynamic_weight_rescale"}, {}, "threshold DWR"),
    ("threshold", {**V, "smart_rescale": True, "rescaling": "my_scale"}, {}, "threshold my_scale"),
    ("edge_popup", {**V, "data_augmentation": True}, {"augmentation": True, "epochs": 5, "bias": False},
     "edge_popup DA (bias=False, epochs=5)"),
    ("dense", V, {"init": "pytorch_default"}, "dense (init=pytorch_default)"),
])
def test_a_configuration_is_named_by_its_method_variant_and_other_options(method, variant, non_default,
                                                                           label):
    assert configuration_label(method, variant, non_default) == label


def test_chance_level_is_that_of_the_dataset():
    assert at_chance("digits", 0.24) and not at_chance("digits", 0.26)
    assert at_chance("cifar100", 0.02) and not at_chance("cifar100", 0.03)
    assert not at_chance("unknown", 0.0)


@pytest.mark.parametrize("epochs_run, recipe, method, curve, words", [
    (5, {"epochs": 5, "patience": 0}, {}, [0.1] * 5, "raise epochs"),
    (11, {"epochs": 100, "patience": 10}, {}, [0.1] * 11, "raise patience"),
    (30, {"epochs": 100, "patience": 10}, {"dynamic_weight_rescale": True, "dwr_gradient": "detached"},
     [0.2] * 30, "dwr_gradient=detached"),
    (30, {"epochs": 100, "patience": 10}, {}, [0.1, 0.9, 0.1], "reached 90%"),
])
def test_the_likely_cause_comes_from_the_recipe_and_the_curve(epochs_run, recipe, method, curve, words):
    cause = chance_cause("digits", 0.1, {"recipe": recipe, "method": method}, curve, epochs_run)
    assert words in cause
    assert chance_cause("digits", 0.9, {"recipe": recipe}, curve, epochs_run) is None


def test_a_run_stopped_at_chance_is_flagged_in_the_summary_and_the_report(tmp_path):
    """The README's example of a short budget: a deep network with stochastic masks, 2 epochs."""
    config = make_config("digits-conv4", "aslp", 0, {"epochs": "2", "patience": "0"})
    result = execute(config, tmp_path, device="cpu", progress=False)
    assert result["metrics"]["final_test_acc"] < 0.25  # it did not learn in 2 epochs
    summary = summarise([result])
    assert "NEAR CHANCE LEVEL: 1 run(s)" in summary
    assert f"{config.run_id} (aslp (epochs=2, patience=0))" in summary and "raise epochs" in summary
    html = reports.build_report(tmp_path, tmp_path / "report").read_text()
    assert 'id="near-chance"' in html and "1 of 1 run(s) near chance level" in html


def test_a_report_without_runs_near_chance_says_nothing_of_it(tmp_path):
    for seed in range(2):
        write_result(tmp_path, make_result(protocol="digits-conv2", dataset="digits", network="conv2",
                                           method="aslp", seed=seed, final_acc=0.95))
    html = reports.build_report(tmp_path, tmp_path / "report").read_text()
    assert 'id="near-chance"' not in html and "near chance level" not in html
