"""The paper-style results tables: configurations, cells, comparison with published values.

A *configuration* is (protocol, method, config_hash): the runs of one configuration differ only by
seed. A table row is (dataset, network, DA, SC, SR); a column is a method; a cell holds one entry per
configuration of that method in that row (usually one; more when other options differ, and then
the entry shows which).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from subnetbench.describe import VARIANT_SHORT, chance_cause, variant_label
from subnetbench.reports.loading import VARIANT_AXES, Published, Reference, Run, flatten
from subnetbench.reports.stats import OTHER_OPTIONS, Summary, Verdict, reproduction_verdict, summarise

MASK_ONLY = "mask-only"
WEIGHT_TRAINING = "weight-training"
FAMILY_TITLES = {
    MASK_ONLY: "Mask-only methods (frozen random weights; a mask is learned)",
    WEIGHT_TRAINING: "Weight-training methods (the surviving weights are trained)",
}
# The strong-lottery-ticket methods published since the paper (issue 25) get a table of their own,
# after the paper's, so that the paper's tables hold the paper's methods only.
SINCE_PAPER = "since-paper"
SINCE_PAPER_METHODS = ("probmask", "iterand", "biprop")
SINCE_PAPER_TITLE = ("Strong-lottery-ticket methods since the paper (frozen random weights; a mask is "
                     "learned), beside the paper's methods above")
KNOWN_ORDER = ["aslp", "supermask", "edge_popup", "random_pruning", "magnitude_pruning", "dense"]
DATASET_ORDER = ["cifar10", "cifar100", "digits"]
# Options that only set a variant axis (DA, SC, SR; supermask's DWR): the row's flags show them.
VARIANT_OPTION_NAMES = {"augmentation", "data_augmentation", "init", "signed_constant",
                        "smart_rescale", "dynamic_weight_rescale"}


def natural_key(text: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", str(text)) if part]


def method_sort_key(method: str) -> tuple:
    return (KNOWN_ORDER.index(method) if method in KNOWN_ORDER else len(KNOWN_ORDER), method)


def family_sort_key(family: str) -> tuple:
    order = [MASK_ONLY, WEIGHT_TRAINING]
    return (order.index(family) if family in order else len(order), family)


def dataset_sort_key(dataset: str) -> tuple:
    return (DATASET_ORDER.index(dataset) if dataset in DATASET_ORDER else len(DATASET_ORDER),
            natural_key(dataset))


def row_id(dataset: str, network: str, variant: dict[str, bool]) -> str:
    """A stable machine-readable row identifier (used as data-row in the HTML)."""
    flags = "|".join(f"{VARIANT_SHORT[a]}={int(bool(variant[a]))}" for a in VARIANT_AXES)
    return f"{dataset}|{network}|{flags}"


def normalisation(options: dict[str, Any], augmentation: bool) -> str:
    """'yes'/'no': whether inputs are normalised, from an option ending in ``normalise``.

    ``None`` (the default) means "normalise iff data augmentation" (the official code).
    No such option: 'not recorded'.
    """
    for key, value in options.items():
        if key.split(".")[-1] in ("normalise", "normalize"):
            if value is None:
                return "yes" if augmentation else "no"
            if isinstance(value, bool):
                return "yes" if value else "no"
            return str(value)
    return "not recorded"


def protocol_notes(options: dict[str, Any], variant: dict[str, bool], dataset: str) -> list[tuple[str, str]]:
    """Which of the released code's behaviours and which alternative a configuration used, from its
    resolved options (dotted keys), as (short tag, sentence) pairs. An option absent from an older
    result file means the behaviour the suite had before the option existed."""
    notes: list[tuple[str, str]] = []

    def note(key: str, values: dict[Any, tuple[str, str]], absent: tuple[str, str]) -> None:
        notes.append(values.get(options[key], (f"{key}={options[key]}", f"{key} = {options[key]}"))
                     if key in options else absent)

    if dataset == "digits":
        notes.append(("digits recipe", "digits protocol: CPU-sized choices (batch 32, short budgets, "
                                       "normalised inputs; edge-popup keeps this recipe), "
                                       "docs/released-code.md"))
    if variant.get("signed_constant"):
        note("recipe.signed_constant_layers",
             {"conv": ("SC: conv only", "signed constants on the convolutions only, linear layers "
                                        "Kaiming normal (the released ASLP code)"),
              "all": ("SC: all layers", "signed constants on every layer (the paper's text; the "
                                        "hidden-networks code)")},
             ("SC: all layers", "signed constants on every layer (written before the option existed)"))
    if "method.eval_samples" in options:  # a method that samples its masks
        note("recipe.validation_masks",
             {"sampled": ("val: sampled", "validation on masks sampled at every forward pass (the "
                                          "released code)"),
              "deterministic": ("val: deterministic", "validation on the deterministic mask (option)")},
             ("val: deterministic", "validation on the deterministic mask (written before the option "
                                    "existed)"))
    if options.get("method.smart_rescale") is True:
        note("method.smart_rescale_update",
             {"alternating": ("SR: alternating", "smart rescale: a pass stepping the scores, then one "
                                                 "with a fresh sample stepping the scales (the released "
                                                 "code under Lightning 1.x)"),
              "joint": ("SR: joint", "smart rescale: one pass steps scores and scales (option)")},
             ("SR: joint", "smart rescale: one joint pass (written before the option existed)"))
    if options.get("method.dynamic_weight_rescale") is True:
        note("method.dwr_gradient",
             {"straight_through": ("DWR: differentiable", "DWR factor differentiated through the "
                                                          "straight-through sample (both official codes)"),
              "detached": ("DWR: detached", "DWR factor detached from the backward pass (option)")},
             ("DWR: detached", "DWR factor detached (written before the option existed)"))
    if options.get("method.selection") == "percentile":
        notes.append(("percentile rule", "edge-popup: the ASLP repository's percentile rule"))
    if options.get("method.score_ranking") == "raw":
        notes.append(("raw scores", "edge-popup ranks the signed scores (option)"))
    if "method.keep_fraction" in options and options.get("recipe.schedule") == "cosine" and \
            options.get("recipe.batch_size") == 128:
        notes.append(("hidden-networks recipe", "the hidden-networks recipe (SGD cosine, batch 128, "
                                                "DA, no biases)"))
    return notes


@dataclass
class Config:
    protocol: str
    method: str
    config_hash: str
    dataset: str
    network: str
    family: str
    variant: dict[str, bool]
    runs: list[Run] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.protocol, self.method, self.config_hash)

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.runs)

    @functools.cached_property
    def options(self) -> dict[str, Any]:
        """The first run's resolved options as dotted keys (read once the runs are grouped)."""
        return flatten(self.runs[0].options) if self.runs else {}

    @property
    def non_default_options(self) -> dict[str, Any]:
        return self.runs[0].non_default_options if self.runs else {}

    @property
    def recipe_changes(self) -> dict[str, Any]:
        """The non-default options that the row's variant flags (DA, SC, SR) do not already say,
        e.g. ``epochs=2`` of a short run: shown in the tables beside the accuracy."""
        def flagged(key: str, value: Any) -> bool:
            last = key.split(".")[-1]
            return last in VARIANT_OPTION_NAMES and (last != "init" or value == "signed_constant")

        return {k: v for k, v in self.non_default_options.items() if not flagged(k, v)}

    @property
    def row_id(self) -> str:
        return row_id(self.dataset, self.network, self.variant)

    @property
    def variant_label(self) -> str:
        return variant_label(self.variant)

    @property
    def normalisation(self) -> str:
        return normalisation(self.options, self.variant["data_augmentation"])

    @functools.cached_property
    def notes(self) -> list[tuple[str, str]]:
        return protocol_notes(self.options, self.variant, self.dataset)

    @functools.cached_property
    def near_chance(self) -> list[tuple[Run, str]]:
        """The runs whose extracted accuracy is near chance level, with the likely cause."""
        out = []
        for r in self.runs:
            cause = chance_cause(self.dataset, r.metric("final_test_acc"), r.options,
                                 r.curves.val_acc if r.curves else None, r.metric("epochs_run"))
            if cause:
                out.append((r, cause))
        return out

    @property
    def inconsistent_options(self) -> list[str]:
        """Resolved options whose values differ among this configuration's runs (one text per option).

        Runs of one config_hash should differ only by seed; they do not when, for example, a protocol's
        defaults changed between runs (the hash covers only non-default values).
        """
        out = []
        flat = [(r, flatten(r.options)) for r in self.runs]
        keys = sorted({k for _, options in flat for k in options})
        for key in keys:
            by_value: dict[str, list[int]] = {}
            for r, options in flat:
                by_value.setdefault(repr(options.get(key, "<absent>")), []).append(r.seed)
            if len(by_value) > 1:
                parts = [f"{value} (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})"
                         for value, seeds in by_value.items()]
                out.append(f"{key}: " + "; ".join(parts))
        return out

    def values(self, metric: str, scale: float = 1.0) -> list[float]:
        return [r.metric(metric) * scale for r in self.runs if r.metric(metric) is not None]

    def by_seed(self, metric: str, scale: float = 1.0) -> dict[int, float]:
        return {r.seed: r.metric(metric) * scale for r in self.runs if r.metric(metric) is not None}


def group_configs(runs: list[Run]) -> list[Config]:
    """Completed runs grouped by configuration, sorted for display."""
    groups: dict[tuple, Config] = {}
    for run in runs:
        key = (run.protocol, run.method, run.config_hash, run.dataset, run.network, run.family,
               tuple(run.variant[a] for a in VARIANT_AXES))
        if key not in groups:
            groups[key] = Config(run.protocol, run.method, run.config_hash, run.dataset, run.network,
                                 run.family, dict(run.variant))
        groups[key].runs.append(run)
    for config in groups.values():
        config.runs.sort(key=lambda r: r.seed)
    return sorted(groups.values(), key=config_sort_key)


def config_sort_key(c: Config) -> tuple:
    return (family_sort_key(c.family), dataset_sort_key(c.dataset), natural_key(c.network),
            tuple(c.variant[a] for a in VARIANT_AXES), method_sort_key(c.method), c.protocol,
            c.config_hash)


@dataclass
class PublishedComparison:
    """A configuration against its published value, on the metric the value is (like with like)."""

    published: Published | None
    ours: Summary  # percent, of published.metric (of final_test_acc when there is no published value)
    difference: float | None  # ours - published, pp
    verdict: Verdict

    @property
    def metric(self) -> str:
        return self.published.metric if self.published else "final_test_acc"


@dataclass
class CellEntry:
    config: Config
    accuracy: Summary  # final_test_acc, percent (the extracted subnetwork)
    stochastic: Summary  # test_acc, percent (before extraction; stochastic methods: sampled masks)
    kept: Summary  # kept_fraction
    published: PublishedComparison
    distinguishing: dict[str, Any] = field(default_factory=dict)  # when a cell has several configs

    @property
    def shows_sampled(self) -> bool:
        """The sampled-mask mean differs from the extracted accuracy (a stochastic method)."""
        return self.stochastic.mean is not None and self.stochastic.mean != self.accuracy.mean


@dataclass
class Row:
    id: str
    dataset: str
    network: str
    variant: dict[str, bool]
    cells: dict[str, list[CellEntry]] = field(default_factory=dict)

    @property
    def variant_label(self) -> str:
        return variant_label(self.variant)

    @property
    def normalisation(self) -> str:
        labels = sorted({e.config.normalisation for entries in self.cells.values() for e in entries})
        return labels[0] if len(labels) == 1 else "mixed: " + ", ".join(labels)


@dataclass
class FamilyTable:
    family: str
    title: str
    methods: list[str]
    rows: list[Row]

    @property
    def entries(self) -> list[CellEntry]:
        return [e for row in self.rows for m in self.methods for e in row.cells.get(m, [])]


def compare_published(config: Config, reference: Reference) -> PublishedComparison:
    """The configuration's mean of the published value's own metric against it; a primary value
    wins over a secondary one (Reference.best)."""
    published = reference.best(config.dataset, config.network, config.method, config.variant)
    if published is None:
        ours = summarise(config.values("final_test_acc", 100.0))
        return PublishedComparison(None, ours, None, reproduction_verdict(None, ours))
    ours = summarise(config.values(published.metric, 100.0))
    difference = None if ours.mean is None else ours.mean - published.value
    differing = published.differing_options(config.non_default_options)
    if differing is not None:
        return PublishedComparison(published, ours, difference, Verdict(
            OTHER_OPTIONS, "not the configuration that reproduces this value: it differs in "
                           f"{', '.join(differing)}; no verdict"))
    return PublishedComparison(published, ours, difference, reproduction_verdict(published.value, ours))


def table_of(config: Config) -> tuple[str, str]:
    """The table a configuration is shown in, (key, title): its family's, or the one of the methods
    since the paper."""
    if config.method in SINCE_PAPER_METHODS:
        return SINCE_PAPER, SINCE_PAPER_TITLE
    family = config.family
    return family, FAMILY_TITLES.get(family, f"Methods of family {family!r} (unknown family)")


def build_tables(configs: list[Config], reference: Reference) -> list[FamilyTable]:
    tables: dict[str, FamilyTable] = {}
    rows: dict[tuple[str, str], Row] = {}
    for config in configs:
        family, title = table_of(config)
        if family not in tables:
            tables[family] = FamilyTable(family, title, [], [])
        table = tables[family]
        if config.method not in table.methods:
            table.methods.append(config.method)
        rid = config.row_id
        if (family, rid) not in rows:
            row = Row(rid, config.dataset, config.network, dict(config.variant))
            rows[(family, rid)] = row
            table.rows.append(row)
        row = rows[(family, rid)]
        entry = CellEntry(config, summarise(config.values("final_test_acc", 100.0)),
                          summarise(config.values("test_acc", 100.0)),
                          summarise(config.values("kept_fraction")), compare_published(config, reference))
        row.cells.setdefault(config.method, []).append(entry)
    for table in tables.values():
        table.methods.sort(key=method_sort_key)
        table.rows.sort(key=lambda r: (dataset_sort_key(r.dataset), natural_key(r.network),
                                       tuple(r.variant[a] for a in VARIANT_AXES)))
        for row in table.rows:
            for entries in row.cells.values():
                if len(entries) > 1:
                    _mark_distinguishing(entries)
    return [tables[f] for f in sorted(tables, key=family_sort_key)]


def _mark_distinguishing(entries: list[CellEntry]) -> None:
    """Several configurations in one cell: record the options whose values differ among them."""
    keys = set()
    for entry in entries:
        keys |= set(entry.config.non_default_options)
    differing = sorted(k for k in keys if len({repr(e.config.non_default_options.get(k))
                                                for e in entries}) > 1)
    for entry in entries:
        entry.distinguishing = {k: entry.config.non_default_options.get(k, "(default)")
                                for k in differing}
        if not differing and entry.config.protocol:
            entry.distinguishing = {"protocol": entry.config.protocol}
