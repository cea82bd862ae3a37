"""Protocols: ``{dataset}-{network}``. A protocol fixes the data, the network and the recipe.

CIFAR protocols reproduce the released ASLP code (docs/released-code.md): batch 256, up to 1000
epochs, early stopping with patience 100 on validation accuracy, 10% seeded validation split, no
normalisation without DA, signed constants on the convolutions only, stochastic methods validated on
sampled masks (the last three are recipe options with the paper's text as the alternative). CIFAR-100
normalises with its own per-channel statistics. In the named grids edge-popup runs the
hidden-networks recipe instead (``--recipe edge_popup``).

Digits protocols (scikit-learn's 8x8 digits, offline; not in the paper) keep the same code, methods
and released-code behaviours, with CPU-friendly choices: batch 32, normalised inputs (the official
code's unnormalised inputs are a CIFAR reproduction detail; on digits they only delay the mask-only
methods' start by several epochs), edge-popup on this same recipe in the grids (no augmentation of
8x8 digits), and budgets sized for a CPU:

- Conv2: up to 30 epochs, patience 10;
- Conv4, Conv6, Conv8: up to 100 epochs, patience 40. A digits epoch is only about 40 optimiser
  steps, and the stochastic masks of ASLP and supermask (every weight kept with probability 1/2 at
  the start) leave a deeper network at chance for a while before it learns: measured on seed 0,
  ASLP's validation accuracy stays at its first value for 11 epochs on Conv4 and 26 on Conv6, then
  reaches 97 %. With Conv2's patience of 10 these runs stopped at chance.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

from subnetbench.benchmark.networks import ARCHITECTURES
from subnetbench.benchmark.recipe import Recipe
from subnetbench.errors import OptionError

DATASETS = ("cifar10", "cifar100", "digits")
NETWORKS = tuple(ARCHITECTURES)

# eval_batch_size 1024: a digits validation split (144 images) and test split (360) in one or two
# batches, so a sampled evaluation draws one mask for the whole split (CPU-sized).
DIGITS_RECIPE = dataclasses.replace(Recipe(), batch_size=32, epochs=30, patience=10, normalise=True,
                                    eval_batch_size=1024)
DEEP_DIGITS_RECIPE = dataclasses.replace(DIGITS_RECIPE, epochs=100, patience=40)


def default_recipe(dataset: str, network: str) -> Recipe:
    """The recipe a protocol starts from (see the module's docstring for the digits budgets)."""
    if dataset != "digits":
        return Recipe()
    return DIGITS_RECIPE if network == "conv2" else DEEP_DIGITS_RECIPE


@dataclass(frozen=True)
class Protocol:
    name: str
    dataset: str
    network: str
    recipe: Recipe

    @property
    def needs_gpu(self) -> bool:
        return self.dataset != "digits"

    @property
    def notes(self) -> str:
        """What the protocol reproduces and where it chooses otherwise (``subnetbench list``)."""
        if self.dataset == "digits":
            r = self.recipe
            return (f"CPU-sized, CPU-friendly choices: batch {r.batch_size}, up to {r.epochs} epochs "
                    f"(patience {r.patience}), normalised inputs, evaluation in batches of "
                    f"{r.eval_batch_size} (one sampled mask per split), edge-popup on this recipe "
                    "in the grids; the released code's behaviours otherwise")
        own = ", CIFAR-100's own mean and std" if self.dataset == "cifar100" else ""
        return ("GPU-sized, the released ASLP code: batch 256, up to 1000 epochs (patience 100), "
                f"unnormalised inputs without DA{own}, SC on convolutions only, sampled-mask validation "
                "(one mask per batch of 256, as its evaluation batches); "
                "edge-popup in the grids: the hidden-networks recipe")


def _build() -> dict[str, Protocol]:
    out = {}
    for dataset in DATASETS:
        for network in NETWORKS:
            name = f"{dataset}-{network}"
            out[name] = Protocol(name, dataset, network, default_recipe(dataset, network))
    return out


PROTOCOLS = _build()


def names() -> list[str]:
    return sorted(PROTOCOLS)


def get(name: str) -> Protocol:
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    close = difflib.get_close_matches(name, PROTOCOLS, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise OptionError(f"unknown protocol {name!r}; protocols are {{dataset}}-{{network}} with dataset "
                      f"in {DATASETS} and network in {NETWORKS}{hint}")


def expand(selectors: list[str]) -> list[str]:
    """Protocol names from names or dataset names (``digits`` = every digits protocol)."""
    out: list[str] = []
    for selector in selectors:
        matched = [selector] if selector in PROTOCOLS else [
            name for name in names() if PROTOCOLS[name].dataset == selector]
        if not matched:
            get(selector)  # raises with the suggestion
        out += [name for name in matched if name not in out]
    return out
