"""The methods since the paper (issue 25) get a results table of their own; the paper's tables keep
the paper's methods only."""
from __future__ import annotations

from subnetbench.benchmark import grids
from subnetbench.reports.loading import load_reference, load_results
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
