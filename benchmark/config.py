"""Typed, validated options of a run, settable from the command line.

A run is (protocol, method, seed) plus options in two namespaces:

- recipe options (``epochs=5``, ``init=signed_constant``, ``augmentation=true``...): :class:`Recipe`;
- method options (``method.smart_rescale=true``): the method's ``Options`` dataclass.

Every value is parsed by the type of its dataclass field and validated before any work starts; an
unknown key, a wrong type or a value out of range is a :class:`ConfigError` naming the key, the value
and what is allowed. The configuration hash covers only values that differ from the defaults (the
protocol's recipe and the method's options), so adding an option with a default later does not
rename old results (the idea of OpenLTH).
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from subnetbench import methods
from subnetbench.methods.initialisation import INITIALISATIONS

SCHEDULES = ("constant", "cosine")
AUTOCAST_MODES = ("none", "bf16")
# Recipe keys added after results of format version 1 were first written. At their defaults they are
# left out of a result's "options" (runner.execute compares stored options with the current ones, so
# results written before these keys existed stay reusable, and a run's file does not change).
LATER_RECIPE_KEYS = ("channels_last", "autocast", "compile")


class ConfigError(ValueError):
    """A bad option: the message names the key, the value and what is allowed."""


@dataclass(frozen=True)
class Recipe:
    """How a network is trained and evaluated. Defaults: the ASLP official code (PAPER.md 1.4)."""

    batch_size: int = 256
    epochs: int = 1000  # per training round
    patience: int = 100  # early stopping on validation accuracy; 0 turns it off
    schedule: str = "constant"  # learning-rate schedule over the epochs of a round
    init: str = "kaiming_normal"  # signed_constant is the paper's SC variant
    augmentation: bool = False  # DA: random crop, horizontal flip and normalisation, on the device
    normalise: bool | None = None  # None: normalise iff augmentation (the official behaviour)
    validation_fraction: float = 0.1
    bias: bool = True  # the ASLP networks have (frozen, unpruned) biases; edge-popup's have none
    eval_batch_size: int = 1024
    # The fast path (subnetbench speed measures each step on and off), off by default: the
    # results of today's configurations stay as they are. They change float arithmetic, not the
    # recipe; a run with one on has its own configuration hash.
    channels_last: bool = False  # NHWC activations and 4-D parameters in training and evaluation
    autocast: str = "none"  # "bf16": bfloat16 autocast of the training step; CUDA only (refused elsewhere)
    compile: bool = False  # torch.compile of the training forward (the model itself stays eager)

    def __post_init__(self) -> None:
        _check(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size",
               self.batch_size, "an integer >= 1")
        _check(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", self.epochs,
               "an integer >= 1")
        _check(isinstance(self.patience, int) and self.patience >= 0, "patience", self.patience,
               "an integer >= 0 (0 turns early stopping off)")
        _check(self.schedule in SCHEDULES, "schedule", self.schedule, f"one of {SCHEDULES}")
        _check(self.init in INITIALISATIONS, "init", self.init, f"one of {INITIALISATIONS}")
        _check(isinstance(self.validation_fraction, float) and 0 < self.validation_fraction <= 0.5,
               "validation_fraction", self.validation_fraction, "a number in (0, 0.5]")
        _check(isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1,
               "eval_batch_size", self.eval_batch_size, "an integer >= 1")
        _check(isinstance(self.channels_last, bool), "channels_last", self.channels_last, "true or false")
        _check(self.autocast in AUTOCAST_MODES, "autocast", self.autocast,
               f"one of {AUTOCAST_MODES} (bf16 runs on CUDA only)")
        _check(isinstance(self.compile, bool), "compile", self.compile, "true or false")

    @property
    def normalises(self) -> bool:
        return self.augmentation if self.normalise is None else self.normalise


# The edge-popup paper's recipe (PAPER.md 2.2); the edge_popup method's own optimiser defaults are
# already its SGD 0.1, momentum 0.9, weight decay 1e-4.
RECIPE_PRESETS: dict[str, dict[str, Any]] = {
    "aslp": {},
    "edge_popup": {"batch_size": 128, "epochs": 100, "schedule": "cosine", "patience": 0,
                   "augmentation": True},
}


def _check(condition: bool, key: str, value: Any, allowed: str) -> None:
    if not condition:
        raise ConfigError(f"option {key}={value!r} is not allowed; expected {allowed}")


@dataclass(frozen=True)
class RunConfig:
    protocol: str
    method: str
    seed: int
    recipe: Recipe
    method_options: Any
    default_recipe: Recipe = field(repr=False, compare=False, default=Recipe())

    def non_default_options(self) -> dict[str, Any]:
        """Dotted keys of the recipe and method options that differ from their defaults."""
        out = {k: v for k, v in _diff(self.recipe, self.default_recipe).items()}
        default_method = type(self.method_options)()
        out.update({f"method.{k}": v for k, v in _diff(self.method_options, default_method).items()})
        return dict(sorted(out.items()))

    @property
    def config_hash(self) -> str:
        canonical = json.dumps({"protocol": self.protocol, "method": self.method,
                                "options": self.non_default_options()}, sort_keys=True,
                               separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def run_id(self) -> str:
        return f"{self.protocol}.{self.method}.{self.config_hash}.seed{self.seed}"

    def options_dict(self) -> dict[str, Any]:
        recipe = dataclasses.asdict(self.recipe)
        for key in LATER_RECIPE_KEYS:
            if recipe[key] == getattr(Recipe, key):
                del recipe[key]
        return {"recipe": recipe, "method": dataclasses.asdict(self.method_options)}

    def variant(self) -> dict[str, bool]:
        """The paper's variant axes: DA, SC and SR (supermask's SR column is its DWR)."""
        opts = self.method_options
        rescale = bool(getattr(opts, "smart_rescale", False)
                       or getattr(opts, "dynamic_weight_rescale", False))
        return {"data_augmentation": self.recipe.augmentation,
                "signed_constant": self.recipe.init in ("signed_constant", "scaled_signed_constant"),
                "smart_rescale": rescale}


def _diff(value: Any, default: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)
            if getattr(value, f.name) != getattr(default, f.name)}


# -- parsing -------------------------------------------------------------------------------------
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"none", "null"}


def _parse_typed(text: str, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if type(None) in options and text.strip().lower() in _NONE:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _parse_typed(text, option, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"option {key}={text!r} is not allowed; expected "
                          f"{' or '.join(_type_name(o) for o in options)}")
    lowered = text.strip().lower()
    if annotation is bool:
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    elif annotation is int:
        try:
            return int(text)
        except ValueError:
            pass
    elif annotation is float:
        try:
            return float(text)
        except ValueError:
            pass
    elif annotation is str:
        return text
    raise ConfigError(f"option {key}={text!r} is not allowed; expected {_type_name(annotation)}")


def _type_name(annotation: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            type(None): "none"}.get(annotation, str(annotation))


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unknown(key: str, known: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown option {key!r} for {where}; allowed: {', '.join(sorted(known))}{hint}")


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """``["epochs=5", "method.hard=false"]`` -> {"epochs": "5", "method.hard": "false"}."""
    out: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not of the form KEY=VALUE (e.g. epochs=5)")
        out[key.strip()] = value.strip()
    return out


def build_recipe(default: Recipe, overrides: dict[str, str]) -> Recipe:
    known = _fields(Recipe)
    values = {}
    for key, text in overrides.items():
        if key not in known:
            raise _unknown(key, list(known) + ["method.<option>"], "the recipe")
        values[key] = _parse_typed(text, known[key], key)
    try:
        return dataclasses.replace(default, **values)
    except methods.OptionError as error:
        raise ConfigError(str(error)) from None


def build_method_options(method_name: str, overrides: dict[str, str]) -> Any:
    cls = methods.get(method_name)
    known = _fields(cls.Options)
    values = {}
    for key, text in overrides.items():
        if key not in known:
            error = _unknown(f"method.{key}", [f"method.{k}" for k in known],
                             f"method {method_name!r}")
            raise ConfigError(f"{error} (to set an option of some methods only, write "
                              f"NAME.{key}=VALUE, e.g. aslp.{key}={text})")
        values[key] = _parse_typed(text, known[key], f"method.{key}")
    try:
        return cls.Options(**values)
    except (methods.OptionError, TypeError) as error:
        raise ConfigError(f"method {method_name!r}: {error}") from None


def split_overrides(overrides: dict[str, str], method_name: str,
                    all_methods: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split ``--set`` values into recipe and method options for ``method_name``.

    ``method.X`` applies to every selected method; ``<method name>.X`` to that method only.
    """
    recipe, method = {}, {}
    for key, value in overrides.items():
        prefix, dot, rest = key.partition(".")
        if dot and prefix == "method":
            method[rest] = value
        elif dot and prefix in all_methods:
            if prefix == method_name:
                method[rest] = value
        elif dot:
            raise ConfigError(f"unknown option namespace {prefix!r} in {key!r}; use a recipe key, "
                              f"method.<option>, or <method name>.<option> with one of "
                              f"{', '.join(all_methods)}")
        else:
            recipe[key] = value
    return recipe, method
