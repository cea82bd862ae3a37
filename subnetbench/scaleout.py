"""How ``subnetbench run`` spreads its runs: one at a time, ``--jobs N`` CPU workers or
``--devices`` GPU workers (:mod:`subnetbench.devices`); the plan it records for ``subnetbench
status``; and the one line it prints per run, whatever ran it.

Whatever launches a run, it trains under its lock (:mod:`subnetbench.locks`): a run another process
is training is left to it and shown as running elsewhere.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from subnetbench import devices, locks, plans
from subnetbench.methods.base import OptionError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``run`` that spread its runs over GPUs."""
    parser.add_argument("--devices", metavar="LIST",
                        help="CUDA devices that run runs at once, one run per device: 'all' or "
                        "indices such as 0,1,2,3 (torch's, within CUDA_VISIBLE_DEVICES); like --jobs "
                        "on a CPU, and exclusive with it")


@dataclass(frozen=True)
class Launch:
    """Where the runs of one command go."""

    device: str  # the device option of every run
    slots: list[int] | None  # the devices of --devices


def resolve_launch(args: argparse.Namespace) -> Launch:
    """The checked scale-out options of ``run``: --devices, --jobs."""
    from subnetbench.benchmark.runner import resolve_device

    if args.devices is not None:
        if args.jobs > 1:
            raise OptionError(f"--devices and --jobs {args.jobs} are exclusive: --devices runs one "
                              "run per listed GPU, --jobs N runs N CPU runs; give one of them")
        if args.device not in ("auto", "cuda"):
            raise OptionError(f"--device {args.device} is not allowed with --devices, which binds "
                              "each run to one of the listed GPUs; leave --device out")
        import torch

        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return Launch("cuda", devices.parse_devices(args.devices, visible))
    return Launch(str(resolve_device(args.device)), None)


def prepare(args: argparse.Namespace, configs: list, launch: Launch,
            options: dict[str, Any]) -> dict[str, Any]:
    """What comes before the first run: the data of --devices workers (:func:`fetch_data`), the
    results directory's folders checked (nothing is written before) and this command's plan
    recorded. Returns the runs' options."""
    from subnetbench.benchmark.results import prepare_results_dir

    if launch.slots is not None:
        options = fetch_data(configs, options)
    prepare_results_dir(Path(args.results), not args.no_save_subnetwork)
    command = plans.new_command(["subnetbench", *args.argv], "inline")
    plans.record(args.results, [config.run_id for config in configs], command)
    return options


def fetch_data(configs: list, options: dict[str, Any]) -> dict[str, Any]:
    """Every data set the runs need, found here (and downloaded once, if it is missing and
    downloading is allowed) before workers start together: they then only read it, from the
    same absolute folder. Returns the runs' options with that folder and downloading off."""
    from subnetbench.benchmark.data import default_data_dir, load_raw

    data_dir = Path(options["data_dir"]) if options["data_dir"] else default_data_dir()
    for dataset in sorted({config.spec.dataset for config in configs}):
        load_raw(dataset, data_dir, options["download"])
    return {**options, "data_dir": str(data_dir.resolve()), "download": False}


def outcome_text(result: dict[str, Any]) -> str:
    """What happened to one run, for the line ``run`` prints of it."""
    status = result.get("status")
    if status == "completed":
        metrics = result["metrics"]
        state = "skipped (done)" if result.get("skipped") else "done"
        return (f"{state}, extracted test acc {100 * metrics['final_test_acc']:.2f}%, kept "
                f"{100 * metrics['kept_fraction']:.1f}%")
    if "running_elsewhere" in result:
        return f"running elsewhere ({locks.holder_text(result['running_elsewhere'])}), left to it"
    if status == "failed":
        return f"failed: {' '.join(str(result.get('error')).split())[:300]}"
    if status == "running":
        return "not finished (interrupted; the same command resumes it)"
    return "no result"


def closing_note(results: list[dict[str, Any]], results_dir: str) -> str | None:
    """A line after the summary when some runs were left to other processes."""
    elsewhere = sum("running_elsewhere" in r for r in results)
    if not elsewhere:
        return None
    return (f"{elsewhere} run(s) are being trained by another process and were left to it; "
            f"subnetbench status {results_dir} shows them, and this command run again later "
            "reports their results")
