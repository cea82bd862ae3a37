"""The methods since the paper (issue 25) get a results table of their own; the paper's tables keep
the paper's methods only; their results published without a number here are listed as such."""
from __future__ import annotations

import json

import pytest

from subnetbench import reports
from subnetbench.benchmark import grids, protocols
from subnetbench.methods import registry
from subnetbench.reference_results import PUBLISHED
from subnetbench.reports.loading import load_reference, load_results
from subnetbench.reports.missing_values import MissingValue
from subnetbench.reports.tables import SINCE_PAPER, SINCE_PAPER_METHODS, build_tables, group_configs
from tests.report_fixtures import make_result, write_result


def test_the_new_methods_are_tabulated_apart_from_the_papers(tmp_path):
    for method in ("aslp", "edge_popup", "probmask", "iterand", "biprop", "dense"):
        for seed in (0, 1):
            write_result(tmp_path, make_result(protocol="digits-conv2", dataset="digits",
                                               network="conv2", method=method, seed=seed,
                                               final_acc=0.95, kept=0.5))
    tables = build_tables(group_configs(load_results(tmp_path).completed), load_reference(None))
    by_key = {t.family: t for t in tables}
    assert list(by_key) == ["mask-only", "weight-training", SINCE_PAPER]  # after the paper's
    assert by_key["mask-only"].methods == ["aslp", "edge_popup"]
    assert by_key["weight-training"].methods == ["dense"]
    assert sorted(by_key[SINCE_PAPER].methods) == sorted(SINCE_PAPER_METHODS)
    assert "since the paper" in by_key[SINCE_PAPER].title
    # rows of the paper's table, so the two read side by side
    assert {r.id for r in by_key[SINCE_PAPER].rows} <= {r.id for r in by_key["mask-only"].rows}


def test_the_report_knows_the_methods_the_beyond_grids_run():
    assert set(SINCE_PAPER_METHODS) == set(grids.BEYOND)


# -- results the papers since have published without a number here (reference file: missing_values)

def _reference_with(tmp_path, missing):
    data = json.loads(PUBLISHED.read_text())
    data["missing_values"] = missing
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(data))
    return path


def test_every_shipped_gap_names_a_registered_method_real_networks_and_has_no_value():
    reference = load_reference(None)
    assert reference.problem is None
    assert {m.method for m in reference.missing} == set(grids.BEYOND)
    for missing in reference.missing:
        assert missing.method in registry.names()
        for network in missing.networks:
            protocols.get(f"{missing.dataset}-{network}")  # raises on a network the suite lacks
            assert not [p for p in reference.values
                        if (p.method, p.dataset, p.network) == (missing.method, missing.dataset, network)]
        assert missing.commands() == [f"subnetbench run --grid {missing.dataset}-beyond --seeds "
                                      f"0,1,2,3,4 --results results/{missing.dataset} --report "
                                      f"report/{missing.dataset}"]


@pytest.mark.parametrize("bad, named", [
    ({"networks": []}, "networks is []"),
    ({"networks": "conv6"}, "networks is 'conv6'"),
    ({"reason": ""}, "reason is ''"),
    ({"source": 3}, "source is 3"),
])
def test_a_bad_gap_entry_is_ignored_with_its_bad_value_named(tmp_path, bad, named):
    good = json.loads(PUBLISHED.read_text())["missing_values"][1]
    reference = load_reference(_reference_with(tmp_path, [good, {**good, **bad}]))
    assert [m.method for m in reference.missing] == [good["method"]]
    assert "missing_values entry 1 ignored" in reference.problem and named in reference.problem
    assert len(reference.values) > 0  # the published values themselves still load


def test_a_gap_without_a_grid_gives_one_run_command_per_network():
    gap = MissingValue("iterand", "cifar100", ("conv2", "conv4"), "s", "r", "why")
    assert gap.grid is None
    assert gap.commands() == [
        f"subnetbench run cifar100-{n} --method iterand --seeds 0,1,2,3,4 --results results/cifar100"
        for n in ("conv2", "conv4")]


def test_the_report_lists_the_gaps_with_what_ran_here_escaped(tmp_path):
    for seed in (0, 1):
        write_result(tmp_path, make_result(protocol="cifar10-conv6", dataset="cifar10", network="conv6",
                                           method="iterand", seed=seed, final_acc=0.7, kept=0.5))
    gaps = json.loads(PUBLISHED.read_text())["missing_values"]
    gaps[0]["reason"] = "<script>alert('gap')</script>"
    html = reports.build_report(tmp_path, tmp_path / "out",
                                reference=_reference_with(tmp_path, gaps)).read_text()
    assert 'id="missing-values-table"' in html
    assert "<script>alert('gap')</script>" not in html and "&lt;script&gt;" in html
    row = html.split('data-missing="iterand-cifar10"')[1].split("</tr>")[0]
    assert "<td class=\"nowrap\">conv6</td>" in row  # its one network ran here
    assert "subnetbench run --grid cifar10-beyond" in row
    probmask = html.split('data-missing="probmask-cifar10"')[1].split("</tr>")[0]
    assert '<span class="muted">none</span>' in probmask
