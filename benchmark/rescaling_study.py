"""Claim 4's timing study (``subnetbench timing``): what a rescaling costs per training epoch.

In one process, on one protocol and seed, fresh networks of five arms train side by side: aslp
without and with smart rescale (SR), aslp with SR updated in one pass a batch (``joint``: the
released code's two optimisers make two passes, docs/released-code.md), supermask without and with
dynamic weight rescaling (DWR). After one untimed epoch each, every repeat times one epoch of every
arm, in an order rotated from repeat to repeat so that a drift of the machine's speed falls on each
arm alike. The seconds are written to ``RESULTS/timing/rescaling-overhead.PROTOCOL.seedS.json``;
the report takes per-repeat ratios and judges their medians (reports/timing.py). The machine's
load is not controlled: the file says so, and the report does.

The study builds its networks from streams of its own (``timing-study``): no run's result changes.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any

import torch

from subnetbench.benchmark import protocols
from subnetbench.benchmark.build_run import build_run
from subnetbench.benchmark.config import RunConfig, make_config
from subnetbench.benchmark.device import resolve_device
from subnetbench.benchmark.results import provenance
from subnetbench.benchmark.timing import timed
from subnetbench.benchmark.training import Trainer
from subnetbench.devices import max_threads
from subnetbench.errors import OptionError
from subnetbench.files import atomic_write_text, check_writable_directory
from subnetbench.reports.claims import OVERHEAD_MARGIN_PP
from subnetbench.reports.timing import TimingStudy, analyse

FORMAT = "subnetbench.timing"
FORMAT_VERSION = 1
STUDY = "rescaling-overhead"
STUDY_STREAMS = ("timing-study",)
DEFAULT_REPEATS = 15
# The rescaled configurations timed: (arm name, method, --set overrides, the option values that
# turn the rescaling off, the option values that update it in one pass a batch or None). Each
# brings its baseline, the same options with the rescaling off (arm named by the method), and,
# where it updates in several passes a batch, its one-pass twin ("NAME joint"): the SR variants
# are built here, from the method's options, and nowhere else.
RESCALED: tuple[tuple[str, str, dict[str, str], dict[str, Any], dict[str, Any] | None], ...] = (
    ("aslp SR", "aslp", {"method.smart_rescale": "true"}, {"smart_rescale": False},
     {"smart_rescale_update": "joint"}),
    ("supermask DWR", "supermask", {"method.dynamic_weight_rescale": "true"},
     {"dynamic_weight_rescale": False, "smart_rescale": False}, None),
)


def _with_options(config: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``config`` with some of its method's options replaced (validated again by the dataclass)."""
    return dataclasses.replace(config, method_options=dataclasses.replace(config.method_options,
                                                                          **values))


def arm_configs(protocol: str, seed: int) -> list[tuple[str, RunConfig]]:
    """The study's arms in order: per rescaled configuration, its baseline, itself, its one-pass twin."""
    arms = []
    for name, method, overrides, off, one_pass in RESCALED:
        config = make_config(protocol, method, seed, overrides)
        if config.traits.rescaling is None:
            raise OptionError(f"{name}: {method} with {overrides} declares no rescaling to turn off")
        arms += [(method, _with_options(config, off)), (name, config)]
        if one_pass is not None and config.traits.update_pass_count > 1:
            arms.append((f"{name} joint", _with_options(config, one_pass)))
    return arms


def study_path(results_dir: str | Path, protocol: str, seed: int) -> Path:
    return Path(results_dir) / "timing" / f"{STUDY}.{protocol}.seed{seed}.json"


def _trainers(arms: list[tuple[str, RunConfig]], device: torch.device, data_dir: str | None,
              download: bool) -> list[Trainer]:
    trainers, data = [], None
    for _, config in arms:
        parts = build_run(config, device, data=data, data_dir=data_dir, download=download,
                          streams=STUDY_STREAMS)
        data = parts.data  # one split for every arm
        trainer = Trainer(parts.model, parts.method, parts.data, config.recipe, parts.generators)
        trainer.begin_epoch()
        trainer.train_epoch()  # untimed: allocations, kernel selection
        trainers.append(trainer)
    return trainers


def measure(protocol: str, seed: int = 0, repeats: int = DEFAULT_REPEATS, device: str = "cpu",
            data_dir: str | None = None, download: bool = True) -> dict[str, Any]:
    """Seconds of one training epoch of every arm, per repeat, interleaved (see the module)."""
    if repeats < 1:
        raise OptionError(f"--repeats {repeats} is not allowed; expected an integer >= 1")
    torch_device = resolve_device(device)
    arms = arm_configs(protocol, seed)
    trainers = _trainers(arms, torch_device, data_dir, download)
    seconds: list[list[float]] = [[] for _ in arms]
    order: list[list[str]] = []
    for repeat in range(repeats):
        shift = repeat % len(arms)
        turn = list(range(shift, len(arms))) + list(range(shift))
        for i in turn:
            seconds[i].append(timed(torch_device, trainers[i].train_epoch))
        order.append([arms[i][0] for i in turn])
    spec = protocols.get(protocol)
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "study": STUDY,
        "protocol": protocol, "dataset": spec.dataset, "network": spec.network, "seed": seed,
        "repeats": repeats, "device": torch_device.type, "threads": torch.get_num_threads(),
        "load_controlled": False,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "provenance": provenance(torch_device).to_json(),
        "arms": {name: {"method": config.method, "options": config.non_default_options(),
                        "epoch_s": times}
                 for (name, config), times in zip(arms, seconds)},
        "order": order,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="the protocol to time on, e.g. digits-conv2 or cifar10-conv2")
    parser.add_argument("--results", default="results", help="results directory (default results); "
                        "the study goes to RESULTS/timing/")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help=f"timed epochs of each arm (default {DEFAULT_REPEATS}; the median's "
                        "interval needs at least 6)")
    parser.add_argument("--seed", type=int, default=0, help="root seed of the networks (default 0)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on a CPU (default 1)")
    parser.add_argument("--data", help="data cache directory")
    parser.add_argument("--no-download", action="store_true", help="never download data")


def main_from_args(args: argparse.Namespace) -> int:
    if args.protocol not in protocols.names():
        raise OptionError(f"unknown protocol {args.protocol!r}; expected one of "
                          f"{', '.join(protocols.names())}")
    if not 1 <= args.threads <= max_threads():
        raise OptionError(f"--threads {args.threads} is not allowed; expected an integer in "
                          f"[1, {max_threads()}]")
    path = study_path(args.results, args.protocol, args.seed)
    check_writable_directory(path.parent, "timing directory")
    torch.set_num_threads(args.threads)
    arms = len(arm_configs(args.protocol, args.seed))
    print(f"timing: {arms} arms x {args.repeats} epochs on {args.protocol}, interleaved; the machine's "
          "load is not controlled", flush=True)
    study = measure(args.protocol, args.seed, args.repeats, args.device, args.data,
                    not args.no_download)
    atomic_write_text(path, json.dumps(study, indent=1) + "\n")
    print(f"timing: {path}")
    print(summary(analyse(path.name, study, OVERHEAD_MARGIN_PP)))
    return 0


def summary(study: TimingStudy) -> str:
    """Lines for the terminal: each overhead's median and interval, and claim 4's verdicts."""
    def line(estimate, unit: str = "%") -> str:
        ci = f"[{estimate.ci[0]:+.1f}, {estimate.ci[1]:+.1f}]" if estimate.ci else "(no CI: too few repeats)"
        return f"  {estimate.name:<34} median {estimate.median:+6.1f} {unit} {ci}"

    return "\n".join(["timing: overhead over the same method without rescaling, per epoch:"]
                     + [line(e) for e in study.overheads]
                     + [line(study.difference, "points") + f": {study.verdict.label}",
                        line(study.joint_difference, "points") + f": {study.joint_verdict.label}",
                        "timing: the machine's load was not controlled"])
