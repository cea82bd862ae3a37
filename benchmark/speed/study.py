"""The measurement driver of the speed study: generated data, ours against the re-created official
pipeline, the fast-path variant rows and the seed-batch rows (:class:`Bench`).

A method of the study is any registered method, by name, or ``NAME+sr`` (the paper's smart rescale,
``method.smart_rescale=true`` for a method whose options have that boolean); its options are validated
by the engine (:func:`subnetbench.benchmark.config.make_config`), as for ``subnetbench run``.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from subnetbench import methods
from subnetbench.benchmark.build_run import build_run
from subnetbench.benchmark.config import RunConfig, make_config
from subnetbench.benchmark.data import DATASET_INFO, DatasetInfo, DeviceData, Split
from subnetbench.benchmark.device import resolve_device, set_deterministic
from subnetbench.benchmark.grouped import grouped_forward
from subnetbench.benchmark.results import atomic_torch_save
from subnetbench.benchmark.seed_batch import check_batchable
from subnetbench.benchmark.speed import reference_pipeline as ref
from subnetbench.benchmark.speed.estimate import TRAIN_IMAGES, VAL_IMAGES, grid_estimate
from subnetbench.benchmark.speed.flops import train_flop_per_image
from subnetbench.benchmark.speed.measure import PeakMemory
from subnetbench.benchmark.timing import sync, timed
from subnetbench.benchmark.training import Trainer, separate_forward, train_epoch
from subnetbench.errors import OptionError

SMART_RESCALE = "+sr"  # NAME+sr: the method with smart_rescale=true
VARIANTS = ("channels_last", "bf16", "compile", "fast")
VARIANT_OVERRIDES = {
    "default": {},
    "channels_last": {"channels_last": "true"},
    "bf16": {"autocast": "bf16"},
    "compile": {"compile": "true"},
}
FORMAT = "subnetbench.speed"
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Budget:
    batch_size: int
    batches: int  # per timed epoch
    repeats: int  # timed epochs (the median is reported)
    warmup: int  # untimed epochs first
    eval_images: int
    eval_batch_size: int

    @property
    def images(self) -> int:
        return self.batch_size * self.batches


def default_budget(device: torch.device, quick: bool) -> Budget:
    # Validation at the protocols' batch, 256 (a sampled mask per batch, as runs validate).
    if not quick:
        return Budget(256, math.ceil(TRAIN_IMAGES / 256), 3, 1, VAL_IMAGES, 256)
    if device.type == "cuda":
        return Budget(256, 20, 3, 1, 5 * 1024, 256)
    return Budget(64, 2, 2, 1, 128, 128)


def generated_data(n_train: int, n_val: int, device: torch.device, seed: int = 0,
                   dataset: str = "cifar10") -> DeviceData:
    """Random uint8 images and labels of the data set's shape, on the device."""
    info = DATASET_INFO[dataset]
    generator = torch.Generator().manual_seed(seed)
    shape = (info.in_channels, info.image_size, info.image_size)

    def split(n: int) -> Split:
        images = torch.randint(0, 256, (n, *shape), generator=generator, dtype=torch.uint8)
        labels = torch.randint(0, info.num_classes, (n,), generator=generator)
        return Split(images, labels).to(device)

    return DeviceData(info, split(n_train), split(n_val), split(n_val))


def _smart_rescale_overrides(name: str) -> dict[str, str] | None:
    """The ``--set`` overrides of ``NAME+sr``: ``method.smart_rescale=true`` where the method's
    options have the paper's boolean ``smart_rescale``, else None (the method has no SR)."""
    option = {f.name: f for f in dataclasses.fields(methods.get(name).Options)}.get("smart_rescale")
    if option is None or not isinstance(option.default, bool):
        return None
    return {"method.smart_rescale": "true"}


def method_choices() -> list[str]:
    """Every method value the study accepts: the registered methods, each followed by NAME+sr
    where it declares a smart rescale."""
    return [value for name in methods.names()
            for value in ((name, name + SMART_RESCALE) if _smart_rescale_overrides(name) is not None
                          else (name,))]


def method_spec(value: str) -> tuple[str, dict[str, str]]:
    """The registered method that a method value of the study names, and the option overrides it
    adds (``NAME+sr``: what the method declares, ``method.smart_rescale=true`` for the built-in
    ones). An OptionError says why another value is not a method and lists the registered ones."""
    name = value.removesuffix(SMART_RESCALE)
    registered = methods.names()
    with_sr = [n for n in registered if _smart_rescale_overrides(n) is not None]
    allowed = (f"registered methods: {', '.join(registered)}; NAME{SMART_RESCALE} where the method "
               f"declares a smart rescale: {', '.join(n + SMART_RESCALE for n in with_sr) or 'none'}")
    if name not in registered:
        raise OptionError(f"unknown method {name!r}; {allowed}")
    if name == value:
        return name, {}
    overrides = _smart_rescale_overrides(name)
    if overrides is None:
        raise OptionError(f"{name} has no smart rescale (no boolean option smart_rescale), so "
                          f"{value!r} is not a method value; {allowed}")
    return name, overrides


def method_config(protocol: str, method: str, seed: int,
                  overrides: dict[str, str] | None = None) -> RunConfig:
    """The engine's validated configuration of a method value of the study (NAME or NAME+sr)."""
    name, method_overrides = method_spec(method)
    return make_config(protocol, name, seed, {**method_overrides, **(overrides or {})})


def seed_batch_refusal(method: str, dataset: str) -> str | None:
    """Why the method value cannot train several seeds of one configuration together, or None: the
    method declares it (any network of the data set would do)."""
    return method_config(f"{dataset}-conv2", method, 0).traits.seed_batch_refusal


def ours_trainer(network: str, method: str, device: torch.device, data: DeviceData, budget: Budget,
                 variant: dict[str, str] | None = None, seed: int = 0) -> Trainer:
    """A run of the suite built as runner.execute builds it, on ``data``, ready to train."""
    overrides = {"augmentation": "true", "batch_size": str(budget.batch_size),
                 "eval_batch_size": str(budget.eval_batch_size), **(variant or {})}
    config = method_config(f"{data.info.name}-{network}", method, seed, overrides)
    parts = build_run(config, device, data=data)
    trainer = Trainer(parts.model, parts.method, parts.data, config.recipe, parts.generators)
    trainer.begin_epoch()
    return trainer


def reference_run(network: str, method: str, info: DatasetInfo,
                  device: torch.device) -> ref.ReferenceRun:
    """The re-created official pipeline's run of a method value of the study. NAME+sr gives the
    method smart_rescale and with it a second optimiser: the reference then steps twice a batch."""
    name, overrides = method_spec(method)
    return ref.ReferenceRun(network, name, info, device,
                            method_options={"smart_rescale": True} if overrides else {})


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _rate(images: int, seconds: float) -> float:
    return images / seconds if seconds > 0 else float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = resolve_device(args.device)
        self.budget = dataclasses.replace(
            default_budget(self.device, args.quick),
            **{k: v for k, v in (("batch_size", args.batch_size), ("batches", args.batches),
                                 ("repeats", args.repeats), ("warmup", args.warmup),
                                 ("eval_images", args.eval_images)) if v is not None})
        self.workers = args.reference_workers
        self.memory_kind = PeakMemory(self.device).kind
        self.dataset = args.dataset
        self.info = DATASET_INFO[self.dataset]
        self.notes: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.eval_rows: list[dict[str, Any]] = []
        self.reference: dict[tuple[str, str], dict[str, Any]] = {}

    # -- shared inputs ------------------------------------------------------------------------------
    def setup(self) -> None:
        b = self.budget
        set_deterministic(self.device, False)  # cudnn.benchmark on, as a run sets it
        self.data = generated_data(b.images, b.eval_images, self.device, dataset=self.dataset)
        self.data_bytes = sum(t.numel() * t.element_size() for t in
                              (self.data.train.images, self.data.val.images))
        train_set = ref.GeneratedImages(b.images, self.info, seed=1,
                                        transform=ref.official_transforms(self.info, train=True))
        val_set = ref.GeneratedImages(b.eval_images, self.info, seed=2,
                                      transform=ref.official_transforms(self.info, train=False))
        self.train_loader = ref.make_loader(train_set, b.batch_size, self.workers, shuffle=True)
        self.val_loader = ref.make_loader(val_set, 256, self.workers, shuffle=False)

    def close(self) -> None:
        for loader in (getattr(self, "train_loader", None), getattr(self, "val_loader", None)):
            iterator = getattr(loader, "_iterator", None)
            if iterator is not None and hasattr(iterator, "_shutdown_workers"):
                iterator._shutdown_workers()

    def _free(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- one configuration --------------------------------------------------------------------------
    def measure_pair(self, network: str, method: str) -> Trainer:
        """The default pipelines of ours and the reference, interleaved epoch by epoch; returns
        ours' trainer (the paired baseline of the variant rows)."""
        b = self.budget
        with PeakMemory(self.device) as ours_memory:
            trainer = ours_trainer(network, method, self.device, self.data, b)
            for _ in range(b.warmup):
                trainer.train_epoch()
        with PeakMemory(self.device) as reference_memory:
            run = reference_run(network, method, self.info, self.device)
            for _ in range(b.warmup):
                run.train_epoch(self.train_loader)
            sync(self.device)
        ours_s, reference_s = [], []
        for _ in range(b.repeats):
            ours_s.append(timed(self.device, trainer.train_epoch))
            reference_s.append(timed(self.device, lambda: run.train_epoch(self.train_loader)))
        self.reference[(network, method)] = {"epoch_s": reference_s,
                                             "peak": reference_memory.bytes}
        row = self._row(network, method, "default", ours_s, ours_memory.bytes)
        row["checkpoint_s"] = self.checkpoint_seconds(trainer)
        row["evaluation_samples"] = trainer.method.traits().evaluation_samples
        self.rows.append(row)
        self.measure_eval(network, method, trainer, run)
        return trainer

    def checkpoint_seconds(self, trainer: Trainer) -> float:
        """Median seconds of writing the run's checkpoint as a run writes it (atomic, SHA-256,
        fsync), into a temporary folder."""
        with tempfile.TemporaryDirectory(prefix="subnetbench-speed-") as folder:
            path = Path(folder) / "checkpoint.pt"
            return _median([timed(self.device, lambda: atomic_torch_save(path, trainer.state_dict()))
                            for _ in range(self.budget.repeats)])

    def measure_eval(self, network: str, method: str, trainer: Trainer,
                     run: ref.ReferenceRun) -> None:
        """Validation throughput (forward only) of both pipelines, for the grid estimate: ours
        validates as a run does (:meth:`Trainer.validate`: sampled masks where the method and
        recipe say so, the recipe's batch)."""
        b = self.budget
        val = self.data.val

        def ours() -> None:
            trainer.validate()

        def reference() -> None:
            run.evaluate(self.val_loader)

        for _ in range(b.warmup):
            ours()
            reference()
        ours_s, reference_s = [], []
        for _ in range(b.repeats):
            ours_s.append(timed(self.device, ours))
            reference_s.append(timed(self.device, reference))
        self.eval_rows.append({
            "network": network, "method": method, "device": self.device.type, "images": len(val),
            "ours_images_per_s": _rate(len(val), _median(ours_s)),
            "reference_images_per_s": _rate(len(val), _median(reference_s)),
            "ours_epoch_s_all": ours_s, "reference_epoch_s_all": reference_s,
        })

    def _paired(self, baseline: Trainer, work: Callable[[], Any]) -> tuple[list[float], list[float]]:
        """Timed epochs of ``work`` interleaved with epochs of the default ``baseline``."""
        work_s, baseline_s = [], []
        for _ in range(self.budget.repeats):
            baseline_s.append(timed(self.device, baseline.train_epoch))
            work_s.append(timed(self.device, work))
        return work_s, baseline_s

    def measure_variant(self, network: str, method: str, variant: str, baseline: Trainer) -> None:
        b = self.budget
        if variant == "fast":
            overrides = {"channels_last": "true", "compile": "true", "autocast": "bf16"}
        else:
            overrides = VARIANT_OVERRIDES[variant]
        with PeakMemory(self.device) as memory:
            trainer = ours_trainer(network, method, self.device, self.data, b, overrides)
            first_s = timed(self.device, trainer.train_epoch)  # warm-up (compilation with compile)
            for _ in range(b.warmup - 1):
                trainer.train_epoch()
        ours_s, baseline_s = self._paired(baseline, trainer.train_epoch)
        row = self._row(network, method, variant, ours_s, memory.bytes, baseline_s=baseline_s)
        row["first_epoch_s"] = first_s
        self.rows.append(row)

    def measure_seed_batch(self, network: str, method: str, k: int, mode: str,
                           baseline: Trainer) -> None:
        b = self.budget
        check_batchable([method_config(f"{self.dataset}-{network}", method, seed)
                         for seed in range(k)])
        with PeakMemory(self.device) as memory:
            trainers = [ours_trainer(network, method, self.device, self.data, b, seed=seed)
                        for seed in range(k)]
            forward = grouped_forward if mode == "grouped" else separate_forward
            for _ in range(b.warmup):
                train_epoch(trainers, forward)
        ours_s, baseline_s = self._paired(baseline, lambda: train_epoch(trainers, forward))
        row = self._row(network, method, "default", ours_s, memory.bytes, images_factor=k,
                        baseline_s=baseline_s)
        row.update(seeds_batched=k, seed_batch_mode=mode,
                   per_seed_images_per_s=row["ours_images_per_s"] / k)
        self.rows.append(row)

    def _row(self, network: str, method: str, variant: str, ours_s: list[float], peak: int,
             images_factor: int = 1, baseline_s: list[float] | None = None) -> dict[str, Any]:
        """A row of the table. With ``baseline_s`` (epochs of ours' default pipeline timed in
        alternation with these), ``speedup_vs_default`` compares the two."""
        images = self.budget.images
        reference = self.reference.get((network, method))
        ours_ips = _rate(images * images_factor, _median(ours_s))
        reference_ips = _rate(images, _median(reference["epoch_s"])) if reference else None
        # Every update pass a batch (alternating smart rescale: two) is a forward and a backward.
        passes = method_config(f"{self.dataset}-{network}", method, 0).traits.update_pass_count
        flop = passes * train_flop_per_image(network, self.dataset)
        row = {
            "network": network, "method": method, "device": self.device.type, "variant": variant,
            "seeds_batched": None, "seed_batch_mode": None, "batch_size": self.budget.batch_size,
            "images_per_epoch": images,
            "ours_images_per_s": ours_ips,
            "reference_images_per_s": reference_ips,
            "ratio": ours_ips / reference_ips if reference_ips else None,
            "ours_epoch_s": _median(ours_s), "ours_epoch_s_all": ours_s,
            "reference_epoch_s": _median(reference["epoch_s"]) if reference else None,
            "reference_epoch_s_all": reference["epoch_s"] if reference else None,
            "peak_memory_kind": self.memory_kind,
            "ours_peak_memory_bytes": peak,
            "reference_peak_memory_bytes": reference["peak"] if reference else None,
            "update_passes": passes, "train_flop_per_image": flop,
            "ours_flop_per_s": ours_ips * flop,
            "reference_flop_per_s": reference_ips * flop if reference_ips else None,
        }
        if baseline_s is not None:
            row["default_epoch_s_all"] = baseline_s
            row["speedup_vs_default"] = ours_ips / _rate(images, _median(baseline_s))
        return row

    # -- the whole table --------------------------------------------------------------------------
    def warm_up(self) -> None:
        """One untimed epoch of each pipeline before the first measurement: the process's first
        epochs pay one-off costs (worker start, allocator growth, kernel selection) that would
        otherwise land on the first row."""
        network, method = self.args.networks[0], self.args.methods[0]
        trainer = ours_trainer(network, method, self.device, self.data, self.budget)
        trainer.train_epoch()
        run = reference_run(network, method, self.info, self.device)
        run.train_epoch(self.train_loader)
        run.evaluate(self.val_loader)
        sync(self.device)

    def run(self) -> dict[str, Any]:
        a = self.args
        self.setup()
        try:
            if a.networks and a.methods:
                self._progress("warm-up")
                self.warm_up()
                self._free()
            for network in a.networks:
                for method in a.methods:
                    self._progress(f"{network} {method}: ours and reference")
                    baseline = self.attempt("default", self.measure_pair, network, method)
                    if baseline is not None and method in a.variant_methods:
                        for variant in a.variants:
                            self._progress(f"{network} {method}: {variant}")
                            self.attempt(variant, self.measure_variant, network, method, variant,
                                         baseline)
                            self._free()
                    del baseline
                    self._free()
            for network in a.seed_networks:
                method = a.seed_method
                if (network, method) not in self.reference:
                    self._progress(f"{network} {method}: ours and reference (for seed batches)")
                    if self.attempt("default", self.measure_pair, network, method) is None:
                        continue
                    self._free()
                baseline = ours_trainer(network, method, self.device, self.data, self.budget)
                baseline.train_epoch()
                for mode in a.seed_modes:
                    for k in (a.seed_batches if mode != "grouped" else a.grouped_seed_batches):
                        self._progress(f"{network} {method}: {k} seeds batched ({mode})")
                        self.attempt("default", self.measure_seed_batch, network, method, k, mode,
                                     baseline, seeds_batched=k, seed_batch_mode=mode)
                        self._free()
                del baseline
                self._free()
        finally:
            self.close()
        return self.report()

    def attempt(self, variant: str, measure: Callable[..., Any], network: str, method: str,
                *args: Any, seeds_batched: int | None = None,
                seed_batch_mode: str | None = None) -> Any:
        """What ``measure(network, method, *args)`` returns; if it raises, a row that says so
        (``error``) instead, and None: one row that fails (a method that does not compile, memory)
        never loses the others. The variants of a failed default row are not measured (they are
        timed against it)."""
        try:
            return measure(network, method, *args)
        except Exception as error:  # noqa: BLE001 - recorded in the row, the study goes on
            self.rows.append({
                "network": network, "method": method, "device": self.device.type,
                "variant": variant, "seeds_batched": seeds_batched,
                "seed_batch_mode": seed_batch_mode, "error": f"{type(error).__name__}: "
                                                            f"{' '.join(str(error).split())}"})
            self._progress(f"{network} {method} {variant}: FAILED ({type(error).__name__})")
            self._free()
            return None

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _progress(self, text: str) -> None:
        if not self.args.silent:
            print(f"  measuring {text}", file=sys.stderr, flush=True)

    def report(self) -> dict[str, Any]:
        b = self.budget
        device_name = (torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                       else platform.processor() or platform.machine())
        if b.images != TRAIN_IMAGES:
            self._note(f"epochs of {b.batches} batches of {b.batch_size} ({b.images} images) were "
                       f"timed, not full {TRAIN_IMAGES}-image epochs (per-epoch costs weigh more)")
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "device": self.device.type, "device_name": device_name,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "quick": self.args.quick,
            "budget": dataclasses.asdict(b),
            "reference_workers": self.workers,
            "peak_memory_kind": self.memory_kind,
            "ours_data_bytes": self.data_bytes,
            "rows": self.rows,
            "failed_rows": sum("error" in r for r in self.rows),
            "eval": self.eval_rows,
            "dataset": self.dataset,
            # The grid is CIFAR's (45,000 + 5,000 images of 3 x 32 x 32 per epoch).
            "grid_estimate": (grid_estimate(self.rows, self.eval_rows, self.args.epochs_to_best)
                              if self.dataset != "digits" else None),
            "notes": self.notes,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
