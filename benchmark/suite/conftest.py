"""The benchmark suite's fixtures and its pytest-xdist workers' devices (the report written at the
end of ``--runslow`` is the root conftest's: with xdist the controller does not collect, so this
file is only ever loaded by the workers).

With pytest-xdist (``pytest benchmark/ --runslow -n N``) each worker is bound to a device when it
starts: on a machine with CUDA, worker ``gwI`` to device I modulo the visible devices (those of
``CUDA_VISIBLE_DEVICES`` when it is set), and its runs name that device unless ``--device`` names
another; on a CPU each worker trains with one torch thread (the root conftest). Runs train under
their locks (``subnetbench.locks``): a test that reaches a run another worker is training waits for
it and reuses its result, so the per-run and the per-configuration tests never train one run twice.
The report is written once, by the controller, after every worker has finished, from the results
directory they share.
"""
from __future__ import annotations

import pytest

from subnetbench.benchmark import protocols
from subnetbench.benchmark.suite_plan import results_dir_for
from subnetbench.devices import worker_device, xdist_worker_index


def _bind_worker(worker_id: str | None) -> str | None:
    """Bind this xdist worker to its CUDA device; the device's name, or None (no worker, no CUDA)."""
    index = xdist_worker_index(worker_id)
    if index is None:
        return None
    import torch

    device = worker_device(index, torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if device is None:
        return None
    torch.cuda.set_device(device)
    return f"cuda:{device}"


def pytest_configure(config):
    worker_input = getattr(config, "workerinput", None)
    config.subnetbench_worker_device = _bind_worker(worker_input["workerid"] if worker_input else None)


@pytest.fixture(scope="session")
def results_dir_of(request):
    """The results folder of a protocol's runs: ``--results-dir``, else ``results/<dataset>``."""
    option = request.config.getoption("--results-dir")
    return lambda protocol: results_dir_for(option, protocols.get(protocol).dataset)


@pytest.fixture(scope="session")
def run_device(request) -> str:
    """The device of the full protocols' runs: ``--device``, or this worker's own device when that is
    ``auto`` and the worker is bound to one."""
    chosen = request.config.getoption("--device")
    bound = getattr(request.config, "subnetbench_worker_device", None)
    return bound if chosen == "auto" and bound else chosen
