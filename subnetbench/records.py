"""The result file of one run, defined once: typed records with to/from JSON.

The engine writes a :class:`RunRecord` (``to_json``) and the report reads one (``from_json``);
docs/results-format.md documents the same fields, and a test checks the two against each other.
Nothing here imports torch.

Reading is strict where a wrong value would change a conclusion and lenient elsewhere: a
``completed`` record must identify its run and carry finite accuracies in [0, 1]
(:class:`InvalidRecord` otherwise), while a malformed optional section (curves, per-layer kept
fractions, keep probabilities, timings, provenance) is dropped with a warning. An unfinished or
failed record keeps whatever identifies it.

Versions: this code writes format version 2, which carries ``sha256``, the SHA-256 of the canonical
JSON of every other key (:func:`content_digest`); reading verifies it (:class:`DigestMismatch`
otherwise). Version 1 files (written before digests existed) are still read, without that check. A
file of a newer version is refused with :class:`NewerFormat`, never read as if it were known.

Files: :func:`read_result_file` is the one reading of a result file from disk, shared by the engine,
``subnetbench status`` and the report: a regular file only (a FIFO would block, a device never
end), at most :data:`MAX_RESULT_BYTES`, UTF-8, strict JSON (``NaN`` and ``Infinity`` are refused:
a version-1 file has no digest to catch them, and a record holding them could never be written
back as strict JSON).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from subnetbench.errors import NotARegularFile
from subnetbench.files import TooLarge, read_regular_file, strict_loads

FORMAT = "subnetbench.result"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: without the sha256 digest
DIGEST_KEY = "sha256"
MAX_DEPTH = 32  # nesting of a result file; the format needs 4, deeper input is refused unparsed
MAX_RESULT_BYTES = 64 * 1024 * 1024  # a result file is a few kB; anything this large is not one
STATUSES = ("completed", "running", "failed")
VARIANT_AXES = ("data_augmentation", "signed_constant", "smart_rescale")
# Beside the three axes, a variant names the rescaling its SR axis stands for (Method.rescaling:
# "smart_rescale", "dynamic_weight_rescale", both joined by "+", a plugin's own, or None), so that
# supermask's DWR and a smart rescale added to supermask are never taken for one another.
RESCALING_KEY = "rescaling"
VARIANT_KEYS = (*VARIANT_AXES, RESCALING_KEY)
IDENTITY_KEYS = ("protocol", "method", "config_hash", "dataset", "network", "family")


class InvalidRecord(ValueError):
    """A result file that cannot be used; the message says why."""


class DigestMismatch(InvalidRecord):
    """A result file whose content does not match its recorded SHA-256 (damaged or edited)."""


class NewerFormat(InvalidRecord):
    """A result file of a format version newer than this code knows: written by a newer
    subnetbench, to be left alone (never overwritten) and read by that version."""


def content_digest(data: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of every key but ``sha256``:
    independent of how the file is indented. Non-finite numbers raise ``ValueError``."""
    content = {key: value for key, value in data.items() if key != DIGEST_KEY}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def seal(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a decoded result file) as format version 2 with its digest recomputed: for a tool
    that changes a result file on purpose (a migration, a test). The digest detects damage, not
    intent."""
    data = {key: value for key, value in data.items() if key != DIGEST_KEY}
    data["format_version"] = FORMAT_VERSION
    data[DIGEST_KEY] = content_digest(data)
    return data


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


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class Section:
    """A record section: written field by field in declaration order; fields named in
    ``OMIT_IF_NONE`` are left out of the JSON while they are None."""

    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self.OMIT_IF_NONE:
                continue
            out[f.name] = value.to_json() if isinstance(value, Section) else value
        return out

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


@dataclass
class Metrics(Section):
    """Accuracies are fractions in [0, 1]; ``test_acc``, ``final_test_acc`` and ``kept_fraction``
    are required of a completed run."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("test_acc", "final_test_acc", "kept_fraction")
    # The accuracies a published value can be, in words (reference_results/published.json names
    # one in its "metric" field; it is only ever compared with that metric).
    ACCURACIES: ClassVar[dict[str, str]] = {
        "final_test_acc": "extracted subnetwork",
        "test_acc": "mean over sampled masks (deterministic methods: the network itself)",
        "deterministic_test_acc": "deterministic mask before extraction",
    }

    test_acc: float | None = None  # best-validation network; stochastic methods: mean over masks
    final_test_acc: float | None = None  # the extracted deterministic subnetwork
    deterministic_test_acc: float | None = None  # deterministic forward before extraction
    kept_fraction: float | None = None  # of the prunable weights of the extracted subnetwork
    epochs_to_best: int | None = None  # 1-based, over all rounds
    best_val_acc: float | None = None
    epochs_run: int | None = None

    @classmethod
    def from_json(cls, data: Any, warnings: list[str]) -> Metrics:
        if not isinstance(data, dict):
            raise InvalidRecord(f"key 'metrics' is {type(data).__name__} {short(data)}, expected dict")
        for name in cls.REQUIRED:
            if name not in data:
                raise InvalidRecord(f"missing key 'metrics.{name}'")
            value = data[name]
            if not is_number(value):
                raise InvalidRecord(f"metrics.{name} is {short(value)}, expected a finite number")
            if not 0.0 <= value <= 1.0:
                raise InvalidRecord(f"metrics.{name} = {value} is not a fraction in [0, 1]")
        values = {}
        for name in cls.field_names():
            value = data.get(name)
            if value is not None and not is_number(value):
                warnings.append(f"metrics.{name} = {short(value)} is not a finite number; ignored")
                value = None
            values[name] = value
        etb = values["epochs_to_best"]
        if etb is not None and etb < 0:
            warnings.append(f"metrics.epochs_to_best = {short(etb)} is not a number >= 0; ignored")
            values["epochs_to_best"] = None
        return cls(**values)


@dataclass
class Histogram(Section):
    """Learned keep probabilities: ``counts`` of weights in bins with increasing ``bin_edges``."""

    bin_edges: list[float]
    counts: list[float]

    @classmethod
    def from_json(cls, value: Any, warnings: list[str]) -> Histogram | None:
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
        return cls(list(edges), list(counts))


@dataclass
class Curves(Section):
    """One entry per epoch (over all rounds)."""

    epoch: list[int]
    val_acc: list[float | None]
    round: list[int] | None = None
    train_loss: list[float] | None = None
    train_acc: list[float] | None = None

    def to_json(self) -> dict[str, Any]:  # the order the engine has always written
        return {"epoch": self.epoch, "round": self.round, "train_loss": self.train_loss,
                "train_acc": self.train_acc, "val_acc": self.val_acc}

    @classmethod
    def from_json(cls, value: Any, warnings: list[str]) -> Curves | None:
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
        return cls([int(e) for e in epochs], [None if v is None else float(v) for v in val],
                   **others)


@dataclass
class RescalingOverhead(Section):
    """What the method's rescaling costs per training epoch, measured in the run's own process:
    epochs of the trained configuration and of the same one without rescaling, interleaved. Where
    the configuration updates in several passes a batch (the released code's two optimisers: one
    forward and backward each), the same method updated in one pass is timed beside them, so the
    cost of the rescaling's arithmetic and that of the extra pass can be told apart."""

    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"one_pass_s", "one_pass_ratio"})

    rescaling: str  # the method's declared rescaling, e.g. "smart_rescale"
    with_rescaling_s: list[float]
    without_rescaling_s: list[float]
    ratio: float  # median with / median without: 1.13 is 13 % more time per epoch
    update_passes: int = 1  # training passes a batch of the configuration (Method.update_passes)
    one_pass_s: list[float] | None = None  # the same with its rescaling updated in one pass
    one_pass_ratio: float | None = None  # median one-pass / median without

    @classmethod
    def from_json(cls, value: Any, warnings: list[str]) -> RescalingOverhead | None:
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
        return cls(value["rescaling"], list(value["with_rescaling_s"]),
                   list(value["without_rescaling_s"]), float(value["ratio"]), passes,
                   None if one_pass_s is None else list(one_pass_s),
                   None if one_pass_ratio is None else float(one_pass_ratio))


@dataclass
class Timings(Section):
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"seed_batch", "seed_batch_mode",
                                                        "rescaling_overhead"})

    total_s: float | None = None  # wall time of the run, interrupted sessions included
    epoch_s: list[float] | None = None
    device: str | None = None  # "cpu" or "cuda"
    seed_batch: int | None = None  # seeds trained together (seed batches only)
    seed_batch_mode: str | None = None  # "grouped" or "loop" (seed batches only)
    rescaling_overhead: RescalingOverhead | None = None  # methods with a rescaling only

    @classmethod
    def from_json(cls, value: Any, warnings: list[str]) -> Timings | None:
        timings = _section(cls, value, "timings", warnings)
        if timings is not None:
            timings.rescaling_overhead = RescalingOverhead.from_json(timings.rescaling_overhead, warnings)
        return timings


@dataclass
class Provenance(Section):
    subnetbench_version: str | None = None
    git_commit: str | None = None  # None outside a git checkout
    git_dirty: bool | None = None
    device_name: str | None = None
    python: str | None = None
    platform: str | None = None
    versions: dict[str, str | None] | None = None  # torch, torchvision, numpy, scikit-learn
    created: str | None = None  # ISO 8601, UTC
    input_normalisation: dict[str, list[float]] | None = None  # {"mean", "std"}; None: not normalised
    tf32: dict[str, bool] | None = None  # {"matmul", "convolutions"}: run in TF32 (CUDA only)


def _section(cls: type[Section], value: Any, key: str, warnings: list[str]) -> Any:
    """A plain section (every field optional) from JSON; unknown keys are ignored."""
    if value is None:
        return None
    if not isinstance(value, dict):
        warnings.append(f"{key} is not an object; ignored")
        return None
    return cls(**{name: value.get(name) for name in cls.field_names()})


def _rescaling_of_earlier_files(variant: dict[str, Any], options: Any) -> str | None:
    """The rescaling of a result file written before variants named it: the built-in methods'
    option flags that were on (the only rescalings there were then)."""
    if not variant.get("smart_rescale"):
        return None
    method = options.get("method") if isinstance(options, dict) else None
    method = method if isinstance(method, dict) else {}
    names = [name for name in ("dynamic_weight_rescale", "smart_rescale") if method.get(name) is True]
    return "+".join(names) or None


@dataclass
class RunRecord(Section):
    """One run's result file. ``metrics`` and the sections after it exist once ``completed``."""

    status: str
    run_id: str
    error: str | None = None  # one paragraph when status is "failed"
    config_hash: str | None = None
    protocol: str | None = None
    dataset: str | None = None
    network: str | None = None
    method: str | None = None
    family: str | None = None  # "mask-only" or "weight-training"
    seed: int | None = None
    variant: dict[str, Any] = field(default_factory=dict)  # DA, SC, SR and the rescaling (VARIANT_KEYS)
    options: dict[str, Any] = field(default_factory=dict)  # the resolved configuration
    non_default_options: dict[str, Any] = field(default_factory=dict)  # what the hash covers
    provenance: Provenance | None = None
    metrics: Metrics | None = None
    layer_kept_fraction: dict[str, float] | None = None
    keep_probabilities: Histogram | None = None
    curves: Curves | None = None
    timings: Timings | None = None
    source: str | None = field(default=None, compare=False)  # the file it was read from; not written
    # The version of the file it was read from (None for a new record); to_json writes FORMAT_VERSION.
    format_version: int | None = field(default=None, compare=False)

    COMPLETED_ONLY: ClassVar[tuple[str, ...]] = ("metrics", "layer_kept_fraction",
                                                 "keep_probabilities", "curves", "timings")

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the file, keys in the order the engine has always written them, then
        ``sha256``, the digest of the rest."""
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, "status": self.status,
                "error": self.error, "run_id": self.run_id}
        for name in ("config_hash", "protocol", "dataset", "network", "method", "family", "seed",
                     "variant", "options", "non_default_options"):
            data[name] = getattr(self, name)
        if self.provenance is not None:
            data["provenance"] = self.provenance.to_json()
        if self.status == "completed":
            for name in self.COMPLETED_ONLY:
                value = getattr(self, name)
                data[name] = value.to_json() if isinstance(value, Section) else value
        elif self.timings is not None:
            data["timings"] = self.timings.to_json()
        data[DIGEST_KEY] = content_digest(data)
        return data

    def dumps(self) -> str:
        """The file's text (strict JSON: NaN and infinity are refused)."""
        return json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n"

    def metric(self, name: str) -> float | None:
        value = getattr(self.metrics, name, None) if self.metrics is not None else None
        return float(value) if is_number(value) else None

    @classmethod
    def from_json(cls, data: Any) -> tuple[RunRecord, list[str]]:
        """Validate one decoded result file; returns the record and warnings about optional
        sections. Raises :class:`InvalidRecord` for a file that cannot be used."""
        if not isinstance(data, dict):
            raise InvalidRecord(f"top level is {type(data).__name__}, expected a JSON object")
        if nesting_depth(data) > MAX_DEPTH:
            raise InvalidRecord(f"it is nested more than {MAX_DEPTH} levels deep; a result file "
                                "needs 4")
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
        status = _require(data, "status", str)
        if status not in STATUSES:
            raise InvalidRecord(f"status is {short(status)}, expected one of {', '.join(STATUSES)}")
        run_id = _require(data, "run_id", str)
        if not run_id.strip():
            raise InvalidRecord("run_id is empty")
        record = cls(status=status, run_id=run_id, format_version=version)
        warnings: list[str] = []
        record.provenance = _section(Provenance, data.get("provenance"), "provenance", warnings)
        record.timings = Timings.from_json(data.get("timings"), warnings)
        if status != "completed":
            # Unfinished or failed runs: keep whatever identifies them, never reject them for gaps.
            for key in IDENTITY_KEYS:
                if isinstance(data.get(key), str):
                    setattr(record, key, data[key])
            seed = data.get("seed")
            if isinstance(seed, int) and not isinstance(seed, bool):
                record.seed = seed
            error = data.get("error")
            record.error = error if isinstance(error, str) else (
                None if error is None else short(error, 500))
            return record, warnings

        for key in IDENTITY_KEYS:
            value = _require(data, key, str)
            if not value.strip():
                raise InvalidRecord(f"key {key!r} is empty")
            setattr(record, key, value)
        record.seed = _require(data, "seed", int)
        variant = _require(data, "variant", dict)
        for axis in VARIANT_AXES:
            _require(variant, axis, bool, "variant.")
        if RESCALING_KEY in variant:
            rescaling = variant[RESCALING_KEY]
            if rescaling is not None and not (isinstance(rescaling, str) and rescaling):
                raise InvalidRecord(f"variant.{RESCALING_KEY} must be a name or null, not {rescaling!r}")
        else:
            rescaling = _rescaling_of_earlier_files(variant, data.get("options"))
        record.variant = {**{axis: variant[axis] for axis in VARIANT_AXES}, RESCALING_KEY: rescaling}
        record.metrics = Metrics.from_json(_require(data, "metrics", dict), warnings)
        for key in ("options", "non_default_options"):
            value = data.get(key, {})
            if not isinstance(value, dict):
                warnings.append(f"{key} is not an object; ignored")
                value = {}
            setattr(record, key, value)
        record.layer_kept_fraction = _layers(data.get("layer_kept_fraction"), warnings)
        record.keep_probabilities = Histogram.from_json(data.get("keep_probabilities"), warnings)
        record.curves = Curves.from_json(data.get("curves"), warnings)
        return record, warnings


def read_result_file(path: str | Path) -> tuple[RunRecord, list[str]]:
    """The record of the result file at ``path`` and the warnings about its optional sections: the
    one reading of result files that the engine, ``status`` and the report share.

    Raises ``FileNotFoundError`` when there is no file, another ``OSError`` when the path cannot be
    read (a directory, no permission), and :class:`InvalidRecord` (:class:`NewerFormat` for a newer
    format version) when what is there cannot be used: a FIFO, socket or device (never opened for
    reading: it could block forever), more than :data:`MAX_RESULT_BYTES`, not UTF-8, not strict
    JSON (``NaN``, ``Infinity``), nested too deeply, or not a valid record."""
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
    record, warnings = RunRecord.from_json(data)
    record.source = str(path)
    return record, warnings


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


def _require(data: dict, key: str, kind: type, where: str = "") -> Any:
    if key not in data:
        raise InvalidRecord(f"missing key {where}{key!r}")
    value = data[key]
    ok = (isinstance(value, int) and not isinstance(value, bool)) if kind is int else isinstance(value, kind)
    if not ok:
        raise InvalidRecord(f"key {where}{key!r} is {type(value).__name__} {short(value)}, "
                            f"expected {kind.__name__}")
    return value


def _layers(value: Any, warnings: list[str]) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(is_number(v) and 0 <= v <= 1 for v in value.values()):
        warnings.append("layer_kept_fraction is not an object of fractions in [0, 1]; ignored")
        return None
    return {str(k): float(v) for k, v in value.items()}
