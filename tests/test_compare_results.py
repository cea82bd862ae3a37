"""docs/compare_results.py: the check that a rerun of the committed grid is the same to the last bit."""
from __future__ import annotations

import importlib.util
import json
import math
import shutil

from tests.helpers import REPO

spec = importlib.util.spec_from_file_location("compare_results", REPO / "docs" / "compare_results.py")
compare_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_results)
COMMITTED = REPO / "docs" / "results" / "digits"


def test_a_copy_is_identical_whatever_its_timings(tmp_path):
    shutil.copytree(COMMITTED, tmp_path / "copy")
    path = next((tmp_path / "copy" / "runs").glob("*.json"))
    data = json.loads(path.read_text())
    data["timings"]["total_s"] += 1.0  # timings differ from run to run by nature
    path.write_text(json.dumps(data))
    assert compare_results.differences(COMMITTED, tmp_path / "copy") == []
    assert compare_results.main([str(COMMITTED), str(tmp_path / "copy")]) == 0


def test_one_changed_bit_of_a_curve_and_a_missing_run_are_named(tmp_path):
    shutil.copytree(COMMITTED, tmp_path / "copy")
    first, second = sorted((tmp_path / "copy" / "runs").glob("*.json"))[:2]
    data = json.loads(first.read_text())
    data["curves"]["val_acc"][0] = math.nextafter(data["curves"]["val_acc"][0], 2.0)  # one bit
    first.write_text(json.dumps(data))
    second.unlink()
    found = compare_results.differences(COMMITTED, tmp_path / "copy")
    assert found == [f"{first.name}: curves differs", f"{second.name}: missing from {tmp_path / 'copy'}/runs"]
    assert compare_results.main([str(COMMITTED), str(tmp_path / "copy")]) == 1
