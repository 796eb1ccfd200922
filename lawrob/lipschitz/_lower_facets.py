"""Facet ascent: a walk over adjacent linear regions, every step into a realized region (``lower(method="pattern")``).

Pattern ascent (``_lower_pattern``) climbs over all activation patterns and may end at one that no input
realizes. Facet ascent climbs over the regions themselves. At a point x of the region with pattern S every hidden
pre-activation is affine, z_i(x) = g_i . x + c_i, and the region is the polyhedron {sigma_i z_i(x) >= 0}. Flipping
unit i (layer k) changes the Jacobian by a rank-one term,

    J(S^i) = J(S) + delta_i p_i q_i^T,   p_i = column i of W_1 S_1 ... W_k,   q_i = row i of W_{k+1} S_{k+1} ... W_L,

with delta_i = +-(1 - alpha), so ||J(S^i)||_2 is computed for every unit at once (the top eigenvalue of a C x C
Gram matrix per unit). The region across unit i's hyperplane is a neighbour exactly when that hyperplane carries a
facet of the region, which the linear program

    maximize t  s.t.  z_i(x) = 0,  sigma_j z_j(x) / ||g_j|| >= t  (j != i),  x at distance >= t inside the box,
                      t <= 1

decides (t > 0: the facet's Chebyshev centre x_f lies at distance t from every other hyperplane and from the
box's faces; without the faces a vertex solution sits on the box's boundary, where a step leaves the box). A step
of half the remaining margin across the facet from x_f lands strictly inside the neighbour (the other units keep
their signs, checked in float64). The ascent takes, at each step, the improving flip of largest ||J(S^i)|| whose facet
exists, and stops at a region none of whose neighbours is steeper, or when its budget of linear programs is spent.
HiGHS (``highspy``, when installed) re-solves each step's program warm for every flip tried by the dual simplex
method, or by its interior-point method for programs of more than ``AUTO_MAX_ENTRIES`` entries (units x (d + 1)).
Measured per program (AMD EPYC, 2 cores): 20-60 ms for 1024 units on 64 inputs, about 0.6 s for 768 units on
256 inputs, and for 3072 units on 784 inputs 50-400 s by the simplex method, 10-12 s by the interior-point one.
Without highspy, ``scipy.optimize.linprog`` solves each from scratch (about 5x slower at small sizes).

On trained 16-input networks whose patterns are mostly unrealizable this lifts the certified lower bound above
every input-space search and pattern ascent: 30.1 -> 37.0 on a 16-64-64-1 network (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.sparse

from lawrob.lipschitz._lower_pattern import affine_forms, jacobian, pattern_of
from lawrob.lipschitz._network import Net, certify, jacobian_norm

AUTO_PROGRAMS = 256  # facet_programs=None: this many programs while they have at most AUTO_MAX_ENTRIES entries
AUTO_MAX_ENTRIES = 1 << 17
_STEPS = (0.5, 0.1, 0.01)  # fractions of the margin tried when stepping across a facet
_MIN_MARGIN = 1e-9  # a facet whose Chebyshev radius (relative to the box) is below this counts as absent


def flip_norms(net: Net, slopes: list[np.ndarray]) -> np.ndarray:
    """||J(S^i)||_2 for every hidden unit i (layers in order): the Jacobian norm after flipping unit i alone.
    From the C x C Gram matrices J(S^i)^T J(S^i), so a norm near 0 carries an absolute error of about sqrt(eps)
    times the largest; the ascent only orders flips by these, and recomputes the value of the one it takes."""
    alpha = net.slopes[0]
    lefts = [net.weights[0]]  # W_1 S_1 ... W_k, [d, n_k]
    for slope, w in zip(slopes[:-1], net.weights[1:-1]):
        lefts.append((lefts[-1] * slope) @ w)
    rights = [net.weights[-1]]  # W_{k+1} S_{k+1} ... W_L, [n_k, C]
    for slope, w in zip(slopes[:0:-1], net.weights[-2:0:-1]):
        rights.append(w @ (slope[:, None] * rights[-1]))
    norms = []
    for s, left, right in zip(slopes, lefts, rights[::-1]):
        j = (left * s) @ right
        delta = np.where(s == 1.0, alpha - 1.0, 1.0 - alpha)
        jp = j.T @ left  # [C, n_k]
        cross = delta[:, None, None] * right[:, :, None] * jp.T[:, None, :]  # c_i q_i (J^T p_i)^T
        gram = (j.T @ j)[None] + cross + np.swapaxes(cross, 1, 2) \
            + (delta**2 * np.sum(left**2, axis=0))[:, None, None] * right[:, :, None] * right[:, None, :]
        norms.append(np.sqrt(np.maximum(np.linalg.eigvalsh(gram)[:, -1], 0.0)))
    return np.concatenate(norms)


def flipped(net: Net, slopes: list[np.ndarray], unit: int) -> list[np.ndarray]:
    """The pattern with hidden unit ``unit`` (numbered across layers) flipped."""
    new = [s.copy() for s in slopes]
    k = int(np.searchsorted(np.cumsum([len(s) for s in slopes]), unit, side="right"))
    i = unit - sum(len(s) for s in slopes[:k])
    new[k][i] = net.slopes[0] if slopes[k][i] == 1.0 else 1.0
    return new


class _FacetProgram:
    """The linear programs of one region (module docstring), one per flip tried: HiGHS warm-started when
    ``highspy`` is installed, else ``scipy.optimize.linprog``."""

    def __init__(self, net: Net, slopes: list[np.ndarray], box: tuple[np.ndarray, np.ndarray]):
        a = affine_forms(net, slopes)  # [d + 1, units]: z = [x, 1] @ a
        norm = np.linalg.norm(a[:-1], axis=0)
        self.live = norm > 0
        sign = np.concatenate([np.where(s == 1.0, 1.0, -1.0) for s in slopes])[self.live]
        g, c = a[:-1, self.live] / norm[self.live], a[-1, self.live] / norm[self.live]
        # rows: sigma_j g_j . x - t >= -sigma_j c_j, then the box's faces: x - t >= low, -x - t >= -high
        eye = np.eye(net.d)
        self.rows = np.hstack([np.vstack([(g * sign).T, eye, -eye]), -np.ones((g.shape[1] + 2 * net.d, 1))])
        self.lower = np.concatenate([-sign * c, box[0], -box[1]])
        self.row_of = np.cumsum(self.live) - 1
        self.d, self.box = net.d, box
        self.scale = float(np.max(np.abs(np.concatenate(box))))
        self._highs = _highs_model(self.rows, self.lower, box, ipm=g.shape[1] * (net.d + 1) > AUTO_MAX_ENTRIES)

    def centre(self, unit: int) -> np.ndarray | None:
        """The Chebyshev centre of the facet on unit ``unit``'s hyperplane, or None if there is no facet."""
        if not self.live[unit]:
            return None
        row = int(self.row_of[unit])
        solution = self._solve_highs(row) if self._highs is not None else self._solve_scipy(row)
        if solution is None or solution[-1] <= _MIN_MARGIN * self.scale:
            return None
        return solution[:-1]

    def _solve_highs(self, row: int) -> np.ndarray | None:
        import highspy

        lp = self._highs
        lp.changeCoeff(row, self.d, 0.0)
        lp.changeRowBounds(row, self.lower[row], self.lower[row])
        lp.run()
        solved = lp.getModelStatus() == highspy.HighsModelStatus.kOptimal
        solution = np.array(lp.getSolution().col_value) if solved else None
        lp.changeCoeff(row, self.d, -1.0)
        lp.changeRowBounds(row, self.lower[row], highspy.kHighsInf)
        return solution

    def _solve_scipy(self, row: int) -> np.ndarray | None:
        others = np.arange(len(self.lower)) != row
        equality = self.rows[row].copy()
        equality[-1] = 0.0
        result = scipy.optimize.linprog(
            np.append(np.zeros(self.d), -1.0), A_ub=-self.rows[others], b_ub=-self.lower[others],
            A_eq=equality[None], b_eq=[self.lower[row]], bounds=[*zip(*self.box), (None, 1.0)], method="highs")
        return result.x if result.status == 0 else None


def _highs_model(rows: np.ndarray, lower: np.ndarray, box, ipm: bool):
    """maximize t s.t. rows @ [x, t] >= lower, x in box, t <= 1, as a ``highspy.Highs`` (None without highspy);
    ``ipm``: solved by the interior-point method without crossover, else by the dual simplex method."""
    try:
        import highspy
    except ImportError:
        return None
    from lawrob.lipschitz._exact import _new_highs

    matrix = scipy.sparse.csc_matrix(rows)
    lp = highspy.HighsLp()
    lp.num_row_, lp.num_col_ = rows.shape
    lp.col_cost_ = np.append(np.zeros(rows.shape[1] - 1), -1.0)
    lp.col_lower_ = np.append(box[0], -highspy.kHighsInf)
    lp.col_upper_ = np.append(box[1], 1.0)
    lp.row_lower_, lp.row_upper_ = lower, np.full(rows.shape[0], highspy.kHighsInf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data
    highs = _new_highs(highspy)
    options = [("output_flag", False), ("threads", 1), ("presolve", "off")]
    if ipm:
        options += [("solver", "ipm"), ("run_crossover", "off")]
    for option, value in options:
        highs.setOptionValue(option, value)
    highs.passModel(lp)
    return highs


def _step_across(net: Net, slopes: list[np.ndarray], unit: int, centre: np.ndarray, box) -> tuple | None:
    """(point, pattern) strictly inside the neighbour across unit ``unit``'s facet at ``centre`` and in ``box``,
    or None."""
    new = flipped(net, slopes, unit)
    a = affine_forms(net, new)
    z, norm = centre @ a[:-1] + a[-1], np.linalg.norm(a[:-1], axis=0)
    others = (np.arange(len(z)) != unit) & (norm > 0)
    reach = float(np.min(np.abs(z[others]) / norm[others], initial=np.max(np.abs(np.concatenate(box)))))
    towards_active = 1.0 if np.concatenate(new)[unit] == 1.0 else -1.0
    step = towards_active * reach * a[:-1, unit] / norm[unit]
    for fraction in _STEPS:
        point = centre + fraction * step
        inside = np.all((point >= box[0]) & (point <= box[1]))
        if inside and all(np.array_equal(p, q) for p, q in zip(pattern_of(net, point), new)):
            return point, new
    return None


def climb(net: Net, x: np.ndarray, box, max_programs: int) -> tuple[np.ndarray, float, int, int]:
    """Facet ascent from ``x`` (module docstring): (the last point, ||J|| there, steps, linear programs)."""
    slopes = pattern_of(net, x)
    value = jacobian_norm(jacobian(net, slopes))
    steps = programs = 0
    while programs < max_programs:
        norms = flip_norms(net, slopes)
        improving = np.flatnonzero(norms > value * (1.0 + 1e-12))
        if len(improving) == 0:
            break
        program, moved = _FacetProgram(net, slopes, box), False
        for unit in improving[np.argsort(-norms[improving], kind="stable")]:
            if programs >= max_programs:
                break
            programs += 1
            centre = program.centre(int(unit))
            crossed = None if centre is None else _step_across(net, slopes, int(unit), centre, box)
            if crossed is not None:
                x, slopes = crossed
                value, steps, moved = jacobian_norm(jacobian(net, slopes)), steps + 1, True
                break
        if not moved:
            break
    return x, value, steps, programs


def candidates(net: Net, starts: np.ndarray, max_programs: int | None, box=None) -> tuple[np.ndarray, dict]:
    """The end points of facet ascents from the best certified ``starts`` [m, d] (one per distinct pattern, best
    first, until ``max_programs`` linear programs are spent; None: ``AUTO_PROGRAMS`` while a program has at most
    ``AUTO_MAX_ENTRIES`` entries, else 0), and details {"facet_steps", "facet_lps"}. ``box``: None (R^d: the walk
    stays in the cube of 10x the starts' largest coordinate) or (low, high)."""
    if max_programs is None:
        max_programs = AUTO_PROGRAMS if sum(net.widths) * (net.d + 1) <= AUTO_MAX_ENTRIES else 0
    scored = [(value, x) for x, (value, ok) in ((x, certify(net, x)) for x in starts) if ok]
    scored.sort(key=lambda item: -item[0])
    if box is None:
        half = 10.0 * max(1.0, float(np.max(np.abs(starts), initial=0.0)))
        box = (np.full(net.d, -half), np.full(net.d, half))
    box = tuple(np.broadcast_to(np.asarray(edge, np.float64), (net.d,)) for edge in box)
    seen, points, steps, programs = set(), [], 0, 0
    for _, x in scored:
        key = np.concatenate(pattern_of(net, x)).tobytes()
        if programs >= max_programs or key in seen:
            continue
        seen.add(key)
        end, _, taken, used = climb(net, x, box, max_programs - programs)
        points.append(end)
        steps, programs = steps + taken, programs + used
    return np.asarray(points, np.float64).reshape(-1, net.d), {"facet_steps": steps, "facet_lps": programs}
