"""``subnetbench run --tensorboard DIR``: each run's per-epoch curves as TensorBoard scalars, as the
released ASLP code logged them, when the tensorboard package is installed (it is no dependency);
without it the runs go on and the command says why there are no curves."""
from __future__ import annotations

import json
import sys

import pytest

from subnetbench import cli
from subnetbench.benchmark.callbacks import tensorboard_missing
from tests.helpers import single_torch_thread  # noqa: F401  (autouse fixture)

RUN = ["run", "digits-conv2", "--method", "dense", "--seeds", "0", "--set", "epochs=3", "--set", "patience=0",
       "--device", "cpu", "--no-progress", "--no-save-subnetwork"]


def test_without_tensorboard_the_runs_go_on_and_the_command_says_why(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if it were not installed
    reason = tensorboard_missing()
    assert reason and "pip install tensorboard" in reason
    code = cli.main(RUN + ["--results", str(tmp_path / "results"), "--tensorboard", str(tmp_path / "tb")])
    captured = capsys.readouterr()
    assert code == 0
    assert f"--tensorboard {tmp_path / 'tb'}: the tensorboard package is not installed" in captured.err
    assert "the runs go on without TensorBoard curves" in captured.err
    assert ": done," in captured.out and not (tmp_path / "tb").exists()


def test_an_empty_tensorboard_folder_is_refused(tmp_path, capsys):
    assert cli.main(RUN + ["--results", str(tmp_path), "--tensorboard", " "]) == 2
    assert "--tensorboard ' ' is not allowed; expected a path" in capsys.readouterr().err


def test_with_tensorboard_every_epoch_of_every_run_is_a_scalar(tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install tensorboard)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    argv = RUN + ["--results", str(tmp_path / "results"), "--tensorboard", str(tmp_path / "tb")]
    assert cli.main(argv) == 0
    (result_file,) = (tmp_path / "results" / "runs").glob("*.json")
    result = json.loads(result_file.read_text())
    logs = tmp_path / "tb" / result["run_id"]
    events = EventAccumulator(str(logs))
    events.Reload()
    assert {"train/loss", "train/acc", "val/acc", "time/epoch_s"} <= set(events.Tags()["scalars"])
    val = events.Scalars("val/acc")
    assert [e.step for e in val] == result["curves"]["epoch"] == [1, 2, 3]
    assert [e.value for e in val] == pytest.approx(result["curves"]["val_acc"], abs=1e-6)
    loss = events.Scalars("train/loss")
    assert [e.value for e in loss] == pytest.approx(result["curves"]["train_loss"], rel=1e-6)
