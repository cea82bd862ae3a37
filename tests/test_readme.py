"""The README's numbers are those of the committed result files (docs/results/digits), as
docs/update_readme.py renders them, with the software stack they came from."""
from __future__ import annotations

import importlib.util
import re

import pytest

from tests.helpers import REPO

spec = importlib.util.spec_from_file_location("update_readme", REPO / "docs" / "update_readme.py")
update_readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(update_readme)


@pytest.mark.parametrize("name", sorted(update_readme.BLOCKS))
def test_the_readme_shows_the_committed_results_as_the_script_renders_them(name):
    text = (REPO / "README.md").read_text()
    assert update_readme.block_of(text, name) == update_readme.BLOCKS[name]()


def test_the_committed_results_are_the_readme_grid_and_name_their_stack():
    block = update_readme.render()
    runs = sorted((REPO / "docs" / "results" / "digits" / "runs").glob("*.json"))
    assert len(runs) == 36  # 12 configurations of --grid digits, 3 seeds
    assert "torch 2." in block and "Python 3." in block
    assert block.count("| `") == 6


def where_things_are() -> list[str]:
    """The paths named in the README's "Where things are" table (a name alone, such as
    ``status.py``, is in the folder of the path before it in the same cell, or at the root)."""
    text = (REPO / "README.md").read_text()
    table = text.split("## Where things are", 1)[1].split("\n## ", 1)[0]
    paths = []
    for line in table.splitlines():
        if not line.startswith("| ") or line in ("| what | where |", "| --- | --- |"):
            continue
        cell = line.rsplit("|", 2)[-2]
        folder = ""
        for name in re.findall(r"`([^`]+)`", cell):
            if name.startswith("subnetbench.") or " " in name:
                continue  # an import name or a command, not a path
            if "/" in name:
                folder = name if name.endswith("/") else name.rpartition("/")[0] + "/"
                paths.append(name)
            elif "." in name:
                paths.append(folder + name if (REPO / (folder + name)).exists() or not (REPO / name).exists()
                             else name)
    return paths


def test_every_path_of_the_where_things_are_table_exists():
    paths = where_things_are()
    assert len(paths) > 40
    assert {".ci/run", "tox.ini", "benchmark/timing.py"} <= set(paths)
    assert [p for p in paths if not list(REPO.glob(p.rstrip("/")))] == []
