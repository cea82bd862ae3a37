"""Every shell command of the README and the documentation site runs, or says why it cannot here.

A ``bash`` block is preceded by at most one marker:

- ``<!-- needs: gpu | cifar | cluster | internet | long ... -->``: not run here, and the reason is
  shown on the page (long: minutes to hours on a CPU, too long for CI);
- ``<!-- run-by: FILE[, FILE] -->``: each command of the block is run verbatim by one of the named
  files (``.ci/run`` or a test), which this test checks by reading them;
- no marker: this test runs each command of the block, and it must exit 0.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

NEEDS = ("gpu", "cifar", "cluster", "internet", "long")  # the first word of a needs marker
MARKER = re.compile(r"<!--\s*(needs|run-by):\s*(.+?)\s*-->")
BLOCK = re.compile(r"(?:^(?P<marker><!--[^\n]*-->)\n)?^```(?:bash|sh|console)\n(?P<body>.*?)^```",
                   re.M | re.S)
# The README's first command, run here on a copy of the committed results (every run is reused, so
# the command plans, checks and writes its report without training for half an hour).
FIRST_COMMAND = "subnetbench run --grid digits --seeds 0,1,2 --jobs 2 --results results/digits --report report/digits"  # noqa: E501


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def commands(body: str) -> list[str]:
    """The commands of a block: continuation lines joined, comments and blank lines dropped, each
    ``&&`` part a command of its own, the ``.venv/bin/`` prefix removed."""
    joined = re.sub(r"\\\n\s*", " ", body)
    found = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        found += [part.strip().removeprefix(".venv/bin/") for part in line.split("&&")]
    return found


def blocks() -> list[tuple[str, str | None, str, list[str]]]:
    """(page, marker kind, marker value, commands) of every shell block of every page."""
    found = []
    for page in pages():
        for match in BLOCK.finditer(page.read_text()):
            marker = MARKER.fullmatch(match["marker"]) if match["marker"] else None
            found.append((page.name, marker and marker[1], marker[2] if marker else "",
                          commands(match["body"])))
    return found


def normalised(text: str) -> str:
    return " ".join(text.replace(".venv/bin/", "").split())


def test_every_block_is_run_or_says_why_not():
    assert len(blocks()) >= 10
    for page, kind, value, found in blocks():
        assert found, f"{page}: an empty shell block"
        if kind == "needs":
            assert value.split()[0] in NEEDS, f"{page}: needs {value!r}; allowed: {NEEDS}"
        elif kind == "run-by":
            sources = [normalised((REPO / name.strip()).read_text()) for name in value.split(",")]
            for command in found:
                assert any(normalised(command) in source for source in sources), (
                    f"{page}: {command!r} is not run by {value}")


def unmarked() -> list:
    return [pytest.param(found, id=f"{page}: {found[0]}"[:80])
            for page, kind, _, found in blocks() if kind is None]


@pytest.mark.parametrize("block", unmarked())
def test_an_unmarked_block_runs(block, tmp_path):
    """The commands of a block, in order, in one empty folder (``pytest`` in the repository)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for command in block:
        argv = shlex.split(command)
        cwd = tmp_path
        if argv[0] == "pytest":
            argv, cwd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *argv[1:]], REPO
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_the_readme_first_command_runs_on_the_committed_results(tmp_path):
    assert FIRST_COMMAND in normalised((REPO / "README.md").read_text())
    shutil.copytree(REPO / "docs" / "results" / "digits", tmp_path / "results" / "digits")
    done = subprocess.run([Path(sys.executable).parent / "subnetbench", *shlex.split(FIRST_COMMAND)[1:],
                           "--no-progress"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "report" / "digits" / "report.html").is_file()
    trained = list((tmp_path / "results" / "digits").glob("*/*.pt"))
    assert trained == []  # every run was reused: no checkpoint, no new subnetwork
