"""Published values that are known to exist, or known not to, but are not in the reference file.

The methods since the paper report Conv2/4/6 CIFAR results in figures, or not at all. The reference
file says so per method (``missing_values``: which networks, what the source reports, why no number
is entered), so the report can show the gap and the command that fills it with our own runs,
instead of staying silent about a method that has no row among the published values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from subnetbench.benchmark import grids  # torch-free: the grids' names only

DEFAULT_SEEDS = "0,1,2,3,4"
FIELDS = ("method", "dataset", "networks", "source", "reported", "reason")


def grid_run_command(grid: str, dataset: str) -> str:
    """The command that runs a named grid into its dataset's results folder, then the report."""
    return (f"subnetbench run --grid {grid} --seeds {DEFAULT_SEEDS} --results results/{dataset} "
            f"--report report/{dataset}")


class InvalidMissingValue(ValueError):
    """A ``missing_values`` entry of the reference file that cannot be used."""


@dataclass(frozen=True)
class MissingValue:
    """A method's published results on some networks of a dataset that have no entry, and why."""

    method: str
    dataset: str
    networks: tuple[str, ...]
    source: str
    reported: str  # what the source reports for these networks (a figure, other networks, ...)
    reason: str  # why no number is entered

    @property
    def grid(self) -> str | None:
        """The named grid that runs this method on this dataset (None: none does)."""
        name = f"{self.dataset}-beyond"
        return name if name in grids.GRIDS and self.method in grids.BEYOND else None

    def commands(self) -> list[str]:
        """How to fill the gap with our own runs: the grid, else one run per network."""
        if self.grid:
            return [grid_run_command(self.grid, self.dataset)]
        return [f"subnetbench run {self.dataset}-{network} --method {self.method} --seeds "
                f"{DEFAULT_SEEDS} --results results/{self.dataset}" for network in self.networks]


def parse(entry: Any) -> MissingValue:
    """One ``missing_values`` entry; every field is a non-empty string, ``networks`` a list of them."""
    if not isinstance(entry, dict):
        raise InvalidMissingValue(f"a missing_values entry is {type(entry).__name__}, not an object")
    absent = [name for name in FIELDS if name not in entry]
    if absent:
        raise InvalidMissingValue(f"a missing_values entry lacks {', '.join(absent)}")
    networks = entry["networks"]
    if not (isinstance(networks, list) and networks
            and all(isinstance(n, str) and n for n in networks)):
        raise InvalidMissingValue(f"networks is {networks!r}; expected a non-empty list of names")
    for name in FIELDS:
        if name != "networks" and not (isinstance(entry[name], str) and entry[name].strip()):
            raise InvalidMissingValue(f"{name} is {entry[name]!r}; expected a non-empty string")
    return MissingValue(entry["method"], entry["dataset"], tuple(networks), entry["source"],
                        entry["reported"], entry["reason"])


def parse_all(entries: Any) -> tuple[list[MissingValue], list[str]]:
    """The usable entries, and a problem line for each one ignored (the report lists them)."""
    if entries is None:
        return [], []
    if not isinstance(entries, list):
        return [], [f"missing_values is {type(entries).__name__}, not a list: ignored"]
    found, problems = [], []
    for i, entry in enumerate(entries):
        try:
            found.append(parse(entry))
        except InvalidMissingValue as error:
            problems.append(f"missing_values entry {i} ignored: {error}")
    return found, problems
