"""The bounds of Bubeck & Sellke (BS) and of Kumar, Luo & Sellke, "No Free Prune" (NFP), with every constant.

Pure math on numbers (NumPy/SciPy, float64; no JAX). Every array argument broadcasts against the others with
NumPy rules, so one call evaluates a whole grid. The formulas, their sources and the audit of the papers'
constants are in ``shared/spec/THEORY.md`` (section numbers below refer to it); ``lawrob.symbolic`` re-derives
every constant of this module with sympy (``verify_all()`` has a must-hold row per rigorous constant, so the
two cannot drift apart).

Variants. ``variant="paper"`` is each formula exactly as printed. ``variant="rigorous"`` is what the proof gives
once every slip listed in THEORY.md 2.2 and 3.6 is repaired; the repairs are listed in ``bubeck_sellke`` and
``no_free_prune``. Helpers without a known slip (Lemma 1, p_eff, the mask entropies) have one form.

Results. A theorem-level function returns a ``BoundResult``: ``value`` is the formula's number (a float for
scalar arguments, else an array of the broadcast shape), ``valid`` says whether the theorem's conditions hold
(eps, delta in (0, 1), the mixture condition, p_eff > 0, ...) and ``reason`` names each failing condition with
its two sides ("mixture condition 8^4 k ln(8k/delta) <= n eps^2 fails: 1.2e+05 > 3.4e+04"). A failing
condition never raises and never gives NaN: where the formula is not defined (a log of a non-positive number)
``value`` is 0.0 and ``valid`` False. Structurally wrong arguments raise: non-numbers and booleans
(``TypeError``), NaN/inf, empty arrays, counts below 1, negative sizes, non-broadcastable shapes (``ValueError``), each
naming the argument. Counts (n, d, p, k) need not be integers, so continuous grids and inverse forms work.

Pure identities (``h2``, ``log2_binomial``, ``imp_ratio``) return plain floats/arrays. ``BoundResult``
converts to its value (``float(r)``, ``np.asarray(r)``) for numeric use.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import numpy as np
from scipy import optimize, special

from lawrob import _checks

__all__ = [
    "A1_SQUARED", "BS", "BS_MIXTURE_MIN", "C0_FACTOR", "MIXTURE_CAMERA_READY", "MIXTURE_DEFAULT", "MIXTURE_SUBMISSION",
    "NFP", "NFP_FINITE_CONSTANT", "NFP_MIXTURE", "BSConstants", "BoundResult", "NFPConstants", "bs_finite_class",
    "bubeck_sellke", "bubeck_sellke_inverse", "deep_network_constants", "entropy_ceiling", "h2", "imp_ratio",
    "lemma1_information", "lemma1_threshold", "log2_binomial", "mixture_condition", "nfp_finite_probability",
    "no_free_prune", "no_free_prune_inverse", "p_eff",
]

VARIANTS = ("paper", "rigorous")
UNITS = ("bits", "nats")
LN2 = math.log(2.0)

# ----------------------------------------------------------------------------------------------- constants


class BSConstants(NamedTuple):
    """Constants of BS Theorem 3, L = eps / (prefactor sqrt(c)) sqrt(n d / (p ln(offset + cover W J/eps) + ln(4/delta))).

    ``thm2_exponent``: K in Theorem 2's term 2 exp(log|F| - eps^2 n d / (K c L^2)); ``net_divisor``: the proof's
    eps/(net_divisor J)-net, whose size is <= (1 + 2 net_divisor W J/eps)^p.
    """

    prefactor: int
    thm2_exponent: int
    net_divisor: int
    cover_offset: int
    cover: int


class NFPConstants(NamedTuple):
    """Constants of NFP Theorem 4, L = accuracy eps / (prefactor sqrt(c)) sqrt(n d delta / (I + (delta/2) ln(4/delta))).

    ``accuracy``: the fraction of eps left after the net rounding (1 as printed); ``truncation_bits``: the
    information added by the Lipschitz truncation; ``net_divisor``: the proof's eps/(net_divisor J)-net;
    ``eps_label``: how the accuracy reads in a condition.
    """

    prefactor: int
    accuracy: float
    truncation_bits: int
    net_divisor: int
    eps_label: str


# BS Theorem 3 as printed [BS-sub]: 2^9, Theorem 2 with 8^4, an eps/(6J)-net covered by (60 W J/eps)^p.
# Rigorous (derived in lawrob.symbolic): Theorem 2 needs 8^2 * 144 = 9216 (2-subgaussian convention and Lemma
# 2.1's eps/4); an internal eps/(8J)-net of {Lip <= L} (size <= (1 + 16 W J/eps)^p, MSE moves by <= eps/2) and
# Theorem 2 at eps/2 with Lipschitz bound L give the prefactor 2 sqrt(9216) = 192.
BS = {"paper": BSConstants(prefactor=2**9, thm2_exponent=8**4, net_divisor=6, cover_offset=0, cover=60),
      "rigorous": BSConstants(prefactor=192, thm2_exponent=9216, net_divisor=8, cover_offset=1, cover=16)}
# NFP Theorem 4 as printed [NFP-v1]: 96 a1 sqrt(2) = 1152 with a1^2 = 72. Rigorous: an eps/(30J)-net, the
# finest whose covering number (1 + 60 W J/eps)^||m|| is the printed one, leaves accuracy 1 - 4/30 = 13/15.
NFP = {"paper": NFPConstants(prefactor=1152, accuracy=1.0, truncation_bits=0, net_divisor=8, eps_label="eps"),
       "rigorous": NFPConstants(prefactor=1152, accuracy=13 / 15, truncation_bits=1, net_divisor=30,
                                eps_label="(13 eps/15)")}

A1_SQUARED = 72  # NFP Lemma 1 (Xu & Raginsky 2017, Thm 3): a1^2 = 8 * 9 (variance proxy 9C of a C-subgaussian)
C0_FACTOR = 144  # NFP B.1.3: C0 = 144 c L^2 / (n d) = 18 (Prop 1.2) * 2 (isoperimetry) * 4 (|z| <= 2)
NFP_FINITE_CONSTANT = 2**7  # NFP Thm 3 (finite): the smallest admissible constant, so 2^7 a1^2 = 9216
HOEFFDING = 8**3  # the first terms' exp(-n eps^2 / (8^3 k)) in both papers
MIXTURE_SUBMISSION = 8**4  # BS Thm 3 condition 8^4 k ln(8k/delta) <= n eps^2 as printed in the submission
MIXTURE_CAMERA_READY = 10**4  # the likely camera-ready form 10^4 k ln(8k/delta) <= n eps^2 (unconfirmed)
MIXTURE_DEFAULT = MIXTURE_SUBMISSION
BS_MIXTURE_MIN = 4 * 8**3  # 2048: Theorem 2 at eps/2 needs only this (THEORY.md 2.2; lawrob.symbolic)
NFP_MIXTURE = 8**3  # NFP Thm 4: 8^3 k ln(8k/delta) <= n eps^2
NFP_COVER = 60  # p_eff's log2(1 + 60 W J / eps)

_CONSTANT_NAMES = {8**3: "8^3", 8**4: "8^4", 10**4: "10^4"}


# ----------------------------------------------------------------------------------------------- results


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


_KINDS = {"count": (1.0, False, "a count >= 1"), "nonneg": (0.0, False, ">= 0"), "positive": (0.0, True, "> 0"),
          "real": (-math.inf, False, "real")}


def _inputs(**specs):
    """{name: (value, kind)} -> ([float64 arrays in order], broadcast shape).

    kind: "count" (>= 1), "nonneg" (>= 0), "positive" (> 0) or "real"; a violation raises naming the argument.
    A trailing "?" marks an optional argument, whose None stays None.
    """
    arrays, shape = [], ()
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


# ----------------------------------------------------------------------------------------------- Bubeck-Sellke


def bs_finite_class(n, d, log_card, eps, L, c=1.0, k=1, variant: str = "paper") -> BoundResult:
    """BS Theorem 2 (finite class): a bound on P(some f in F with Lip(f) <= L fits below the noise level).

        P(exists f in F: (1/n) sum (y_i - f(x_i))^2 <= sigma^2 - eps and Lip(f) <= L)
            <= 4k exp(-n eps^2 / (8^3 k)) + 2 exp(log|F| - eps^2 n d / (K c L^2))

    (THEORY.md 2.1; natural log, ``log_card`` = ln|F| >= 0). K = 8^4 as printed. ``variant="rigorous"``:
    K = 9216 = 8^2 * 144. Under the stated convention sqrt(d/c)(f - E f)/L is 2-subgaussian (BS write 1),
    times |z| <= 2 it is 8-subgaussian and after Prop 1.2 144-subgaussian; Lemma 2.1 only yields <F, Z> >= eps/4
    (not eps/3), split as eps/8 for the centred part and eps/8 for the component means (whose Hoeffding term
    is then exactly 2k exp(-n eps^2 / (512 k))): 64 * 144 = 9216 (the printed 8^4 = 4096 and the eps/6-only
    repair 5184 are both too small; 10^4 would do). Valid for eps > 0; the value may exceed 1 (vacuous).
    """
    const = BS[_variant(variant)]
    (n, d, log_card, eps, L, c, k), shape = _inputs(
        n=(n, "count"), d=(d, "count"), log_card=(log_card, "nonneg"), eps=(eps, "real"), L=(L, "positive"),
        c=(c, "positive"), k=(k, "count"))
    with np.errstate(all="ignore"):
        value = (4 * k * np.exp(-n * eps**2 / (HOEFFDING * k))
                 + 2 * np.exp(log_card - eps**2 * n * d / (const.thm2_exponent * c * L**2)))
    return _result(value, np.ones(shape, bool), [_Condition("0 < eps", 0.0, "<", eps)], shape, variant=variant,
                   theorem="BS Theorem 2 (finite class)")


def mixture_condition(n, eps, delta, k=1, constant=MIXTURE_DEFAULT) -> BoundResult:
    """The mixture (k-)condition  constant * k ln(8k/delta) <= n eps^2,  with eps, delta in (0, 1).

    ``value``: the smallest n that satisfies it, constant k ln(8k/delta) / eps^2; ``valid``: n reaches it.
    Constants: ``MIXTURE_SUBMISSION`` = 8^4 (BS Thm 3 as printed in the submission, the default),
    ``MIXTURE_CAMERA_READY`` = 10^4 (likely camera-ready), ``NFP_MIXTURE`` = 8^3 (NFP Thm 4). BS's proof needs
    only ``BS_MIXTURE_MIN`` = 2048 (THEORY.md 2.2), so 8^4 and 10^4 are both sufficient.
    """
    constant = _checks.real_in("constant", constant, 0.0, math.inf, low_open=True, high_open=True)
    (n, eps, delta, k), shape = _inputs(n=(n, "count"), eps=(eps, "real"), delta=(delta, "real"), k=(k, "count"))
    condition, n_min = _mixture(n, eps, delta, k, constant, (eps > 0) & (delta > 0))
    return _result(n_min, (eps > 0) & (delta > 0), [*_unit_interval("eps", eps), *_unit_interval("delta", delta),
                                                     condition], shape, variant="paper", theorem="mixture condition")


def _bs_core(n, d, p, eps, delta, W, J, c, const: BSConstants):
    """(value, defined, ln-cover term, denominator) of BS Theorem 3 for the given constants."""
    with np.errstate(all="ignore"):
        cover = const.cover_offset + const.cover * W * J / eps
        log_cover = np.log(cover)
        denominator = p * log_cover + np.log(4 / delta)
        value = eps / (const.prefactor * np.sqrt(c)) * np.sqrt(n * d / denominator)
    defined = (eps > 0) & (delta > 0) & (cover > 0) & (denominator > 0)
    return value, defined, log_cover, denominator


def _bs_conditions(n, eps, delta, W, J, k, sigma2, const: BSConstants, mixture_constant, solved=True):
    """BS Theorem 3's conditions; those involving a solved-for n or eps apply only where it was ``solved``."""
    basic = (eps > 0) & (delta > 0) & solved
    mixture, n_min = _mixture(n, eps, delta, k, mixture_constant, basic)
    conditions = [*_unit_interval("eps", eps, solved), *_unit_interval("delta", delta), mixture]
    if const.cover_offset == 0:  # the printed (cover W J/eps)^p must cover (1 + 2 net_divisor W J/eps)^p
        gap = const.cover - 2 * const.net_divisor
        with np.errstate(all="ignore"):
            ratio = W * J / eps
        conditions.append(_Condition(f"covering condition 1/{gap} <= W J/eps (so (1 + {2 * const.net_divisor} W J/eps)^p "
                                     f"<= ({const.cover} W J/eps)^p)", 1.0 / gap, "<=", ratio, (eps > 0) & solved))
    if sigma2 is not None:
        conditions.append(_positive("sigma2", sigma2, "noise level"))
    return conditions, n_min


def _mixture_constant(value) -> float:
    return _checks.real_in("mixture_constant", value, BS_MIXTURE_MIN, math.inf, high_open=True)


def bubeck_sellke(n, d, p, eps, delta, W, J, c=1.0, k=1, variant: str = "paper", *,
                  mixture_constant=MIXTURE_DEFAULT, sigma2=None) -> BoundResult:
    """BS Theorem 3, the law of robustness: with probability >= 1 - delta, every f in F with
    (1/n) sum (f(x_i) - y_i)^2 <= sigma^2 - eps has

        Lip(f) >= eps / (2^9 sqrt(c)) * sqrt(n d / (p ln(60 W J / eps) + ln(4/delta)))     (paper)

    for a class F = {f_w : w in R^p, diam <= W, ||f_w1 - f_w2||_inf <= J ||w1 - w2||} on a mixture of k
    c-isoperimetric measures, eps, delta in (0, 1) and the mixture condition
    ``mixture_constant`` k ln(8k/delta) <= n eps^2 (THEORY.md 2.1, 6; natural logs).

    The default mixture constant is 8^4, the printed (confirmed) submission form, for both variants: lawrob.symbolic
    derives that the proof needs only 2048 k ln(8k/delta) <= n eps^2 (Theorem 2 applied at eps/2), so 8^4 is
    sufficient and not a slip; 10^4 (``MIXTURE_CAMERA_READY``, likely camera-ready) is stricter and implies it.
    Constants below 2048 raise. ``sigma2``, when given, is checked > 0 (assumption sigma^2 > 0).

    ``variant="paper"`` also requires W J/eps >= 1/48, where the printed eps/(6J)-net's size (1 + 12 W J/eps)^p is
    below the printed (60 W J/eps)^p (BS do not state it; below it the log can vanish). ``variant="rigorous"``
    repairs the proof (THEORY.md 2.2; every constant derived in lawrob.symbolic):

        Lip(f) >= eps / (192 sqrt(c)) * sqrt(n d / (p ln(1 + 16 W J / eps) + ln(4/delta)))

    1. Theorem 2's exponent 8^4 -> 9216 (2-subgaussian convention, Lemma 2.1's eps/4; see ``bs_finite_class``).
    2. Net rounding: an eps/(6J)-net moves the MSE by up to 4 eps/6 = 2 eps/3, not eps/2. An internal
       eps/(8J)-net of W_L = {w : Lip(f_w) <= L} moves it by <= eps/2 (|(y-f)^2 - (y-g)^2| <= 4 ||f - g||_inf)
       and has <= (1 + 16 W J/eps)^p points (packing in a ball of radius W), needing no W J/eps condition.
    3. Its points lie in W_L, so Theorem 2 applies with Lipschitz bound L (the printed proof uses 2L) at
       accuracy eps/2: 2 exp(p ln(1 + 16WJ/eps) - eps^2 n d / (4 * 9216 c L^2)) <= delta/2 gives 2 sqrt(9216) = 192,
       and 4k exp(-n eps^2 / (2048 k)) <= delta/2 is the mixture condition with 2048.
    lawrob.symbolic also shows that the printed 2^9 survives the repaired Theorem 2 with an eps/(8J)-net
    (384 <= 512 even with 2L) once W J/eps >= 1/44, so the paper value is a valid, looser bound there.

    ``scaling``: the constant-free sqrt(n d / p). ``details``: ``log_cover``, ``denominator``,
    ``mixture_n_min`` (the smallest n meeting the mixture condition).
    """
    const = BS[_variant(variant)]
    mixture_constant = _mixture_constant(mixture_constant)
    (n, d, p, eps, delta, W, J, c, k, sigma2), shape = _inputs(
        n=(n, "count"), d=(d, "count"), p=(p, "count"), eps=(eps, "real"), delta=(delta, "real"), W=(W, "nonneg"),
        J=(J, "nonneg"), c=(c, "positive"), k=(k, "count"), sigma2=(sigma2, "real?"))
    value, defined, log_cover, denominator = _bs_core(n, d, p, eps, delta, W, J, c, const)
    conditions, n_min = _bs_conditions(n, eps, delta, W, J, k, sigma2, const, mixture_constant)
    return _result(value, defined, conditions, shape, variant=variant, theorem="BS Theorem 3",
                   scaling=np.sqrt(n * d / p),
                   details={"log_cover": np.where(defined, log_cover, 0.0),
                            "denominator": np.where(defined, denominator, 0.0),
                            "mixture_n_min": np.where(defined, n_min, 0.0)})


def _solve_increasing(fn, target: float, low: float, high: float) -> tuple[float, float]:
    """(x, fn(high)): the x in [low, high] with fn(x) = target for an increasing fn, by brentq; x = NaN if
    fn(high) < target (not reached)."""
    at_high = fn(high)
    if at_high < target:
        return math.nan, at_high
    if fn(low) >= target:
        return low, at_high
    return optimize.brentq(lambda x: fn(x) - target, low, high, xtol=1e-300, rtol=4 * np.finfo(float).eps), at_high


def _check_unknowns(solve_for: str, given: dict) -> None:
    for name, value in given.items():
        if name == solve_for and value is not None:
            raise ValueError(f"{name} is the quantity solved for: leave it out (got {name}={value!r})")
        if name != solve_for and value is None:
            raise ValueError(f"{name} is required when solving for {solve_for}")


_EPS_LOW = 1e-300  # the left end of the eps search: every bound here is ~0 there


def _bs_at_eps(eps, *, n, d, p, delta, W, J, c, const) -> float:
    value, defined, _, _ = _bs_core(n, d, p, eps, delta, W, J, c, const)
    return float(value) if defined else 0.0


def _bs_solve_eps(L, n, d, p, delta, W, J, c, const: BSConstants, shape):
    """Elementwise brentq for the eps at which BS Theorem 3's bound equals L; (eps or NaN, bound at the range's end)."""
    eps, at_high = np.empty(shape), np.empty(shape)
    arrays = np.broadcast_arrays(L, n, d, p, delta, W, J, c)
    for index in np.ndindex(shape):
        L_i, n_i, d_i, p_i, delta_i, W_i, J_i, c_i = (float(a[index]) for a in arrays)
        high = 1.0 if const.cover_offset else min(1.0, (const.cover - 2 * const.net_divisor) * W_i * J_i)
        bound = functools.partial(_bs_at_eps, n=n_i, d=d_i, p=p_i, delta=delta_i, W=W_i, J=J_i, c=c_i, const=const)
        if high > 0:
            eps[index], at_high[index] = _solve_increasing(bound, L_i, min(_EPS_LOW, high), high)
        else:
            eps[index], at_high[index] = math.nan, 0.0
    return eps, at_high


def bubeck_sellke_inverse(L, solve_for: str, *, n=None, d, p=None, eps=None, delta, W, J, c=1.0, k=1,
                          variant: str = "paper", mixture_constant=MIXTURE_DEFAULT, sigma2=None) -> BoundResult:
    """Where BS Theorem 3's bound (``bubeck_sellke``, same variant) equals a target Lipschitz constant L.

    ``solve_for="p"``: the smallest p at which an L-Lipschitz fit below the noise level is not excluded, i.e.
    bound(p) <= L. The bound decreases in p, so p* = (eps^2 n d / (K^2 c L^2) - ln(4/delta)) / ln(cover term) in
    closed form (K = 2^9 or 192); the value is max(p*, 0). ``solve_for="n"``: the n at which the bound reaches
    L (it grows like sqrt(n)): n* = K^2 c L^2 (p ln(cover term) + ln(4/delta)) / (eps^2 d), closed form.
    ``solve_for="eps"``: the eps at which the bound reaches L, by scipy.optimize.brentq (one scalar solve per
    point): the bound is strictly increasing in eps (eps grows and ln(cover term) shrinks) and -> 0 as eps -> 0.
    The range searched is (0, 1) (paper: (0, min(1, 48 W J)), where the covering condition holds); if the bound
    stays below L there, the value is 0.0 and valid False. ``valid``: the theorem's conditions (eps, delta,
    mixture, covering, sigma2) at the solution.
    """
    const = BS[_variant(variant)]
    mixture_constant = _mixture_constant(mixture_constant)
    _checks.one_of("solve_for", solve_for, ("p", "n", "eps"))
    _check_unknowns(solve_for, {"n": n, "p": p, "eps": eps})
    (L, n, d, p, eps, delta, W, J, c, k, sigma2), shape = _inputs(
        L=(L, "positive"), n=(n, "count?"), d=(d, "count"), p=(p, "count?"), eps=(eps, "real?"), delta=(delta, "real"),
        W=(W, "nonneg"), J=(J, "nonneg"), c=(c, "positive"), k=(k, "count"), sigma2=(sigma2, "real?"))
    K2c = const.prefactor**2 * c * L**2
    extra = []
    if solve_for == "eps":
        eps, at_high = _bs_solve_eps(L, n, d, p, delta, W, J, c, const, shape)
        extra.append(_Condition("the bound reaches L within the theorem's eps range: L <= bound at its end", L, "<=",
                                at_high, delta > 0))
    with np.errstate(all="ignore"):
        log_cover = np.log(const.cover_offset + const.cover * W * J / eps)
        log_delta = np.log(4 / delta)
        if solve_for == "p":
            solution = np.maximum((eps**2 * n * d / K2c - log_delta) / log_cover, 0.0)
            defined = (eps > 0) & (delta > 0) & (log_cover > 0)
        elif solve_for == "n":
            denominator = p * log_cover + log_delta
            solution = n = K2c * denominator / (eps**2 * d)
            defined = (eps > 0) & (delta > 0) & (denominator > 0)
        else:
            solution = eps
            defined = np.isfinite(eps) & (delta > 0)
    solved = defined if solve_for != "p" else True
    conditions, _ = _bs_conditions(n, eps, delta, W, J, k, sigma2, const, mixture_constant, solved)
    return _result(solution, defined, [*conditions, *extra], shape, variant=variant,
                   theorem=f"BS Theorem 3, solved for {solve_for}")


def deep_network_constants(R, box, p, D, Q=1, variant: str = "paper") -> BoundResult:
    """BS Lemma 3.1 (deep networks): the constant J of the parametrization w -> f_w, ``value``.

    For a depth-D network with 1-Lipschitz activations, weights w in [-box, box]^p (box >= 1; BS call it W),
    inputs ||x|| <= R and at most Q matrix entries tied to one parameter, B(w) = max_i prod_{j != i} ||W_j||_op
    <= B_bar = (box sqrt(p Q))^D and |f_w1(x) - f_w2(x)| <= B_bar Q R sqrt(p) ||w1 - w2||.
    ``variant="paper"``: the printed simplification J = R (box Q p)^D. lawrob.symbolic shows that it covers
    B_bar Q R sqrt(p) iff D >= 2 or Q = 1 (for D = 1 and Q > 1 it is too small by sqrt(Q)); that is checked as a
    condition. ``variant="rigorous"``: J = B_bar Q R sqrt(p) = R Q sqrt(p) (box sqrt(p Q))^D, always valid and
    never larger for D >= 2. ``details``: ``B_bar``, ``diameter`` = 2 box sqrt(p) of the box (the W of Theorem 3),
    ``log_J``. Values overflow to inf (never NaN) for huge networks; ``log_J`` stays finite.
    """
    _variant(variant)
    (R, box, p, D, Q), shape = _inputs(R=(R, "positive"), box=(box, "positive"), p=(p, "count"), D=(D, "count"),
                                       Q=(Q, "count"))
    log_B = D * np.log(box * np.sqrt(p * Q))
    log_lemma = log_B + np.log(Q * R * np.sqrt(p))
    log_printed = np.log(R) + D * np.log(box * Q * p)
    log_J = log_printed if variant == "paper" else log_lemma
    conditions = [_Condition("1 <= box (Lemma 3.1's W >= 1)", 1.0, "<=", box)]
    if variant == "paper":
        conditions.append(_Condition("J = R (box Q p)^D covers B_bar Q R sqrt(p) (D >= 2 or Q = 1): ln B_bar Q R sqrt(p) "
                                     "<= ln J", log_lemma, "<=", log_printed * (1 + 1e-12)))
    with np.errstate(over="ignore"):
        B_bar = (box * np.sqrt(p * Q)) ** D
        J = R * (box * Q * p) ** D if variant == "paper" else B_bar * Q * R * np.sqrt(p)
    return _result(J, np.ones(shape, bool), conditions, shape, variant=variant, theorem="BS Lemma 3.1",
                   details={"B_bar": B_bar, "diameter": 2 * box * np.sqrt(p), "log_J": log_J})


# ----------------------------------------------------------------------------------------------- No Free Prune


def _to_nats(info, units: str):
    return info * LN2 if _checks.one_of("units", units, UNITS) == "bits" else info


def lemma1_threshold(info, C, delta, units: str = "nats") -> BoundResult:
    """NFP Lemma 1 (Xu & Raginsky 2017, Thm 3): for a process of mean-zero C-subgaussian X_t and any T-valued W,

        P(|X_W| >= a1 sqrt(C (I/delta + ln(2/delta)))) <= delta,   a1^2 = 72,

    with I = I({X_t}; W) in nats (``units="bits"`` converts it). ``value``: the threshold; valid for delta in
    (0, 1). THEORY.md 3.2. For the noise-correlation process C = C0 = 144 c L^2 / (n d).
    """
    (info, C, delta), shape = _inputs(info=(info, "nonneg"), C=(C, "nonneg"), delta=(delta, "real"))
    info = _to_nats(info, units)
    with np.errstate(all="ignore"):
        inner = info / delta + np.log(2 / delta)
        value = np.sqrt(A1_SQUARED * C * inner)
    return _result(value, (delta > 0) & (inner >= 0), _unit_interval("delta", delta), shape, variant="paper",
                   theorem="NFP Lemma 1")


def lemma1_information(alpha, delta, C, units: str = "nats") -> BoundResult:
    """The inversion of NFP Lemma 1 (THEORY.md 3.5): if P(|X_W| >= alpha) > delta then

        I({X_t}; W) > delta (alpha^2 / (a1^2 C) - ln(2/delta)),   a1^2 = 72,

    a certified lower bound on the information (``value``, in ``units``; it may be negative, i.e. say nothing).
    For an observed noise correlation, C = C0 = 144 c L^2 / (n d). Valid for delta in (0, 1).
    """
    (alpha, delta, C), shape = _inputs(alpha=(alpha, "nonneg"), delta=(delta, "real"), C=(C, "positive"))
    with np.errstate(all="ignore"):
        nats = delta * (alpha**2 / (A1_SQUARED * C) - np.log(2 / delta))
    value = nats / LN2 if _checks.one_of("units", units, UNITS) == "bits" else nats
    return _result(value, delta > 0, _unit_interval("delta", delta), shape, variant="paper",
                   theorem="NFP Lemma 1 (inverted)")


def nfp_finite_probability(n, d, info, eps, L, c=1.0, k=1, variant: str = "paper", units: str = "bits") -> BoundResult:
    """NFP Theorem 3 (finite setting): for a finite class of L-Lipschitz functions and any learning algorithm W,

        P((1/n) sum (y_i - f^W(x_i))^2 <= sigma^2 - eps)
            <= (2k+2) exp(-n eps^2 / (8^3 k)) + max(2^7 a1^2 C0 I / eps^2, 2 exp(-eps^2 / (2^7 a1^2 C0)))

    with C0 = 144 c L^2 / (n d), a1^2 = 72 (2^7 a1^2 = 9216; 2^7 is the smallest admissible constant) and
    I = ``info`` >= I({X_t}; W), e.g. p_eff = I(m_W; D) + E log2 N_m (THEORY.md 3.3). ``variant="paper"`` plugs
    ``info`` in as given (a value in bits over-states the nats of Lemma 1, so this is valid but loose);
    ``variant="rigorous"`` converts it to nats (x ln 2 when ``units="bits"``). Valid for eps > 0; the value
    may exceed 1 (vacuous).
    """
    _variant(variant)
    (n, d, info, eps, L, c, k), shape = _inputs(
        n=(n, "count"), d=(d, "count"), info=(info, "nonneg"), eps=(eps, "real"), L=(L, "positive"),
        c=(c, "positive"), k=(k, "count"))
    info = _to_nats(info, units) if variant == "rigorous" else info
    scale = NFP_FINITE_CONSTANT * A1_SQUARED * C0_FACTOR * c * L**2 / (n * d)  # 2^7 a1^2 C0
    with np.errstate(all="ignore"):
        value = ((2 * k + 2) * np.exp(-n * eps**2 / (HOEFFDING * k))
                 + np.maximum(scale * info / eps**2, 2 * np.exp(-eps**2 / scale)))
    return _result(value, eps != 0, [_Condition("0 < eps", 0.0, "<", eps)], shape, variant=variant,
                   theorem="NFP Theorem 3 (finite setting)")


def p_eff(info, active, W, J, eps, units: str = "bits") -> BoundResult:
    """NFP's effective parameter count (Theorem 4; THEORY.md 1.4):

        p_eff = I(m_W; D) + E||m||_1 log2(1 + 60 W J / eps)     (bits; ``units="nats"``: ln instead of log2)

    ``info``: I(m_W; D) (or an upper bound on it) in ``units``; ``active``: E||m||_1, the mean number of kept
    weights. The count term is log2 in the paper; the information lemma it feeds is in nats, and a value in bits
    is >= the one in nats, so bits are a valid (looser) choice. ``no_free_prune`` takes the units along.
    Defined for eps > 0; valid for eps in (0, 1), the theorem's range. ``details``: ``count_term``.
    """
    log = np.log2 if _checks.one_of("units", units, UNITS) == "bits" else np.log
    (info, active, W, J, eps), shape = _inputs(info=(info, "nonneg"), active=(active, "nonneg"), W=(W, "nonneg"),
                                               J=(J, "nonneg"), eps=(eps, "real"))
    with np.errstate(all="ignore"):
        count_term = active * log(1 + NFP_COVER * W * J / eps)
    defined = eps > 0
    return _result(info + count_term, defined, _unit_interval("eps", eps), shape, variant="paper",
                   theorem="NFP p_eff (Theorem 4)", details={"count_term": np.where(defined, count_term, 0.0)})


def _nfp_information(p_eff_value, const: NFPConstants, units: str):
    """The nats of information the proof bounds by p_eff (paper: p_eff itself, in whatever units it comes)."""
    if const.truncation_bits == 0:
        return p_eff_value
    if units == "bits":
        return (p_eff_value + const.truncation_bits) * LN2
    return p_eff_value + const.truncation_bits * LN2


def _nfp_p_eff_of(information, const: NFPConstants, units: str):
    """Inverse of ``_nfp_information``."""
    if const.truncation_bits == 0:
        return information
    if units == "bits":
        return information / LN2 - const.truncation_bits
    return information - const.truncation_bits * LN2


def _nfp_conditions(n, eps, delta, p_eff_value, k, sigma2, const: NFPConstants, solved=True):
    """NFP Theorem 4's conditions; those involving a solved-for n or eps apply only where it was ``solved``."""
    mixture, n_min = _mixture(n, const.accuracy * eps, delta, k, NFP_MIXTURE, (eps > 0) & (delta > 0) & solved,
                              eps_label=const.eps_label)
    conditions = [*_unit_interval("eps", eps, solved), *_unit_interval("delta", delta), mixture]
    if p_eff_value is not None:
        conditions.append(_positive("p_eff", p_eff_value, "effective parameter count"))
    if sigma2 is not None:
        conditions.append(_positive("sigma2", sigma2, "noise level, assumption A2"))
    return conditions, n_min


def no_free_prune(n, d, p_eff, eps, delta, c=1.0, k=1, variant: str = "paper", *, units: str = "bits",
                  sigma2=None) -> BoundResult:
    """NFP Theorem 4 (v1), the sparse law of robustness: for any learning algorithm W with output f^W, with
    probability >= 1 - delta over the data, (1/n) sum (f^W(x_i) - y_i)^2 <= sigma^2 - eps implies

        Lip(f^W) >= eps / (96 a1 sqrt(2c)) sqrt(n d delta / (p_eff + (delta/2) ln(4/delta)))
                  = eps / (1152 sqrt(c)) sqrt(n d delta / (p_eff + (delta/2) ln(4/delta)))      (paper)

    with a1 = sqrt(72), p_eff = I(m_W; D) + E||m||_1 log2(1 + 60 W J / eps) (see ``p_eff``), eps, delta in (0, 1),
    a mixture of k c-isoperimetric measures and 8^3 k ln(8k/delta) <= n eps^2 (THEORY.md 3.4, 6). The bound solves
    a1 sqrt(C0 (2 p_eff/delta + ln(4/delta))) = eps/8 exactly, C0 = 144 c L^2 / (n d). ``units``: those of
    ``p_eff`` ("bits" as in the paper); the paper variant plugs the number in as given, so a p_eff in nats gives
    the sharper bound THEORY.md 1.4 recommends.

    ``variant="rigorous"`` repairs THEORY.md 3.6 (constants derived in lawrob.symbolic):

        Lip(f^W) >= (13 eps/15) / (1152 sqrt(c)) sqrt(n d delta / (I + (delta/2) ln(4/delta))),
        I = ln 2 (p_eff + 1) for p_eff in bits,  I = p_eff + ln 2 for p_eff in nats,
        mixture condition 8^3 k ln(8k/delta) <= n (13 eps/15)^2.

    1. eps bookkeeping (3.6.1): rounding to an eps/(8J)-net moves the MSE by up to eps/2, so the rounded output only
       fits at sigma^2 - eps/2 while Lemma 6 is applied at eps. Repair: an eps/(30J)-net, the finest whose covering
       number (1 + 2 * 30 W J/eps)^||m|| is exactly the printed (1 + 60 W J/eps)^||m|| (so p_eff is unchanged); it
       moves the MSE by <= 4 eps/30, leaving accuracy eps' = 13 eps/15 for Lemma 6, whose eps' replaces eps in the
       prefactor and the mixture condition. (An eps/(16J)-net would leave 3 eps/4; "eps -> 2 eps/3" in THEORY.md
       is the eps/(12J) case.)
    2. Lipschitz truncation (3.6.2): the truncated output's mask also depends on whether Lip <= L, so
       I(m_{W_L}; D) <= I(m_W; D) + 1 bit. This assumes the fixed replacement f_L can be taken with a mask no larger
       than any other (e.g. the all-pruned, constant network, which lawrob's MLPs contain), so E||m||_1 does not grow.
    3. Units (3.6.3): Lemma 1's information is in nats; I is the exact conversion of p_eff (+ 1 bit) to nats.
    4. The sign slip "s(delta/2) >= eps/8" for "<=" (3.6.4) does not change a number.

    ``scaling``: the constant-free sqrt(n d / p_eff) (0.0 where p_eff <= 0). ``details``: ``information_nats``
    (the I used; paper: p_eff as given), ``accuracy_eps``, ``mixture_n_min``.
    """
    const = NFP[_variant(variant)]
    _checks.one_of("units", units, UNITS)
    (n, d, p_eff_value, eps, delta, c, k, sigma2), shape = _inputs(
        n=(n, "count"), d=(d, "count"), p_eff=(p_eff, "real"), eps=(eps, "real"), delta=(delta, "real"),
        c=(c, "positive"), k=(k, "count"), sigma2=(sigma2, "real?"))
    information = _nfp_information(p_eff_value, const, units)
    with np.errstate(all="ignore"):
        denominator = information + delta / 2 * np.log(4 / delta)
        value = const.accuracy * eps / (const.prefactor * np.sqrt(c)) * np.sqrt(n * d * delta / denominator)
        scaling = np.where(p_eff_value > 0, np.sqrt(n * d / p_eff_value), 0.0)
    defined = (eps > 0) & (delta > 0) & (denominator > 0)
    conditions, n_min = _nfp_conditions(n, eps, delta, p_eff_value, k, sigma2, const)
    return _result(value, defined, conditions, shape, variant=variant, theorem="NFP Theorem 4", scaling=scaling,
                   details={"information_nats": information, "accuracy_eps": const.accuracy * eps,
                            "mixture_n_min": np.where(defined, n_min, 0.0)})


def no_free_prune_inverse(L, solve_for: str, *, n=None, d, p_eff=None, eps=None, delta, c=1.0, k=1,
                          variant: str = "paper", units: str = "bits", sigma2=None) -> BoundResult:
    """Where NFP Theorem 4's bound (``no_free_prune``, same variant and units) equals a target Lipschitz L.

    All closed form (the bound is eps' / (1152 sqrt(c)) sqrt(n d delta / (I + (delta/2) ln(4/delta)))):
    ``solve_for="p_eff"``: the smallest p_eff with bound <= L (the bound decreases in p_eff): I* = eps'^2 n d
    delta / (1152^2 c L^2) - (delta/2) ln(4/delta), mapped back to p_eff and clipped at 0.
    ``solve_for="n"``: n* = 1152^2 c L^2 (I + (delta/2) ln(4/delta)) / (eps'^2 d delta) (the bound grows like sqrt(n)).
    ``solve_for="eps"``: eps* = 1152 sqrt(c) L sqrt((I + (delta/2) ln(4/delta)) / (n d delta)) / accuracy, with p_eff
    held fixed (p_eff itself depends on eps through log2(1 + 60 W J/eps); recompute it at eps* if that matters).
    ``valid``: the theorem's conditions at the solution (p_eff > 0 is not required when solving for it).
    """
    const = NFP[_variant(variant)]
    _checks.one_of("units", units, UNITS)
    _checks.one_of("solve_for", solve_for, ("p_eff", "n", "eps"))
    _check_unknowns(solve_for, {"n": n, "p_eff": p_eff, "eps": eps})
    (L, n, d, p_eff, eps, delta, c, k, sigma2), shape = _inputs(
        L=(L, "positive"), n=(n, "count?"), d=(d, "count"), p_eff=(p_eff, "real?"), eps=(eps, "real?"),
        delta=(delta, "real"), c=(c, "positive"), k=(k, "count"), sigma2=(sigma2, "real?"))
    K2c = const.prefactor**2 * c * L**2
    with np.errstate(all="ignore"):
        log_delta = delta / 2 * np.log(4 / delta)
        if solve_for == "p_eff":
            information = (const.accuracy * eps) ** 2 * n * d * delta / K2c - log_delta
            solution = np.maximum(_nfp_p_eff_of(information, const, units), 0.0)
            defined = (eps > 0) & (delta > 0)
        else:
            denominator = _nfp_information(p_eff, const, units) + log_delta
            defined = (delta > 0) & (denominator > 0)
            if solve_for == "n":
                solution = n = K2c * denominator / ((const.accuracy * eps) ** 2 * d * delta)
                defined = defined & (eps > 0)
            else:
                solution = eps = np.sqrt(K2c * denominator / (n * d * delta)) / const.accuracy
    conditions, _ = _nfp_conditions(n, eps, delta, None if solve_for == "p_eff" else p_eff, k, sigma2, const,
                                    True if solve_for == "p_eff" else defined)
    return _result(solution, defined, conditions, shape, variant=variant,
                   theorem=f"NFP Theorem 4, solved for {solve_for}")


# ----------------------------------------------------------------------------------------------- mask entropy


def h2(gamma):
    """Binary entropy in bits, h2(g) = -g log2 g - (1 - g) log2(1 - g), h2(0) = h2(1) = 0; gamma in [0, 1]."""
    (gamma,), shape = _inputs(gamma=(gamma, "nonneg"))
    if np.any(gamma > 1):
        raise ValueError(f"gamma must lie in [0, 1], got {gamma[gamma > 1].flat[0]:g}")
    return _out((special.entr(gamma) + special.entr(1 - gamma)) / LN2, shape)


def log2_binomial(p, k):
    """log2 C(p, k) for 0 <= k <= p, exact to float64 rounding for any size: -log2(p+1) - B(p-k+1, k+1)/ln 2
    with scipy.special.betaln (no cancellation of two huge lgammas). The mask-entropy ceiling: the entropy of the
    uniform distribution on masks with k of p weights kept, >= H(m) >= I(m; D) for such a pruner (NFP Sec. 4.1).
    """
    (p, k), shape = _inputs(p=(p, "nonneg"), k=(k, "nonneg"))
    if np.any(k > p):
        raise ValueError(f"k must lie in [0, p], got k > p at {np.count_nonzero(np.broadcast_to(k > p, shape))} point(s)")
    value = -(np.log(p + 1) + special.betaln(p - k + 1, k + 1)) / LN2
    return _out(np.where((k == 0) | (k == p), 0.0, value), shape)  # C(p, 0) = C(p, p) = 1 exactly, not -1e-12


def entropy_ceiling(p, gamma) -> BoundResult:
    """The entropy form of the ceiling (Csiszar & Shields, Lemma 2.2; NFP Sec. 4.1; THEORY.md 3.5):

        p h2(gamma) - log2(p + 1) <= log2 C(p, gamma p) <= p h2(gamma),

    ``value`` = p h2(gamma) (the upper end), ``details["lower"]`` = p h2(gamma) - log2(p + 1) and
    ``details["exact"]`` = log2 C(p, gamma p). The lemma needs gamma p to be an integer (checked up to 1e-9 relative).
    """
    (p, gamma), shape = _inputs(p=(p, "count"), gamma=(gamma, "nonneg"))
    upper = p * h2(gamma)
    kept = gamma * p
    gap = np.abs(kept - np.round(kept))
    condition = _Condition("gamma p is an integer: |gamma p - round(gamma p)|", gap, "<=", 1e-9 * np.maximum(p, 1.0))
    return _result(upper, np.ones(shape, bool), [condition], shape, variant="paper",
                   theorem="Csiszar-Shields Lemma 2.2",
                   details={"lower": upper - np.log2(p + 1), "exact": log2_binomial(p, np.round(kept))})


def imp_ratio(gamma):
    """p_eff(IMP) / p_eff(pruning at initialization) at sparsity gamma with I(m; D) at the entropy ceiling
    p h2(gamma) and E||m||_1 = (1 - gamma) p (THEORY.md 3.5, [DERIVED]): 1 + h2(gamma) / (1 - gamma);
    5.69, 6.73, 9.08, 12.4 at gamma = 0.9, 0.95, 0.99, 0.999. gamma in [0, 1).
    """
    (gamma,), shape = _inputs(gamma=(gamma, "nonneg"))
    if np.any(gamma >= 1):
        raise ValueError(f"gamma must lie in [0, 1), got {gamma[gamma >= 1].flat[0]:g}")
    return _out(1 + h2(gamma) / (1 - gamma), shape)
