"""``subnetbench run``: the command line's options turned into frozen options once
(:func:`run_options`), the runs planned and checked, then launched by the executor
:func:`~subnetbench.launch.executors.choose_executor` picks, with a line per run and a summary."""
from __future__ import annotations

import argparse
from pathlib import Path

from subnetbench import methods
from subnetbench.benchmark import grids, protocols
from subnetbench.benchmark.callbacks import tensorboard_missing
from subnetbench.benchmark.config import make_config, parse_assignments
from subnetbench.benchmark.recipe import RECIPE_PRESETS
from subnetbench.benchmark.seed_batch import seed_batches
from subnetbench.benchmark.stored_result import judge
from subnetbench.benchmark.summary import planned_run, run_label, summarise
from subnetbench.console import exit_code, say
from subnetbench.errors import OptionError
from subnetbench.launch.executors import choose_executor
from subnetbench.launch.options import ClusterOptions, RunOptions, RunSettings, parse_seeds
from subnetbench.launch.outcome import RunOutcome, closing_note, worker_failures
from subnetbench.launch.prepare import prepare
from subnetbench.layout import ResultsLayout
from subnetbench.progress import RunProgress
from subnetbench.reports import build_report


def run_options(args: argparse.Namespace) -> RunOptions:
    """The frozen options of ``run``; nothing argparse-shaped goes further."""
    if args.recipe is not None and args.recipe not in RECIPE_PRESETS:
        raise OptionError(f"--recipe {args.recipe!r} is not allowed; expected one of "
                          f"{', '.join(sorted(RECIPE_PRESETS))}")
    cluster = ClusterOptions(**{field: getattr(args, field) for field in (
        "executor", "runs_per_job", "submitit_folder", "slurm_partition", "slurm_time",
        "slurm_gpus_per_task", "slurm_cpus_per_task", "slurm_mem", "slurm_array_parallelism",
        "slurm_account", "slurm_qos", "slurm_constraint", "slurm_job_name")},
        wait=not args.no_wait, slurm_setup=tuple(args.slurm_setup or ()),
        slurm_param=tuple(args.slurm_param or ()))
    return RunOptions(
        protocols=tuple(args.protocols), methods=tuple(args.method or ()), grid=args.grid,
        seeds=parse_seeds(args.seeds), assignments=tuple(args.set or ()), recipe=args.recipe,
        results=args.results, report=args.report, data=args.data, tensorboard=args.tensorboard,
        device=args.device, devices=args.devices, download=not args.no_download, force=args.force,
        progress=not args.no_progress, deterministic=args.deterministic, jobs=args.jobs,
        threads=args.threads, checkpoint_every=args.checkpoint_every,
        save_subnetwork=not args.no_save_subnetwork, seed_batch=args.seed_batch,
        seed_batch_mode=args.seed_batch_mode, cluster=cluster, argv=tuple(getattr(args, "argv", ())))


def planned_runs(options: RunOptions) -> list:
    """Every run's configuration, validated before anything runs."""
    overrides = parse_assignments(list(options.assignments))
    if options.grid:
        if options.protocols or options.methods or options.recipe:
            raise OptionError("--grid replaces the protocols, --method and --recipe (each cell of a "
                              "grid has its own); give one or the other")
        cells = [(cell.protocols, cell.methods, {**cell.overrides, **overrides}, cell.preset)
                 for cell in grids.get(options.grid)]
    else:
        if not options.protocols:
            raise OptionError("no protocol given; name one or more (e.g. digits-conv2, or digits for "
                              f"all digits protocols) or use --grid {sorted(grids.GRIDS)}")
        chosen = list(options.methods) or ["all"]
        names = methods.names() if "all" in chosen else chosen
        for name in names:
            methods.get(name)
        cells = [(protocols.expand(list(options.protocols)), names, overrides, options.recipe)]
    configs = {}  # by run id: a run named twice (--seeds 0,0, a repeated --method) runs once
    for protocol_names, method_names, cell_overrides, preset in cells:
        for protocol in protocol_names:
            for method in method_names:
                for seed in options.seeds:
                    config = make_config(protocol, method, seed, cell_overrides,
                                         list(method_names), preset)
                    configs.setdefault(config.run_id, config)
    return list(configs.values())


def _tensorboard(options: RunOptions) -> str | None:
    """The TensorBoard folder, absolute (workers and jobs share it); without the package the runs
    go on without it, and say so: an optional extra is no reason to stop hours of runs."""
    if not options.tensorboard:
        return None
    missing = tensorboard_missing()
    if missing:
        say(f"subnetbench run: --tensorboard {options.tensorboard}: {missing}; the runs go on "
            "without TensorBoard curves (their result files keep every epoch's curves)")
        return None
    return str(Path(options.tensorboard).resolve())


def cmd_run(args: argparse.Namespace) -> int:
    return run(run_options(args))


def run(options: RunOptions) -> int:
    """Plan, check, launch; print a line per run and the summary; the exit code."""
    configs = planned_runs(options)
    executor = choose_executor(options)
    settings = RunSettings(executor.device, options.data, options.download, options.force,
                           options.deterministic, options.checkpoint_every,
                           options.save_subnetwork, _tensorboard(options))
    units = seed_batches(configs, options.seed_batch)  # every batch checked before anything is written
    settings, entry = prepare(options, configs, executor, settings)
    done, units = _already_finished(units, options)
    outcomes: list[RunOutcome] = []
    # Runs that train at a time share the wall clock: the time left is divided among them.
    with RunProgress(len(configs), enabled=options.progress and executor.local,
                     plan=[planned_run(c) for c in configs],
                     slots=executor.slots * options.seed_batch) as display:
        def finished(outcome: RunOutcome) -> None:
            config = outcome.config  # named as people tell runs apart; the hash finds its file
            display.finished(config.run_id, f"[{len(outcomes) + 1}/{len(configs)}] "
                             f"{run_label(config)}: {outcome.text()} ({config.config_hash})")
            outcomes.append(outcome)

        for outcome in done:  # counted at once: no worker or job starts for them
            finished(outcome)
        code = 0
        if units:
            execution = executor.execute(units, options.results, settings, display, entry)
            if not execution.waited:  # --no-wait, or stopped waiting
                return execution.code
            for outcome in execution.outcomes:
                finished(outcome)
            code = execution.code
    return _conclude(options, outcomes, code)


def _already_finished(units: list, options: RunOptions) -> tuple[list[RunOutcome], list]:
    """The outcomes of the units whose every run has a completed result to reuse, and the units
    left to launch (all of them with ``--force``)."""
    if options.force:
        return [], units
    done, left = [], []
    layout = ResultsLayout(options.results)
    for unit in units:
        # Read only, so no lock is needed: a completed result is only replaced by another one.
        stored = [judge(config, layout).reusable() for config in unit]
        if None in stored:
            left.append(unit)
        else:
            done += [RunOutcome.from_runner(c, result) for c, result in zip(unit, stored)]
    return done, left


def _conclude(options: RunOptions, outcomes: list[RunOutcome], code: int) -> int:
    """The summary, the runs left to others, the failures and the report; the exit code."""
    print()
    print(summarise([outcome.result for outcome in outcomes]))
    note = closing_note(outcomes, options.results)
    if note:
        print(note)
    raised = [outcome for outcome in outcomes if outcome.error is not None]
    if raised:
        say(f"subnetbench: error: {worker_failures(raised, len(outcomes))}")
        code = max([code] + [exit_code(outcome.error) for outcome in raised])
    if options.report:
        print(f"report: {build_report(Path(options.results), Path(options.report), log=say)}")
    return code
