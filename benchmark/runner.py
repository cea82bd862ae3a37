"""One run from configuration to result file; and grids of runs.

A run writes its result file as ``running`` when it starts, checkpoints every epoch, and replaces
the file with the ``completed`` (or ``failed``) record at the end. Asked again, a completed run is
skipped (unless forced) and an interrupted one resumes from its checkpoint; on a CPU the resumed
run ends with exactly the result of an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from subnetbench import methods
from subnetbench.benchmark import protocols
from subnetbench.benchmark.callbacks import Checkpoint, Progress
from subnetbench.benchmark.config import (
    RECIPE_PRESETS,
    ConfigError,
    RunConfig,
    build_method_options,
    build_recipe,
    split_overrides,
)
from subnetbench.benchmark.data import DATASET_INFO, DeviceData
from subnetbench.benchmark.data import load as load_data
from subnetbench.benchmark.networks import build_network
from subnetbench.benchmark.results import (
    FORMAT,
    FORMAT_VERSION,
    atomic_torch_save,
    atomic_write_json,
    checkpoint_path,
    provenance,
    read_result,
    run_path,
)
from subnetbench.benchmark.seeding import make_generator
from subnetbench.benchmark.training import Trainer, accuracy, check_recipe_device, sampled_accuracy
from subnetbench.methods.initialisation import initialise

KEEP_PROBABILITY_BINS = 20


def make_config(protocol: str, method: str, seed: int, overrides: dict[str, str] | None = None,
                all_methods: list[str] | None = None, preset: str | None = None) -> RunConfig:
    """Validate everything (protocol, method, every option) before any work starts."""
    spec = protocols.get(protocol)
    methods.get(method)
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed {seed!r} is not allowed; expected an integer >= 0")
    if preset is not None and preset not in RECIPE_PRESETS:
        raise ConfigError(f"unknown recipe {preset!r}; expected one of {sorted(RECIPE_PRESETS)}")
    recipe_overrides, method_overrides = split_overrides(dict(overrides or {}), method,
                                                         all_methods or [method])
    preset_values = {k: str(v).lower() if isinstance(v, bool) else str(v)
                     for k, v in RECIPE_PRESETS.get(preset or "aslp", {}).items()}
    recipe = build_recipe(spec.recipe, {**preset_values, **recipe_overrides})
    options = build_method_options(method, method_overrides)
    return RunConfig(protocol, method, seed, recipe, options, default_recipe=spec.recipe)


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"device {device!r} is not allowed; expected cpu, cuda, cuda:N or auto")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but CUDA is not available here")
    return torch.device(device)


def set_deterministic(device: torch.device, deterministic: bool) -> None:
    """CPU runs are deterministic as they are; on CUDA this trades speed for repeatability."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        torch.use_deterministic_algorithms(deterministic, warn_only=True)


def base_record(config: RunConfig, device: torch.device) -> dict[str, Any]:
    """The fields of a result file known before training (status "running"); seed batching shares it."""
    spec = protocols.get(config.protocol)
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "status": "running", "error": None,
        "run_id": config.run_id, "config_hash": config.config_hash, "protocol": config.protocol,
        "dataset": spec.dataset, "network": spec.network, "method": config.method,
        "family": methods.get(config.method).family, "seed": config.seed,
        "variant": config.variant(), "options": config.options_dict(),
        "non_default_options": config.non_default_options(),
        "provenance": provenance(device),
    }


def _keep_probability_histogram(method: methods.Method, model: torch.nn.Module) -> dict[str, Any] | None:
    if not hasattr(method, "keep_probability"):
        return None
    probabilities = torch.cat([method.keep_probability(layer).detach().flatten().float().cpu()
                               for _, layer in methods.masked_layers(model)])
    counts = torch.histc(probabilities, bins=KEEP_PROBABILITY_BINS, min=0.0, max=1.0)
    edges = torch.linspace(0, 1, KEEP_PROBABILITY_BINS + 1)
    return {"bin_edges": [round(float(e), 6) for e in edges], "counts": [int(c) for c in counts]}


def execute(config: RunConfig, results_dir: str | Path, *, device: str | None = None,
            data_dir: str | Path | None = None, download: bool = True, force: bool = False,
            progress: bool | None = None, deterministic: bool = False,
            checkpoint_every: int = 1, save_subnetwork: bool = False) -> dict[str, Any]:
    """Run ``config`` (or return its finished result) and write its result file.

    ``save_subnetwork`` also writes the extracted network's state dict to
    ``RESULTS/subnetworks/<run_id>.pt`` (see :func:`load_subnetwork`).
    """
    results_dir = Path(results_dir)
    path = run_path(results_dir, config.run_id)
    ckpt = checkpoint_path(results_dir, config.run_id)
    existing = stored_result(config, results_dir, force)
    if existing is not None:
        return existing
    if force:
        ckpt.unlink(missing_ok=True)
    torch_device = resolve_device(device)
    check_recipe_device(config.recipe, torch_device)
    record = base_record(config, torch_device)
    atomic_write_json(path, record)
    try:
        extracted, result = _train_and_evaluate(config, record, torch_device, data_dir, download,
                                                ckpt, progress, deterministic, checkpoint_every)
    except BaseException as error:
        if not isinstance(error, KeyboardInterrupt):
            record.update(status="failed", error=f"{type(error).__name__}: {error}")
            atomic_write_json(path, record)
        raise
    if save_subnetwork:
        atomic_torch_save(subnetwork_path(results_dir, config.run_id),
                          {k: v.cpu() for k, v in extracted.state_dict().items()})
    atomic_write_json(path, result)
    ckpt.unlink(missing_ok=True)
    return result


def stored_result(config: RunConfig, results_dir: str | Path, force: bool) -> dict[str, Any] | None:
    """The completed result of ``config`` to return instead of running it (marked ``skipped``),
    or None (not run, unfinished, or ``force``). A stored run with other options is an error."""
    path = run_path(Path(results_dir), config.run_id)
    existing = read_result(path)
    if existing is None or force:
        return None
    # Defaults stay out of the hash; a changed default must not pass old results off as new.
    stored = existing.get("options")
    if stored is not None and stored != json.loads(json.dumps(config.options_dict())):
        raise ConfigError(f"{path} holds run {config.run_id} with other options than now (a "
                          f"default changed since it ran?): stored {stored}, now "
                          f"{config.options_dict()}; move it away or pass --force to rerun it")
    if existing.get("status") == "completed":
        existing["skipped"] = True
        return existing
    return None


def subnetwork_path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / "subnetworks" / f"{run_id}.pt"


def load_subnetwork(results_dir: str | Path, result: dict[str, Any]) -> torch.nn.Module:
    """The extracted network a run saved, as a plain ConvNet (weights_only loading)."""
    spec = protocols.get(result["protocol"])
    info = DATASET_INFO[spec.dataset]
    model = build_network(spec.network, info.in_channels, info.image_size, info.num_classes,
                          bias=result["options"]["recipe"]["bias"])
    state = torch.load(subnetwork_path(results_dir, result["run_id"]), map_location="cpu",
                       weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def _train_and_evaluate(config: RunConfig, record: dict[str, Any], device: torch.device,
                        data_dir: str | Path | None, download: bool, ckpt: Path,
                        progress: bool | None, deterministic: bool,
                        checkpoint_every: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    set_deterministic(device, deterministic)
    parts = build_run(config, device, data_dir=data_dir, download=download)
    label = f"{config.protocol} {config.method} seed {config.seed}"
    trainer = Trainer(parts.model, parts.method, parts.data, config.recipe, parts.generators,
                      callbacks=[Checkpoint(ckpt, checkpoint_every), Progress(label, enabled=progress)])
    started = time.perf_counter()
    if ckpt.exists():
        trainer.load_state_dict(torch.load(ckpt, map_location=device, weights_only=True))
    resumed_s = trainer.state.elapsed_s  # epochs of earlier, interrupted sessions
    trainer.fit()
    return evaluate_run(config, record, trainer, started, resumed_s)


@dataclass
class RunParts:
    """What a run trains: its network prepared by its method, its data and its random streams."""

    model: torch.nn.Module
    method: methods.Method
    data: DeviceData
    generators: dict[str, torch.Generator]


def build_run(config: RunConfig, device: torch.device, data: DeviceData | None = None,
              data_dir: str | Path | None = None, download: bool = True) -> RunParts:
    """Seeded construction of a run (what :func:`execute` trains), on ``device``.

    ``data`` replaces the protocol's data set (already on the device), e.g. generated data of the
    same shape for a speed measurement; without it the seeded split of the real data is loaded.
    """
    spec = protocols.get(config.protocol)
    recipe = config.recipe
    seed = config.seed
    # Initialisation streams live on the CPU so a network starts the same on every device.
    generators = {name: make_generator(seed, name, device=device)
                  for name in ("order", "augmentation", "mask-sampling")}
    if data is None:
        data = load_data(spec.dataset, recipe.validation_fraction, make_generator(seed, "split"),
                         device, data_dir, download)
    info = data.info
    model = build_network(spec.network, info.in_channels, info.image_size, info.num_classes,
                          bias=recipe.bias)
    keep_fraction = getattr(config.method_options, "keep_fraction", 1.0)
    initialise(model, recipe.init, make_generator(seed, "init"), keep_fraction=keep_fraction)
    method = methods.get(config.method)(config.method_options)
    method.prepare(model, make_generator(seed, "method-init"))
    model.to(device)
    method.set_sample_generator(generators["mask-sampling"])
    return RunParts(model, method, data, generators)


def evaluate_run(config: RunConfig, record: dict[str, Any], trainer: Trainer, started: float,
                 resumed_s: float) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Test evaluation, extraction and the completed result record of a trained run.

    ``started`` is the ``time.perf_counter()`` at which this session's training began, and
    ``resumed_s`` the training time of earlier sessions of the run.
    """
    model, method, data, state = trainer.model, trainer.method, trainer.data, trainer.state
    recipe = config.recipe
    seed = config.seed
    device = data.test.labels.device
    model.eval()
    batch = recipe.eval_batch_size
    samples = getattr(config.method_options, "eval_samples", 1)
    if method.stochastic:
        test_acc = sampled_accuracy(model, method, data.test, trainer.preprocess, batch, samples,
                                    make_generator(seed, "test-sampling", device=device))
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
    return extracted, {
        **record,
        "status": "completed",
        "metrics": {
            "test_acc": test_acc,
            "final_test_acc": final_test_acc,
            "deterministic_test_acc": deterministic_test_acc,
            "kept_fraction": stats.kept_fraction,
            "epochs_to_best": state.best_epoch,
            "best_val_acc": state.best_val_acc,
            "epochs_run": len(history),
        },
        "layer_kept_fraction": stats.layer_kept_fraction,
        "keep_probabilities": _keep_probability_histogram(method, model),
        "curves": {key: [h[key] for h in history]
                   for key in ("epoch", "round", "train_loss", "train_acc", "val_acc")},
        "timings": {"total_s": resumed_s + time.perf_counter() - started,
                    "epoch_s": [h["seconds"] for h in history], "device": device.type},
    }


def run_grid(protocol_names: Iterable[str], method_names: Iterable[str], seeds: Iterable[int],
             results_dir: str | Path, overrides: dict[str, str] | None = None,
             preset: str | None = None, **execute_options: Any) -> list[dict[str, Any]]:
    """Every (protocol, method, seed); all configurations are validated before the first run."""
    method_names = list(method_names)
    configs = [make_config(p, m, s, overrides, method_names, preset)
               for p in protocol_names for m in method_names for s in seeds]
    return [execute(config, results_dir, **execute_options) for config in configs]


def _mean_std(runs: list[dict[str, Any]], key: str) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one run) of a metric over runs."""
    values = torch.tensor([float(r["metrics"][key]) for r in runs], dtype=torch.float64)
    return float(values.mean()), (float(values.std()) if len(runs) > 1 else 0.0)


def summarise(results: list[dict[str, Any]]) -> str:
    """A plain-text table: mean and std of the final test accuracy and kept fraction per config."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for result in results:
        key = (result["protocol"], result["method"], result["config_hash"])
        groups.setdefault(key, []).append(result)
    lines = [f"{'protocol':<16} {'method':<18} {'config':<12} {'n':>2} {'test acc %':>14} "
             f"{'extracted %':>14} {'kept %':>7} {'epochs':>6}"]
    for (protocol, method, config_hash), runs in sorted(groups.items()):
        done = [r for r in runs if r.get("status") == "completed"]
        if not done:
            lines.append(f"{protocol:<16} {method:<18} {config_hash:<12} {0:>2}  (no completed run)")
            continue
        test, final, kept, epochs = (_mean_std(done, k) for k in
                                     ("test_acc", "final_test_acc", "kept_fraction", "epochs_to_best"))
        lines.append(f"{protocol:<16} {method:<18} {config_hash:<12} {len(done):>2} "
                     f"{100 * test[0]:>7.2f} ± {100 * test[1]:<4.2f} "
                     f"{100 * final[0]:>7.2f} ± {100 * final[1]:<4.2f} {100 * kept[0]:>7.1f} "
                     f"{epochs[0]:>6.1f}")
    return "\n".join(lines)


def replace_recipe(config: RunConfig, **changes: Any) -> RunConfig:
    return dataclasses.replace(config, recipe=dataclasses.replace(config.recipe, **changes))
