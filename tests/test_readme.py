"""The README's numbers are those of the committed result files (docs/results/digits), as
docs/update_readme.py renders them, with the software stack they came from."""
from __future__ import annotations

import importlib.util

from tests.helpers import REPO

spec = importlib.util.spec_from_file_location("update_readme", REPO / "docs" / "update_readme.py")
update_readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(update_readme)


def test_the_readme_shows_the_committed_results_as_the_script_renders_them():
    text = (REPO / "README.md").read_text()
    block = text.split(update_readme.BEGIN, 1)[1].split(update_readme.END, 1)[0].strip()
    assert block == update_readme.render()


def test_the_committed_results_are_the_readme_grid_and_name_their_stack():
    block = update_readme.render()
    runs = sorted((REPO / "docs" / "results" / "digits" / "runs").glob("*.json"))
    assert len(runs) == 36  # 12 configurations of --grid digits, 3 seeds
    assert "torch 2." in block and "Python 3." in block
    assert block.count("| `") == 6
