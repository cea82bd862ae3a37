"""How a network is trained and evaluated: the :class:`Recipe`, and the named recipe presets.

Every value is validated when a recipe is made (a bad one is an :class:`OptionError` naming the key,
the value and what is allowed). Protocols (:mod:`benchmark.protocols`) start from a recipe; a run's
``--set KEY=VALUE`` options change it (:mod:`benchmark.config`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from subnetbench.methods.initialisation import INITIALISATIONS, SIGNED_CONSTANT_LAYERS
from subnetbench.methods.options import check_option

SCHEDULES = ("constant", "cosine")
AUTOCAST_MODES = ("none", "bf16")
VALIDATION_MASKS = ("sampled", "deterministic")
# Which float32 products a CUDA device computes in TF32 (10-bit mantissa): none, the convolutions
# (cuDNN; PyTorch's default since 1.12), or also the matrix products (PyTorch's default before 1.12).
TF32_MODES = ("none", "conv", "all")


# Checkpointing "auto": train at least this many times as long as the last checkpoint took.
AUTO_CHECKPOINT_FACTOR = 50


def parse_checkpoint_interval(text: Any) -> tuple[str, float] | None:
    """("auto", 0), ("epochs", N) or ("seconds", S) from ``auto``, ``N`` or ``Ss``; None when the
    text is none of them."""
    if not isinstance(text, str):
        return None
    text = text.strip().lower()
    if text == "auto":
        return ("auto", 0.0)
    try:
        if text.endswith("s"):
            seconds = float(text[:-1])
            return ("seconds", seconds) if 0 < seconds < float("inf") else None
        epochs = int(text)
    except ValueError:
        return None
    return ("epochs", epochs) if epochs >= 1 else None


def _check(condition: bool, key: str, value: Any, allowed: str) -> None:
    check_option(condition, "", key, value, allowed)


@dataclass(frozen=True)
class Recipe:
    """How a network is trained and evaluated. Defaults: the ASLP official code (docs/released-code.md)."""

    batch_size: int = 256
    epochs: int = 1000  # per training round
    patience: int = 100  # early stopping on validation accuracy; 0 turns it off
    schedule: str = "constant"  # learning-rate schedule over the epochs of a round
    init: str = "kaiming_normal"  # signed_constant is the paper's SC variant
    # Which layers a signed-constant init reaches: the released ASLP code re-draws the linear
    # layers with Kaiming normal after SC, so only convolutions get it ("conv"); "all" is the
    # paper's text (and the hidden-networks code's).
    signed_constant_layers: str = "conv"
    augmentation: bool = False  # DA: random crop, horizontal flip and normalisation, on the device
    normalise: bool | None = None  # None: normalise iff augmentation (the official behaviour)
    validation_fraction: float = 0.1
    bias: bool = True  # the ASLP networks have (frozen, unpruned) biases; edge-popup's have none
    # Validation and test batches. The released code evaluates in batches of its training batch
    # size (256), and its layers sample one mask per forward pass: a sampled validation or test
    # accuracy averages over one mask per 256 images, as here.
    eval_batch_size: int = 256
    # Validation (early stopping, checkpoint choice) of a stochastic method: on masks sampled at
    # every forward pass, as the released code's layers always sample ("sampled"), or on the
    # deterministic mask ("deterministic").
    validation_masks: str = "sampled"
    # The fast path (subnetbench speed measures each step on and off), off by default: the
    # results of today's configurations stay as they are. They change float arithmetic, not the
    # recipe; a run with one on has its own configuration hash.
    channels_last: bool = False  # NHWC activations and 4-D parameters in training and evaluation
    autocast: str = "none"  # "bf16": bfloat16 autocast of the training step (CPU or CUDA)
    compile: bool = False  # torch.compile of the training forward (the model itself stays eager)
    # TF32 on CUDA (a CPU has none). "all": what the released code's stack did (PyTorch of the
    # paper's time, before 1.12, defaulted to TF32 for convolutions and matrix products; see
    # docs/released-code.md). Out of the configuration hash at its default, like the fast path.
    tf32: str = "all"
    # How often a run writes its checkpoint, at an epoch's end: "N" epochs, "Ns" seconds, or
    # "auto": when the training since the last one took 50 times what that checkpoint took (at
    # most ~2 % of a run's time, whatever the device: a GPU epoch can be shorter than one
    # checkpoint). A run setting, not the recipe's: never in the configuration hash or options.
    checkpoint_interval: str = "auto"

    def __post_init__(self) -> None:
        _check(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size",
               self.batch_size, "an integer >= 1")
        _check(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", self.epochs,
               "an integer >= 1")
        _check(isinstance(self.patience, int) and self.patience >= 0, "patience", self.patience,
               "an integer >= 0 (0 turns early stopping off)")
        _check(self.schedule in SCHEDULES, "schedule", self.schedule, f"one of {SCHEDULES}")
        _check(self.init in INITIALISATIONS, "init", self.init, f"one of {INITIALISATIONS}")
        _check(self.signed_constant_layers in SIGNED_CONSTANT_LAYERS, "signed_constant_layers",
               self.signed_constant_layers, f"one of {SIGNED_CONSTANT_LAYERS} (conv: the released code)")
        _check(self.validation_masks in VALIDATION_MASKS, "validation_masks", self.validation_masks,
               f"one of {VALIDATION_MASKS} (sampled: the released code)")
        _check(isinstance(self.validation_fraction, float) and 0 < self.validation_fraction <= 0.5,
               "validation_fraction", self.validation_fraction, "a number in (0, 0.5]")
        _check(isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1,
               "eval_batch_size", self.eval_batch_size, "an integer >= 1")
        _check(isinstance(self.channels_last, bool), "channels_last", self.channels_last, "true or false")
        _check(self.autocast in AUTOCAST_MODES, "autocast", self.autocast,
               f"one of {AUTOCAST_MODES}")
        _check(isinstance(self.compile, bool), "compile", self.compile, "true or false")
        _check(parse_checkpoint_interval(self.checkpoint_interval) is not None,
               "checkpoint_interval", self.checkpoint_interval,
               "auto, a number of epochs >= 1 (e.g. 5) or of seconds > 0 (e.g. 30s)")
        _check(self.tf32 in TF32_MODES, "tf32", self.tf32,
               f"one of {TF32_MODES} (all: the released code's stack; CUDA only, no effect on a CPU)")

    @property
    def normalises(self) -> bool:
        return self.augmentation if self.normalise is None else self.normalise


# The hidden-networks recipe of edge-popup (docs/methods.md): SGD 0.1 with cosine schedule for 100
# epochs at batch 128, data augmentation, networks without biases, signed constants on every layer.
# The edge_popup method's own optimiser defaults are already its SGD 0.1, momentum 0.9, weight
# decay 1e-4.
RECIPE_PRESETS: dict[str, dict[str, Any]] = {
    "aslp": {},
    "edge_popup": {"batch_size": 128, "epochs": 100, "schedule": "cosine", "patience": 0,
                   "augmentation": True, "bias": False, "signed_constant_layers": "all"},
}
