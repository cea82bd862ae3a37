"""What a stored result means (reuse, resume, refuse, quarantine), decided by one read-only
function and carried out under the run's lock."""
from __future__ import annotations

import json
import logging

import pytest

from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.runner import execute
from subnetbench.benchmark.stored_result import Verdict, judge, settle
from subnetbench.errors import NewerFormatError, OptionError
from subnetbench.integrity import QUARANTINE_MARK, digest_path, sha256_hex
from subnetbench.layout import ResultsLayout
from subnetbench.records import FORMAT_VERSION, seal

TINY = {"epochs": "1"}


@pytest.fixture(scope="module")
def completed(tmp_path_factory):
    """A completed run with its saved subnetwork: its config and the bytes of its files."""
    directory = tmp_path_factory.mktemp("completed")
    config = make_config("digits-conv2", "dense", 0, TINY)
    execute(config, directory, device="cpu", progress=False, save_subnetwork=True)
    layout = ResultsLayout(directory)
    return config, {path: path.read_bytes() for path in (
        layout.run_file(config.run_id), layout.subnetwork(config.run_id),
        digest_path(layout.subnetwork(config.run_id)))}, directory


def copy_to(completed, tmp_path) -> ResultsLayout:
    config, files, directory = completed
    for path, data in files.items():
        target = tmp_path / path.relative_to(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return ResultsLayout(tmp_path)


def snapshot(folder) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_nothing_stored_is_resumed(tmp_path):
    config = make_config("digits-conv2", "dense", 0, TINY)
    decision = judge(config, ResultsLayout(tmp_path))
    assert decision.verdict is Verdict.RESUME and decision.reusable() is None


def test_a_completed_result_is_reused_and_force_resumes_it(completed, tmp_path):
    config = completed[0]
    layout = copy_to(completed, tmp_path)
    reused = judge(config, layout, check_subnetwork=True).reusable()
    assert reused["skipped"] is True and reused["run_id"] == config.run_id
    assert reused["status"] == "completed"
    assert judge(config, layout, force=True).verdict is Verdict.RESUME


def test_an_unfinished_result_is_resumed(completed, tmp_path):
    config = completed[0]
    layout = copy_to(completed, tmp_path)
    data = json.loads(layout.run_file(config.run_id).read_text())
    data["status"] = "running"
    layout.run_file(config.run_id).write_text(json.dumps(seal(data)))
    assert judge(config, layout).verdict is Verdict.RESUME


def test_other_options_and_a_newer_format_are_refused_and_left_as_they_are(completed, tmp_path):
    config = completed[0]
    layout = copy_to(completed, tmp_path)
    other = make_config("digits-conv2", "dense", 0, TINY)
    path = layout.run_file(config.run_id)
    data = json.loads(path.read_text())
    data["options"]["recipe"]["epochs"] = 7
    path.write_text(json.dumps(seal(data)))
    decision = judge(other, layout)
    assert decision.verdict is Verdict.REFUSE
    with pytest.raises(OptionError, match="recipe.epochs: stored 7, now 1"):
        decision.reusable()
    with pytest.raises(OptionError):
        settle(decision, other, layout)
    data["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(data))
    before = snapshot(tmp_path)
    newer = judge(config, layout, force=True)
    assert newer.verdict is Verdict.REFUSE and isinstance(newer.error, NewerFormatError)
    assert snapshot(tmp_path) == before


def test_a_damaged_result_is_quarantined_only_when_settled(completed, tmp_path, caplog):
    config = completed[0]
    layout = copy_to(completed, tmp_path)
    layout.run_file(config.run_id).write_text("{ damaged")
    before = snapshot(tmp_path)
    decision = judge(config, layout)
    assert decision.verdict is Verdict.QUARANTINE and decision.bad_file == layout.run_file(config.run_id)
    assert decision.reusable() is None and snapshot(tmp_path) == before  # the first look changes nothing
    with caplog.at_level(logging.WARNING, logger="subnetbench"):
        assert settle(decision, config, layout) is None
    assert not layout.run_file(config.run_id).exists()
    assert [p.name for p in layout.runs.iterdir() if QUARANTINE_MARK in p.name]
    assert "starts again from scratch" in caplog.text


def test_a_bad_subnetwork_is_quarantined_and_a_stale_digest_repaired(completed, tmp_path, caplog):
    config = completed[0]
    layout = copy_to(completed, tmp_path)
    subnetwork = layout.subnetwork(config.run_id)
    good = subnetwork.read_bytes()
    # The last write stopped between the digest file and the data file: the previous file is kept.
    record = json.loads(digest_path(subnetwork).read_text())
    record["previous_sha256"], record["sha256"] = record["sha256"], sha256_hex(b"newer")
    digest_path(subnetwork).write_text(json.dumps(record))
    stale = judge(config, layout, check_subnetwork=True)
    assert stale.verdict is Verdict.REUSE and stale.stale_digest and stale.reusable() is None
    assert settle(stale, config, layout)["skipped"] is True
    assert judge(config, layout, check_subnetwork=True).reusable() is not None  # repaired
    assert judge(config, layout).verdict is Verdict.REUSE  # not checked when none is kept
    subnetwork.write_bytes(good[:-10])
    damaged = judge(config, layout, check_subnetwork=True)
    assert damaged.verdict is Verdict.QUARANTINE and damaged.bad_file == subnetwork
    with caplog.at_level(logging.WARNING, logger="subnetbench"):
        assert settle(damaged, config, layout) is None
    assert not subnetwork.exists() and "computed again from scratch" in caplog.text
