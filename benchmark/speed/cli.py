"""The command line of the speed study: ``subnetbench speed`` and ``python -m
subnetbench.benchmark.speed``; every option is checked before anything is measured."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

import torch

from subnetbench.benchmark import speed
from subnetbench.benchmark.device import resolve_device
from subnetbench.benchmark.grouped import resolve_mode
from subnetbench.benchmark.speed.estimate import MAX_EPOCHS, NETWORKS
from subnetbench.benchmark.speed.study import (
    VARIANTS,
    Bench,
    method_choices,
    method_spec,
    seed_batch_refusal,
)
from subnetbench.benchmark.speed.table import format_table
from subnetbench.devices import max_threads
from subnetbench.errors import OptionError, SubnetbenchError
from subnetbench.files import atomic_write_text, check_writable_file, finite_or_null, strict_json

DEFAULT_METHODS = ("aslp", "supermask", "edge_popup", "dense")  # the paper's comparison
DATASETS = ("cifar10", "cifar100", "digits")  # digits: a tiny smoke run; the grid is CIFAR's
PROG = "python -m subnetbench.benchmark.speed"


def _items(text: str, everything: Sequence[str]) -> list[str]:
    """The items of a comma-separated option: ``none`` is none, ``all`` each of ``everything``."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if items == ["none"]:
        return []
    if items == ["all"]:
        return list(everything)
    return items


def _csv(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = _items(text, allowed)
    for item in items:
        if item not in allowed:
            raise OptionError(f"--{what} {item!r} is not allowed; expected a comma-separated list "
                              f"of {', '.join(allowed)} (or all, none)")
    return items


def _method_csv(text: str, what: str) -> list[str]:
    """Method values of the study, checked against the registry (not a fixed list): any registered
    method, NAME+sr where it declares a smart rescale; ``all`` is every one of them."""
    items = _items(text, method_choices())
    for item in items:
        try:
            method_spec(item)
        except OptionError as error:
            raise OptionError(f"--{what} {item!r} is not allowed: {error} (or all, none)") from None
    return items


def _seed_method(value: str, dataset: str) -> str:
    """A method value of the study that can train several seeds together (its declaration)."""
    try:
        refusal = seed_batch_refusal(value, dataset)
    except OptionError as error:
        raise OptionError(f"--seed-method {value!r} is not allowed: {error}") from None
    if refusal:
        batchable = [m for m in method_choices() if seed_batch_refusal(m, dataset) is None]
        raise OptionError(f"--seed-method {value!r} is not allowed: {refusal}; methods that can "
                          f"train several seeds together: {', '.join(batchable)}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=speed.__doc__,  # the study's method
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m subnetbench.benchmark.speed`` and ``subnetbench speed``."""
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--dataset", choices=DATASETS, default="cifar10", help="shape of the "
                        "generated data (default cifar10; digits is a tiny smoke run, no grid "
                        "estimate)")
    parser.add_argument("--quick", action="store_true", help="a few batches per configuration "
                        "instead of full 45,000-image epochs (on a CPU also batch 64)")
    parser.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated networks "
                        f"(default {','.join(NETWORKS)})")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated "
                        f"methods (default {','.join(DEFAULT_METHODS)}, the paper's comparison): any "
                        "registered method (subnetbench list), NAME+sr for it with its smart rescale "
                        "where it declares one (aslp+sr), or all")
    parser.add_argument("--variants", help="fast-path variants to time besides the default: "
                        f"{','.join(VARIANTS)}, or none (default: channels_last on a CPU with "
                        "--quick, channels_last,compile on a CPU, all on CUDA)")
    parser.add_argument("--variant-methods", help="methods that get the variant rows, as "
                        "--methods (default: aslp with --quick on a CPU, else every method)")
    parser.add_argument("--seed-batches", default="1,2,4,8", help="seeds trained together, "
                        "comma-separated, or none (default 1,2,4,8)")
    parser.add_argument("--grouped-seed-batches", help="k of the grouped mode's rows (default: "
                        "--seed-batches; 1,2 with --quick on a CPU, where grouped does not pay)")
    parser.add_argument("--seed-networks", help="networks of the seed-batched rows (default: the "
                        "first network with --quick on a CPU, else every network)")
    parser.add_argument("--seed-method", default="aslp", help="method of the seed-batched rows "
                        "(default aslp): a method as for --methods that can train several seeds "
                        "together")
    parser.add_argument("--seed-modes", help="seed-batch modes, comma-separated: grouped, loop "
                        "(default: both on a CPU, grouped on CUDA)")
    parser.add_argument("--batch-size", type=int, help="training batch (default 256; 64 with "
                        "--quick on a CPU)")
    parser.add_argument("--batches", type=int, help="batches per timed epoch (default: a full "
                        "epoch; --quick: 2 on a CPU, 20 on CUDA)")
    parser.add_argument("--repeats", type=int, help="timed epochs, the median is reported")
    parser.add_argument("--warmup", type=int, help="untimed epochs before (default 1)")
    parser.add_argument("--eval-images", type=int, help="images of the validation measurement")
    parser.add_argument("--reference-workers", type=int, default=min(10, os.cpu_count() or 1),
                        help="DataLoader worker processes of the reference (default: the official "
                        "code's 10, at most the CPU count)")
    parser.add_argument("--epochs-to-best", type=int, default=200, help="ASSUMED mean epochs to "
                        "the best validation accuracy, for the grid estimate (default 200)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads of the main process "
                        "(default: 1 on a CPU, as subnetbench run trains there; torch's on CUDA)")
    parser.add_argument("--json", metavar="PATH", help="write the result here")
    parser.add_argument("--silent", action="store_true", help="no progress lines on stderr")


def _resolve(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with every option checked and its device-dependent default filled in, in place;
    the first bad option raises OptionError, before anything is measured."""
    device = resolve_device(args.device)
    cpu_quick = args.quick and device.type != "cuda"
    _resolve_rows(args, device, cpu_quick)
    _resolve_seed_rows(args, device, cpu_quick)
    _check_counts(args, device)
    return args


def _resolve_rows(args: argparse.Namespace, device: torch.device, cpu_quick: bool) -> None:
    """The networks and methods measured, and the fast-path variants and the methods that get them."""
    given = {"networks": args.networks, "methods": args.methods}
    args.networks = _csv(args.networks, NETWORKS + ("conv8",), "networks")
    args.methods = _method_csv(args.methods, "methods")
    for name in given:
        if not getattr(args, name):  # "," or "none": nothing to measure, after the set-up
            raise OptionError(f"--{name} {given[name]!r} is not allowed: it names none; expected a "
                              "comma-separated list (or all)")
    default_variants = ("channels_last" if cpu_quick else "channels_last,compile"
                        if device.type != "cuda" else ",".join(VARIANTS))
    args.variants = _csv(args.variants or default_variants, VARIANTS, "variants")
    default_variant_methods = "aslp" if cpu_quick else ",".join(args.methods)
    args.variant_methods = _method_csv(args.variant_methods or default_variant_methods,
                                       "variant-methods")


def _resolve_seed_rows(args: argparse.Namespace, device: torch.device, cpu_quick: bool) -> None:
    """The seed-batched rows: their k (all modes, and the grouped mode's), networks, method, modes."""
    args.seed_batches = ([] if args.seed_batches.strip() == "none" else
                         _seed_counts(args.seed_batches, "seed-batches", "such as 1,2,4,8"))
    if args.grouped_seed_batches:
        args.grouped_seed_batches = _seed_counts(args.grouped_seed_batches, "grouped-seed-batches")
    else:
        args.grouped_seed_batches = ([k for k in args.seed_batches if k <= 2] if cpu_quick
                                     else args.seed_batches)
    default_seed_networks = args.networks[:1] if cpu_quick else args.networks
    args.seed_networks = (_csv(args.seed_networks, NETWORKS + ("conv8",), "seed-networks")
                          if args.seed_networks else default_seed_networks)
    if not args.seed_batches:
        args.seed_networks = []
    args.seed_method = _seed_method(args.seed_method, args.dataset)
    modes = args.seed_modes or ("grouped" if device.type == "cuda" else "loop,grouped")
    args.seed_modes = [resolve_mode(m, device) for m in _csv(modes, ("auto", "grouped", "loop"),
                                                               "seed-modes")]


def _seed_counts(text: str, option: str, example: str = "") -> list[int]:
    """The k of a comma-separated list of seed-batch sizes, each >= 1."""
    try:
        counts = [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        raise OptionError(f"--{option} {text!r} is not allowed; expected comma-separated integers"
                          + (f" {example}" if example else "")) from None
    if any(k < 1 for k in counts):
        raise OptionError(f"--{option}: every k must be >= 1")
    return counts


def _check_counts(args: argparse.Namespace, device: torch.device) -> None:
    """The sizes, repeats and thread counts (threads default to 1 on a CPU, as run trains there)."""
    for name in ("batch_size", "batches", "repeats", "eval_images"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise OptionError(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup is not None and args.warmup < 1:
        raise OptionError("--warmup must be >= 1 (the first epoch also builds caches)")
    if args.reference_workers < 0:
        raise OptionError("--reference-workers must be >= 0")
    if args.threads is None and device.type == "cpu":
        args.threads = 1
    if args.threads is not None and not 1 <= args.threads <= max_threads():
        raise OptionError(f"--threads {args.threads} is not allowed; expected an integer in [1, "
                          f"{max_threads()}]")
    if not 1 <= args.epochs_to_best <= MAX_EPOCHS:
        # 1-based like a result's metrics.epochs_to_best: the epoch of the best validation
        # accuracy; 0 (or more than a run's cap of epochs) is no run the grid estimate can assume.
        raise OptionError(f"--epochs-to-best {args.epochs_to_best} is not allowed; expected an "
                          f"integer in [1, {MAX_EPOCHS}] (the assumed epoch of the best validation "
                          "accuracy, 1-based)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    return main_from_args(args, f"{PROG} " + " ".join(argv))


def main_from_args(args: argparse.Namespace, command: str) -> int:
    """Measure, print the table and write the JSON (atomically) from parsed arguments. The --json
    path is checked before anything is measured; if writing it still fails afterwards, the
    measurement is kept: written to a file in the temporary directory (or printed), and the error
    says where (exit 2)."""
    try:
        if args.json is not None:
            if not args.json.strip():
                raise OptionError("--json '' is not allowed; expected a file path")
            check_writable_file(args.json, "--json file")
        args = _resolve(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        result = Bench(args).run()
    except (OptionError, SubnetbenchError) as error:
        print(f"subnetbench speed: error: {error}", file=sys.stderr)
        return 2
    result["table"] = format_table(result)
    result["command"] = command
    print(result["table"])
    if args.json:
        text = strict_json(finite_or_null(result), indent=1) + "\n"
        try:
            atomic_write_text(args.json, text)
        except SubnetbenchError as error:
            print(f"subnetbench speed: error: {error}; the measurement is kept: "
                  f"{_keep_elsewhere(text)}", file=sys.stderr)
            return 2
        print(f"\nwritten: {args.json}")
    return 1 if result.get("failed_rows") else 0  # 1: a row failed (its error is in the table)


def _keep_elsewhere(text: str) -> str:
    """Write a measurement whose --json path failed to a new file in the temporary directory and
    say where; print it on stdout if even that fails."""
    try:
        fd, path = tempfile.mkstemp(prefix="subnetbench-speed-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return f"written to {path} instead"
    except OSError:
        print(text)
        return "its JSON is printed above"
