"""Sweep grids: validated axes and fixed settings, expanded into runs keyed by a configuration hash."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lawrob import data, lipschitz, nets, prune, train
from lawrob.prune import imp_schedule
from lawrob.progress import logger


def _int(minimum):
    def check(key, v):
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ValueError(f"grid key {key!r} must be an integer >= {minimum}, got {v!r}")
    return check


def _real(low, high, low_open=False, high_open=False):
    def check(key, v):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ok = ok and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
        if not ok:
            interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise ValueError(f"grid key {key!r} must be a number in {interval}, got {v!r}")
    return check


def _choice(*allowed):
    def check(key, v):
        if v not in allowed:
            raise ValueError(f"grid key {key!r} must be one of {list(allowed)}, got {v!r}")
    return check


def _box(key, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v == 0 or 1 <= v < math.inf):
        raise ValueError(f"grid key {key!r} must be 0 (the box of the trained weights) or a number >= 1, got {v!r}")


def _registered(names):
    """A validator reading a registry when a grid is checked, so a method registered after import is allowed."""
    def check(key, v):
        if v not in names():
            raise ValueError(f"grid key {key!r} must be one of {list(names())}, got {v!r}")
    return check

# key -> (default, validator). Every run carries every key, so its hash names its full configuration.
SCHEMA: dict[str, tuple[Any, Any]] = {
    "measure": ("gaussian", _choice(*data.MEASURES)),
    "intrinsic_dim": (2, _int(1)),
    "d": (8, _int(1)),
    "n": (64, _int(1)),
    "target": ("zero", _choice(*data.TARGETS)),
    "noise": ("rademacher", _choice(*data.NOISES)),
    "amplitude": (1.0, _real(0, math.inf, low_open=True, high_open=True)),
    "flip": (0.1, _real(0, 0.5)),
    "width": (64, _int(1)),
    "depth": (2, _int(1)),
    "activation": ("relu", _choice(*nets.ACTIVATIONS)),
    "method": ("random", _registered(lambda: list(prune.METHODS))),
    "density": (1.0, _real(0, 1, low_open=True)),
    "imp_rate": (0.2, _real(0, 1, low_open=True, high_open=True)),
    "loss": ("mse", _choice("mse", "logistic")),
    "optimizer": ("adam", _choice(*train.OPTIMIZERS)),
    "learning_rate": (1e-3, _real(0, math.inf, low_open=True, high_open=True)),
    "steps": (2000, _int(1)),
    "log_every": (100, _int(1)),
    "batch_size": (0, _int(0)),
    "stop_loss": (0.0, _real(0, math.inf, high_open=True)),
    "eps": (0.1, _real(0, 1, low_open=True, high_open=True)),
    "delta": (0.01, _real(0, 1, low_open=True, high_open=True)),
    "lip_exact_max_hidden": (12, _int(0)),
    "lip_search_starts": (64, _int(1)),
    "upper_method": ("best", _registered(lipschitz.upper_methods)),
    "lower_method": ("search", _registered(lambda: list(lipschitz.LOWER_METHODS))),
    "param_box": (0.0, _box),
    "info": ("ceiling", _choice("ceiling", "estimate")),
    "info_datasets": (64, _int(2)),
    "seed": (0, _int(0)),
}

# The keys that fix compiled shapes and the static training configuration: runs agreeing on them form a group
# that compiles once and trains in one batched call.
SHAPE_KEYS = ("d", "n", "width", "depth", "activation", "loss", "optimizer", "steps", "log_every", "batch_size", "stop_loss")


# Grid keys renamed since an older version: old name -> new name. A grid may still use the old name (with a
# warning); hashes use the old name, so folders written before the rename resume without recomputing.
RENAMED_KEYS = {"lip_upper": "upper_method"}
_HASH_NAMES = {new: old for old, new in RENAMED_KEYS.items()}

# Keys that say nothing about a dense run (density 1): a dense network is the same for every pruning method.
_DENSE_NORMALIZED = ("method", "imp_rate", "info", "info_datasets")


def validate(key: str, value):
    """Check one grid setting and return it in its key's type (an integer for a float key becomes a float)."""
    if key not in SCHEMA:
        raise ValueError(f"unknown grid key {key!r}; allowed keys: {', '.join(sorted(SCHEMA))}")
    default, check = SCHEMA[key]
    check(key, value)
    return float(value) if isinstance(default, float) else value


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


# Keys added after a folder format was in use: at their default they are left out of the hash, so the runs of
# folders written before them keep their hashes (and resume).
_LATER_KEYS = ("lower_method",)


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit hash of a full run configuration (sorted JSON, renamed keys under their old names,
    later keys only when they differ from their default)."""
    named = {_HASH_NAMES.get(k, k): v for k, v in config.items()
             if not (k in _LATER_KEYS and v == SCHEMA[k][0])}
    return hashlib.sha256(json.dumps(dict(sorted(named.items())), sort_keys=True).encode()).hexdigest()[:16]


def normalized(config: dict) -> dict:
    """The configuration a run really has: at density 1 the mask is dense whatever the method, so a dense run
    is the method ``dense`` with the method-only keys at their defaults (measured once, not once per method)."""
    if config["density"] == 1.0:
        return config | {k: SCHEMA[k][0] for k in _DENSE_NORMALIZED} | {"method": "dense"}
    return config


@dataclasses.dataclass(frozen=True)
class Run:
    config: dict
    hash: str

    @property
    def shape_key(self) -> tuple:
        return tuple(self.config[k] for k in SHAPE_KEYS)


@dataclasses.dataclass(frozen=True)
class Grid:
    """A sweep: the product of ``axes`` (key -> list of values) with ``fixed`` settings; other keys take defaults.

    Keys and their allowed values are in ``SCHEMA``; ``seeds=k`` is shorthand for the axis ``seed = [0..k-1]``.
    ``save_params=True`` keeps every run's trained parameters and mask (one compressed ``.npz`` per group under
    ``params/``); it does not change what a run computes, so it is not part of the configuration hash.
    ``from_toml`` reads ``[axes]`` and ``[fixed]`` tables and the optional top-level ``seeds`` and ``save_params``.
    Equal values of an axis are listed once, and runs at density 1 are the method ``dense`` (``normalized``).
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
            axes["seed"] = list(range(_checked_seeds(self.seeds)))
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
        """A 16-hex-digit hash of the runs the grid holds (not of how it is written)."""
        return hashlib.sha256(json.dumps(sorted(r.hash for r in self.runs())).encode()).hexdigest()[:16]

    def _configs(self, keys) -> Iterator[dict]:
        """The distinct normalized configurations over the axes in ``keys`` (the others at their first value),
        checked by the cross-key rules, in a deterministic order."""
        base = {k: default for k, (default, _) in SCHEMA.items()} | self.fixed
        base |= {k: v[0] for k, v in self.axes.items()}
        names = sorted(k for k in self.axes if k in keys)
        seen = set()
        for values in itertools.product(*(self.axes[k] for k in names)):
            config = normalized(base | dict(zip(names, values)))
            _check_run(config)
            h = config_hash(config)
            if h not in seen:
                seen.add(h)
                yield config

    def runs(self) -> list[Run]:
        """Every run of the grid, in a deterministic order; equal configurations are listed once."""
        return [Run(c, config_hash(c)) for c in self._configs(self.axes)]

    def groups(self) -> list[list[Run]]:
        """Runs grouped by ``SHAPE_KEYS``, groups in first-appearance order."""
        groups: dict[tuple, list[Run]] = {}
        for run in self.runs():
            groups.setdefault(run.shape_key, []).append(run)
        return list(groups.values())

    def outline(self, keys) -> tuple[list[dict], int]:
        """(the distinct configurations over the axes in ``keys``, the number of runs each stands for), without
        listing the runs: every other axis multiplies each configuration by its length. Exact as long as
        ``keys`` holds the keys that ``normalized`` and the cross-key rules read (``PLAN_KEYS`` and more)."""
        missing = set(PLAN_KEYS) - set(keys)
        if missing:
            raise ValueError(f"outline keys must include {sorted(missing)}")
        multiplicity = math.prod(len(v) for k, v in self.axes.items() if k not in keys)
        return list(self._configs(keys)), multiplicity


# The keys normalization and the cross-key rules read: a grid's outline over them counts its runs exactly.
PLAN_KEYS = ("density", *_DENSE_NORMALIZED, "noise", "target", "amplitude", "steps", "log_every", "measure",
             "intrinsic_dim", "d", "loss")


def model_of(config: Mapping[str, Any]) -> nets.MLP:
    """The run's network: d -> width x depth -> 1 with its activation."""
    return nets.MLP((config["d"], *([config["width"]] * config["depth"]), 1), activation=config["activation"])


def _checked_seeds(seeds) -> int:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")
    return seeds


def _check_run(config: dict) -> None:
    """Cross-key rules that a single key's validator cannot see."""
    if config["noise"] == "flip" and config["target"] == "zero":
        raise ValueError("grid: noise='flip' needs a target other than 'zero'")
    if config["noise"] != "gaussian" and config["amplitude"] > 1:
        raise ValueError(f"grid key 'amplitude' must be in (0, 1] for bounded noise, got {config['amplitude']}")
    if config["steps"] % config["log_every"]:
        raise ValueError(f"grid key 'log_every' ({config['log_every']}) must divide 'steps' ({config['steps']})")
    if config["method"] == "dense" and config["density"] != 1.0:
        raise ValueError("grid: method='dense' needs density=1.0")
    if config["method"] == "imp" and config["density"] < 1 and imp_schedule(config["density"], config["imp_rate"])[0] == 0:
        raise ValueError(f"grid: method='imp' at density {config['density']:g} needs imp_rate <= 1 - density (at least "
                         f"one full round), got imp_rate = {config['imp_rate']:g}; use method='mag_after' for one-shot "
                         "pruning after training")
    if config["measure"] == "embedded_sphere" and config["intrinsic_dim"] >= config["d"]:
        raise ValueError("grid key 'intrinsic_dim' must be < d for measure='embedded_sphere'")
    if config["loss"] == "logistic" and config["noise"] not in ("rademacher", "flip"):
        raise ValueError("grid: loss='logistic' needs +-1 labels (noise 'rademacher' with amplitude 1, or 'flip')")
