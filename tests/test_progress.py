"""Live progress of long commands (subnetbench/progress.py): runs done of the total, elapsed and the
time left, each running run's epoch; also for runs in worker processes (--jobs), and while a report
is drawn. The time left is a pure function of what the runs have done (estimate_remaining), tested
here on made-up timings: no test waits for a clock."""
from __future__ import annotations

import io
import logging
import queue
import re
import sys

import pytest

from subnetbench import cli, progress
from subnetbench.benchmark import grids
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.summary import planned_run
from subnetbench.console import show_warnings
from subnetbench.progress import PlannedRun, RunProgress, RunWork, estimate_remaining
from subnetbench.record_reading import read_result_file
from tests.helpers import (
    REPO,
    single_torch_thread,  # noqa: F401  (autouse fixture)
)


def events(run_id: str, label: str, epochs: int = 30) -> list[dict]:
    return [{"kind": "start", "run_id": run_id, "label": label, "epochs": epochs, "epoch": 0},
            {"kind": "epoch", "run_id": run_id, "epoch": 7, "epochs": epochs, "val_acc": 0.912,
             "best_val_acc": 0.912},
            {"kind": "stage", "run_id": run_id, "text": "testing and extracting"}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the estimate, a pure function -------------------------------------------------------------
def done(key: str, epochs: int, seconds: float, budget: int = 30, tail: float = 0.0, group: str = "g",
         passes: int = 1) -> RunWork:
    return RunWork(key, group, budget, passes, epoch=epochs, timed_epochs=epochs, timed_s=seconds,
                   finished=True, tail_s=tail)


def todo(key: str, budget: int = 30, group: str = "g", passes: int = 1) -> RunWork:
    return RunWork(key, group, budget, passes)


def test_nothing_is_estimated_before_an_epoch_was_timed():
    assert estimate_remaining([todo("a"), todo("b")]) is None
    stored = RunWork("a", "g", 30, epoch=30, finished=True)  # done before the command: not watched
    assert estimate_remaining([stored, todo("a")]) is None


def test_a_run_costs_its_configurations_seconds_an_epoch_over_the_share_of_its_budget_runs_use():
    # seed 0 trained 20 of its 30 epochs (early stopping) at 0.5 s, then 2 s of testing: seed 1 too
    assert estimate_remaining([done("a", 20, 10.0, tail=2.0), todo("a")]) == pytest.approx(12.0)
    # no run of its group finished yet: the share every finished run used
    assert estimate_remaining([done("a", 20, 10.0, group="g1"), todo("b", group="g2")]) == pytest.approx(
        20 * 0.5)
    # no run finished at all: the whole budget
    running = RunWork("a", "g", 30, epoch=10, timed_epochs=10, timed_s=5.0)
    assert estimate_remaining([running, todo("b", group="g2")]) == pytest.approx(20 * 0.5 + 30 * 0.5)


def test_a_running_run_costs_the_epochs_it_has_left():
    running = RunWork("a", "g", 30, epoch=12, timed_epochs=12, timed_s=12.0)
    assert estimate_remaining([running]) == pytest.approx(18 * 1.0)
    resumed = RunWork("a", "g", 30, epoch=20, timed_epochs=2, timed_s=2.0)  # 18 epochs in an earlier session
    assert estimate_remaining([resumed]) == pytest.approx(10 * 1.0)


def test_a_configuration_not_yet_timed_costs_its_groups_seconds_a_pass_times_its_passes():
    """ASLP with smart rescale makes two training passes a batch (the released code): before any of
    its runs is timed it costs twice ASLP's epoch, at the share of the budget ASLP's runs used."""
    plain = done("aslp", 15, 15.0, group="digits-conv2.aslp")  # 1 s an epoch, half its budget
    sr = todo("aslp SR", group="digits-conv2.aslp", passes=2)
    assert estimate_remaining([plain, sr]) == pytest.approx(15 * 2.0)
    other = todo("dense", group="digits-conv2.dense")  # a group not timed: every timed run's cost
    assert estimate_remaining([plain, other]) == pytest.approx(15 * 1.0)


def test_runs_training_at_a_time_share_the_time_but_the_longest_sets_a_floor():
    timed = done("a", 10, 10.0, budget=10)  # 1 s an epoch, its whole budget
    two = [timed, todo("a", budget=10), todo("a", budget=10)]
    assert estimate_remaining(two, slots=2) == pytest.approx(10.0)
    assert estimate_remaining(two, slots=1) == pytest.approx(20.0)
    uneven = [timed, todo("a", budget=10), todo("a", budget=100)]
    assert estimate_remaining(uneven, slots=2) == pytest.approx(100.0)


def test_runs_not_described_yet_cost_as_the_described_ones():
    assert estimate_remaining([done("a", 10, 10.0, budget=10)], unseen=3) == pytest.approx(30.0)


def test_cheap_first_runs_no_longer_make_the_time_left_look_short():
    """The audit's grid: nine cheap runs first (0.5 s an epoch, 20 of 30 epochs), then configurations
    with two passes a batch. Seconds per finished run said about a third of what is left."""
    finished = [done(f"plain{i % 3}", 20, 10.0, group=f"m{i % 3}") for i in range(9)]
    later = [todo(f"sr{i % 3}", group=f"m{i % 3}", passes=2) for i in range(9)]
    per_run = 90.0 / 9 * len(later)  # the old estimate: mean seconds of a finished run, times runs left
    assert estimate_remaining(finished + later) == pytest.approx(9 * 20 * 1.0)
    assert estimate_remaining(finished + later) == pytest.approx(2 * per_run)


# -- the display ------------------------------------------------------------------------------
def plan(*labels: str) -> list[PlannedRun]:
    return [PlannedRun(run_id, label, "k", "g", 30) for run_id, label in labels]


def test_the_status_line_says_runs_done_elapsed_eta_and_each_running_epoch():
    clock = Clock()
    display = RunProgress(4, stream=io.StringIO(), interactive=False, every=3600, clock=clock,
                          plan=plan(("a", "digits-conv2 aslp SR seed 0"), ("b", "digits-conv2 dense seed 1"),
                                    ("c", "x"), ("d", "y")))
    a, b = events("a", "digits-conv2 aslp SR seed 0"), events("b", "digits-conv2 dense seed 1")
    for event in a[:1] + b[:1]:
        display(event)
    clock.now += 14.0  # 7 epochs, 2 s each
    for event in a[1:] + b[1:2]:
        display(event)
    display.finished("c", "[1/4] c: done")
    line = display.status_line()
    assert re.search(r"1/4 runs done, elapsed 0m14s, ETA \dm\d\ds", line), line
    assert "digits-conv2 aslp SR seed 0 epoch 7/30 val 91.2% (testing and extracting)" in line
    assert "digits-conv2 dense seed 1 epoch 7/30 val 91.2%" in line
    # a and b: 23 epochs left at 2 s, d: 30 (c was done before: nothing); one at a time
    assert display.remaining() == pytest.approx((2 * 23 + 30) * 2.0)
    clock.now += 10.0  # between two events the time left counts down
    assert display.remaining() == pytest.approx((2 * 23 + 30) * 2.0 - 10.0)


def test_an_event_that_arrives_after_its_run_finished_does_not_list_it_as_running_again():
    """Workers send events on a queue and results on another pipe: a run's last event may reach the
    display after the run was counted done. It stayed listed as running, epoch 0/?, to the end."""
    stream = io.StringIO()
    runs = plan(("a", "digits-conv2 aslp seed 0"), ("b", "digits-conv2 aslp seed 1"))
    with RunProgress(2, stream=stream, interactive=True, every=3600, clock=Clock(), plan=runs) as display:
        for event in events("a", "digits-conv2 aslp seed 0") + events("b", "digits-conv2 aslp seed 1")[:1]:
            display(event)
        display.finished("a", "[1/2] a: done")
        display({"kind": "completed", "run_id": "a"})
        assert "seed 0" not in display.status_line()
        assert "digits-conv2 aslp seed 1 epoch 0/30" in display.status_line()
        assert list(display.running) == ["b"] and list(display.tasks) == ["b"]


def test_a_run_is_labelled_by_its_plan_before_its_first_event():
    display = RunProgress(1, stream=io.StringIO(), interactive=False, every=3600, clock=Clock(),
                          plan=plan(("a", "digits-conv2 supermask DWR seed 2")))
    display({"kind": "stage", "run_id": "a", "text": "loading data"})
    assert "digits-conv2 supermask DWR seed 2 epoch 0/? (loading data)" in display.status_line()


def test_a_terminal_gets_a_live_display_with_a_bar_per_running_run():
    stream = io.StringIO()
    clock = Clock()
    with RunProgress(2, stream=stream, interactive=True, clock=clock) as display:
        for event in events("a", "digits-conv2 aslp seed 0")[:1]:
            display(event)
        clock.now += 7.0
        for event in events("a", "digits-conv2 aslp seed 0")[1:]:
            display(event)
        assert len(display.tasks) == 1
        assert display.display.tasks[0].fields["eta"].startswith("ETA ")  # the overall bar's estimate
        display.finished("a", "[1/2] a: done")
        assert display.tasks == {}
    assert "[1/2] a: done" in stream.getvalue() and "1/2" in stream.getvalue()


def test_runs_in_worker_processes_report_their_epochs_as_they_train(tmp_path, capsys, monkeypatch):
    """--jobs 2: the workers' events reach the main process's display, which prints a status line
    every SUBNETBENCH_PROGRESS_SECONDS when the output is not a terminal. Runs are named by their
    configuration's variant and options, live and in the line of a finished run."""
    monkeypatch.setattr("subnetbench.progress.HEARTBEAT_S", 0.2)
    argv = ["run", "digits-conv2", "--method", "dense", "--seeds", "0,1", "--set", "epochs=4",
            "--jobs", "2", "--results", str(tmp_path), "--device", "cpu", "--report", str(tmp_path / "r")]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    status = [line for line in captured.err.splitlines() if "runs done" in line]
    live = r"digits-conv2 dense \(epochs=4\) seed [01] epoch [1-4]/4"
    assert any(re.search(live, line) for line in status), status
    assert "report: figure 1/5" in captured.err  # the report's steps are said too
    finished = [line for line in captured.out.splitlines() if ": done, extracted test acc" in line]
    assert len(finished) == 2
    line = r"\[[12]/2\] digits-conv2 dense \(epochs=4\) seed [01]: done, .* \([0-9a-f]{12}\)$"
    assert all(re.match(line, text) for text in finished), finished


# -- the time left of a real grid ---------------------------------------------------------------
def replay_digits_grid(slots: int) -> list[tuple[float, float | None]]:
    """The committed digits grid (docs/results/digits) replayed through the display with a fake
    clock, ``slots`` runs at a time in the command's order, each epoch at its recorded time:
    (fraction of the work done, estimated time left / true time left) at every event."""
    configs = sorted((make_config(p, m, s, o, [m], pr) for p, m, o, pr in grids.expand("digits")
                      for s in (0, 1, 2)), key=lambda c: c.run_id)
    free, events = [0.0] * slots, []
    for order, config in enumerate(configs):
        timings = read_result_file(REPO / "docs/results/digits/runs" / f"{config.run_id}.json")[0].timings
        slot = min(range(slots), key=free.__getitem__)
        start, budget = free[slot], planned_run(config).epochs
        events.append((start, order, {"run_id": config.run_id, "kind": "start", "label": "",
                                      "epochs": budget, "epoch": 0}))
        clock = start
        for epoch, seconds in enumerate(timings.epoch_s, 1):
            clock += seconds
            events.append((clock, order, {"run_id": config.run_id, "kind": "epoch", "epoch": epoch,
                                          "epochs": budget, "val_acc": 0.5}))
        free[slot] = start + timings.total_s
        events.append((free[slot], order, {"run_id": config.run_id, "kind": "finished"}))
    total, now = max(free), [0.0]
    display = RunProgress(len(configs), stream=io.StringIO(), interactive=False, every=1e9, slots=slots,
                          plan=[planned_run(c) for c in configs], clock=lambda: now[0])
    seen = []
    for now[0], _, event in sorted(events, key=lambda e: (e[0], e[1])):
        if event["kind"] == "finished":
            display.finished(event["run_id"], "")
        else:
            display(event)
        left = display.remaining()
        seen.append((now[0] / total, None if left is None else left / (total - now[0] or 1.0)))
    return seen


@pytest.mark.parametrize("slots", [1, 2])
def test_the_time_left_of_the_digits_grid_is_within_30_percent_after_a_tenth_of_the_work(slots, capsys):
    """A steady machine: every epoch at the time it took when the committed grid was made. From a
    tenth of the work to 70 % of it (later, seconds left are few and a ratio says little) every
    estimate is within 30 % of the true time left."""
    seen = replay_digits_grid(slots)
    ratios = [ratio for done, ratio in seen if 0.1 <= done <= 0.7]
    assert len(ratios) > 100 and None not in ratios
    assert 0.7 <= min(ratios) and max(ratios) <= 1.3, (min(ratios), max(ratios))


# -- a worker's standard error ------------------------------------------------------------------
def test_a_workers_standard_error_reaches_the_display_as_whole_lines(monkeypatch):
    """Bound to a queue, a worker's stderr (a print, a library warning) becomes one event a line,
    and the display prints each above itself, also with the live display off."""
    events: queue.Queue = queue.Queue()
    monkeypatch.setattr(sys, "stderr", sys.stderr)  # restored after the test
    monkeypatch.setattr(progress, "_worker_events", None)
    progress.bind_worker_events(events)
    show_warnings()
    print("first line\nsecond", file=sys.stderr, end="")
    print(" line", file=sys.stderr)
    logging.getLogger("subnetbench").warning("a damaged file was moved aside")
    got = []
    while not events.empty():
        got.append(events.get())
    assert got == [{"kind": "message", "text": "first line"}, {"kind": "message", "text": "second line"},
                   {"kind": "message", "text": "subnetbench: warning: a damaged file was moved aside"}]
    stream = io.StringIO()
    display = RunProgress(1, stream=stream, interactive=False, enabled=False)
    for event in got:
        display(event)
    assert stream.getvalue().splitlines() == [e["text"] for e in got]
