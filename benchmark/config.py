"""A run's configuration, resolved and validated once: :class:`RunConfig` and :func:`make_config`.

A run is (protocol, method, seed) plus options in two namespaces:

- recipe options (``epochs=5``, ``init=signed_constant``, ``augmentation=true``...): :class:`Recipe`;
- method options (``method.smart_rescale=true`` for every selected method, ``aslp.temperature=2``
  for one): the method's ``Options`` dataclass.

Every value is parsed by the type of its dataclass field and validated before any work starts; an
unknown key, a wrong type or a value out of range is an :class:`OptionError` naming the key as it was
typed, the value and what is allowed. The configuration hash covers only values that differ from the
defaults (the protocol's recipe and the method's options), so adding an option with a default later
does not rename old results (the idea of OpenLTH).
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import types
import typing
from dataclasses import dataclass
from typing import Any

from subnetbench import methods
from subnetbench.benchmark import protocols
from subnetbench.benchmark.data import check_split
from subnetbench.benchmark.protocols import Protocol
from subnetbench.benchmark.recipe import RECIPE_PRESETS, Recipe
from subnetbench.methods.base import Method, MethodTraits
from subnetbench.methods.options import OptionError, float32_problem

# Recipe keys added after results of format version 1 were first written. At their defaults they are
# left out of a result's "options" (stored_result.judge compares stored options with the current
# ones, so results written before these keys existed stay reusable, and a run's file does not change).
LATER_RECIPE_KEYS = ("channels_last", "autocast", "compile", "tf32")
# Recipe keys that change how a run is carried out, never its numbers: in no hash, no result file.
RUN_SETTING_KEYS = ("checkpoint_interval",)
# Seeds seed 64-bit torch generators and name a run's files: a 300-digit seed made a file name too
# long for any file system (and was reported as "choose a shorter path").
MAX_SEED = 2**63


@dataclass(frozen=True)
class RunConfig:
    """One run: its protocol and method class (resolved once, by :func:`make_config`), its seed and
    its validated options."""

    spec: Protocol
    method_class: type[Method]
    seed: int
    recipe: Recipe
    method_options: Any

    @property
    def protocol(self) -> str:
        return self.spec.name

    @property
    def method(self) -> str:
        return self.method_class.name

    @functools.cached_property
    def traits(self) -> MethodTraits:
        """What this configuration's method declares (read from a method object that is never
        trained; :meth:`new_method` builds the one a run trains)."""
        return self.new_method().traits()

    def new_method(self) -> Method:
        return self.method_class(self.method_options)

    def non_default_options(self) -> dict[str, Any]:
        """Dotted keys of the recipe and method options that differ from their defaults."""
        out = {k: v for k, v in _diff(self.recipe, self.spec.recipe).items()
               if k not in RUN_SETTING_KEYS}
        out.update({f"method.{k}": v for k, v in
                    _diff(self.method_options, type(self.method_options)()).items()})
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
        for key in RUN_SETTING_KEYS:
            del recipe[key]
        for key in LATER_RECIPE_KEYS:
            if recipe[key] == getattr(Recipe, key):
                del recipe[key]
        return {"recipe": recipe, "method": dataclasses.asdict(self.method_options)}

    def variant(self) -> dict[str, Any]:
        """The paper's variant axes: DA, SC and SR (any rescaling the method declares; supermask's
        SR column is its dynamic weight rescaling), and which rescaling that is (``rescaling``)."""
        return {"data_augmentation": self.recipe.augmentation,
                "signed_constant": self.recipe.init in ("signed_constant", "scaled_signed_constant"),
                "smart_rescale": self.traits.rescaling is not None,
                "rescaling": self.traits.rescaling}


def _diff(value: Any, default: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)
            if getattr(value, f.name) != getattr(default, f.name)}


def make_config(protocol: str, method: str, seed: int, overrides: dict[str, str] | None = None,
                all_methods: list[str] | None = None, preset: str | None = None) -> RunConfig:
    """Resolve the protocol and the method and validate every option, before any work starts.

    ``overrides`` are ``--set`` values (``{"epochs": "5", "aslp.temperature": "2"}``);
    ``all_methods`` the methods selected together (for ``NAME.KEY`` namespaces); ``preset`` a key
    of :data:`RECIPE_PRESETS`.
    """
    spec = protocols.get(protocol)
    method_class = methods.get(method)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < MAX_SEED:
        raise OptionError(f"seed {seed!r} is not allowed; expected an integer in [0, 2**63)")
    if preset is not None and preset not in RECIPE_PRESETS:
        raise OptionError(f"unknown recipe {preset!r}; expected one of {sorted(RECIPE_PRESETS)}")
    recipe_overrides, method_overrides = split_overrides(dict(overrides or {}), method,
                                                         all_methods or [method])
    preset_values = {k: str(v).lower() if isinstance(v, bool) else str(v)
                     for k, v in RECIPE_PRESETS.get(preset or "aslp", {}).items()}
    recipe = build_recipe(spec.recipe, {**preset_values, **recipe_overrides})
    check_split(spec.dataset, recipe.validation_fraction)
    options = build_method_options(method_class, method_overrides, all_methods)
    return RunConfig(spec, method_class, seed, recipe, options)


# -- parsing -------------------------------------------------------------------------------------
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"none", "null"}


class _OutOfRange(OptionError):
    """A value that parses as its type but lies outside what a run can compute with."""


def _parse_typed(text: str, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if type(None) in options and text.strip().lower() in _NONE:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _parse_typed(text, option, key)
            except _OutOfRange:
                raise  # a number, but not one a run can use: that message, not "expected a number"
            except OptionError:
                pass
        raise OptionError(f"option {key}={text!r} is not allowed; expected "
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
            value = float(text)
        except ValueError:
            pass
        else:
            problem = float32_problem(value)
            if problem is None:
                return value
            raise _OutOfRange(f"option {key}={text!r} is not allowed; expected {problem}")
    elif annotation is str:
        return text
    raise OptionError(f"option {key}={text!r} is not allowed; expected {_type_name(annotation)}")


def _type_name(annotation: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            type(None): "none"}.get(annotation, str(annotation))


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unknown(key: str, known: list[str], where: str) -> OptionError:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return OptionError(f"unknown option {key!r} for {where}; allowed: {', '.join(sorted(known))}{hint}")


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """``["epochs=5", "method.hard=false"]`` -> {"epochs": "5", "method.hard": "false"}."""
    out: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--set {item!r} is not of the form KEY=VALUE (e.g. epochs=5)")
        out[key.strip()] = value.strip()
    return out


def build_recipe(default: Recipe, overrides: dict[str, str]) -> Recipe:
    known = _fields(Recipe)
    values = {}
    for key, text in overrides.items():
        if key not in known:
            raise _unknown(key, list(known) + ["method.<option>"], "the recipe")
        values[key] = _parse_typed(text, known[key], key)
    return dataclasses.replace(default, **values)


def build_method_options(cls: type[Method], overrides: dict[str, str],
                         selected: list[str] | None = None) -> Any:
    """The ``Options`` of method class ``cls`` from ``{key: text}``; a key is an option name, or the
    dotted key as the user typed it (``method.temperature``, ``aslp.temperature``), which errors
    then name. ``selected``: the methods chosen together, for the hint of an option only some of
    them have."""
    method_name = cls.name
    known = _fields(cls.Options)
    values = {}
    for typed, text in overrides.items():
        namespace, dot, key = typed.rpartition(".")
        namespace = namespace if dot else "method"
        typed = f"{namespace}.{key}"
        if key not in known:
            error = _unknown(typed, [f"{namespace}.{k}" for k in known], f"method {method_name!r}")
            having = [m for m in selected or [] if key in _fields(methods.get(m).Options)]
            example = f", e.g. {having[0]}.{key}={text}" if having else ""
            raise OptionError(f"{error} (to set an option of some methods only, write "
                              f"NAME.{key}=VALUE{example})")
        values[key] = _parse_typed(text, known[key], typed)
    try:
        return cls.Options(**values)
    except (OptionError, TypeError) as error:
        raise OptionError(f"method {method_name!r}: {error}") from None


def split_overrides(overrides: dict[str, str], method_name: str,
                    all_methods: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split ``--set`` values into recipe options and the options of ``method_name`` (the latter
    keep their typed dotted keys). ``method.X`` applies to every selected method; ``<method
    name>.X`` to that method only."""
    recipe, method = {}, {}
    for key, value in overrides.items():
        prefix, dot, _ = key.partition(".")
        if dot and prefix == "method":
            method[key] = value
        elif dot and prefix in all_methods:
            if prefix == method_name:
                method[key] = value
        elif dot:
            raise OptionError(f"unknown option namespace {prefix!r} in {key!r}; use a recipe key, "
                              f"method.<option>, or <method name>.<option> with one of "
                              f"{', '.join(all_methods)}")
        else:
            recipe[key] = value
    return recipe, method
