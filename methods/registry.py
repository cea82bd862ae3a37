"""Discovery of methods by convention.

In-repo plugins: every public module of the ``methods`` package is imported, and each subclass of
:class:`methods.base.Method` defined in it with a non-empty ``name`` is registered. External plugins:
every entry point of the group ``subnetbench.methods`` in an installed distribution; it must load a
``Method`` subclass whose ``name`` equals the entry point's name. A name is claimed once: two
plugins claiming one name is an error that names both.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import pkgutil
import re
from pathlib import Path

from subnetbench.errors import OptionError, SubnetbenchError
from subnetbench.methods.base import Method

ENTRY_POINT_GROUP = "subnetbench.methods"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

_registry: dict[str, tuple[type[Method], str]] | None = None


class RegistryError(SubnetbenchError):
    """A plugin that cannot be registered (bad name, duplicate, not a Method)."""


class UnknownMethodError(OptionError, LookupError):
    """A method name nobody registered: a bad option like any other (and a ``LookupError``)."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0])


def _add(found: dict[str, tuple[type[Method], str]], cls: type, origin: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise RegistryError(f"{origin} does not give a subclass of subnetbench.methods.Method: {cls!r}")
    name = cls.name
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise RegistryError(f"{origin}: method name {name!r} must match {NAME_PATTERN.pattern} "
                            "(lower case, digits, underscores)")
    if name in found and found[name][0] is not cls:
        raise RegistryError(f"method name {name!r} is claimed twice: by {found[name][1]} "
                            f"and by {origin}")
    found[name] = (cls, origin)


def _discover() -> dict[str, tuple[type[Method], str]]:
    found: dict[str, tuple[type[Method], str]] = {}
    package = __name__.rpartition(".")[0]  # the built-in methods are this module's siblings
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, Method) and obj.__module__ == module.__name__
                    and obj.name):
                _add(found, obj, f"class {obj.__qualname__} in module {module.__name__}")
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist.name if entry_point.dist is not None else "unknown distribution"
        origin = f"entry point {entry_point.name!r} = {entry_point.value} (distribution {dist})"
        cls = entry_point.load()
        if getattr(cls, "name", None) != entry_point.name:
            raise RegistryError(f"{origin} loads a class named {getattr(cls, 'name', None)!r}; the "
                                "entry point's name and the class's `name` must be equal")
        _add(found, cls, origin)
    return found


def _methods() -> dict[str, tuple[type[Method], str]]:
    global _registry
    if _registry is None:
        _registry = _discover()
    return _registry


def refresh() -> None:
    """Forget the discovered methods; the next call discovers them again (new installs)."""
    global _registry
    _registry = None


def names() -> list[str]:
    """The sorted names of every registered method."""
    return sorted(_methods())


def get(name: str) -> type[Method]:
    """The method class registered under ``name``."""
    registry = _methods()
    if name in registry:
        return registry[name][0]
    close = difflib.get_close_matches(str(name), registry, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownMethodError(f"unknown method {name!r}; registered methods: "
                             f"{', '.join(sorted(registry))}{hint}")


def origin(name: str) -> str:
    """Where the method ``name`` comes from (module or entry point and distribution)."""
    get(name)
    return _methods()[name][1]
