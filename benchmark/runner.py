"""The run lifecycle: configurations in, result files out, for one run or the seeds of one
configuration trained together (:mod:`benchmark.seed_batch`).

For each run, in this order: the stored result is looked at without the lock (reused, or refused,
changing no file: :mod:`benchmark.stored_result`); the folders are checked and the data loaded
before anything is written; the run's lock is taken (:mod:`subnetbench.locks`) and the stored
result settled under it; the run is built (:mod:`benchmark.build_run`), resumed from its checkpoint,
trained (:func:`benchmark.training.fit`), evaluated (:mod:`benchmark.evaluation`) and its files
written. docs/faults.md states what happens to a run that fails and to a bad file.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from subnetbench import locks
from subnetbench.benchmark.build_run import build_run
from subnetbench.benchmark.callbacks import Checkpoint, Progress, ProgressSink, TensorBoard
from subnetbench.benchmark.config import RunConfig
from subnetbench.benchmark.data import Split, load_raw
from subnetbench.benchmark.device import resolve_device, set_deterministic
from subnetbench.benchmark.evaluation import evaluate_run
from subnetbench.benchmark.grouped import grouped_forward, resolve_mode
from subnetbench.benchmark.results import load_verified, prepare_results_dir, write_record
from subnetbench.benchmark.run_record import base_record, running_elsewhere
from subnetbench.benchmark.seed_batch import check_batchable
from subnetbench.benchmark.stored_result import judge, settle
from subnetbench.benchmark.subnetworks import save_subnetwork as write_subnetwork
from subnetbench.benchmark.summary import run_label
from subnetbench.benchmark.training import Trainer, check_recipe_device, fit, separate_forward
from subnetbench.errors import IntegrityError, OptionError, SubnetbenchError
from subnetbench.integrity import moved_text, quarantine, remove_with_digest
from subnetbench.layout import ResultsLayout
from subnetbench.records import RunRecord

__all__ = ["execute", "execute_runs", "resume"]

log = logging.getLogger("subnetbench")


@dataclass(frozen=True)
class _Session:
    """One call's settings, as the lifecycle's steps need them."""

    layout: ResultsLayout
    device: torch.device
    mode: str  # how a seed batch's step runs its forwards: "loop" or "grouped"
    sink: ProgressSink
    checkpoint_every: int
    save_subnetwork: bool
    tensorboard: str | Path | None


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
    result files; returns their JSON objects in the order of ``configs``, reused ones marked
    ``"skipped": True``, those whose lock another process holds as :func:`running_elsewhere`
    (``wait_for_locks`` waits for the holder instead).

    ``force`` trains completed runs again, from scratch (their checkpoints removed, unless
    ``keep_checkpoints``: a requeued cluster job's, see :func:`subnetbench.launch.job.requeued`).
    ``save_subnetwork`` also writes each extracted network (:mod:`benchmark.subnetworks`).
    ``progress`` receives the runs' progress events; ``tensorboard`` is a folder for each run's
    curves; ``raw`` replaces the protocol's data set (as :func:`benchmark.data.load_raw` returns
    it), e.g. generated data for :mod:`benchmark.selftest`.
    """
    configs = list(configs)
    _check_request(configs, results_dir, checkpoint_every)
    layout = ResultsLayout(results_dir)
    results = {i: found for i, config in enumerate(configs)
               if (found := judge(config, layout, force, save_subnetwork).reusable()) is not None}
    pending = [i for i in range(len(configs)) if i not in results]
    if not pending:
        return [results[i] for i in range(len(configs))]
    torch_device = resolve_device(device)
    check_recipe_device(configs[0].recipe, torch_device)
    mode = resolve_mode(seed_batch_mode, torch_device) if len(configs) > 1 else "loop"
    session = _Session(layout, torch_device, mode, progress or (lambda event: None),
                       checkpoint_every, save_subnetwork, tensorboard)
    # Nothing is written before the folders are known to be writable and the data is there.
    prepare_results_dir(layout.root, save_subnetwork)
    with contextlib.ExitStack() as held_locks:
        pending = _claim(configs, pending, results, layout, force, save_subnetwork,
                         wait_for_locks, held_locks)
        if pending:
            if raw is None:
                raw = load_raw(configs[0].spec.dataset, data_dir, download)
            _train(configs, pending, results, session, raw, fresh=force and not keep_checkpoints,
                   deterministic=deterministic)
    return [results[i] for i in range(len(configs))]


def _check_request(configs: list[RunConfig], results_dir: str | Path, checkpoint_every: int) -> None:
    if len(configs) > 1:
        check_batchable(configs)
    if not str(results_dir).strip():
        raise OptionError("results directory '' is not allowed; expected a directory path")
    if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise OptionError(f"checkpoint_every={checkpoint_every!r} is not allowed; expected an "
                          "integer >= 1 (epochs between checkpoints)")


def _claim(configs: list[RunConfig], pending: list[int], results: dict[int, dict[str, Any]],
           layout: ResultsLayout, force: bool, save_subnetwork: bool, wait: bool,
           held_locks: contextlib.ExitStack) -> list[int]:
    """The runs of ``pending`` this process trains: those whose lock it got (taken in run-id order,
    so that two waiting processes never hold one lock each of the other's) and that are still not
    finished once it has the lock (another process may have completed one since the first look)."""
    for i in sorted(pending, key=lambda i: configs[i].run_id):
        config = configs[i]
        lock = locks.acquire(layout.root, config.run_id, wait=wait)
        if lock is None:
            results[i] = running_elsewhere(config, locks.holder(layout.root, config.run_id) or {})
            continue
        held_locks.enter_context(lock)
        existing = settle(judge(config, layout, force, save_subnetwork), config, layout)
        if existing is not None:
            results[i] = existing
    return [i for i in pending if i not in results]


def _train(configs: list[RunConfig], pending: list[int], results: dict[int, dict[str, Any]],
           session: _Session, raw: tuple[Split, Split], fresh: bool, deterministic: bool) -> None:
    """Train the runs ``pending`` (this process holds their locks) and write their result files.
    A completed result file is only ever replaced by a new completed one; ``fresh`` removes the
    runs' checkpoints first."""
    batch = len(pending) if len(configs) > 1 else 0
    records = {i: _start(configs[i], session, fresh) for i in pending}
    try:
        set_deterministic(session.device, deterministic)
        trainers = {i: _trainer(configs[i], session, raw, batch) for i in pending}
        resumed = {i: trainers[i].state.elapsed_s for i in pending}  # earlier sessions' epochs
        index_of = {id(t): i for i, t in trainers.items()}
        started = time.perf_counter()

        def finished(trainer: Trainer) -> None:
            i = index_of[id(trainer)]
            results[i] = _complete(configs[i], records[i], trainer, session, started, resumed[i],
                                   batch)
            session.sink({"kind": "completed", "run_id": configs[i].run_id})

        forward = grouped_forward if session.mode == "grouped" else separate_forward
        fit([trainers[i] for i in pending], forward, on_finished=finished)
    except BaseException as error:
        # An interrupt, or an exit asked for by a signal handler (a cluster job at its time limit),
        # leaves the runs ``running``, to resume.
        if not isinstance(error, (KeyboardInterrupt, SystemExit)):
            _record_failures([(configs[i], records[i]) for i in pending if i not in results],
                             session.layout, error)
        raise


def _start(config: RunConfig, session: _Session, fresh: bool) -> RunRecord:
    """The run's ``running`` record, written (never over a completed result)."""
    if fresh:
        remove_with_digest(session.layout.checkpoint(config.run_id))
    record = base_record(config, session.device)
    write_record(session.layout.run_file(config.run_id), record, keep_completed=True)
    return record


def _trainer(config: RunConfig, session: _Session, raw: tuple[Split, Split], batch: int) -> Trainer:
    """The run's trainer, resumed from its checkpoint when that passes its checks."""
    label = run_label(config) + (f" (batch of {batch})" if batch else "")
    checkpoint = session.layout.checkpoint(config.run_id)

    def new_trainer() -> Trainer:
        parts = build_run(config, session.device, raw=raw)
        callbacks = [Checkpoint(checkpoint, session.checkpoint_every, config.run_id,
                                config.recipe.checkpoint_interval),
                     Progress(config.run_id, label, session.sink)]
        if session.tensorboard:
            callbacks.append(TensorBoard(session.tensorboard, config.run_id))
        return Trainer(parts.model, parts.method, parts.data, config.recipe, parts.generators,
                       callbacks=callbacks, name=config.run_id)

    return resume(new_trainer, checkpoint, config.run_id, session.device)


def _complete(config: RunConfig, record: RunRecord, trainer: Trainer, session: _Session,
              started: float, resumed_s: float, batch: int) -> dict[str, Any]:
    """Evaluate a run that ended, write its subnetwork and completed result, drop its checkpoint."""
    session.sink({"kind": "stage", "run_id": config.run_id, "text": "testing and extracting"})
    extracted = evaluate_run(config, record, trainer, started, resumed_s)
    if batch:
        record.timings.seed_batch, record.timings.seed_batch_mode = batch, session.mode
    if session.save_subnetwork:
        write_subnetwork(session.layout.subnetwork(config.run_id), extracted)
    write_record(session.layout.run_file(config.run_id), record)
    remove_with_digest(session.layout.checkpoint(config.run_id))
    return record.to_json()


def _record_failures(unfinished: list[tuple[RunConfig, RunRecord]], layout: ResultsLayout,
                     error: BaseException) -> None:
    """Write the ``failed`` records of the runs an error stopped, but over no completed result.
    When that write fails too (the disk that is full), the original error is what the user needs
    to see: it is not masked."""
    for config, record in unfinished:
        record.status, record.error = "failed", f"{type(error).__name__}: {error}"
        try:
            if not write_record(layout.run_file(config.run_id), record, keep_completed=True):
                log.warning("run %s failed (%s: %s); the completed result stored for it is kept",
                            config.run_id, type(error).__name__, error)
        except (OSError, SubnetbenchError) as write_error:
            log.warning("could not record run %s as failed: %s", config.run_id, write_error)


def resume(new_trainer: Callable[[], Trainer], ckpt: Path, run_id: str,
           device: torch.device) -> Trainer:
    """A fresh trainer from ``new_trainer()``, resumed from the checkpoint ``ckpt`` when it exists
    and passes every check (its SHA-256, ``weights_only`` decoding, its run id, its fit to this
    run). One that fails is moved aside (docs/faults.md) and the run starts from scratch on a newly
    built trainer. An unreadable path (no permission) is an error for the user to fix."""
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
