"""Result files: atomic writes, the documented format, and metrics recomputed from the saved network."""
from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess

import pytest
import torch
from torch import nn

from subnetbench.benchmark import rescaling_study, runner
from subnetbench.benchmark import results as results_module
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.data import DATASET_INFO, load_raw
from subnetbench.benchmark.results import atomic_torch_save, load_verified, read_result
from subnetbench.benchmark.runner import execute
from subnetbench.benchmark.subnetworks import load_subnetwork
from subnetbench.files import atomic_write_text
from subnetbench.layout import ResultsLayout
from subnetbench.record_reading import record_from_json
from subnetbench.records import FORMAT_VERSION
from tests.helpers import REPO, single_torch_thread  # noqa: F401

# -- atomic writes -----------------------------------------------------------------------------------

def test_an_atomic_write_writes_the_payload_and_no_temporary_file(tmp_path):
    path = tmp_path / "deep" / "er" / "run.json"
    atomic_write_text(path, '{"a": 1}')
    assert json.loads(path.read_text()) == {"a": 1}
    atomic_write_text(path, '{"a": 2}')
    assert json.loads(path.read_text()) == {"a": 2}
    assert os.listdir(path.parent) == ["run.json"]


def test_a_failure_while_writing_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    atomic_write_text(path, '{"status": "running"}')
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # after the bytes went to the temporary file
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(path, '{"status": "completed"}')
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run.json"]


def test_a_failure_inside_torch_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "run.pt"
    atomic_torch_save(path, {"x": torch.arange(3)})
    real_save = torch.save

    def half_save(payload, target):
        real_save({"partial": torch.zeros(1)}, target)
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of a checkpoint

    monkeypatch.setattr(results_module.torch, "save", half_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save(path, {"x": torch.arange(5)})
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.arange(3))
    assert sorted(os.listdir(path.parent)) == ["run.pt", "run.pt.sha256"]
    # its digest file still names it: the old checkpoint still passes its SHA-256 check
    assert torch.equal(load_verified(path)["x"], torch.arange(3))


def test_read_result_rejects_other_formats(tmp_path):
    path = tmp_path / "r.json"
    assert read_result(path) is None  # missing
    path.write_text("{not json")
    assert read_result(path) is None
    path.write_text(json.dumps({"format": "subnetbench.result", "format_version": 2}))
    assert read_result(path) is None
    path.write_text(json.dumps({"format": "other", "format_version": 1}))
    assert read_result(path) is None
    path.write_text(json.dumps({"format": "subnetbench.result", "format_version": 1,
                                "status": "completed", "run_id": "r"}))
    assert read_result(path) is None  # completed, but without what identifies it
    path.write_text(json.dumps({"format": "subnetbench.result", "format_version": 1,
                                "status": "running", "run_id": "r", "seed": 3}))
    assert read_result(path).seed == 3


# -- a real run's result file ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def aslp_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("results")
    config = make_config("digits-conv2", "aslp", 0, {"epochs": "2", "patience": "0"})
    result = execute(config, directory, device="cpu", progress=False, save_subnetwork=True)
    return config, directory, result


def test_the_result_file_is_a_valid_record(aslp_run):
    config, directory, result = aslp_run
    text = ResultsLayout(directory).run_file(config.run_id).read_text()
    record, warnings = record_from_json(json.loads(text))
    assert warnings == [] and record.dumps() == text  # read back, written again: the same bytes
    assert json.loads(text) == result


def test_the_result_describes_its_run(aslp_run):
    config, directory, result = aslp_run
    assert result["format"] == "subnetbench.result" and result["format_version"] == FORMAT_VERSION
    assert result["status"] == "completed" and result["error"] is None
    assert result["run_id"] == config.run_id == f"digits-conv2.aslp.{result['config_hash']}.seed0"
    assert (result["dataset"], result["network"], result["family"]) == ("digits", "conv2",
                                                                       "mask-only")
    assert result["non_default_options"] == {"epochs": 2, "patience": 0}
    assert result["options"]["recipe"]["epochs"] == 2
    assert result["options"]["method"]["estimator"] == "logistic"
    assert result["variant"] == {"data_augmentation": False, "signed_constant": False,
                                 "smart_rescale": False, "rescaling": None}
    assert result["timings"]["device"] == "cpu" and len(result["timings"]["epoch_s"]) == 2
    assert result["timings"]["total_s"] >= sum(result["timings"]["epoch_s"])
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode == 0:
        assert result["provenance"]["git_commit"] == head.stdout.strip()
    assert result["provenance"]["versions"]["torch"] == importlib.metadata.version("torch")
    assert not ResultsLayout(directory).checkpoint(config.run_id).exists()


def test_metrics_agree_with_the_curves(aslp_run):
    _, _, result = aslp_run
    metrics, curves = result["metrics"], result["curves"]
    assert curves["epoch"] == [1, 2] and curves["round"] == [0, 0]
    assert metrics["epochs_run"] == 2
    assert metrics["best_val_acc"] == max(curves["val_acc"])
    assert metrics["epochs_to_best"] == curves["val_acc"].index(max(curves["val_acc"])) + 1
    for key in ("test_acc", "final_test_acc", "best_val_acc", "kept_fraction"):
        assert 0 <= metrics[key] <= 1


@torch.no_grad()
def test_final_test_acc_is_the_saved_subnetworks_accuracy(aslp_run):
    _, directory, result = aslp_run
    model = load_subnetwork(directory, result)
    assert all(type(m) in (nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Sequential)
               for m in model.modules() if m is not model)  # a plain network, no masks
    _, test = load_raw("digits")
    info = DATASET_INFO["digits"]
    x = (test.images.float() / 255 - info.mean[0]) / info.std[0]  # digits protocols normalise
    accuracy = (model(x).argmax(1) == test.labels).sum().item() / len(test)
    assert accuracy == result["metrics"]["final_test_acc"]


def test_kept_fractions_are_those_of_the_saved_subnetwork(aslp_run):
    _, directory, result = aslp_run
    model = load_subnetwork(directory, result)
    layers = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert set(result["layer_kept_fraction"]) == set(layers)
    kept = total = 0
    for name, layer in layers.items():
        nonzero = int((layer.weight != 0).sum())
        assert result["layer_kept_fraction"][name] == nonzero / layer.weight.numel()
        kept, total = kept + nonzero, total + layer.weight.numel()
    assert result["metrics"]["kept_fraction"] == kept / total
    assert 0.2 < kept / total < 0.8  # aslp starts near one half
    histogram = result["keep_probabilities"]
    assert len(histogram["bin_edges"]) == 21 and len(histogram["counts"]) == 20
    assert sum(histogram["counts"]) == total


def test_methods_without_keep_probabilities_have_none(tmp_path):
    result = execute(make_config("digits-conv2", "dense", 0, {"epochs": "1"}), tmp_path,
                     device="cpu", progress=False)
    assert result["keep_probabilities"] is None
    assert result["metrics"]["kept_fraction"] == 1.0
    assert result["family"] == "weight-training"
    assert result["metrics"]["test_acc"] == result["metrics"]["final_test_acc"]


def test_a_failing_run_writes_status_failed_with_the_error(tmp_path, monkeypatch):
    def broken(trainers, *args, **kwargs):
        raise RuntimeError("the loss is NaN at epoch 3")

    monkeypatch.setattr(runner, "fit", broken)
    config = make_config("digits-conv2", "dense", 0, {"epochs": "1"})
    with pytest.raises(RuntimeError, match="NaN"):
        execute(config, tmp_path, device="cpu", progress=False)
    record = json.loads(ResultsLayout(tmp_path).run_file(config.run_id).read_text())
    assert record["status"] == "failed"
    assert record["error"] == "RuntimeError: the loss is NaN at epoch 3"
    assert record["run_id"] == config.run_id and "metrics" not in record


def test_an_interrupted_run_stays_running(tmp_path, monkeypatch):
    def interrupted(trainers, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "fit", interrupted)
    config = make_config("digits-conv2", "dense", 0, {"epochs": "1"})
    with pytest.raises(KeyboardInterrupt):
        execute(config, tmp_path, device="cpu", progress=False)
    record = json.loads(ResultsLayout(tmp_path).run_file(config.run_id).read_text())
    assert record["status"] == "running" and record["error"] is None


def test_a_rescaling_run_trains_no_extra_networks_and_a_timing_study_leaves_runs_as_they_are(tmp_path):
    """Claim 4's overhead is measured by its own study (subnetbench timing), not inside each run: a
    rescaling run records no overhead, and a study run in the same process before it draws from
    streams of its own, so the run's numbers are those of a run made without it."""
    config = make_config("digits-conv2", "aslp", 0, {"epochs": "2", "patience": "0",
                                                     "method.smart_rescale": "true"})
    alone = execute(config, tmp_path / "alone", device="cpu", progress=False)
    assert "rescaling_overhead" not in alone["timings"]
    rescaling_study.measure("digits-conv2", seed=0, repeats=1)
    after = execute(config, tmp_path / "after", device="cpu", progress=False)
    assert after["metrics"] == alone["metrics"]
    assert after["curves"]["val_acc"] == alone["curves"]["val_acc"]
    assert after["curves"]["train_loss"] == alone["curves"]["train_loss"]
    assert after["layer_kept_fraction"] == alone["layer_kept_fraction"]
