"""Plugins written before the ``subnetbench`` namespace import ``methods.base`` and friends.

A finder maps the old top-level names ``methods``, ``benchmark`` and ``reports`` (and their
submodules) onto ``subnetbench.methods`` and so on, with a DeprecationWarning, when no real
top-level package of that name exists: another project's ``methods``, if installed, always wins.
The aliased module is the very same object, so classes keep one identity.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
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
        elif importlib.machinery.PathFinder.find_spec(top) is not None:
            return None
        if importlib.util.find_spec(new) is None:
            return None
        warnings.warn(f"'import {fullname}' is deprecated; import {new} instead",
                      DeprecationWarning, stacklevel=3)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(new),
                                               is_package=not dot or None)


def install() -> None:
    if not any(isinstance(finder, LegacyFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, LegacyFinder())
