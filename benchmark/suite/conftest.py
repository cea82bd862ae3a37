"""The benchmark suite's fixtures, and the report written at the end of ``--runslow``."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def results_dir(request) -> Path:
    return Path(request.config.getoption("--results-dir"))


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if not config.getoption("--runslow"):
        return
    results = Path(config.getoption("--results-dir"))
    if not (results / "runs").is_dir():
        return
    from subnetbench import reports

    html = reports.build_report(results, Path(config.getoption("--report-dir")))
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"subnetbench report: {html}")
