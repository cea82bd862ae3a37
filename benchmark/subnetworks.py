"""A completed run's saved subnetwork (``--no-save-subnetwork`` skips it): writing, checking and
loading it. docs/faults.md says what happens to one that fails its check."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from subnetbench.benchmark import protocols
from subnetbench.benchmark.data import DATASET_INFO
from subnetbench.benchmark.networks import build_network
from subnetbench.benchmark.results import atomic_torch_save, load_verified
from subnetbench.errors import IntegrityError, PathNotFound, SubnetbenchError
from subnetbench.files import read_regular_file
from subnetbench.integrity import digest_path
from subnetbench.layout import ResultsLayout
from subnetbench.records import FORMAT_VERSION, RunRecord


def save_subnetwork(path: Path, extracted: torch.nn.Module) -> None:
    """The extracted network's state dict, on the CPU, with its digest file."""
    atomic_torch_save(path, {k: v.cpu() for k, v in extracted.state_dict().items()})


def has_checked_subnetwork(record: RunRecord, subnetwork: Path) -> bool:
    """Whether a completed run's saved subnetwork is there to check: always from format version 2
    on, and in version 1 when it has a digest file."""
    return subnetwork.exists() and ((record.format_version or 2) >= 2
                                    or digest_path(subnetwork).exists())


def load_subnetwork(results_dir: str | Path, result: dict[str, Any]) -> torch.nn.Module:
    """The extracted network a run saved, as a plain ConvNet, after its SHA-256 check
    (``weights_only`` loading). Subnetworks of result files of format version 1 (written before
    digests) load without the check when they have no digest file. IntegrityError when the file
    fails its check or does not fit the run's network; PathNotFound when there is none."""
    spec = protocols.get(result["protocol"])
    info = DATASET_INFO[spec.dataset]
    model = build_network(spec.network, info.in_channels, info.image_size, info.num_classes,
                          bias=result["options"]["recipe"]["bias"])
    path = ResultsLayout(results_dir).subnetwork(result["run_id"])
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
