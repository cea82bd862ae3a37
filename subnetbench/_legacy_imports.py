"""Plugins written before the ``subnetbench`` namespace import ``methods.base`` and friends.

A finder maps the old top-level names ``methods``, ``benchmark`` and ``reports`` (and their
submodules) onto ``subnetbench.methods`` and so on, with a DeprecationWarning, when no other
project's top-level package of that name exists: another project's ``methods``, if installed,
always wins. This repository's own folders (found as top-level packages when the repository root
is on ``sys.path``: ``python -m`` or pytest run from it) are aliased too, never imported a second
time, so classes keep one identity whatever the working directory.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings

OLD_NAMES = ("methods", "benchmark", "reports")


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.original_spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # Already executed; the import system has just set __spec__ to the alias's: put it back.
        module.__spec__ = self.original_spec


class LegacyFinder(importlib.abc.MetaPathFinder):
    """First on sys.meta_path, so that a submodule of an alias is aliased too, never loaded a
    second time from the alias's ``__path__``."""

    def find_spec(self, fullname, path=None, target=None):
        top, dot, _ = fullname.partition(".")
        if top not in OLD_NAMES:
            return None
        new = f"subnetbench.{fullname}"
        if dot:
            if sys.modules.get(top) is not sys.modules.get(f"subnetbench.{top}"):
                return None  # a real top-level package of that name
        target = importlib.util.find_spec(new)
        if target is None:
            return None
        if not dot:
            found = importlib.machinery.PathFinder.find_spec(top)
            if found is not None and not _same_folder(found, target):
                return None  # another project's top-level package of that name
        # stacklevel 2: warnings skips the import machinery's frames, so this names the line of
        # the plugin that wrote the import (and the default filters attribute it to that module)
        warnings.warn(f"'import {fullname}' is deprecated; import {new} instead",
                      DeprecationWarning, stacklevel=2)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(new),
                                               is_package=not dot or None)


def _same_folder(a: importlib.machinery.ModuleSpec, b: importlib.machinery.ModuleSpec) -> bool:
    """Whether two package specs are the same folder on disk (this repository's ``methods/`` seen
    as a top-level package, and ``subnetbench.methods``)."""
    folders_a = {os.path.realpath(p) for p in (a.submodule_search_locations or [])}
    folders_b = {os.path.realpath(p) for p in (b.submodule_search_locations or [])}
    return bool(folders_a) and folders_a == folders_b


def install() -> None:
    if not any(isinstance(finder, LegacyFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, LegacyFinder())
