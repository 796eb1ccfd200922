"""The search of ``lower``, for one network in JAX: its budget ``SearchConfig``, its memory model
(``peak_bytes``) and the compiled ``_run`` of its phases (described in ``lawrob.lipschitz._lower``), batched
over networks by ``_run_batch``."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _batching, _checks, nets
from lawrob.lipschitz import _search_memory
from lawrob.lipschitz._network import Net, _Layers, prepare
from lawrob.lipschitz._search_net import _fast_key, _JaxNet, map_padded, stream_top

_KEEP = 16  # best candidates certified in float64


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Budget of the search (static under jit). Counts are per network.

    samples: multi-scale random points; probes: first-layer hyperplane probes; segments, segment_points: points
    spread along the steepest secants between given and best points; starts and steps: smoothed ascent;
    rounds, walkers, local_probes: region walking (probes around the ``walkers`` best distinct points,
    ``rounds`` times); patterns, facet_programs: method "pattern"'s linear programs (``_lower_pattern``,
    ``_lower_facets``). radius_min, radius_max: range of radii of random points and far moves, in data scales.
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
    patterns : int
        Method "pattern" only: the most distinct activation patterns realized (one linear program each).
    facet_programs : int, optional
        Method "pattern" only: the most linear programs of facet ascent (``_lower_facets``; 0: none). None
        (default): 256 while one program is small (hidden units x (d + 1) <= 2^17 entries, at most about
        0.1 s a program), else none (0.6 s a program for 768 units on 256 inputs, 10-400 s for 3072 on 784).
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
    patterns: int = 4
    facet_programs: int | None = None
    radius_min: float = 1e-2
    radius_max: float = 1e4
    memory_budget_bytes: int = 1 << 30

    def __post_init__(self):
        for name in ("samples", "probes", "segments", "segment_points", "starts", "steps", "rounds", "walkers",
                     "local_probes", "patterns"):
            _checks.positive_int(name, getattr(self, name), minimum=0)
        if self.facet_programs is not None:
            _checks.positive_int("facet_programs", self.facet_programs, minimum=0)
        _checks.positive_int("memory_budget_bytes", self.memory_budget_bytes)
        _checks.real_in("radius_min", self.radius_min, 0.0, math.inf, low_open=True, high_open=True)
        _checks.real_in("radius_max", self.radius_max, self.radius_min, math.inf, high_open=True)

    @property
    def compiled(self) -> SearchConfig:
        """This budget without the fields used on the host only (method "pattern"'s linear programs), so that
        changing those does not compile the search again."""
        return dataclasses.replace(self, patterns=0, facet_programs=None)

    @property
    def evaluations(self) -> int:
        """True-network Jacobian evaluations (one per scored candidate; given points add theirs)."""
        return (self.samples + self.probes + self.segments * self.segment_points + self.starts * self.steps
                + self.rounds * self.walkers * self.local_probes)

    @property
    def smoothed_gradients(self) -> int:
        """Gradients of the smoothed objective (each a gradient of a Jacobian norm: second order)."""
        return self.starts * self.steps


def shape_of(net: _Layers, points) -> _search_memory.Shape:
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


@functools.partial(jax.jit, static_argnums=(0, 1, 2), static_argnames=("box",))
def _run(activation: str, cfg: SearchConfig, method: str, arrays, key, points, box=None):
    """The ``_KEEP`` best candidates [K, d] and their true Jacobian norms [K] (float64).

    Every phase streams its candidates through ``stream_top`` in chunks chosen by ``_search_memory.chunks``
    for ``cfg.memory_budget_bytes``, so the count of candidates never sets the memory."""
    weights, biases = arrays
    net = _JaxNet(weights, biases, activation, box)
    shape = shape_of(net, points)
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
