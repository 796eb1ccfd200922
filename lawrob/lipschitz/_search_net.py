"""The search of ``_lower`` on one network in JAX (float64): Jacobian norms of candidates, random and multi-scale
points, hyperplane probes, smoothed ascent and region walking (the steps are described in ``_lower``'s
docstring)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from lawrob import nets

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
