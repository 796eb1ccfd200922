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
Everything is one jitted function of one network, batched over networks by ``lower_batch`` (``jax.lax.map``
over chunks of a ``vmap``). It runs in float64. Its memory is bounded by ``SearchConfig.memory_budget_bytes``:
every phase makes and scores its candidates in chunks (``_search_memory`` sizes them), candidate i drawing
from its own key, so the result does not depend on the budget, only the time does.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _batching, _checks, nets
from lawrob.lipschitz._network import Bound, Net, batch_size, certify, check_domain, check_points, prepare, reduce
from lawrob.lipschitz import _search_memory
from lawrob.lipschitz._search_net import _fast_key, _JaxNet, map_padded, stream_top



@dataclasses.dataclass(frozen=True)
class LowerMethod:
    """A lower-bound method of the registry ``LOWER_METHODS``. Every method proposes witness points and
    ``lower`` certifies the best of them on the exact masked network (``certify``), so any proposal gives a
    certified bound. ``candidates(net, key, points) -> [m, d]`` array of proposals (``points``: the given
    points or None); None for the built-in modes "search" and "points", which run as one compiled search.

    Parameters
    ----------
    name : str
        The method's name.
    candidates : callable, optional
        (net, key, points) -> [m, d] proposals; None for the built-in modes.
    """

    name: str
    candidates: Callable | None = None


LOWER_METHODS: dict[str, LowerMethod] = {"search": LowerMethod("search"), "points": LowerMethod("points")}


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
_KEEP = 16  # best candidates certified in float64


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Budget of the search (static under jit). Counts are per network.

    samples: multi-scale random points; probes: first-layer hyperplane probes; segments, segment_points: points
    spread along the steepest secants between given and best points; starts and steps: smoothed ascent;
    rounds, walkers, local_probes: region walking (probes around the ``walkers`` best distinct points,
    ``rounds`` times). radius_min, radius_max: range of radii of random points and far moves, in data scales.
    memory_budget_bytes: the most temporary memory the compiled search may take (besides the weights and the
    given points); every phase makes and scores its candidates in chunks sized to it (``_search_memory``),
    so any network whose weights fit runs, and the count of candidates only sets the time. Default 1 GiB;
    ``lower_batch`` gives each of the ``chunk`` networks it vmaps at once an equal share.

    Parameters
    ----------
    samples : int
        Multi-scale random points.
    probes : int
        First-layer hyperplane probes.
    segments : int
        Secants searched.
    segment_points : int
        Points per secant.
    starts : int
        Starts of the smoothed ascent.
    steps : int
        Steps of the smoothed ascent.
    rounds : int
        Rounds of region walking.
    walkers : int
        Points walked per round.
    local_probes : int
        Probes around each walker.
    radius_min : float
        The smallest radius of random points, in data scales.
    radius_max : float
        The largest radius of random points and far moves, in data scales.
    memory_budget_bytes : int
        The most temporary memory of the compiled search.
    """

    samples: int = 512
    probes: int = 4096
    segments: int = 0
    segment_points: int = 64
    starts: int = 32
    steps: int = 64
    rounds: int = 8
    walkers: int = 32
    local_probes: int = 512
    radius_min: float = 1e-2
    radius_max: float = 1e4
    memory_budget_bytes: int = 1 << 30

    def __post_init__(self):
        for name in ("samples", "probes", "segments", "segment_points", "starts", "steps", "rounds", "walkers",
                     "local_probes"):
            _checks.positive_int(name, getattr(self, name), minimum=0)
        _checks.positive_int("memory_budget_bytes", self.memory_budget_bytes)
        _checks.real_in("radius_min", self.radius_min, 0.0, math.inf, low_open=True, high_open=True)
        _checks.real_in("radius_max", self.radius_max, self.radius_min, math.inf, high_open=True)

    @property
    def evaluations(self) -> int:
        """True-network Jacobian evaluations (one per scored candidate; given points add theirs)."""
        return (self.samples + self.probes + self.segments * self.segment_points + self.starts * self.steps
                + self.rounds * self.walkers * self.local_probes)

    @property
    def smoothed_gradients(self) -> int:
        """Gradients of the smoothed objective (each a gradient of a Jacobian norm: second order)."""
        return self.starts * self.steps


def lower(
    params: Any, mask: Any = None, *, key: jax.Array, model: nets.MLP | None = None, points: Any = None,
    method: str = "search", domain: Any = None, config: SearchConfig | None = None, **budget: Any,
) -> Bound:
    """A certified lower bound on the l2 Lipschitz constant, with its witness point.

    ``method``: "points" (the largest Jacobian norm over ``points``, e.g. the training inputs) or "search" (the
    climbing search of this module, which also scores ``points`` when given and uses their scale). ``model``:
    the ``nets.MLP`` (its activation; None means ReLU). ``domain``: None (R^d) or a box (low, high) that
    candidates are clipped to. ``config``: the search budget (``SearchConfig``); keywords named after its
    fields (``starts=64``, ``steps=...``) override single fields.

    ``value`` is recomputed in float64 on the masked network at ``witness`` and certified there (``certify``);
    if no candidate certifies (all on region boundaries), the bound is the trivial 0 with witness None.
    ``details``: evaluations (true Jacobian norms), smoothed_gradients, certified (of the top 16 candidates).
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
        "search", "points" or a registered method.
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
        If ``method`` is unknown, a budget field is invalid, or the arguments do not fit together.
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
        candidates, _ = _run(net.activation, setup.config, setup.method, _arrays(net), setup.key, setup.points,
                             setup.box)
    return _certified_bound(net, np.asarray(candidates), setup, time.perf_counter() - start)


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
    shared_cfg = dataclasses.replace(first.config, memory_budget_bytes=max(1, first.config.memory_budget_bytes // chunk))
    if LOWER_METHODS[method].candidates is not None:
        share = (time.perf_counter() - start) / size
        return [_certified_bound(net, _proposed(net, setup), setup, share) for net, setup in zip(networks, setups)]
    with jax.enable_x64(True):
        arrays = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[_arrays(net) for net in networks])
        batch_points = first.points if not per_network else jnp.stack([s.points for s in setups])  # type: ignore[misc]  # per_network: every setup has points
        candidates, _ = _run_batch(networks[0].activation, shared_cfg, first.method, first.box, chunk, arrays,
                                   keys, batch_points)
    candidates = np.asarray(candidates)
    share = (time.perf_counter() - start) / size
    return [_certified_bound(net, candidates[b], setups[b], share) for b, net in enumerate(networks)]


@dataclasses.dataclass(frozen=True)
class _Setup:
    method: str
    config: SearchConfig
    key: jax.Array
    points: jax.Array | None
    box: tuple[tuple[float, ...], tuple[float, ...]] | None


def _setup(net: Net, key, points, method: str, domain, config, budget: dict) -> _Setup:
    _checks.one_of("method", method, LOWER_METHODS)
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


def _arrays(net: Net):
    return tuple(jnp.asarray(w, jnp.float64) for w in net.weights), tuple(jnp.asarray(b, jnp.float64) for b in net.biases)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _run_batch(activation: str, cfg: SearchConfig, method: str, box, chunk: int, arrays, keys, points):
    """``_run`` over a leading network axis: lax.map over chunks of ``chunk`` networks, vmap within a chunk.

    ``points``: None, shared [n, d] or per network [B, n, d]. Padded to whole chunks (one compiled body)."""
    args: tuple
    shared: tuple
    if points is None or points.ndim == 2:
        args, shared = (arrays, keys), (points,)
    else:
        args, shared = (arrays, keys, points), ()
    return _batching.map_chunked(lambda x, *p: _run(activation, cfg, method, *x, *p, box=box), args, shared=shared,
                                 chunk=chunk, whole_chunks=True)


def _certified_bound(net: Net, candidates: np.ndarray, setup: _Setup, seconds: float) -> Bound:
    """The best candidate that certifies on the network without its dead units (the same function, fewer kinks)."""
    reduced = reduce(net)
    results = [(certify(reduced, x), x) for x in candidates]
    certified = [(value, x) for (value, ok), x in results if ok]
    cfg = setup.config
    evaluations = (0 if setup.points is None else setup.points.shape[0])
    if setup.method == "search":
        evaluations += cfg.evaluations
    elif LOWER_METHODS[setup.method].candidates is not None:
        evaluations = len(candidates)
    details = {"evaluations": evaluations, "smoothed_gradients": cfg.smoothed_gradients if setup.method == "search"
               else 0, "certified": len(certified), "candidates": len(results)}
    if not certified:
        return Bound(0.0, "lower", setup.method, seconds=seconds, witness=None, details=details)
    value, x = max(certified, key=lambda item: item[0])
    return Bound(value, "lower", setup.method, seconds=seconds, witness=np.array(x), details=details)


# --- the search, one network, in JAX ------------------------------------------------------------------------


def shape_of(net: Net, points) -> _search_memory.Shape:
    """The memory model's view of a network (and the number of given points)."""
    return _search_memory.Shape(net.d, net.widths, net.out, 0 if points is None else int(np.shape(points)[0]))


def _keep(cfg: SearchConfig) -> int:
    return max(_KEEP, cfg.starts, cfg.walkers)


def peak_bytes(params: Any, mask: Any = None, *, model: nets.MLP | None = None, points: Any = None,
               config: SearchConfig | None = None, **budget: Any) -> int:
    """The memory model's estimate of the search's peak temporary bytes (XLA's temp allocation, besides the
    weights and points passed in) on this network; at most ``memory_budget_bytes`` by construction.

    Parameters
    ----------
    params : Any
        The parameters.
    mask : Any, optional
        A 0/1 mask (None: dense).
    model : nets.MLP, optional
        The network.
    points : array_like, optional
        The points ``lower`` would be given.
    config : SearchConfig, optional
        The search budget.
    **budget
        ``SearchConfig`` fields overriding ``config``'s.

    Returns
    -------
    int
        The estimated peak temporary bytes.
    """
    net = prepare(params, mask, model)
    cfg = dataclasses.replace(config or SearchConfig(), **budget)
    return _search_memory.peak_bytes(shape_of(net, points), cfg, _keep(cfg))


@functools.partial(jax.jit, static_argnums=(0, 1, 2), static_argnames=("box",))
def _run(activation: str, cfg: SearchConfig, method: str, arrays, key, points, box=None):
    """The ``_KEEP`` best candidates [K, d] and their true Jacobian norms [K] (float64).

    Every phase streams its candidates through ``stream_top`` in chunks chosen by ``_search_memory.chunks``
    for ``cfg.memory_budget_bytes``, so the count of candidates never sets the memory."""
    weights, biases = arrays
    net = _JaxNet(weights, biases, activation, box)
    widths = tuple(w.shape[1] for w in weights[:-1])
    shape = _search_memory.Shape(net.d, widths, net.out, 0 if points is None else points.shape[0])
    keep = _keep(cfg)
    chunks = _search_memory.chunks(shape, cfg, keep)
    pool = (jnp.zeros((keep, net.d)), jnp.full(keep, -jnp.inf))
    if points is not None:
        def given(keys, start):
            xs = jax.lax.dynamic_slice_in_dim(points, start, keys.shape[0])
            return xs, net.scores(xs)
        pool = stream_top(given, points.shape[0], chunks.score, pool, key)
        if method == "points":
            return pool[0][:_KEEP], pool[1][:_KEEP]
    scale = 1.0 if points is None else jnp.sqrt(jnp.mean(jnp.sum(points**2, axis=1))) + 1e-12
    if box is not None:
        scale = jnp.linalg.norm(jnp.asarray(box[1]) - jnp.asarray(box[0])) / 2
    keys = jax.random.split(_fast_key(key), 6)

    def sampled(k, _):
        xs = net.random_points(k, scale, cfg)
        return xs, net.scores(xs)

    pool = stream_top(sampled, cfg.samples, chunks.score, pool, keys[0])
    hidden = len(weights) > 1
    if hidden:
        planes = net.first_layer_planes()

        def probed(k, _):
            xs = net.probes(k, planes, scale, cfg)
            return xs, net.scores(xs)

        pool = stream_top(probed, cfg.probes, chunks.probe, pool, keys[1])
    if cfg.segments and cfg.segment_points:
        pool = _segments(net, cfg, chunks, pool, points, keys[2])
    if cfg.starts and cfg.steps:
        half = cfg.starts // 2
        fresh = net.random_points(jax.random.split(keys[3], cfg.starts - half), scale, cfg)
        starts = jnp.concatenate([pool[0][:half], fresh])
        climbed = map_padded(lambda x: net.climb(x, scale, cfg), starts, chunks.climb)
        pool = net.merge(pool, *climbed)

    def walk_round(pool, key_round):
        walkers = pool[0][: cfg.walkers]
        count, group = walkers.shape[0], chunks.walker
        n_groups = -(-count // group)
        walkers = jnp.concatenate([walkers, jnp.repeat(walkers[-1:], n_groups * group - count, axis=0)])

        def one_group(pool, g):
            # the local planes of ``group`` walkers, then their local probes streamed as one sequence
            planes = jax.vmap(lambda x: net.local_planes(x, scale))(jax.lax.dynamic_slice_in_dim(walkers, g * group,
                                                                                                 group))

            def local(keys, start):
                owner = (start + jnp.arange(keys.shape[0])) // cfg.local_probes
                xs = jax.vmap(lambda k, w: net.probes(k[None], jax.tree.map(lambda a: a[w], planes), scale,
                                                      cfg)[0])(keys, owner)
                return xs, jnp.where(g * group + owner < count, net.scores(xs), -jnp.inf)  # padded walkers

            return stream_top(local, group * cfg.local_probes, chunks.local, pool, key_round,
                              offset=g * group * cfg.local_probes), None

        pool, _ = jax.lax.scan(one_group, pool, jnp.arange(n_groups))
        return pool, None

    if hidden and cfg.rounds and cfg.walkers and cfg.local_probes:
        pool, _ = jax.lax.scan(walk_round, pool, jax.random.split(keys[4], cfg.rounds))
    return pool[0][:_KEEP], pool[1][:_KEEP]


def _segments(net: _JaxNet, cfg: SearchConfig, chunks, pool, points, key):
    """Points along the steepest secants (``_JaxNet.secant_segments``) between the given points and the pool's
    best points (the pool alone without given points), ``segment_points`` on each of ``segments``."""
    ends = pool[0] if points is None else jnp.concatenate([points, pool[0]])
    key_pairs, key_along = jax.random.split(key)
    segments = net.secant_segments(key_pairs, ends, cfg.segments, 8 * cfg.segments, chunks.score)
    per = cfg.segment_points

    def along(k, start):
        # candidate start + i lies on segment (start + i) // per; chunks may straddle segments
        index = start + jnp.arange(k.shape[0])
        seg = segments[index // per]
        t = ((index % per) + jax.vmap(jax.random.uniform)(k)) / per
        xs = net.clip(seg[:, 0] + t[:, None] * (seg[:, 1] - seg[:, 0]))
        return xs, net.scores(xs)

    return stream_top(along, segments.shape[0] * per, chunks.segment, pool, key_along)
