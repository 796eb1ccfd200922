"""Sweep grids: validated axes and fixed settings, expanded into runs keyed by a configuration hash."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from lawrob import _checks
from lawrob.progress import logger
from lawrob.sweep.config import DENSE_NORMALIZED, RENAMED_KEYS, SCHEMA, Run, RunConfig, validate


def _renamed(table: Mapping[str, Any], where: str) -> dict:
    out = {}
    for key, value in dict(table).items():
        if key in RENAMED_KEYS:
            logger.warning(f"grid key {key!r} in {where} is now called {RENAMED_KEYS[key]!r}; please rename it")
            key = RENAMED_KEYS[key]
            if key in table:
                raise ValueError(f"grid {where} has both {key!r} and its old name")
        out[key] = value
    return out


@dataclasses.dataclass(frozen=True)
class Grid:
    """A sweep: the product of ``axes`` (key -> list of values) with ``fixed`` settings; other keys take defaults.

    Keys and their allowed values are in ``SCHEMA``; ``seeds=k`` is shorthand for the axis ``seed = [0..k-1]``.
    ``save_params=True`` keeps every run's trained parameters and mask (one compressed ``.npz`` per group under
    ``params/``); it does not change what a run computes, so it is not part of the configuration hash.
    ``from_toml`` reads ``[axes]`` and ``[fixed]`` tables and the optional top-level ``seeds`` and ``save_params``.
    Equal values of an axis are listed once, and runs at density 1 are the method ``dense`` (``normalized``).

    Parameters
    ----------
    axes : Mapping
        Key -> list of values.
    fixed : Mapping
        Key -> value.
    seeds : int, optional
        Shorthand for the axis ``seed = [0..seeds-1]``.
    save_params : bool
        Keep every run's trained parameters and mask.

    Raises
    ------
    ValueError
        If a key is unknown, a value is not allowed, or a key is both an axis and fixed.
    TypeError
        If ``save_params`` is not a bool.
    """

    axes: Mapping[str, list] = dataclasses.field(default_factory=dict)
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seeds: int | None = None
    save_params: bool = False

    def __post_init__(self):
        axes = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in _renamed(self.axes, "axes").items()}
        fixed = _renamed(self.fixed, "fixed")
        if self.seeds is not None:
            if "seed" in axes or "seed" in fixed:
                raise ValueError("give either seeds=k or a 'seed' axis/setting, not both")
            axes["seed"] = list(range(_checks.positive_int("seeds", self.seeds)))
        if not isinstance(self.save_params, bool):
            raise TypeError(f"save_params must be true or false, got {self.save_params!r}")
        for key, values in axes.items():
            if not values:
                raise ValueError(f"grid axis {key!r} has no values")
            axes[key] = list(dict.fromkeys(validate(key, v) for v in values))
        for key in fixed:
            fixed[key] = validate(key, fixed[key])
            if key in axes:
                raise ValueError(f"grid key {key!r} is both an axis and a fixed setting")
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "fixed", fixed)

    @classmethod
    def from_toml(cls, path: str | Path) -> "Grid":
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"config {path} is a folder; give a grid TOML file (see `lawrob demo --print-grid`)")
        if not path.is_file():
            raise ValueError(f"config {path} does not exist; give a grid TOML file")
        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"config {path} is not valid TOML: {error}") from None
        unknown = set(doc) - {"axes", "fixed", "seeds", "save_params"}
        if unknown:
            raise ValueError(f"unknown top-level table(s) {sorted(unknown)} in {path}; allowed: axes, fixed, seeds, save_params")
        return cls(axes=doc.get("axes", {}), fixed=doc.get("fixed", {}), seeds=doc.get("seeds"),
                   save_params=doc.get("save_params", False))

    def spec(self) -> dict:
        """The grid as plain data (axes with the seeds expanded, fixed settings, save_params): ``Grid(**spec)``
        rebuilds it."""
        return {"axes": self.axes, "fixed": self.fixed, "save_params": self.save_params}

    @property
    def id(self) -> str:
        """A 16-hex-digit hash of the runs the grid holds (not of how it is written): ``grid_id(self.runs())``."""
        return grid_id(self.runs())

    def _configs(self, keys: Iterable[str]) -> Iterator[RunConfig]:
        """The distinct normalized configurations over the axes in ``keys`` (the others at their first value),
        checked by the cross-key rules, in a deterministic order."""
        base = {k: default for k, (default, _) in SCHEMA.items()} | dict(self.fixed)
        base |= {k: v[0] for k, v in self.axes.items()}
        names = sorted(k for k in self.axes if k in keys)
        seen = set()
        for values in itertools.product(*(self.axes[k] for k in names)):
            config = RunConfig(**(base | dict(zip(names, values)))).normalized()
            h = config.hash
            if h not in seen:
                seen.add(h)
                yield config

    def runs(self) -> list[Run]:
        """Every run of the grid, in a deterministic order; equal configurations are listed once."""
        return [Run(c, c.hash) for c in self._configs(self.axes)]

    def groups(self) -> list[list[Run]]:
        """``groups_of(self.runs())``."""
        return groups_of(self.runs())

    def outline(self, keys: Iterable[str]) -> tuple[list[RunConfig], int]:
        """(the distinct configurations over the axes in ``keys``, the number of runs each stands for), without
        listing the runs: every other axis multiplies each configuration by its length. Exact as long as
        ``keys`` holds the keys that ``normalized`` and the cross-key rules read (``PLAN_KEYS`` and more)."""
        missing = set(PLAN_KEYS) - set(keys)
        if missing:
            raise ValueError(f"outline keys must include {sorted(missing)}")
        multiplicity = math.prod(len(v) for k, v in self.axes.items() if k not in keys)
        return list(self._configs(keys)), multiplicity


# The keys normalization and the cross-key rules read: a grid's outline over them counts its runs exactly.
PLAN_KEYS = ("density", *DENSE_NORMALIZED, "noise", "target", "amplitude", "steps", "log_every", "measure",
             "intrinsic_dim", "d", "loss")


def groups_of(runs: list[Run]) -> list[list[Run]]:
    """Runs grouped by ``SHAPE_KEYS`` (equal shapes train in one batched call), groups in first-appearance order."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.shape_key, []).append(run)
    return list(groups.values())


def grid_id(runs: list[Run]) -> str:
    """A 16-hex-digit hash of a set of runs (a grid's identity in a results folder)."""
    return hashlib.sha256(json.dumps(sorted(r.hash for r in runs)).encode()).hexdigest()[:16]

