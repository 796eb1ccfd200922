"""``BoundResult`` and the argument checks and condition bookkeeping that every formula of ``lawrob.bounds`` shares."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lawrob import _checks
from lawrob.bounds._constants import _CONSTANT_NAMES, LN2, UNITS, VARIANTS


@dataclasses.dataclass(frozen=True, eq=False)
class BoundResult:
    """A bound (or another theorem-level quantity) with the theorem's verdict on its own conditions.

    ``value``: float for scalar arguments, else an array of the broadcast shape (0.0 where undefined).
    ``valid``: bool or bool array, True where every condition of the theorem holds. ``reason``: "" when all
    is valid, else each failing condition with its two sides (for arrays: how many points fail and the first).
    ``variant``: "paper" or "rigorous". ``theorem``: the source. ``scaling``: the constant-free
    sqrt(n d / p) or sqrt(n d / p_eff) beside a Lipschitz bound (None elsewhere). ``conditions``: condition ->
    bool (a read-only array for array arguments). ``details``: named intermediate numbers (the log term, the
    minimal n of the mixture condition).

    Parameters
    ----------
    value : float or numpy.ndarray
        The number.
    valid : bool or numpy.ndarray
        Where every condition of the theorem holds.
    reason : str
        The failing conditions ("" when all is valid).
    variant : str
        "paper" or "rigorous".
    theorem : str
        The source.
    scaling : float or numpy.ndarray, optional
        The constant-free scaling beside a Lipschitz bound.
    conditions : dict
        Condition -> bool (or read-only bool array).
    details : dict
        Named intermediate numbers.
    """

    value: float | np.ndarray
    valid: bool | np.ndarray
    reason: str
    variant: str
    theorem: str
    scaling: float | np.ndarray | None = None
    conditions: dict = dataclasses.field(default_factory=dict)
    details: dict = dataclasses.field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.value, dtype=dtype)


@dataclasses.dataclass(frozen=True)
class _Condition:
    """lhs op rhs (op "<" or "<="), required only where ``where`` is True (elsewhere a more basic condition fails)."""

    label: str
    lhs: np.ndarray | float
    op: str
    rhs: np.ndarray | float
    where: np.ndarray | bool = True

    def ok(self, shape) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            holds = np.less(self.lhs, self.rhs) if self.op == "<" else np.less_equal(self.lhs, self.rhs)
        return np.broadcast_to(holds | ~np.asarray(self.where, dtype=bool), shape)

    def failure(self, ok: np.ndarray) -> str:
        lhs, rhs = np.broadcast_to(self.lhs, ok.shape), np.broadcast_to(self.rhs, ok.shape)
        negated = ">=" if self.op == "<" else ">"
        if ok.ndim == 0:
            return f"{self.label} fails: {float(lhs):.4g} {negated} {float(rhs):.4g}"
        first = np.unravel_index(int(np.argmin(ok)), ok.shape)
        return (f"{self.label} fails at {int(ok.size - np.count_nonzero(ok))} of {ok.size} points (first at index "
                f"{tuple(int(i) for i in first)}: {float(lhs[first]):.4g} {negated} {float(rhs[first]):.4g})")


def _real(name: str, value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real number or an array of reals, got {type(value).__name__}"
                        + (f" of dtype {array.dtype}" if isinstance(value, np.ndarray) else f" {value!r}"))
    array = array.astype(np.float64)
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {int(np.sum(~np.isfinite(array)))} NaN/inf entries")
    return array


# A bound argument: a number, or an array (the arguments broadcast against each other).
RealArg = float | np.ndarray

_KINDS = {"count": (1.0, False, "a count >= 1"), "nonneg": (0.0, False, ">= 0"), "positive": (0.0, True, "> 0"),
          "real": (-math.inf, False, "real")}


def _inputs(**specs) -> tuple[list[np.ndarray], tuple[int, ...]]:
    """{name: (value, kind)} -> ([float64 arrays in order], broadcast shape).

    kind: "count" (>= 1), "nonneg" (>= 0), "positive" (> 0) or "real"; a violation raises naming the argument.
    A trailing "?" marks an optional argument, whose None stays None.
    """
    arrays: list = []  # float64 arrays (None for an optional argument left out)
    shape: tuple[int, ...] = ()
    for name, (value, kind) in specs.items():
        if value is None and kind.endswith("?"):
            arrays.append(None)
            continue
        kind = kind.rstrip("?")
        array = _real(name, value)
        low, strict, text = _KINDS[kind]
        bad = array <= low if strict else array < low
        if np.any(bad):
            raise ValueError(f"{name} must be {text}, got {array[bad].flat[0]:g}")
        try:
            shape = np.broadcast_shapes(shape, array.shape)
        except ValueError:
            raise ValueError(f"{name} has shape {array.shape}, which does not broadcast with the shape {shape} "
                             "of the arguments before it") from None
        arrays.append(array)
    return arrays, shape


def _out(x, shape, dtype=float):
    """A Python scalar for scalar arguments, else an array of the broadcast shape (copied only to broadcast)."""
    x = np.asarray(x, dtype=dtype)
    if shape == ():
        return dtype(x)
    return x if x.shape == shape else np.broadcast_to(x, shape).copy()


def _result(value, defined, conditions, shape, *, variant, theorem, scaling=None, details=None) -> BoundResult:
    """Assemble a BoundResult: 0.0 where undefined, validity = every condition (and definedness)."""
    defined = np.broadcast_to(np.asarray(defined, dtype=bool), shape)
    with np.errstate(invalid="ignore"):
        value = np.where(defined, value, 0.0)
    oks = [c.ok(shape) for c in conditions]
    valid = np.logical_and.reduce([defined, *oks]) if oks else defined
    reasons = [c.failure(ok) for c, ok in zip(conditions, oks) if not ok.all()]
    if not reasons and not defined.all():
        reasons.append(f"formula undefined at {int(defined.size - np.count_nonzero(defined))} of {defined.size} points")
    details = {key: _out(v, shape) for key, v in (details or {}).items()}
    return BoundResult(
        value=_out(value, shape), valid=_out(valid, shape, bool), reason="; ".join(reasons), variant=variant,
        theorem=theorem, scaling=None if scaling is None else _out(scaling, shape),
        conditions={c.label: _out(ok, shape, bool) for c, ok in zip(conditions, oks)}, details=details)


def _unit_interval(name: str, x, where=True) -> list[_Condition]:
    return [_Condition(f"0 < {name}", 0.0, "<", x, where), _Condition(f"{name} < 1", x, "<", 1.0, where)]


def _positive(name: str, x, what: str) -> _Condition:
    return _Condition(f"0 < {name} ({what})", 0.0, "<", x)


def _mixture(n, eps, delta, k, constant, where, eps_label="eps") -> tuple[_Condition, np.ndarray]:
    """constant k ln(8k/delta) <= n eps^2 (applied where eps, delta > 0), and the smallest n satisfying it."""
    with np.errstate(all="ignore"):
        lhs = constant * k * np.log(8 * k / delta)
        n_min = lhs / eps**2
    name = _CONSTANT_NAMES.get(constant, f"{constant:g}")
    return _Condition(f"mixture condition {name} k ln(8k/delta) <= n {eps_label}^2", lhs, "<=", n * eps**2, where), n_min


def _variant(variant: str):
    return _checks.one_of("variant", variant, VARIANTS)


def _check_unknowns(solve_for: str, given: dict) -> None:
    for name, value in given.items():
        if name == solve_for and value is not None:
            raise ValueError(f"{name} is the quantity solved for: leave it out (got {name}={value!r})")
        if name != solve_for and value is None:
            raise ValueError(f"{name} is required when solving for {solve_for}")


def _to_nats(info, units: str):
    return info * LN2 if _checks.one_of("units", units, UNITS) == "bits" else info
