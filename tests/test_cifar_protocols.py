"""The CIFAR protocols end to end on generated data in torchvision's on-disk format: what a run of
the reproduction defaults (the released ASLP code) and of the hidden-networks recipe really does,
read back from its result file and its saved subnetwork."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from subnetbench.benchmark import grids
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.data import CIFAR10_MEAN, CIFAR100_MEAN, CIFAR100_STD
from subnetbench.benchmark.runner import execute
from subnetbench.benchmark.subnetworks import load_subnetwork
from subnetbench.describe import FAST_PATH_OPTIONS
from subnetbench.reports.loading import load_reference
from tests.helpers import fake_cifar, single_torch_thread  # noqa: F401  (autouse fixture)

SMALL = {"epochs": "1", "patience": "0", "batch_size": "60", "eval_batch_size": "60"}


def layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def constant_magnitude(weight: torch.Tensor) -> bool:
    kept = weight[weight != 0].abs()
    return kept.numel() > 0 and torch.allclose(kept, kept[0].expand_as(kept))


@pytest.fixture
def cifar(tmp_path, trusted_cifar_files):
    def make(dataset: str):
        fake_cifar(tmp_path, dataset, (60, 60, 60, 60, 60, 40) if dataset == "cifar10" else (300, 40))
        return tmp_path
    return make


def run(config, data_dir, results_dir) -> tuple[dict, nn.Module]:
    result = execute(config, results_dir, device="cpu", progress=False, data_dir=data_dir,
                     download=False, save_subnetwork=True)
    assert result["status"] == "completed"
    return result, load_subnetwork(results_dir, result)


def test_the_reproduction_defaults_are_the_released_codes(cifar, tmp_path):
    """SC reaches the convolutions only (linear layers keep Kaiming normal weights), inputs are not
    normalised without DA, stochastic methods validate on sampled masks."""
    config = make_config("cifar10-conv2", "aslp", 0, {**SMALL, "init": "signed_constant"})
    result, subnetwork = run(config, cifar("cifar10"), tmp_path / "results")
    recipe = result["options"]["recipe"]
    assert (recipe["signed_constant_layers"], recipe["validation_masks"]) == ("conv", "sampled")
    assert result["provenance"]["input_normalisation"] is None
    for name, layer in layers(subnetwork).items():
        if isinstance(layer, nn.Conv2d):
            assert constant_magnitude(layer.weight), name  # sign(w) * std: one magnitude a layer
        else:
            assert not constant_magnitude(layer.weight), name  # the Kaiming normal draw
            assert layer.weight[layer.weight != 0].abs().unique().numel() > 100
        assert layer.bias is not None  # the ASLP networks have (frozen) biases


def test_the_grid_runs_sr_and_dwr_as_the_released_code_steps_them(cifar, tmp_path):
    """In the paper grid, aslp's SR is stepped in two passes a batch and supermask's DWR factor is
    differentiable, by default (their result files say so)."""
    data = cifar("cifar10")
    aslp = make_config("cifar10-conv2", "aslp", 0, {**SMALL, "method.smart_rescale": "true"})
    result, _ = run(aslp, data, tmp_path / "aslp")
    assert result["options"]["method"]["smart_rescale_update"] == "alternating"
    assert result["variant"]["rescaling"] == "smart_rescale"
    assert "rescaling_overhead" not in result["timings"]  # timed by its own study, not in runs
    supermask = make_config("cifar10-conv2", "supermask", 0,
                            {**SMALL, "method.dynamic_weight_rescale": "true"})
    result, _ = run(supermask, data, tmp_path / "supermask")
    assert result["options"]["method"]["dwr_gradient"] == "straight_through"
    assert result["variant"]["rescaling"] == "dynamic_weight_rescale"


def test_edge_popup_in_the_paper_grid_runs_the_hidden_networks_recipe(cifar, tmp_path):
    """No biases, SC on every layer, batch 128, cosine, 100 epochs, DA with normalisation."""
    from subnetbench.benchmark import grids

    (cell,) = [c for c in grids.get("cifar10") if c.methods == ("edge_popup",)
               and c.overrides.get("init") == "signed_constant" and "method.smart_rescale" not in c.overrides]
    config = make_config("cifar10-conv2", "edge_popup", 0, {**cell.overrides, **SMALL}, preset=cell.preset)
    assert (config.recipe.schedule, config.recipe.augmentation, config.recipe.bias) == ("cosine", True, False)
    result, subnetwork = run(config, cifar("cifar10"), tmp_path / "results")
    assert result["provenance"]["input_normalisation"]["mean"] == list(CIFAR10_MEAN)
    for name, layer in layers(subnetwork).items():
        assert constant_magnitude(layer.weight), name
        assert layer.bias is None
    assert result["metrics"]["kept_fraction"] == pytest.approx(0.5, abs=1e-3)


def test_cifar100_normalises_with_its_own_statistics(cifar, tmp_path):
    config = make_config("cifar100-conv2", "dense", 0, {**SMALL, "augmentation": "true"})
    result, subnetwork = run(config, cifar("cifar100"), tmp_path / "results")
    assert result["provenance"]["input_normalisation"] == {"mean": list(CIFAR100_MEAN),
                                                           "std": list(CIFAR100_STD)}
    assert list(layers(subnetwork).values())[-1].out_features == 100


def _grid_configurations(published) -> list[dict]:
    """The non-default options of the named grid's configurations that match a published value."""
    found = []
    for cell in grids.get(published.dataset):
        protocol = f"{published.dataset}-{published.network}"
        if protocol not in cell.protocols or published.method not in cell.methods:
            continue
        config = make_config(protocol, published.method, 0, cell.overrides, list(cell.methods),
                             cell.preset)
        if published.matches(published.dataset, published.network, published.method, config.variant()):
            found.append({k: v for k, v in config.non_default_options().items()
                          if k not in FAST_PATH_OPTIONS})
    return found


def test_each_published_value_names_the_grid_configurations_that_reproduce_it():
    """reference_results/published.json lists, for each value, the options of the configurations
    that reproduce it: exactly those of the named grid's cells of its variant (``--grid cifar10``
    runs them), so a verdict is only ever given to those runs."""
    reference = load_reference()
    assert reference.problem is None
    for p in reference.values:
        expected = _grid_configurations(p)
        assert expected, p.id
        assert sorted(map(repr, p.reproduction_options)) == sorted(map(repr, expected)), p.id
