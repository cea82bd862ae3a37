"""The results folder's layout: every path of a run's files, in the folders the docs name."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.runner import execute
from subnetbench.layout import ResultsLayout


def test_each_kind_of_file_has_its_folder(tmp_path):
    layout = ResultsLayout(str(tmp_path))  # a string is taken as a path
    assert layout.root == tmp_path
    assert layout.run_file("r") == tmp_path / "runs" / "r.json"
    assert layout.checkpoint("r") == tmp_path / "checkpoints" / "r.pt"
    assert layout.subnetwork("r") == tmp_path / "subnetworks" / "r.pt"
    assert layout.lock("r") == tmp_path / "locks" / "r.lock"
    assert layout.plan("0123") == tmp_path / "plans" / "0123.json"
    assert layout.submitit == tmp_path / "submitit"
    assert layout.run_folders(False) == (layout.runs, layout.checkpoints, layout.locks)
    assert layout.run_folders(True)[-1] == layout.subnetworks
    assert set(layout.folders_with_temporaries()) == {
        layout.runs, layout.plans, layout.checkpoints, layout.subnetworks}


def test_a_layout_is_frozen_and_compares_by_its_root(tmp_path):
    layout = ResultsLayout(tmp_path)
    assert layout == ResultsLayout(str(tmp_path)) and layout != ResultsLayout(tmp_path / "other")
    with pytest.raises(dataclasses.FrozenInstanceError):
        layout.root = Path("elsewhere")  # type: ignore[misc]


def test_a_run_writes_exactly_where_the_layout_says(tmp_path):
    config = make_config("digits-conv2", "dense", 0, {"epochs": "1"})
    execute(config, tmp_path, device="cpu", progress=False, save_subnetwork=True)
    layout = ResultsLayout(tmp_path)
    assert layout.run_file(config.run_id).is_file()
    assert layout.subnetwork(config.run_id).is_file()
    assert layout.lock(config.run_id).is_file()
    assert not layout.checkpoint(config.run_id).exists()  # a finished run's checkpoint is removed
    assert {p.name for p in tmp_path.iterdir()} == {"runs", "checkpoints", "subnetworks", "locks"}
