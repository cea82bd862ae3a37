"""Root pytest configuration: the options of the benchmark suite (``pytest benchmark/ --runslow``)
and its report, written at the end of ``--runslow``.

The report is written here, in the root conftest, because with pytest-xdist (``-n N``) only the
workers collect the suite (benchmark/suite/conftest.py is never loaded by the controller), while
only the controller knows when every worker has finished: it writes the report once, from the
results directory all of them share, if a test of the suite ran (or was skipped) in the session.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from subnetbench.benchmark.suite_plan import DATASETS, outline, results_dir_for

SUITE = "benchmark/suite/"


def pytest_configure(config):
    # One torch thread, as the CLI's CPU runs: for these small networks it is the fastest setting on
    # two cores, and two threads slow down catastrophically when another process is busy. Each
    # xdist worker runs this too.
    torch.set_num_threads(1)
    if not hasattr(config, "workerinput"):  # a worker never writes the report
        config.pluginmanager.register(SuiteReport(config), "subnetbench-suite-report")


def pytest_addoption(parser):
    group = parser.getgroup("subnetbench")
    group.addoption("--runslow", action="store_true", default=False,
                    help="run the full protocols (CIFAR cases need CUDA and the data)")
    group.addoption("--seeds", default="0,1,2", help="seeds of the full protocols (default 0,1,2)")
    group.addoption("--results-dir", default=None,
                    help="where the full protocols keep their results (finished runs are reused; "
                    "default results/<dataset>, shared with subnetbench run --results results/<dataset>)")
    group.addoption("--report-dir", default="report/benchmark",
                    help="where the report of the full protocols is written at the end (one "
                    "report/benchmark/<dataset> for each data set without --results-dir)")
    group.addoption("--device", default="auto", help="device of the full protocols: cpu, cuda, auto "
                    "(with xdist: each worker's own GPU)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="full protocol: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


class SuiteReport:
    """The report of the results directory, written once at the end of a ``--runslow`` session
    that reached the suite (on the controller: xdist hands it every worker's test reports)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.reached = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid.startswith(SUITE):
            self.reached = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = self.config
        if not config.getoption("--runslow") or not self.reached:
            return
        from subnetbench import reports

        option, report_dir = config.getoption("--results-dir"), Path(config.getoption("--report-dir"))
        folders = {Path(option): report_dir} if option else {
            results_dir_for(None, dataset): report_dir / dataset for dataset in DATASETS}
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        for results, out in folders.items():
            if (results / "runs").is_dir():
                html = reports.build_report(results, out)
                if reporter is not None:
                    reporter.write_line(f"subnetbench report: {html}")


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """With --runslow, what the session will train, reuse and skip, and how long it should take."""
    if not config.getoption("--runslow"):
        return None
    seeds = [int(s) for s in config.getoption("--seeds").split(",") if s.strip()]
    return ["subnetbench --runslow, seeds " + ",".join(map(str, seeds)) + ":",
            *("  " + line for line in outline(config.getoption("--results-dir"), seeds,
                                               config.getoption("--device")))]
