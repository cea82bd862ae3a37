"""Reading a result file: the one reader shared by the engine, ``subnetbench status`` and the report.

:func:`read_result_file` reads a file from disk, :func:`record_from_json` validates its decoded JSON
into a :class:`~subnetbench.records.RunRecord`. Reading is strict where a wrong value would change
a conclusion (:class:`InvalidRecord`) and lenient elsewhere: a malformed optional section is dropped
with a warning. Every format version written so far is read (:data:`READABLE_VERSIONS`); a newer one
is refused (:class:`NewerFormat`). The rules are in docs/results-format.md ("Versions", "Integrity").
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from subnetbench.errors import NotARegularFile
from subnetbench.files import TooLarge, read_regular_file, strict_loads
from subnetbench.records import (
    DIGEST_KEY,
    FORMAT,
    FORMAT_VERSION,
    RESCALING_KEY,
    STATUSES,
    VARIANT_AXES,
    Curves,
    Histogram,
    Metrics,
    Provenance,
    RescalingOverhead,
    RunRecord,
    Section,
    Timings,
    content_digest,
    is_number,
)

READABLE_VERSIONS = (1, 2)  # 1: without the sha256 digest
MAX_DEPTH = 32  # nesting of a result file; the format needs 4, deeper input is refused unparsed
MAX_RESULT_BYTES = 64 * 1024 * 1024  # a result file is a few kB; anything this large is not one
IDENTITY_KEYS = ("protocol", "method", "config_hash", "dataset", "network", "family")


class InvalidRecord(ValueError):
    """A result file that cannot be used; the message says why."""


class DigestMismatch(InvalidRecord):
    """A result file whose content does not match its recorded SHA-256 (damaged or edited)."""


class NewerFormat(InvalidRecord):
    """A result file of a format version newer than this code knows: written by a newer
    subnetbench, to be left alone (never overwritten) and read by that version."""


def read_result_file(path: str | Path) -> tuple[RunRecord, list[str]]:
    """The record of the result file at ``path`` and the warnings about its optional sections.

    Raises ``FileNotFoundError`` when there is no file, another ``OSError`` when the path cannot be
    read (a directory, no permission), and :class:`InvalidRecord` (:class:`NewerFormat` for a newer
    format version) when what is there cannot be used: a FIFO, socket or device (never opened: it
    could block forever), more than :data:`MAX_RESULT_BYTES`, not UTF-8, not strict JSON (``NaN``,
    ``Infinity``: a version 1 file has no digest to catch them), nested too deeply, or not a valid
    record."""
    try:
        raw = read_regular_file(path, MAX_RESULT_BYTES)
    except NotARegularFile as error:
        raise InvalidRecord(f"it is {error.kind}, not a regular file") from None
    except TooLarge as error:
        raise InvalidRecord(str(error)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRecord("it is not UTF-8 text") from None
    try:
        data = strict_loads(text)
    except json.JSONDecodeError as error:
        raise InvalidRecord(f"invalid JSON: {error}") from None
    except ValueError as error:  # NaN, Infinity, nested too deeply
        raise InvalidRecord(str(error)) from None
    record, warnings = record_from_json(data)
    record.source = str(path)
    return record, warnings


def record_from_json(data: Any) -> tuple[RunRecord, list[str]]:
    """Validate one decoded result file; returns the record and warnings about optional
    sections. Raises :class:`InvalidRecord` for a file that cannot be used."""
    version = _checked_version(data)
    status = _require(data, "status", str)
    if status not in STATUSES:
        raise InvalidRecord(f"status is {short(status)}, expected one of {', '.join(STATUSES)}")
    run_id = _require(data, "run_id", str)
    if not run_id.strip():
        raise InvalidRecord("run_id is empty")
    record = RunRecord(status=status, run_id=run_id, format_version=version)
    warnings: list[str] = []
    record.provenance = _plain_section(Provenance, data.get("provenance"), "provenance", warnings)
    record.timings = _timings(data.get("timings"), warnings)
    if status == "completed":
        _read_completed(record, data, warnings)
    else:
        _read_unfinished(record, data)
    return record, warnings


def _checked_version(data: Any) -> int:
    """The format version of a decoded file, after the checks every version needs (and the digest
    check from version 2 on)."""
    if not isinstance(data, dict):
        raise InvalidRecord(f"top level is {type(data).__name__}, expected a JSON object")
    if nesting_depth(data) > MAX_DEPTH:
        raise InvalidRecord(f"it is nested more than {MAX_DEPTH} levels deep; a result file needs 4")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise InvalidRecord(f"format is {short(fmt)}, expected {FORMAT!r}")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidRecord(f"format_version is {short(version)}; this version of subnetbench "
                            f"reads versions {READABLE_VERSIONS[0]} to {READABLE_VERSIONS[-1]}")
    if version > FORMAT_VERSION:
        raise NewerFormat(f"format_version is {version}, newer than the versions this subnetbench "
                          f"reads ({READABLE_VERSIONS[0]} to {READABLE_VERSIONS[-1]}): the file was "
                          "written by a newer subnetbench; upgrade subnetbench to use it")
    if version >= 2:
        _check_digest(data)
    return version


def _read_unfinished(record: RunRecord, data: dict[str, Any]) -> None:
    """An unfinished or failed run keeps whatever identifies it, never rejected for gaps."""
    for key in IDENTITY_KEYS:
        if isinstance(data.get(key), str):
            setattr(record, key, data[key])
    seed = data.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        record.seed = seed
    error = data.get("error")
    record.error = error if isinstance(error, str) else (None if error is None else short(error, 500))


def _read_completed(record: RunRecord, data: dict[str, Any], warnings: list[str]) -> None:
    """A completed run must identify itself and carry its metrics; its other sections are optional."""
    for key in IDENTITY_KEYS:
        value = _require(data, key, str)
        if not value.strip():
            raise InvalidRecord(f"key {key!r} is empty")
        setattr(record, key, value)
    record.seed = _require(data, "seed", int)
    record.variant = _variant(_require(data, "variant", dict), data.get("options"))
    record.metrics = _metrics(_require(data, "metrics", dict), warnings)
    for key in ("options", "non_default_options"):
        value = data.get(key, {})
        if not isinstance(value, dict):
            warnings.append(f"{key} is not an object; ignored")
            value = {}
        setattr(record, key, value)
    record.layer_kept_fraction = _layers(data.get("layer_kept_fraction"), warnings)
    record.keep_probabilities = _histogram(data.get("keep_probabilities"), warnings)
    record.curves = _curves(data.get("curves"), warnings)


def _variant(variant: dict[str, Any], options: Any) -> dict[str, Any]:
    """The three boolean axes and the rescaling the SR axis stands for."""
    for axis in VARIANT_AXES:
        _require(variant, axis, bool, "variant.")
    if RESCALING_KEY in variant:
        rescaling = variant[RESCALING_KEY]
        if rescaling is not None and not (isinstance(rescaling, str) and rescaling):
            raise InvalidRecord(f"variant.{RESCALING_KEY} must be a name or null, not {rescaling!r}")
    else:
        rescaling = _rescaling_of_earlier_files(variant, options)
    return {**{axis: variant[axis] for axis in VARIANT_AXES}, RESCALING_KEY: rescaling}


def _rescaling_of_earlier_files(variant: dict[str, Any], options: Any) -> str | None:
    """The rescaling of a result file written before variants named it: the built-in methods'
    option flags that were on (the only rescalings there were then)."""
    if not variant.get("smart_rescale"):
        return None
    method = options.get("method") if isinstance(options, dict) else None
    method = method if isinstance(method, dict) else {}
    names = [name for name in ("dynamic_weight_rescale", "smart_rescale") if method.get(name) is True]
    return "+".join(names) or None


def _check_digest(data: dict[str, Any]) -> None:
    recorded = data.get(DIGEST_KEY)
    if not isinstance(recorded, str):
        raise InvalidRecord(f"key {DIGEST_KEY!r} is {short(recorded)}; format version "
                            f"{data['format_version']} needs the SHA-256 digest of the content")
    try:
        actual = content_digest(data)
    except ValueError:
        raise InvalidRecord("it holds a non-finite number (NaN or Infinity), which strict JSON "
                            "does not allow") from None
    if actual != recorded:
        raise DigestMismatch(f"its content does not match its SHA-256 digest (recorded "
                             f"{recorded[:12]}..., content {actual[:12]}...): the file was damaged or "
                             "edited after it was written")


def nesting_depth(value: Any) -> int:
    """The nesting depth of decoded JSON, counted without recursion (deep input cannot overflow)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _require(data: dict, key: str, kind: type, where: str = "") -> Any:
    if key not in data:
        raise InvalidRecord(f"missing key {where}{key!r}")
    value = data[key]
    ok = (isinstance(value, int) and not isinstance(value, bool)) if kind is int else isinstance(value, kind)
    if not ok:
        raise InvalidRecord(f"key {where}{key!r} is {type(value).__name__} {short(value)}, "
                            f"expected {kind.__name__}")
    return value


# The sections: a malformed optional one is dropped with a warning, never guessed at.

def _metrics(data: dict[str, Any], warnings: list[str]) -> Metrics:
    for name in Metrics.REQUIRED:
        if name not in data:
            raise InvalidRecord(f"missing key 'metrics.{name}'")
        value = data[name]
        if not is_number(value):
            raise InvalidRecord(f"metrics.{name} is {short(value)}, expected a finite number")
        if not 0.0 <= value <= 1.0:
            raise InvalidRecord(f"metrics.{name} = {value} is not a fraction in [0, 1]")
    values = {}
    for name in Metrics.field_names():
        value = data.get(name)
        if value is not None and not is_number(value):
            warnings.append(f"metrics.{name} = {short(value)} is not a finite number; ignored")
            value = None
        values[name] = value
    etb = values["epochs_to_best"]
    if etb is not None and etb < 0:
        warnings.append(f"metrics.epochs_to_best = {short(etb)} is not a number >= 0; ignored")
        values["epochs_to_best"] = None
    return Metrics(**values)


def _histogram(value: Any, warnings: list[str]) -> Histogram | None:
    if value is None:
        return None
    try:
        edges, counts = value["bin_edges"], value["counts"]
        ok = (isinstance(edges, list) and isinstance(counts, list) and len(counts) >= 1
              and len(edges) == len(counts) + 1 and all(is_number(e) for e in edges)
              and all(is_number(c) and c >= 0 for c in counts)
              and all(a < b for a, b in zip(edges, edges[1:])))
    except (TypeError, KeyError):
        ok = False
    if not ok:
        warnings.append("keep_probabilities is not {bin_edges: [k+1 increasing], counts: "
                        "[k >= 0]}; ignored")
        return None
    return Histogram(list(edges), list(counts))


def _curves(value: Any, warnings: list[str]) -> Curves | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        warnings.append("curves is not an object; ignored")
        return None
    val = value.get("val_acc")
    epochs = value.get("epoch")
    if not isinstance(val, list) or not all(v is None or is_number(v) for v in val):
        warnings.append("curves.val_acc is not a list of numbers; curves ignored")
        return None
    if epochs is None:
        epochs = list(range(1, len(val) + 1))
    if (not isinstance(epochs, list) or len(epochs) != len(val)
            or not all(is_number(e) for e in epochs)):
        warnings.append("curves.epoch is not a list of numbers as long as curves.val_acc; "
                        "curves ignored")
        return None
    others = {}
    for key in ("round", "train_loss", "train_acc"):
        series = value.get(key)
        ok = isinstance(series, list) and len(series) == len(val) and all(
            v is None or is_number(v) for v in series)
        others[key] = series if ok else None
    return Curves([int(e) for e in epochs], [None if v is None else float(v) for v in val], **others)


def _timings(value: Any, warnings: list[str]) -> Timings | None:
    timings = _plain_section(Timings, value, "timings", warnings)
    if timings is not None:
        timings.rescaling_overhead = _rescaling_overhead(timings.rescaling_overhead, warnings)
    return timings


def _rescaling_overhead(value: Any, warnings: list[str]) -> RescalingOverhead | None:
    if value is None:
        return None
    try:
        ok = (isinstance(value["rescaling"], str) and is_number(value["ratio"])
              and value["ratio"] > 0
              and all(isinstance(value[k], list) and value[k] and all(is_number(x) for x in value[k])
                      for k in ("with_rescaling_s", "without_rescaling_s")))
        passes = value.get("update_passes", 1)
        ok = ok and isinstance(passes, int) and not isinstance(passes, bool) and passes >= 1
        one_pass_s, one_pass_ratio = value.get("one_pass_s"), value.get("one_pass_ratio")
        ok = ok and (one_pass_s is None) == (one_pass_ratio is None) and (
            one_pass_s is None or (isinstance(one_pass_s, list) and one_pass_s
                                   and all(is_number(x) for x in one_pass_s)
                                   and is_number(one_pass_ratio) and one_pass_ratio > 0))
    except (TypeError, KeyError, AttributeError):
        ok = False
    if not ok:
        warnings.append("timings.rescaling_overhead is not {rescaling, with_rescaling_s, "
                        "without_rescaling_s, ratio > 0, update_passes >= 1[, one_pass_s, "
                        "one_pass_ratio > 0]}; ignored")
        return None
    return RescalingOverhead(value["rescaling"], list(value["with_rescaling_s"]),
                             list(value["without_rescaling_s"]), float(value["ratio"]), passes,
                             None if one_pass_s is None else list(one_pass_s),
                             None if one_pass_ratio is None else float(one_pass_ratio))


def _plain_section(cls: type[Section], value: Any, key: str, warnings: list[str]) -> Any:
    """A section whose fields are all optional, as they are; unknown keys are ignored."""
    if value is None:
        return None
    if not isinstance(value, dict):
        warnings.append(f"{key} is not an object; ignored")
        return None
    return cls(**{name: value.get(name) for name in cls.field_names()})


def _layers(value: Any, warnings: list[str]) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(is_number(v) and 0 <= v <= 1 for v in value.values()):
        warnings.append("layer_kept_fraction is not an object of fractions in [0, 1]; ignored")
        return None
    return {str(k): float(v) for k, v in value.items()}
