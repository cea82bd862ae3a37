"""A run's seeded construction: its data split, network, initialisation and method, on a device."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from subnetbench import methods
from subnetbench.benchmark.config import RunConfig
from subnetbench.benchmark.data import DeviceData, Split
from subnetbench.benchmark.data import load as load_data
from subnetbench.benchmark.networks import build_network
from subnetbench.benchmark.seeding import make_generator
from subnetbench.benchmark.training import TRAINING_STREAMS
from subnetbench.methods.initialisation import initialise


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
    """Seeded construction of a run (what the runner trains), on ``device``.

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
