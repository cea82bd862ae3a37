"""Runs described for people: the variant of a configuration in the paper's words, a label that
tells configurations apart without their hash, and a diagnosis of a run that ended at chance level.
Used by the command line's summary and by the report; nothing here imports torch."""
from __future__ import annotations

from typing import Any

VARIANT_SHORT = {"data_augmentation": "DA", "signed_constant": "SC", "smart_rescale": "SR"}
# The names a method declares for its rescaling (MethodTraits.rescaling), in the paper's words; the paper's
# SR column holds each method's own: smart rescale for ASLP and edge-popup, DWR for supermask.
RESCALING_SHORT = {"smart_rescale": "SR", "dynamic_weight_rescale": "DWR"}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "digits": 10}
# An accuracy below 2.5 times chance level (25 % of 10 classes, 2.5 % of 100) is "near chance": no
# configuration of the paper's grids is that low unless its run failed to learn or collapsed.
AT_CHANCE_FACTOR = 2.5
# Recipe options of the fast path: they change float arithmetic, not what is trained or evaluated,
# so a run with them reproduces a published value as well as one without.
FAST_PATH_OPTIONS = frozenset({"channels_last", "autocast", "compile"})
# Options that the variant axes already say (left out of a configuration's label).
VARIANT_OPTIONS = {"init", "augmentation", "method.smart_rescale", "method.dynamic_weight_rescale"}


def axes_label(variant: dict) -> str:
    """The paper's column of a variant: 'none', 'SR', 'SC', 'SC+SR', 'DA+SC+SR'... where SR stands
    for whatever rescaling the method has (supermask's is its DWR)."""
    on = [VARIANT_SHORT[a] for a in ("data_augmentation", "signed_constant", "smart_rescale")
          if variant.get(a)]
    return "+".join(on) if on else "none"


def rescaling_label(rescaling: str | None) -> str:
    """'SR', 'DWR', 'DWR+SR', or a plugin's own name, for a declared rescaling (``+``-joined)."""
    if not rescaling:
        return "SR"
    return "+".join(RESCALING_SHORT.get(name, name) for name in rescaling.split("+"))


def variant_label(variant: dict) -> str:
    """The variant in the paper's words: :func:`axes_label` with SR named by the rescaling the
    method declared (``variant["rescaling"]``): 'SR' for ASLP's smart rescale, 'DWR' for
    supermask's dynamic weight rescaling, 'SC+DWR+SR' for both."""
    label = axes_label(variant)
    if not variant.get("smart_rescale"):
        return label
    return label.replace("SR", rescaling_label(variant.get("rescaling")))


def configuration_label(method: str, variant: dict, non_default: dict[str, Any]) -> str:
    """``aslp SR``, ``supermask DWR``, ``edge_popup SC (epochs=5)``: the method, its variant in the
    paper's words (:func:`variant_label`), and the other options that differ from the protocol's
    defaults."""
    label = variant_label(variant)
    words = [method] + ([] if label == "none" else [label])
    extra = [f"{key.removeprefix('method.')}={value}" for key, value in sorted(non_default.items())
             if key not in VARIANT_OPTIONS]
    if non_default.get("init") not in (None, "signed_constant"):
        extra.insert(0, f"init={non_default['init']}")
    return " ".join(words) + (f" ({', '.join(extra)})" if extra else "")


def chance_level(dataset: str | None) -> float | None:
    classes = NUM_CLASSES.get(str(dataset))
    return 1.0 / classes if classes else None


def at_chance(dataset: str | None, accuracy: float | None) -> bool:
    chance = chance_level(dataset)
    return chance is not None and accuracy is not None and accuracy < AT_CHANCE_FACTOR * chance


def chance_cause(dataset: str | None, accuracy: float | None, options: dict[str, Any],
                 val_acc: list[float | None] | None, epochs_run: int | None) -> str | None:
    """None, or why a run whose extracted accuracy is at chance level likely ended there, from its
    recipe (``options["recipe"]``) and validation curve."""
    if not at_chance(dataset, accuracy):
        return None
    chance = chance_level(dataset)
    recipe = options.get("recipe", {}) if isinstance(options, dict) else {}
    epochs, patience = recipe.get("epochs"), recipe.get("patience")
    curve = [v for v in (val_acc or []) if v is not None]
    learned = bool(curve) and max(curve) >= AT_CHANCE_FACTOR * chance
    if learned:
        return (f"the validation accuracy reached {100 * max(curve):.0f}% but the extracted subnetwork "
                f"is at chance: training collapsed after its best epoch, or the deterministic mask differs "
                f"from the sampled ones (a learned keep rate near 0?)")
    if isinstance(epochs, int) and epochs_run is not None and epochs_run >= epochs:
        return (f"it never left chance level in its {epochs} epochs: too short a budget for this network "
                f"(a deep network with stochastic masks sits at chance for its first epochs, e.g. 11 on "
                f"digits Conv4 and 26 on Conv6); raise epochs")
    if isinstance(patience, int) and patience and epochs_run is not None and epochs_run <= patience + 2:
        return (f"early stopping ended it after {epochs_run} epochs on a plateau at chance level that "
                f"it never left (patience={patience}); a deep network with stochastic masks can sit at "
                f"chance for its first epochs: raise patience")
    method = options.get("method", {}) if isinstance(options, dict) else {}
    detached_dwr = method.get("dynamic_weight_rescale") and method.get("dwr_gradient") != "straight_through"
    hint = (" (supermask's DWR with a detached factor, dwr_gradient=detached, collapses so on digits "
            "at mask_lr 50)" if detached_dwr else "")
    return (f"it trained {epochs_run} epochs without leaving chance level: the optimisation failed; look at "
            f"the mask learning rate (method.mask_lr) and the training loss{hint}")
