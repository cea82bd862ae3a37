"""The paper's grid from measured throughputs: hours of its runs (120 on Conv2/4/6; 40 a network
measured) with both pipelines, and with seeds batched, counting what a run pays besides training:
validation, checkpoints and the test evaluation (the package docstring states the assumption on the
epochs of a run)."""
from __future__ import annotations

from typing import Any

from subnetbench.benchmark.recipe import AUTO_CHECKPOINT_FACTOR

NETWORKS = ("conv2", "conv4", "conv6")  # the paper's networks, also the study's default
TRAIN_IMAGES = 45_000  # CIFAR-10's 50,000 training images less the 10% validation split
VAL_IMAGES = 5_000
TEST_IMAGES = 10_000
GRID_METHODS = ("aslp", "aslp+sr", "supermask", "edge_popup")
GRID_SEEDS = 5
GRID_SIGNED_CONSTANT = 2  # with and without SC: same cost
MAX_EPOCHS = 1000
PATIENCE = 100


def grid_estimate(rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]],
                  epochs_to_best: int) -> dict[str, Any]:
    """Hours of the paper's grid from measured throughputs (see the package docstring), on the
    networks measured: each run's training and validation epochs, its checkpoints (at the
    engine's default interval) and its test evaluation (sampled masks, then the extracted
    network)."""
    epochs = min(MAX_EPOCHS, epochs_to_best + PATIENCE)
    single = {(r["network"], r["method"]): r for r in rows
              if "error" not in r and r["variant"] == "default" and r["seeds_batched"] is None}
    evals = {(r["network"], r.get("method")): r for r in eval_rows}
    measured = {n for n, _ in single} & {n for n, _ in evals}
    networks = [n for n in (*NETWORKS, "conv8") if n in measured]
    runs = GRID_SIGNED_CONSTANT * GRID_SEEDS
    totals = {"ours": 0.0, "reference": 0.0, "ours_seed_batched": 0.0}
    cells, missing, seed_batching = [], [], {}
    for network in networks:
        seed_speedup, seed_k = _seed_speedup(rows, network)
        seed_batching[network] = {"k": seed_k, "speedup": seed_speedup}
        for method in GRID_METHODS:
            row, factor = single.get((network, method)), 1.0  # factor: training passes per batch
            if row is None and method == "aslp+sr" and (network, "aslp") in single:
                # Both pipelines step the scores and the scales in two passes a batch (Lightning 1.x
                # in the reference, smart_rescale_update=alternating in ours): twice aslp's passes.
                row, factor = single[(network, "aslp")], 2.0
            if row is None:
                missing.append(f"{network} {method}")
                continue
            ev = evals.get((network, row["method"])) or next(
                e for (n, _), e in evals.items() if n == network)
            cell = _cell(network, method, row, factor, ev, epochs, seed_speedup, seed_k)
            cells.append(cell)
            for key in totals:
                totals[key] += runs * cell[f"{key}_run_s"]
    hours = {key: total / 3600 for key, total in totals.items()}
    upper = MAX_EPOCHS / epochs
    return {
        "runs": len(networks) * len(GRID_METHODS) * runs,
        "networks": networks,
        "assumed_epochs_to_best": epochs_to_best,
        "epochs_per_run": epochs,
        "assumption": (f"every run trains {epochs_to_best} epochs to its best validation accuracy "
                       f"(an assumption, not a measurement) plus the patience of {PATIENCE}; the "
                       f"upper bound is the cap of {MAX_EPOCHS} epochs"),
        "train_images_per_epoch": TRAIN_IMAGES, "val_images_per_epoch": VAL_IMAGES,
        "test_images": TEST_IMAGES,
        "ours_hours": hours["ours"],
        "reference_hours": hours["reference"],
        "ours_seed_batched_hours": hours["ours_seed_batched"],
        "ours_hours_upper_bound": hours["ours"] * upper,
        "reference_hours_upper_bound": hours["reference"] * upper,
        "speedup": totals["reference"] / totals["ours"] if totals["ours"] else None,
        "seed_batching": seed_batching,
        "seed_batching_note": ("the best measured seed batch of each network (rows with "
                               "seeds_batched, any method) applied to every method of it; 1.0 "
                               "where none was measured or none paid"),
        "cells": cells,
        "missing": missing,
    }


def checkpoint_s(train_s: float, epochs: int, one_checkpoint_s: float) -> float:
    """Seconds a run of ``train_s`` seconds over ``epochs`` epochs spends in checkpoints at the
    default interval ("auto": one when the training since the last took 50 times its cost, the
    first epoch's, and one at the end), never more than one an epoch."""
    automatic = train_s / AUTO_CHECKPOINT_FACTOR + 2 * one_checkpoint_s
    return min(epochs * one_checkpoint_s, automatic)


def _cell(network: str, method: str, row: dict[str, Any], factor: float, ev: dict[str, Any],
          epochs: int, seed_speedup: float, seed_k: int) -> dict[str, Any]:
    """One (network, method) of the grid: seconds of an epoch and of a whole run, per pipeline."""
    ours_val, reference_val = (VAL_IMAGES / ev["ours_images_per_s"],
                               VAL_IMAGES / ev["reference_images_per_s"])
    ours_epoch = factor * TRAIN_IMAGES / row["ours_images_per_s"] + ours_val
    reference_epoch = factor * TRAIN_IMAGES / row["reference_images_per_s"] + reference_val
    batched_epoch = factor * TRAIN_IMAGES / (row["ours_images_per_s"] * seed_speedup) + ours_val
    # The test: a pass per sampled mask of the stochastic evaluation, then the extracted network.
    passes = row.get("evaluation_samples", 1) + 1
    ours_test = passes * TEST_IMAGES / ev["ours_images_per_s"]
    reference_test = passes * TEST_IMAGES / ev["reference_images_per_s"]
    ours_checkpoints = checkpoint_s(epochs * ours_epoch, epochs, row.get("checkpoint_s", 0.0))
    batched_checkpoints = checkpoint_s(epochs * batched_epoch, epochs, row.get("checkpoint_s", 0.0))
    return {"network": network, "method": method, "epochs_per_run": epochs,
            "ours_epoch_s": ours_epoch, "reference_epoch_s": reference_epoch,
            "ours_seed_batched_epoch_s": batched_epoch, "seed_batch_k": seed_k,
            "ours_test_s": ours_test, "reference_test_s": reference_test,
            "ours_checkpoints_s": ours_checkpoints,
            "ours_run_s": epochs * ours_epoch + ours_checkpoints + ours_test,
            "reference_run_s": epochs * reference_epoch + reference_test,
            "ours_seed_batched_run_s": epochs * batched_epoch + batched_checkpoints + ours_test,
            "reference_estimated_from_aslp": factor != 1.0}


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
