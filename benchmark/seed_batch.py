"""Seed batches (``--seed-batch K``): runs that differ only by seed, trained together in one process.

Their training steps are shared (one batch of each seed per step, each seed's masks sampled from
its own generator); everything else stays per run. The step's forward is each seed's own (``loop``:
the arithmetic of separate runs, so on a CPU the result files equal those of separate runs) or one
grouped forward for all (``grouped``, :mod:`benchmark.grouped`, for GPUs). A seed's ``epoch_s`` is
the shared training epoch plus its own validation, its ``total_s`` the wall time from the start of
the batch to the end of its evaluation.
"""
from __future__ import annotations

from collections.abc import Sequence

from subnetbench.benchmark.config import RunConfig
from subnetbench.errors import OptionError


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
    refusal = first.traits.seed_batch_refusal
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
