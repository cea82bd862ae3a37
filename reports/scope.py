"""What a verdict rests on, said beside it: protocols (dataset, networks), seeds and metric; and,
for verdicts on data the paper did not use, that its claims are about CIFAR and which command would
test them there."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PAPER_DATASETS = ("cifar10", "cifar100")  # the data sets of the paper's claims
PAPER_GRID = "cifar10"  # benchmark/grids.py: the paper's table on CIFAR-10
PAPER_SEEDS = "0,1,2,3,4"


@dataclass(frozen=True)
class Scope:
    protocols: tuple[str, ...]
    datasets: tuple[str, ...]
    networks: tuple[str, ...]
    seeds: tuple[int, ...]
    metric: str
    unit_of_seeds: str = "seeds"  # "seed" of a timing study's networks: repeats are its sample

    @property
    def text(self) -> str:
        """One line: 'digits conv2 (protocol digits-conv2) · seeds 0, 1, 2 (n=3) · metric: ...'."""
        if not self.protocols:
            return f"no runs compared · metric: {self.metric}"
        where = ", ".join(self.datasets) + " " + ", ".join(self.networks)
        plural = "s" if len(self.protocols) != 1 else ""
        seeds = ", ".join(map(str, self.seeds)) or "none"
        count = f" (n={len(self.seeds)})" if self.unit_of_seeds == "seeds" else ""
        return (f"{where} (protocol{plural} {', '.join(self.protocols)}) · {self.unit_of_seeds} "
                f"{seeds}{count} · metric: {self.metric}")

    @property
    def off_paper(self) -> list[str]:
        """The data sets of this scope that the paper's claims are not about."""
        return [d for d in self.datasets if d not in PAPER_DATASETS]


def scope_of(protocols: Iterable[str], seeds: Iterable[int], metric: str,
             unit_of_seeds: str = "seeds") -> Scope:
    """The scope of runs of these protocols (``dataset-network`` names) and seeds."""
    names = sorted(set(protocols))
    datasets = sorted({p.split("-", 1)[0] for p in names})
    networks = sorted({p.split("-", 1)[1] if "-" in p else p for p in names})
    return Scope(tuple(names), tuple(datasets), tuple(networks), tuple(sorted(set(seeds))), metric,
                 unit_of_seeds)


def paper_test(timing: bool = False) -> str:
    """What would test a claim on the paper's data: the commands, in one line."""
    results = f"results-{PAPER_GRID}"
    if timing:
        return (f"subnetbench timing {PAPER_GRID}-conv2 --results {results}, then "
                f"subnetbench report --results {results}")
    return (f"subnetbench run --grid {PAPER_GRID} --seeds {PAPER_SEEDS} --results {results}, then "
            f"subnetbench report --results {results}")


def off_paper_note(scope: Scope, timing: bool = False) -> str | None:
    """For a scope on data the paper did not use: that the claims are about CIFAR, and the command
    that would test them there; None on CIFAR."""
    others = scope.off_paper
    if not others:
        return None
    return (f"The paper's claims are about CIFAR-10 and CIFAR-100; this verdict rests on "
            f"{', '.join(others)} only and says nothing about CIFAR. To test it there: "
            f"{paper_test(timing)}.")
