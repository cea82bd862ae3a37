"""Determinism and resumption of real (short) digits runs on the CPU.

A run is a pure function of its configuration and seed: the same run twice gives the same curves and
metrics, bit for bit; an interrupted run (KeyboardInterrupt, or SIGKILL of the real command) resumed
from its checkpoint ends with exactly the result of an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from subnetbench import locks, status
from subnetbench.benchmark import evaluation, summary, training
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.runner import execute
from subnetbench.layout import ResultsLayout
from subnetbench.methods.options import OptionError
from subnetbench.records import seal
from tests.helpers import REPO, single_torch_thread  # noqa: F401

PROTOCOL = "digits-conv2"
# A checkpoint every epoch (the default, "auto", writes them when they cost little beside training).
ASLP = {"epochs": "6", "patience": "0", "checkpoint_interval": "1"}  # as the command line below
MAGNITUDE = {"epochs": "2", "patience": "0", "checkpoint_interval": "1"}  # one-shot: 2 rounds of 2
OUTCOME_KEYS = ("metrics", "curves", "layer_kept_fraction", "keep_probabilities")


def outcome(result: dict) -> dict:
    """What must not depend on how the run was executed (JSON-normalised)."""
    return json.loads(json.dumps({key: result[key] for key in OUTCOME_KEYS}))


def stored(results_dir, config) -> dict:
    return json.loads(ResultsLayout(results_dir).run_file(config.run_id).read_text())


def run(config, results_dir, **options):
    return execute(config, results_dir, device="cpu", progress=False, **options)


class CountEpochs:
    """Counts the training loop's epochs; raises KeyboardInterrupt at epoch ``interrupt_at``."""

    def __init__(self, monkeypatch, interrupt_at: int | None = None):
        self.calls = 0
        original = training.train_epoch

        def train_epoch(trainers, *args, **kwargs):
            self.calls += 1
            if self.calls == interrupt_at:
                raise KeyboardInterrupt
            return original(trainers, *args, **kwargs)

        monkeypatch.setattr(training, "train_epoch", train_epoch)


@pytest.fixture(scope="module")
def aslp_reference(tmp_path_factory):
    """One uninterrupted aslp run, (config, results directory, result)."""
    config = make_config(PROTOCOL, "aslp", 0, ASLP)
    directory = tmp_path_factory.mktemp("aslp-reference")
    return config, directory, run(config, directory)


@pytest.fixture(scope="module")
def magnitude_reference(tmp_path_factory):
    config = make_config(PROTOCOL, "magnitude_pruning", 0, MAGNITUDE)
    directory = tmp_path_factory.mktemp("magnitude-reference")
    return config, directory, run(config, directory)


# -- determinism -------------------------------------------------------------------------------------

def test_reference_run_is_complete(aslp_reference):
    config, directory, result = aslp_reference
    assert result["status"] == "completed"
    assert result["curves"]["epoch"] == [1, 2, 3, 4, 5, 6]
    assert result["metrics"]["epochs_run"] == 6
    assert stored(directory, config)["metrics"] == result["metrics"]
    assert not ResultsLayout(directory).checkpoint(config.run_id).exists()  # deleted once completed


def test_same_run_twice_gives_identical_results(aslp_reference, tmp_path):
    config, directory, result = aslp_reference
    again = run(make_config(PROTOCOL, "aslp", 0, ASLP), tmp_path)
    assert outcome(again) == outcome(result)
    assert outcome(stored(tmp_path, config)) == outcome(stored(directory, config))


def test_different_seeds_give_different_curves(aslp_reference, tmp_path):
    _, _, result = aslp_reference
    # a constant schedule without early stopping: the first two epochs of a 6-epoch run are a 2-epoch
    # run; seed 1's two epochs differ from seed 0's
    other = run(make_config(PROTOCOL, "aslp", 1, {"epochs": "2", "patience": "0"}), tmp_path)
    for key in ("train_loss", "train_acc", "val_acc"):
        assert other["curves"][key] != result["curves"][key][:2], key


# -- resume after an interruption inside the process ------------------------------------------------

def test_interrupted_run_resumes_to_the_uninterrupted_result(aslp_reference, tmp_path, monkeypatch):
    config, _, reference = aslp_reference
    CountEpochs(monkeypatch, interrupt_at=3)  # two epochs finish, the third is interrupted
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path)
    assert stored(tmp_path, config)["status"] == "running"
    ckpt = ResultsLayout(tmp_path).checkpoint(config.run_id)
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)  # plain tensors and containers
    assert checkpoint["loop"]["epoch_in_round"] == 2 and len(checkpoint["loop"]["history"]) == 2
    assert not checkpoint["loop"]["finished"]

    second = CountEpochs(monkeypatch)
    result = run(config, tmp_path)
    assert second.calls == 4  # resumed at epoch 3, not started again
    assert outcome(result) == outcome(reference)
    assert outcome(stored(tmp_path, config)) == outcome(reference)
    # the first two epochs' timings are the interrupted session's
    assert result["timings"]["epoch_s"][:2] == [h["seconds"] for h in checkpoint["loop"]["history"]]
    assert len(result["timings"]["epoch_s"]) == 6
    assert not ckpt.exists()


@pytest.mark.parametrize("interrupt_at", [3, 4], ids=["at-round-1-start", "inside-round-1"])
def test_multi_round_run_interrupted_in_round_1_resumes_exactly(magnitude_reference, tmp_path,
                                                                monkeypatch, interrupt_at):
    config, _, reference = magnitude_reference
    CountEpochs(monkeypatch, interrupt_at=interrupt_at)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path)
    loop = torch.load(ResultsLayout(tmp_path).checkpoint(config.run_id), weights_only=True)["loop"]
    assert loop["round_index"] == 1 and loop["epoch_in_round"] == interrupt_at - 3
    resumed = CountEpochs(monkeypatch)
    result = run(config, tmp_path)
    assert resumed.calls == 5 - interrupt_at
    assert outcome(result) == outcome(reference)
    assert result["curves"]["round"] == [0, 0, 1, 1]
    assert result["metrics"]["kept_fraction"] == pytest.approx(0.5, abs=1e-3)


def test_killed_after_the_last_epoch_resumes_to_the_same_result(magnitude_reference, tmp_path,
                                                               monkeypatch):
    """Interrupted after training ended but before the result was written: nothing is trained again."""
    config, _, reference = magnitude_reference
    real = evaluation.accuracy
    calls = []

    def interrupted_evaluation(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "accuracy", interrupted_evaluation)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path)
    loop = torch.load(ResultsLayout(tmp_path).checkpoint(config.run_id), weights_only=True)["loop"]
    assert loop["finished"] and len(loop["history"]) == 4
    counter = CountEpochs(monkeypatch)
    result = run(config, tmp_path)
    assert counter.calls == 0
    assert outcome(result) == outcome(reference)


def test_finished_run_is_skipped_and_rerun_when_forced(magnitude_reference, monkeypatch):
    config, directory, reference = magnitude_reference
    counter = CountEpochs(monkeypatch)
    skipped = run(config, directory)
    assert skipped["skipped"] is True and counter.calls == 0
    assert outcome(skipped) == outcome(reference)
    assert "skipped" not in stored(directory, config)
    forced = run(config, directory, force=True)
    assert counter.calls == 4
    assert "skipped" not in forced and outcome(forced) == outcome(reference)


def test_a_stored_run_with_other_options_is_not_reused(magnitude_reference, tmp_path, monkeypatch):
    config, directory, _ = magnitude_reference
    path = ResultsLayout(tmp_path).run_file(config.run_id)
    path.parent.mkdir(parents=True)
    record = stored(directory, config)
    record["options"]["method"]["lr"] = 0.5  # as if a default had changed since the run
    del record["options"]["recipe"]["patience"]  # as if an option had been added since
    record = seal(record)  # a file the suite wrote so (an edit without it is a damaged file)
    path.write_text(json.dumps(record))
    CountEpochs(monkeypatch, interrupt_at=1)
    with pytest.raises(OptionError, match="other options") as refusal:
        run(config, tmp_path)
    # the message names what differs, not every option
    assert f"recipe.patience: stored 'absent', now {config.options_dict()['recipe']['patience']!r}" in str(
        refusal.value)
    assert f"method.lr: stored 0.5, now {config.options_dict()['method']['lr']!r}" in str(refusal.value)
    assert "batch_size" not in str(refusal.value)
    assert json.loads(path.read_text()) == record


def test_a_resumed_run_ignores_a_checkpoint_when_forced(magnitude_reference, tmp_path, monkeypatch):
    config, _, reference = magnitude_reference
    CountEpochs(monkeypatch, interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path)
    assert ResultsLayout(tmp_path).checkpoint(config.run_id).exists()
    counter = CountEpochs(monkeypatch)
    result = run(config, tmp_path, force=True)
    assert counter.calls == 4 and outcome(result) == outcome(reference)


# -- resume after SIGKILL of the real command --------------------------------------------------------

def _command(results_dir) -> list[str]:
    return [sys.executable, "-m", "subnetbench", "run", PROTOCOL, "--method", "aslp",
            "--set", "epochs=6", "--set", "patience=0", "--set", "checkpoint_interval=1",
            "--results", str(results_dir),
            "--no-progress", "--device", "cpu"]


def _env() -> dict:
    # one intra-op thread, as in this process (see tests/helpers.py)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _epochs_in(ckpt) -> int:
    try:
        return len(torch.load(ckpt, map_location="cpu", weights_only=True)["loop"]["history"])
    except (OSError, RuntimeError, EOFError, KeyError):
        return 0


def test_killed_command_resumes_to_the_uninterrupted_result(aslp_reference, tmp_path):
    config, _, reference = aslp_reference
    ckpt = ResultsLayout(tmp_path).checkpoint(config.run_id)
    process = subprocess.Popen(_command(tmp_path), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline:
            if ckpt.exists() and _epochs_in(ckpt) >= 2:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None and time.monotonic() >= deadline:
            process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, (
        f"the run ended by itself (exit {process.returncode}) before it could be killed: "
        f"{process.stderr.read().decode()[-2000:]}")
    process.stderr.close()
    assert stored(tmp_path, config)["status"] == "running"
    # the killed command's lock went with it: the run is not left locked, it is resumable
    assert locks.holder(tmp_path, config.run_id) is None
    assert status.collect(tmp_path)["runs"][0]["state"] == "interrupted"
    done_before_kill = _epochs_in(ckpt)
    history = torch.load(ckpt, map_location="cpu", weights_only=True)["loop"]["history"]
    assert 2 <= done_before_kill < 6

    finished = subprocess.run(_command(tmp_path), cwd=REPO, env=_env(), capture_output=True,
                              text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"{summary.run_label(config)}: done" in finished.stdout
    result = stored(tmp_path, config)
    assert result["status"] == "completed"
    assert outcome(result) == outcome(reference)
    # it resumed: the epochs before the kill were not run again
    assert result["timings"]["epoch_s"][:done_before_kill] == [h["seconds"] for h in history]
    assert not ckpt.exists()



# -- the checkpoint interval -------------------------------------------------------------------------

def test_a_checkpoint_interval_of_epochs_resumes_from_its_last_checkpoint_exactly(
        aslp_reference, tmp_path, monkeypatch):
    """checkpoint_interval=3: epochs 1 (always) and 4 write one; interrupted in epoch 6, the run
    resumes after epoch 4 and ends with the uninterrupted result. The interval is a run setting:
    the same configuration hash, the same result file."""
    config, _, reference = aslp_reference
    every_three = make_config(PROTOCOL, "aslp", 0, {**ASLP, "checkpoint_interval": "3"})
    assert every_three.run_id == config.run_id
    assert every_three.options_dict() == config.options_dict()
    CountEpochs(monkeypatch, interrupt_at=6)
    with pytest.raises(KeyboardInterrupt):
        run(every_three, tmp_path)
    loop = torch.load(ResultsLayout(tmp_path).checkpoint(config.run_id), weights_only=True)["loop"]
    assert loop["epoch_in_round"] == 4
    resumed = CountEpochs(monkeypatch)
    result = run(every_three, tmp_path)
    assert resumed.calls == 2
    assert outcome(result) == outcome(reference)


@pytest.mark.parametrize("value", ["0", "-2", "0s", "fast", "1.5", "infs"])
def test_a_bad_checkpoint_interval_is_refused_by_name(value):
    with pytest.raises(OptionError, match=f"checkpoint_interval={value!r}"):
        make_config(PROTOCOL, "aslp", 0, {"checkpoint_interval": value})


def test_auto_checkpoints_once_the_training_took_50_times_the_last_checkpoint(monkeypatch, tmp_path):
    """The default interval bounds what checkpoints cost: the first epoch writes one (and measures
    it), the next is due once 50 times its cost has been trained since; "30s" and "2" are plain."""
    from subnetbench.benchmark import callbacks

    clock = [0.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock[0])
    auto = callbacks.Checkpoint(tmp_path / "a.pt", interval="auto")
    assert auto.due(1)
    auto.last_epoch, auto.last_time, auto.cost_s = 1, 0.0, 0.5  # as after writing a 0.5 s one
    clock[0] = 24.9
    assert not auto.due(2)
    clock[0] = 25.0
    assert auto.due(3)
    seconds = callbacks.Checkpoint(tmp_path / "s.pt", interval="30s")
    seconds.last_epoch, seconds.last_time = 1, 0.0
    assert not seconds.due(2) and (clock.__setitem__(0, 30.0) or seconds.due(2))
    epochs = callbacks.Checkpoint(tmp_path / "e.pt", interval="2")
    epochs.last_epoch = 1
    assert not epochs.due(2) and epochs.due(3)
