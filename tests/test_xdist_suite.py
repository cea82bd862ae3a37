"""The benchmark suite on pytest-xdist workers (``pytest benchmark/ -n 2``), as a research group
spreads it over GPUs: the smoke cases and a configuration whose per-run and per-configuration
tests share runs, then the report written once by the controller from every worker's results."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from subnetbench import status
from subnetbench.layout import ResultsLayout
from tests.helpers import REPO


def test_the_suite_runs_on_two_xdist_workers_and_reports_once(tmp_path):
    results, report = tmp_path / "results", tmp_path / "report"
    command = [sys.executable, "-m", "pytest", "benchmark/", "-n", "2", "-p", "no:cacheprovider",
               "--runslow", "-k", "smoke or digits-conv2-dense", "--seeds", "0,1",
               "--results-dir", str(results), "--report-dir", str(report)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 workers" in done.stdout and not re.search(r"\d+ (failed|error)", done.stdout)
    assert int(re.search(r"(\d+) passed", done.stdout).group(1)) >= 9  # 6+ smoke, 2 runs, 1 mean
    assert done.stdout.count("subnetbench report: ") == 1 and (report / "report.html").is_file()
    found = status.collect(results)
    assert found["counts"]["completed"] == 2 and len(found["runs"]) == 2
    for run in found["runs"]:  # trained under their locks, by a worker
        holder = json.loads(ResultsLayout(results).lock(run["run_id"]).read_text())
        assert holder["xdist_worker"] in ("gw0", "gw1")
