"""Live progress of long commands (subnetbench/progress.py): runs done of the total, elapsed and
ETA, each running run's epoch; also for runs in worker processes (--jobs), and while a report is
drawn."""
from __future__ import annotations

import io
import re

from subnetbench import cli
from subnetbench.progress import RunProgress
from tests.helpers import single_torch_thread  # noqa: F401  (autouse fixture)


def events(run_id: str, label: str, epochs: int = 30) -> list[dict]:
    return [{"kind": "start", "run_id": run_id, "label": label, "epochs": epochs, "epoch": 0},
            {"kind": "epoch", "run_id": run_id, "epoch": 7, "epochs": epochs, "val_acc": 0.912,
             "best_val_acc": 0.912},
            {"kind": "stage", "run_id": run_id, "text": "testing and extracting"}]


def test_the_status_line_says_runs_done_elapsed_eta_and_each_running_epoch():
    display = RunProgress(4, stream=io.StringIO(), interactive=False, every=3600)
    for event in events("a", "digits-conv2 aslp seed 0") + events("b", "digits-conv2 dense seed 1")[:2]:
        display(event)
    display.finished("c", "[1/4] c: done")
    line = display.status_line()
    assert re.search(r"1/4 runs done, elapsed \dm\d\ds, ETA \dm\d\ds", line)
    assert "digits-conv2 aslp seed 0 epoch 7/30 val 91.2% (testing and extracting)" in line
    assert "digits-conv2 dense seed 1 epoch 7/30 val 91.2%" in line


def test_a_terminal_gets_a_live_display_with_a_bar_per_running_run():
    stream = io.StringIO()
    with RunProgress(2, stream=stream, interactive=True) as display:
        for event in events("a", "digits-conv2 aslp seed 0"):
            display(event)
        assert len(display.tasks) == 1
        display.finished("a", "[1/2] a: done")
        assert display.tasks == {}
    assert "[1/2] a: done" in stream.getvalue() and "1/2" in stream.getvalue()


def test_runs_in_worker_processes_report_their_epochs_as_they_train(tmp_path, capsys, monkeypatch):
    """--jobs 2: the workers' events reach the main process's display, which prints a status line
    every SUBNETBENCH_PROGRESS_SECONDS when the output is not a terminal."""
    monkeypatch.setattr("subnetbench.progress.HEARTBEAT_S", 0.2)
    argv = ["run", "digits-conv2", "--method", "dense", "--seeds", "0,1", "--set", "epochs=4",
            "--jobs", "2", "--results", str(tmp_path), "--device", "cpu", "--report", str(tmp_path / "r")]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    status = [line for line in captured.err.splitlines() if "runs done" in line]
    assert any(re.search(r"digits-conv2 dense seed [01] epoch [1-4]/4", line) for line in status), status
    assert "report: figure 1/5" in captured.err  # the report's steps are said too
    assert captured.out.count(": done, extracted test acc") == 2
