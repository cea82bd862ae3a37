"""Training throughput of the suite against a re-creation of the official pipeline, side by side.

    python -m benchmark.speed [--device cpu|cuda] [--quick] [--networks conv2,conv4]
                              [--methods aslp,dense] [--variants channels_last,bf16,compile]
                              [--seed-batches 1,2,4,8] [--json PATH]

For every network and method it times training epochs of two pipelines in one process, interleaved
(ours, reference, ours, reference...) after untimed warm-up epochs, and reports the median:

- ``reference``: :mod:`benchmark.reference_pipeline` (PIL transforms in DataLoader worker processes,
  host-to-device copies per batch, the official two-Gumbel ASLP masks, a host read per step);
- ``ours``: the suite's training path, :meth:`Trainer.train_epoch` over uint8 data on the device
  with augmentation on, built as :func:`runner.build_run` builds a run.

Both train on generated data of CIFAR-10's shape (3 x 32 x 32, 10 classes; the speed does not
depend on the pixel values). Epoch times come from CUDA events on a GPU and ``time.perf_counter``
on a CPU. Further rows time the fast-path options of the recipe (``variant``: ``channels_last``,
``bf16`` autocast on CUDA only, ``compile``; ``fast`` is all that apply together) and the seed-batched
training of :func:`benchmark.runner.execute_runs` (``seeds_batched`` = k seeds in one process; the
throughput is the aggregate over the k seeds).

Every row of the JSON (``--json``) has: ``network``, ``method``, ``device``, ``variant``,
``seeds_batched`` (null for single-seed rows), ``seed_batch_mode``, ``batch_size``,
``ours_images_per_s``, ``reference_images_per_s`` (the reference's default pipeline),
``ratio`` (ours / reference), ``ours_epoch_s`` and ``reference_epoch_s`` (medians; the per-epoch
lists in ``*_epoch_s_all``), ``peak_memory_kind``, ``ours_peak_memory_bytes``,
``reference_peak_memory_bytes``, ``train_flop_per_image`` and ``ours_flop_per_s`` /
``reference_flop_per_s`` (achieved FLOP/s).

Peak memory (``peak_memory_kind``): on CUDA ``torch.cuda.max_memory_allocated`` while the pipeline
is built and warmed up, less what was allocated before (its model, optimiser states and activations;
our uint8 data set on the device is shared by the rows and reported once as ``ours_data_bytes``). On
a CPU the growth of the main process's peak resident set (``resource.getrusage(...).ru_maxrss``)
over the same block, after the allocator's free pages are given back (glibc ``malloc_trim``) and the
peak is reset to the current resident set through ``/proc/self/clear_refs`` (Linux; without it the
growth of the lifetime peak, a lower bound). Memory that PyTorch's CPU allocator or glibc keeps
between rows can still make a figure low. The reference's worker processes are not counted.

FLOPs: multiply-accumulates of the conv and linear layers counted from the network's shapes, 2 FLOP
each; a training step is counted as 3 forward passes (forward, gradient of the input and of the
weights). Mask sampling and elementwise work are not counted.

The grid estimate: the paper's grid (Conv2/4/6 x {aslp, aslp+SR, supermask, edge_popup} x {SC, no
SC} x 5 seeds = 120 runs) at the official budget (45,000 training and 5,000 validation images per
epoch, up to 1000 epochs, early stopping with patience 100) from the measured epoch times. The mean
epochs per run is an ASSUMPTION, not a measurement: epochs to the best validation accuracy
(``--epochs-to-best``, default 200) plus the patience; the 1000-epoch cap is printed as the upper
bound. SC does not change the cost. aslp+SR costs what aslp costs in ours (one scalar per layer); in
the reference it costs two training steps per batch (Lightning 1.x runs ``training_step`` once per
optimiser), unless ``aslp+sr`` is measured (``--methods aslp+sr``).

On a CPU the main process trains with one torch thread by default (``--threads``), as
``subnetbench run`` does there; the reference's DataLoader workers run beside it.

``--quick`` times a few batches per configuration instead of full epochs (on a CPU also with batch 64
instead of 256, so that the table takes minutes on two cores: per-step costs such as mask sampling
then weigh 4 times more per image than at batch 256, in both pipelines).
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from subnetbench.benchmark.data import DATASET_INFO, DeviceData, Split
from subnetbench.benchmark.grouped import grouped_forward, resolve_mode
from subnetbench.benchmark.networks import ConvNet, build_network
from subnetbench.benchmark.results import atomic_write_bytes
from subnetbench.benchmark.runner import build_run, check_batchable, make_config, resolve_device
from subnetbench.benchmark.speed import reference_pipeline as ref
from subnetbench.benchmark.training import Trainer, accuracy, separate_forward, train_epoch
from subnetbench.methods.base import OptionError

NETWORKS = ("conv2", "conv4", "conv6")
METHODS = ("aslp", "supermask", "edge_popup", "dense")
EXTRA_METHODS = ("aslp+sr",)  # aslp with smart rescale (the reference then steps twice per batch)
VARIANTS = ("channels_last", "bf16", "compile", "fast")
VARIANT_OVERRIDES = {
    "default": {},
    "channels_last": {"channels_last": "true"},
    "bf16": {"autocast": "bf16"},
    "compile": {"compile": "true"},
}
DATASETS = ("cifar10", "cifar100", "digits")  # digits: a tiny smoke run; the grid is CIFAR's
TRAIN_IMAGES = 45_000  # CIFAR-10's 50,000 training images less the 10% validation split
VAL_IMAGES = 5_000
GRID_METHODS = ("aslp", "aslp+sr", "supermask", "edge_popup")
GRID_SEEDS = 5
GRID_SIGNED_CONSTANT = 2  # with and without SC: same cost
MAX_EPOCHS = 1000
PATIENCE = 100
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
    if not quick:
        return Budget(256, math.ceil(TRAIN_IMAGES / 256), 3, 1, VAL_IMAGES, 1024)
    if device.type == "cuda":
        return Budget(256, 20, 3, 1, 5 * 1024, 1024)
    return Budget(64, 2, 2, 1, 128, 128)


# -- measuring ------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work: Callable[[], Any]) -> float:
    """Seconds of ``work()`` on the device: CUDA events on a GPU, perf_counter on a CPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        work()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


class PeakMemory:
    """Peak memory a block adds, by the best means of the device:

    - ``cuda_max_memory_allocated``: torch.cuda.max_memory_allocated less the allocation before;
    - ``cpu_peak_rss_growth`` (Linux): the process's peak resident set is reset to the current one
      (``/proc/self/clear_refs``), then ``resource.getrusage(...).ru_maxrss`` less that;
    - ``cpu_ru_maxrss_growth`` (no reset possible): growth of the process's lifetime peak, a lower
      bound (0 when the process had already peaked higher).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.bytes = 0
        self.kind = ("cuda_max_memory_allocated" if device.type == "cuda" else
                     "cpu_peak_rss_growth" if _can_reset_peak_rss() else "cpu_ru_maxrss_growth")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            _sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        elif self.kind == "cpu_peak_rss_growth":
            gc.collect()
            _release_free_memory()
            _reset_peak_rss()
            self.base = _rss_bytes()
        else:
            self.base = _maxrss_bytes()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            _sync(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self.bytes = max(0, _maxrss_bytes() - self.base)


def _maxrss_bytes() -> int:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib if sys.platform == "darwin" else kib * 1024  # Linux reports KiB, macOS bytes


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_free_memory() -> None:
    """Give the allocator's free pages back (glibc malloc_trim), so that a block's growth is not
    hidden by memory that earlier rows freed but the process kept."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets the peak resident set (VmHWM, ru_maxrss) to the current one


def _can_reset_peak_rss() -> bool:
    try:
        _reset_peak_rss()
        _rss_bytes()
    except OSError:
        return False
    return True


def forward_macs(model: nn.Module, image_size: int) -> int:
    """Multiply-accumulates of one image's forward pass through a Conv-k network (conv + linear)."""
    if not isinstance(model, ConvNet):
        raise TypeError("forward_macs counts the Conv-k networks")
    macs, size = 0, image_size
    for module in model.features:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs += size * size * module.out_channels * module.in_channels * kh * kw // module.groups
        elif isinstance(module, nn.MaxPool2d):
            size = math.ceil(size / 2)
    for module in model.classifier:
        if isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features
    return macs


def train_flop_per_image(network: str, dataset: str = "cifar10") -> int:
    info = DATASET_INFO[dataset]
    model = build_network(network, info.in_channels, info.image_size, info.num_classes)
    return 3 * 2 * forward_macs(model, info.image_size)


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


def _method_spec(name: str) -> tuple[str, dict[str, str]]:
    if name == "aslp+sr":
        return "aslp", {"method.smart_rescale": "true"}
    return name, {}


def ours_trainer(network: str, method: str, device: torch.device, data: DeviceData, budget: Budget,
                 variant: dict[str, str] | None = None, seed: int = 0) -> Trainer:
    """A run of the suite built as runner.execute builds it, on ``data``, ready to train."""
    name, method_overrides = _method_spec(method)
    overrides = {"augmentation": "true", "batch_size": str(budget.batch_size),
                 "eval_batch_size": str(budget.eval_batch_size), **method_overrides,
                 **(variant or {})}
    config = make_config(f"{data.info.name}-{network}", name, seed, overrides)
    parts = build_run(config, device, data=data)
    trainer = Trainer(parts.model, parts.method, parts.data, config.recipe, parts.generators)
    trainer.begin_epoch()
    return trainer


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
        name, overrides = _method_spec(method)
        options = {"smart_rescale": True} if overrides else {}
        with PeakMemory(self.device) as ours_memory:
            trainer = ours_trainer(network, method, self.device, self.data, b)
            for _ in range(b.warmup):
                trainer.train_epoch()
        with PeakMemory(self.device) as reference_memory:
            run = ref.ReferenceRun(network, name, self.info, self.device, method_options=options)
            for _ in range(b.warmup):
                run.train_epoch(self.train_loader)
            _sync(self.device)
        ours_s, reference_s = [], []
        for _ in range(b.repeats):
            ours_s.append(timed(self.device, trainer.train_epoch))
            reference_s.append(timed(self.device, lambda: run.train_epoch(self.train_loader)))
        self.reference[(network, method)] = {"epoch_s": reference_s,
                                             "peak": reference_memory.bytes}
        self.rows.append(self._row(network, method, "default", ours_s, ours_memory.bytes))
        if network not in {r["network"] for r in self.eval_rows}:
            self.measure_eval(network, trainer, run)
        return trainer

    def measure_eval(self, network: str, trainer: Trainer, run: ref.ReferenceRun) -> None:
        """Validation throughput (forward only) of both pipelines, for the grid estimate."""
        b = self.budget
        val = self.data.val

        def ours() -> None:
            trainer.model.eval()
            accuracy(trainer.model, val, trainer.preprocess, b.eval_batch_size)

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
            "network": network, "device": self.device.type, "images": len(val),
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
            overrides = {"channels_last": "true", "compile": "true"}
            if self.device.type == "cuda":
                overrides["autocast"] = "bf16"
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
        name, overrides = _method_spec(method)
        check_batchable([make_config(f"{self.dataset}-{network}", name, seed, overrides)
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
        flop = train_flop_per_image(network, self.dataset)
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
            "train_flop_per_image": flop,
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
        name, overrides = _method_spec(method)
        trainer = ours_trainer(network, method, self.device, self.data, self.budget)
        trainer.train_epoch()
        run = ref.ReferenceRun(network, name, self.info, self.device,
                               method_options={"smart_rescale": True} if overrides else {})
        run.train_epoch(self.train_loader)
        run.evaluate(self.val_loader)
        _sync(self.device)

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
                    baseline = self.measure_pair(network, method)
                    if method in a.variant_methods:
                        for variant in a.variants:
                            if variant == "bf16" and self.device.type != "cuda":
                                self._note("bf16 autocast is only used on CUDA: not measured here")
                                continue
                            self._progress(f"{network} {method}: {variant}")
                            self.measure_variant(network, method, variant, baseline)
                            self._free()
                    del baseline
                    self._free()
            for network in a.seed_networks:
                method = a.seed_method
                if (network, method) not in self.reference:
                    self._progress(f"{network} {method}: ours and reference (for seed batches)")
                    self.measure_pair(network, method)
                    self._free()
                baseline = ours_trainer(network, method, self.device, self.data, self.budget)
                baseline.train_epoch()
                for mode in a.seed_modes:
                    for k in (a.seed_batches if mode != "grouped" else a.grouped_seed_batches):
                        self._progress(f"{network} {method}: {k} seeds batched ({mode})")
                        self.measure_seed_batch(network, method, k, mode, baseline)
                        self._free()
                del baseline
                self._free()
        finally:
            self.close()
        return self.report()

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
            "eval": self.eval_rows,
            "dataset": self.dataset,
            # The grid is CIFAR's (45,000 + 5,000 images of 3 x 32 x 32 per epoch).
            "grid_estimate": (grid_estimate(self.rows, self.eval_rows, self.args.epochs_to_best)
                              if self.dataset != "digits" else None),
            "notes": self.notes,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


# -- the paper's grid ------------------------------------------------------------------------------
def grid_estimate(rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]],
                  epochs_to_best: int) -> dict[str, Any]:
    """Hours of the paper's grid from measured throughputs (see the module docstring)."""
    epochs = min(MAX_EPOCHS, epochs_to_best + PATIENCE)
    single = {(r["network"], r["method"]): r for r in rows
              if r["variant"] == "default" and r["seeds_batched"] is None}
    evals = {r["network"]: r for r in eval_rows}
    measured = {n for n, _ in single} & set(evals)
    networks = [n for n in (*NETWORKS, "conv8") if n in measured]
    totals = {"ours": 0.0, "reference": 0.0, "ours_seed_batched": 0.0}
    cells, missing, seed_batching = [], [], {}
    for network in networks:
        seed_speedup, seed_k = _seed_speedup(rows, network)
        seed_batching[network] = {"k": seed_k, "speedup": seed_speedup}
        for method in GRID_METHODS:
            row = single.get((network, method))
            reference_factor = 1.0
            if row is None and method == "aslp+sr" and (network, "aslp") in single:
                row, reference_factor = single[(network, "aslp")], 2.0  # Lightning: 2 steps a batch
            if row is None:
                missing.append(f"{network} {method}")
                continue
            ev = evals[network]
            ours_epoch = TRAIN_IMAGES / row["ours_images_per_s"] + VAL_IMAGES / ev["ours_images_per_s"]
            reference_epoch = (reference_factor * TRAIN_IMAGES / row["reference_images_per_s"]
                               + VAL_IMAGES / ev["reference_images_per_s"])
            batched_epoch = (TRAIN_IMAGES / (row["ours_images_per_s"] * seed_speedup)
                             + VAL_IMAGES / ev["ours_images_per_s"])
            runs = GRID_SIGNED_CONSTANT * GRID_SEEDS
            cell = {"network": network, "method": method, "runs": runs, "epochs_per_run": epochs,
                    "ours_epoch_s": ours_epoch, "reference_epoch_s": reference_epoch,
                    "ours_seed_batched_epoch_s": batched_epoch, "seed_batch_k": seed_k,
                    "reference_estimated_from_aslp": reference_factor != 1.0}
            cells.append(cell)
            totals["ours"] += runs * epochs * ours_epoch
            totals["reference"] += runs * epochs * reference_epoch
            totals["ours_seed_batched"] += runs * epochs * batched_epoch
    return {
        "runs": len(NETWORKS) * len(GRID_METHODS) * GRID_SIGNED_CONSTANT * GRID_SEEDS,
        "assumed_epochs_to_best": epochs_to_best,
        "epochs_per_run": epochs,
        "assumption": (f"every run trains {epochs_to_best} epochs to its best validation accuracy "
                       f"(an assumption, not a measurement) plus the patience of {PATIENCE}; the "
                       f"upper bound is the cap of {MAX_EPOCHS} epochs"),
        "train_images_per_epoch": TRAIN_IMAGES, "val_images_per_epoch": VAL_IMAGES,
        "ours_hours": totals["ours"] / 3600,
        "reference_hours": totals["reference"] / 3600,
        "ours_seed_batched_hours": totals["ours_seed_batched"] / 3600,
        "ours_hours_upper_bound": totals["ours"] / 3600 * MAX_EPOCHS / epochs,
        "reference_hours_upper_bound": totals["reference"] / 3600 * MAX_EPOCHS / epochs,
        "speedup": totals["reference"] / totals["ours"] if totals["ours"] else None,
        "seed_batching": seed_batching,
        "seed_batching_note": ("the best measured seed batch of each network (rows with "
                               "seeds_batched, any method) applied to every method of it; 1.0 "
                               "where none was measured or none paid"),
        "cells": cells,
        "missing": missing,
    }


def _seed_speedup(rows: list[dict[str, Any]], network: str) -> tuple[float, int]:
    """Speedup of the seeds of one configuration (5 in the grid) trained in batches of k over
    separate runs, from the seed-batched rows of ``network`` (their ``speedup_vs_default``: the
    aggregate throughput over that of the plain pipeline timed in alternation); batches of k, the
    rest in one smaller batch; the best k and mode measured. (1.0, 1) without such rows."""
    by_mode: dict[str, dict[int, float]] = {}
    for r in rows:
        if (r["network"] == network and r["seeds_batched"] is not None
                and r.get("speedup_vs_default")):
            by_mode.setdefault(r["seed_batch_mode"], {})[r["seeds_batched"]] = r["speedup_vs_default"]
    best, best_k = 1.0, 1
    for speedups in by_mode.values():
        for k in sorted(speedups):
            rest = GRID_SEEDS % k
            if k > GRID_SEEDS or (rest and rest not in speedups):
                continue
            # time of the 5 seeds in units of one plain single-seed epoch
            seconds = (GRID_SEEDS // k) * k / speedups[k] + (rest / speedups[rest] if rest else 0.0)
            if GRID_SEEDS / seconds > best:
                best, best_k = GRID_SEEDS / seconds, k
    return best, best_k


# -- output ---------------------------------------------------------------------------------------
def format_table(result: dict[str, Any]) -> str:
    b = result["budget"]
    lines = [f"device {result['device']} ({result['device_name']}), torch {result['torch']}, "
             f"{result['torch_threads']} threads, reference workers {result['reference_workers']}, "
             f"batch {b['batch_size']}, {b['batches']} batches per timed epoch, median of "
             f"{b['repeats']} after {b['warmup']} warm-up" + (" (--quick)" if result["quick"] else ""),
             "",
             f"{'network':<7} {'method':<10} {'variant':<13} {'k':>2} {'ours img/s':>11} "
             f"{'ref img/s':>10} {'ratio':>6} {'vs default':>10} {'ours GFLOP/s':>12} "
             f"{'ours peak MiB':>13} {'ref peak MiB':>12}"]
    for r in result["rows"]:
        k = "" if r["seeds_batched"] is None else str(r["seeds_batched"])
        variant = r["variant"] if r["seed_batch_mode"] is None else f"seeds:{r['seed_batch_mode']}"
        ref_ips = r["reference_images_per_s"]
        speedup = r.get("speedup_vs_default")
        ref_peak = r["reference_peak_memory_bytes"]
        lines.append(
            f"{r['network']:<7} {r['method']:<10} {variant:<13} {k:>2} "
            f"{r['ours_images_per_s']:>11.1f} "
            f"{ref_ips if ref_ips is None else format(ref_ips, '.1f'):>10} "
            f"{'' if r['ratio'] is None else format(r['ratio'], '.2f'):>6} "
            f"{'' if speedup is None else format(speedup, '.2f'):>10} "
            f"{r['ours_flop_per_s'] / 1e9:>12.1f} "
            f"{r['ours_peak_memory_bytes'] / 2**20:>13.1f} "
            f"{'' if ref_peak is None else format(ref_peak / 2**20, '.1f'):>12}")
    lines.append(f"(peak memory: {result['peak_memory_kind']})")
    if result["eval"]:
        lines += ["", "validation (forward only): " + ", ".join(
            f"{e['network']} ours {e['ours_images_per_s']:.0f} img/s, reference "
            f"{e['reference_images_per_s']:.0f} img/s" for e in result["eval"])]
    g = result["grid_estimate"] or {"runs": 0, "cells": [], "missing": []}
    if result["grid_estimate"] is not None:
        lines += ["", f"the paper's grid ({g['runs']} runs; {g['assumption']}):"]
    if g["cells"]:
        speedup = "" if g["speedup"] is None else f" (ours {g['speedup']:.2f}x faster)"
        lines += [
            f"  reference pipeline: {g['reference_hours']:.1f} h "
            f"(upper bound {g['reference_hours_upper_bound']:.1f} h)",
            f"  ours:               {g['ours_hours']:.1f} h "
            f"(upper bound {g['ours_hours_upper_bound']:.1f} h){speedup}",
            f"  ours, seeds batched: {g['ours_seed_batched_hours']:.1f} h ("
            + ", ".join(f"{n} k={v['k']} x{v['speedup']:.2f}" for n, v in g["seed_batching"].items())
            + ")",
        ]
    if g["missing"]:
        lines.append(f"  not measured, left out: {', '.join(g['missing'])}")
    for note in result["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _csv(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if items == ["none"]:
        return []
    if items == ["all"]:
        return list(allowed)
    for item in items:
        if item not in allowed:
            raise OptionError(f"--{what} {item!r} is not allowed; expected a comma-separated list "
                              f"of {', '.join(allowed)} (or all, none)")
    return items


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmark.speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m benchmark.speed`` and ``subnetbench speed``."""
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--dataset", choices=DATASETS, default="cifar10", help="shape of the "
                        "generated data (default cifar10; digits is a tiny smoke run, no grid "
                        "estimate)")
    parser.add_argument("--quick", action="store_true", help="a few batches per configuration "
                        "instead of full 45,000-image epochs (on a CPU also batch 64)")
    parser.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated networks "
                        f"(default {','.join(NETWORKS)})")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods "
                        f"(default {','.join(METHODS)}; also aslp+sr)")
    parser.add_argument("--variants", help="fast-path variants to time besides the default: "
                        f"{','.join(VARIANTS)}, or none (default: channels_last on a CPU with "
                        "--quick, channels_last,compile on a CPU, all on CUDA)")
    parser.add_argument("--variant-methods", help="methods that get the variant rows (default: "
                        "aslp with --quick on a CPU, else every method)")
    parser.add_argument("--seed-batches", default="1,2,4,8", help="seeds trained together, "
                        "comma-separated, or none (default 1,2,4,8)")
    parser.add_argument("--grouped-seed-batches", help="k of the grouped mode's rows (default: "
                        "--seed-batches; 1,2 with --quick on a CPU, where grouped does not pay)")
    parser.add_argument("--seed-networks", help="networks of the seed-batched rows (default: the "
                        "first network with --quick on a CPU, else every network)")
    parser.add_argument("--seed-method", default="aslp", help="method of the seed-batched rows "
                        "(default aslp)")
    parser.add_argument("--seed-modes", help="seed-batch modes, comma-separated: grouped, loop "
                        "(default: both on a CPU, grouped on CUDA)")
    parser.add_argument("--batch-size", type=int, help="training batch (default 256; 64 with "
                        "--quick on a CPU)")
    parser.add_argument("--batches", type=int, help="batches per timed epoch (default: a full "
                        "epoch; --quick: 2 on a CPU, 20 on CUDA)")
    parser.add_argument("--repeats", type=int, help="timed epochs, the median is reported")
    parser.add_argument("--warmup", type=int, help="untimed epochs before (default 1)")
    parser.add_argument("--eval-images", type=int, help="images of the validation measurement")
    parser.add_argument("--reference-workers", type=int, default=min(10, os.cpu_count() or 1),
                        help="DataLoader worker processes of the reference (default: the official "
                        "code's 10, at most the CPU count)")
    parser.add_argument("--epochs-to-best", type=int, default=200, help="ASSUMED mean epochs to "
                        "the best validation accuracy, for the grid estimate (default 200)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads of the main process "
                        "(default: 1 on a CPU, as subnetbench run trains there; torch's on CUDA)")
    parser.add_argument("--json", metavar="PATH", help="write the result here")
    parser.add_argument("--silent", action="store_true", help="no progress lines on stderr")


def _resolve(args: argparse.Namespace) -> argparse.Namespace:
    device = resolve_device(args.device)
    cpu_quick = args.quick and device.type != "cuda"
    args.networks = _csv(args.networks, NETWORKS + ("conv8",), "networks")
    args.methods = _csv(args.methods, METHODS + EXTRA_METHODS, "methods")
    default_variants = ("channels_last" if cpu_quick else "channels_last,compile"
                        if device.type != "cuda" else ",".join(VARIANTS))
    args.variants = _csv(args.variants or default_variants, VARIANTS, "variants")
    default_variant_methods = "aslp" if cpu_quick else ",".join(args.methods)
    args.variant_methods = _csv(args.variant_methods or default_variant_methods,
                                METHODS + EXTRA_METHODS, "variant-methods")
    try:
        args.seed_batches = ([] if args.seed_batches.strip() == "none" else
                             [int(k) for k in args.seed_batches.split(",") if k.strip()])
    except ValueError:
        raise OptionError(f"--seed-batches {args.seed_batches!r} is not allowed; expected "
                          "comma-separated integers such as 1,2,4,8") from None
    if any(k < 1 for k in args.seed_batches):
        raise OptionError("--seed-batches: every k must be >= 1")
    if args.grouped_seed_batches:
        try:
            args.grouped_seed_batches = [int(k) for k in args.grouped_seed_batches.split(",")
                                         if k.strip()]
        except ValueError:
            raise OptionError(f"--grouped-seed-batches {args.grouped_seed_batches!r} is not "
                              "allowed; expected comma-separated integers") from None
        if any(k < 1 for k in args.grouped_seed_batches):
            raise OptionError("--grouped-seed-batches: every k must be >= 1")
    else:
        args.grouped_seed_batches = ([k for k in args.seed_batches if k <= 2] if cpu_quick
                                     else args.seed_batches)
    default_seed_networks = args.networks[:1] if cpu_quick else args.networks
    args.seed_networks = (_csv(args.seed_networks, NETWORKS + ("conv8",), "seed-networks")
                          if args.seed_networks else default_seed_networks)
    if not args.seed_batches:
        args.seed_networks = []
    if _method_spec(args.seed_method)[0] not in ("aslp", "supermask", "edge_popup", "dense"):
        raise OptionError(f"--seed-method {args.seed_method!r} is not allowed; expected aslp, "
                          "supermask, edge_popup or dense")
    modes = args.seed_modes or ("grouped" if device.type == "cuda" else "loop,grouped")
    args.seed_modes = [resolve_mode(m, device) for m in _csv(modes, ("auto", "grouped", "loop"),
                                                               "seed-modes")]
    for name in ("batch_size", "batches", "repeats", "eval_images"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise OptionError(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup is not None and args.warmup < 1:
        raise OptionError("--warmup must be >= 1 (the first epoch also builds caches)")
    if args.reference_workers < 0:
        raise OptionError("--reference-workers must be >= 0")
    if args.threads is None and device.type == "cpu":
        args.threads = 1
    if args.threads is not None and args.threads < 1:
        raise OptionError("--threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    return main_from_args(args, "python -m benchmark.speed " + " ".join(argv))


def main_from_args(args: argparse.Namespace, command: str) -> int:
    """Measure, print the table and write the JSON (atomically) from parsed arguments."""
    try:
        args = _resolve(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        result = Bench(args).run()
    except OptionError as error:
        print(f"subnetbench speed: error: {error}", file=sys.stderr)
        return 2
    result["table"] = format_table(result)
    result["command"] = command
    print(result["table"])
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, (json.dumps(result, indent=1) + "\n").encode())
        print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
