"""Several GPUs of one machine (``run --devices``) and the benchmark suite's xdist workers: which
process trains on which device. The assignment is pure functions; the pool of device workers runs
here on the CPU (``device_type="cpu"``), where no GPU is needed to check it."""
from __future__ import annotations

import json

import pytest

from subnetbench import cli, devices
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.runner import execute
from subnetbench.errors import NewerFormatError
from subnetbench.launch import pool
from subnetbench.launch.options import RunSettings
from subnetbench.layout import ResultsLayout
from subnetbench.methods.base import OptionError
from tests.helpers import hold_lock, single_torch_thread  # noqa: F401


@pytest.mark.parametrize("text, visible, expected", [
    ("all", 4, [0, 1, 2, 3]),
    ("0,1,2,3", 4, [0, 1, 2, 3]),
    (" 2, 0", 4, [2, 0]),
    ("0,0", 1, [0, 0]),  # two runs at once on one device
    ("all", 1, [0]),
])
def test_devices_are_parsed_against_the_visible_ones(text, visible, expected):
    assert devices.parse_devices(text, visible) == expected


@pytest.mark.parametrize("text, visible, named", [
    ("0", 0, "none is visible"),
    ("all", 0, "none is visible"),
    ("4", 4, "names device 4"),
    ("-1", 2, "names device -1"),
    ("0,x", 2, "'0,x'"),
    ("", 2, "''"),
    ("0,,1", 2, "'0,,1'"),
])
def test_bad_devices_name_the_value_and_what_is_allowed(text, visible, named):
    with pytest.raises(OptionError, match="expected|--jobs") as caught:
        devices.parse_devices(text, visible)
    assert named in str(caught.value)


@pytest.mark.parametrize("worker, visible, expected", [
    ("gw0", 4, 0), ("gw3", 4, 3), ("gw5", 4, 1), ("gw1", 1, 0),
    ("gw2", 0, None),  # a CPU machine: no device, one torch thread
    (None, 4, None), ("master", 4, None),  # not an xdist worker
])
def test_an_xdist_worker_gets_its_index_modulo_the_visible_devices(worker, visible, expected):
    assert devices.worker_device(devices.xdist_worker_index(worker), visible) == expected


@pytest.mark.parametrize("extra, named", [
    (["--devices", "0"], "none is visible"),
    (["--devices", "all"], "none is visible"),
    (["--devices", "0", "--jobs", "2"], "exclusive"),
    (["--devices", "0", "--device", "cpu"], "--device cpu"),
    (["--devices", "0", "--executor", "submitit-local"], "--slurm-gpus-per-task"),
])
def test_devices_without_cuda_or_with_jobs_are_refused_in_one_paragraph(tmp_path, capsys, extra,
                                                                        named):
    argv = ["run", "digits-conv2", "--method", "dense", "--results", str(tmp_path / "r")]
    assert cli.main(argv + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("subnetbench: error: ") and "\n" not in err and named in err
    assert not (tmp_path / "r").exists()


def test_the_device_pool_binds_one_device_to_each_worker_and_changes_no_result(tmp_path):
    configs = [make_config("digits-conv2", "dense", seed, {"epochs": "1"}) for seed in (0, 1, 2)]
    settings = RunSettings(device="unused", save_subnetwork=False)
    received = []
    done = list(pool.pooled([[c] for c in configs], str(tmp_path / "pool"), settings, [7, 9],
                               threads=1, mode="auto", device_type="cpu", display=received.append))
    # The workers' progress events reach the parent's display, every run's epochs among them.
    assert {e["run_id"] for e in received if e["kind"] == "epoch"} == {c.run_id for c in configs}
    assert sorted(unit[0].run_id for unit, _ in done) == sorted(c.run_id for c in configs)
    slot_of_worker = {}
    for _, unit_done in done:
        assert slot_of_worker.setdefault(unit_done.pid, unit_done.slot) == unit_done.slot
    assert len(set(slot_of_worker.values())) == len(slot_of_worker)
    assert set(slot_of_worker.values()) <= {7, 9}
    for (unit, unit_done) in done:
        inline = execute(unit[0], tmp_path / "inline", device="cpu", progress=False)
        assert unit_done.results[0]["metrics"] == inline["metrics"]


def _newer_format(results_dir, config) -> None:
    """A result file of a newer format version: the run raises NewerFormatError at once."""
    path = ResultsLayout(results_dir).run_file(config.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": "subnetbench.result", "format_version": 99}))


def test_a_unit_that_fails_is_reported_at_once_and_the_others_go_on(tmp_path):
    """Two units on two CPU slots: one fails at once, the other waits for its lock, which another
    process holds until the failure has been reported; then it trains."""
    failing, waiting = (make_config("digits-conv2", "dense", seed, {"epochs": "1"}) for seed in (0, 1))
    _newer_format(tmp_path, failing)
    holder = hold_lock(tmp_path, waiting.run_id, 300)
    settings = RunSettings(device="unused", save_subnetwork=False, wait_for_locks=True)
    runs = pool.outcomes([[failing], [waiting]], str(tmp_path), settings, [0, 1], threads=1,
                         mode="auto", device_type="cpu")
    try:
        outcome = next(runs)  # while the other unit cannot have finished
        assert outcome.run_id == failing.run_id and outcome.status == "failed"
        assert outcome.result["error"].startswith("NewerFormatError: ")
        assert isinstance(outcome.error, NewerFormatError)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    (outcome,) = list(runs)
    assert outcome.run_id == waiting.run_id and outcome.status == "completed"


def test_jobs_print_a_failed_run_and_the_others_and_exit_with_its_code(tmp_path, capsys):
    """A fault only the run meets once it starts (a directory where its checkpoint goes; a newer-format
    result file would stop the command before any run starts): the other run still trains."""
    failing = make_config("digits-conv2", "dense", 0, {"epochs": "1"})
    ResultsLayout(tmp_path).checkpoint(failing.run_id).mkdir(parents=True)
    code = cli.main(["run", "digits-conv2", "--method", "dense", "--seeds", "0,1", "--set", "epochs=1",
                     "--device", "cpu", "--no-progress", "--results", str(tmp_path), "--jobs", "2"])
    captured = capsys.readouterr()
    assert code == 2  # FileFault's
    lines = [line for line in captured.out.splitlines() if line.startswith("[")]
    assert len(lines) == 2
    assert any("seed 0: failed: FileFault: " in line and failing.config_hash in line for line in lines)
    assert any("seed 1: done, extracted test acc" in line for line in lines)
    err = captured.err.strip()
    assert err.startswith("subnetbench: error: 1 of 2 runs failed") and "\n" not in err
