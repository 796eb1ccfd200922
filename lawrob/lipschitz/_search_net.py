"""The search of ``_lower`` on one network in JAX (float64): Jacobian norms of candidates, random and multi-scale
points, hyperplane probes, secant segments, smoothed ascent and region walking (the steps are described in
``_lower``'s docstring).

Every phase makes and scores its candidates ``chunk`` at a time and keeps only the best ones (``stream_top``),
so the memory a phase holds is set by its chunk, not by its count: ``_search_memory`` chooses the chunks from
the search's memory budget.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from lawrob import nets
from lawrob.lipschitz._network import _Layers


@dataclasses.dataclass(frozen=True)
class _JaxNet(_Layers):
    weights: tuple
    biases: tuple
    activation: str
    box: tuple | None

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

    def jacobian(self, x, temperatures=None):
        """The [out, d] Jacobian at x: reverse mode (one pass per output) when out <= d, else forward mode."""
        f = lambda y: self.forward(y, temperatures)[1]  # noqa: E731
        return jax.jacrev(f)(x) if self.out <= self.d else jax.jacfwd(f)(x)

    def jacobian_norm(self, x):
        """||J(x)||_2 of the true network: sqrt of the top eigenvalue of the smaller Gram matrix (J J^T [C, C]
        or J^T J [d, d]); an SVD of the [C, d] Jacobian would hold d x d factors (2.5 GB per 512 points at
        d = 784). Used to rank candidates only: the reported value is recomputed in float64 by ``certify``."""
        return jnp.sqrt(jnp.maximum(_top_squared(self.jacobian(x)), 0.0))

    def scores(self, xs, chunk: int | None = None):
        """Jacobian norms of xs [m, d], ``chunk`` at a time (None: one vmap)."""
        return map_padded(self.jacobian_norm, xs, chunk) if chunk else jax.vmap(self.jacobian_norm)(xs)

    @staticmethod
    def top(xs, scores, k):
        """The k best distinct-valued candidates (equal scores usually mean one region: keep one of them)."""
        order = jnp.argsort(-scores)
        xs, scores = xs[order], scores[order]
        repeat = jnp.concatenate([jnp.array([False]), jnp.isclose(scores[1:], scores[:-1], rtol=1e-12, atol=0)])
        ranked = jnp.where(repeat | ~jnp.isfinite(scores), -jnp.inf, scores)
        values, index = jax.lax.top_k(ranked, min(k, xs.shape[0]))
        return xs[index], jnp.where(jnp.isfinite(values), values, scores[index])

    def merge(self, pool, xs, scores):
        """The pool (its size kept) of the best among the pool and new candidates xs [m, d] with their scores."""
        return self.top(jnp.concatenate([pool[0], xs]), jnp.concatenate([pool[1], scores]), pool[0].shape[0])

    def random_points(self, keys, scale, cfg):
        """One point per key: a random direction at a radius log-uniform in [radius_min, radius_max] x scale
        (uniform in a box)."""
        def one(key):
            key_dir, key_radius = jax.random.split(key)
            if self.box is not None:
                low, high = jnp.asarray(self.box[0]), jnp.asarray(self.box[1])
                return low + (high - low) * jax.random.uniform(key_dir, (self.d,))
            direction = _unit(jax.random.normal(key_dir, (self.d,)))
            return direction * _log_uniform(key_radius, (), cfg.radius_min, cfg.radius_max) * scale

        return jax.vmap(one)(keys)

    def first_layer_planes(self):
        """(base, unit normals [H, d], signed offsets of base [H], sampling weights [H]) of the first layer's
        hyperplanes: the global arrangement every network's regions refine."""
        w, b = self.weights[0], self.biases[0]
        norm = jnp.linalg.norm(w, axis=0)
        valid = norm > 0
        safe = jnp.where(valid, norm, 1.0)
        normals, offsets = (w / safe).T * valid[:, None], jnp.where(valid, b / safe, 0.0)
        base = jnp.zeros(self.d) if self.box is None else (jnp.asarray(self.box[0]) + jnp.asarray(self.box[1])) / 2
        offsets = offsets + normals @ base  # signed distance of base to each hyperplane
        return base, normals, offsets, valid / jnp.maximum(jnp.sum(valid), 1)

    def local_planes(self, x, scale):
        """The hyperplanes of all hidden units linearised at x, weighted half by nearness, half uniformly."""
        z = self.forward(x)[0]
        grads = jax.jacfwd(lambda y: self.forward(y)[0])(x)  # [H, d]
        norm = jnp.linalg.norm(grads, axis=1)
        valid = norm > 1e-12 * jnp.max(norm)
        safe = jnp.where(valid, norm, 1.0)
        normals, offsets = grads / safe[:, None] * valid[:, None], jnp.where(valid, z / safe, 0.0)
        near = valid / (jnp.abs(offsets) + 1e-9 * (scale + jnp.linalg.norm(x)))
        weights = 0.5 * near / jnp.maximum(jnp.sum(near), 1e-300) + 0.5 * valid / jnp.maximum(jnp.sum(valid), 1)
        return x, normals, offsets, weights

    def probes(self, keys, planes, scale, cfg):
        """One point y per key with n_j.(y - base) + offset_j = eps sigma_j for a random subset S of the hyperplanes.

        ``planes``: (base, normals, offsets, weights) from ``first_layer_planes`` or ``local_planes``.
        |S| is uniform in 1..min(d, H, 8); members are drawn (with replacement: a repeat is dropped as dependent)
        with probabilities proportional to ``weights``; sigma random signs, eps log-uniform in [1e-7, 1e-1] x
        (scale + distance to the intersection): one probe per adjacent cell of the intersection's neighbourhood
        in expectation. Half the probes move far out along the intersection (a random direction orthogonal to
        the normals of S, radius up to radius_max x scale).
        """
        base, normals, offsets, weights = planes
        count = normals.shape[0]
        size_max = min(self.d, count, 8)
        if size_max == 0:
            return jnp.zeros((keys.shape[0], self.d)) + base
        cdf = jnp.cumsum(weights)
        cdf = cdf / jnp.where(cdf[-1] > 0, cdf[-1], 1.0)

        def one(key):
            key_u, key_n = jax.random.split(key)
            u = jax.random.uniform(key_u, (2 * size_max + 4,))
            direction = jax.random.normal(key_n, (self.d,))
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

        return jax.vmap(one)(keys)

    def secant_segments(self, key, ends, n_segments, n_pairs, chunk):
        """The ``n_segments`` steepest of ``n_pairs`` random pairs (a, b) of the rows of ``ends`` by the secant
        slope ||f(a) - f(b)|| / ||a - b||: [n_segments, 2, d]. By the mean value theorem along the segment, some
        linear region it crosses has ||J|| >= that slope, so points spread along it find such a region.
        Outputs and slopes are computed ``chunk`` at a time."""
        n = ends.shape[0]
        key_a, key_b = jax.random.split(key)
        i, j = jax.random.randint(key_a, (n_pairs,), 0, n), jax.random.randint(key_b, (n_pairs,), 0, n)
        out = map_padded(lambda x: self.forward(x)[1], ends, chunk)  # [n, C]

        def slope(pair):
            gap = jnp.linalg.norm(ends[pair[0]] - ends[pair[1]])
            rise = jnp.linalg.norm(out[pair[0]] - out[pair[1]])
            return jnp.where(gap > 0, rise / jnp.where(gap > 0, gap, 1.0), -1.0)

        slopes = map_padded(slope, (i, j), chunk)
        _, best = jax.lax.top_k(slopes, min(n_segments, n_pairs))
        return jnp.stack([ends[i[best]], ends[j[best]]], axis=1)

    def climb(self, x0, scale, cfg):
        """Normalised ascent on the smoothed log ||J||^2 from x0; the best iterate by the true score, and that score.

        The temperature tau is annealed geometrically from the start's distance scale r = |x_0| + scale down to
        1e-4 r, steps of length tau / 2; the objective is log ||u^T J_tau(x)||^2 with u the top left singular
        vector of J_tau(x) held fixed (so its gradient is that of log sigma_max^2)."""
        # a unit's smoothing width, in pre-activation units: tau times a rough gain from the input to the unit
        gains = [jnp.linalg.norm(w, axis=0) for w in self.weights[:-1]]
        upstream = jnp.cumprod(jnp.array([1.0] + [jnp.linalg.norm(w) / math.sqrt(w.shape[1])
                                                   for w in self.weights[:-2]]))
        steps = jnp.arange(cfg.steps) / max(cfg.steps - 1, 1)
        reach = jnp.linalg.norm(x0) + scale

        def objective(x, tau):
            temperatures = [jnp.maximum(tau * g * u, 1e-12 * tau) for g, u in zip(gains, upstream)]
            return jnp.log(_top_squared(self.jacobian(x, temperatures), fixed_direction=True) + 1e-300)

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


def stream_top(make, count: int, chunk: int, pool, key, offset=0):
    """Merge into ``pool`` (xs [K, d], scores [K]) the best of ``count`` candidates made ``chunk`` at a time.

    ``make(keys [chunk], start) -> (xs [chunk, d], scores [chunk])`` makes and scores candidates start ..
    start + chunk - 1 (``start`` traced), candidate i from its own key ``fold_in(key, offset + i)``, so the
    result does not depend on the chunk. A ``jax.lax.scan`` over ceil(count / chunk) chunks, the last one
    padded (its candidates past ``count`` are scored -inf): one compiled body, one chunk alive at a time."""
    if count == 0:
        return pool
    chunk = max(1, min(chunk, count))
    n_chunks = -(-count // chunk)

    def merged(pool, start):
        index = start + jnp.arange(chunk)
        xs, scores = make(jax.vmap(lambda i: jax.random.fold_in(key, offset + i))(index), start)
        scores = jnp.where(index < count, scores, -jnp.inf)
        return _JaxNet.top(jnp.concatenate([pool[0], xs]), jnp.concatenate([pool[1], scores]), pool[0].shape[0])

    if n_chunks == 1:
        return merged(pool, 0)
    pool, _ = jax.lax.scan(lambda p, i: (merged(p, i * chunk), None), pool, jnp.arange(n_chunks))
    return pool


def map_padded(fn, xs, chunk: int):
    """``jax.lax.map(fn, xs, batch_size=chunk)`` with the leading axis padded to whole chunks (repeating the
    last element), so that only one vmapped body is compiled; the padding is dropped."""
    size = jax.tree.leaves(xs)[0].shape[0]
    chunk = max(1, min(chunk, size))
    padding = -size % chunk
    if padding:
        xs = jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], padding, axis=0)]), xs)
    out = jax.vmap(fn)(xs) if chunk == size + padding else jax.lax.map(fn, xs, batch_size=chunk)
    return jax.tree.map(lambda a: a[:size], out)


def _top_squared(jac, fixed_direction=False):
    """sigma_max(J)^2 of J [C, d] from the smaller Gram matrix. ``fixed_direction``: u^T G u with G's top
    eigenvector u held fixed (stop_gradient), whose gradient is that of sigma_max^2 where it is simple."""
    if jac.shape[0] == 1:
        return jnp.sum(jac**2)
    gram = jac @ jac.T if jac.shape[0] <= jac.shape[1] else jac.T @ jac
    if not fixed_direction:
        return jnp.linalg.eigvalsh(gram)[-1]
    u = jnp.linalg.eigh(jax.lax.stop_gradient(gram))[1][:, -1]
    return u @ gram @ u


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
