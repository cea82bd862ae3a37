"""Root pytest configuration: the options of the benchmark suite (``pytest benchmark/ --runslow``)."""
import pytest
import torch


def pytest_configure(config):
    # One torch thread, as the CLI's CPU runs: for these small networks it is the fastest setting on
    # two cores, and two threads slow down catastrophically when another process is busy.
    torch.set_num_threads(1)


def pytest_addoption(parser):
    group = parser.getgroup("subnetbench")
    group.addoption("--runslow", action="store_true", default=False,
                    help="run the full protocols (CIFAR cases need CUDA and the data)")
    group.addoption("--seeds", default="0,1,2", help="seeds of the full protocols (default 0,1,2)")
    group.addoption("--results-dir", default="results/benchmark",
                    help="where the full protocols keep their results (finished runs are reused)")
    group.addoption("--report-dir", default="report/benchmark",
                    help="where the report of the full protocols is written at the end")
    group.addoption("--device", default="auto", help="device of the full protocols: cpu, cuda, auto")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="full protocol: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
