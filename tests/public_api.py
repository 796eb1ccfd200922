"""The public API as the docstring and annotation tests see it: every function and class named in the ``__all__`` of
a public module (no path component starting with ``_``) or of a package ``__init__``, and the public methods of
those classes (defined in lawrob, not inherited from a base outside it)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import lawrob

def _public_modules() -> list:
    names = ["lawrob"] + [m.name for m in pkgutil.walk_packages(lawrob.__path__, "lawrob.")
                          if not any(part.startswith("_") for part in m.name.split("."))]
    return [module for module in map(importlib.import_module, names) if hasattr(module, "__all__")]


def _own(obj) -> bool:
    return (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__.startswith("lawrob")


def public_objects() -> dict[str, object]:
    """``{"module.qualname": obj}`` for every public function and class, keyed by where it is defined."""
    found = {}
    for module in _public_modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if _own(obj):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return dict(sorted(found.items()))


def public_methods() -> dict[str, object]:
    """``{"module.Class.method": function}`` for the public methods and properties' getters of the public classes
    (``__init__`` excluded: a class's Parameters section documents it)."""
    found = {}
    for key, cls in public_objects().items():
        if not inspect.isclass(cls):
            continue
        fields = {field.name for field in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
        for name, member in vars(cls).items():
            if name.startswith("_") or name in fields:  # a field's default (a function) is no method
                continue
            function = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if inspect.isfunction(function) and function.__module__.startswith("lawrob"):
                found[f"{key}.{name}"] = function
    return found
