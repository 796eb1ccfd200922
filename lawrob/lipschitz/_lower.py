"""Certified lower bounds on the l2 Lipschitz constant: the Jacobian norm at a point, maximised by a search.

Any point x where f is differentiable gives Lip(f) >= ||J_f(x)||_2; for a piecewise-linear network the point
must lie strictly inside a linear region (``certify`` proves it in float64). The search proposes candidates and
scores every one on the true (masked) network, so it can only improve a certified value:

1. multi-scale random points, radii log-uniform in [1e-2, 1e4] x the data scale (steep regions of sparse nets
   can be long thin slabs far from the data, or cells 1e-3 across);
2. hyperplane probes: points at tiny signed offsets from the intersection of a random subset of first-layer
   hyperplanes (a vertex of the arrangement when the subset has d of them), so every cell touching that
   intersection gets a probe, half of them moved far out along the intersection (along unit boundaries);
3. smoothed ascent: a ReLU network's gradient is piecewise constant, so ascent on ||J(x)|| never moves. It
   climbs log ||J_tau(x)||^2 instead, where relu(z) is replaced by tau softplus(z / tau) with the temperature
   tau annealed geometrically from the start's distance scale r = |x_0| + scale down to 1e-4 r (leaky ReLU
   likewise; smooth activations are used as they are), by normalised steps of length tau / 2, from half the
   best points so far and half fresh random points; every iterate is scored on the true network;
4. region walking: around the best points so far, the same probes against the *local* hyperplanes of all
   hidden units (each unit's pre-activation linearised at the point), which crosses into neighbouring regions
   and reaches vertices of deeper layers.
Everything is one jitted function of one network, batched over candidates with ``jax.vmap`` and over networks
by ``lower_batch`` (``jax.lax.map`` over chunks of a ``vmap``). It runs in float64.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _batching, _checks, nets
from lawrob.lipschitz._network import Bound, Net, batch_size, certify, check_domain, check_points, prepare, reduce



@dataclasses.dataclass(frozen=True)
class LowerMethod:
    """A lower-bound method of the registry ``LOWER_METHODS``. Every method proposes witness points and
    ``lower`` certifies the best of them on the exact masked network (``certify``), so any proposal gives a
    certified bound. ``candidates(net, key, points) -> [m, d]`` array of proposals (``points``: the given
    points or None); None for the built-in modes "search" and "points", which run as one compiled search."""

    name: str
    candidates: Callable | None = None


LOWER_METHODS: dict[str, LowerMethod] = {"search": LowerMethod("search"), "points": LowerMethod("points")}


def register_lower(name: str, candidates: Callable, *, replace: bool = False) -> LowerMethod:
    """Add a lower-bound method: ``lower(..., method=name)`` certifies the best of ``candidates(net, key,
    points)`` (see ``LowerMethod``), and sweep grids accept it as ``lower_method``."""
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
    points = np.asarray(LOWER_METHODS[setup.method].candidates(net, setup.key, setup.points), dtype=float)
    if points.ndim != 2 or points.shape[1] != net.d or not np.all(np.isfinite(points)):
        raise ValueError(f"method={setup.method!r}: its candidates must be a finite [m, {net.d}] array, got shape "
                         f"{points.shape}")
    return points
_KEEP = 16  # best candidates certified in float64


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Budget of the search (static under jit). Counts are per network.

    samples: multi-scale random points; probes: first-layer hyperplane probes; starts and steps: smoothed
    ascent; rounds, walkers, local_probes: region walking (probes around the ``walkers`` best distinct points,
    ``rounds`` times). radius_min, radius_max: range of radii of random points and far moves, in data scales.
    """

    samples: int = 512
    probes: int = 4096
    starts: int = 32
    steps: int = 64
    rounds: int = 8
    walkers: int = 32
    local_probes: int = 512
    radius_min: float = 1e-2
    radius_max: float = 1e4

    def __post_init__(self):
        for name in ("samples", "probes", "starts", "steps", "rounds", "walkers", "local_probes"):
            _checks.positive_int(name, getattr(self, name), minimum=0)
        _checks.real_in("radius_min", self.radius_min, 0.0, math.inf, low_open=True, high_open=True)
        _checks.real_in("radius_max", self.radius_max, self.radius_min, math.inf, high_open=True)

    @property
    def evaluations(self) -> int:
        """True-network Jacobian evaluations (one per scored candidate; given points add theirs)."""
        return (self.samples + self.probes + self.starts * self.steps
                + self.rounds * self.walkers * self.local_probes)

    @property
    def smoothed_gradients(self) -> int:
        """Gradients of the smoothed objective (each a gradient of a Jacobian norm: second order)."""
        return self.starts * self.steps


def lower(
    params, mask=None, *, key: jax.Array, model: nets.MLP | None = None, points=None, method: str = "search",
    domain=None, config: SearchConfig | None = None, **budget,
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
    """
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
    params, mask=None, *, key: jax.Array, model: nets.MLP | None = None, points=None, method: str = "search",
    domain=None, config: SearchConfig | None = None, chunk: int | None = 8, **budget,
) -> list[Bound]:
    """``lower`` for B networks of one architecture at once: params (and mask) carry a leading axis of size B.

    ``points``: shared [n, d] or per network [B, n, d]. The search runs as one compiled call, ``jax.lax.map``
    over chunks of ``chunk`` networks with ``jax.vmap`` inside (None: one vmap over all). ``key``: one key (network
    b then uses ``jax.random.split(key, B)[b]``) or B stacked keys (network b uses ``key[b]``); either way the
    result for network b equals ``lower(..., key=<its key>)``. Each Bound's seconds is its share of the total.
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
    if LOWER_METHODS[method].candidates is not None:
        share = (time.perf_counter() - start) / size
        return [_certified_bound(net, _proposed(net, setup), setup, share) for net, setup in zip(networks, setups)]
    with jax.enable_x64(True):
        arrays = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[_arrays(net) for net in networks])
        batch_points = first.points if not per_network else jnp.stack([s.points for s in setups])
        candidates, _ = _run_batch(networks[0].activation, first.config, first.method, first.box, chunk, arrays,
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


@functools.partial(jax.jit, static_argnums=(0, 1, 2), static_argnames=("box",))
def _run(activation: str, cfg: SearchConfig, method: str, arrays, key, points, box=None):
    """The ``_KEEP`` best candidates [K, d] and their true Jacobian norms [K] (float64)."""
    weights, biases = arrays
    net = _JaxNet(weights, biases, activation, box)
    if method == "points":
        return net.top(points, net.scores(points), _KEEP)
    scale = 1.0 if points is None else jnp.sqrt(jnp.mean(jnp.sum(points**2, axis=1))) + 1e-12
    if box is not None:
        scale = jnp.linalg.norm(jnp.asarray(box[1]) - jnp.asarray(box[0])) / 2
    keys = jax.random.split(_fast_key(key), 4)
    found = [net.random_points(keys[0], cfg.samples, scale, cfg), net.first_layer_probes(keys[1], scale, cfg)]
    if points is not None:
        found.append(points)
    pool = jnp.concatenate(found)
    pool_x, pool_s = net.top(pool, net.scores(pool), max(_KEEP, cfg.starts, cfg.walkers))
    if cfg.starts and cfg.steps:
        ascended = net.ascend(keys[2], pool_x, pool_s, scale, cfg)
        pool_x, pool_s = net.top(jnp.concatenate([pool_x, ascended[0]]), jnp.concatenate([pool_s, ascended[1]]),
                                 pool_x.shape[0])

    def walk_round(pool, key_round):
        walked = net.walk(key_round, pool[0], scale, cfg)
        merged = (jnp.concatenate([pool[0], walked]), jnp.concatenate([pool[1], net.scores(walked)]))
        return net.top(*merged, pool[0].shape[0]), None

    if cfg.rounds and cfg.walkers and cfg.local_probes:
        (pool_x, pool_s), _ = jax.lax.scan(walk_round, (pool_x, pool_s), jax.random.split(keys[3], cfg.rounds))
    return pool_x[:_KEEP], pool_s[:_KEEP]


@dataclasses.dataclass(frozen=True)
class _JaxNet:
    weights: tuple
    biases: tuple
    activation: str
    box: tuple | None

    @property
    def d(self) -> int:
        return self.weights[0].shape[0]

    @property
    def alpha(self) -> float:
        return nets.ACTIVATIONS[self.activation][1]

    def clip(self, x):
        return x if self.box is None else jnp.clip(x, jnp.asarray(self.box[0]), jnp.asarray(self.box[1]))

    def forward(self, x, temperatures=None):
        """(hidden pre-activations concatenated, output) at x; with temperatures, the smoothed network."""
        pre, h = [], x
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = h @ w + b
            if k == len(self.weights) - 1:
                return (jnp.concatenate(pre) if pre else jnp.zeros(0)), z
            pre.append(z)
            h = self._act(z) if temperatures is None else self._smooth(z, temperatures[k])
        raise AssertionError("unreachable")

    def _act(self, z):
        return nets.ACTIVATIONS[self.activation][0](z)

    def _smooth(self, z, tau):
        """relu(z) ~ tau softplus(z / tau) (-> relu as tau -> 0); leaky: alpha z + (1 - alpha) of that."""
        if self.activation not in ("relu", "leaky_relu"):
            return self._act(z)
        soft = tau * jax.nn.softplus(z / tau)
        return self.alpha * z + (1 - self.alpha) * soft

    def jacobian_norm(self, x):
        """||J(x)||_2 of the true network ([out, d] Jacobian, by reverse mode)."""
        jac = jax.jacrev(lambda y: self.forward(y)[1])(x)
        return jnp.linalg.norm(jac) if jac.shape[0] == 1 else jnp.linalg.svd(jac, compute_uv=False)[0]

    def scores(self, xs):
        return jax.vmap(self.jacobian_norm)(xs)

    @staticmethod
    def top(xs, scores, k):
        """The k best distinct-valued candidates (equal scores usually mean one region: keep one of them)."""
        order = jnp.argsort(-scores)
        xs, scores = xs[order], scores[order]
        repeat = jnp.concatenate([jnp.array([False]), jnp.isclose(scores[1:], scores[:-1], rtol=1e-12, atol=0)])
        ranked = jnp.where(repeat | ~jnp.isfinite(scores), -jnp.inf, scores)
        values, index = jax.lax.top_k(ranked, min(k, xs.shape[0]))
        return xs[index], jnp.where(jnp.isfinite(values), values, scores[index])

    def random_points(self, key, n, scale, cfg):
        """Random directions at radii log-uniform in [radius_min, radius_max] x scale (uniform in a box)."""
        key_dir, key_radius = jax.random.split(key)
        if self.box is not None:
            low, high = jnp.asarray(self.box[0]), jnp.asarray(self.box[1])
            return low + (high - low) * jax.random.uniform(key_dir, (n, self.d))
        direction = jax.random.normal(key_dir, (n, self.d))
        direction /= jnp.linalg.norm(direction, axis=1, keepdims=True)
        return direction * _log_uniform(key_radius, (n, 1), cfg.radius_min, cfg.radius_max) * scale

    def first_layer_probes(self, key, scale, cfg):
        """Probes around intersections of the first layer's hyperplanes (global, exact for every network)."""
        if len(self.weights) == 1:  # no hidden layer: f is affine
            return jnp.zeros((0, self.d))
        w, b = self.weights[0], self.biases[0]
        norm = jnp.linalg.norm(w, axis=0)
        valid = norm > 0
        safe = jnp.where(valid, norm, 1.0)
        normals, offsets = (w / safe).T * valid[:, None], jnp.where(valid, b / safe, 0.0)
        base = jnp.zeros(self.d) if self.box is None else (jnp.asarray(self.box[0]) + jnp.asarray(self.box[1])) / 2
        offsets = offsets + normals @ base  # signed distance of base to each hyperplane
        weights = valid / jnp.maximum(jnp.sum(valid), 1)
        return self._probes(key, base, normals, offsets, weights, cfg.probes, scale, cfg)

    def walk(self, key, xs, scale, cfg):
        """Probes around the local hyperplanes (all units, linearised) of the ``walkers`` best points."""
        walkers = xs[: cfg.walkers]
        keys = jax.random.split(key, walkers.shape[0])
        probes = jax.vmap(lambda k, x: self._local_probes(k, x, scale, cfg))(keys, walkers)
        return probes.reshape(-1, self.d)

    def _local_probes(self, key, x, scale, cfg):
        z = self.forward(x)[0]
        if z.shape[0] == 0:
            return jnp.zeros((0, self.d))
        grads = jax.jacfwd(lambda y: self.forward(y)[0])(x)  # [H, d]
        norm = jnp.linalg.norm(grads, axis=1)
        valid = norm > 1e-12 * jnp.max(norm)
        safe = jnp.where(valid, norm, 1.0)
        normals, offsets = grads / safe[:, None] * valid[:, None], jnp.where(valid, z / safe, 0.0)
        near = valid / (jnp.abs(offsets) + 1e-9 * (scale + jnp.linalg.norm(x)))
        weights = 0.5 * near / jnp.maximum(jnp.sum(near), 1e-300) + 0.5 * valid / jnp.maximum(jnp.sum(valid), 1)
        return self._probes(key, x, normals, offsets, weights, cfg.local_probes, scale, cfg)

    def _probes(self, key, base, normals, offsets, weights, n, scale, cfg):
        """n points y with n_j.(y - base) + offset_j = eps sigma_j for a random subset S of the hyperplanes.

        |S| is uniform in 1..min(d, H, 8); members are drawn (with replacement: a repeat is dropped as dependent)
        with probabilities proportional to ``weights``; sigma random signs, eps log-uniform in [1e-7, 1e-1] x
        (scale + distance to the intersection): one probe per adjacent cell of the intersection's neighbourhood
        in expectation. Half the probes move far out along the intersection (a random direction orthogonal to
        the normals of S, radius up to radius_max x scale).
        """
        count = normals.shape[0]
        size_max = min(self.d, count, 8)
        if size_max == 0 or n == 0:
            return jnp.zeros((0, self.d))
        cdf = jnp.cumsum(weights)
        cdf = cdf / jnp.where(cdf[-1] > 0, cdf[-1], 1.0)
        key_u, key_n = jax.random.split(key)
        uniform = jax.random.uniform(key_u, (n, 2 * size_max + 4))
        normal = jax.random.normal(key_n, (n, self.d))

        def one(u, direction):
            size = 1 + jnp.floor(u[0] * size_max).astype(int)
            chosen = jnp.minimum(jnp.searchsorted(cdf, u[4 : 4 + size_max], side="right"), count - 1)
            member = (jnp.arange(size_max) < size) & (weights[chosen] > 0)
            rows = normals[chosen] * member[:, None]
            sign = jnp.where(u[4 + size_max :] < 0.5, -1.0, 1.0)
            solution, basis = _least_norm(rows, member, jnp.stack([-offsets[chosen], sign], axis=1))
            to_flat = solution[:, 0]
            eps = 10.0 ** (-7 + 6 * u[1]) * (scale + jnp.linalg.norm(to_flat))
            y = base + to_flat + eps * solution[:, 1]
            direction = direction - basis.T @ (basis @ direction)
            length = jnp.linalg.norm(direction)
            far = (u[2] < 0.5) & (length > 1e-6)
            radius = cfg.radius_max ** u[3] * scale
            y = y + jnp.where(far, radius / jnp.where(length > 0, length, 1.0), 0.0) * direction
            return self.clip(y)

        return jax.vmap(one)(uniform, normal)

    def ascend(self, key, pool_x, pool_s, scale, cfg):
        """Normalised ascent on the smoothed log ||J||^2 from half best-so-far, half random starts.

        Returns each start's best iterate by the true score, and that score.
        """
        half = cfg.starts // 2
        starts = jnp.concatenate([pool_x[:half], self.random_points(key, cfg.starts - half, scale, cfg)])
        # a unit's smoothing width, in pre-activation units: tau times a rough gain from the input to the unit
        gains = [jnp.linalg.norm(w, axis=0) for w in self.weights[:-1]]
        upstream = jnp.cumprod(jnp.array([1.0] + [jnp.linalg.norm(w) / math.sqrt(w.shape[1])
                                                   for w in self.weights[:-2]]))
        steps = jnp.arange(cfg.steps) / max(cfg.steps - 1, 1)

        def climb(x0):
            reach = jnp.linalg.norm(x0) + scale

            def objective(x, tau):
                """log ||u^T J_tau(x)||^2, u the top left singular vector of J_tau(x) held fixed (so the gradient
                is that of log sigma_max^2; u = 1 for one output)."""
                temperatures = [jnp.maximum(tau * g * u, 1e-12 * tau) for g, u in zip(gains, upstream)]
                jac = jax.jacrev(lambda y: self.forward(y, temperatures)[1])(x)
                if jac.shape[0] > 1:
                    jac = jnp.linalg.svd(jax.lax.stop_gradient(jac), full_matrices=False)[0][:, :1].T @ jac
                return jnp.log(jnp.sum(jac**2) + 1e-300)

            def step(carry, t):
                x, best_x, best_s = carry
                tau = reach * 1e-4**t
                x = self.clip(x + 0.5 * tau * _unit(jax.grad(objective)(x, tau)))
                s = self.jacobian_norm(x)
                better = s > best_s
                return (x, jnp.where(better, x, best_x), jnp.where(better, s, best_s)), None

            init = (x0, x0, self.jacobian_norm(x0))
            (_, best_x, best_s), _ = jax.lax.scan(step, init, steps)
            return best_x, best_s

        return jax.vmap(climb)(starts)


def _unit(v):
    """v / |v| (0 for v = 0), computed without underflow for tiny v."""
    top = jnp.max(jnp.abs(v))
    v = v / jnp.where(top > 0, top, 1.0)
    return v / jnp.maximum(jnp.linalg.norm(v), 1e-300)


def _fast_key(key):
    """A key of XLA's RngBitGenerator ("unsafe_rbg") drawn from ``key``: its random draws compile in a fraction
    of threefry's time (the search draws in many places); stream independence matters little to a search."""
    return jax.random.wrap_key_data(jax.random.bits(key, (4,), jnp.uint32), impl="unsafe_rbg")


def _least_norm(rows, member, rhs):
    """Least-norm y [d, m] with rows_i . y = rhs_i [m] for every member i, and an orthonormal basis of those rows.

    Gram-Schmidt, one row at a time: y stays in the span of the rows taken so far and is corrected along the new
    orthonormal direction q by (rhs_i - rows_i . y) / (rows_i . q). A row (nearly) dependent on earlier ones is
    skipped, so parallel hyperplanes with different offsets keep the first one's equation.
    """
    size, d = rows.shape
    basis, y = jnp.zeros((size, d)), jnp.zeros((d, rhs.shape[1]))
    for i in range(size):
        v = rows[i] - basis.T @ (basis @ rows[i])
        length = jnp.linalg.norm(v)
        keep = member[i] & (length > 1e-9)
        safe = jnp.where(keep, length, 1.0)
        q = jnp.where(keep, v / safe, 0.0)
        y = y + q[:, None] * jnp.where(keep, (rhs[i] - rows[i] @ y) / safe, 0.0)[None, :]
        basis = basis.at[i].set(q)
    return y, basis


def _log_uniform(key, shape, low, high):
    return jnp.exp(jax.random.uniform(key, shape, minval=math.log(low), maxval=math.log(high)))
