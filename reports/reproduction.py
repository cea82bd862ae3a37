"""The reproduction at a glance: every published value, its status here, and the command that
would run it where it was not run.

Status of a published value: ``reproduced`` / ``not reproduced`` / ``inconclusive`` (the verdict of
the configurations that reproduce it, on the value's own metric), ``not run here`` (no configuration
of this results directory reproduces it; configurations of its variant with other options are
listed beside it, without a verdict), or ``superseded`` (a secondary value whose configurations are
compared with a primary value instead).

The report shows the values grouped by dataset (:func:`by_dataset`), each group with the grid
command that runs all of it, and each source and note once, numbered, under the table
(:class:`Footnotes`): with nothing published run, 33 rows that each repeated a citation and a command
took several screens before the user's own results.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from subnetbench.benchmark import grids  # torch-free: the grids' names only
from subnetbench.describe import variant_label
from subnetbench.records import VARIANT_AXES
from subnetbench.reports.loading import Published, Reference
from subnetbench.reports.missing_values import DEFAULT_SEEDS, MissingValue, grid_run_command
from subnetbench.reports.stats import INCONCLUSIVE, NOT_REPRODUCED, OTHER_OPTIONS, REPRODUCED
from subnetbench.reports.tables import (
    CellEntry,
    Config,
    FamilyTable,
    dataset_sort_key,
    method_sort_key,
    natural_key,
)

NOT_RUN = "not run here"
SUPERSEDED = "superseded by a primary value"
# The metric of a published value in two words (the full wording is Metrics.ACCURACIES).
METRIC_SHORT = {"final_test_acc": "extracted", "test_acc": "sampled masks",
                "deterministic_test_acc": "deterministic mask"}


def results_folder(dataset: str) -> str:
    """Where the commands of a dataset's published values write: one folder per dataset, the one of
    its grid command, so that the values run one by one and the grid share their finished runs."""
    return f"results/{dataset}"


def grid_command(dataset: str) -> str | None:
    """The command that runs every published value of ``dataset`` (None: no grid of that name)."""
    if dataset not in grids.GRIDS:
        return None
    return grid_run_command(dataset, dataset)


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

    @property
    def variant_text(self) -> str:
        """The value's variant in the paper's words ('SC+DWR'), and the axes its source leaves
        unstated ('SC+SR, DA not stated')."""
        p = self.published
        label = variant_label({a: bool(p.variant.get(a)) for a in VARIANT_AXES}
                              | {"rescaling": p.variant.get("rescaling")})
        unstated = p.unstated_axes
        return label + (f", {'/'.join(unstated)} not stated" if unstated else "")

    @property
    def metric_short(self) -> str:
        return METRIC_SHORT.get(self.published.metric, self.published.metric)


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
                 results: str | None = None) -> list[ReproductionRow]:
    """One row per published value, in the reference file's order. The commands of the values not
    run write to ``results``, by default their dataset's :func:`results_folder`."""
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
            command = run_command(p, results or results_folder(p.dataset))
            rows.append(ReproductionRow(p, NOT_RUN, command=command, others=others))
    return rows


def ran(row: ReproductionRow) -> bool:
    """A configuration that reproduces the value was run (whatever the verdict)."""
    return row.status not in (NOT_RUN, SUPERSEDED)


@dataclass
class MissingRow:
    """A method's results that the reference file knows of but holds no number for, and the
    networks of them that ran here (shown without a verdict: there is nothing to compare with)."""

    missing: MissingValue
    run_here: list[str]


def missing_rows(reference: Reference, configs: list[Config]) -> list[MissingRow]:
    rows = []
    for missing in reference.missing:
        ran_networks = {c.network for c in configs
                        if (c.dataset, c.method) == (missing.dataset, missing.method)}
        rows.append(MissingRow(missing, [n for n in missing.networks if n in ran_networks]))
    return rows


@dataclass
class DatasetGroup:
    dataset: str
    rows: list[ReproductionRow]
    grid_command: str | None

    @property
    def run(self) -> int:
        return sum(ran(row) for row in self.rows)


def by_dataset(rows: list[ReproductionRow]) -> list[DatasetGroup]:
    """The rows grouped by dataset, each group in the order of the paper's tables (network, method,
    variant; a primary value before the secondary one of the same configuration)."""
    groups: dict[str, list[ReproductionRow]] = {}
    for row in rows:
        groups.setdefault(row.published.dataset, []).append(row)

    def order(row: ReproductionRow) -> tuple:
        p = row.published
        return (natural_key(p.network), method_sort_key(p.method),
                tuple(bool(p.variant.get(a)) for a in VARIANT_AXES), p.kind != "primary", p.id)

    return [DatasetGroup(d, sorted(groups[d], key=order), grid_command(d))
            for d in sorted(groups, key=dataset_sort_key)]


@dataclass
class Footnotes:
    """The sources and notes of the published values, each listed once under the table: a row
    refers to its source by number and to its note by letter."""

    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, rows: list[ReproductionRow]) -> Footnotes:
        out = cls()
        for row in rows:
            p = row.published
            if p.source not in out.sources:
                out.sources.append(p.source)
            if p.note and p.note not in out.notes:
                out.notes.append(p.note)
        return out

    def source_number(self, p: Published) -> int:
        return self.sources.index(p.source) + 1

    def note_letter(self, p: Published) -> str | None:
        return None if not p.note else _letter(self.notes.index(p.note))

    @staticmethod
    def note_letter_of(index: int) -> str:
        return _letter(index)


@dataclass
class ReproductionView:
    """What the report's reproduction section shows of the rows."""

    rows: list[ReproductionRow]
    groups: list[DatasetGroup]
    footnotes: Footnotes
    missing: list[MissingRow] = field(default_factory=list)

    @property
    def any_run(self) -> bool:
        return any(ran(row) for row in self.rows)

    @property
    def with_others(self) -> int:
        """Values not run here whose variant ran with other options."""
        return sum(bool(row.others) for row in self.rows if not ran(row))

    @property
    def unverified(self) -> int:
        return sum(not row.published.verified for row in self.rows)

    @property
    def counts(self) -> list[tuple[str, int]]:
        """(status, number of values), verdicts first, then the values not run."""
        order = [REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN, SUPERSEDED]
        found: dict[str, int] = {}
        for row in self.rows:
            found[row.status] = found.get(row.status, 0) + 1
        return sorted(found.items(), key=lambda item: (
            order.index(item[0]) if item[0] in order else len(order) - 2, item[0]))


def view(rows: list[ReproductionRow], missing: list[MissingRow] | None = None) -> ReproductionView:
    return ReproductionView(rows, by_dataset(rows), Footnotes.of(rows), missing or [])


def _letter(index: int) -> str:
    """a, b, ..., z, aa, ab, ...: the note markers."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters
