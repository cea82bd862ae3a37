"""The fields of a run's result file known before it trains, and of a run that has none to show."""
from __future__ import annotations

from typing import Any

import torch

from subnetbench.benchmark.config import RunConfig
from subnetbench.benchmark.data import DATASET_INFO
from subnetbench.benchmark.results import provenance
from subnetbench.benchmark.training import tf32_settings
from subnetbench.records import RunRecord


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
        method=config.method, family=config.traits.family, seed=config.seed,
        variant=config.variant(), options=config.options_dict(),
        non_default_options=config.non_default_options(), provenance=origin)


def run_identity(config: RunConfig, status: str) -> dict[str, Any]:
    """The identifying fields of a result file, for a run that has none to show (yet)."""
    return {"status": status, "run_id": config.run_id, "protocol": config.protocol,
            "dataset": config.spec.dataset, "network": config.spec.network, "method": config.method,
            "family": config.traits.family, "seed": config.seed,
            "config_hash": config.config_hash, "variant": config.variant(),
            "options": config.options_dict(), "non_default_options": config.non_default_options()}


def running_elsewhere(config: RunConfig, holder: dict[str, Any]) -> dict[str, Any]:
    """What the runner returns for a run another process is training: its identity and
    ``status`` ``running``, ``running_elsewhere`` its lock's holder (pid, host, since)."""
    return {**run_identity(config, "running"), "running_elsewhere": holder}
