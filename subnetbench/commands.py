"""The small commands of ``subnetbench``: list, report, speed and selftest (``run`` is
:mod:`subnetbench.run_command`, ``status`` :mod:`subnetbench.status`)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

import torch

from subnetbench import methods, reports
from subnetbench.benchmark import grids, protocols, rescaling_study, selftest
from subnetbench.benchmark.device import resolve_device
from subnetbench.benchmark.recipe import RECIPE_PRESETS, Recipe
from subnetbench.benchmark.speed import cli as speed_cli
from subnetbench.devices import max_threads
from subnetbench.errors import OptionError
from subnetbench.launch.options import check_path_option


def _method_info(name: str) -> dict[str, Any]:
    cls = methods.get(name)
    traits = cls().traits()
    declared = {"stochastic": traits.stochastic, "evaluation_samples": traits.evaluation_samples,
                "fixed_keep_fraction": traits.fixed_keep_fraction, "rescaling": traits.rescaling,
                "rounds": traits.rounds, "seed_batch_refusal": traits.seed_batch_refusal}
    return {"name": name, "family": traits.family, "origin": methods.origin(name),
            "options": dataclasses.asdict(cls.Options()), "declared": declared,
            "doc": (cls.__doc__ or "").strip()}


def cmd_list(args: argparse.Namespace) -> int:
    info = {
        "methods": [_method_info(name) for name in methods.names()],
        "protocols": [{"name": p.name, "dataset": p.dataset, "network": p.network,
                       "needs_gpu": p.needs_gpu, "recipe": dataclasses.asdict(p.recipe),
                       "notes": p.notes}
                      for p in (protocols.get(n) for n in protocols.names())],
        "grids": sorted(grids.GRIDS),
        "recipe_options": dataclasses.asdict(Recipe()),
        "recipes": RECIPE_PRESETS,
    }
    if args.json:
        print(json.dumps(info, indent=1, allow_nan=False))
        return 0
    print("methods:")
    for m in info["methods"]:
        options = ", ".join(f"{k}={v}" for k, v in m["options"].items())
        print(f"  {m['name']:<18} {m['family']:<16} {options}")
    print("protocols:")
    for p in info["protocols"]:
        print(f"  {p['name']:<16} {p['notes']}")
    print("grids: " + ", ".join(info["grids"]))
    print("recipe options (--set KEY=VALUE): " + ", ".join(
        f"{k}={v}" for k, v in info["recipe_options"].items()))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    for option, value in (("--results", args.results), ("--out", args.out),
                          ("--reference", args.reference)):
        check_path_option(value, option)
    return reports.main_from_args(args)


def cmd_timing(args: argparse.Namespace) -> int:
    check_path_option(args.results, "--results")
    return rescaling_study.main_from_args(args)


def cmd_speed(args: argparse.Namespace) -> int:
    return speed_cli.main_from_args(args, "subnetbench " + " ".join(args.argv))


def _names(value: str, option: str, allowed: list[str]) -> list[str]:
    """A comma-separated list of names, each one of ``allowed`` (OptionError naming the bad one)."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise OptionError(f"{option} {value!r} names nothing; expected names from: {', '.join(allowed)}")
    for name in names:
        if name not in allowed:
            raise OptionError(f"{option}: {name!r} is not allowed; expected names from: "
                              f"{', '.join(allowed)}")
    return names


def cmd_selftest(args: argparse.Namespace) -> int:
    networks = tuple(_names(args.networks, "--networks", list(selftest.NETWORKS)))
    method_names = _names(args.methods, "--methods", methods.names()) if args.methods else None
    if not 1 <= args.threads <= max_threads():
        raise OptionError(f"--threads {args.threads} is not allowed; expected an integer in [1, "
                          f"{max_threads()}]")
    device = resolve_device(args.device)  # a bad or absent device: one paragraph before anything
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    print(f"subnetbench selftest on {selftest.describe_device(device)}", flush=True)
    started = time.perf_counter()
    outcome = selftest.run_selftest(str(device), networks, method_names,
                                    report=lambda check: print(selftest.format_check(check), flush=True))
    print(selftest.verdict(outcome, time.perf_counter() - started), flush=True)
    return 0 if outcome.passed else 1
