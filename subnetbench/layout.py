"""Where a results directory keeps each kind of file: the one place that names its folders.

    RESULTS/runs/<run_id>.json          result files (docs/results-format.md)
    RESULTS/checkpoints/<run_id>.pt     checkpoints of unfinished runs
    RESULTS/subnetworks/<run_id>.pt     extracted subnetworks
    RESULTS/locks/<run_id>.lock         one lock per run (subnetbench.locks)
    RESULTS/plans/<digest>.json         the planned runs of each command (subnetbench.plans)
    RESULTS/submitit/                   job logs of --executor slurm / submitit-local

Nothing here touches the disk.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOCK_SUFFIX = ".lock"


@dataclass(frozen=True)
class ResultsLayout:
    """The paths of one results directory, ``root``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def subnetworks(self) -> Path:
        return self.root / "subnetworks"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def plans(self) -> Path:
        return self.root / "plans"

    @property
    def submitit(self) -> Path:
        return self.root / "submitit"

    def run_file(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.json"

    def checkpoint(self, run_id: str) -> Path:
        return self.checkpoints / f"{run_id}.pt"

    def subnetwork(self, run_id: str) -> Path:
        return self.subnetworks / f"{run_id}.pt"

    def lock(self, run_id: str) -> Path:
        return self.locks / f"{run_id}{LOCK_SUFFIX}"

    def plan(self, digest: str) -> Path:
        return self.plans / f"{digest}.json"

    def run_folders(self, subnetworks: bool) -> tuple[Path, ...]:
        """The folders a run writes into (subnetworks/ only when it saves its subnetwork)."""
        return (self.runs, self.checkpoints, self.locks) + ((self.subnetworks,) if subnetworks else ())

    def folders_with_temporaries(self) -> tuple[Path, ...]:
        """The folders whose files are written atomically, through temporary files that a killed
        writer leaves behind."""
        return (self.runs, self.plans, self.checkpoints, self.subnetworks)
