"""Bubeck & Sellke: Theorem 2 (finite class), Theorem 3 (the law of robustness) and its inverse forms, the
mixture condition and Lemma 3.1's parametrization constants (docs/theory.md, sections 2.3 and 3)."""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize

from lawrob import _checks
from lawrob.bounds._constants import BS, BS_MIXTURE_MIN, HOEFFDING, MIXTURE_DEFAULT, BSConstants
from lawrob.bounds._results import (
    BoundResult, RealArg, _check_unknowns, _Condition, _inputs, _mixture, _positive, _result, _unit_interval, _variant)

def bs_finite_class(n: RealArg, d: RealArg, log_card: RealArg, eps: RealArg, L: RealArg, c: RealArg = 1.0,
                    k: RealArg = 1, variant: str = "paper") -> BoundResult:
    """BS Theorem 2 (finite class): a bound on P(some f in F with Lip(f) <= L fits below the noise level).

        P(exists f in F: (1/n) sum (y_i - f(x_i))^2 <= sigma^2 - eps and Lip(f) <= L)
            <= 4k exp(-n eps^2 / (8^3 k)) + 2 exp(log|F| - eps^2 n d / (K c L^2))

    (docs/theory.md, section 3.2; natural log, ``log_card`` = ln|F| >= 0). K = 8^4 as printed. ``variant="rigorous"``:
    K = 9216 = 8^2 * 144. Under the stated convention sqrt(d/c)(f - E f)/L is 2-subgaussian (BS write 1),
    times |z| <= 2 it is 8-subgaussian and after Prop 1.2 144-subgaussian; Lemma 2.1 only yields <F, Z> >= eps/4
    (not eps/3), split as eps/8 for the centred part and eps/8 for the component means (whose Hoeffding term
    is then exactly 2k exp(-n eps^2 / (512 k))): 64 * 144 = 9216 (the printed 8^4 = 4096 and the eps/6-only
    repair 5184 are both too small; 10^4 would do). Valid for eps > 0; the value may exceed 1 (vacuous).

    Parameters
    ----------
    n : int or array_like
        The number of samples.
    d : int or array_like
        The input dimension.
    log_card : float or array_like
        ln|F| >= 0.
    eps : float or array_like
        The margin below the noise level, > 0.
    L : float or array_like
        The Lipschitz bound, > 0.
    c : float or array_like
        The isoperimetry constant of each mixture component.
    k : int or array_like
        The number of mixture components.
    variant : {"paper", "rigorous"}
        K = 8^4 as printed, or the repaired K = 9216.

    Returns
    -------
    BoundResult
        ``value``: the probability bound (it may exceed 1).

    Raises
    ------
    ValueError
        If an argument is out of its domain or ``variant`` is unknown.

    References
    ----------
    BS Theorem 2 (arXiv:2105.12806). docs/theory.md, section 3.2.
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


def mixture_condition(n: RealArg, eps: RealArg, delta: RealArg, k: RealArg = 1,
                      constant: float = MIXTURE_DEFAULT) -> BoundResult:
    """The mixture (k-)condition  constant * k ln(8k/delta) <= n eps^2,  with eps, delta in (0, 1).

    ``value``: the smallest n that satisfies it, constant k ln(8k/delta) / eps^2; ``valid``: n reaches it.
    Constants: ``MIXTURE_SUBMISSION`` = 8^4 (BS Thm 3 as printed in the submission, the default),
    ``MIXTURE_CAMERA_READY`` = 10^4 (likely camera-ready), ``NFP_MIXTURE`` = 8^3 (NFP Thm 4). BS's proof needs
    only ``BS_MIXTURE_MIN`` = 2048 (docs/theory.md, section 3.3), so 8^4 and 10^4 are both sufficient.

    Parameters
    ----------
    n : int or array_like
        The number of samples.
    eps : float or array_like
        The margin below the noise level, in (0, 1).
    delta : float or array_like
        The failure probability, in (0, 1).
    k : int or array_like
        The number of mixture components.
    constant : float
        The constant of the condition.

    Returns
    -------
    BoundResult
        ``value``: the smallest n meeting the condition; ``valid``: n reaches it.

    Raises
    ------
    ValueError
        If an argument is out of its domain.

    References
    ----------
    BS Theorem 3; NFP Theorem 4. docs/theory.md, section 3.3.
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


def bubeck_sellke(n: RealArg, d: RealArg, p: RealArg, eps: RealArg, delta: RealArg, W: RealArg, J: RealArg,
                  c: RealArg = 1.0, k: RealArg = 1, variant: str = "paper", *,
                  mixture_constant: float = MIXTURE_DEFAULT, sigma2: RealArg | None = None) -> BoundResult:
    """BS Theorem 3, the law of robustness: with probability >= 1 - delta, every f in F with
    (1/n) sum (f(x_i) - y_i)^2 <= sigma^2 - eps has

        Lip(f) >= eps / (2^9 sqrt(c)) * sqrt(n d / (p ln(60 W J / eps) + ln(4/delta)))     (paper)

    for a class F = {f_w : w in R^p, diam <= W, ||f_w1 - f_w2||_inf <= J ||w1 - w2||} on a mixture of k
    c-isoperimetric measures, eps, delta in (0, 1) and the mixture condition
    ``mixture_constant`` k ln(8k/delta) <= n eps^2 (docs/theory.md, section 3.3; natural logs).

    The default mixture constant is 8^4, the printed (confirmed) submission form, for both variants: lawrob.symbolic
    derives that the proof needs only 2048 k ln(8k/delta) <= n eps^2 (Theorem 2 applied at eps/2), so 8^4 is
    sufficient and not a slip; 10^4 (``MIXTURE_CAMERA_READY``, likely camera-ready) is stricter and implies it.
    Constants below 2048 raise. ``sigma2``, when given, is checked > 0 (assumption sigma^2 > 0).

    ``variant="paper"`` also requires W J/eps >= 1/48, where the printed eps/(6J)-net's size (1 + 12 W J/eps)^p is
    below the printed (60 W J/eps)^p (BS do not state it; below it the log can vanish). ``variant="rigorous"``
    repairs the proof (docs/theory.md, section 3.5; every constant derived in lawrob.symbolic):

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

    Parameters
    ----------
    n : int or array_like
        The number of samples.
    d : int or array_like
        The input dimension.
    p : int or array_like
        The number of parameters.
    eps : float or array_like
        The margin below the noise level, in (0, 1).
    delta : float or array_like
        The failure probability, in (0, 1).
    W : float or array_like
        The diameter of the parameter set.
    J : float or array_like
        The Lipschitz constant of the parametrization w -> f_w.
    c : float or array_like
        The isoperimetry constant of each mixture component.
    k : int or array_like
        The number of mixture components.
    variant : {"paper", "rigorous"}
        The printed constants or the repaired ones.
    mixture_constant : float
        The constant of the mixture condition, >= 2048.
    sigma2 : float or array_like, optional
        The noise level; when given, the condition sigma2 > 0 is checked.

    Returns
    -------
    BoundResult
        ``value``: the lower bound on Lip(f); ``scaling``; ``details`` as above.

    Raises
    ------
    ValueError
        If an argument is out of its domain, ``mixture_constant`` < 2048 or ``variant`` is unknown.

    References
    ----------
    BS Theorem 3 (arXiv:2105.12806). docs/theory.md, sections 3.3 and 3.5.
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


def bubeck_sellke_inverse(L: RealArg, solve_for: str, *, n: RealArg | None = None, d: RealArg, p: RealArg | None = None,
                          eps: RealArg | None = None, delta: RealArg, W: RealArg, J: RealArg, c: RealArg = 1.0,
                          k: RealArg = 1, variant: str = "paper", mixture_constant: float = MIXTURE_DEFAULT,
                          sigma2: RealArg | None = None) -> BoundResult:
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

    Parameters
    ----------
    L : float or array_like
        The target Lipschitz constant, > 0.
    solve_for : {"p", "n", "eps"}
        The unknown; it must be left ``None`` and the other two given.
    n : int or array_like, optional
        The number of samples.
    d : int or array_like
        The input dimension.
    p : int or array_like, optional
        The number of parameters.
    eps : float or array_like, optional
        The margin below the noise level.
    delta : float or array_like
        The failure probability, in (0, 1).
    W : float or array_like
        The diameter of the parameter set.
    J : float or array_like
        The Lipschitz constant of the parametrization.
    c : float or array_like
        The isoperimetry constant of each mixture component.
    k : int or array_like
        The number of mixture components.
    variant : {"paper", "rigorous"}
        The constants, as in ``bubeck_sellke``.
    mixture_constant : float
        The constant of the mixture condition, >= 2048.
    sigma2 : float or array_like, optional
        The noise level; when given, the condition sigma2 > 0 is checked.

    Returns
    -------
    BoundResult
        ``value``: the solution; ``valid``: the theorem's conditions there.

    Raises
    ------
    ValueError
        If ``solve_for`` is unknown, the unknown is given or another is missing, or an argument is out of its domain.

    References
    ----------
    BS Theorem 3. docs/theory.md, section 3.3.
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


def deep_network_constants(R: RealArg, box: RealArg, p: RealArg, D: RealArg, Q: RealArg = 1,
                           variant: str = "paper") -> BoundResult:
    """BS Lemma 3.1 (deep networks): the constant J of the parametrization w -> f_w, ``value``.

    For a depth-D network with 1-Lipschitz activations, weights w in [-box, box]^p (box >= 1; BS call it W),
    inputs ||x|| <= R and at most Q matrix entries tied to one parameter, B(w) = max_i prod_{j != i} ||W_j||_op
    <= B_bar = (box sqrt(p Q))^D and |f_w1(x) - f_w2(x)| <= B_bar Q R sqrt(p) ||w1 - w2||.
    ``variant="paper"``: the printed simplification J = R (box Q p)^D. lawrob.symbolic shows that it covers
    B_bar Q R sqrt(p) iff D >= 2 or Q = 1 (for D = 1 and Q > 1 it is too small by sqrt(Q)); that is checked as a
    condition. ``variant="rigorous"``: J = B_bar Q R sqrt(p) = R Q sqrt(p) (box sqrt(p Q))^D, always valid and
    never larger for D >= 2. ``details``: ``B_bar``, ``diameter`` = 2 box sqrt(p) of the box (the W of Theorem 3),
    ``log_J``. Values overflow to inf (never NaN) for huge networks; ``log_J`` stays finite.

    Parameters
    ----------
    R : float or array_like
        The input radius, ||x|| <= R.
    box : float or array_like
        The weight box [-box, box], box >= 1.
    p : int or array_like
        The number of parameters.
    D : int or array_like
        The depth (number of weight matrices).
    Q : int or array_like
        The most matrix entries tied to one parameter.
    variant : {"paper", "rigorous"}
        The printed simplification or the exact form of J.

    Returns
    -------
    BoundResult
        ``value``: J; ``details``: ``B_bar``, ``diameter``, ``log_J``.

    Raises
    ------
    ValueError
        If an argument is out of its domain or ``variant`` is unknown.

    References
    ----------
    BS Lemma 3.1. docs/theory.md, section 2.3.
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

