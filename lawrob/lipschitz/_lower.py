"""Certified lower bounds on the l2 Lipschitz constant: the Jacobian norm at a point, maximised by a search.

Any point x where f is differentiable gives Lip(f) >= ||J_f(x)||_2; for a piecewise-linear network the point
must lie strictly inside a linear region (``certify`` proves it in float64). The search proposes candidates and
scores every one on the true (masked) network, so it can only improve a certified value:

1. multi-scale random points, radii log-uniform in [1e-2, 1e4] x the data scale (steep regions of sparse nets
   can be long thin slabs far from the data, or cells 1e-3 across);
2. hyperplane probes: points at tiny signed offsets from the intersection of a random subset of first-layer
   hyperplanes (a vertex of the arrangement when the subset has d of them), so every cell touching that
   intersection gets a probe, half of them moved far out along the intersection (along unit boundaries);
3. secant segments (off by default, ``segments=0``: on six trained networks it changed the bound by -15 % to
   +6.8 %, within the search's run-to-run spread, and cost compile time; benchmarks/RESULTS.md): among random
   pairs of given points and best points so far, the steepest secants ||f(a) - f(b)|| / ||a - b||; by the mean
   value theorem some region crossed by [a, b] has ||J|| at least that slope, so points spread along those
   segments find one;
4. smoothed ascent: a ReLU network's gradient is piecewise constant, so ascent on ||J(x)|| never moves. It
   climbs log ||J_tau(x)||^2 instead, where relu(z) is replaced by tau softplus(z / tau) with the temperature
   tau annealed geometrically from the start's distance scale r = |x_0| + scale down to 1e-4 r (leaky ReLU
   likewise; smooth activations are used as they are), by normalised steps of length tau / 2, from half the
   best points so far and half fresh random points; every iterate is scored on the true network;
5. region walking: around the best points so far, the same probes against the *local* hyperplanes of all
   hidden units (each unit's pre-activation linearised at the point), which crosses into neighbouring regions
   and reaches vertices of deeper layers.
6. pattern ascent (``method="pattern"`` only; ``_lower_pattern``): from the best candidates, ascent over the
   activation patterns themselves (the best slopes of one layer given the top singular pair of the Jacobian,
   layer by layer), then a linear program that finds a point whose region keeps the units that matter. Where a
   network's patterns are mostly realizable (inputs at least as many as the first layer's units, e.g. 784-input
   networks) this reaches what no search in input space finds: on a trained 784-256-256-1 network 67.46 against
   the search's 50.95, LipSDP 69.51 (benchmarks/RESULTS.md).
7. facet ascent (``method="pattern"`` only; ``_lower_facets``): from the best points so far, a walk over
   adjacent linear regions, each step across the facet of the region whose flipped unit raises ||J|| most
   (a linear program per flip tried decides whether that unit's hyperplane carries a facet), until no
   neighbour is steeper. Every step lands in a realized region, which is what pattern ascent lacks where few
   patterns have a region (16- and 64-input networks with wider hidden layers).
Everything is one jitted function of one network, batched over networks by ``lower_batch`` (``jax.lax.map``
over chunks of a ``vmap``). It runs in float64. Its memory is bounded by ``SearchConfig.memory_budget_bytes``:
every phase makes and scores its candidates in chunks (``_search_memory`` sizes them), candidate i drawing
from its own key, so the result does not depend on the budget, only the time does.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks, nets
from lawrob.lipschitz import _lower_facets, _lower_pattern
from lawrob.lipschitz._lower_search import SearchConfig, _arrays, _run, _run_batch
from lawrob.lipschitz._network import Bound, Net, batch_size, certify, check_domain, check_points, prepare, reduce


@dataclasses.dataclass(frozen=True)
class LowerMethod:
    """A lower-bound method of the registry ``LOWER_METHODS``. Every method proposes witness points and
    ``lower`` certifies the best of them on the exact masked network (``certify``), so any proposal gives a
    certified bound. ``candidates(net, key, points) -> [m, d]`` array of proposals (``points``: the given
    points or None); None for the built-in modes "search", "points" and "pattern", which run as one compiled
    search (``pattern`` then ascends over activation patterns from its best candidates, ``_lower_pattern``).

    Parameters
    ----------
    name : str
        The method's name.
    candidates : callable, optional
        (net, key, points) -> [m, d] proposals; None for the built-in modes.
    """

    name: str
    candidates: Callable | None = None


LOWER_METHODS: dict[str, LowerMethod] = {name: LowerMethod(name) for name in ("search", "points", "pattern")}


def register_lower(name: str, candidates: Callable, *, replace: bool = False) -> LowerMethod:
    """Add a lower-bound method: ``lower(..., method=name)`` certifies the best of ``candidates(net, key,
    points)`` (see ``LowerMethod``), and sweep grids accept it as ``lower_method``.

    Parameters
    ----------
    name : str
        The method's name, an identifier.
    candidates : callable
        (net, key, points) -> [m, d] proposals.
    replace : bool
        Allow replacing a registered method.

    Returns
    -------
    LowerMethod
        The registered method.

    Raises
    ------
    ValueError
        If ``name`` is not an identifier, is a built-in mode, or is taken and ``replace`` is False.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier-like string, got {name!r}")
    if name in LOWER_METHODS and not replace:
        raise ValueError(f"name {name!r} is already a lower-bound method; pass replace=True to overwrite it")
    if not callable(candidates):
        raise TypeError(f"candidates must be callable, got {type(candidates).__name__}")
    LOWER_METHODS[name] = LowerMethod(name, candidates)
    return LOWER_METHODS[name]


def _proposed(net: Net, setup) -> np.ndarray:
    """A registered method's candidate points, checked to be finite [m, d]."""
    # candidates is set for every registered method but "search" and "points", which never get here
    points = np.asarray(LOWER_METHODS[setup.method].candidates(net, setup.key, setup.points), dtype=float)  # type: ignore[misc, type-var]
    if points.ndim != 2 or points.shape[1] != net.d or not np.all(np.isfinite(points)):
        raise ValueError(f"method={setup.method!r}: its candidates must be a finite [m, {net.d}] array, got shape "
                         f"{points.shape}")
    return points


def lower(
    params: Any, mask: Any = None, *, key: jax.Array, model: nets.MLP | None = None, points: Any = None,
    method: str = "search", domain: Any = None, config: SearchConfig | None = None, **budget: Any,
) -> Bound:
    """A certified lower bound on the l2 Lipschitz constant, with its witness point.

    ``method``: "points" (the largest Jacobian norm over ``points``, e.g. the training inputs), "search" (the
    climbing search of this module, which also scores ``points`` when given and uses their scale), "pattern"
    (the search, then pattern and facet ascent from its best candidates: ReLU and leaky ReLU only; at least the
    search's value with the same key) or a registered method. ``model``: the ``nets.MLP`` (its activation; None
    means ReLU). ``domain``: None (R^d) or a box (low, high) that candidates are clipped to. ``config``: the search
    budget (``SearchConfig``); keywords named after its fields (``starts=64``, ``steps=...``) override single
    fields.

    ``value`` is recomputed in float64 on the masked network at ``witness`` and certified there (``certify``);
    if no candidate certifies (all on region boundaries), the bound is the trivial 0 with witness None.
    ``details``: evaluations (true Jacobian norms), smoothed_gradients, certified (of the top 16 candidates);
    for "pattern" also pattern_bound (the largest ||J(S)|| over the patterns S the ascent reached from the
    candidates and from the all-active pattern, realizable or not: not a bound on Lip(f), but a lower bound on
    every upper bound that holds for all activations slope-restricted like this one, e.g. LipSDP-Neuron),
    pattern_lps, pattern_points, facet_steps and facet_lps (facet ascent's steps and linear programs).
    Under ``jax.jit``/``jax.vmap`` (traced params, mask, key or points) the same bound is computed on the host
    and ``value``/``witness`` come back as arrays (``lawrob.lipschitz._traced``).

    Parameters
    ----------
    params : Any
        The parameters (a sequence of layer dicts).
    mask : Any, optional
        A 0/1 mask (None: dense).
    key : jax.Array
        A ``jax.random.key`` for the search.
    model : nets.MLP, optional
        The network (its activation).
    points : array_like, optional
        Points [n, d] to score (e.g. the training inputs).
    method : str
        "search", "points", "pattern" or a registered method.
    domain : tuple, optional
        A box (low, high), or None for R^d.
    config : SearchConfig, optional
        The search budget.
    **budget
        ``SearchConfig`` fields overriding ``config``'s.

    Returns
    -------
    Bound
        The certified lower bound (``kind="lower"``) with its witness.

    Raises
    ------
    ValueError
        If ``method`` is unknown, a budget field is invalid, the arguments do not fit together, or ``method`` is
        "pattern" and the activation is not piecewise linear.
    """
    if _checks.traced(params, mask, key, points):  # under jit/vmap: certified on the host (lipschitz._traced)
        from lawrob.lipschitz._traced import traced_lower

        return traced_lower(lower, params, mask, key=key, points=points, model=model, method=method, domain=domain,
                            config=config, **budget)
    start = time.perf_counter()
    net = prepare(params, mask, model)
    setup = _setup(net, key, points, method, domain, config, budget)
    if LOWER_METHODS[method].candidates is not None:
        return _certified_bound(net, _proposed(net, setup), setup, time.perf_counter() - start)
    with jax.enable_x64(True):
        candidates, _ = _run(net.activation, setup.config.compiled, _compiled_mode(setup.method), _arrays(net),
                             setup.key, setup.points, setup.box)
    candidates, extra = _with_patterns(net, np.asarray(candidates), setup)
    return _certified_bound(net, candidates, setup, time.perf_counter() - start, extra)


def lower_batch(
    params: Any, mask: Any = None, *, key: jax.Array, model: nets.MLP | None = None, points: Any = None,
    method: str = "search", domain: Any = None, config: SearchConfig | None = None, chunk: int | None = 8,
    **budget: Any,
) -> list[Bound]:
    """``lower`` for B networks of one architecture at once: params (and mask) carry a leading axis of size B.

    ``points``: shared [n, d] or per network [B, n, d]. The search runs as one compiled call, ``jax.lax.map``
    over chunks of ``chunk`` networks with ``jax.vmap`` inside (None: one vmap over all). ``key``: one key (network
    b then uses ``jax.random.split(key, B)[b]``) or B stacked keys (network b uses ``key[b]``); either way the
    result for network b equals ``lower(..., key=<its key>)``. Each Bound's seconds is its share of the total.

    Parameters
    ----------
    params : Any
        Stacked parameters, leading axis B.
    mask : Any, optional
        Stacked masks (None: dense).
    key : jax.Array
        One key, or B stacked keys.
    model : nets.MLP, optional
        The network (its activation).
    points : array_like, optional
        Shared [n, d] or per-network [B, n, d] points.
    method : str
        As in ``lower``.
    domain : tuple, optional
        A box (low, high), or None for R^d.
    config : SearchConfig, optional
        The search budget.
    chunk : int, optional
        Networks per vmap (None: all).
    **budget
        ``SearchConfig`` fields overriding ``config``'s.

    Returns
    -------
    list of Bound
        One bound per network.

    Raises
    ------
    ValueError
        As ``lower``, or if the leading axes differ.
    """
    start = time.perf_counter()
    size = batch_size(params, mask)
    chunk = size if chunk is None else min(_checks.positive_int("chunk", chunk), size)
    key = _checks.prng_key("key", key, ndim=(0, 1))
    stacked = key.ndim == (1 if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else 2)
    if stacked and key.shape[0] != size:
        raise ValueError(f"key must be one key or B = {size} stacked keys, got {key.shape[0]} keys")
    keys = key if stacked else jax.random.split(key, size)
    per_network = points is not None and np.ndim(points) == 3
    if per_network and np.shape(points)[0] != size:
        raise ValueError(f"points must be [n, d] or [B, n, d] with B = {size}, got shape {np.shape(points)}")
    networks, setups = [], []
    for b in range(size):
        one = jax.tree.map(lambda leaf: leaf[b], params)
        one_mask = None if mask is None else jax.tree.map(lambda leaf: leaf[b], mask)
        networks.append(prepare(one, one_mask, model))
        setups.append(_setup(networks[b], keys[b], points[b] if per_network else points, method, domain, config,
                             budget))
    first = setups[0]
    shared_cfg = dataclasses.replace(first.config.compiled,
                                     memory_budget_bytes=max(1, first.config.memory_budget_bytes // chunk))
    if LOWER_METHODS[method].candidates is not None:
        share = (time.perf_counter() - start) / size
        return [_certified_bound(net, _proposed(net, setup), setup, share) for net, setup in zip(networks, setups)]
    with jax.enable_x64(True):
        arrays = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[_arrays(net) for net in networks])
        batch_points = first.points if not per_network else jnp.stack([s.points for s in setups])  # type: ignore[misc]  # per_network: every setup has points
        candidates, _ = _run_batch(networks[0].activation, shared_cfg, _compiled_mode(first.method), first.box, chunk,
                                   arrays, keys, batch_points)
    found = [_with_patterns(net, np.asarray(candidates[b]), setups[b]) for b, net in enumerate(networks)]
    share = (time.perf_counter() - start) / size
    return [_certified_bound(net, points, setups[b], share, extra) for b, (net, (points, extra))
            in enumerate(zip(networks, found))]


@dataclasses.dataclass(frozen=True)
class _Setup:
    method: str
    config: SearchConfig
    key: jax.Array
    points: jax.Array | None
    box: tuple[tuple[float, ...], tuple[float, ...]] | None


def _setup(net: Net, key, points, method: str, domain, config, budget: dict) -> _Setup:
    _checks.one_of("method", method, LOWER_METHODS)
    if method == "pattern" and (not net.piecewise_linear or net.slopes[0] == 1.0):
        raise ValueError(f"method='pattern' needs a piecewise-linear activation (relu, leaky_relu), got "
                         f"{net.activation!r}")
    _checks.prng_key("key", key)
    if config is None:
        config = SearchConfig()
    elif not isinstance(config, SearchConfig):
        raise TypeError(f"config must be a SearchConfig or None, got {type(config).__name__}")
    unknown = set(budget) - {field.name for field in dataclasses.fields(SearchConfig)}
    if unknown:
        raise TypeError(f"unexpected keyword(s) {sorted(unknown)}: the budget keywords are SearchConfig's fields")
    config = dataclasses.replace(config, **budget)
    box: Any  # the checked domain, then the float tuples _Setup stores
    box = check_domain(domain, net.d)
    if points is not None:
        points = check_points(points, net.d)
        if box is not None and not np.all((points >= box[0]) & (points <= box[1])):
            raise ValueError("points must lie inside domain")
    elif method == "points":
        raise ValueError("method='points' needs points (the inputs to evaluate the Jacobian at)")
    with jax.enable_x64(True):
        points = None if points is None else jnp.asarray(points, jnp.float64)
    box = None if box is None else (tuple(map(float, box[0])), tuple(map(float, box[1])))
    return _Setup(method, config, key, points, box)


def _compiled_mode(method: str) -> str:
    """The compiled search's mode for a built-in method ("pattern" starts from the search's candidates)."""
    return "search" if method == "pattern" else method


def _with_patterns(net: Net, candidates: np.ndarray, setup: _Setup) -> tuple[np.ndarray, dict]:
    """For method "pattern": the search's candidates and the points pattern ascent realizes from them."""
    if setup.method != "pattern":
        return candidates, {}
    reduced = reduce(net)
    if min(reduced.widths, default=1) == 0:  # a constant network: no pattern to ascend
        return candidates, {"pattern_bound": 0.0, "pattern_lps": 0, "pattern_points": 0, "facet_steps": 0,
                            "facet_lps": 0}
    points, extra = _lower_pattern.candidates(reduced, candidates, setup.config.patterns, setup.box)
    if setup.box is not None:
        points = np.clip(points, *setup.box)
    proposed = np.concatenate([candidates, points])
    walked, facets = _lower_facets.candidates(reduced, proposed, setup.config.facet_programs, setup.box)
    return np.concatenate([proposed, walked]), {**extra, **facets, "pattern_points": len(points) + len(walked)}


def _certified_bound(net: Net, candidates: np.ndarray, setup: _Setup, seconds: float, extra=None) -> Bound:
    """The best candidate that certifies on the network without its dead units (the same function, fewer kinks).
    ``extra``: more details (pattern ascent's)."""
    reduced = reduce(net)
    results = [(certify(reduced, x), x) for x in candidates]
    certified = [(value, x) for (value, ok), x in results if ok]
    cfg = setup.config
    evaluations = (0 if setup.points is None else setup.points.shape[0])
    if setup.method in ("search", "pattern"):
        evaluations += cfg.evaluations + (extra or {}).get("pattern_points", 0)
    elif LOWER_METHODS[setup.method].candidates is not None:
        evaluations = len(candidates)
    details = {"evaluations": evaluations, "smoothed_gradients": cfg.smoothed_gradients
               if setup.method in ("search", "pattern") else 0, "certified": len(certified), "candidates": len(results),
               **(extra or {})}
    if not certified:
        return Bound(0.0, "lower", setup.method, seconds=seconds, witness=None, details=details)
    value, x = max(certified, key=lambda item: item[0])
    return Bound(value, "lower", setup.method, seconds=seconds, witness=np.array(x), details=details)
