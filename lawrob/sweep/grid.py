"""Sweep grids: validated axes and fixed settings, expanded into runs keyed by a configuration hash."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lawrob import data, nets, train


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


PRUNING_METHODS = ("dense", "random", "magnitude", "snip", "grasp", "synflow", "imp", "mag_after")
DATA_FREE_METHODS = ("dense", "random", "magnitude", "synflow")  # the mask does not depend on the data

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
    "method": ("random", _choice(*PRUNING_METHODS)),
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
    "lip_upper": ("best", _choice("best", "product", "eclipse_fast", "lipsdp")),
    "param_box": (0.0, _box),
    "info": ("ceiling", _choice("ceiling", "estimate")),
    "info_datasets": (64, _int(2)),
    "seed": (0, _int(0)),
}

# The keys that fix compiled shapes and the static training configuration: runs agreeing on them form a group
# that compiles once and trains in one batched call.
SHAPE_KEYS = ("d", "n", "width", "depth", "activation", "loss", "optimizer", "steps", "log_every", "batch_size", "stop_loss")


def validate(key: str, value) -> None:
    if key not in SCHEMA:
        raise ValueError(f"unknown grid key {key!r}; allowed keys: {', '.join(sorted(SCHEMA))}")
    SCHEMA[key][1](key, value)


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit hash of a full run configuration (sorted JSON)."""
    return hashlib.sha256(json.dumps(dict(sorted(config.items())), sort_keys=True).encode()).hexdigest()[:16]


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
    ``from_toml`` reads ``[axes]`` and ``[fixed]`` tables (and an optional top-level ``seeds``).
    """

    axes: Mapping[str, list] = dataclasses.field(default_factory=dict)
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seeds: int | None = None

    def __post_init__(self):
        axes = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in dict(self.axes).items()}
        if self.seeds is not None:
            if "seed" in axes or "seed" in self.fixed:
                raise ValueError("give either seeds=k or a 'seed' axis/setting, not both")
            axes["seed"] = list(range(_checked_seeds(self.seeds)))
        for key, values in axes.items():
            if not values:
                raise ValueError(f"grid axis {key!r} has no values")
            for v in values:
                validate(key, v)
        for key, v in dict(self.fixed).items():
            validate(key, v)
            if key in axes:
                raise ValueError(f"grid key {key!r} is both an axis and a fixed setting")
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "fixed", dict(self.fixed))

    @classmethod
    def from_toml(cls, path: str | Path) -> "Grid":
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        unknown = set(doc) - {"axes", "fixed", "seeds"}
        if unknown:
            raise ValueError(f"unknown top-level table(s) {sorted(unknown)} in {path}; allowed: axes, fixed, seeds")
        return cls(axes=doc.get("axes", {}), fixed=doc.get("fixed", {}), seeds=doc.get("seeds"))

    def runs(self) -> list[Run]:
        """Every run of the grid, in a deterministic order; equal configurations are listed once."""
        base = {k: default for k, (default, _) in SCHEMA.items()} | self.fixed
        keys = sorted(self.axes)
        runs, seen = [], set()
        for values in itertools.product(*(self.axes[k] for k in keys)):
            config = base | dict(zip(keys, values))
            _check_run(config)
            h = config_hash(config)
            if h not in seen:
                seen.add(h)
                runs.append(Run(config, h))
        return runs

    def groups(self) -> list[list[Run]]:
        """Runs grouped by ``SHAPE_KEYS``, groups in first-appearance order."""
        groups: dict[tuple, list[Run]] = {}
        for run in self.runs():
            groups.setdefault(run.shape_key, []).append(run)
        return list(groups.values())


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
    if config["measure"] == "embedded_sphere" and config["intrinsic_dim"] >= config["d"]:
        raise ValueError("grid key 'intrinsic_dim' must be < d for measure='embedded_sphere'")
    if config["loss"] == "logistic" and config["noise"] not in ("rademacher", "flip"):
        raise ValueError("grid: loss='logistic' needs +-1 labels (noise 'rademacher' with amplitude 1, or 'flip')")
