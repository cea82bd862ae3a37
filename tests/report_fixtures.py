"""Synthetic but schema-valid result files (docs/results-format.md) for the report tests.

``write_results(results_dir)`` is the one place the report tests get their input from. It is meant to
be replaced by real runs through the engine (``benchmark.runner``) later; the tests only rely on it
writing result files under ``results_dir/runs`` and returning ``results_dir``.

The numbers are made up (near the published CIFAR-10 values, with seed noise), the structure is
exactly what the engine writes: options ``{"recipe": ..., "method": ...}``, dotted
``non_default_options`` and a ``config_hash`` computed the way ``benchmark.config`` computes it.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from subnetbench.records import FORMAT_VERSION

RECIPE_DEFAULTS = {"batch_size": 256, "epochs": 1000, "patience": 100, "schedule": "constant",
                   "init": "kaiming_normal", "augmentation": False, "normalise": None,
                   "validation_fraction": 0.1, "bias": True, "eval_batch_size": 256}
EDGE_POPUP_PRESET = {"batch_size": 128, "epochs": 100, "schedule": "cosine", "patience": 0,
                     "augmentation": True}
METHOD_DEFAULTS = {
    "aslp": {"smart_rescale": False, "mask_lr": 50.0, "temperature": 1.0, "hard": True,
             "estimator": "logistic", "eval_samples": 10},
    "supermask": {"dynamic_weight_rescale": False, "mask_lr": 50.0, "eval_samples": 10},
    "edge_popup": {"smart_rescale": False, "keep_fraction": 0.5, "mask_lr": 0.1,
                   "mask_weight_decay": 1e-4},
    "random_pruning": {"keep_fraction": 0.5, "distribution": "uniform", "lr": 0.01},
    "magnitude_pruning": {"keep_fraction": 0.2, "scope": "global", "schedule": "one_shot",
                          "prune_rounds": 3, "rewind": None, "lr": 0.01},
    "dense": {"lr": 0.01},
}
FAMILY = {"aslp": "mask-only", "supermask": "mask-only", "edge_popup": "mask-only",
          "random_pruning": "weight-training", "magnitude_pruning": "weight-training",
          "dense": "weight-training"}
CONV2_LAYERS = ["features.0", "features.2", "classifier.1", "classifier.3", "classifier.5"]
SEEDS = (0, 1, 2)
XSS_METHOD = "<script>alert(1)</script>"
XSS_OPTION = '<img src=x onerror="alert(2)">'


def config_hash(protocol: str, method: str, non_default: dict[str, Any]) -> str:
    canonical = json.dumps({"protocol": protocol, "method": method, "options": non_default},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def make_result(*, protocol: str, dataset: str, network: str, method: str, seed: int,
                recipe: dict[str, Any] | None = None, method_options: dict[str, Any] | None = None,
                final_acc: float = 0.7, test_acc: float | None = None, kept: float = 0.5,
                epochs_to_best: int = 40, epochs_run: int = 60, family: str | None = None,
                status: str = "completed", error: str | None = None, curve_speed: float = 8.0,
                histogram: bool | None = None, layers: list[str] | None = None) -> dict[str, Any]:
    """One result dict as the engine writes it (format version 1)."""
    base_recipe = dict(RECIPE_DEFAULTS)
    base_recipe.update(EDGE_POPUP_PRESET if method == "edge_popup" else {})
    full_recipe = dict(base_recipe, **(recipe or {}))
    default_method = METHOD_DEFAULTS.get(method, {})
    full_method = dict(default_method, **(method_options or {}))
    non_default = {k: v for k, v in full_recipe.items() if v != RECIPE_DEFAULTS.get(k, object())}
    non_default.update({f"method.{k}": v for k, v in full_method.items()
                        if v != default_method.get(k, object())})
    non_default = dict(sorted(non_default.items()))
    chash = config_hash(protocol, method, non_default)
    run_id = f"{protocol}.{method}.{chash}.seed{seed}"
    rng = np.random.default_rng(int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16))
    sr = bool(full_method.get("smart_rescale") or full_method.get("dynamic_weight_rescale"))
    variant = {"data_augmentation": bool(full_recipe["augmentation"]),
               "signed_constant": full_recipe["init"] in ("signed_constant", "scaled_signed_constant"),
               "smart_rescale": sr}
    test_acc = final_acc + 0.002 if test_acc is None else test_acc
    epochs = list(range(1, epochs_run + 1))
    val = [final_acc * (1 - math.exp(-e / curve_speed)) + float(rng.normal(0, 0.004)) for e in epochs]
    layers = layers or CONV2_LAYERS
    layer_kept = {name: float(np.clip(kept + rng.normal(0, 0.05) + 0.04 * (i - 2), 0, 1))
                  for i, name in enumerate(layers)}
    if histogram is None:
        histogram = method in ("aslp", "supermask")
    result: dict[str, Any] = {
        "format": "subnetbench.result", "format_version": 1, "status": status, "error": error,
        "run_id": run_id, "config_hash": chash, "protocol": protocol, "dataset": dataset,
        "network": network, "method": method, "family": family or FAMILY.get(method, "mask-only"),
        "seed": seed, "variant": variant,
        "options": {"recipe": full_recipe, "method": full_method},
        "non_default_options": non_default,
        "metrics": {"test_acc": test_acc, "final_test_acc": final_acc, "kept_fraction": kept,
                    "epochs_to_best": epochs_to_best, "best_val_acc": max(val), "epochs_run": epochs_run},
        "layer_kept_fraction": layer_kept,
        "curves": {"epoch": epochs, "round": [0] * epochs_run,
                   "train_loss": [2.3 * math.exp(-e / 20) for e in epochs],
                   "train_acc": [min(1.0, v + 0.03) for v in val], "val_acc": val},
        "timings": {"total_s": 0.6 * epochs_run, "epoch_s": [0.6] * epochs_run, "device": "cpu"},
        "provenance": {"subnetbench_version": "0.1.0",
                       "git_commit": "ad80952" + "0" * 33, "git_dirty": False, "device_name": "cpu",
                       "python": "3.11.7", "platform": "Linux-x86_64",
                       "versions": {"torch": "2.5.0", "numpy": "2.4.6"},
                       "created": f"2026-11-24T18:{40 + seed:02d}:00+00:00"},
    }
    if histogram:
        edges = [i / 20 for i in range(21)]
        centres = np.array([(a + b) / 2 for a, b in zip(edges, edges[1:])])
        dens = (np.exp(-((centres - 0.03) / 0.05) ** 2) * (1 - kept)
                + np.exp(-((centres - 0.97) / 0.05) ** 2) * kept)
        dens += 0.01
        result["keep_probabilities"] = {"bin_edges": edges,
                                        "counts": [int(x) for x in 100_000 * dens / dens.sum()]}
    if status != "completed":
        for key in ("metrics", "layer_kept_fraction", "curves", "keep_probabilities"):
            result.pop(key, None)
    return result


def write_result(results_dir: Path, result: dict[str, Any], name: str | None = None) -> Path:
    runs = Path(results_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / (name or f"{result['run_id']}.json")
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return path


# (protocol, dataset, network, method, recipe overrides, method overrides, mean accuracy, kept, epochs)
GRID = [
    # CIFAR-10 Conv2, the paper's no-DA variants (published values exist for these)
    ("cifar10-conv2", "cifar10", "conv2", "aslp", {}, {}, 0.684, 0.47, 60),
    ("cifar10-conv2", "cifar10", "conv2", "aslp", {}, {"smart_rescale": True}, 0.679, 0.45, 52),
    ("cifar10-conv2", "cifar10", "conv2", "aslp", {"init": "signed_constant"}, {}, 0.689, 0.46, 58),
    ("cifar10-conv2", "cifar10", "conv2", "aslp", {"init": "signed_constant"}, {"smart_rescale": True},
     0.672, 0.44, 50),
    ("cifar10-conv2", "cifar10", "conv2", "aslp", {"init": "signed_constant", "augmentation": True},
     {"smart_rescale": True}, 0.771, 0.43, 70),
    ("cifar10-conv2", "cifar10", "conv2", "supermask", {}, {}, 0.648, 0.51, 64),
    ("cifar10-conv2", "cifar10", "conv2", "supermask", {}, {"dynamic_weight_rescale": True}, 0.652, 0.5, 61),
    ("cifar10-conv2", "cifar10", "conv2", "supermask", {"init": "signed_constant"}, {}, 0.661, 0.5, 62),
    ("cifar10-conv2", "cifar10", "conv2", "edge_popup", {"init": "signed_constant"}, {"smart_rescale": True},
     0.705, 0.5, 80),
    ("cifar10-conv2", "cifar10", "conv2", "random_pruning", {}, {}, 0.625, 0.5, 30),
    ("cifar10-conv2", "cifar10", "conv2", "magnitude_pruning", {}, {}, 0.655, 0.2, 34),
    ("cifar10-conv2", "cifar10", "conv2", "dense", {}, {}, 0.660, 1.0, 25),
    # Offline digits (no published values)
    ("digits-conv2", "digits", "conv2", "aslp", {"epochs": 60}, {}, 0.93, 0.52, 41),
    ("digits-conv2", "digits", "conv2", "aslp", {"epochs": 60}, {"smart_rescale": True}, 0.94, 0.5, 33),
    ("digits-conv2", "digits", "conv2", "supermask", {"epochs": 60}, {}, 0.90, 0.55, 45),
]


def write_results(results_dir: str | Path) -> Path:
    """Write the synthetic grid (3 seeds each), plus one failed run, one unfinished run and three bad
    files, under ``results_dir/runs``. Returns ``results_dir``."""
    results_dir = Path(results_dir)
    for protocol, dataset, network, method, recipe, options, acc, kept, etb in GRID:
        for seed in SEEDS:
            rng = np.random.default_rng(1000 * seed + len(method) + int(1000 * acc))
            if protocol == "digits-conv2" and method in ("aslp", "supermask") and not options and seed == 2:
                continue  # holes: written below as a failed run and an unfinished run
            speed = 5.0 if options.get("smart_rescale") or options.get("dynamic_weight_rescale") else 8.0
            result = make_result(
                protocol=protocol, dataset=dataset, network=network, method=method, seed=seed,
                recipe=recipe, method_options=options,
                final_acc=float(np.clip(acc + rng.normal(0, 0.003), 0, 1)),
                test_acc=float(np.clip(acc + rng.normal(0.002, 0.002), 0, 1)),
                kept=float(np.clip(kept + (rng.normal(0, 0.01) if kept < 1 else 0), 0, 1)),
                epochs_to_best=int(etb + rng.integers(-3, 4)), epochs_run=int(etb + 20),
                curve_speed=speed)
            write_result(results_dir, result)
    failed = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="aslp", seed=2,
                         recipe={"epochs": 60}, status="failed",
                         error="RuntimeError: CUDA out of memory while extracting the subnetwork")
    write_result(results_dir, failed)
    running = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="supermask",
                          seed=2, recipe={"epochs": 60}, status="running")
    write_result(results_dir, running)
    runs = results_dir / "runs"
    (runs / "corrupt.json").write_text('{"format": "subnetbench.result", "format_version": 1, "sta',
                                       encoding="utf-8")
    future = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="aslp", seed=0)
    future["format_version"] = FORMAT_VERSION + 1
    write_result(results_dir, future, "from-the-future.json")
    missing = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="dense", seed=0)
    del missing["metrics"]["final_test_acc"]
    write_result(results_dir, missing, "missing-metric.json")
    return results_dir


def write_hostile(results_dir: Path) -> None:
    """Results whose method, option keys and values, hash and run id contain markup (and '$')."""
    for seed in (0, 1):
        result = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="aslp",
                             seed=seed, final_acc=0.9 + 0.01 * seed)
        result["method"] = XSS_METHOD
        result["family"] = "mask-only"
        result["options"]["method"]["note"] = XSS_OPTION
        result["non_default_options"] = {"<b>key</b>": XSS_OPTION, "$dollar^": "x$"}
        result["run_id"] = f"hostile.{XSS_METHOD}.seed{seed}"
        result["config_hash"] = "<i>hash</i>"
        write_result(results_dir, result, f"hostile-{seed}.json")
        # '$' and '^' would start matplotlib's mathtext; the figures must draw them as text
        dollar = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="dense",
                             seed=seed, final_acc=0.95)
        dollar["method"] = "cost$5 ^_^ $x"
        dollar["run_id"] = f"dollar.seed{seed}"
        write_result(results_dir, dollar, f"dollar-{seed}.json")
