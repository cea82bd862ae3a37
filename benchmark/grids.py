"""Named grids: the sets of runs behind the paper's tables, sized for a device.

A grid is a list of cells; each cell is (protocols, methods, option overrides, recipe preset).
``subnetbench run --grid NAME`` runs every cell for every seed given.

The grids name the paper's methods explicitly (no registry lookup): installing a plugin never
changes what a grid runs, so results and the README's numbers stay comparable.

On CIFAR, edge-popup runs the hidden-networks recipe (the ``edge_popup`` preset: SGD 0.1, cosine,
100 epochs, batch 128, data augmentation, no biases, SC on every layer), the likelier source of the
paper's edge-popup values (docs/released-code.md); the other methods run the ASLP code's recipe. On
digits, edge-popup keeps the CPU-sized digits recipe of the other methods (no augmentation of 8x8
digits, 30 epochs).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from subnetbench.errors import OptionError

MASK_ONLY = ("aslp", "supermask", "edge_popup")
ALL_METHODS = ("aslp", "dense", "edge_popup", "magnitude_pruning", "random_pruning", "supermask")


@dataclass(frozen=True)
class Cell:
    methods: tuple[str, ...]
    overrides: dict[str, str] = field(default_factory=dict)
    protocols: tuple[str, ...] = ()
    preset: str | None = None  # a key of benchmark.recipe.RECIPE_PRESETS


SC = {"init": "signed_constant"}
DA = {"augmentation": "true"}
SR = {"method.smart_rescale": "true"}
DWR = {"method.dynamic_weight_rescale": "true"}


def _rescaled(methods: tuple[str, ...], extra: dict[str, str]) -> list[Cell]:
    """The SR column: smart rescale for aslp and edge_popup, dynamic weight rescaling for supermask."""
    cells = [Cell(tuple(m for m in methods if m != "supermask"), {**extra, **SR})]
    if "supermask" in methods:
        cells.append(Cell(("supermask",), {**extra, **DWR}))
    return [cell for cell in cells if cell.methods]


def _digits_grid(networks: tuple[str, ...]) -> list[Cell]:
    """Every method with its defaults, and SR and SC of the mask-only methods, on the digits recipe."""
    protocols = tuple(f"digits-{n}" for n in networks)
    cells = [Cell(ALL_METHODS)] + _rescaled(MASK_ONLY, {}) + [Cell(MASK_ONLY, SC)]
    return [Cell(cell.methods, cell.overrides, protocols) for cell in cells]


def _paper_grid(dataset: str, networks: tuple[str, ...]) -> list[Cell]:
    """The paper's table (docs/published-values.md): every method with its defaults; aslp and
    supermask with SR, SC and SR+SC without DA, aslp with SC and SR+SC with DA; edge-popup with the
    hidden-networks recipe (which has DA) plain, with SR, SC and SR+SC."""
    protocols = tuple(f"{dataset}-{n}" for n in networks)
    aslp_recipe = tuple(m for m in ALL_METHODS if m != "edge_popup")
    stochastic = ("aslp", "supermask")
    cells = [Cell(aslp_recipe)] + _rescaled(stochastic, {}) + [Cell(stochastic, SC)]
    cells += _rescaled(stochastic, SC)
    cells += [Cell(("aslp",), {**DA, **SC}), Cell(("aslp",), {**DA, **SC, **SR})]
    cells += [Cell(("edge_popup",), overrides, preset="edge_popup")
              for overrides in ({}, SR, SC, {**SC, **SR})]
    return [Cell(cell.methods, cell.overrides, protocols, cell.preset) for cell in cells]


# The strong-lottery-ticket methods since the paper (issue 25), in grids of their own so that the
# paper's grids, their configurations and the committed results stay as they are.
BEYOND = ("probmask", "iterand", "biprop")
# ProbMask's released CIFAR recipe: Adam on the probabilities (its method defaults), 300 epochs with
# a cosine schedule, batch 256, augmentation; no early stopping, as its schedules span the budget.
PROBMASK_CIFAR = {"epochs": "300", "patience": "0", "schedule": "cosine", "augmentation": "true"}


def _beyond_grid(dataset: str, networks: tuple[str, ...]) -> list[Cell]:
    """The three methods with their defaults, plain and with SC. On CIFAR, IteRand and biprop run
    the hidden-networks recipe their released codes share (the ``edge_popup`` preset), ProbMask its
    own; on digits all three keep the digits recipe."""
    protocols = tuple(f"{dataset}-{n}" for n in networks)
    if dataset == "digits":
        cells = [Cell(BEYOND), Cell(BEYOND, SC)]
    else:
        cells = [Cell(("iterand", "biprop"), overrides, preset="edge_popup") for overrides in ({}, SC)]
        cells += [Cell(("probmask",), {**PROBMASK_CIFAR, **overrides}) for overrides in ({}, SC)]
    return [Cell(cell.methods, cell.overrides, protocols, cell.preset) for cell in cells]


GRIDS: dict[str, list[Cell]] = {
    # The offline default: the paper's grid on the 8x8 digits with Conv2, on a CPU in minutes.
    "digits": _digits_grid(("conv2",)),
    # The same with Conv2, Conv4 and Conv6 (what pytest benchmark/ --runslow runs on digits).
    "digits-full": _digits_grid(("conv2", "conv4", "conv6")),
    "cifar10": _paper_grid("cifar10", ("conv2", "conv4", "conv6")),
    "cifar100": _paper_grid("cifar100", ("conv2", "conv4", "conv6")),
    "digits-beyond": _beyond_grid("digits", ("conv2",)),
    "cifar10-beyond": _beyond_grid("cifar10", ("conv2", "conv4", "conv6")),
}


def get(name: str) -> list[Cell]:
    if name not in GRIDS:
        raise OptionError(f"unknown grid {name!r}; expected one of {sorted(GRIDS)}")
    return GRIDS[name]


def expand(name: str) -> list[tuple[str, str, dict[str, str], str | None]]:
    """(protocol, method, overrides, recipe preset) of every configuration of grid ``name``."""
    return [(protocol, method, dict(cell.overrides), cell.preset)
            for cell in get(name) for protocol in cell.protocols for method in cell.methods]
