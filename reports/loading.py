"""Reading result files (docs/results-format.md) and the published reference values.

Nothing here raises on a bad result file: a file that is not valid JSON, is of another format or
format version, or lacks a key the report needs becomes a :class:`Skipped` entry with the reason, and
the report lists it. Optional sections of a valid file (curves, per-layer kept fractions, keep
probabilities, timings, provenance) that are malformed are dropped with a warning, also listed.
Only JSON is read (``json.loads``); nothing is unpickled or executed.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from subnetbench.reference_results import PUBLISHED

RESULT_FORMAT = "subnetbench.result"
RESULT_FORMAT_VERSION = 1
REFERENCE_FORMAT = "subnetbench.reference"
REFERENCE_FORMAT_VERSION = 1
STATUSES = ("completed", "running", "failed")
VARIANT_AXES = ("data_augmentation", "signed_constant", "smart_rescale")
VARIANT_SHORT = {"data_augmentation": "DA", "signed_constant": "SC", "smart_rescale": "SR"}
REQUIRED_METRICS = ("test_acc", "final_test_acc", "kept_fraction")
MAX_FILE_BYTES = 64 * 1024 * 1024


class InvalidResult(ValueError):
    """A result file the report cannot use; the message says why."""


@dataclass
class Run:
    """One result file that passed validation."""

    path: Path
    status: str
    run_id: str
    protocol: str | None = None
    method: str | None = None
    config_hash: str | None = None
    seed: int | None = None
    dataset: str | None = None
    network: str | None = None
    family: str | None = None
    variant: dict[str, bool] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # flattened: dotted keys
    non_default_options: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    layer_kept_fraction: dict[str, float] | None = None
    keep_probabilities: dict[str, list[float]] | None = None
    curves: dict[str, list] | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> float | None:
        value = self.metrics.get(name)
        return float(value) if _is_number(value) else None


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


# ---------------------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(data: dict, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    if key not in data:
        raise InvalidResult(f"missing key {where}{key!r}")
    value = data[key]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InvalidResult(f"key {where}{key!r} is {type(value).__name__} {_short(value)}, "
                            f"expected {names}")
    return value


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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


def parse_result(data: Any, path: Path) -> tuple[Run, list[str]]:
    """Validate one decoded result file; returns the run and warnings about optional sections."""
    if not isinstance(data, dict):
        raise InvalidResult(f"top level is {type(data).__name__}, expected a JSON object")
    fmt = data.get("format")
    if fmt != RESULT_FORMAT:
        raise InvalidResult(f"format is {_short(fmt)}, expected {RESULT_FORMAT!r}")
    version = data.get("format_version")
    if version != RESULT_FORMAT_VERSION or isinstance(version, bool):
        raise InvalidResult(f"format_version is {_short(version)}; this report reads version "
                            f"{RESULT_FORMAT_VERSION}")
    status = _require(data, "status", str)
    if status not in STATUSES:
        raise InvalidResult(f"status is {_short(status)}, expected one of {', '.join(STATUSES)}")
    run_id = _require(data, "run_id", str)
    if not run_id.strip():
        raise InvalidResult("run_id is empty")
    run = Run(path=path, status=status, run_id=run_id)
    warnings: list[str] = []

    if status != "completed":
        # Unfinished or failed runs: keep whatever identifies them, never reject them for gaps.
        for key in ("protocol", "method", "config_hash", "dataset", "network", "family"):
            if isinstance(data.get(key), str):
                setattr(run, key, data[key])
        seed = data.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool):
            run.seed = seed
        error = data.get("error")
        run.error = error if isinstance(error, str) else (None if error is None else _short(error, 500))
        if isinstance(data.get("provenance"), dict):
            run.provenance = data["provenance"]
        if isinstance(data.get("timings"), dict):
            run.timings = data["timings"]
        return run, warnings

    for key in ("protocol", "method", "config_hash", "dataset", "network", "family"):
        value = _require(data, key, str)
        if not value.strip():
            raise InvalidResult(f"key {key!r} is empty")
        setattr(run, key, value)
    run.seed = _require(data, "seed", int)
    variant = _require(data, "variant", dict)
    for axis in VARIANT_AXES:
        _require(variant, axis, bool, "variant.")
    run.variant = {axis: variant[axis] for axis in VARIANT_AXES}
    metrics = _require(data, "metrics", dict)
    for name in REQUIRED_METRICS:
        value = metrics.get(name, None)
        if name not in metrics:
            raise InvalidResult(f"missing key 'metrics.{name}'")
        if not _is_number(value):
            raise InvalidResult(f"metrics.{name} is {_short(value)}, expected a finite number")
        if not 0.0 <= value <= 1.0:
            raise InvalidResult(f"metrics.{name} = {value} is not a fraction in [0, 1]")
    run.metrics = dict(metrics)
    for name, value in metrics.items():
        if name not in REQUIRED_METRICS and value is not None and not _is_number(value):
            warnings.append(f"metrics.{name} = {_short(value)} is not a finite number; ignored")
            run.metrics[name] = None
    etb = run.metrics.get("epochs_to_best")
    if etb is not None and (not _is_number(etb) or etb < 0):
        warnings.append(f"metrics.epochs_to_best = {_short(etb)} is not a number >= 0; ignored")
        run.metrics["epochs_to_best"] = None

    options = data.get("options", {})
    if not isinstance(options, dict):
        warnings.append("options is not an object; ignored")
        options = {}
    run.options = flatten(options)
    nd = data.get("non_default_options", {})
    if not isinstance(nd, dict):
        warnings.append("non_default_options is not an object; ignored")
        nd = {}
    run.non_default_options = dict(nd)

    run.layer_kept_fraction = _parse_layers(data.get("layer_kept_fraction"), warnings)
    run.keep_probabilities = _parse_histogram(data.get("keep_probabilities"), warnings)
    run.curves = _parse_curves(data.get("curves"), warnings)
    for key in ("timings", "provenance"):
        value = data.get(key)
        if isinstance(value, dict):
            setattr(run, key, value)
        elif value is not None:
            warnings.append(f"{key} is not an object; ignored")
    return run, warnings


def _parse_layers(value: Any, warnings: list[str]) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            _is_number(v) and 0 <= v <= 1 for v in value.values()):
        warnings.append("layer_kept_fraction is not an object of fractions in [0, 1]; ignored")
        return None
    return {str(k): float(v) for k, v in value.items()}


def _parse_histogram(value: Any, warnings: list[str]) -> dict[str, list[float]] | None:
    if value is None:
        return None
    try:
        edges, counts = value["bin_edges"], value["counts"]
        ok = (isinstance(edges, list) and isinstance(counts, list) and len(counts) >= 1
              and len(edges) == len(counts) + 1 and all(_is_number(e) for e in edges)
              and all(_is_number(c) and c >= 0 for c in counts)
              and all(a < b for a, b in zip(edges, edges[1:])))
    except (TypeError, KeyError):
        ok = False
    if not ok:
        warnings.append("keep_probabilities is not {bin_edges: [k+1 increasing], counts: [k >= 0]}; "
                        "ignored")
        return None
    return {"bin_edges": [float(e) for e in edges], "counts": [float(c) for c in counts]}


def _parse_curves(value: Any, warnings: list[str]) -> dict[str, list] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        warnings.append("curves is not an object; ignored")
        return None
    val = value.get("val_acc")
    epochs = value.get("epoch")
    if not isinstance(val, list) or not all(v is None or _is_number(v) for v in val):
        warnings.append("curves.val_acc is not a list of numbers; curves ignored")
        return None
    if epochs is None:
        epochs = list(range(1, len(val) + 1))
    if (not isinstance(epochs, list) or len(epochs) != len(val)
            or not all(_is_number(e) for e in epochs)):
        warnings.append("curves.epoch is not a list of numbers as long as curves.val_acc; "
                        "curves ignored")
        return None
    return {"epoch": [int(e) for e in epochs], "val_acc": [None if v is None else float(v) for v in val]}


def load_results(results_dir: str | Path) -> ResultSet:
    """Every ``*.json`` under ``RESULTS_DIR/runs`` (or ``RESULTS_DIR`` itself if it has no runs/)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results directory {str(results_dir)!r} does not exist or is not a "
                                "directory")
    runs_dir = results_dir / "runs" if (results_dir / "runs").is_dir() else results_dir
    out = ResultSet(results_dir=results_dir, runs_dir=runs_dir)
    parsed: list[tuple[str, Run, list[str]]] = []
    for path in sorted(runs_dir.glob("*.json")):
        name = path.name
        if not path.is_file():
            out.skipped.append(Skipped(name, "not a regular file"))
            continue
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise InvalidResult(f"file is {size} bytes, larger than the limit of {MAX_FILE_BYTES}")
            data = json.loads(path.read_bytes().decode("utf-8"))
            run, warnings = parse_result(data, path)
        except InvalidResult as error:
            out.skipped.append(Skipped(name, str(error)))
            continue
        except UnicodeDecodeError as error:
            out.skipped.append(Skipped(name, f"not UTF-8 text: {error}"))
            continue
        except json.JSONDecodeError as error:
            out.skipped.append(Skipped(name, f"invalid JSON: {error}"))
            continue
        except (OSError, RecursionError, ValueError) as error:
            out.skipped.append(Skipped(name, f"unreadable: {type(error).__name__}: {error}"))
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
@dataclass(frozen=True)
class Published:
    dataset: str
    network: str
    method: str
    variant: dict[str, bool | None]
    value: float  # percent
    kind: str  # primary | secondary
    source: str
    how_read: str
    note: str | None

    def matches(self, dataset: str, network: str, method: str, variant: dict[str, bool]) -> bool:
        """Same dataset, network and method; a null variant field matches any value."""
        if (self.dataset, self.network, self.method) != (dataset, network, method):
            return False
        return all(self.variant.get(axis) is None or self.variant[axis] == variant.get(axis)
                   for axis in VARIANT_AXES)

    @property
    def unstated_axes(self) -> list[str]:
        return [VARIANT_SHORT[a] for a in VARIANT_AXES if self.variant.get(a) is None]


@dataclass
class Reference:
    path: Path | None
    values: list[Published] = field(default_factory=list)
    problem: str | None = None

    def lookup(self, dataset: str, network: str, method: str, variant: dict[str, bool]) -> list[Published]:
        """Matching published values, primary before secondary."""
        found = [p for p in self.values if p.matches(dataset, network, method, variant)]
        return sorted(found, key=lambda p: (p.kind != "primary", len(p.unstated_axes)))


def load_reference(path: str | Path | None = None) -> Reference:
    """The published values; a missing or malformed file gives a Reference with ``problem`` set."""
    path = Path(path) if path is not None else PUBLISHED
    ref = Reference(path=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != REFERENCE_FORMAT:
            raise InvalidResult(f"format is not {REFERENCE_FORMAT!r}")
        if data.get("format_version") != REFERENCE_FORMAT_VERSION:
            raise InvalidResult(f"format_version is not {REFERENCE_FORMAT_VERSION}")
        entries = data.get("results")
        if not isinstance(entries, list):
            raise InvalidResult("'results' is not a list")
        for i, entry in enumerate(entries):
            try:
                variant = entry["variant"]
                if not all(variant.get(a) in (True, False, None) for a in VARIANT_AXES):
                    raise InvalidResult("variant fields must be true, false or null")
                value = entry["test_acc_percent"]
                if not _is_number(value):
                    raise InvalidResult("test_acc_percent is not a number")
                kind = entry.get("kind", "unknown")
                ref.values.append(Published(
                    dataset=str(entry["dataset"]), network=str(entry["network"]),
                    method=str(entry["method"]), variant={a: variant.get(a) for a in VARIANT_AXES},
                    value=float(value), kind=str(kind), source=str(entry.get("source", "")),
                    how_read=str(entry.get("how_read", "")),
                    note=None if entry.get("note") is None else str(entry["note"])))
            except (KeyError, TypeError, AttributeError, InvalidResult) as error:
                ref.problem = (ref.problem + "; " if ref.problem else "") + f"entry {i} ignored: {error}"
    except FileNotFoundError:
        ref.problem = f"reference file {str(path)!r} not found: no published values are shown"
    except (OSError, ValueError, InvalidResult) as error:
        ref.problem = f"reference file {str(path)!r} unreadable ({error}): no published values are shown"
    return ref
