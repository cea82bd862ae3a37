"""Tests of the report package: statistics, verdict rules, pairing, robustness, exports, escaping."""
from __future__ import annotations

import argparse
import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from subnetbench import reports
from subnetbench.files import atomic_write_text
from subnetbench.records import FORMAT_VERSION
from subnetbench.reference_results import PUBLISHED
from subnetbench.reports import stats
from subnetbench.reports.build import EQUIVALENCE_CLAIMS, TIMING_CLAIMS
from subnetbench.reports.claims import evaluate_claims, find_partners, observations, pair_by_seed
from subnetbench.reports.loading import load_reference, load_results
from subnetbench.reports.output import latex_escape, latex_table
from subnetbench.reports.reproduction import NOT_RUN, reproduction
from subnetbench.reports.tables import build_tables, group_configs
from tests.report_fixtures import (
    XSS_METHOD,
    XSS_OPTION,
    make_result,
    write_hostile,
    write_result,
    write_results,
)


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------
class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse_html(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    return parser


def grid(tmp_path: Path, items: list[dict]) -> Path:
    for item in items:
        write_result(tmp_path, item)
    return tmp_path


def runs_of(method: str, accs: dict[int, float], **kwargs) -> list[dict]:
    base = {"protocol": "cifar10-conv2", "dataset": "cifar10", "network": "conv2"}
    base.update(kwargs)
    return [make_result(method=method, seed=s, final_acc=a, **base) for s, a in accs.items()]


def configs_from(directory: Path):
    return group_configs(load_results(directory).completed)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """The fixture grid through the command-line entry points, built once for this module."""
    root = tmp_path_factory.mktemp("full")
    write_results(root / "results")
    parser = argparse.ArgumentParser()
    reports.add_arguments(parser)
    args = parser.parse_args(["--results", str(root / "results"), "--out", str(root / "out"), "--title", "T"])
    assert reports.main_from_args(args) == 0
    return root / "results", root / "out", (root / "out" / "report.html").read_text()


# ---------------------------------------------------------------------------------------------------
# verdict rules
# ---------------------------------------------------------------------------------------------------
def S(n, mean, ci):
    return stats.Summary(n, mean, 0.5 if n > 1 else None, ci)


@pytest.mark.parametrize("published, summary, label", [
    (68.7, S(3, 68.5, (68.1, 69.0)), stats.REPRODUCED),        # inside the CI
    (70.0, S(3, 68.5, (68.1, 69.0)), stats.REPRODUCED),        # inside CI + 1 pp (edge)
    (67.1, S(3, 68.5, (68.1, 69.0)), stats.REPRODUCED),        # inside CI - 1 pp (edge)
    (70.1, S(3, 68.5, (68.1, 69.0)), stats.NOT_REPRODUCED),    # beyond the tolerance
    (66.0, S(3, 68.5, (68.1, 69.0)), stats.NOT_REPRODUCED),
    (68.7, S(1, 68.5, None), stats.INCONCLUSIVE),              # n=1: CI undefined
    (None, S(3, 68.5, (68.1, 69.0)), stats.NO_PUBLISHED),      # nothing to compare with
])
def test_reproduction_verdict(published, summary, label):
    assert stats.reproduction_verdict(published, summary).label == label


# ---------------------------------------------------------------------------------------------------
# pairing by seed and the claims
# ---------------------------------------------------------------------------------------------------
def test_pair_by_seed_uses_common_seeds_only():
    pairs = pair_by_seed({0: 1.0, 1: 2.0, 2: 3.0}, {2: 30.0, 0: 10.0, 5: 50.0})
    assert pairs == [(0, 1.0, 10.0), (2, 3.0, 30.0)]


def test_claim1_pairs_by_seed_not_by_file_order(tmp_path):
    # aslp beats supermask by exactly 2 pp on every seed; the seeds' accuracies differ a lot, so pairing by
    # position or an unpaired comparison would give a wide interval.
    aslp = runs_of("aslp", {0: 0.60, 1: 0.70, 2: 0.80})
    supermask = _supermask({2: (0.7, 0.78), 0: (0.5, 0.58), 1: (0.6, 0.68), 3: (0.4, 0.5)})  # sampled
    configs = configs_from(grid(tmp_path, aslp + supermask))
    claim = evaluate_claims(configs)[0]
    part = claim.parts[0]
    (comp,) = part.comparisons
    assert comp.strict and comp.n == 3 and comp.unpaired_b == [3]
    assert comp.difference.mean == pytest.approx(2.0)
    assert comp.difference.ci == pytest.approx((2.0, 2.0))
    assert comp.verdict.label == stats.SUPPORTED
    # no edge_popup runs: the claim says what it needs, and the conjunction is not "supported"
    assert claim.parts[1].verdict.label == stats.INCONCLUSIVE
    assert "not enough runs: needs completed aslp and edge_popup runs" in claim.parts[1].verdict.reason
    assert claim.verdict.label == stats.INCONCLUSIVE


def test_pairing_is_strict_when_only_the_axis_differs_and_loose_otherwise(tmp_path):
    items = runs_of("aslp", {0: 0.7, 1: 0.71}, recipe={"init": "signed_constant", "augmentation": True})
    items += runs_of("edge_popup", {0: 0.68, 1: 0.69}, recipe={"init": "signed_constant"})  # own recipe
    items += runs_of("aslp", {0: 0.6, 1: 0.61}, recipe={"augmentation": True})  # no SC
    configs = configs_from(grid(tmp_path, items))
    aslp_sc = next(c for c in configs if c.method == "aslp" and c.variant["signed_constant"])
    aslp_no_sc = next(c for c in configs if c.method == "aslp" and not c.variant["signed_constant"])
    edge = next(c for c in configs if c.method == "edge_popup")
    ((partner, strict, differing),) = find_partners(aslp_sc, [edge], "method")
    assert partner is edge and not strict
    assert set(differing) == {"recipe.batch_size", "recipe.epochs", "recipe.patience", "recipe.schedule"}
    ((partner, strict, differing),) = find_partners(aslp_sc, [aslp_no_sc, edge], "signed_constant")
    assert partner is aslp_no_sc and strict and differing == []
    # a partner must agree on the other variant axes
    assert find_partners(aslp_sc, [aslp_no_sc], "smart_rescale") == []


def test_claim2_smart_rescale_fewer_epochs(tmp_path):
    items = [make_result(protocol="p", dataset="digits", network="conv2", method="aslp", seed=s,
                         method_options={"smart_rescale": True}, epochs_to_best=40 + s) for s in range(3)]
    items += [make_result(protocol="p", dataset="digits", network="conv2", method="aslp", seed=s,
                          epochs_to_best=50 + 2 * s) for s in range(3)]
    claim = evaluate_claims(configs_from(grid(tmp_path, items)))[1]
    (comp,) = claim.parts[0].comparisons
    assert comp.difference.mean == pytest.approx(-11.0)
    assert claim.verdict.label == stats.SUPPORTED
    assert "relative change -21" in comp.note


def test_the_sc_and_da_effects_are_observations_on_the_family_from_the_result_files(tmp_path):
    items = []
    for method, family in (("my_mask_method", "mask-only"), ("dense", "weight-training")):
        for sc in (False, True):
            items += [make_result(protocol="p", dataset="digits", network="conv2", method=method, seed=s,
                                  family=family, recipe={"init": "signed_constant"} if sc else {},
                                  final_acc=0.8 + (0.05 if sc else 0) + 0.01 * s) for s in range(2)]
    sc, da = observations(configs_from(grid(tmp_path, items)))
    assert [c.a.method for c in sc.comparisons] == ["my_mask_method"]
    assert sc.comparisons[0].difference.mean == pytest.approx(5.0)
    assert da.comparisons == []


def test_claim3_smart_rescale_improves_the_extracted_accuracy(tmp_path):
    items = [make_result(protocol="p", dataset="digits", network="conv2", method="aslp", seed=s,
                         method_options={"smart_rescale": True}, final_acc=0.70 - 0.01 * s)
             for s in range(3)]
    items += [make_result(protocol="p", dataset="digits", network="conv2", method="aslp", seed=s,
                          final_acc=0.72 - 0.01 * s) for s in range(3)]
    claim = evaluate_claims(configs_from(grid(tmp_path, items)))[2]
    (comp,) = claim.parts[0].comparisons
    assert comp.difference.mean == pytest.approx(-2.0)
    assert claim.verdict.label == stats.NOT_SUPPORTED  # the opposite is observed


def _with_overhead(result: dict, ratio: float) -> dict:
    result["timings"]["rescaling_overhead"] = {"rescaling": "x", "with_rescaling_s": [ratio],
                                               "without_rescaling_s": [1.0], "ratio": ratio}
    return result


def test_claim4_never_judges_timings_taken_inside_runs(tmp_path):
    """Result files of an older version carry a per-run rescaling overhead: they stay readable
    (no warning), but claim 4 asks for a timing study instead, with the command that makes one."""
    items = [_with_overhead(make_result(protocol="digits-conv2", dataset="digits", network="conv2",
                                        method="aslp", seed=s, method_options={"smart_rescale": True}),
                            1.10) for s in range(3)]
    items += [_with_overhead(make_result(protocol="digits-conv2", dataset="digits", network="conv2",
                                         method="supermask", seed=s,
                                         method_options={"dynamic_weight_rescale": True}), 1.30)
              for s in range(3)]
    results = load_results(grid(tmp_path, items))
    assert not results.warnings and all(r.timings.rescaling_overhead for r in results.completed)
    claim = evaluate_claims(group_configs(results.completed), [], "res", old_timings=6)[3]
    assert claim.verdict.label == stats.INCONCLUSIVE
    assert "no timing study: run subnetbench timing digits-conv2 --results res" in claim.verdict.reason
    assert "6 result files carry timings an older version took inside each run" in claim.verdict.reason


def test_claim5_requires_a_substantial_pruning_rate(tmp_path):
    items = [make_result(protocol="p", dataset="digits", network="conv2", method="aslp", seed=s,
                         final_acc=0.9,
                         test_acc=0.9 + 0.001 * s, kept=0.95) for s in range(3)]
    claim = evaluate_claims(configs_from(grid(tmp_path, items)))[4]
    assert claim.verdict.label == stats.NOT_SUPPORTED
    assert "not substantial" in claim.parts[0].comparisons[0].verdict.reason


def test_claim1_compares_each_method_on_the_accuracy_the_paper_reports_for_it(tmp_path):
    """aslp's extracted subnetwork against supermask's mean over sampled masks (supermask's
    extracted network is not what the paper reported)."""
    aslp = runs_of("aslp", {0: 0.70, 1: 0.71, 2: 0.72})
    supermask = _supermask({0: (0.50, 0.68), 1: (0.51, 0.69), 2: (0.52, 0.70)})
    claim = evaluate_claims(configs_from(grid(tmp_path, aslp + supermask)))[0]
    (comp,) = claim.parts[0].comparisons
    assert comp.difference.mean == pytest.approx(2.0)


def test_claims_without_runs_say_what_they_need(tmp_path):
    claims = evaluate_claims([])
    assert [c.number for c in claims] == [1, 2, 3, 4, 5]
    assert [c.verdict.label for c in claims] == [stats.INCONCLUSIVE] * 5
    for claim in claims:
        for part in claim.parts:
            needs = "no timing study: run " if claim.number in TIMING_CLAIMS else "not enough runs: needs "
            assert part.verdict.reason.startswith(needs)


# ---------------------------------------------------------------------------------------------------
# tables and published values
# ---------------------------------------------------------------------------------------------------
def test_published_values_are_matched_and_missing_ones_are_never_guessed(tmp_path):
    items = runs_of("aslp", {0: 0.687, 1: 0.690, 2: 0.684})                       # published 68.7
    items += runs_of("aslp", {0: 0.70, 1: 0.71}, protocol="cifar10-conv4", network="conv4")  # none known
    items += runs_of("supermask", {0: 0.65})                                      # n=1
    configs = configs_from(grid(tmp_path, items))
    tables = build_tables(configs, load_reference())
    entries = {(e.config.method, e.config.network): e for e in tables[0].entries}
    aslp2 = entries[("aslp", "conv2")].published
    assert (aslp2.published.value, aslp2.metric, aslp2.verdict.label) == (68.7, "final_test_acc",
                                                                           stats.REPRODUCED)
    aslp4 = entries[("aslp", "conv4")].published
    assert (aslp4.published, aslp4.verdict.label) == (None, stats.NO_PUBLISHED)
    sm = entries[("supermask", "conv2")]
    assert (sm.published.published.value, sm.published.verdict.label) == (64.4, stats.INCONCLUSIVE)
    assert sm.accuracy.ci is None


def _supermask(accs: dict[int, tuple[float, float]], network: str = "conv2", **options) -> list[dict]:
    """Supermask runs with (extracted, sampled-mask mean) accuracies per seed."""
    return [make_result(method="supermask", seed=s, final_acc=final, test_acc=sampled,
                        protocol=f"cifar10-{network}", dataset="cifar10", network=network,
                        **options) for s, (final, sampled) in accs.items()]


def test_supermask_is_compared_on_the_sampled_mask_mean_as_published(tmp_path):
    """Like with like: supermask's published numbers are the mean over 10 sampled masks (never an
    extracted network), so they are compared with test_acc; the extracted accuracy is shown beside."""
    items = _supermask({0: (0.600, 0.644), 1: (0.605, 0.645), 2: (0.598, 0.643)})  # published 64.4
    (table,) = build_tables(configs_from(grid(tmp_path, items)), load_reference())
    (entry,) = table.entries
    comparison = entry.published
    assert comparison.metric == "test_acc" and comparison.published.value == 64.4
    assert comparison.ours.mean == pytest.approx(64.4) and comparison.verdict.label == stats.REPRODUCED
    assert entry.accuracy.mean == pytest.approx(60.1)  # the extracted network: not what was published
    assert entry.shows_sampled


def test_a_primary_value_always_wins_over_a_secondary_one(tmp_path):
    """Zhou et al.'s restated numbers are the SC + DWR variant: for Conv2 and Conv6 the poster's own
    (primary) value is compared, for Conv4 (no primary value) the secondary one; no other variant
    ever matches them."""
    sc_dwr = {"recipe": {"init": "signed_constant"}, "method_options": {"dynamic_weight_rescale": True}}
    items = _supermask({0: (0.6, 0.66), 1: (0.6, 0.66)}, "conv2", **sc_dwr)
    items += _supermask({0: (0.6, 0.72), 1: (0.6, 0.73)}, "conv4", **sc_dwr)
    items += _supermask({0: (0.6, 0.72), 1: (0.6, 0.73)}, "conv4")               # plain: no value
    reference = load_reference()
    (table,) = build_tables(configs_from(grid(tmp_path, items)), reference)
    by_key = {(e.config.network, e.config.variant_label): e.published for e in table.entries}
    assert by_key[("conv2", "SC+DWR")].published.kind == "primary"
    assert by_key[("conv2", "SC+DWR")].published.id == "cifar10-conv2-supermask-sc-sr"
    assert by_key[("conv4", "SC+DWR")].published.kind == "secondary"
    assert by_key[("conv4", "none")].published is None
    secondary = [p for p in reference.values if p.kind == "secondary"]
    assert secondary and all(p.variant == {"data_augmentation": False, "signed_constant": True,
                                           "smart_rescale": True, "rescaling": "dynamic_weight_rescale"}
                             for p in secondary)


def test_supermask_with_smart_rescale_never_matches_its_dwr_values(tmp_path):
    """The paper's SR column of supermask is its own DWR: a supermask run with ASLP's smart rescale
    (and no DWR), or with both, is another variant, compared with no published value (neither the
    poster's nor Zhou et al.'s), and claim 4 never takes it for supermask's DWR."""
    sc = {"init": "signed_constant"}
    items = _supermask({0: (0.6, 0.66), 1: (0.6, 0.66)}, "conv2",
                       recipe=sc, method_options={"smart_rescale": True})
    items += _supermask({0: (0.6, 0.72), 1: (0.6, 0.73)}, "conv4",
                        recipe=sc, method_options={"smart_rescale": True})
    items += _supermask({0: (0.6, 0.72), 1: (0.6, 0.73)}, "conv6", recipe=sc,
                        method_options={"smart_rescale": True, "dynamic_weight_rescale": True})
    (table,) = build_tables(configs_from(grid(tmp_path, items)), load_reference())
    labels = {e.config.network: (e.config.variant_label, e.published.published) for e in table.entries}
    assert labels == {"conv2": ("SC+SR", None), "conv4": ("SC+SR", None), "conv6": ("SC+DWR+SR", None)}


def test_only_the_configuration_that_reproduces_a_value_gets_a_verdict(tmp_path):
    """Runs of a published value's variant with other options (a shorter budget, a deterministic
    validation) are shown beside the value without a verdict; the fast path's options
    (channels_last, autocast, compile) change arithmetic only and keep the verdict."""
    items = runs_of("aslp", {0: 0.687, 1: 0.690, 2: 0.684}, recipe={"epochs": 5})
    items += runs_of("aslp", {0: 0.687, 1: 0.690, 2: 0.684}, protocol="cifar10-conv6", network="conv6",
                     recipe={"channels_last": True})
    configs = configs_from(grid(tmp_path, items))
    tables = build_tables(configs, load_reference())
    entries = {e.config.network: e.published for e in tables[0].entries}
    assert entries["conv2"].published.id == "cifar10-conv2-aslp-plain"
    assert entries["conv2"].verdict.label == stats.OTHER_OPTIONS
    assert "epochs" in entries["conv2"].verdict.reason
    assert entries["conv6"].published.id == "cifar10-conv6-aslp-plain"
    assert entries["conv6"].verdict.label == stats.NOT_REPRODUCED  # 68.7 against 73.7: judged
    rows = {r.published.id: r for r in reproduction(load_reference(), configs, tables)}
    assert rows["cifar10-conv2-aslp-plain"].status == NOT_RUN
    assert [e.config.network for e in rows["cifar10-conv2-aslp-plain"].others] == ["conv2"]
    assert rows["cifar10-conv6-aslp-plain"].status != NOT_RUN


def test_every_published_value_declares_its_metric_an_id_and_is_unverified():
    reference = load_reference()
    assert reference.problem is None and len(reference.values) == 33
    assert len({p.id for p in reference.values}) == len(reference.values)
    for p in reference.values:
        assert p.metric == ("test_acc" if p.method == "supermask" else "final_test_acc")
        assert not p.verified  # read off the poster and slides (or restated): not re-checked here
        assert reference.entry_text(p) == f"published.json, entry {p.id!r}"


def test_a_user_corrects_a_value_by_editing_one_entry(tmp_path):
    data = json.loads(PUBLISHED.read_text())
    entry = next(e for e in data["results"] if e["id"] == "cifar10-conv2-aslp-plain")
    entry.update(test_acc_percent=70.1, verified=True)
    path = tmp_path / "published.json"
    path.write_text(json.dumps(data))
    items = runs_of("aslp", {0: 0.700, 1: 0.702})
    (table,) = build_tables(configs_from(grid(tmp_path / "runs", items)), load_reference(path))
    comparison = table.entries[0].published
    assert (comparison.published.value, comparison.published.verified) == (70.1, True)
    assert comparison.verdict.label == stats.REPRODUCED
    data["results"][0].pop("metric")
    path.write_text(json.dumps(data))
    assert "metric" in load_reference(path).problem  # never compared with a guessed metric


def test_several_configurations_in_one_cell_are_told_apart(tmp_path):
    items = runs_of("edge_popup", {0: 0.7, 1: 0.71}, recipe={"init": "signed_constant"})
    items += runs_of("edge_popup", {0: 0.6, 1: 0.61}, recipe={"init": "signed_constant"},
                     method_options={"keep_fraction": 0.3})
    (table,) = build_tables(configs_from(grid(tmp_path, items)), load_reference())
    (row,) = table.rows
    assert sorted(e.distinguishing["method.keep_fraction"] for e in row.cells["edge_popup"]
                  if "method.keep_fraction" in e.distinguishing and e.distinguishing["method.keep_fraction"]
                  != "(default)") == [0.3]


def test_runs_of_one_configuration_with_different_options_are_flagged(tmp_path):
    # Same config_hash, different resolved options: e.g. a protocol default changed between runs.
    items = runs_of("aslp", {0: 0.7, 1: 0.71, 2: 0.72})
    items[0]["options"]["recipe"]["batch_size"] = 64
    (config,) = configs_from(grid(tmp_path, items))
    assert config.inconsistent_options == ["recipe.batch_size: 64 (seed 0); 256 (seeds 1, 2)"]
    html = reports.build_report(tmp_path, tmp_path / "out").read_text()
    assert 'id="inconsistent"' in html and "differs between seeds: recipe.batch_size" in html


def test_reference_problems_are_reported_not_raised(tmp_path):
    assert "not found" in load_reference(tmp_path / "missing.json").problem
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    ref = load_reference(bad)
    assert ref.values == [] and "unreadable" in ref.problem


# ---------------------------------------------------------------------------------------------------
# robustness: bad files are listed, never fatal, never silent
# ---------------------------------------------------------------------------------------------------
BAD_FILES = {
    "invalid.json": b'{"format": "subnetbench.result", "format_ver',
    "list.json": b"[1, 2, 3]",
    "other-format.json": json.dumps({"format": "something.else", "format_version": 1}).encode(),
    "binary.json": b"\xff\xfe\x00garbage",
    "empty.json": b"",
}


def test_corrupt_and_foreign_files_are_skipped_with_a_reason(tmp_path):
    good = make_result(protocol="p", dataset="digits", network="conv2", method="aslp", seed=0)
    write_result(tmp_path, good)
    runs = tmp_path / "runs"
    for name, content in BAD_FILES.items():
        (runs / name).write_bytes(content)
    variants = {
        "version-3.json": dict(good, format_version=FORMAT_VERSION + 1),
        "no-metrics.json": {k: v for k, v in good.items() if k != "metrics"},
        "percent.json": dict(good, metrics=dict(good["metrics"], final_test_acc=73.2)),
        "nan.json": dict(good, metrics=dict(good["metrics"], kept_fraction=float("nan"))),
        "bad-variant.json": dict(good, variant={"data_augmentation": "yes", "signed_constant": False,
                                                "smart_rescale": False}),
        "bad-status.json": dict(good, status="done"),
        "seed-string.json": dict(good, seed="0"),
        "duplicate.json": good,
    }
    for name, data in variants.items():
        (runs / name).write_text(json.dumps(data))
    results = load_results(tmp_path)
    reasons = {s.file: s.reason for s in results.skipped}
    assert set(reasons) == set(BAD_FILES) | set(variants)
    assert "invalid JSON" in reasons["invalid.json"]
    assert "expected a JSON object" in reasons["list.json"]
    assert "format is 'something.else'" in reasons["other-format.json"]
    assert "not UTF-8" in reasons["binary.json"]
    assert f"format_version is {FORMAT_VERSION + 1}, newer" in reasons["version-3.json"]
    assert "upgrade subnetbench" in reasons["version-3.json"]
    assert "missing key 'metrics'" in reasons["no-metrics.json"]
    assert "not a fraction in [0, 1]" in reasons["percent.json"]
    assert "finite number" in reasons["nan.json"]
    assert "variant.'data_augmentation'" in reasons["bad-variant.json"]
    assert "status" in reasons["bad-status.json"]
    assert "'seed' is str" in reasons["seed-string.json"]
    assert "duplicate run_id" in reasons["duplicate.json"]
    assert [r.run_id for r in results.completed] == [good["run_id"]]

    html = reports.build_report(tmp_path, tmp_path / "out").read_text()
    parsed = parse_html(html)
    skipped_table = html[html.index('id="skipped"'):]
    for name in reasons:
        assert name in skipped_table
    assert 'id="n-skipped">13<' in html
    assert parsed.tags  # valid HTML


def test_malformed_optional_sections_become_warnings(tmp_path):
    good = make_result(protocol="p", dataset="digits", network="conv2", method="aslp", seed=0)
    good["keep_probabilities"] = {"bin_edges": [0, 1], "counts": [1, 2, 3]}
    good["curves"] = {"epoch": [1, 2], "val_acc": [0.5]}
    good["layer_kept_fraction"] = {"features.0": 3}
    write_result(tmp_path, good)
    results = load_results(tmp_path)
    assert len(results.completed) == 1
    messages = " ".join(w.message for w in results.warnings)
    assert "keep_probabilities" in messages and "curves" in messages and "layer_kept_fraction" in messages


def test_failed_running_and_holes_are_listed(full_report):
    _, _, html = full_report
    assert "CUDA out of memory" in html[html.index('id="runs-failed"'):]
    assert "digits-conv2.supermask." in html[html.index('id="runs-running"'):]
    holes = html[html.index('id="holes"'):]
    assert "seed 2 (failed)" in holes and "seed 2 (running)" in holes


def test_missing_results_directory_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        reports.build_report(tmp_path / "nope", tmp_path / "out")
    parser = argparse.ArgumentParser()
    reports.add_arguments(parser)
    args = parser.parse_args(["--results", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert reports.main_from_args(args) == 2
    assert "does not exist" in capsys.readouterr().err


def test_empty_results_directory_gives_a_report_with_notes(tmp_path):
    (tmp_path / "runs").mkdir()
    path = reports.build_report(tmp_path, tmp_path / "out")
    html = path.read_text()
    assert 'id="no-results"' in html
    assert html.count('class="nodata"') == 5
    assert "not enough runs: needs" in html
    assert not list((tmp_path / "out" / "figures").glob("*.png"))


# ---------------------------------------------------------------------------------------------------
# outputs: files, atomicity, CSV, LaTeX
# ---------------------------------------------------------------------------------------------------
def test_build_report_writes_every_output_atomically(full_report):
    _, out, html = full_report
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    for fig in ("accuracy-vs-kept", "validation-curves", "layer-kept-fraction", "keep-probabilities",
                "epochs-to-best"):
        assert {f"figures/{fig}.png", f"figures/{fig}.svg"} <= names
        assert (out / "figures" / f"{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / "figures" / f"{fig}.svg").read_text().lstrip().startswith("<?xml")
    assert {"tables/results.csv", "tables/results-mask-only.tex", "tables/results-weight-training.tex",
            "tables/claims.csv", "tables/claims.tex", "tables/published-comparison.csv",
            "tables/published-comparison.tex", "tables/runs.csv"} <= names
    assert not [n for n in names if n.endswith(".tmp") or Path(n).name.startswith(".")]
    # self-contained: images are data URIs, nothing is fetched
    imgs = [attrs for tag, attrs in parse_html(html).tags if tag == "img"]
    assert len(imgs) == 5 and all(a["src"].startswith("data:image/png;base64,") for a in imgs)
    assert not [a for tag, a in parse_html(html).tags if tag in ("link", "script", "iframe")]


def test_stale_figures_are_removed_when_their_data_is_gone(tmp_path):
    grid(tmp_path / "results", runs_of("aslp", {0: 0.7}))
    out = tmp_path / "out"
    reports.build_report(tmp_path / "results", out)
    assert (out / "figures" / "keep-probabilities.png").exists()
    for path in (tmp_path / "results" / "runs").glob("*.json"):
        path.unlink()
    reports.build_report(tmp_path / "results", out)
    assert not (out / "figures" / "keep-probabilities.png").exists()


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "a" / "file.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]


def test_latex_escape_covers_every_special_character():
    assert latex_escape(r"a_b & 50% $x$ #1 {y} ~ ^ \ <t>") == (
        r"a\_b \& 50\% \$x\$ \#1 \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{} "
        r"\textless{}t\textgreater{}")


def test_latex_tables_use_booktabs_and_escape_names(tmp_path):
    items = runs_of("edge_popup", {0: 0.7, 1: 0.72}, recipe={"init": "signed_constant"})
    items += runs_of("odd&name%", {0: 0.6, 1: 0.61})
    reports.build_report(grid(tmp_path, items), tmp_path / "out")
    tex = (tmp_path / "out" / "tables" / "results-mask-only.tex").read_text()
    assert tex.index(r"\toprule") < tex.index(r"\midrule") < tex.index(r"\bottomrule")
    assert r"edge\_popup" in tex and r"odd\&name\%" in tex
    assert "edge_popup" not in tex.replace(r"edge\_popup", "")
    assert "(2)" in tex
    claims_tex = (tmp_path / "out" / "tables" / "claims.tex").read_text()
    assert r"\toprule" in claims_tex and r"\bottomrule" in claims_tex
    with pytest.raises(ValueError, match="cells"):
        latex_table(["a", "b"], [["1"]], caption="c", label="l")


def test_csv_has_one_line_per_configuration_and_numbers(full_report):
    results_dir, out, _ = full_report
    rows = list(csv.DictReader(io.StringIO((out / "tables" / "results.csv").read_text())))
    configs = configs_from(results_dir)
    assert len(rows) == len(configs)
    aslp = next(r for r in rows if r["method"] == "aslp" and r["dataset"] == "cifar10" and r["DA"] == "no"
                and r["SC"] == "no" and r["SR"] == "no")
    assert aslp["n"] == "3" and aslp["normalised"] == "no"
    assert float(aslp["final_test_acc_ci95_low_pct"]) <= float(aslp["final_test_acc_mean_pct"]) <= float(
        aslp["final_test_acc_ci95_high_pct"])
    assert aslp["published_pct"] == "68.7 (primary, final_test_acc)"
    runs = list(csv.DictReader(io.StringIO((out / "tables" / "runs.csv").read_text())))
    assert {r["status"] for r in runs} == {"completed", "failed", "running"}


# ---------------------------------------------------------------------------------------------------
# escaping: markup in names and options shows as text
# ---------------------------------------------------------------------------------------------------
def test_markup_in_names_and_options_is_escaped(tmp_path):
    write_hostile(tmp_path)
    title = "<script>alert('title')</script>"
    html = reports.build_report(tmp_path, tmp_path / "out", title=title).read_text()
    parsed = parse_html(html)
    tags = [tag for tag, _ in parsed.tags]
    assert "script" not in tags
    assert "<b>key</b>" not in html and "<i>hash</i>" not in html and XSS_METHOD not in html
    assert not [a for tag, a in parsed.tags if any(k.startswith("on") for k in a)]
    assert not [a for tag, a in parsed.tags if tag == "img" and not a["src"].startswith("data:image/png")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in html
    assert "&lt;b&gt;key&lt;/b&gt;" in html and "&lt;i&gt;hash&lt;/i&gt;" in html
    text = "".join(parsed.text)
    assert XSS_METHOD in text and XSS_OPTION in text and "<script>alert('title')</script>" in text
    # the figures drew the hostile name (and a mathtext '$') without failing
    assert (tmp_path / "out" / "figures" / "accuracy-vs-kept.png").exists()


# ---------------------------------------------------------------------------------------------------
# the reproduction section
# ---------------------------------------------------------------------------------------------------
def test_every_published_value_has_a_status_and_the_ones_not_run_a_command_that_runs_them(tmp_path):
    from subnetbench import cli, run_command
    from subnetbench.reports.reproduction import NOT_RUN, SUPERSEDED, reproduction

    items = runs_of("aslp", {0: 0.687, 1: 0.690, 2: 0.684})  # cifar10-conv2 aslp plain: 68.7
    sc_dwr = {"recipe": {"init": "signed_constant"}, "method_options": {"dynamic_weight_rescale": True}}
    # published 66.0: not reproduced
    items += _supermask({0: (0.6, 0.60), 1: (0.6, 0.605), 2: (0.6, 0.602)}, "conv2", **sc_dwr)
    reference = load_reference()
    configs = configs_from(grid(tmp_path, items))
    rows = {row.published.id: row for row in reproduction(reference, configs,
                                                          build_tables(configs, reference))}
    assert len(rows) == len(reference.values)
    assert rows["cifar10-conv2-aslp-plain"].status == stats.REPRODUCED
    assert rows["cifar10-conv2-supermask-sc-sr"].status == stats.NOT_REPRODUCED
    assert rows["cifar10-conv2-supermask-sc-sr-zhou2019"].status == SUPERSEDED
    not_run = [row for row in rows.values() if row.status == NOT_RUN]
    assert len(not_run) == len(reference.values) - 3
    for row in not_run:  # the command is a real one, and runs exactly the published configuration
        args = cli.build_parser().parse_args(row.command.split()[1:])
        planned = run_command.planned_runs(run_command.run_options(args))
        assert [c.seed for c in planned] == [0, 1, 2, 3, 4]
        p = row.published
        assert {(c.spec.dataset, c.spec.network, c.method) for c in planned} == {(p.dataset, p.network,
                                                                                  p.method)}
        assert all(p.matches(p.dataset, p.network, p.method, c.variant()) for c in planned), row.command
    assert "--recipe edge_popup" in rows["cifar10-conv6-edge_popup-da-sc-sr"].command


def test_the_report_shows_the_reproduction_table_even_when_nothing_published_was_run(tmp_path):
    items = [make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="aslp",
                         seed=s) for s in range(2)]
    html = reports.build_report(grid(tmp_path, items), tmp_path / "out").read_text()
    rows = [attrs for tag, attrs in parse_html(html).tags
            if tag == "tr" and attrs.get("data-status") == "not run here"]
    assert len(rows) == 33 and len({attrs["data-entry"] for attrs in rows}) == 33
    assert ("subnetbench run cifar10-conv6 --method aslp --seeds 0,1,2,3,4 --set init=signed_constant "
            "--results results/cifar10") in html
    # one line first says so, and the command of each dataset's grid, into the same folders
    assert 'id="reproduction-summary"' in html and "None of the 33 published values was run here" in html
    for dataset in ("cifar10", "cifar100"):
        assert (f"subnetbench run --grid {dataset} --seeds 0,1,2,3,4 --results results/{dataset} "
                f"--report report/{dataset}") in html
    # each source once, under the table, and the rows refer to it by number
    assert html.count("Zeros, Signs, and the Supermask") == 1
    assert html.index('id="results"') < html.index('id="reproduction"')  # the user's own results first


def test_the_published_latex_table_lists_every_value_with_its_status_also_when_none_was_run(tmp_path):
    items = [make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="aslp",
                         seed=s) for s in range(2)]
    reports.build_report(grid(tmp_path, items), tmp_path / "out")
    tex = (tmp_path / "out" / "tables" / "published-comparison.tex").read_text()
    body = tex[tex.index(r"\midrule"):tex.index(r"\bottomrule")]
    rows = [line for line in body.splitlines() if line.endswith(r"\\")]
    assert len(rows) == 33 and all(line.endswith(r"not run here \\") for line in rows)
    assert r"cifar10 & conv2 & aslp & SC+SR & extracted & $67.1$ & -- & -- & -- & not run here \\" in rows
    assert r"edge\_popup" in body and "edge_popup" not in body.replace(r"edge\_popup", "")
    caption = tex[tex.index(r"\caption{"):].splitlines()[0]
    assert caption.endswith("where the configuration that reproduces it was run}")  # a whole sentence
    values = list(csv.DictReader(io.StringIO((tmp_path / "out" / "tables" / "published-values.csv")
                                             .read_text())))
    assert len(values) == 33 and {v["status"] for v in values} == {NOT_RUN}
    assert all(v["command"].startswith("subnetbench run ") for v in values)


def test_the_published_latex_table_gives_ours_and_the_verdict_where_a_value_was_run(full_report):
    _, out, _ = full_report
    tex = (out / "tables" / "published-comparison.tex").read_text()
    line = next(row for row in tex.splitlines() if row.startswith("cifar10 & conv2 & aslp & none &"))
    assert "$68.7$" in line and "(3)" in line and line.endswith(r"reproduced \\")


def test_the_rules_section_names_the_claims_as_the_code_tests_them(full_report):
    """Section 6 says which claims are directional and which is the equivalence test, from
    reports/build.py's EQUIVALENCE_CLAIMS, and that matches what reports/claims.py computes: the
    equivalence claim's comparisons are within runs, the others pair two configurations."""

    results_dir, _, html = full_report
    claims = evaluate_claims(configs_from(results_dir))
    for claim in claims:
        comparisons = [c for part in claim.parts for c in part.comparisons]
        assert bool(comparisons) == (claim.number not in TIMING_CLAIMS), claim.number  # timing: a study
        assert all((c.b is None) == (claim.number in EQUIVALENCE_CLAIMS) for c in comparisons)
    directional = ", ".join(str(c.number) for c in claims
                            if c.number not in EQUIVALENCE_CLAIMS + TIMING_CLAIMS)
    rules = html[html.index('id="methods"'):html.index('id="files"')]
    assert f"Directional claims ({directional})" in rules and "Directional claims (1, 2, 3)" in rules
    assert "Timing (claim 4)" in rules
    assert "Claim 5 (equivalence)" in rules and "Claim 4 (equivalence)" not in rules
    assert "claim 1: aslp vs supermask and aslp vs edge_popup" in rules
    assert "claim 3: SC and DA" not in rules  # SC and DA are observations now, not parts of claim 3


def test_the_configurations_table_says_a_protocols_notes_once(full_report):
    """A note every configuration of a protocol has (the digits recipe) is said once, in the
    protocol's header row, not on every row; the notes that tell configurations apart stay on theirs."""
    _, _, html = full_report
    table = html[html.index('id="configs"'):html.index("</table>", html.index('id="configs"'))]
    assert table.count("digits protocol: CPU-sized choices") == 1
    assert table.count('<tr class="group">') == 2  # cifar10-conv2 and digits-conv2
    assert table.count("smart rescale: ") >= 2  # each SR row keeps its own


# ---------------------------------------------------------------------------------------------------
# what the report says about itself: title, paths, recipe changes
# ---------------------------------------------------------------------------------------------------
def test_the_report_names_what_ran_shows_no_machine_path_and_shows_recipe_changes(tmp_path):
    results = (tmp_path / "somewhere" / "my-results").resolve()
    for seed in (0, 1, 2):
        write_result(results, make_result(protocol="digits-conv2", dataset="digits", network="conv2",
                                          method="aslp", seed=seed, recipe={"epochs": 2}))
        write_result(results, make_result(protocol="digits-conv2", dataset="digits", network="conv2",
                                          method="dense", seed=seed))
    html = reports.build_report(results, tmp_path / "out").read_text()
    title = html[html.index('<h1 id="report-title">'):html.index("</h1>")]
    assert "digits conv2: aslp, dense (2 configurations, seeds 0\u20132, 6 runs)" in title
    assert "my-results" not in title  # the folder's name says nothing of what ran
    assert str(tmp_path) not in html and str(Path.home()) + "/" not in html
    assert str(Path(reports.__file__).resolve().parents[1]) not in html  # the repository's path
    cells = html[html.index('id="table-1"'):html.index("</table>", html.index('id="table-1"'))]
    assert '<div class="cfg recipe-changes"' in cells and "epochs=2" in cells


def test_a_single_seed_shows_no_spread_in_the_command_line_summary():
    from subnetbench.benchmark.summary import summarise

    one = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="dense", seed=0)
    two = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="aslp", seed=1)
    three = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="aslp", seed=2)
    lines = {line.split()[1]: line for line in summarise([one, two, three]).splitlines()[1:]}
    assert "±" not in lines["dense"]  # no "± 0.00": one run has no spread
    assert lines["aslp"].count("±") == 2
    assert len(lines["dense"]) == len(lines["aslp"])  # the columns stay aligned


def test_a_verdict_on_digits_says_the_claims_are_about_cifar_and_one_on_cifar_does_not(tmp_path):
    cifar = runs_of("aslp", {0: 0.70, 1: 0.71, 2: 0.69}) + _supermask(
        {0: (0.66, 0.66), 1: (0.67, 0.67), 2: (0.66, 0.665)}, "conv2")
    claim = evaluate_claims(configs_from(grid(tmp_path / "cifar", cifar)))[0]
    assert claim.scope.protocols == ("cifar10-conv2",) and claim.off_paper is None
    assert "seeds 0, 1, 2 (n=3)" in claim.scope.text and "supermask: test_acc" in claim.scope.text
    digits = runs_of("aslp", {0: 0.97, 1: 0.96}, protocol="digits-conv2", dataset="digits")
    digits += runs_of("aslp", {0: 0.96, 1: 0.97}, protocol="digits-conv2", dataset="digits",
                      method_options={"smart_rescale": True})
    claim = evaluate_claims(configs_from(grid(tmp_path / "digits", digits)))[2]
    assert claim.scope.text.startswith("digits conv2 (protocol digits-conv2) · seeds 0, 1 (n=2)")
    assert "claims are about CIFAR-10 and CIFAR-100" in claim.off_paper
    assert "subnetbench run --grid cifar10 --seeds 0,1,2,3,4" in claim.off_paper
    comp = claim.parts[0].comparisons[0]
    assert comp.scope.text == claim.scope.text  # every comparison names its own scope too


def test_the_claims_table_file_names_each_verdicts_scope(full_report):
    _, out, _ = full_report
    rows = list(csv.DictReader(io.StringIO((out / "tables" / "claims.csv").read_text())))
    assert rows and all(row["scope"] for row in rows if row["comparison"])
    assert any("seeds 0, 1, 2 (n=3)" in row["scope"] for row in rows)
