"""The configuration of one sweep run: a typed, validated, frozen ``RunConfig``, its hash and its PRNG keys.

``SCHEMA`` (key -> (default, validator)) is derived from ``RunConfig``'s fields, so a grid, a run and a results
table agree on the keys, their defaults and their types. The allowed pruning methods and Lipschitz methods are
read from their registries (``prune.METHODS``, ``lipschitz.UPPER_METHODS``, ``lipschitz.LOWER_METHODS``) when a
value is checked, so a method registered after import is accepted.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax

from lawrob import _checks, data, lipschitz, nets, prune, schedules, train

__all__ = ["RENAMED_KEYS", "SCHEMA", "SHAPE_KEYS", "Run", "RunConfig", "RunKeys", "config_hash", "run_keys", "validate"]


def _int(minimum: int) -> Callable:
    return lambda key, v: _checks.positive_int(f"grid key {key!r}", v, minimum)


def _real(low: float, high: float, **open_ends) -> Callable:
    return lambda key, v: _checks.real_in(f"grid key {key!r}", v, low, high, **open_ends)


def _one_of(names: Callable[[], Any]) -> Callable:
    """A validator reading its allowed names when called (registries may grow after import)."""
    return lambda key, v: _checks.one_of(f"grid key {key!r}", v, list(names()))


def _box(key: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v == 0 or 1 <= v < math.inf):
        raise ValueError(f"grid key {key!r} must be 0 (the box of the trained weights) or a number >= 1, got {v!r}")
    return float(v)


_POSITIVE = _real(0, math.inf, low_open=True, high_open=True)
_PROBABILITY = _real(0, 1, low_open=True, high_open=True)


def _key(default, check: Callable):
    return dataclasses.field(default=default, metadata={"check": check})


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every setting of one run (data, network, pruning, training, measurement, seed); see the README's grid
    key table. ``schedule`` (one of ``lawrob.schedules.SCHEDULES``), ``schedule_warmup`` (updates of linear
    warm-up) and ``schedule_end`` (the learning-rate factor at the last update) give ``train``'s schedule
    (``schedules.Schedule``). ``objective``: "fit" (train as configured) or "robust" (then search for the most robust network
    that fits: ``robust.frontier`` with ``robust_trials`` bisection steps over a factor ``robust_spread``, from each of
    ``robust_restarts`` initializations, keeping the one with the smallest certified upper bound; ``sweep.frontier``). Build it with ``RunConfig.from_mapping`` (each value checked by its key's validator, then the
    cross-key rules); a directly constructed one is checked by the cross-key rules only.

    Parameters
    ----------
    measure : str
        The input distribution, a key of ``data.MEASURES``.
    intrinsic_dim : int
        The embedded sphere's dimension.
    d : int
        The input dimension.
    n : int
        The number of samples.
    target : str
        The labels' target (``data.make_dataset``).
    noise : str
        The noise model.
    amplitude : float
        The noise amplitude.
    flip : float
        The flip probability.
    width : int
        The hidden width.
    depth : int
        The number of hidden layers.
    activation : str
        The activation.
    method : str
        The pruning method.
    density : float
        The fraction of weights kept.
    imp_rate : float
        IMP's pruning rate per round.
    loss : str
        The training loss.
    optimizer : str
        The optimizer's name.
    learning_rate : float
        The step size.
    schedule : str
        The learning-rate schedule.
    schedule_warmup : int
        Updates of linear warm-up.
    schedule_end : float
        The schedule's last factor.
    steps : int
        Training steps.
    log_every : int
        Steps between logged metrics.
    batch_size : int
        The minibatch size (0: full batch).
    stop_loss : float
        Stop at a logged loss at most this (0: never).
    eps : float
        The margin below the noise level.
    delta : float
        The bounds' failure probability.
    lip_exact_max_hidden : int
        The most hidden units for ``lip_exact``.
    lip_search_starts : int
        The lower-bound search's starts.
    upper_method : str
        The upper-bound method.
    lower_method : str
        The lower-bound method.
    param_box : float
        The parameter box of (W, J) (0: read off the trained weights).
    info : str
        How I(m; D) is bounded ("ceiling" or "estimate").
    info_datasets : int
        Data sets of the information estimate.
    seed : int
        The run's seed.
    objective : str
        "fit" or "robust".
    robust_trials : int
        Bisection steps of the robust search.
    robust_spread : float
        The factor the robust search spans.
    robust_restarts : int
        Initializations the robust search starts from.

    Raises
    ------
    ValueError
        If a cross-key rule fails.
    """

    measure: str = _key("gaussian", _one_of(lambda: data.MEASURES))
    intrinsic_dim: int = _key(2, _int(1))
    d: int = _key(8, _int(1))
    n: int = _key(64, _int(1))
    target: str = _key("zero", _one_of(lambda: data.TARGETS))
    noise: str = _key("rademacher", _one_of(lambda: data.NOISES))
    amplitude: float = _key(1.0, _POSITIVE)
    flip: float = _key(0.1, _real(0, 0.5))
    width: int = _key(64, _int(1))
    depth: int = _key(2, _int(1))
    activation: str = _key("relu", _one_of(lambda: nets.ACTIVATIONS))
    method: str = _key("random", _one_of(lambda: prune.METHODS))
    density: float = _key(1.0, _real(0, 1, low_open=True))
    imp_rate: float = _key(0.2, _PROBABILITY)
    loss: str = _key("mse", _one_of(lambda: ("mse", "logistic")))
    optimizer: str = _key("adam", _one_of(lambda: train.OPTIMIZERS))
    learning_rate: float = _key(1e-3, _POSITIVE)
    schedule: str = _key("constant", _one_of(lambda: schedules.SCHEDULES))
    schedule_warmup: int = _key(0, _int(0))
    schedule_end: float = _key(0.0, _real(0, 1))
    steps: int = _key(2000, _int(1))
    log_every: int = _key(100, _int(1))
    batch_size: int = _key(0, _int(0))
    stop_loss: float = _key(0.0, _real(0, math.inf, high_open=True))
    eps: float = _key(0.1, _PROBABILITY)
    delta: float = _key(0.01, _PROBABILITY)
    lip_exact_max_hidden: int = _key(12, _int(0))
    lip_search_starts: int = _key(64, _int(1))
    upper_method: str = _key("best", _one_of(lipschitz.upper_methods))
    lower_method: str = _key("search", _one_of(lambda: lipschitz.LOWER_METHODS))
    param_box: float = _key(0.0, _box)
    info: str = _key("ceiling", _one_of(lambda: ("ceiling", "estimate")))
    info_datasets: int = _key(64, _int(2))
    seed: int = _key(0, _int(0))
    objective: str = _key("fit", _one_of(lambda: OBJECTIVES))
    robust_trials: int = _key(8, _int(1))
    robust_spread: float = _key(1000.0, _real(1, math.inf, low_open=True, high_open=True))
    robust_restarts: int = _key(1, _int(1))

    def __post_init__(self):
        _check_cross_keys(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RunConfig:
        """A run configuration from key -> value (missing keys take their defaults), every value validated."""
        return cls(**{key: validate(key, value) for key, value in values.items()})

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SCHEMA}

    def normalized(self) -> RunConfig:
        """The configuration the run really has: at density 1 the mask is dense whatever the method, so a dense
        run is the method ``dense`` with the method-only keys at their defaults (measured once, not per method)."""
        if self.density == 1.0:
            return dataclasses.replace(self, **({k: SCHEMA[k][0] for k in DENSE_NORMALIZED} | {"method": "dense"}))
        return self

    @property
    def hash(self) -> str:
        return config_hash(self.as_dict())

    @property
    def shape_key(self) -> tuple:
        return tuple(getattr(self, k) for k in SHAPE_KEYS)


# key -> (default, validator), in RunConfig's field order. Every run carries every key, so its hash names its
# full configuration.
SCHEMA: dict[str, tuple[Any, Callable]] = {f.name: (f.default, f.metadata["check"]) for f in dataclasses.fields(RunConfig)}

# The keys that fix compiled shapes and the static training configuration: runs agreeing on them form a group
# that compiles once and trains in one batched call.
SHAPE_KEYS = ("d", "n", "width", "depth", "activation", "loss", "optimizer", "steps", "log_every", "batch_size", "stop_loss",
              "schedule", "schedule_warmup", "schedule_end")

# Keys that say nothing about a dense run (density 1): a dense network is the same for every pruning method.
DENSE_NORMALIZED = ("method", "imp_rate", "info", "info_datasets")

# Grid keys renamed since an older version: old name -> new name. A grid may still use the old name (with a
# warning); hashes use the old name, so folders written before the rename resume without recomputing.
RENAMED_KEYS = {"lip_upper": "upper_method"}
_HASH_NAMES = {new: old for old, new in RENAMED_KEYS.items()}

# Keys added after a folder format was in use: at their default they are left out of the hash, so the runs of
# folders written before them keep their hashes (and resume).
_LATER_KEYS = ("lower_method", "objective", "robust_trials", "robust_spread", "schedule", "schedule_warmup",
               "schedule_end", "robust_restarts")

# What a run's training looks for: a plain fit, or the most robust network that fits (``lawrob.robust``).
OBJECTIVES: tuple[str, ...] = ("fit", "robust")


def validate(key: str, value: Any) -> Any:
    """Check one grid setting and return it in its key's type (an integral number for an integer key becomes an
    int, an integer for a float key a float). Raises ValueError naming the key and what is allowed.

    Parameters
    ----------
    key : str
        A key of ``SCHEMA``.
    value : Any
        Its value.

    Returns
    -------
    Any
        The value in the key's type.

    Raises
    ------
    ValueError
        Naming the key and what is allowed.
    """
    if key not in SCHEMA:
        raise ValueError(f"unknown grid key {key!r}; allowed keys: {', '.join(sorted(SCHEMA))}")
    default, check = SCHEMA[key]
    try:
        checked = check(key, value)
    except TypeError as error:  # a grid value of the wrong type is a bad value of the key
        raise ValueError(str(error)) from None
    return float(checked) if isinstance(default, float) else checked


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit hash of a full run configuration (sorted JSON, renamed keys under their old names,
    later keys only when they differ from their default).

    Parameters
    ----------
    config : Mapping
        A full run configuration.

    Returns
    -------
    str
        16 hex digits.
    """
    named = {_HASH_NAMES.get(k, k): v for k, v in config.items() if not (k in _LATER_KEYS and v == SCHEMA[k][0])}
    return hashlib.sha256(json.dumps(dict(sorted(named.items())), sort_keys=True).encode()).hexdigest()[:16]


def _check_cross_keys(config: RunConfig) -> None:
    """Rules that a single key's validator cannot see."""
    if config.noise == "flip" and config.target == "zero":
        raise ValueError("grid: noise='flip' needs a target other than 'zero'")
    if config.noise != "gaussian" and config.amplitude > 1:
        raise ValueError(f"grid key 'amplitude' must be in (0, 1] for bounded noise, got {config.amplitude}")
    if config.steps % config.log_every:
        raise ValueError(f"grid key 'log_every' ({config.log_every}) must divide 'steps' ({config.steps})")
    if config.schedule_warmup >= config.steps:
        raise ValueError(f"grid key 'schedule_warmup' ({config.schedule_warmup}) must be < 'steps' ({config.steps})")
    if config.schedule == "exponential" and config.schedule_end == 0:
        raise ValueError("grid key 'schedule_end' must be > 0 for schedule = 'exponential' (the factor reached at the "
                         "last step; a geometric decay never reaches 0)")
    if config.method == "dense" and config.density != 1.0:
        raise ValueError("grid: method='dense' needs density=1.0")
    if config.method == "imp" and config.density < 1 and prune.imp_schedule(config.density, config.imp_rate)[0] == 0:
        raise ValueError(f"grid: method='imp' at density {config.density:g} needs imp_rate <= 1 - density (at least "
                         f"one full round), got imp_rate = {config.imp_rate:g}; use method='mag_after' for one-shot "
                         "pruning after training")
    if config.measure == "embedded_sphere" and config.intrinsic_dim >= config.d:
        raise ValueError("grid key 'intrinsic_dim' must be < d for measure='embedded_sphere'")
    if config.robust_restarts > 1 and config.objective != "robust":
        raise ValueError(f"grid key 'robust_restarts' ({config.robust_restarts}) needs objective = 'robust' (the "
                         "restarts of the frontier search); a plain fit has no restarts")
    if config.lower_method == "pattern" and config.activation not in ("relu", "leaky_relu"):
        raise ValueError(f"grid: lower_method='pattern' needs activation 'relu' or 'leaky_relu' (pattern ascent "
                         f"climbs over linear regions), got {config.activation!r}")
    if config.loss == "logistic" and config.noise not in ("rademacher", "flip"):
        raise ValueError("grid: loss='logistic' needs +-1 labels (noise 'rademacher' with amplitude 1, or 'flip')")


class RunKeys(NamedTuple):
    """A run's PRNG keys, one per stage, all derived from its seed.

    Parameters
    ----------
    data : jax.Array
        The data's key.
    init : jax.Array
        The initialization's key.
    mask : jax.Array
        The pruning's key.
    train : jax.Array
        The training's key.
    lipschitz : jax.Array
        The Lipschitz search's key.
    info : jax.Array
        The information estimate's key.
    """

    data: jax.Array
    init: jax.Array
    mask: jax.Array
    train: jax.Array
    lipschitz: jax.Array
    info: jax.Array


def run_keys(seed: int) -> RunKeys:
    """Keys derived from the seed alone (fold_in of the stage's index), so runs that differ only in method or
    density share their data and initialization.

    Parameters
    ----------
    seed : int
        The run's seed.

    Returns
    -------
    RunKeys
        One key per stage.
    """
    base = jax.random.key(seed)
    return RunKeys(*(jax.random.fold_in(base, i) for i in range(len(RunKeys._fields))))


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a grid: its configuration and the configuration's hash (its row's ``config_hash``).

    Parameters
    ----------
    config : RunConfig
        The run's settings.
    hash : str
        ``config_hash`` of them.
    """

    config: RunConfig
    hash: str

    @functools.cached_property
    def keys(self) -> RunKeys:
        return run_keys(self.config.seed)

    @property
    def shape_key(self) -> tuple:
        return self.config.shape_key
