"""How ``subnetbench run`` spreads its runs: here (one at a time, ``--jobs N`` CPU workers or
``--devices`` GPU workers) or as submitit jobs (``--executor slurm`` / ``submitit-local``,
:mod:`subnetbench.cluster`); the plan it records for ``subnetbench status``; and the one line it
prints per run, whatever ran it.

Whatever launches a run, it trains under its lock (:mod:`subnetbench.locks`): a run another process
is training is left to it and shown as running elsewhere.
"""
from __future__ import annotations

import argparse
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from subnetbench import cluster, devices, locks, plans
from subnetbench.errors import OptionError
from subnetbench.files import remove_stale_temporaries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``run`` that spread its runs over GPUs or a cluster."""
    parser.add_argument("--devices", metavar="LIST",
                        help="CUDA devices that run runs at once, one run per device: 'all' or "
                        "indices such as 0,1,2,3 (torch's, within CUDA_VISIBLE_DEVICES); like --jobs "
                        "on a CPU, and exclusive with it")
    cluster.add_arguments(parser)


@dataclass(frozen=True)
class Launch:
    """Where the runs of one command go."""

    executor: str  # inline, slurm or submitit-local
    device: str  # the device option of every run: resolved here, or as given for a job to resolve
    slots: list[int] | None  # the devices of --devices


def _check_device_name(device: str) -> str:
    if device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", device):
        return device
    raise OptionError(f"device {device!r} is not allowed; expected cpu, cuda, cuda:N or auto")


def resolve_launch(args: argparse.Namespace) -> Launch:
    """The checked scale-out options of ``run``: --executor and its options, --devices, --jobs."""
    from subnetbench.benchmark.runner import resolve_device

    cluster.check_options(args)
    if args.devices is not None:
        if args.executor != "inline":
            raise OptionError(f"--devices {args.devices!r} runs on this machine's GPUs; with "
                              f"--executor {args.executor} ask for GPUs with --slurm-gpus-per-task")
        if args.jobs > 1:
            raise OptionError(f"--devices and --jobs {args.jobs} are exclusive: --devices runs one "
                              "run per listed GPU, --jobs N runs N CPU runs; give one of them")
        if args.device not in ("auto", "cuda"):
            raise OptionError(f"--device {args.device} is not allowed with --devices, which binds "
                              "each run to one of the listed GPUs; leave --device out")
        import torch

        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return Launch("inline", "cuda", devices.parse_devices(args.devices, visible))
    if args.executor != "inline":  # the device is the job's: this machine may have no GPU
        return Launch(args.executor, _check_device_name(args.device), None)
    return Launch("inline", str(resolve_device(args.device)), None)


def prepare(args: argparse.Namespace, configs: list, launch: Launch,
            options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What comes before the first run, refusals first: the device's recipe options and every data
    set the runs need (:func:`fetch_data`) are checked before anything is written; then the results
    directory's folders are checked, what killed writers left there removed, and this command's
    plan recorded. Returns the runs' options and the command's plan entry (to update with job ids)."""
    from subnetbench.benchmark.results import prepare_results_dir
    from subnetbench.benchmark.training import check_recipe_device

    if launch.executor == "inline" or launch.device == "cpu":  # a job's "auto" is the job's to find
        for config in configs:
            check_recipe_device(config.recipe, launch.device)
    options = fetch_data(configs, options)
    prepare_results_dir(Path(args.results), not args.no_save_subnetwork)
    for folder in ("runs", "plans", "checkpoints", "subnetworks"):
        remove_stale_temporaries(Path(args.results) / folder)
    command = plans.new_command(["subnetbench", *args.argv], launch.executor)
    plans.record(args.results, [config.run_id for config in configs], command)
    return options, command


def fetch_data(configs: list, options: dict[str, Any]) -> dict[str, Any]:
    """Every data set the runs need, found here (and downloaded once, if it is missing and
    downloading is allowed) before anything else is written and before workers or jobs start
    together: they then only read it, from the same absolute folder (a cluster's nodes may have
    another home or no internet). A data folder this call created for a download that failed is
    removed. Returns the runs' options with that folder and downloading off."""
    from subnetbench.benchmark.data import default_data_dir, load_raw

    data_dir = Path(options["data_dir"]) if options["data_dir"] else default_data_dir()
    existed = data_dir.exists()
    try:
        for dataset in sorted({config.spec.dataset for config in configs}):
            load_raw(dataset, data_dir, options["download"])
    except BaseException:
        if not existed and data_dir.is_dir():
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
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
    return "no result (its job did not finish it)"


def closing_note(results: list[dict[str, Any]], results_dir: str) -> str | None:
    """A line after the summary when some runs were left to other processes."""
    elsewhere = sum("running_elsewhere" in r for r in results)
    if not elsewhere:
        return None
    return (f"{elsewhere} run(s) are being trained by another process and were left to it; "
            f"subnetbench status {results_dir} shows them, and this command run again later "
            "reports their results")


def _result_on_disk(config: Any, results_dir: Path) -> dict[str, Any]:
    """A run's result as a job left it: its result file, else its lock's holder, else missing."""
    from subnetbench.benchmark.results import read_result, run_path
    from subnetbench.benchmark.runner import run_identity, running_elsewhere

    record = read_result(run_path(results_dir, config.run_id))
    if record is not None and record.status == "completed":
        return record.to_json()
    holder = locks.holder(results_dir, config.run_id)
    if holder is not None:
        return running_elsewhere(config, holder)
    return record.to_json() if record is not None else run_identity(config, "missing")


def run_on_cluster(args: argparse.Namespace, configs: list, units: list[list],
                   options: dict[str, Any], command: dict[str, Any]) -> tuple[list | None, int]:
    """Submit the runs (as ``units``: runs or seed batches) through submitit; with --no-wait return
    (None, 0) once submitted, else wait and return each (config, result) and the exit code (1 when
    a job failed)."""
    results_dir = Path(args.results)
    submitted = cluster.submit(args, units, {**options, "progress": False}, results_dir)
    command.update(job_ids=submitted.job_ids, job_folder=str(submitted.folder))
    plans.record(results_dir, [config.run_id for config in configs], command)
    ids = submitted.job_ids
    shown = ", ".join(ids[:6]) + (f", ... ({len(ids)} jobs)" if len(ids) > 6 else "")
    print(f"submitted {len(ids)} job(s) for {len(configs)} run(s) with --executor {args.executor}: "
          f"{shown}; logs in {submitted.folder}", flush=True)
    if args.no_wait:
        print(f"follow them with: subnetbench status {args.results}")
        return None, 0
    try:
        failures = cluster.wait(submitted, args.executor)
    except KeyboardInterrupt:
        print(f"\n{cluster.stop_waiting(submitted, args.executor, args.results)}", flush=True)
        return None, 130
    return [(config, _result_on_disk(config, results_dir)) for config in configs], int(bool(failures))
