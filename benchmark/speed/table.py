"""The table that ``subnetbench speed`` prints, from the result it writes as JSON."""
from __future__ import annotations

from typing import Any


def format_table(result: dict[str, Any]) -> str:
    b = result["budget"]
    method_width = max([10, *(len(r["method"]) for r in result["rows"])])  # any registered name
    lines = [f"device {result['device']} ({result['device_name']}), torch {result['torch']}, "
             f"{result['torch_threads']} threads, reference workers {result['reference_workers']}, "
             f"batch {b['batch_size']}, {b['batches']} batches per timed epoch, median of "
             f"{b['repeats']} after {b['warmup']} warm-up" + (" (--quick)" if result["quick"] else ""),
             "",
             f"{'network':<7} {'method':<{method_width}} {'variant':<13} {'k':>2} {'ours img/s':>11} "
             f"{'ref img/s':>10} {'ratio':>6} {'vs default':>10} {'ours GFLOP/s':>12} "
             f"{'ours peak MiB':>13} {'ref peak MiB':>12}"]
    for r in result["rows"]:
        k = "" if r["seeds_batched"] is None else str(r["seeds_batched"])
        variant = r["variant"] if r["seed_batch_mode"] is None else f"seeds:{r['seed_batch_mode']}"
        if "error" in r:
            lines.append(f"{r['network']:<7} {r['method']:<{method_width}} {variant:<13} {k:>2} "
                         f"FAILED: {r['error']}")
            continue
        ref_ips = r["reference_images_per_s"]
        speedup = r.get("speedup_vs_default")
        ref_peak = r["reference_peak_memory_bytes"]
        lines.append(
            f"{r['network']:<7} {r['method']:<{method_width}} {variant:<13} {k:>2} "
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
            f"{e['network']} {e.get('method', '')} ours {e['ours_images_per_s']:.0f} img/s, reference "
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
