"""The run lifecycle: configurations in, result files out, for one run or k seeds trained together.

:func:`execute_runs` is the one lifecycle; :func:`execute` is its case of one run. For each run:

1. a completed result of the same configuration is returned instead (unless ``force``); a stored
   run with other options than now is refused, and so is a result file of a newer format version
   (left as it is). This first look changes no file: it is taken without the run's lock;
2. before anything is written: the results directory is checked (its folders are directories this
   user can write into) and the data set is loaded (a missing data set stops here, leaving no file);
3. the run's lock is taken (:mod:`subnetbench.locks`; a run another process holds is skipped, or
   waited for) and its stored result looked at again (another process may have finished it). Only
   now, under the lock, are files changed: a result file that cannot be used (not JSON, failing its
   SHA-256), or a saved subnetwork that fails its check, is moved aside and the run computed again,
   and a digest file is repaired. The result file is written as ``running``, unless it holds a
   completed result (``force``): a completed result is only ever replaced by a new completed one;
4. the run is built (:func:`build_run`: seeded data split, network, initialisation, method) and
   resumed from its checkpoint if one exists and passes its checks (:func:`resume`); a checkpoint
   that fails them is moved aside and the run starts from scratch;
5. training (:func:`benchmark.training.fit`) checkpoints every epoch; as soon as a run ends it is
   evaluated (:func:`evaluate_run`), its extracted subnetwork saved, its ``completed`` result written
   and its checkpoint removed;
6. a run that raises is recorded as ``failed`` (an interrupt, or an exit asked for by a signal
   handler, leaves it ``running``, to resume); its lock is released, and the kernel releases it
   too when the process dies.

Bad files are never deleted: :func:`subnetbench.integrity.quarantine` renames them
``<name>.corrupt-<UTC timestamp>`` in their folder, and a warning (logger ``subnetbench``) says which
file, why, where it went and whether the run resumes or starts from scratch.

Several configurations that differ only by seed can train together in one process (``--seed-batch
K``): their training steps are shared (one batch of each seed per step, each seed's masks sampled
from its own generator), everything else stays per run. The step's forward is each seed's own
(``loop``: the arithmetic of separate runs, so on a CPU the result files equal those of separate
runs) or one grouped forward for all (``grouped``, :mod:`benchmark.grouped`; for GPUs); ``auto``
picks grouped on CUDA and loop elsewhere. A method that cannot be seed-batched says why
(:meth:`Method.seed_batch_refusal`). Result files of batched seeds record it in ``timings``
(``seed_batch``, ``seed_batch_mode``); their ``epoch_s`` is the shared training epoch plus the
seed's own validation, and ``total_s`` the wall time from the start of the batch to the end of the
seed's evaluation.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from subnetbench import locks, methods
from subnetbench.benchmark import protocols
from subnetbench.benchmark.callbacks import Checkpoint, Progress, ProgressSink, TensorBoard
from subnetbench.benchmark.config import RunConfig, make_config
from subnetbench.benchmark.data import DATASET_INFO, DeviceData, Split, load_raw
from subnetbench.benchmark.data import load as load_data
from subnetbench.benchmark.grouped import grouped_forward, resolve_mode
from subnetbench.benchmark.networks import build_network
from subnetbench.benchmark.results import (
    atomic_torch_save,
    checkpoint_path,
    inspect_result,
    load_verified,
    prepare_results_dir,
    provenance,
    run_path,
    write_record,
)
from subnetbench.benchmark.seeding import make_generator
from subnetbench.benchmark.training import (
    TRAINING_STREAMS,
    Trainer,
    accuracy,
    check_recipe_device,
    fit,
    sampled_accuracy,
    separate_forward,
    tf32_settings,
)
from subnetbench.describe import chance_cause, configuration_label
from subnetbench.errors import IntegrityError, OptionError, PathNotFound, SubnetbenchError
from subnetbench.files import read_regular_file
from subnetbench.integrity import (
    check_verified,
    digest_path,
    moved_text,
    quarantine,
    read_verified,
    remove_with_digest,
)
from subnetbench.methods.initialisation import initialise
from subnetbench.progress import PlannedRun
from subnetbench.records import (
    FORMAT_VERSION,
    Curves,
    Histogram,
    Metrics,
    RunRecord,
    Timings,
)

__all__ = ["RunConfig", "build_run", "check_batchable", "evaluate_run", "execute", "execute_runs",
           "finished_result", "load_subnetwork", "make_config", "resolve_device", "run_identity",
           "running_elsewhere", "seed_batches", "stored_result", "subnetwork_path", "summarise"]

KEEP_PROBABILITY_BINS = 20
log = logging.getLogger("subnetbench")


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise OptionError(f"device {device!r} is not allowed; expected cpu, cuda, cuda:N or auto")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError(f"device {device!r} was asked for but CUDA is not available here")
    return torch.device(device)


def set_deterministic(device: torch.device, deterministic: bool) -> None:
    """CPU runs are deterministic as they are; on CUDA this trades speed for repeatability."""
    if device.type == "cuda":
        if deterministic:
            # cuBLAS is deterministic only with a fixed workspace, read when a process first uses
            # it (torch's reproducibility notes); a command that asks sets it before any run.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        torch.use_deterministic_algorithms(deterministic, warn_only=True)


def check_batchable(configs: Sequence[RunConfig]) -> None:
    """Refuse (OptionError) a set of runs that cannot be trained as one seed batch."""
    if not configs:
        raise OptionError("a seed batch needs at least one run")
    first = configs[0]
    for config in configs[1:]:
        if (config.protocol, config.method, config.config_hash) != (
                first.protocol, first.method, first.config_hash):
            raise OptionError(f"a seed batch trains seeds of one configuration; {config.run_id} and "
                              f"{first.run_id} differ in more than the seed")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise OptionError(f"a seed batch needs distinct seeds, got {seeds}")
    refusal = first.declared.traits().seed_batch_refusal
    if refusal:
        raise OptionError(f"--seed-batch cannot train {first.method!r} ({first.run_id}): {refusal}; "
                          "run it without --seed-batch")
    if first.recipe.compile:
        raise OptionError("--seed-batch does not support compile=true (each seed's masks are sampled "
                          "outside a compiled graph); drop one of the two")


def seed_batches(configs: Sequence[RunConfig], size: int) -> list[list[RunConfig]]:
    """``configs`` as seed batches of up to ``size`` seeds of one configuration each, in the planned
    order (``size`` 1: one run each, in the order of ``configs``). With ``size`` > 1 every batch is
    checked (:func:`check_batchable`: a method that cannot be seed-batched is refused, even alone)."""
    if size == 1:
        return [[config] for config in configs]
    by_configuration: dict[tuple[str, str, str], list[RunConfig]] = {}
    for config in configs:
        key = (config.protocol, config.method, config.config_hash)
        by_configuration.setdefault(key, []).append(config)
    batches = [runs[i:i + size] for runs in by_configuration.values()
               for i in range(0, len(runs), size)]
    for batch in batches:
        check_batchable(batch)
    return batches


def base_record(config: RunConfig, device: torch.device) -> RunRecord:
    """The fields of a result file known before training (status "running")."""
    stats = DATASET_INFO[config.spec.dataset]
    origin = provenance(device)
    origin.tf32 = tf32_settings(config.recipe.tf32, device)
    if config.recipe.normalises:
        origin.input_normalisation = {"mean": list(stats.mean), "std": list(stats.std)}
    return RunRecord(
        status="running", run_id=config.run_id, config_hash=config.config_hash,
        protocol=config.protocol, dataset=config.spec.dataset, network=config.spec.network,
        method=config.method, family=config.declared.traits().family, seed=config.seed,
        variant=config.variant(), options=config.options_dict(),
        non_default_options=config.non_default_options(), provenance=origin)


def _keep_probability_histogram(method: methods.Method, model: torch.nn.Module) -> Histogram | None:
    probabilities = [method.keep_probability(layer) for _, layer in methods.masked_layers(model)]
    if not probabilities or any(p is None for p in probabilities):
        return None
    values = torch.cat([p.detach().flatten().float().cpu() for p in probabilities])
    counts = torch.histc(values, bins=KEEP_PROBABILITY_BINS, min=0.0, max=1.0)
    edges = torch.linspace(0, 1, KEEP_PROBABILITY_BINS + 1)
    return Histogram([round(float(e), 6) for e in edges], [int(c) for c in counts])


def run_label(config: RunConfig) -> str:
    """'digits-conv2 aslp SR seed 0': a run as people tell it apart (its variant in the paper's
    words and its other non-default options), for the live display and the line of a finished run."""
    label = configuration_label(config.method, config.variant(), config.non_default_options())
    return f"{config.protocol} {label} seed {config.seed}"


def planned_run(config: RunConfig) -> PlannedRun:
    """What the live display costs the time left from, before the run starts: its epoch budget (the
    most it trains: early stopping may end it sooner) and its training passes a batch."""
    declared = config.declared
    group = f"{config.protocol}.{config.method}"
    return PlannedRun(config.run_id, run_label(config), f"{group}.{config.config_hash}", group,
                      config.recipe.epochs * declared.traits().rounds, declared.traits().update_pass_count)


def execute(config: RunConfig, results_dir: str | Path, **options: Any) -> dict[str, Any]:
    """Run ``config`` (or return its finished result) and write its result file: the lifecycle of
    :func:`execute_runs` for one run."""
    return execute_runs([config], results_dir, **options)[0]


def execute_runs(configs: Sequence[RunConfig], results_dir: str | Path, *,
                 device: str | None = None, data_dir: str | Path | None = None,
                 download: bool = True, force: bool = False, progress: ProgressSink | None = None,
                 deterministic: bool = False, checkpoint_every: int = 1,
                 save_subnetwork: bool = False, seed_batch_mode: str = "auto",
                 wait_for_locks: bool = False, keep_checkpoints: bool = False,
                 tensorboard: str | Path | None = None,
                 raw: tuple[Split, Split] | None = None) -> list[dict[str, Any]]:
    """Run ``configs`` (one run, or seeds of one configuration trained together) and write their
    result files; returns the result files' JSON objects in the order of ``configs``, those of runs
    finished before marked ``"skipped": True``.

    Each run is trained only under its lock (:mod:`subnetbench.locks`). A run whose lock another
    process holds is skipped, and returned as :func:`running_elsewhere` (status ``running``, key
    ``running_elsewhere``); with ``wait_for_locks`` this waits for the holder instead and returns
    its result (or trains the run, if the holder died before finishing it).

    ``force`` computes the runs again even when they are completed, from scratch: their
    checkpoints are removed, unless ``keep_checkpoints`` (a requeued cluster job's runs that its
    stopped attempt began under ``force``: their checkpoints are that attempt's, see
    :func:`subnetbench.launch.job.requeued`).

    ``save_subnetwork`` also writes each extracted network's state dict to
    ``RESULTS/subnetworks/<run_id>.pt`` (see :func:`load_subnetwork`). ``progress`` receives the
    runs' progress events (benchmark.callbacks.ProgressSink); a false value sends none.
    ``tensorboard`` is a folder for each run's per-epoch curves (benchmark.callbacks.TensorBoard;
    the tensorboard package must be installed). ``raw`` replaces the protocol's data set (the
    train+validation pool and the test split as :func:`benchmark.data.load_raw` returns them), e.g.
    generated data of its shape for :mod:`benchmark.selftest`.
    """
    sink: ProgressSink = progress or (lambda event: None)
    configs = list(configs)
    if len(configs) > 1:
        check_batchable(configs)
    if not str(results_dir).strip():
        raise OptionError("results directory '' is not allowed; expected a directory path")
    if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise OptionError(f"checkpoint_every={checkpoint_every!r} is not allowed; expected an "
                          "integer >= 1 (epochs between checkpoints)")
    results_dir = Path(results_dir)
    results: dict[int, dict[str, Any]] = {}
    for i, config in enumerate(configs):
        existing = _reusable(config, results_dir, force, save_subnetwork)
        if existing is not None:
            results[i] = existing
    pending = [i for i in range(len(configs)) if i not in results]
    if not pending:
        return [results[i] for i in range(len(configs))]
    torch_device = resolve_device(device)
    check_recipe_device(configs[0].recipe, torch_device)
    mode = resolve_mode(seed_batch_mode, torch_device) if len(configs) > 1 else "loop"
    # Nothing is written before the folders are known to be writable and the data is there.
    prepare_results_dir(results_dir, save_subnetwork)
    with contextlib.ExitStack() as held_locks:
        pending = _claim(configs, pending, results, results_dir, force, save_subnetwork,
                         wait_for_locks, held_locks)
        if pending:
            _train(configs, pending, results, results_dir, torch_device, mode, data_dir=data_dir,
                   download=download, fresh=force and not keep_checkpoints, sink=sink,
                   deterministic=deterministic,
                   checkpoint_every=checkpoint_every, save_subnetwork=save_subnetwork,
                   tensorboard=tensorboard, raw=raw)
    return [results[i] for i in range(len(configs))]


def _claim(configs: list[RunConfig], pending: list[int], results: dict[int, dict[str, Any]],
           results_dir: Path, force: bool, save_subnetwork: bool, wait: bool,
           held_locks: contextlib.ExitStack) -> list[int]:
    """The runs of ``pending`` this process trains: those whose lock it got (taken in run-id order,
    so that two waiting processes never hold one lock each of the other's) and that are still not
    finished once it has the lock (another process may have completed one since the first look).
    The stored result is read again under the lock, and only there are bad files moved aside."""
    for i in sorted(pending, key=lambda i: configs[i].run_id):
        config = configs[i]
        lock = locks.acquire(results_dir, config.run_id, wait=wait)
        if lock is None:
            results[i] = running_elsewhere(config, locks.holder(results_dir, config.run_id) or {})
            continue
        held_locks.enter_context(lock)
        existing = stored_result(config, results_dir, force, save_subnetwork)
        if existing is not None:
            results[i] = existing
    return [i for i in pending if i not in results]


def run_identity(config: RunConfig, status: str) -> dict[str, Any]:
    """The identifying fields of a result file, for a run that has none to show (yet)."""
    return {"status": status, "run_id": config.run_id, "protocol": config.protocol,
            "dataset": config.spec.dataset, "network": config.spec.network, "method": config.method,
            "family": config.declared.traits().family, "seed": config.seed,
            "config_hash": config.config_hash, "variant": config.variant(),
            "options": config.options_dict(), "non_default_options": config.non_default_options()}


def running_elsewhere(config: RunConfig, holder: dict[str, Any]) -> dict[str, Any]:
    """What :func:`execute_runs` returns for a run another process is training: its identity and
    ``status`` ``running``, ``running_elsewhere`` its lock's holder (pid, host, since)."""
    return {**run_identity(config, "running"), "running_elsewhere": holder}


def _train(configs: list[RunConfig], pending: list[int], results: dict[int, dict[str, Any]],
           results_dir: Path, torch_device: torch.device, mode: str, *,
           data_dir: str | Path | None, download: bool, fresh: bool, sink: ProgressSink,
           deterministic: bool, checkpoint_every: int, save_subnetwork: bool,
           tensorboard: str | Path | None = None, raw: tuple[Split, Split] | None = None) -> None:
    """Train the runs ``pending`` (this process holds their locks) and write their result files.
    A completed result file (a run rerun with ``force``, or whose saved subnetwork failed its
    check, or completed meanwhile by a process on another node where locks are local to a node) is
    never replaced by a ``running`` or ``failed`` record, each written only after the file is read
    again: only by the new completed one. ``fresh`` removes their checkpoints first."""
    batched = len(configs) > 1
    if raw is None:
        raw = load_raw(configs[0].spec.dataset, data_dir, download)
    records: dict[int, RunRecord] = {}
    for i in pending:
        config = configs[i]
        if fresh:
            remove_with_digest(checkpoint_path(results_dir, config.run_id))
        records[i] = base_record(config, torch_device)
        write_record(run_path(results_dir, config.run_id), records[i], keep_completed=True)
    try:
        set_deterministic(torch_device, deterministic)
        trainers: dict[int, Trainer] = {}
        resumed: dict[int, float] = {}
        for i in pending:
            config = configs[i]
            label = run_label(config)
            if batched:
                label += f" (batch of {len(pending)})"

            def new_trainer(config: RunConfig = config, label: str = label) -> Trainer:
                parts = build_run(config, torch_device, raw=raw)
                ckpt = checkpoint_path(results_dir, config.run_id)
                callbacks = [Checkpoint(ckpt, checkpoint_every, config.run_id,
                                        config.recipe.checkpoint_interval),
                             Progress(config.run_id, label, sink)]
                if tensorboard:
                    callbacks.append(TensorBoard(tensorboard, config.run_id))
                return Trainer(parts.model, parts.method, parts.data, config.recipe, parts.generators,
                               callbacks=callbacks, name=config.run_id)

            trainers[i] = resume(new_trainer, checkpoint_path(results_dir, config.run_id),
                                 config.run_id, torch_device)
            resumed[i] = trainers[i].state.elapsed_s  # epochs of earlier, interrupted sessions
        index_of = {id(t): i for i, t in trainers.items()}
        started = time.perf_counter()

        def finished(trainer: Trainer) -> None:
            i = index_of[id(trainer)]
            config = configs[i]
            record = records[i]
            sink({"kind": "stage", "run_id": config.run_id, "text": "testing and extracting"})
            extracted = evaluate_run(config, record, trainer, started, resumed[i])
            if batched:
                record.timings.seed_batch, record.timings.seed_batch_mode = len(pending), mode
            if save_subnetwork:
                atomic_torch_save(subnetwork_path(results_dir, config.run_id),
                                  {k: v.cpu() for k, v in extracted.state_dict().items()})
            write_record(run_path(results_dir, config.run_id), record)
            remove_with_digest(checkpoint_path(results_dir, config.run_id))
            results[i] = record.to_json()
            sink({"kind": "completed", "run_id": config.run_id})

        forward = grouped_forward if mode == "grouped" else separate_forward
        fit([trainers[i] for i in pending], forward, on_finished=finished)
    except BaseException as error:
        # An interrupt, or an exit asked for by a signal handler (a cluster job at its time limit),
        # leaves the runs ``running``, to resume.
        if not isinstance(error, (KeyboardInterrupt, SystemExit)):
            _record_failures([(configs[i], records[i]) for i in pending if i not in results],
                             results_dir, error)
        raise


def _record_failures(unfinished: list[tuple[RunConfig, RunRecord]], results_dir: Path,
                     error: BaseException) -> None:
    """Write the ``failed`` records of the runs an error stopped, but over no completed result.
    When that write fails too (the disk that is full), the original error is what the user needs
    to see: it is not masked."""
    for config, record in unfinished:
        record.status, record.error = "failed", f"{type(error).__name__}: {error}"
        try:
            if not write_record(run_path(results_dir, config.run_id), record, keep_completed=True):
                log.warning("run %s failed (%s: %s); the completed result stored for it is kept",
                            config.run_id, type(error).__name__, error)
        except (OSError, SubnetbenchError) as write_error:
            log.warning("could not record run %s as failed: %s", config.run_id, write_error)


def resume(new_trainer: Callable[[], Trainer], ckpt: Path, run_id: str,
           device: torch.device) -> Trainer:
    """A fresh trainer from ``new_trainer()``, resumed from the checkpoint ``ckpt`` when it exists
    and passes every check: its SHA-256, its decoding (``weights_only``), its run id and its fit to
    this run's network and optimisers. A checkpoint that fails one is moved aside (never deleted),
    a warning says so, and the run starts from scratch on a newly built trainer (nothing of the bad
    file remains in it). An unreadable path (no permission) is an error for the user to fix."""
    trainer = new_trainer()
    if not ckpt.exists():
        return trainer
    try:
        checkpoint = load_verified(ckpt, map_location=device)
        owner = checkpoint.get("run_id") if isinstance(checkpoint, dict) else None
        if owner != run_id:
            raise IntegrityError(f"{ckpt} is the checkpoint of {owner or 'an unnamed run'}, not of "
                                 f"{run_id}")
        try:
            trainer.load_state_dict(checkpoint)
        except Exception as error:  # another network, another method, a malformed state
            raise IntegrityError(f"{ckpt} does not fit run {run_id} ({type(error).__name__}: "
                                 f"{str(error)[:200]})") from None
    except IntegrityError as problem:
        moved = quarantine(ckpt)
        log.warning("%s. %s and run %s starts again from scratch (no other checkpoint of it is "
                    "kept).", problem, moved_text(moved), run_id)
        trainer = new_trainer()
    return trainer


def stored_result(config: RunConfig, results_dir: str | Path, force: bool,
                  check_subnetwork: bool = False) -> dict[str, Any] | None:
    """The completed result of ``config`` to return instead of running it (marked ``skipped``),
    or None (not run, unfinished, or ``force``). A stored run with other options is an error, and
    so is a result file of a newer format version (it is left as it is).

    This may change files, so it is asked under the run's lock (:func:`_reusable` is the read-only
    look): a result file that cannot be used (not JSON, damaged, failing its SHA-256) is moved aside
    and the run computed again. Completed results of format version 1 (written before digests) are
    reused as they are: the suite wrote them. With ``check_subnetwork``, a completed run whose saved
    subnetwork fails its SHA-256 check is computed again (the bad file moved aside)."""
    path = run_path(Path(results_dir), config.run_id)
    existing, problem = inspect_result(path)
    if problem is not None:
        moved = quarantine(path)
        ckpt = checkpoint_path(Path(results_dir), config.run_id)
        start = "resumes from its checkpoint if that passes its checks" if ckpt.exists() else \
            "starts again from scratch"
        log.warning("the result file %s cannot be used (%s). %s and run %s %s.",
                    path, problem, moved_text(moved), config.run_id, start)
        return None
    if not _reusable_record(config, existing, path, force):
        return None
    subnetwork = subnetwork_path(results_dir, config.run_id)
    if check_subnetwork and _has_checked_subnetwork(existing, subnetwork):
        try:
            read_verified(subnetwork)
        except IntegrityError as problem:
            moved = quarantine(subnetwork)
            log.warning("%s. %s and run %s is computed again from scratch to recreate it.",
                        problem, moved_text(moved), config.run_id)
            return None
    return {**existing.to_json(), "skipped": True}


def finished_result(config: RunConfig, results_dir: str | Path) -> dict[str, Any] | None:
    """The completed result of ``config`` stored in ``results_dir``, to reuse as it is (marked
    ``skipped``), or None; read only (:func:`_reusable`), so no lock is needed: a completed result
    is only ever replaced by another completed one."""
    return _reusable(config, Path(results_dir), force=False, check_subnetwork=False)


def _reusable(config: RunConfig, results_dir: Path, force: bool,
              check_subnetwork: bool) -> dict[str, Any] | None:
    """The first look at a run's stored result, before its lock is taken: the completed result to
    return when it can be used as it is, else None, and the run is decided under its lock
    (:func:`stored_result`). It changes no file: another process that holds the lock may be writing
    the result now, and a bad file moved aside here could be that process's good one."""
    path = run_path(results_dir, config.run_id)
    existing, problem = inspect_result(path)
    if problem is not None or not _reusable_record(config, existing, path, force):
        return None
    subnetwork = subnetwork_path(results_dir, config.run_id)
    if check_subnetwork and _has_checked_subnetwork(existing, subnetwork):
        try:
            _, stale = check_verified(subnetwork)
        except IntegrityError:
            return None  # moved aside under the lock, if it is still bad then
        if stale:
            return None  # its digest file is repaired under the lock
    return {**existing.to_json(), "skipped": True}


def _reusable_record(config: RunConfig, existing: RunRecord | None, path: Path, force: bool) -> bool:
    """Whether the record read at ``path`` is a completed result of ``config`` to reuse (its saved
    subnetwork apart); a stored run with other options than ``config`` is refused."""
    if existing is None or force:
        return False
    # Defaults stay out of the hash; a changed default must not pass old results off as new.
    stored = existing.options
    now = json.loads(json.dumps(config.options_dict()))
    if stored and stored != now:
        raise OptionError(f"{path} holds run {config.run_id} with other options than now (a "
                          f"default changed since it ran?): {'; '.join(_differences(stored, now))}; "
                          "move it away or pass --force to rerun it")
    return existing.status == "completed"


def _differences(stored: dict, now: dict, prefix: str = "") -> list[str]:
    """'key: stored X, now Y' for each option that differs, nested keys dotted (missing: absent)."""
    out = []
    for key in [*stored, *(k for k in now if k not in stored)]:
        old, new = stored.get(key, "absent"), now.get(key, "absent")
        if isinstance(old, dict) and isinstance(new, dict):
            out += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            out.append(f"{prefix}{key}: stored {old!r}, now {new!r}")
    return out


def _has_checked_subnetwork(existing: RunRecord, subnetwork: Path) -> bool:
    """Whether a completed run's saved subnetwork is there to check: always from format version 2
    on, and in version 1 when it has a digest file."""
    return subnetwork.exists() and ((existing.format_version or 2) >= 2
                                    or digest_path(subnetwork).exists())


def subnetwork_path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / "subnetworks" / f"{run_id}.pt"


def load_subnetwork(results_dir: str | Path, result: dict[str, Any]) -> torch.nn.Module:
    """The extracted network a run saved, as a plain ConvNet, after its SHA-256 check
    (``weights_only`` loading). Subnetworks of result files of format version 1 (written before
    digests) load without the check when they have no digest file. IntegrityError when the file
    fails its check or does not fit the run's network; PathNotFound when there is none."""
    spec = protocols.get(result["protocol"])
    info = DATASET_INFO[spec.dataset]
    model = build_network(spec.network, info.in_channels, info.image_size, info.num_classes,
                          bias=result["options"]["recipe"]["bias"])
    path = subnetwork_path(results_dir, result["run_id"])
    if not path.exists():
        raise PathNotFound(f"run {result['run_id']} has no saved subnetwork at {path} (it ran with "
                           "--no-save-subnetwork, or the file was moved); run it again with --force "
                           "to recreate it")
    again = ("run the subnetbench run command that made it again (without --no-save-subnetwork): "
             "the bad file is moved aside and the run computed again")
    try:
        if result.get("format_version", FORMAT_VERSION) < 2 and not digest_path(path).exists():
            state = torch.load(io.BytesIO(read_regular_file(path)), map_location="cpu",
                               weights_only=True)  # read_regular_file: a FIFO would block
        else:
            state = load_verified(path)
    except IntegrityError as error:
        raise IntegrityError(f"{error}; {again}") from None
    except SubnetbenchError:
        raise
    except Exception as error:  # an old file without digest that torch cannot decode
        raise IntegrityError(f"{path} cannot be decoded by torch.load ({type(error).__name__}: "
                             f"{str(error)[:200]}); {again}") from None
    try:
        model.load_state_dict(state)
    except Exception as error:  # another network's state
        raise IntegrityError(f"{path} is not the subnetwork of run {result['run_id']} "
                             f"({type(error).__name__}: {str(error)[:200]}); {again}") from None
    return model.eval()


@dataclass
class RunParts:
    """What a run trains: its network prepared by its method, its data and its random streams."""

    model: torch.nn.Module
    method: methods.Method
    data: DeviceData
    generators: dict[str, torch.Generator]


def build_run(config: RunConfig, device: torch.device, data: DeviceData | None = None,
              data_dir: str | Path | None = None, download: bool = True,
              raw: tuple[Split, Split] | None = None, streams: tuple[str, ...] = ()) -> RunParts:
    """Seeded construction of a run (what :func:`execute_runs` trains), on ``device``.

    ``data`` replaces the protocol's data set (already on the device), e.g. generated data of the
    same shape for a speed measurement; without it the seeded split of the real data is made, from
    ``raw`` (the data set as :func:`benchmark.data.load_raw` returns it) when given, else loaded.
    ``streams`` prefixes the names of the training streams, so that a measurement beside a run
    draws from streams of its own.
    """
    recipe = config.recipe
    seed = config.seed
    # Initialisation streams live on the CPU so a network starts the same on every device.
    generators = {name: make_generator(seed, *streams, name, device=device) for name in TRAINING_STREAMS}
    if data is None:
        data = load_data(config.spec.dataset, recipe.validation_fraction,
                         make_generator(seed, "split"), device, data_dir, download, raw=raw)
    info = data.info
    model = build_network(config.spec.network, info.in_channels, info.image_size, info.num_classes,
                          bias=recipe.bias)
    method = config.new_method()
    keep_fraction = method.traits().fixed_keep_fraction
    initialise(model, recipe.init, make_generator(seed, "init"),
               keep_fraction=1.0 if keep_fraction is None else keep_fraction,
               signed_constant_layers=recipe.signed_constant_layers)
    method.prepare(model, make_generator(seed, "method-init"))
    model.to(device)
    method.set_sample_generator(generators["mask-sampling"])
    return RunParts(model, method, data, generators)


def evaluate_run(config: RunConfig, record: RunRecord, trainer: Trainer, started: float,
                 resumed_s: float) -> torch.nn.Module:
    """Test evaluation and extraction of a trained run: completes ``record`` and returns the
    extracted network.

    ``started`` is the ``time.perf_counter()`` at which this session's training began, and
    ``resumed_s`` the training time of earlier sessions of the run.
    """
    model, method, data, state = trainer.model, trainer.method, trainer.data, trainer.state
    recipe = config.recipe
    device = data.test.labels.device
    model.eval()
    batch = recipe.eval_batch_size
    if method.traits().stochastic:
        test_acc = sampled_accuracy(model, method, data.test, trainer.preprocess, batch,
                                    method.traits().evaluation_samples,
                                    make_generator(config.seed, "test-sampling", device=device))
    else:
        test_acc = accuracy(model, data.test, trainer.preprocess, batch)
    deterministic_test_acc = accuracy(model, data.test, trainer.preprocess, batch)
    extracted, stats = method.extract(model)
    final_test_acc = accuracy(extracted, data.test, trainer.preprocess, batch)
    nonzero, total = methods.count_nonzero_weights(extracted)
    if (nonzero, total) != (stats.kept, stats.total):
        raise AssertionError(f"extraction reports {stats.kept}/{stats.total} kept weights but the "
                             f"extracted network has {nonzero}/{total} nonzero")
    history = state.history
    record.status = "completed"
    record.metrics = Metrics(
        test_acc=test_acc, final_test_acc=final_test_acc,
        deterministic_test_acc=deterministic_test_acc, kept_fraction=stats.kept_fraction,
        epochs_to_best=state.best_epoch, best_val_acc=state.best_val_acc, epochs_run=len(history))
    record.layer_kept_fraction = stats.layer_kept_fraction
    record.keep_probabilities = _keep_probability_histogram(method, model)
    record.curves = Curves(**{key: [h[key] for h in history]
                              for key in ("epoch", "round", "train_loss", "train_acc", "val_acc")})
    record.timings = Timings(total_s=resumed_s + time.perf_counter() - started,
                             epoch_s=[h["seconds"] for h in history], device=device.type)
    return extracted


def _mean_std(runs: list[dict[str, Any]], key: str) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one run) of a metric over runs."""
    values = torch.tensor([float(r["metrics"][key]) for r in runs], dtype=torch.float64)
    return float(values.mean()), (float(values.std()) if len(runs) > 1 else 0.0)


def _mean_pm_std(mean_std: tuple[float, float], n: int) -> str:
    """A percentage's mean ± std over n runs, 14 characters wide; one run has no spread to show."""
    mean, std = mean_std
    return f"{100 * mean:>7.2f} ± {100 * std:<4.2f}" if n > 1 else f"{100 * mean:>7.2f}{'':7}"


def summarise(results: list[dict[str, Any]]) -> str:
    """A plain-text table, one row per configuration named by its method and variant (``aslp SR``,
    ``supermask DWR``, other non-default options in brackets): mean and std over its runs of the
    test accuracy (stochastic methods: sampled masks; a single run shows no std), the extracted
    subnetwork's accuracy, the kept fraction and the epochs to the best validation accuracy; then
    the runs that ended at chance level, each with its likely cause."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for result in results:
        key = (result["protocol"], result["method"], result["config_hash"])
        groups.setdefault(key, []).append(result)
    labels = {key: configuration_label(runs[0]["method"], runs[0]["variant"],
                                       runs[0]["non_default_options"]) for key, runs in groups.items()}
    width = max([len("configuration")] + [len(label) for label in labels.values()])
    lines = [f"{'protocol':<16} {'configuration':<{width}} {'n':>2} {'test acc %':>14} "
             f"{'extracted %':>14} {'kept %':>7} {'epochs':>6}  config"]
    at_chance: list[str] = []
    for key, runs in sorted(groups.items(), key=lambda item: (item[0][0], labels[item[0]])):
        protocol, _, config_hash = key
        done = [r for r in runs if r.get("status") == "completed"]
        if not done:
            lines.append(f"{protocol:<16} {labels[key]:<{width}} {0:>2}  (no completed run)")
            continue
        test, final, kept, epochs = (_mean_std(done, k) for k in
                                     ("test_acc", "final_test_acc", "kept_fraction", "epochs_to_best"))
        lines.append(f"{protocol:<16} {labels[key]:<{width}} {len(done):>2} "
                     f"{_mean_pm_std(test, len(done))} "
                     f"{_mean_pm_std(final, len(done))} {100 * kept[0]:>7.1f} "
                     f"{epochs[0]:>6.1f}  {config_hash}")
        for r in done:
            cause = chance_cause(r["dataset"], r["metrics"]["final_test_acc"], r["options"],
                                 r["curves"]["val_acc"], r["metrics"]["epochs_run"])
            if cause:
                at_chance.append(f"  {r['run_id']} ({labels[key]}): extracted "
                                 f"{100 * r['metrics']['final_test_acc']:.1f}%: {cause}")
    if at_chance:
        lines += ["", f"NEAR CHANCE LEVEL: {len(at_chance)} run(s), and the likely cause:"] + at_chance
    return "\n".join(lines)
