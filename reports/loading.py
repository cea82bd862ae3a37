"""Reading result files (docs/results-format.md) and the published reference values.

Nothing here raises on a bad result file: a file that is not valid JSON, is of another format or
format version, or lacks a key the report needs becomes a :class:`Skipped` entry with the reason, and
the report lists it. Optional sections of a valid file (curves, per-layer kept fractions, keep
probabilities, timings, provenance) that are malformed are dropped with a warning, also listed.
Only JSON is read (``json.loads``); nothing is unpickled or executed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from subnetbench.describe import FAST_PATH_OPTIONS, VARIANT_SHORT
from subnetbench.errors import NotARegularFile, PathNotFound, describe_os_error
from subnetbench.files import TooLarge, read_regular_file, strict_loads
from subnetbench.layout import ResultsLayout
from subnetbench.record_reading import MAX_RESULT_BYTES, InvalidRecord, read_result_file
from subnetbench.records import RESCALING_KEY, VARIANT_AXES, Metrics, RunRecord, is_number
from subnetbench.reference_results import PUBLISHED
from subnetbench.reports.missing_values import MissingValue, parse_all

REFERENCE_FORMAT = "subnetbench.reference"
REFERENCE_FORMAT_VERSION = 3
# 2: entries without "reproduction_options" and "variant.rescaling" (then any options and any
# rescaling of the SR axis match, as this version read them)
READABLE_REFERENCE_VERSIONS = (2, 3)

# A result file the report could use is a RunRecord (subnetbench/records.py); its ``source`` is the
# file's name.
Run = RunRecord


@dataclass(frozen=True)
class Skipped:
    file: str
    reason: str


@dataclass(frozen=True)
class Warning_:
    run_id: str
    message: str


@dataclass
class ResultSet:
    results_dir: Path
    runs_dir: Path
    completed: list[Run] = field(default_factory=list)
    running: list[Run] = field(default_factory=list)
    failed: list[Run] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)

    @property
    def all_runs(self) -> list[Run]:
        return self.completed + self.running + self.failed


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists become JSON text so that they compare and hash."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(item, dict) and item:
                out.update(flatten(item, name))
            elif isinstance(item, (list, dict)):
                out[name] = json.dumps(item, sort_keys=True)
            else:
                out[name] = item
    elif prefix:
        out[prefix] = value
    return out


def load_results(results_dir: str | Path) -> ResultSet:
    """Every ``*.json`` under ``RESULTS_DIR/runs`` (or ``RESULTS_DIR`` itself if it has no runs/)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise PathNotFound(f"results directory {str(results_dir)!r} does not exist or is not a "
                           "directory; give the --results directory of subnetbench run")
    runs_dir = ResultsLayout(results_dir).runs
    runs_dir = runs_dir if runs_dir.is_dir() else results_dir
    out = ResultSet(results_dir=results_dir, runs_dir=runs_dir)
    parsed: list[tuple[str, Run, list[str]]] = []
    for path in sorted(runs_dir.glob("*.json")):
        name = path.name
        try:
            run, warnings = read_result_file(path)  # FIFOs, huge files, NaN: refused, never read
            run.source = name
        except InvalidRecord as error:
            out.skipped.append(Skipped(name, str(error)))
            continue
        except OSError as error:
            out.skipped.append(Skipped(name, f"unreadable: {describe_os_error(error, path, 'read')}"))
            continue
        parsed.append((name, run, warnings))
    # Two files with one run_id: keep the one named <run_id>.json (the engine's name), else the first.
    parsed.sort(key=lambda item: (item[1].run_id, item[0] != f"{item[1].run_id}.json", item[0]))
    kept: dict[str, str] = {}
    for name, run, warnings in parsed:
        if run.run_id in kept:
            out.skipped.append(Skipped(name, f"duplicate run_id {run.run_id!r} (already read from "
                                             f"{kept[run.run_id]})"))
            continue
        kept[run.run_id] = name
        out.warnings.extend(Warning_(run.run_id, w) for w in warnings)
        {"completed": out.completed, "running": out.running, "failed": out.failed}[run.status].append(run)
    out.skipped.sort(key=lambda s: s.file)
    return out


# ---------------------------------------------------------------------------------------------------
class InvalidReference(ValueError):
    """A published-values file or entry that cannot be used."""


@dataclass(frozen=True)
class Published:
    """One published value: which configuration, which metric (``Metrics.ACCURACIES``), its source.

    ``variant`` has the three axes (None: not stated by the source, matches either value) and
    ``rescaling``, which rescaling its SR axis is (None: any). ``reproduction_options`` are the
    configurations that reproduce it, as the non-default options of a result file; None: any."""

    id: str  # the entry's "id" in the reference file: what a user edits to correct it
    dataset: str
    network: str
    method: str
    variant: dict[str, Any]
    metric: str
    value: float  # percent
    kind: str  # primary | secondary
    verified: bool
    source: str
    how_read: str
    note: str | None
    reproduction_options: tuple[dict[str, Any], ...] | None = None

    def matches(self, dataset: str, network: str, method: str, variant: dict[str, Any]) -> bool:
        """Same dataset, network and method, the same variant (a null axis matches any value), and
        with SR the same rescaling: supermask's DWR value never matches a smart rescale."""
        if (self.dataset, self.network, self.method) != (dataset, network, method):
            return False
        if not all(self.variant.get(axis) is None or self.variant[axis] == variant.get(axis)
                   for axis in VARIANT_AXES):
            return False
        wanted = self.variant.get(RESCALING_KEY)
        return not (variant.get("smart_rescale") and wanted is not None
                    and variant.get(RESCALING_KEY) not in (None, wanted))

    def differing_options(self, non_default_options: dict[str, Any]) -> list[str] | None:
        """None when a configuration of these non-default options reproduces this value (the fast
        path's options aside), else the options in which it differs from the nearest reproduction
        configuration."""
        if self.reproduction_options is None:
            return None
        ours = {k: v for k, v in non_default_options.items() if k not in FAST_PATH_OPTIONS}
        best: list[str] | None = None
        for options in self.reproduction_options:
            differing = sorted(k for k in set(ours) | set(options)
                               if json.dumps(ours.get(k)) != json.dumps(options.get(k)))
            if not differing:
                return None
            if best is None or len(differing) < len(best):
                best = differing
        return best

    @property
    def unstated_axes(self) -> list[str]:
        return [VARIANT_SHORT[a] for a in VARIANT_AXES if self.variant.get(a) is None]

    @property
    def metric_label(self) -> str:
        return Metrics.ACCURACIES.get(self.metric, self.metric)


@dataclass
class Reference:
    path: Path | None
    values: list[Published] = field(default_factory=list)
    problem: str | None = None
    readable: bool = True  # False: the file itself is missing or unusable (not just some entries)
    missing: list[MissingValue] = field(default_factory=list)  # results known but not entered

    def lookup(self, dataset: str, network: str, method: str, variant: dict[str, bool]) -> list[Published]:
        """Matching published values, primary before secondary."""
        found = [p for p in self.values if p.matches(dataset, network, method, variant)]
        return sorted(found, key=lambda p: (p.kind != "primary", len(p.unstated_axes)))

    def best(self, dataset: str, network: str, method: str,
             variant: dict[str, bool]) -> Published | None:
        """The value a configuration is compared with: a primary one always wins over a secondary
        one, then the one that states more of the variant."""
        found = self.lookup(dataset, network, method, variant)
        return found[0] if found else None

    def entry_text(self, published: Published) -> str:
        """Where a user corrects a value: the file and the entry's id."""
        return f"{self.path.name if self.path else 'reference file'}, entry {published.id!r}"


def _entry(entry: Any) -> Published:
    if not isinstance(entry, dict):
        raise InvalidReference("an entry is not an object")
    variant = entry["variant"]
    if not isinstance(variant, dict) or not all(variant.get(a) in (True, False, None)
                                                for a in VARIANT_AXES):
        raise InvalidReference("variant fields must be true, false or null")
    rescaling = variant.get(RESCALING_KEY)
    if rescaling is not None and not (isinstance(rescaling, str) and rescaling):
        raise InvalidReference(f"variant.{RESCALING_KEY} must be a name or null")
    options = entry.get("reproduction_options")
    if options is not None and not (isinstance(options, list) and options
                                    and all(isinstance(o, dict) for o in options)):
        raise InvalidReference("reproduction_options must be a non-empty list of objects (option: value)")
    value = entry["test_acc_percent"]
    if not is_number(value):
        raise InvalidReference("test_acc_percent is not a number")
    metric = entry["metric"]
    if metric not in Metrics.ACCURACIES:
        raise InvalidReference(f"metric {metric!r} is not one of {', '.join(Metrics.ACCURACIES)}")
    return Published(
        id=str(entry["id"]), dataset=str(entry["dataset"]), network=str(entry["network"]),
        method=str(entry["method"]),
        variant={**{a: variant.get(a) for a in VARIANT_AXES}, RESCALING_KEY: rescaling},
        metric=metric, value=float(value), kind=str(entry.get("kind", "unknown")),
        verified=entry.get("verified") is True, source=str(entry.get("source", "")),
        how_read=str(entry.get("how_read", "")),
        note=None if entry.get("note") is None else str(entry["note"]),
        reproduction_options=None if options is None else tuple(options))


def load_reference(path: str | Path | None = None) -> Reference:
    """The published values; a missing or malformed file gives a Reference with ``problem`` set."""
    path = Path(path) if path is not None else PUBLISHED
    ref = Reference(path=path)
    try:
        # The same reading as a result file's: a FIFO would block, NaN would be a published value.
        data = strict_loads(read_regular_file(path, MAX_RESULT_BYTES).decode("utf-8"))
        if not isinstance(data, dict) or data.get("format") != REFERENCE_FORMAT:
            raise InvalidReference(f"format is not {REFERENCE_FORMAT!r}")
        if data.get("format_version") not in READABLE_REFERENCE_VERSIONS:
            raise InvalidReference(f"format_version is {data.get('format_version')!r}, this version "
                                   f"reads {READABLE_REFERENCE_VERSIONS} (entries with an id and a metric)")
        entries = data.get("results")
        if not isinstance(entries, list):
            raise InvalidReference("'results' is not a list")
        for i, entry in enumerate(entries):
            try:
                ref.values.append(_entry(entry))
            except (KeyError, TypeError, AttributeError, InvalidReference) as error:
                ref.problem = (ref.problem + "; " if ref.problem else "") + f"entry {i} ignored: {error}"
        ref.missing, problems = parse_all(data.get("missing_values"))
        if problems:
            ref.problem = "; ".join(([ref.problem] if ref.problem else []) + problems)
        ids = [p.id for p in ref.values]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            ref.problem = (ref.problem + "; " if ref.problem else "") + \
                f"duplicate entry ids {duplicated}: an id names one entry"
    except FileNotFoundError:
        ref.problem = f"reference file {str(path)!r} not found: no published values are shown"
        ref.readable = False
    except NotARegularFile as error:
        ref.problem = (f"reference file {str(path)!r} is {error.kind}, not a regular file: no "
                       "published values are shown")
        ref.readable = False
    except (OSError, ValueError, InvalidReference, TooLarge) as error:
        ref.problem = f"reference file {str(path)!r} unreadable ({error}): no published values are shown"
        ref.readable = False
    return ref
