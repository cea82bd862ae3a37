"""``subnetbench selftest``: before a long grid, check on the device that every part of a run works.

Every registered method trains a few epochs of Conv2, Conv4 and Conv6 at CIFAR's shape through the
real run lifecycle (result file, checkpoints, extraction, the saved subnetwork read back), on
generated data, so that no data set is needed (the accuracies mean nothing). Then the fast paths
(channels_last, bf16 autocast, torch.compile without falling back to eager), a seed batch against
its seeds run alone, and a resumed and a repeated ``--deterministic`` run against the whole run.
Each check says PASS, FAIL or SKIP, and why; everything is written to a temporary folder.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from subnetbench import methods
from subnetbench.benchmark.compile_counts import counted_compiles
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.data import DATASET_INFO, Split
from subnetbench.benchmark.device import resolve_device
from subnetbench.benchmark.grouped import resolve_mode
from subnetbench.benchmark.results import cpu_model
from subnetbench.benchmark.runner import execute_runs
from subnetbench.benchmark.subnetworks import load_subnetwork

NETWORKS = ("conv2", "conv4", "conv6")
# A few steps, not a protocol: 2 epochs of 7 batches, evaluation in 2 batches.
POOL_IMAGES, TEST_IMAGES = 1024, 256
BUDGET = {"epochs": "2", "patience": "0", "batch_size": "128", "eval_batch_size": "128"}
# The run the fast-path, seed-batch, resume and determinism checks use: ASLP samples masks at every
# step and evaluates on sampled masks, so it exercises every random stream.
PROBE_METHOD = "aslp"


@dataclass
class Check:
    name: str
    status: str  # "pass", "fail" or "skip"
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Selftest:
    device: str
    description: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in ("pass", "fail", "skip")}


class Skip(Exception):
    """A check that does not apply here; its message says why."""


def generated_raw(seed: int = 0, dataset: str = "cifar10") -> tuple[Split, Split]:
    """(train+validation pool, test) of random uint8 images of the data set's shape, on the CPU."""
    info = DATASET_INFO[dataset]
    generator = torch.Generator().manual_seed(seed)
    shape = (info.in_channels, info.image_size, info.image_size)

    def split(n: int) -> Split:
        return Split(torch.randint(0, 256, (n, *shape), generator=generator, dtype=torch.uint8),
                     torch.randint(0, info.num_classes, (n,), generator=generator))

    return split(POOL_IMAGES), split(TEST_IMAGES)


def describe_device(device: torch.device) -> str:
    """The device, its driver and the versions, in one line."""
    versions = f"torch {torch.__version__}, Python {platform.python_version()}"
    if device.type != "cuda":
        return f"{device} ({cpu_model() or platform.processor() or platform.machine()}), {versions}"
    props = torch.cuda.get_device_properties(device)
    return (f"{device} ({props.name}, compute capability {props.major}.{props.minor}, "
            f"{props.total_memory / 2**30:.1f} GiB), driver {_nvidia_driver()}, CUDA "
            f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, {versions}")


def _nvidia_driver() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown (nvidia-smi did not answer)"
    return out.splitlines()[0].strip() if out.strip() else "unknown"


def _identical(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """None when two result files agree in every metric, curve and per-layer kept fraction, else
    what differs first."""
    for section in ("metrics", "curves", "layer_kept_fraction"):
        if a[section] != b[section]:
            keys = [k for k in a[section] if a[section][k] != b[section].get(k)]
            return f"{section} differ ({', '.join(keys[:4])})"
    return None


class _Interrupt(KeyboardInterrupt):
    """Stops a run after its first epoch, as Ctrl-C would (its checkpoint is written first)."""


def _interrupt_after_first_epoch(event: dict[str, Any]) -> None:
    if event.get("kind") == "epoch" and event.get("epoch") == 1:
        raise _Interrupt


class _Runner:
    """The checks' runs: each in a folder of its own under ``root``."""

    def __init__(self, root: Path, device: torch.device, raw: tuple[Split, Split]) -> None:
        self.root, self.device, self.raw, self.count = root, device, raw, 0

    def config(self, network: str, method: str, seed: int = 0, **options: str):
        return make_config(f"cifar10-{network}", method, seed, {**BUDGET, **options})

    def run(self, configs: list, **options: Any) -> list[dict[str, Any]]:
        self.count += 1
        folder = self.root / f"run{self.count}"
        results = execute_runs(configs, folder, device=str(self.device), progress=False,
                               save_subnetwork=True, raw=self.raw, **options)
        for result in results:
            check_result(result, folder)
        return results

    def resumed(self, config) -> dict[str, Any]:
        self.count += 1
        folder = self.root / f"run{self.count}"
        try:
            execute_runs([config], folder, device=str(self.device), progress=_interrupt_after_first_epoch,
                         raw=self.raw, deterministic=True)
        except _Interrupt:
            pass
        else:
            raise AssertionError("the run was not interrupted after its first epoch")
        (result,) = execute_runs([config], folder, device=str(self.device), progress=False,
                                 save_subnetwork=True, raw=self.raw, deterministic=True)
        check_result(result, folder)
        if result["curves"]["epoch"][:1] != [1] or len(result["curves"]["epoch"]) < 2:
            raise AssertionError(f"the resumed run has the epochs {result['curves']['epoch']}")
        return result


def check_result(result: dict[str, Any], folder: Path) -> None:
    """A completed run with meaningful numbers, whose saved subnetwork is what it says."""
    if result["status"] != "completed":
        raise AssertionError(f"the run ended {result['status']}: {result.get('error')}")
    metrics = result["metrics"]
    if not 0.0 < metrics["kept_fraction"] <= 1.0:
        raise AssertionError(f"kept fraction {metrics['kept_fraction']}")
    losses = result["curves"]["train_loss"]
    if not all(loss == loss and abs(loss) != float("inf") for loss in losses):
        raise AssertionError(f"non-finite training loss {losses}")
    network = load_subnetwork(folder, result)  # its SHA-256 checked, weights_only
    nonzero, total = methods.count_nonzero_weights(network)
    if nonzero != round(metrics["kept_fraction"] * total):
        raise AssertionError(f"the saved subnetwork keeps {nonzero} of {total} weights, the result "
                             f"says {metrics['kept_fraction']}")


def _checks(runner: _Runner, networks: tuple[str, ...],
            method_names: list[str]) -> list[tuple[str, Callable[[], str]]]:
    """(name, check) pairs in the order they run; a check returns a detail, raises Skip, or raises
    on failure. Every method trains on every network, then is compiled on the first network, then
    the probe checks run ``PROBE_METHOD`` on it."""
    probe = networks[0]
    return [
        *((f"{method} {network}", partial(_train, runner, network, method))
          for method in method_names for network in networks),
        *((f"torch.compile ({method} {probe})", partial(_compile_forward, runner, probe, method))
          for method in method_names),
        *((f"{label} ({PROBE_METHOD} {probe})", partial(check, runner, probe))
          for label, check in PROBE_CHECKS),
    ]


def _train(runner: _Runner, network: str, method: str) -> str:
    (result,) = runner.run([runner.config(network, method)])
    m = result["metrics"]
    return (f"{m['epochs_run']} epochs, kept {100 * m['kept_fraction']:.1f} %, "
            f"trained, evaluated, extracted, saved and read back")


def _compile_forward(runner: _Runner, probe: str, method: str) -> str:
    with counted_compiles() as counts:
        runner.run([runner.config(probe, method, compile="true")])
    if counts.problem():
        raise AssertionError(f"torch.compile did not compile: {counts.problem()} ({counts})")
    return str(counts)


def _channels_last(runner: _Runner, probe: str) -> str:
    runner.run([runner.config(probe, PROBE_METHOD, channels_last="true")])
    return "completed"


def _bf16(runner: _Runner, probe: str) -> str:
    runner.run([runner.config(probe, PROBE_METHOD, autocast="bf16")])
    return "completed"


def _seed_batch(runner: _Runner, probe: str) -> str:
    configs = [runner.config(probe, PROBE_METHOD, seed=s) for s in (0, 1)]
    together = runner.run(configs)
    alone = [runner.run([c])[0] for c in configs]
    mode = resolve_mode("auto", runner.device)
    differences = [_identical(a, b) for a, b in zip(together, alone)]
    if mode == "loop":  # the same arithmetic: the same bits
        for seed, difference in enumerate(differences):
            if difference:
                raise AssertionError(f"seed {seed} trained in a batch and alone: {difference}")
        return "2 seeds in one batch (loop): identical to separate runs"
    gap = max(abs(a["metrics"]["final_test_acc"] - b["metrics"]["final_test_acc"])
              for a, b in zip(together, alone))
    return (f"2 seeds in one batch ({mode}): completed; largest difference of extracted "
            f"accuracy to separate runs {100 * gap:.2f} points (grouped convolutions sum in "
            "another order)")


def _resume(runner: _Runner, probe: str) -> str:
    config = runner.config(probe, PROBE_METHOD, epochs="3")
    (whole,) = runner.run([config], deterministic=True)
    difference = _identical(whole, runner.resumed(config))
    if difference:
        raise AssertionError(f"interrupted after epoch 1 and resumed: {difference}")
    return "interrupted after epoch 1, resumed from its checkpoint: identical to the whole run"


def _deterministic(runner: _Runner, probe: str) -> str:
    config = runner.config(probe, PROBE_METHOD)
    (first,) = runner.run([config], deterministic=True)
    (second,) = runner.run([config], deterministic=True)
    difference = _identical(first, second)
    if difference:
        raise AssertionError(f"the same run twice with --deterministic: {difference}")
    return "the same run twice: identical"


# The checks of the probe run, in the order they run, by the label their name starts with.
PROBE_CHECKS: tuple[tuple[str, Callable[[_Runner, str], str]], ...] = (
    ("channels_last", _channels_last),
    ("bf16 autocast", _bf16),
    ("seed batch", _seed_batch),
    ("resume", _resume),
    ("--deterministic twice", _deterministic),
)


def run_selftest(device: str | None = "auto", networks: tuple[str, ...] = NETWORKS,
                 method_names: list[str] | None = None,
                 report: Callable[[Check], None] = lambda check: None) -> Selftest:
    """Run every check on ``device``; ``report`` is called with each check as it ends."""
    torch_device = resolve_device(device)
    if torch_device.type == "cuda":  # before the first cuBLAS call, for the --deterministic checks
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    outcome = Selftest(str(torch_device), describe_device(torch_device))
    root = Path(tempfile.mkdtemp(prefix="subnetbench-selftest-"))
    runner = _Runner(root, torch_device, generated_raw())
    try:
        for name, check in _checks(runner, networks, method_names or methods.names()):
            started = time.perf_counter()
            try:
                result = Check(name, "pass", check())
            except Skip as why:
                result = Check(name, "skip", str(why))
            except Exception as error:  # a check's failure is its verdict, the others go on
                where = traceback.extract_tb(error.__traceback__)[-1]
                result = Check(name, "fail", f"{type(error).__name__}: {' '.join(str(error).split())} "
                                             f"({Path(where.filename).name}:{where.lineno})")
            result.seconds = time.perf_counter() - started
            outcome.checks.append(result)
            report(result)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return outcome


def format_check(check: Check) -> str:
    return f"  {check.status.upper():4}  {check.name}: {check.detail} ({check.seconds:.1f} s)"


def verdict(outcome: Selftest, seconds: float) -> str:
    n = outcome.counts()
    word = "PASSED" if outcome.passed else "FAILED"
    failed = [c.name for c in outcome.checks if c.status == "fail"]
    return (f"selftest {word} on {outcome.description}: {n['pass']} passed, {n['fail']} failed, "
            f"{n['skip']} skipped, {seconds:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
