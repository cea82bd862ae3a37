"""Protocols: ``{dataset}-{network}``. A protocol fixes the data, the network and the recipe.

CIFAR protocols use the paper's recipe (the ASLP official code: batch 256, up to 1000 epochs, early
stopping with patience 100, 10% validation split, no normalisation without DA). Digits protocols
(scikit-learn's 8x8 digits, offline; not in the paper) keep the same code and methods with a budget
sized for a CPU: batch 32, up to 30 epochs, patience 10, and normalised inputs (the official code's
unnormalised inputs are a CIFAR reproduction detail; on digits they only delay the mask-only
methods' start by several epochs).
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

from benchmark.config import ConfigError, Recipe
from benchmark.networks import ARCHITECTURES

DATASETS = ("cifar10", "cifar100", "digits")
NETWORKS = tuple(ARCHITECTURES)

DIGITS_RECIPE = dataclasses.replace(Recipe(), batch_size=32, epochs=30, patience=10, normalise=True)


@dataclass(frozen=True)
class Protocol:
    name: str
    dataset: str
    network: str
    recipe: Recipe

    @property
    def needs_gpu(self) -> bool:
        return self.dataset != "digits"


def _build() -> dict[str, Protocol]:
    out = {}
    for dataset in DATASETS:
        for network in NETWORKS:
            name = f"{dataset}-{network}"
            recipe = DIGITS_RECIPE if dataset == "digits" else Recipe()
            out[name] = Protocol(name, dataset, network, recipe)
    return out


PROTOCOLS = _build()


def names() -> list[str]:
    return sorted(PROTOCOLS)


def get(name: str) -> Protocol:
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    close = difflib.get_close_matches(name, PROTOCOLS, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown protocol {name!r}; protocols are {{dataset}}-{{network}} with dataset "
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
