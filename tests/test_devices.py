"""Several GPUs of one machine (``run --devices``) and the benchmark suite's xdist workers: which
process trains on which device. The assignment is pure functions; the pool of device workers runs
here on the CPU (``device_type="cpu"``), where no GPU is needed to check it."""
from __future__ import annotations

import pytest

from subnetbench import cli, devices
from subnetbench.benchmark.runner import execute, make_config
from subnetbench.methods.base import OptionError
from tests.helpers import single_torch_thread  # noqa: F401


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
    options = dict(device="unused", progress=False, save_subnetwork=False)
    received = []
    done = list(devices.pooled([[c] for c in configs], str(tmp_path / "pool"), options, [7, 9],
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
