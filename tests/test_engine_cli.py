"""The ``subnetbench`` command: list, errors as one paragraph with exit code 2, planning, a real run."""
from __future__ import annotations

import json
import shutil

import pytest

from subnetbench import cli, methods
from subnetbench.benchmark import grids, protocols, subnetworks
from subnetbench.launch import executors
from tests.helpers import REPO, single_torch_thread  # noqa: F401


def test_list_prints_methods_protocols_and_options(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in methods.names():
        assert name in out
    for name in ("digits-conv2", "cifar10-conv6", "cifar100-conv4"):
        assert name in out
    assert "epochs=1000" in out and "grids: " in out


def test_list_json_is_valid_json(capsys):
    assert cli.main(["list", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    names = [m["name"] for m in info["methods"]]
    assert names == methods.names() == ["aslp", "biprop", "dense", "edge_popup", "iterand",
                                        "magnitude_pruning", "probmask", "random_pruning",
                                        "supermask"]
    by_name = {p["name"]: p for p in info["protocols"]}
    assert set(by_name) == set(protocols.names())
    assert by_name["cifar10-conv6"]["needs_gpu"] is True and by_name["digits-conv2"]["needs_gpu"] is False
    assert by_name["digits-conv2"]["recipe"]["batch_size"] == 32
    assert by_name["cifar10-conv6"]["recipe"]["epochs"] == 1000
    aslp = next(m for m in info["methods"] if m["name"] == "aslp")
    assert aslp["family"] == "mask-only" and aslp["options"]["smart_rescale"] is False
    assert set(info["grids"]) == set(grids.GRIDS)


@pytest.mark.parametrize("argv, named", [
    (["run", "digits-conv3", "--method", "aslp"], "'digits-conv3'"),
    (["run", "imagenet", "--method", "aslp"], "'imagenet'"),
    (["run", "digits-conv2", "--method", "aslq"], "'aslq'"),
    (["run", "digits-conv2", "--method", "aslp", "--set", "epochs"], "'epochs'"),
    (["run", "digits-conv2", "--method", "aslp", "--set", "epochs=many"], "epochs='many'"),
    (["run", "digits-conv2", "--method", "aslp", "--set", "epocs=3"], "'epocs'"),
    (["run", "digits-conv2", "--method", "aslp", "--set", "epochs=0"], "epochs=0"),
    (["run", "digits-conv2", "--method", "dense", "--set", "method.smart_rescale=true"],
     "method.smart_rescale"),
    (["run", "digits-conv2", "--method", "aslp", "--seeds", "0,x"], "'0,x'"),
    (["run", "digits-conv2", "--method", "aslp", "--seeds", "-1"], "'-1'"),
    (["run", "digits-conv2", "--method", "aslp", "--seeds", ""], "''"),
    (["run", "--method", "aslp"], "no protocol given"),
    (["run", "--grid", "digitz"], "'digitz'"),
    (["run", "digits-conv2", "--method", "aslp", "--device", "tpu"], "'tpu'"),
    (["run", "digits-conv2", "--method", "aslp", "--jobs", "0"], "--jobs 0"),
])
def test_bad_run_arguments_exit_2_with_one_paragraph(tmp_path, capsys, monkeypatch, argv, named):
    def no_execute(*args, **kwargs):
        raise AssertionError("nothing may run when an argument is bad")

    monkeypatch.setattr(executors, "execute_runs", no_execute)
    assert cli.main(argv + ["--results", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert err.startswith("subnetbench: error: ")
    assert "\n" not in err and "Traceback" not in err
    assert named in err
    assert not (tmp_path / "runs").exists()


def test_unknown_protocol_suggests_the_closest(capsys):
    assert cli.main(["run", "digits-conv22", "--method", "aslp"]) == 2
    assert "did you mean 'digits-conv2'" in capsys.readouterr().err


def test_missing_cifar_without_download_exits_2_naming_the_directory(tmp_path, capsys):
    empty = tmp_path / "no-data"
    code = cli.main(["run", "cifar10-conv2", "--method", "dense", "--set", "epochs=1",
                     "--results", str(tmp_path / "results"), "--data", str(empty),
                     "--no-download", "--device", "cpu", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(empty) in err and "SUBNETBENCH_DATA" in err
    # refused before anything is written: no result file, no plan, no lock, no data folder
    assert not (tmp_path / "results").exists() and not empty.exists()


def _planned(monkeypatch, argv) -> list:
    """The configurations ``run`` would execute, with a stand-in for execute."""
    configs = []

    def fake_execute_runs(units, results_dir, **options):
        return [fake_execute(config) for config in units]

    def fake_execute(config):
        configs.append(config)
        return {"protocol": config.protocol, "method": config.method, "run_id": config.run_id,
                "config_hash": config.config_hash, "status": "completed",
                "dataset": config.spec.dataset, "variant": config.variant(),
                "options": config.options_dict(), "non_default_options": config.non_default_options(),
                "curves": {"val_acc": [0.5]},
                "metrics": {"test_acc": 0.5, "final_test_acc": 0.5, "kept_fraction": 0.5,
                            "epochs_to_best": 1, "epochs_run": 1}}

    monkeypatch.setattr(executors, "execute_runs", fake_execute_runs)
    assert cli.main(argv) == 0
    return configs


def test_method_all_expands_to_every_registered_method(monkeypatch, tmp_path, capsys):
    configs = _planned(monkeypatch, ["run", "digits-conv2", "--method", "all", "--seeds", "0,1",
                                     "--results", str(tmp_path), "--device", "cpu"])
    assert sorted({c.method for c in configs}) == methods.names()
    assert len(configs) == 2 * len(methods.names())
    assert {c.seed for c in configs} == {0, 1}
    # no --method is all methods too
    default = _planned(monkeypatch, ["run", "digits-conv2", "--results", str(tmp_path),
                                     "--device", "cpu"])
    assert sorted(c.method for c in default) == methods.names()
    out = capsys.readouterr().out
    runs = 2 * len(methods.names())
    assert f"[{runs}/{runs}]" in out


def test_a_run_named_twice_is_planned_once(monkeypatch, tmp_path, capsys):
    # one run counted twice would be summarised as n=2 seeds (and raced on its files with --jobs)
    configs = _planned(monkeypatch, ["run", "digits-conv2", "digits-conv2", "--method", "dense",
                                     "--method", "dense", "--seeds", "0,0,1", "--results",
                                     str(tmp_path), "--device", "cpu"])
    assert [c.seed for c in configs] == [0, 1]
    out = capsys.readouterr().out
    assert "[2/2]" in out and "[3/" not in out
    row = next(line for line in out.splitlines() if line.startswith("digits-conv2"))
    assert row.split()[:3] == ["digits-conv2", "dense", "2"]  # protocol, configuration, n


def test_dataset_name_expands_to_its_protocols(monkeypatch, tmp_path):
    configs = _planned(monkeypatch, ["run", "digits", "--method", "dense", "--results", str(tmp_path),
                                     "--device", "cpu"])
    assert [c.protocol for c in configs] == [p for p in protocols.names() if p.startswith("digits-")]


def test_method_options_reach_the_methods_that_have_them(monkeypatch, tmp_path):
    configs = _planned(monkeypatch, ["run", "digits-conv2", "--method", "aslp", "--method", "dense",
                                     "--set", "aslp.smart_rescale=true", "--set", "epochs=3",
                                     "--results", str(tmp_path), "--device", "cpu"])
    by_method = {c.method: c for c in configs}
    assert by_method["aslp"].method_options.smart_rescale is True
    assert by_method["dense"].non_default_options() == {"epochs": 3}


def test_grid_plans_the_paper_variants(monkeypatch, tmp_path):
    configs = _planned(monkeypatch, ["run", "--grid", "digits", "--seeds", "0", "--results",
                                     str(tmp_path), "--device", "cpu"])
    variants = {(c.method, tuple(sorted(c.non_default_options()))) for c in configs}
    assert ("aslp", ("method.smart_rescale",)) in variants
    assert ("supermask", ("method.dynamic_weight_rescale",)) in variants
    assert ("edge_popup", ("init",)) in variants
    assert {c.method for c in configs} == set(grids.ALL_METHODS)
    assert len({c.run_id for c in configs}) == len(configs)


def test_a_real_run_prints_the_summary_and_writes_two_run_files(tmp_path, capsys):
    argv = ["run", "digits-conv2", "--method", "dense", "--seeds", "0,1", "--set", "epochs=2",
            "--results", str(tmp_path), "--device", "cpu", "--no-progress"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    files = sorted((tmp_path / "runs").glob("*.json"))
    assert [f.name.rsplit(".", 2)[1] for f in files] == ["seed0", "seed1"]
    results = [json.loads(f.read_text()) for f in files]
    assert all(r["status"] == "completed" and r["metrics"]["epochs_run"] == 2 for r in results)
    assert results[0]["config_hash"] == results[1]["config_hash"]
    lines = out.splitlines()
    # a run's line names it as the summary does (its options), and ends with the hash of its file
    for n, result in enumerate(results, start=1):
        assert lines[n - 1].startswith(f"[{n}/2] digits-conv2 dense (epochs=2) seed {n - 1}: done")
        assert lines[n - 1].endswith(f"({result['config_hash']})")
    header = next(i for i, line in enumerate(lines) if line.startswith("protocol"))
    row = lines[header + 1].split()
    assert row[:4] == ["digits-conv2", "dense", "(epochs=2)", "2"]  # protocol, configuration, n
    assert row[-1] == results[0]["config_hash"]
    mean = sum(r["metrics"]["test_acc"] for r in results) / 2
    assert float(row[4]) == pytest.approx(100 * mean, abs=0.006)
    assert not list((tmp_path / "checkpoints").glob("*.pt"))

    # asked again: both are skipped, nothing is trained
    assert cli.main(argv) == 0
    again = capsys.readouterr().out
    assert "[1/2]" in again and again.count("skipped (done)") == 2
    # the extracted subnetworks were saved (the default) and hold what the result files say
    for result in results:
        network = subnetworks.load_subnetwork(tmp_path, result)
        nonzero, total = methods.count_nonzero_weights(network)
        assert nonzero == round(result["metrics"]["kept_fraction"] * total)


def test_no_save_subnetwork_writes_the_result_but_no_subnetwork(tmp_path, capsys):
    argv = ["run", "digits-conv2", "--method", "dense", "--seeds", "0", "--set", "epochs=1",
            "--results", str(tmp_path), "--device", "cpu", "--no-progress", "--no-save-subnetwork"]
    assert cli.main(argv) == 0
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1
    assert not (tmp_path / "subnetworks").exists()


def test_a_rerun_counts_its_finished_runs_done_at_once_without_starting_a_worker(tmp_path, capsys,
                                                                                 monkeypatch):
    """The README's first command run again: the 36 finished runs are done before any worker
    process starts (a pool that starts fails the test), and the progress counts them at once."""
    shutil.copytree(REPO / "docs" / "results" / "digits", tmp_path / "digits")

    def no_launch(self, units, *args, **kwargs):
        raise AssertionError(f"{len(units)} units launched; every run was finished")

    monkeypatch.setattr(executors.PoolExecutor, "execute", no_launch)
    code = cli.main(["run", "--grid", "digits", "--seeds", "0,1,2", "--jobs", "2", "--results",
                     str(tmp_path / "digits"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count(": skipped (done)") == 36 and "[36/36]" in out, out[-2000:]
