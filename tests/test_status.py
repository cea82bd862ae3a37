"""``subnetbench status``: the plans that ``run`` records, and each run's state (completed, running,
failed, interrupted, missing, unreadable) in text and JSON."""
from __future__ import annotations

import json

import pytest

from subnetbench import cli, locks, plans, status
from subnetbench.benchmark import runner
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.runner import execute
from subnetbench.layout import ResultsLayout
from tests.helpers import single_torch_thread  # noqa: F401

RUN = ["run", "digits-conv2", "--method", "dense", "--set", "epochs=1", "--device", "cpu",
       "--no-progress"]


def test_a_plan_is_one_file_per_set_of_runs_and_keeps_its_commands(tmp_path):
    first = plans.new_command(["subnetbench", "run", "a"], "inline")
    path = plans.record(tmp_path, ["b", "a"], first)
    assert path == plans.plan_path(tmp_path, ["a", "b"])
    again = plans.new_command(["subnetbench", "run", "a"], "slurm")
    plans.record(tmp_path, ["a", "b"], again)
    again["job_ids"] = ["42_0", "42_1"]
    plans.record(tmp_path, ["a", "b"], again)  # the same command, updated: not added twice
    plans.record(tmp_path, ["c"], plans.new_command(["subnetbench", "run", "c"], "inline"))
    found, unreadable = plans.read_plans(tmp_path)
    assert unreadable == [] and len(found) == 2
    ab = next(p for p in found if p["runs"] == ["a", "b"])
    assert [c["executor"] for c in ab["commands"]] == ["inline", "slurm"]
    assert ab["commands"][1]["job_ids"] == ["42_0", "42_1"]


def test_status_tells_every_state_apart(tmp_path, monkeypatch, capsys):
    configs = {name: make_config("digits-conv2", "dense", seed, {"epochs": "1"})
               for seed, name in enumerate(["completed", "failed", "interrupted", "running",
                                            "missing", "unreadable"])}
    for name in ("completed", "unreadable"):
        execute(configs[name], tmp_path, device="cpu", progress=False)
    path = ResultsLayout(tmp_path).run_file(configs["unreadable"].run_id)
    path.write_text(path.read_text().replace('"completed"', '"failed"', 1))  # fails its SHA-256

    def broken(*args, **kwargs):
        raise RuntimeError("the loss is NaN at epoch 1")

    monkeypatch.setattr(runner, "fit", broken)
    with pytest.raises(RuntimeError):
        execute(configs["failed"], tmp_path, device="cpu", progress=False)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute(configs["interrupted"], tmp_path, device="cpu", progress=False)
    plans.record(tmp_path, [c.run_id for c in configs.values()],
                 plans.new_command(["subnetbench", "run"], "inline"))
    lock = locks.acquire(tmp_path, configs["running"].run_id)
    try:
        found = status.collect(tmp_path)
        assert cli.main(["status", str(tmp_path)]) == 0
        text = capsys.readouterr().out
        assert cli.main(["status", str(tmp_path), "--json"]) == 0
        as_json = json.loads(capsys.readouterr().out)
    finally:
        lock.release()
    states = {run["run_id"]: run["state"] for run in found["runs"]}
    assert states == {config.run_id: name for name, config in configs.items()}
    assert found["counts"] == {name: 1 for name in status.STATES}
    assert as_json["counts"] == found["counts"] and as_json["planned"] == 6
    failed = next(run for run in as_json["runs"] if run["state"] == "failed")
    assert "NaN" in failed["error"]
    running = next(run for run in as_json["runs"] if run["state"] == "running")
    assert running["holder"]["run_id"] == configs["running"].run_id
    assert "1 completed, 1 running, 1 failed, 1 interrupted, 1 missing, 1 unreadable" in text
    assert configs["missing"].run_id in text and "resumes it from its checkpoint" in text


def test_run_records_its_plan_and_status_lists_unplanned_results_too(tmp_path, capsys):
    assert cli.main(RUN + ["--seeds", "0", "--results", str(tmp_path)]) == 0
    execute(make_config("digits-conv2", "dense", 5, {"epochs": "1"}), tmp_path, device="cpu",
            progress=False)  # as the benchmark suite writes results: no plan
    capsys.readouterr()
    found = status.collect(tmp_path)
    assert found["planned"] == 1 and found["counts"]["completed"] == 2
    (plan,), _ = plans.read_plans(tmp_path)
    assert plan["commands"][0]["argv"][:3] == ["subnetbench", "run", "digits-conv2"]


def test_status_of_a_missing_directory_is_one_paragraph(tmp_path, capsys):
    assert cli.main(["status", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("subnetbench: error: ") and "\n" not in err and "nowhere" in err
