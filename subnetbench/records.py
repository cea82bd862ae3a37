"""The result file of one run, defined once: typed records and how they are written.

The engine writes a :class:`RunRecord` (``to_json``, ``dumps``); :mod:`subnetbench.record_reading`
reads and validates one. docs/results-format.md documents the same fields, and a test checks the
two against each other. Each file carries ``sha256``, the digest of the rest (:func:`content_digest`),
so that damage is detected when it is read. Nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

FORMAT = "subnetbench.result"
FORMAT_VERSION = 2  # the version written; subnetbench.record_reading lists those read
DIGEST_KEY = "sha256"
STATUSES = ("completed", "running", "failed")
VARIANT_AXES = ("data_augmentation", "signed_constant", "smart_rescale")
# Beside the three axes, a variant names the rescaling its SR axis stands for (MethodTraits.rescaling:
# "smart_rescale", "dynamic_weight_rescale", both joined by "+", a plugin's own, or None), so that
# supermask's DWR and a smart rescale added to supermask are never taken for one another.
RESCALING_KEY = "rescaling"
VARIANT_KEYS = (*VARIANT_AXES, RESCALING_KEY)


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


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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


@dataclass
class Histogram(Section):
    """Learned keep probabilities: ``counts`` of weights in bins with increasing ``bin_edges``."""

    bin_edges: list[float]
    counts: list[float]


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
    update_passes: int = 1  # training passes a batch of the configuration (MethodTraits.update_passes)
    one_pass_s: list[float] | None = None  # the same with its rescaling updated in one pass
    one_pass_ratio: float | None = None  # median one-pass / median without


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
