"""The grids of the methods since the paper (issue 25): their own, every configuration valid, and
the paper's grids and committed results untouched by them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from subnetbench.benchmark import grids
from subnetbench.benchmark.config import make_config

REPO = Path(__file__).resolve().parents[1]
PAPER_GRIDS = ("digits", "digits-full", "cifar10", "cifar100")


def _configs(name: str):
    return [make_config(protocol, method, 0, cell.overrides, list(cell.methods), cell.preset)
            for cell in grids.get(name) for protocol in cell.protocols for method in cell.methods]


@pytest.mark.parametrize("name, protocols", [
    ("digits-beyond", {"digits-conv2"}),
    ("cifar10-beyond", {"cifar10-conv2", "cifar10-conv4", "cifar10-conv6"}),
])
def test_each_beyond_grid_runs_the_three_methods_plain_and_with_sc(name, protocols):
    configs = _configs(name)
    assert {c.method for c in configs} == set(grids.BEYOND)
    assert {c.protocol for c in configs} == protocols
    for method in grids.BEYOND:
        inits = {c.recipe.init for c in configs if c.method == method}
        assert inits == {"kaiming_normal", "signed_constant"}
    assert len({c.run_id for c in configs}) == len(configs)


def test_probmask_on_cifar_trains_its_whole_schedule():
    """Its temperature and budget span the recipe's epochs: no early stop cuts them short."""
    for config in _configs("cifar10-beyond"):
        if config.method == "probmask":
            assert (config.recipe.epochs, config.recipe.patience) == (300, 0)
            assert config.recipe.schedule == "cosine" and config.recipe.augmentation


def test_the_paper_grids_name_none_of_the_new_methods():
    for name in PAPER_GRIDS:
        assert not {c.method for c in _configs(name)} & set(grids.BEYOND), name


def test_the_committed_digits_results_are_still_configurations_of_the_digits_grid():
    """The configuration hashes of docs/results/digits are those the digits grid makes today."""
    hashes = {c.config_hash for c in _configs("digits")}
    committed = {json.loads(path.read_text())["config_hash"]
                 for path in (REPO / "docs" / "results" / "digits" / "runs").glob("*.json")}
    assert committed and committed == hashes
