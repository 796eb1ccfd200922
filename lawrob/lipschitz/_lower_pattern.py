"""Pattern ascent: the lower-bound search in the space of activation patterns (``lower(method="pattern")``).

On a linear region with activation pattern S = (S_1, ..., S_{L-1}) (S_k diagonal, entries the activation's slopes
alpha or 1) a piecewise-linear network has the Jacobian J(S) = W_1 S_1 W_2 S_2 ... W_L (weights [fan_in, fan_out]),
and Lip(f) = max ||J(S)||_2 over the patterns of its nonempty regions. The ascent has two steps:

1. **Ascent over all patterns.** With (u, v) the top singular pair of J(S), u^T J(S) v = sum_i a_i s_i b_i over
   the units i of layer k, a = u^T W_1 S_1 ... W_k and b = W_{k+1} S_{k+1} ... W_L v; so the best slopes of
   layer k with the rest fixed are s_i = 1 where a_i b_i > 0, else alpha. Updating the layers in turn and
   recomputing (u, v) never decreases ||J(S)||, and ends at a pattern no single-layer update improves.
2. **Realization.** The pattern need not be the pattern of any input. The pattern's region is a polyhedron in
   homogeneous coordinates (y, tau), x = y / tau (every pre-activation z_k(x) equals z_k(y, tau) / tau, with the
   biases multiplied by tau, so the pattern of x is that of (y, tau) for tau > 0). The linear program
      minimize sum_i c_i xi_i  s.t.  sigma_i z_i(y, tau) / ||grad z_i|| + xi_i >= delta,  xi >= 0,
                                     -1 <= y <= 1,  tau_min <= tau <= 1,
   with sigma_i the wanted sign of unit i and c_i = |a_i b_i| (what flipping unit i costs u^T J v to first
   order), finds a point whose pattern keeps the units that matter (HiGHS, interior point). The point is scored
   on the network like every other candidate, and ``lower`` certifies it.

The best value of step 1 over the starts and over one start that needs no input, the pattern with every unit
active, is reported as ``details["pattern_bound"]``. That start is there because on wide deep networks the
inputs' patterns lead the ascent to local maxima far below the best pattern (63 against 123 on a trained
256-1024-1024-1024-1 whose LipSDP is 124); where it ends is not realized (on that network the realized point's
Jacobian norm is 9). It is not a bound on Lip(f); it is a certified lower bound on every upper bound that holds
for all slope-restricted activations (LipSDP-Neuron, ECLipsE, the norm product): each pattern S is the Jacobian
of the same weights with unit i's activation replaced by the line of slope s_i, which is slope-restricted in
[alpha, 1]. So upper / lower = (upper / pattern_bound) x (pattern_bound / lower) splits a bracket into the upper
bound's own slack over the patterns and the gap between all patterns and the realizable ones, which only a bound
that knows the geometry of the regions can close.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.sparse

from lawrob.lipschitz._network import Net

_DELTA = 1e-3  # the margin of a kept unit from its hyperplane, in (y, tau), normalized per unit
_TAU_MIN = 1e-6  # the farthest point is 1e6 x the box [-1, 1]^d
_SWEEPS = 100


def jacobian(net: Net, slopes: list[np.ndarray]) -> np.ndarray:
    """J(S) = W_1 S_1 W_2 ... W_L, [d, C]."""
    j = net.weights[0]
    for s, w in zip(slopes, net.weights[1:]):
        j = (j * s) @ w
    return j


def _top_pair(j: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(u, v, sigma): the top singular pair of J [d, C]."""
    if j.shape[1] == 1:
        norm = float(np.linalg.norm(j))
        return j[:, 0] / max(norm, np.finfo(float).tiny), np.ones(1), norm
    u, s, vt = np.linalg.svd(j, full_matrices=False)
    return u[:, 0], vt[0], float(s[0])


def _unit_weights(net: Net, slopes: list[np.ndarray], u: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
    """a_i b_i for every unit of every layer: u^T J(S) v = sum_i a_i s_i b_i within each layer."""
    left = [u @ net.weights[0]]
    for s, w in zip(slopes[:-1], net.weights[1:-1]):
        left.append((left[-1] * s) @ w)
    right = [net.weights[-1] @ v]
    for s, w in zip(slopes[:0:-1], net.weights[-2:0:-1]):
        right.append(w @ (s * right[-1]))
    return [a * b for a, b in zip(left, right[::-1])]


def ascend(net: Net, slopes: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """The pattern ascent (step 1 of the module) from ``slopes``: (the final pattern, ||J|| there). A start
    where J = 0 (no singular pair to follow) is replaced by the pattern of all slopes 1."""
    alpha = net.slopes[0]
    slopes = [s.copy() for s in slopes]
    if _top_pair(jacobian(net, slopes))[2] == 0.0:
        slopes = [np.ones_like(s) for s in slopes]
    for _ in range(_SWEEPS):
        changed = False
        for k in range(len(slopes)):
            u, v, norm = _top_pair(jacobian(net, slopes))
            if norm == 0.0:
                return slopes, 0.0
            gain = _unit_weights(net, slopes, u, v)[k]
            new = np.where(gain > 0, 1.0, np.where(gain < 0, alpha, slopes[k]))
            changed |= bool(np.any(new != slopes[k]))
            slopes[k] = new
        if not changed:
            break
    return slopes, _top_pair(jacobian(net, slopes))[2]


def pattern_of(net: Net, x: np.ndarray) -> list[np.ndarray]:
    """The slopes of every hidden unit at x (the value at a kink: alpha)."""
    alpha, h, slopes = net.slopes[0], np.asarray(x, np.float64), []
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        z = h @ w + b
        slopes.append(np.where(z > 0, 1.0, alpha))
        h = z * slopes[-1]
    return slopes


def affine_forms(net: Net, slopes: list[np.ndarray]) -> np.ndarray:
    """The pre-activations of every hidden unit on the region of pattern ``slopes``, as affine forms of the
    homogeneous input: z = [x, 1] @ a (equally [y, tau] @ a = tau z(y / tau)); [d + 1, hidden units]."""
    forms = []
    a = np.vstack([net.weights[0], net.biases[0][None]])
    for k, s in enumerate(slopes):
        forms.append(a)
        if k + 1 < len(slopes):
            a = (a * s) @ net.weights[k + 1]
            a[-1] += net.biases[k + 1]
    return np.hstack(forms)


def realize(net: Net, slopes: list[np.ndarray], costs: list[np.ndarray], box=None) -> np.ndarray | None:
    """A point whose pattern agrees with ``slopes`` on the costliest units (step 2 of the module), or None.
    ``box``: None, or (low, high) that the point x = y / tau must lie in (tau low <= y <= tau high)."""
    a = affine_forms(net, slopes)
    sign, cost = np.concatenate([np.where(s == 1.0, 1.0, -1.0) for s in slopes]), np.concatenate(costs)
    units = a.shape[1]
    norm = np.maximum(np.linalg.norm(a, axis=0), np.finfo(float).tiny)
    lhs = scipy.sparse.hstack([scipy.sparse.csr_matrix(-(a * (sign / norm)).T), -scipy.sparse.eye(units)])
    rhs = np.full(units, -_DELTA)
    if box is not None:
        eye, zeros = scipy.sparse.eye(net.d), scipy.sparse.csr_matrix((net.d, units))
        low, high = (np.asarray(edge, np.float64)[:, None] for edge in box)
        lhs = scipy.sparse.vstack([lhs, scipy.sparse.hstack([eye, -high, zeros]),
                                   scipy.sparse.hstack([-eye, low, zeros])])
        rhs = np.concatenate([rhs, np.zeros(2 * net.d)])
    bounds = [(-1.0, 1.0)] * net.d + [(_TAU_MIN, 1.0)] + [(0.0, None)] * units
    objective = np.concatenate([np.zeros(net.d + 1), np.abs(cost)])
    result = scipy.optimize.linprog(objective, A_ub=lhs.tocsr(), b_ub=rhs, bounds=bounds, method="highs-ipm")
    if result.x is None or not np.all(np.isfinite(result.x)):
        return None
    return result.x[: net.d] / result.x[net.d]


def candidates(net: Net, starts: np.ndarray, max_patterns: int, box=None) -> tuple[np.ndarray, dict]:
    """Realized points of the patterns the ascent reaches from ``starts`` [m, d], and details.

    Each start's pattern is ascended; each distinct final pattern (at most ``max_patterns``, best first) is
    realized, and the realized point's own pattern is ascended again, so a second pattern is tried when the
    realization lands in another basin. ``pattern_bound`` (the best ascended value) also counts the ascent from
    the all-active pattern. Returns ([k, d] points, {"pattern_bound", "pattern_lps"}).
    """
    seen: dict[bytes, float] = {}
    queue: list[tuple[float, list[np.ndarray]]] = []

    def climb_from(x):
        slopes, value = ascend(net, pattern_of(net, x))
        key = np.concatenate(slopes).tobytes()
        if key not in seen:
            seen[key] = value
            queue.append((value, slopes))

    for x in starts:
        climb_from(x)
    points, solved = [], 0
    while queue and solved < max_patterns:
        _, slopes = queue.pop(max(range(len(queue)), key=lambda i: queue[i][0]))
        u, v, _ = _top_pair(jacobian(net, slopes))
        point = realize(net, slopes, _unit_weights(net, slopes, u, v), box)
        solved += 1
        if point is not None:
            points.append(point)
            climb_from(point)
    all_active = ascend(net, [np.ones(w) for w in net.widths])[1]
    details = {"pattern_bound": max([all_active, *seen.values()]), "pattern_lps": solved}
    return np.asarray(points, np.float64).reshape(-1, net.d), details
