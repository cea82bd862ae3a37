"""The ``subnetbench`` command: list, run, report.

    subnetbench list [--json]
    subnetbench run PROTOCOL [PROTOCOL ...] --method NAME [--method NAME ...] --seeds 0,1,2
                    --results DIR [--set KEY=VALUE ...] [--report DIR]
    subnetbench run --grid digits --seeds 0,1,2 --results DIR --report DIR
    subnetbench run ... [--jobs N | --devices 0,1,2,3 | --executor slurm --slurm-time 12:00:00 ...]
    subnetbench status DIR [--json]
    subnetbench report --results DIR --out DIR
    subnetbench selftest [--device cuda]

Every option of every run is validated before the first run starts; errors are one paragraph.

Exit codes: 0 success; 2 a bad option or an expected fault the user can fix (a path that is a file,
no permission, a full disk, a corrupt, foreign or newer-format file, missing data: every
:class:`~subnetbench.errors.SubnetbenchError`), printed as ``subnetbench: error: ...``; 1 a run that
failed by itself (its loss diverged) or an unexpected error, which is a bug: one paragraph too, and
the traceback only with the environment variable ``SUBNETBENCH_DEBUG=1``; 130 an interrupt. With
``--jobs N`` or ``--devices``, a run whose worker raises is printed as failed as soon as it fails,
the other runs go on, and the command ends with the code of that error.
Warnings (a bad file moved aside) go to stderr as ``subnetbench: warning: ...``.
"""
from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from subnetbench import devices, methods, scaleout, status
from subnetbench.benchmark import grids, protocols
from subnetbench.benchmark.callbacks import tensorboard_missing
from subnetbench.benchmark.config import MAX_SEED, parse_assignments
from subnetbench.benchmark.recipe import RECIPE_PRESETS, Recipe
from subnetbench.benchmark.results import inspect_result, run_path
from subnetbench.benchmark.runner import (
    execute,
    execute_runs,
    make_config,
    planned_run,
    resolve_device,
    run_label,
    seed_batches,
    summarise,
)
from subnetbench.errors import (
    FileFault,
    NewerFormatError,
    OptionError,
    SubnetbenchError,
    describe_os_error,
    stdout_fault,
)
from subnetbench.files import check_writable_directory
from subnetbench.progress import RunProgress

DEBUG_VARIABLE = "SUBNETBENCH_DEBUG"


def _parse_seeds(text: str) -> list[int]:
    parts = [part.strip() for part in text.split(",")]
    try:
        # ASCII digits only: int() also reads other scripts' digits ('٣' as 3), '+3' and '1_0'.
        if not all(re.fullmatch(r"-?[0-9]+", part) for part in parts):
            raise ValueError(text)
        seeds = [int(part) for part in parts]
    except ValueError:
        empty = " (it has an empty item)" if "" in parts and text.strip() else ""
        raise OptionError(f"--seeds {text!r} is not allowed{empty}; expected comma-separated "
                          "integers (ASCII digits) such as 0,1,2") from None
    if any(s < 0 for s in seeds):
        raise OptionError(f"--seeds {text!r} is not allowed; expected integers >= 0 such as 0,1,2")
    too_large = [s for s in seeds if s >= MAX_SEED]
    if too_large:
        raise OptionError(f"--seeds: seed {too_large[0]} is not allowed; expected integers in "
                          f"[0, 2**63) (the seed names the run's files and seeds 64-bit random "
                          "generators)")
    return seeds


def check_path_option(value: str | None, option: str) -> None:
    """Refuse an empty path: ``Path("")`` is the current directory, which nobody means."""
    if value is not None and not value.strip():
        raise OptionError(f"{option} {value!r} is not allowed; expected a path")


def _check_counts(args: argparse.Namespace) -> None:
    """The integer options of ``run``, before anything is planned."""
    for option, value in (("--jobs", args.jobs), ("--threads", args.threads),
                          ("--checkpoint-every", args.checkpoint_every),
                          ("--seed-batch", args.seed_batch)):
        if value < 1:
            raise OptionError(f"{option} {value} is not allowed; expected an integer >= 1")
    if args.threads > devices.max_threads():
        raise OptionError(f"--threads {args.threads} is not allowed; expected an integer in [1, "
                          f"{devices.max_threads()}] (torch threads of one run; this machine has "
                          f"{os.cpu_count()} CPUs)")


def _method_info(name: str) -> dict[str, Any]:
    cls = methods.get(name)
    method = cls()
    declared = {"stochastic": cls.stochastic, "evaluation_samples": method.evaluation_samples,
                "fixed_keep_fraction": method.fixed_keep_fraction, "rescaling": method.rescaling,
                "rounds": method.rounds, "seed_batch_refusal": method.seed_batch_refusal()}
    return {"name": name, "family": cls.family, "origin": methods.origin(name),
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


def _planned(args: argparse.Namespace) -> list:
    """Every run's configuration, validated before anything runs."""
    seeds = _parse_seeds(args.seeds)
    overrides = parse_assignments(args.set or [])
    if args.grid:
        if args.protocols or args.method or args.recipe:
            raise OptionError("--grid replaces the protocols, --method and --recipe (each cell of a "
                              "grid has its own); give one or the other")
        cells = [(cell.protocols, cell.methods, {**cell.overrides, **overrides}, cell.preset)
                 for cell in grids.get(args.grid)]
    else:
        if not args.protocols:
            raise OptionError("no protocol given; name one or more (e.g. digits-conv2, or digits for "
                              f"all digits protocols) or use --grid {sorted(grids.GRIDS)}")
        chosen = args.method or ["all"]
        names = methods.names() if "all" in chosen else chosen
        for name in names:
            methods.get(name)
        cells = [(protocols.expand(args.protocols), names, overrides, args.recipe)]
    configs = {}  # by run id: a run named twice (--seeds 0,0, a repeated --method) runs once
    for protocol_names, method_names, cell_overrides, preset in cells:
        for protocol in protocol_names:
            for method in method_names:
                for seed in seeds:
                    config = make_config(protocol, method, seed, cell_overrides,
                                         list(method_names), preset)
                    configs.setdefault(config.run_id, config)
    return list(configs.values())


def cmd_run(args: argparse.Namespace) -> int:
    _check_counts(args)
    for option, value in (("--results", args.results), ("--report", args.report),
                          ("--data", args.data), ("--tensorboard", args.tensorboard)):
        check_path_option(value, option)
    configs = _planned(args)
    launch = scaleout.resolve_launch(args)
    device = launch.device
    if args.jobs > 1 and device != "cpu":
        raise OptionError(f"--jobs {args.jobs} runs several CPU runs at once; on {device} use "
                          "--jobs 1")
    if args.seed_batch > 1 and args.jobs > 1:
        raise OptionError(f"--seed-batch {args.seed_batch} is not allowed here; use --jobs 1 with a "
                          "seed batch (one process trains it)")
    if args.report:  # found out now, not after hours of runs
        check_writable_directory(args.report, "report directory")
    options = dict(device=device, data_dir=args.data, download=not args.no_download,
                   force=args.force, deterministic=args.deterministic,
                   checkpoint_every=args.checkpoint_every, save_subnetwork=not args.no_save_subnetwork)
    if args.tensorboard:
        # An optional extra, not a reason to stop hours of runs: without it they go on, and say so.
        missing = tensorboard_missing()
        if missing:
            print(f"subnetbench run: --tensorboard {args.tensorboard}: {missing}; the runs go on "
                  "without TensorBoard curves (their result files keep every epoch's curves)",
                  file=sys.stderr, flush=True)
        else:
            options["tensorboard"] = str(Path(args.tensorboard).resolve())  # workers and jobs share it
    units = seed_batches(configs, args.seed_batch)  # every batch checked before anything is written
    check_stored_results(configs, Path(args.results))
    options, command = scaleout.prepare(args, configs, launch, options)
    code = 0
    results = []
    # Cluster jobs write their own logs; here the display follows the runs of this machine.
    # Runs that train at a time share the wall clock: the time left is divided among them.
    slots = (len(launch.slots) if launch.slots else args.jobs) * max(1, args.seed_batch)
    with RunProgress(len(configs), enabled=not args.no_progress and launch.executor == "inline",
                     plan=[planned_run(c) for c in configs], slots=slots) as display:
        if launch.executor != "inline":
            runs, code = scaleout.run_on_cluster(args, configs, units, options, command)
            if runs is None:  # --no-wait, or stopped waiting
                return code
        elif launch.slots is not None:
            runs = devices.execute_on_devices(units, args.results, options, launch.slots,
                                              args.threads, args.seed_batch_mode, display=display)
        elif args.seed_batch > 1:
            runs = _execute_seed_batches(units, args.results, options, args.seed_batch_mode,
                                         args.threads, display)
        else:
            runs = _execute_all(configs, args.results, options, args.jobs, args.threads, display)
        for config, result in runs:
            # named as people tell runs apart; the hash finds its file (runs/<protocol>.<method>.<hash>...)
            display.finished(config.run_id, f"[{len(results) + 1}/{len(configs)}] {run_label(config)}: "
                             f"{scaleout.outcome_text(result)} ({config.config_hash})")
            results.append(result)
    print()
    print(summarise(results))
    note = scaleout.closing_note(results, args.results)
    if note:
        print(note)
    raised = [r for r in results if "raised" in r]
    if raised:
        _say(f"subnetbench: error: {_worker_failures(raised, len(results))}")
        code = max([code] + [exit_code(r["raised"]) for r in raised])
    if args.report:
        code = max(code, _report(Path(args.results), Path(args.report)))
    return code


MAX_LISTED_FILES = 5  # files named in one error paragraph; the rest are counted


def check_stored_results(configs: list, results_dir: Path) -> None:
    """Refuse, before any run starts, a command whose planned runs include a result file that would
    stop it halfway: one of a newer format version (left as it is) or one that cannot be read (a
    directory, no permission). Each run refuses its own file anyway, but only when its turn comes,
    after earlier runs have trained. A damaged file is no reason to stop (its run moves it aside
    and computes it again), nor a results path under a file (the directory checks that follow say
    so once, not once per run)."""
    problems: list[SubnetbenchError] = []
    for config in configs:
        try:
            inspect_result(run_path(results_dir, config.run_id))
        except NewerFormatError as error:
            problems.append(error)
        except FileFault as error:
            if error.errno not in (errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP):
                problems.append(error)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        listed = "; ".join(f"({i}) {_one_paragraph(p)}"
                           for i, p in enumerate(problems[:MAX_LISTED_FILES], 1))
        more = len(problems) - MAX_LISTED_FILES
        listed += f"; and {more} more like these" if more > 0 else ""
        raise SubnetbenchError(
            f"{len(problems)} result files of the planned runs cannot be used, so no run was "
            f"started: {listed}. Fix or move them away (a newer-format file needs the newer "
            "subnetbench: pip install -U subnetbench), or choose another --results directory")


def _execute_all(configs: list, results_dir: str, options: dict[str, Any], jobs: int,
                 threads: int, display: RunProgress) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Each run, as it finishes. On a CPU every run uses ``threads`` torch threads (so its numbers
    do not depend on ``jobs``); ``jobs`` > 1 runs that many at once in the worker processes of
    :func:`subnetbench.devices.execute_on_devices` (CPU slots), whose progress events come back
    through a queue to ``display``, and where a run that raises is reported as failed at once
    while the others go on."""
    if options["device"] == "cpu":
        torch.set_num_threads(threads)
    if jobs == 1:
        for config in configs:
            yield config, execute(config, results_dir, progress=display, **options)
        return
    yield from devices.execute_on_devices([[config] for config in configs], results_dir, options,
                                          list(range(jobs)), threads, "auto", device_type="cpu",
                                          display=display)


def _execute_seed_batches(batches: list[list], results_dir: str, options: dict[str, Any],
                          mode: str, threads: int,
                          display: RunProgress) -> Iterator[tuple[Any, dict[str, Any]]]:
    """--seed-batch: each batch (up to K seeds of one configuration, from
    :func:`~subnetbench.benchmark.runner.seed_batches`, which checked them all) trained together in
    this process (benchmark/runner.py), in the planned order."""
    if options["device"] == "cpu":
        torch.set_num_threads(threads)
    for batch in batches:
        yield from zip(batch, execute_runs(batch, results_dir, seed_batch_mode=mode, progress=display,
                                           **options))


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def exit_code(error: BaseException) -> int:
    """The exit code for ``error`` (see the module's docstring): an error's own ``exit_code``, 2
    for the other faults a user can fix, 1 for the unexpected."""
    if isinstance(error, (OptionError, methods.RegistryError, SubnetbenchError, OSError)):
        return getattr(error, "exit_code", 2)
    return 1


def _worker_failures(raised: list[dict[str, Any]], total: int) -> str:
    """One paragraph on the runs whose worker raised (each has its failed line above)."""
    names = ", ".join(r["run_id"] for r in raised[:5]) + (", ..." if len(raised) > 5 else "")
    return (f"{len(raised)} of {total} runs failed ({names}); their lines above say why; fix the "
            "cause and run the same command again: the finished runs are reused")


def _report(results_dir: Path, out_dir: Path) -> int:
    from subnetbench import reports

    html = reports.build_report(results_dir, out_dir, log=_say)
    print(f"report: {html}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from subnetbench import reports

    for option, value in (("--results", args.results), ("--out", args.out),
                          ("--reference", args.reference)):
        check_path_option(value, option)
    return reports.main_from_args(args)


def cmd_speed(args: argparse.Namespace) -> int:
    from subnetbench.benchmark import speed

    return speed.main_from_args(args, "subnetbench " + " ".join(args.argv))


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
    from subnetbench.benchmark import selftest

    networks = tuple(_names(args.networks, "--networks", list(selftest.NETWORKS)))
    method_names = _names(args.methods, "--methods", methods.names()) if args.methods else None
    if not 1 <= args.threads <= devices.max_threads():
        raise OptionError(f"--threads {args.threads} is not allowed; expected an integer in [1, "
                          f"{devices.max_threads()}]")
    device = resolve_device(args.device)  # a bad or absent device: one paragraph before anything
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    print(f"subnetbench selftest on {selftest.describe_device(device)}", flush=True)
    started = time.perf_counter()
    outcome = selftest.run_selftest(str(device), networks, method_names,
                                    report=lambda check: print(selftest.format_check(check), flush=True))
    print(selftest.verdict(outcome, time.perf_counter() - started), flush=True)
    return 0 if outcome.passed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="subnetbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="methods, protocols, grids and options")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_list.set_defaults(func=cmd_list)

    p_run = sub.add_parser("run", help="run protocols x methods x seeds")
    p_run.add_argument("protocols", nargs="*", help="protocol names ({dataset}-{network}) or a "
                       "dataset name for all its protocols")
    p_run.add_argument("--method", action="append", help="method name (repeatable); 'all' for "
                       "every registered method (the default)")
    p_run.add_argument("--grid", help=f"a named grid instead of protocols and methods: "
                       f"{', '.join(sorted(grids.GRIDS))}")
    p_run.add_argument("--seeds", default="0", help="comma-separated root seeds (default 0)")
    p_run.add_argument("--results", default="results", help="results directory (default results)")
    p_run.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="an option: a recipe key (epochs=5), method.KEY for every method, or "
                       "NAME.KEY for method NAME only (repeatable)")
    p_run.add_argument("--recipe", choices=sorted(RECIPE_PRESETS), help="a recipe preset: aslp "
                       "(the default) or edge_popup (SGD, cosine, 100 epochs, batch 128, DA)")
    p_run.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p_run.add_argument("--data", help="data cache directory (default $SUBNETBENCH_DATA or "
                       "~/.cache/subnetbench)")
    p_run.add_argument("--no-download", action="store_true", help="never download data")
    p_run.add_argument("--force", action="store_true", help="run again even if finished")
    p_run.add_argument("--no-progress", action="store_true", help="no progress line")
    p_run.add_argument("--deterministic", action="store_true",
                       help="deterministic CUDA kernels (slower); CPU runs always are")
    p_run.add_argument("--jobs", type=int, default=1, help="CPU runs at once, in worker processes "
                       "(default 1)")
    p_run.add_argument("--threads", type=int, default=1, help="torch threads of each CPU run "
                       "(default 1: for these small networks one thread a run and one run a core is "
                       "fastest; the numbers do not depend on --jobs)")
    p_run.add_argument("--no-save-subnetwork", action="store_true",
                       help="do not write the extracted subnetwork (RESULTS/subnetworks/RUN_ID.pt; "
                       "by default it is written, and the benchmark suite checks it)")
    p_run.add_argument("--checkpoint-every", type=int, default=1, metavar="EPOCHS",
                       help="checkpoint interval in epochs (default 1)")
    p_run.add_argument("--tensorboard", metavar="DIR", help="also write each run's per-epoch curves "
                       "(loss, accuracy, validation accuracy, epoch time) for TensorBoard under "
                       "DIR/<run id>; needs the tensorboard package (pip install tensorboard)")
    p_run.add_argument("--report", metavar="DIR", help="write the report of the results "
                       "directory here at the end")
    p_run.add_argument("--seed-batch", type=int, default=1, metavar="K",
                       help="train up to K seeds of one configuration together in one process "
                       "(the result files and run ids of separate runs; any method that trains "
                       "one round; see benchmark/runner.py)")
    p_run.add_argument("--seed-batch-mode", choices=("auto", "grouped", "loop"), default="auto",
                       help="grouped: one grouped convolution for all seeds (for GPUs); loop: each "
                       "seed's own forward, the arithmetic of separate runs; auto (default): "
                       "grouped on CUDA, loop on a CPU")
    scaleout.add_arguments(p_run)
    p_run.set_defaults(func=cmd_run)

    p_status = sub.add_parser("status", help="what is done, running, failed and missing in a "
                              "results directory", description=status.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_arguments(p_status)
    p_status.set_defaults(func=status.cmd_status)

    p_report = sub.add_parser("report", help="HTML report of a results directory")
    from subnetbench import reports

    reports.add_arguments(p_report)
    p_report.set_defaults(func=cmd_report)

    p_speed = sub.add_parser("speed", help="training throughput against the official pipeline "
                             "(python -m subnetbench.benchmark.speed)",
                             description="Training throughput of the suite against a re-creation "
                             "of the official pipeline, side by side; the details are in "
                             "benchmark/speed/__init__.py and python -m subnetbench.benchmark.speed "
                             "--help.")
    from subnetbench.benchmark import speed

    speed.add_arguments(p_speed)
    p_speed.set_defaults(func=cmd_speed)

    p_selftest = sub.add_parser("selftest", help="before a long grid: every method and the fast path "
                                "a few steps on the device, a resume, a verdict",
                                description="Checks on the device, in a few minutes, that every "
                                "part of a run works (see benchmark/selftest.py): every registered "
                                "method on Conv2/4/6 at CIFAR's shape on generated data through the "
                                "real run lifecycle, channels_last, bf16 autocast and torch.compile "
                                "(CUDA), a seed batch, a resumed run and --deterministic. Exit 0 "
                                "when no check failed, 1 otherwise.")
    p_selftest.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p_selftest.add_argument("--networks", default=",".join(("conv2", "conv4", "conv6")),
                            help="comma-separated networks the methods train (default "
                            "conv2,conv4,conv6; the other checks use the first)")
    p_selftest.add_argument("--methods", help="comma-separated registered methods (default: all)")
    p_selftest.add_argument("--threads", type=int, default=1, help="torch threads on a CPU "
                            "(default 1)")
    p_selftest.set_defaults(func=cmd_selftest)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message comes (not the one at creation)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        return f"subnetbench: {record.levelname.lower()}: {_one_paragraph(record.getMessage())}"


def show_warnings() -> None:
    """Print the library's warnings (logger ``subnetbench``: a bad file moved aside) on stderr."""
    logger = logging.getLogger("subnetbench")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.INFO)


def _one_paragraph(text: object) -> str:
    return " ".join(str(text).split())


class _StandardOutput:
    """``sys.stdout`` while a command runs: a write that fails (output redirected to a full disk, to
    /dev/full) raises a :class:`~subnetbench.errors.StdoutFault`, whose message names standard
    output; the bare OSError has no file name, and was reported as "cannot use a file". A closed
    pipe (``| head``) stays a BrokenPipeError: a quiet end. Everything else is the stream's own."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise stdout_fault(error) from error

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise stdout_fault(error) from error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded by commands that write what produced their output
    show_warnings()
    stdout = sys.stdout
    sys.stdout = _StandardOutput(stdout)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a write that fails at the end fails here, with its message
        return code
    except (OptionError, methods.RegistryError, SubnetbenchError) as error:
        print(f"subnetbench: error: {_one_paragraph(error)}", file=sys.stderr)
        return getattr(error, "exit_code", 2)
    except OSError as error:  # a file fault not met at a write of the suite's own
        if isinstance(error, BrokenPipeError):  # the reader of stdout went away (| head)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        if os.environ.get(DEBUG_VARIABLE):
            raise
        where = error.filename if error.filename is not None else "a file"
        print(f"subnetbench: error: {_one_paragraph(describe_os_error(error, where, 'use'))}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nsubnetbench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: say so in one paragraph; the traceback on request
        if os.environ.get(DEBUG_VARIABLE):
            raise
        print(f"subnetbench: internal error: {type(error).__name__}: "
              f"{_one_paragraph(error)[:500]}. This is a bug of subnetbench; run the command again "
              f"with {DEBUG_VARIABLE}=1 for the traceback, and report it", file=sys.stderr)
        return 1
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
