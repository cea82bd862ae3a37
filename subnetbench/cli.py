"""The subnetbench command: list, run, status, report, speed, selftest.

    subnetbench list [--json]
    subnetbench run PROTOCOL [PROTOCOL ...] --method NAME [--method NAME ...] --seeds 0,1,2
                    --results DIR [--set KEY=VALUE ...] [--report DIR]
    subnetbench run --grid digits --seeds 0,1,2 --results DIR --report DIR
    subnetbench run ... [--jobs N | --devices 0,1,2,3 | --executor slurm --slurm-time 12:00:00 ...]
    subnetbench status DIR [--json]
    subnetbench report --results DIR --out DIR
    subnetbench selftest [--device cuda]

Every option of every run is validated before the first run starts; errors are one paragraph.

Exit codes: 0 success; 2 a bad option or a fault the user can fix (a path that is a file, no
permission, a full disk, a corrupt, foreign or newer-format file, missing data), printed as
"subnetbench: error: ..."; 1 a run that failed by itself (its loss diverged) or an unexpected error,
which is a bug (the traceback only with SUBNETBENCH_DEBUG=1); 130 an interrupt. With --jobs N or
--devices, a run whose worker raises is printed as failed as soon as it fails, the other runs go
on, and the command ends with the code of that error. Warnings (a bad file moved aside) go to
stderr as "subnetbench: warning: ...".
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from subnetbench import status
from subnetbench.console import (
    DEBUG_VARIABLE,
    StandardOutput,
    exit_code,
    one_paragraph,
    show_warnings,
)
from subnetbench.errors import OptionError, SubnetbenchError, describe_os_error

__all__ = ["COMMANDS", "DEBUG_VARIABLE", "build_parser", "main"]


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, and where its options and its body are ("module:function",
    loaded only for the command that runs, so that ``--help`` imports no torch)."""

    help: str
    arguments: str
    body: str
    description: str | None = None


SELFTEST_DESCRIPTION = (
    "Checks on the device, in a few minutes, that every part of a run works (see "
    "benchmark/selftest.py): every registered method on Conv2/4/6 at CIFAR's shape on generated "
    "data through the real run lifecycle, channels_last, bf16 autocast and torch.compile (on a CPU "
    "too), a seed batch, a resumed run and --deterministic. Exit 0 when no check failed, 1 otherwise.")
TIMING_DESCRIPTION = (
    "Claim 4's timing study (benchmark/rescaling_study.py): in one process, fresh networks of aslp "
    "with and without smart rescale and supermask with and without dynamic weight rescaling each "
    "time one epoch per repeat, in turn; the report judges the medians of their ratios.")
SPEED_DESCRIPTION = (
    "Training throughput of the suite against a re-creation of the official pipeline, side by "
    "side; the details are in benchmark/speed/__init__.py and python -m "
    "subnetbench.benchmark.speed --help.")

COMMANDS = {
    "list": Command("methods, protocols, grids and options", "subnetbench.cli:list_arguments",
                    "subnetbench.commands:cmd_list"),
    "run": Command("run protocols x methods x seeds", "subnetbench.launch.arguments:add_arguments",
                   "subnetbench.run_command:cmd_run"),
    "status": Command("what is done, running, failed and missing in a results directory",
                      "subnetbench.status:add_arguments", "subnetbench.status:cmd_status",
                      status.__doc__),
    "report": Command("HTML report of a results directory", "subnetbench.reports:add_arguments",
                      "subnetbench.commands:cmd_report"),
    "timing": Command("claim 4's timing study: rescaling overheads, interleaved with their baselines",
                      "subnetbench.benchmark.rescaling_study:add_arguments",
                      "subnetbench.commands:cmd_timing", TIMING_DESCRIPTION),
    "speed": Command("training throughput against the official pipeline (python -m "
                     "subnetbench.benchmark.speed)", "subnetbench.benchmark.speed.cli:add_arguments",
                     "subnetbench.commands:cmd_speed", SPEED_DESCRIPTION),
    "selftest": Command("before a long grid: every method and the fast path a few steps on the "
                        "device, a resume, a verdict", "subnetbench.cli:selftest_arguments",
                        "subnetbench.commands:cmd_selftest", SELFTEST_DESCRIPTION),
}


def _load(reference: str) -> Callable:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def selftest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--networks", default="conv2,conv4,conv6",
                        help="comma-separated networks the methods train (default "
                        "conv2,conv4,conv6; the other checks use the first)")
    parser.add_argument("--methods", help="comma-separated registered methods (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on a CPU (default 1)")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with ``argv`` only of the command it names (the others are
    listed, their options not loaded)."""
    parser = argparse.ArgumentParser(prog="subnetbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    named = next((arg for arg in argv if not arg.startswith("-")), None) if argv is not None else None
    for name, command in COMMANDS.items():
        child = sub.add_parser(name, help=command.help, description=command.description,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        child.set_defaults(body=command.body)
        if argv is None or name == named:
            _load(command.arguments)(child)
    return parser


def _run(body: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``body(args)``, its errors turned into one paragraph on stderr and an exit code."""
    try:
        code = body(args)
        sys.stdout.flush()  # a write that fails at the end fails here, with its message
        return code
    except (OptionError, SubnetbenchError) as error:
        print(f"subnetbench: error: {one_paragraph(error)}", file=sys.stderr)
        return exit_code(error)
    except OSError as error:  # a file fault not met at a write of the suite's own
        if isinstance(error, BrokenPipeError):  # the reader of stdout went away (| head)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        if os.environ.get(DEBUG_VARIABLE):
            raise
        where = error.filename if error.filename is not None else "a file"
        print(f"subnetbench: error: {one_paragraph(describe_os_error(error, where, 'use'))}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nsubnetbench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: say so in one paragraph; the traceback on request
        if os.environ.get(DEBUG_VARIABLE):
            raise
        print(f"subnetbench: internal error: {type(error).__name__}: "
              f"{one_paragraph(error)[:500]}. This is a bug of subnetbench; run the command again "
              f"with {DEBUG_VARIABLE}=1 for the traceback, and report it", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    args.argv = argv  # recorded by commands that write what produced their output
    show_warnings()
    stdout = sys.stdout
    sys.stdout = StandardOutput(stdout)
    try:
        return _run(_load(args.body), args)
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
