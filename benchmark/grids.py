"""Named grids: the sets of runs behind the paper's tables, sized for a device.

A grid is a list of cells; each cell is (protocols, methods, option overrides). ``subnetbench run
--grid NAME`` runs every cell for every seed given.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from subnetbench.methods.base import OptionError

MASK_ONLY = ("aslp", "supermask", "edge_popup")
ALL_METHODS = ("aslp", "dense", "edge_popup", "magnitude_pruning", "random_pruning", "supermask")


@dataclass(frozen=True)
class Cell:
    methods: tuple[str, ...]
    overrides: dict[str, str] = field(default_factory=dict)
    protocols: tuple[str, ...] = ()


SC = {"init": "signed_constant"}
DA = {"augmentation": "true"}


def _rescaled(methods: tuple[str, ...], extra: dict[str, str]) -> list[Cell]:
    """The SR column: smart rescale for aslp and edge_popup, dynamic weight rescaling for supermask."""
    cells = [Cell(tuple(m for m in methods if m != "supermask"), {**extra, "method.smart_rescale": "true"})]
    if "supermask" in methods:
        cells.append(Cell(("supermask",), {**extra, "method.dynamic_weight_rescale": "true"}))
    return cells


def _paper_grid(dataset: str, networks: tuple[str, ...], full: bool) -> list[Cell]:
    """Every method with its defaults, and the paper's variants of the mask-only methods: SR and SC
    (and, when ``full``, SR+SC without DA, then SC and SR+SC with DA for aslp and edge_popup, as in
    PAPER.md section 4)."""
    protocols = tuple(f"{dataset}-{n}" for n in networks)
    cells = [Cell(ALL_METHODS)] + _rescaled(MASK_ONLY, {}) + [Cell(MASK_ONLY, SC)]
    if full:
        cells += _rescaled(MASK_ONLY, SC)
        cells += [Cell(("aslp", "edge_popup"), {**DA, **SC})]
        cells += _rescaled(("aslp", "edge_popup"), {**DA, **SC})
    return [Cell(cell.methods, cell.overrides, protocols) for cell in cells]


GRIDS: dict[str, list[Cell]] = {
    # The offline default: the paper's grid on the 8x8 digits with Conv2, on a CPU in minutes.
    "digits": _paper_grid("digits", ("conv2",), full=False),
    # The same with Conv2, Conv4 and Conv6 (what pytest benchmark/ --runslow runs on digits).
    "digits-full": _paper_grid("digits", ("conv2", "conv4", "conv6"), full=False),
    "cifar10": _paper_grid("cifar10", ("conv2", "conv4", "conv6"), full=True),
    "cifar100": _paper_grid("cifar100", ("conv2", "conv4", "conv6"), full=True),
}


def get(name: str) -> list[Cell]:
    if name not in GRIDS:
        raise OptionError(f"unknown grid {name!r}; expected one of {sorted(GRIDS)}")
    return GRIDS[name]
