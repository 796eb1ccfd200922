"""Exact l2 Lipschitz constant of a piecewise-linear MLP by enumerating its non-empty linear regions.

A ReLU-type network is affine on each activation region {x : every hidden unit keeps its sign}, so on a convex
domain Lip(f) = max over full-dimensional regions R of ||J_R||_2. The regions are enumerated depth-first over
the hidden units, layer by layer and unit by unit: a node is a polyhedron P (the path's sign constraints) with a
point x strictly inside it; unit j's pre-activation is affine on P, z_j(x) = a.x + c, and splits P into
{z_j >= 0} and {z_j <= 0}. A side is kept only if it has an interior point: x itself, a point pushed across
the hyperplane, or else the Chebyshev centre of the side found by an LP (max t s.t. G x + t <= h, rows of G of
unit norm, so t is the radius of a ball inside). Sides without interior are pruned with their whole subtree, so
most of the 2^h patterns are never visited (an LP decides a node only when no known point does).

Exactness, in float64: a side counts as non-empty when a point is found whose slack to every constraint,
recomputed from the constraints themselves, exceeds ``min_radius`` (1e-9 by default; HiGHS runs with
feasibility tolerances of 1e-10), so regions that contain no ball of that radius are ignored; a unit whose
pre-activation gradient on P has cancelled to below 1e-12 of its size without cancellation is taken as
constant on P (its contribution to any Jacobian is below that relative size). Degenerate arrangements need
no special case: a unit with a constant pre-activation (dead, fully masked, or cut off by the pattern above)
makes no split, a duplicate or parallel hyperplane leaves one side without interior, and units that cannot
reach the output are removed beforehand (``reduce``). The value is the largest ||J_R||_2 found; the witness is
re-checked on the network (``certify``) and must reproduce it to 1e-9.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Any

import numpy as np

from lawrob import _checks, nets
from lawrob.lipschitz._network import PIECEWISE_LINEAR
from lawrob.lipschitz._network import (
    Bound, Net, certify, check_domain, drop_unused_inputs, jacobian_norm, prepare, reduce, region_bound,
)

DEFAULT_MAX_REGIONS = 200_000
DEFAULT_MIN_RADIUS = 1e-9
SOLVERS = ("auto", "highspy", "scipy")
_LP_TOLERANCE = 1e-10
_CANCELLED = 1e-12  # |a| below this fraction of its no-cancellation size: the unit is constant on the region

EXACT_ACTIVATIONS = PIECEWISE_LINEAR  # the activations exact() handles (sweeps read this)


def exact(
    params: Any, mask: Any = None, *, model: nets.MLP | None = None, domain: Any = None,
    max_regions: int = DEFAULT_MAX_REGIONS, min_radius: float = DEFAULT_MIN_RADIUS, solver: str = "auto",
) -> Bound:
    """The exact l2 Lipschitz constant of a ReLU, leaky-ReLU or identity MLP, with a witness point.

    ``model``: the ``nets.MLP`` (for its activation; None means ReLU). ``domain``: None for all of R^d or a box
    ``(low, high)``; the constant over a box is the largest Jacobian norm among regions meeting its interior.
    ``max_regions``: refuse (ValueError stating the estimate) networks whose region-count bound
    (``region_bound``, after dropping units that cannot affect the output) exceeds it; the enumeration costs
    about 1 ms per region actually present (usually far fewer than the bound) on one core. ``min_radius``: regions
    that contain no ball of this radius (input units) are treated as empty. ``solver``: "highspy" (HiGHS
    driven incrementally, warm-started: about 50 us per LP), "scipy" (``scipy.optimize.linprog``'s HiGHS,
    about 1 ms per LP) or "auto" (highspy when installed, it comes with the "sdp" extra).

    The witness is the Chebyshev centre of the steepest region (or a better-centred known point), checked on
    the network itself: ``certify`` recomputes the Jacobian norm there and proves the point interior.
    ``details``: regions (leaves), lps, nodes, region_bound and the witness's radius in its region.

    Parameters
    ----------
    params : Any
        The parameters (a sequence of layer dicts).
    mask : Any, optional
        A 0/1 mask (None: dense).
    model : nets.MLP, optional
        The network (its activation).
    domain : tuple, optional
        A box (low, high), or None for R^d.
    max_regions : int
        The largest region-count bound enumerated.
    min_radius : float
        Regions containing no ball of this radius count as empty.
    solver : {"auto", "highspy", "scipy"}
        The LP solver.

    Returns
    -------
    Bound
        The exact constant (``kind="exact"``) with its witness.

    Raises
    ------
    ValueError
        If the activation is not piecewise linear, the region bound exceeds ``max_regions`` or an argument is
        invalid.
    """
    start = time.perf_counter()
    net = prepare(params, mask, model)
    if not net.piecewise_linear:
        raise ValueError(
            f"exact needs a piecewise-linear activation (relu, leaky_relu or identity); the model's is "
            f"{net.activation!r}: use lower() and upper() to bracket it"
        )
    box = check_domain(domain, net.d)
    max_regions = _checks.positive_int("max_regions", max_regions)
    min_radius = _checks.real_in("min_radius", min_radius, 0.0, np.inf, low_open=True, high_open=True)
    _checks.one_of("solver", solver, SOLVERS)
    reduced = reduce(net)
    small, used = drop_unused_inputs(reduced)
    estimate = region_bound(small)
    if estimate > max_regions:
        raise ValueError(
            f"exact: the network may have up to {estimate} linear regions (Serra et al. 2018 bound on the network "
            f"without dead units), more than max_regions={max_regions}; raise max_regions or bracket the "
            f"constant with lower() and upper()"
        )
    sub_box = None if box is None else (box[0][used], box[1][used])
    centre = np.zeros(net.d) if box is None else (box[0] + box[1]) / 2
    enumerator = _Enumerator(small, sub_box, min_radius, _lp_factory(solver))
    value, x_small, stats = enumerator.run()
    witness = centre.copy()
    witness[used] = x_small
    check, interior = certify(reduced, witness)
    if not interior or abs(check - value) > 1e-9 * max(1.0, value):
        raise RuntimeError(
            f"exact: the witness does not reproduce the value ({check} vs {value}, interior={interior}); "
            "this is a bug, please report it with the network"
        )
    details = dict(stats, region_bound=estimate, solver=enumerator.solver_name)
    return Bound(value, "exact", "regions", seconds=time.perf_counter() - start, witness=witness, details=details)


def _lp_factory(solver: str):
    if solver in ("auto", "highspy"):
        try:
            import highspy  # noqa: F401  (optional: installed with the "sdp" extra)

            return _HighsLP
        except ImportError:
            if solver == "highspy":
                raise ImportError("solver='highspy' needs the highspy package (pip install 'lawrob[sdp]')") from None
    return _ScipyLP


@contextlib.contextmanager
def _quiet_stdout():
    """Send the process's file descriptor 1 to /dev/null for the duration (C-level prints included). Not
    thread-safe on its own (the descriptor is the process's): callers hold ``_BANNER_LOCK``."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_BANNER_LOCK = threading.Lock()
_banner_printed = False


def _new_highs(highspy):
    """A ``highspy.Highs()``. HiGHS prints a banner on stdout when the process makes its first one, before
    options can be set, so that one is made with file descriptor 1 on /dev/null, once, under a lock: a sweep's
    measuring threads made them concurrently, and two interleaved redirections (the second saving the first's
    /dev/null as the descriptor to restore) left the process's stdout on /dev/null for good."""
    global _banner_printed
    with _BANNER_LOCK:
        if not _banner_printed:
            with _quiet_stdout():
                lp = highspy.Highs()
            _banner_printed = True
            return lp
    return highspy.Highs()


class _HighsLP:
    """max t s.t. G x + t <= h, t <= cap, over a stack of rows (push/pop), warm-started between solves."""

    name = "highspy"

    def __init__(self, d: int, cap: float):
        import highspy

        self._highspy = highspy
        self._lp = _new_highs(highspy)
        for option, value in (("output_flag", False), ("threads", 1), ("presolve", "off"),
                              ("primal_feasibility_tolerance", _LP_TOLERANCE),
                              ("dual_feasibility_tolerance", _LP_TOLERANCE)):
            self._lp.setOptionValue(option, value)
        inf = highspy.kHighsInf
        self._lp.addVars(d + 1, np.full(d + 1, -inf), np.append(np.full(d, inf), cap))
        self._lp.changeColCost(d, -1.0)
        self._index = np.arange(d + 1, dtype=np.int32)
        self._d = d

    def push(self, row: np.ndarray, rhs: float) -> None:
        self._lp.addRow(-self._highspy.kHighsInf, rhs, self._d + 1, self._index, np.append(row, 1.0))

    def pop(self) -> None:
        self._lp.deleteRows(1, np.array([self._lp.getNumRow() - 1], dtype=np.int32))

    def solve(self) -> np.ndarray:
        optimal = self._highspy.HighsModelStatus.kOptimal
        self._lp.run()
        if self._lp.getModelStatus() != optimal:  # a warm start gone wrong: solve again from scratch once
            self._lp.clearSolver()
            self._lp.run()
        if self._lp.getModelStatus() != optimal:
            raise RuntimeError(f"exact: HiGHS failed on a Chebyshev LP: {self._lp.getModelStatus()}")
        return np.asarray(self._lp.getSolution().col_value[: self._d])


class _ScipyLP:
    """The same LP as ``_HighsLP``, rebuilt and solved by ``scipy.optimize.linprog`` (HiGHS) at every call, with
    ``_HighsLP``'s settings. Presolve is off there too: the LP is feasible for every x (t is unbounded below), yet
    the HiGHS presolve of scipy 1.13 and 1.14 called some of these LPs infeasible (notebook 01 without highspy)."""

    name = "scipy"
    _rows: list
    _rhs: list

    def __init__(self, d: int, cap: float):
        self._rows, self._rhs, self._d, self._cap = [], [], d, cap

    def push(self, row: np.ndarray, rhs: float) -> None:
        self._rows.append(np.append(row, 1.0))
        self._rhs.append(rhs)

    def pop(self) -> None:
        self._rows.pop()
        self._rhs.pop()

    def solve(self) -> np.ndarray:
        from scipy.optimize import linprog

        result = linprog(
            np.append(np.zeros(self._d), -1.0), A_ub=np.array(self._rows) if self._rows else None,
            b_ub=np.array(self._rhs) if self._rows else None, bounds=[(None, None)] * self._d + [(None, self._cap)],
            method="highs", options={"presolve": False, "primal_feasibility_tolerance": _LP_TOLERANCE,
                                     "dual_feasibility_tolerance": _LP_TOLERANCE},
        )
        if result.status != 0:
            raise RuntimeError(f"exact: linprog failed on a Chebyshev LP: {result.message}")
        return result.x[: self._d]


class _Enumerator:
    """Depth-first enumeration of the regions of ``net`` (reduced, piecewise linear) inside an optional box."""

    best: tuple[float, Any, Any]  # value, interior point, (G, h) of the region; (-1.0, None, None) before the first

    def __init__(self, net: Net, box, min_radius: float, lp_class):
        self.net, self.min_radius = net, min_radius
        self.alpha = net.slopes[0]
        self.kinked = self.alpha != 1.0
        d = net.d
        rows = 2 * d * (box is not None) + sum(net.widths)
        self.G, self.h, self.n = np.empty((rows, d)), np.empty(rows), 0
        self.cap = 1.0 if box is None else float(np.min(box[1] - box[0]) / 2)
        self.lp = lp_class(d, self.cap)
        self.solver_name = lp_class.name
        self.x0 = np.zeros(d) if box is None else (box[0] + box[1]) / 2
        if box is not None:
            for i in range(d):
                self._push(np.eye(d)[i], box[1][i])
                self._push(-np.eye(d)[i], -box[0][i])
        self.best = (-1.0, None, None)  # value, interior point, (G, h) of the region
        self.stats = {"regions": 0, "lps": 0, "nodes": 0}

    def run(self) -> tuple[float, np.ndarray, dict]:
        net = self.net
        if net.depth == 1 or net.d == 0:
            value = jacobian_norm(net.weights[0]) if net.depth == 1 else 0.0
            self.stats["regions"] = 1
            return value, self.x0, self.stats
        self._layer(0, net.weights[0], net.biases[0], np.abs(net.weights[0]), 0, np.empty(net.widths[0]), self.x0)
        value, x, (G, h) = self.best
        x, radius = self._centre(x, G, h)
        return value, x, dict(self.stats, witness_radius=radius)

    def _push(self, row: np.ndarray, rhs: float) -> None:
        self.G[self.n], self.h[self.n] = row, rhs
        self.n += 1
        self.lp.push(row, rhs)

    def _pop(self) -> None:
        self.n -= 1
        self.lp.pop()

    def _slack(self, x: np.ndarray) -> float:
        """Radius of the largest ball around x inside the current polyhedron (inf without constraints)."""
        return float(np.min(self.h[: self.n] - self.G[: self.n] @ x)) if self.n else np.inf

    def _layer(self, k: int, A: np.ndarray, c: np.ndarray, A_abs: np.ndarray, j: int, slope: np.ndarray,
               x: np.ndarray) -> None:
        """Decide units j, j+1, ... of hidden layer k, whose pre-activations on the region are x @ A + c."""
        self.stats["nodes"] += 1
        width = A.shape[1]
        while j < width:
            a = A[:, j]
            norm = float(np.linalg.norm(a))
            if self.kinked and norm > _CANCELLED * float(np.linalg.norm(A_abs[:, j])):
                break
            slope[j] = 1.0 if c[j] > 0 or not self.kinked else self.alpha  # constant on the region: no split
            j += 1
        if j == width:
            w, b = self.net.weights[k + 1], self.net.biases[k + 1]
            A_next, c_next = (A * slope) @ w, (c * slope) @ w + b
            if k + 1 == self.net.depth - 1:
                self._leaf(A_next, x)
            else:
                self._layer(k + 1, A_next, c_next, (A_abs * np.abs(slope)) @ np.abs(w), 0,
                            np.empty(w.shape[1]), x)
            return
        normal, offset = a / norm, c[j] / norm
        distance = float(normal @ x + offset)
        for side in ((1.0, -1.0) if distance >= 0 else (-1.0, 1.0)):  # x's own side first: no LP there
            row, rhs = -side * normal, side * offset  # side * (normal . x + offset) >= 0
            inside = self._interior(x, distance, side, normal, row, rhs)
            if inside is None:
                continue
            slope[j] = 1.0 if side > 0 else self.alpha
            self._layer(k, A, c, A_abs, j + 1, slope, inside)
            self._pop()

    def _interior(self, x, distance, side, normal, row, rhs):
        """A point strictly inside P and on ``side`` of the hyperplane (row pushed), or None (row not pushed)."""
        reach = min(self._slack(x), self.cap)
        candidates = (x, x + (side * reach / 2 - distance) * normal)
        self._push(row, rhs)
        slacks = [self._slack(y) for y in candidates]
        best = int(np.argmax(slacks))
        if slacks[best] > self.min_radius:
            return candidates[best]
        self.stats["lps"] += 1
        y = self.lp.solve()
        if self._slack(y) > self.min_radius:
            return y
        self._pop()
        return None

    def _leaf(self, jac: np.ndarray, x: np.ndarray) -> None:
        self.stats["regions"] += 1
        value = jacobian_norm(jac)
        if value > self.best[0]:
            self.best = (value, x, (self.G[: self.n].copy(), self.h[: self.n].copy()))

    def _centre(self, x: np.ndarray, G: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, float]:
        """The better-centred of x and the Chebyshev centre of {G y <= h}, with its radius."""
        lp = type(self.lp)(self.net.d, self.cap)
        for row, rhs in zip(G, h):
            lp.push(row, rhs)
        self.stats["lps"] += 1
        y = lp.solve()

        def radius(p):
            return float(np.min(h - G @ p)) if len(h) else self.cap

        return (y, radius(y)) if radius(y) >= radius(x) else (x, radius(x))
