"""The reproduction at a glance: every published value, its status here, and the command that
would run it where it was not run.

Status of a published value: ``reproduced`` / ``not reproduced`` / ``inconclusive`` (the verdict of
the configurations that reproduce it, on the value's own metric), ``not run here`` (no configuration
of this results directory reproduces it; configurations of its variant with other options are
listed beside it, without a verdict), or ``superseded`` (a secondary value whose configurations are
compared with a primary value instead).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from subnetbench.reports.loading import Published, Reference
from subnetbench.reports.stats import OTHER_OPTIONS
from subnetbench.reports.tables import CellEntry, Config, FamilyTable

NOT_RUN = "not run here"
SUPERSEDED = "superseded by a primary value"
DEFAULT_SEEDS = "0,1,2,3,4"


@dataclass
class ReproductionRow:
    published: Published
    status: str
    entries: list[CellEntry] = field(default_factory=list)  # the configurations compared with it
    command: str | None = None  # how to run it, when it was not run here
    others: list[CellEntry] = field(default_factory=list)  # its variant with other options: no verdict

    @property
    def css(self) -> str:
        return self.status.replace(" ", "-")


def run_command(p: Published, results: str) -> str:
    """The ``subnetbench run`` command line of a published value's configuration (5 seeds)."""
    parts = ["subnetbench", "run", f"{p.dataset}-{p.network}", "--method", p.method,
             "--seeds", DEFAULT_SEEDS]
    if p.method == "edge_popup":
        parts += ["--recipe", "edge_popup"]  # the hidden-networks recipe: DA is in it
    elif p.variant.get("data_augmentation"):
        parts += ["--set", "augmentation=true"]
    if p.variant.get("signed_constant"):
        parts += ["--set", "init=signed_constant"]
    if p.variant.get("smart_rescale"):  # the built-in methods' rescalings are options of their names
        for name in (p.variant.get("rescaling") or "smart_rescale").split("+"):
            parts += ["--set", f"{p.method}.{name}=true"]
    return " ".join(parts + ["--results", results])


def reproduction(reference: Reference, configs: list[Config], tables: list[FamilyTable],
                 results: str = "results/paper") -> list[ReproductionRow]:
    """One row per published value, in the reference file's order."""
    entries = {id(e.config): e for t in tables for e in t.entries}
    rows = []
    for p in reference.values:
        matching = [c for c in configs if p.matches(c.dataset, c.network, c.method, c.variant)]
        judged = [entries[id(c)] for c in matching
                  if reference.best(c.dataset, c.network, c.method, c.variant) is p and id(c) in entries]
        compared = [e for e in judged if e.published.verdict.label != OTHER_OPTIONS]
        others = [e for e in judged if e.published.verdict.label == OTHER_OPTIONS]
        if compared:
            statuses = {e.published.verdict.label for e in compared}
            status = statuses.pop() if len(statuses) == 1 else "mixed: " + ", ".join(sorted(statuses))
            rows.append(ReproductionRow(p, status, compared, others=others))
        elif matching and not others:
            rows.append(ReproductionRow(p, SUPERSEDED))
        else:
            rows.append(ReproductionRow(p, NOT_RUN, command=run_command(p, results), others=others))
    return rows
