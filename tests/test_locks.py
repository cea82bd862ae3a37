"""No run is trained twice and no finished result is lost, whatever launches it: the lock of each
run (subnetbench/locks.py), tested with real concurrent processes, and the rule that a completed
result file is only ever replaced by a completed one."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from subnetbench import locks, status
from subnetbench.benchmark import runner, stored_result
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.runner import execute
from subnetbench.integrity import digest_path, write_with_digest
from subnetbench.layout import ResultsLayout
from tests.helpers import REPO, child_env, hold_lock, interruptible, single_torch_thread  # noqa: F401

TINY = {"epochs": "1"}
ENDLESS = ["--set", "epochs=100000", "--set", "patience=0"]  # hours: a run that is still training


def test_a_lock_is_held_once_and_described(tmp_path):
    lock = locks.acquire(tmp_path, "run-a")
    assert lock is not None
    try:
        assert locks.acquire(tmp_path, "run-a") is None  # this process does not take it twice
        holder = locks.holder(tmp_path, "run-a")
        assert holder["pid"] == os.getpid() and holder["run_id"] == "run-a" and holder["host"]
        assert set(locks.locked_runs(tmp_path)) == {"run-a"}
    finally:
        lock.release()
    assert locks.holder(tmp_path, "run-a") is None and locks.locked_runs(tmp_path) == {}
    again = locks.acquire(tmp_path, "run-a")
    assert again is not None
    again.release()


def test_a_lock_of_another_process_is_refused_and_freed_when_it_is_killed(tmp_path):
    holder = hold_lock(tmp_path, "run-a", 60)
    try:
        assert locks.acquire(tmp_path, "run-a") is None
        assert locks.holder(tmp_path, "run-a")["pid"] == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert locks.holder(tmp_path, "run-a") is None  # the kernel released it with the process
    lock = locks.acquire(tmp_path, "run-a")
    assert lock is not None
    lock.release()


def test_waiting_for_a_lock_returns_when_its_holder_ends(tmp_path):
    holder = hold_lock(tmp_path, "run-a", 1.0)
    started = time.monotonic()
    lock = locks.acquire(tmp_path, "run-a", wait=True)
    waited = time.monotonic() - started
    lock.release()
    holder.wait(timeout=30)
    assert lock is not None and waited >= 0.5


def test_a_run_locked_elsewhere_is_not_trained_here(tmp_path, monkeypatch):
    config = make_config("digits-conv2", "dense", 0, TINY)
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("a locked run was trained"))
    holder = hold_lock(tmp_path, config.run_id, 60)
    try:
        result = execute(config, tmp_path, device="cpu", progress=False)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert result["status"] == "running" and result["running_elsewhere"]["pid"] == holder.pid
    assert result["run_id"] == config.run_id
    # nothing written over the holder's files
    assert not ResultsLayout(tmp_path).run_file(config.run_id).exists()


def test_a_run_completed_while_waiting_for_its_lock_is_reused(tmp_path, monkeypatch):
    config = make_config("digits-conv2", "dense", 0, TINY)
    done = execute(config, tmp_path / "done", device="cpu", progress=False)
    path = ResultsLayout(tmp_path).run_file(config.run_id)
    real_acquire = locks.acquire

    def acquire_after_the_other_finished(results_dir, run_id, wait=False):
        path.parent.mkdir(parents=True, exist_ok=True)  # what the other process left meanwhile
        path.write_bytes(ResultsLayout(tmp_path / "done").run_file(config.run_id).read_bytes())
        return real_acquire(results_dir, run_id, wait)

    monkeypatch.setattr(locks, "acquire", acquire_after_the_other_finished)
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("a finished run was trained"))
    result = execute(config, tmp_path, device="cpu", progress=False)
    assert result["skipped"] is True and result["metrics"] == done["metrics"]


def _first_read_then(after):
    """stored_result.inspect_result that calls ``after(path)`` right after its first read: what another
    process does between this process's first look at a result file and its lock."""
    real = stored_result.inspect_result
    calls = []

    def inspect(path):
        found = real(path)
        calls.append(path)
        if len(calls) == 1:
            after(path)
        return found
    return inspect


def _corrupt_files(results_dir) -> list:
    return sorted(p.name for p in results_dir.rglob("*") if ".corrupt-" in p.name)


def test_a_result_the_holder_completes_after_the_first_look_is_never_moved_aside(tmp_path, monkeypatch):
    """A damaged result file; the lock's holder writes its completed result just after this process
    read the damaged one. The good result is reused, not moved aside as the damaged one."""
    config = make_config("digits-conv2", "dense", 0, TINY)
    done = execute(config, tmp_path / "done", device="cpu", progress=False)
    good = ResultsLayout(tmp_path / "done").run_file(config.run_id).read_bytes()
    path = ResultsLayout(tmp_path / "r").run_file(config.run_id)
    path.parent.mkdir(parents=True)
    path.write_text("{ damaged")
    monkeypatch.setattr(stored_result, "inspect_result", _first_read_then(lambda p: p.write_bytes(good)))
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("a finished run was trained"))
    result = execute(config, tmp_path / "r", device="cpu", progress=False)
    assert result["skipped"] is True and result["metrics"] == done["metrics"]
    assert path.read_bytes() == good and _corrupt_files(tmp_path / "r") == []


def test_a_bad_result_another_process_moved_aside_first_is_no_error(tmp_path, monkeypatch):
    """Two processes found one damaged result file (locks local to a node); the other one moved it
    aside first. This one goes on and trains the run."""
    config = make_config("digits-conv2", "dense", 0, TINY)
    path = ResultsLayout(tmp_path).run_file(config.run_id)
    path.parent.mkdir(parents=True)
    path.write_text("{ damaged")
    real = stored_result.inspect_result

    def moved_by_the_other(at):
        found = real(at)
        if at.exists():
            at.rename(at.with_name(at.name + ".corrupt-by-the-other"))
        return found

    monkeypatch.setattr(stored_result, "inspect_result", moved_by_the_other)
    result = execute(config, tmp_path, device="cpu", progress=False)
    assert result["status"] == "completed"
    assert _corrupt_files(tmp_path) == [f"{config.run_id}.json.corrupt-by-the-other"]


@pytest.mark.parametrize("damage", ["result file", "subnetwork digest"])
def test_the_first_look_without_the_lock_changes_no_file(tmp_path, damage):
    """A damaged result file, or a saved subnetwork whose digest file is to be repaired (the bytes
    are the previous file's), while another process holds the run's lock: nothing is moved aside
    or rewritten by a process that does not hold the lock."""
    config = make_config("digits-conv2", "dense", 0, TINY)
    if damage == "result file":
        target = ResultsLayout(tmp_path).run_file(config.run_id)
        target.parent.mkdir(parents=True)
        target.write_text("{ damaged")
    else:
        execute(config, tmp_path, device="cpu", progress=False, save_subnetwork=True)
        subnetwork = ResultsLayout(tmp_path).subnetwork(config.run_id)
        old = subnetwork.read_bytes()
        write_with_digest(subnetwork, b"a newer subnetwork, whose write stopped here")
        subnetwork.write_bytes(old)
        target = digest_path(subnetwork)
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "locks" not in p.parts}
    holder = hold_lock(tmp_path, config.run_id, 60)
    try:
        result = execute(config, tmp_path, device="cpu", progress=False, save_subnetwork=True)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert result["running_elsewhere"]["pid"] == holder.pid
    after = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "locks" not in p.parts}
    assert after == before and target.name in after


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), RuntimeError("the loss is NaN")])
def test_a_forced_rerun_that_stops_keeps_the_completed_result(tmp_path, monkeypatch, stop):
    config = make_config("digits-conv2", "dense", 0, TINY)
    execute(config, tmp_path, device="cpu", progress=False)
    completed = ResultsLayout(tmp_path).run_file(config.run_id).read_bytes()

    def stopped(*args, **kwargs):
        assert ResultsLayout(tmp_path).run_file(config.run_id).read_bytes() == completed  # no running record
        raise stop

    monkeypatch.setattr(runner, "fit", stopped)
    with pytest.raises(type(stop)):
        execute(config, tmp_path, device="cpu", progress=False, force=True)
    assert ResultsLayout(tmp_path).run_file(config.run_id).read_bytes() == completed


@pytest.mark.parametrize("lands", ["before the running record", "during training"])
def test_a_result_another_node_completed_is_never_replaced_by_running_or_failed(tmp_path, monkeypatch,
                                                                                lands):
    """Where locks are local to a node, a process on another node can train the same run: its
    completed result lands while this process starts the run, or trains it; this one then fails.
    The completed result stays."""
    config = make_config("digits-conv2", "dense", 0, TINY)
    execute(config, tmp_path / "done", device="cpu", progress=False)
    good = ResultsLayout(tmp_path / "done").run_file(config.run_id).read_bytes()
    path = ResultsLayout(tmp_path).run_file(config.run_id)

    def the_other_node_completes_it():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(good)

    real_base_record = runner.base_record

    def base_record(*args):
        if lands == "before the running record":
            the_other_node_completes_it()
        return real_base_record(*args)

    def fit(*args, **kwargs):
        if lands == "during training":
            the_other_node_completes_it()
        assert path.read_bytes() == good  # no running record over it
        raise RuntimeError("the loss is NaN")

    monkeypatch.setattr(runner, "base_record", base_record)
    monkeypatch.setattr(runner, "fit", fit)
    with pytest.raises(RuntimeError):
        execute(config, tmp_path, device="cpu", progress=False)
    assert path.read_bytes() == good


def _command(results_dir) -> list[str]:
    return [sys.executable, "-m", "subnetbench", "run", "digits-conv2", "--method", "dense", *ENDLESS,
            "--results", str(results_dir), "--device", "cpu", "--no-progress"]


def _holder_pid(results_dir, run_id: str) -> int | None:
    """The pid of the process that holds the run's lock, as ``subnetbench status`` shows it."""
    for run in status.collect(results_dir)["runs"]:
        if run["run_id"] == run_id and run["state"] == "running":
            return run["holder"].get("pid")
    return None


def test_a_second_command_on_a_run_the_first_one_trains_leaves_it_to_it(tmp_path):
    """Two real commands on one run; the second starts once the first holds the run's lock (as
    subnetbench status shows it), and leaves the run to it rather than train it.
    The first, interrupted, leaves the run to resume."""
    config = make_config("digits-conv2", "dense", 0, {"epochs": ENDLESS[1].split("=")[1],
                                                      "patience": "0"})
    first = subprocess.Popen(_command(tmp_path), cwd=REPO, env=child_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    try:
        deadline = time.monotonic() + 300
        while _holder_pid(tmp_path, config.run_id) != first.pid and first.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _holder_pid(tmp_path, config.run_id) == first.pid, "the first command never held the lock"
        second = subprocess.run(_command(tmp_path), cwd=REPO, env=child_env(), capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 0, second.stderr
        line = next(line for line in second.stdout.splitlines() if line.startswith("[1/1]"))
        assert f": running elsewhere (pid {first.pid} on " in line, line  # and not trained here
        assert _holder_pid(tmp_path, config.run_id) == first.pid  # still training it
    finally:
        first.send_signal(signal.SIGINT)
        try:
            out, err = first.communicate(timeout=120)
        finally:
            if first.poll() is None:  # it did not stop: never leave an endless run training
                first.kill()
                first.communicate()
    assert first.returncode == 130, err
    assert "interrupted; run the same command again to resume" in err
    (run,) = status.collect(tmp_path)["runs"]
    assert run["state"] == "interrupted"
