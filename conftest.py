"""Root pytest configuration: the --runslow switch of the benchmark suite."""
import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="run the full protocols (CIFAR needs CUDA and the data)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="full protocol: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
