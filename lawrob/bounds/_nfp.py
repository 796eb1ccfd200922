"""No Free Prune: Lemma 1 (the information lemma) and its inversion, Theorem 3 (finite setting), p_eff and
Theorem 4 (the sparse law of robustness) with its inverse forms (docs/theory.md, section 4)."""

from __future__ import annotations

import numpy as np

from lawrob import _checks
from lawrob.bounds._constants import (
    A1_SQUARED, C0_FACTOR, HOEFFDING, LN2, NFP, NFP_COVER, NFP_FINITE_CONSTANT, NFP_MIXTURE, UNITS, NFPConstants)
from lawrob.bounds._results import (
    BoundResult, RealArg, _check_unknowns, _Condition, _inputs, _mixture, _positive, _result, _to_nats, _unit_interval,
    _variant)

def lemma1_threshold(info: RealArg, C: RealArg, delta: RealArg, units: str = "nats") -> BoundResult:
    """NFP Lemma 1 (Xu & Raginsky 2017, Thm 3): for a process of mean-zero C-subgaussian X_t and any T-valued W,

        P(|X_W| >= a1 sqrt(C (I/delta + ln(2/delta)))) <= delta,   a1^2 = 72,

    with I = I({X_t}; W) in nats (``units="bits"`` converts it). ``value``: the threshold; valid for delta in
    (0, 1). docs/theory.md, section 4.1. For the noise-correlation process C = C0 = 144 c L^2 / (n d).

    Parameters
    ----------
    info : float or array_like
        I({X_t}; W) >= 0, in ``units``.
    C : float or array_like
        The subgaussian constant C >= 0 of every X_t.
    delta : float or array_like
        The failure probability, in (0, 1).
    units : {"nats", "bits"}
        The units of ``info``.

    Returns
    -------
    BoundResult
        ``value``: the threshold a1 sqrt(C (I/delta + ln(2/delta))); ``valid`` where delta is in (0, 1).

    Raises
    ------
    ValueError
        If an argument is negative or not finite, or ``units`` is unknown.

    References
    ----------
    NFP Lemma 1; A. Xu and M. Raginsky, *Information-theoretic analysis of generalization capability of learning
    algorithms*, NeurIPS 2017, Theorem 3. docs/theory.md, section 4.1.
    """
    (info, C, delta), shape = _inputs(info=(info, "nonneg"), C=(C, "nonneg"), delta=(delta, "real"))
    info = _to_nats(info, units)
    with np.errstate(all="ignore"):
        inner = info / delta + np.log(2 / delta)
        value = np.sqrt(A1_SQUARED * C * inner)
    return _result(value, (delta > 0) & (inner >= 0), _unit_interval("delta", delta), shape, variant="paper",
                   theorem="NFP Lemma 1")


def lemma1_information(alpha: RealArg, delta: RealArg, C: RealArg, units: str = "nats") -> BoundResult:
    """The inversion of NFP Lemma 1 (docs/theory.md, section 4.1): if P(|X_W| >= alpha) > delta then

        I({X_t}; W) > delta (alpha^2 / (a1^2 C) - ln(2/delta)),   a1^2 = 72,

    a certified lower bound on the information (``value``, in ``units``; it may be negative, i.e. say nothing).
    For an observed noise correlation, C = C0 = 144 c L^2 / (n d). Valid for delta in (0, 1).

    Parameters
    ----------
    alpha : float or array_like
        The observed deviation |X_W| >= 0.
    delta : float or array_like
        The probability with which it is observed, in (0, 1).
    C : float or array_like
        The subgaussian constant C > 0.
    units : {"nats", "bits"}
        The units of the returned information.

    Returns
    -------
    BoundResult
        ``value``: delta (alpha^2 / (a1^2 C) - ln(2/delta)) in ``units`` (negative: no information certified).

    Raises
    ------
    ValueError
        If an argument is out of its domain or ``units`` is unknown.

    References
    ----------
    NFP Lemma 1, inverted. docs/theory.md, section 4.1.
    """
    (alpha, delta, C), shape = _inputs(alpha=(alpha, "nonneg"), delta=(delta, "real"), C=(C, "positive"))
    with np.errstate(all="ignore"):
        nats = delta * (alpha**2 / (A1_SQUARED * C) - np.log(2 / delta))
    value = nats / LN2 if _checks.one_of("units", units, UNITS) == "bits" else nats
    return _result(value, delta > 0, _unit_interval("delta", delta), shape, variant="paper",
                   theorem="NFP Lemma 1 (inverted)")


def nfp_finite_probability(n: RealArg, d: RealArg, info: RealArg, eps: RealArg, L: RealArg, c: RealArg = 1.0,
                           k: RealArg = 1, variant: str = "paper", units: str = "bits") -> BoundResult:
    """NFP Theorem 3 (finite setting): for a finite class of L-Lipschitz functions and any learning algorithm W,

        P((1/n) sum (y_i - f^W(x_i))^2 <= sigma^2 - eps)
            <= (2k+2) exp(-n eps^2 / (8^3 k)) + max(2^7 a1^2 C0 I / eps^2, 2 exp(-eps^2 / (2^7 a1^2 C0)))

    with C0 = 144 c L^2 / (n d), a1^2 = 72 (2^7 a1^2 = 9216; 2^7 is the smallest admissible constant) and
    I = ``info`` >= I({X_t}; W), e.g. p_eff = I(m_W; D) + E log2 N_m (docs/theory.md, section 4.2). ``variant="paper"`` plugs
    ``info`` in as given (a value in bits over-states the nats of Lemma 1, so this is valid but loose);
    ``variant="rigorous"`` converts it to nats (x ln 2 when ``units="bits"``). Valid for eps > 0; the value
    may exceed 1 (vacuous).

    Parameters
    ----------
    n : int or array_like
        The number of samples.
    d : int or array_like
        The input dimension.
    info : float or array_like
        I >= I({X_t}; W), in ``units``.
    eps : float or array_like
        The margin below the noise level, > 0.
    L : float or array_like
        The Lipschitz constant of the class, > 0.
    c : float or array_like
        The isoperimetry constant of each mixture component.
    k : int or array_like
        The number of mixture components.
    variant : {"paper", "rigorous"}
        Plug ``info`` in as given, or convert it to nats.
    units : {"bits", "nats"}
        The units of ``info``.

    Returns
    -------
    BoundResult
        ``value``: the probability bound (it may exceed 1).

    Raises
    ------
    ValueError
        If an argument is out of its domain or ``variant``/``units`` is unknown.

    References
    ----------
    NFP Theorem 3. docs/theory.md, section 4.2.
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


def p_eff(info: RealArg, active: RealArg, W: RealArg, J: RealArg, eps: RealArg, units: str = "bits") -> BoundResult:
    """NFP's effective parameter count (Theorem 4; docs/theory.md, section 2.4):

        p_eff = I(m_W; D) + E||m||_1 log2(1 + 60 W J / eps)     (bits; ``units="nats"``: ln instead of log2)

    ``info``: I(m_W; D) (or an upper bound on it) in ``units``; ``active``: E||m||_1, the mean number of kept
    weights. The count term is log2 in the paper; the information lemma it feeds is in nats, and a value in bits
    is >= the one in nats, so bits are a valid (looser) choice. ``no_free_prune`` takes the units along.
    Defined for eps > 0; valid for eps in (0, 1), the theorem's range. ``details``: ``count_term``.

    Parameters
    ----------
    info : float or array_like
        I(m_W; D) (or an upper bound on it) >= 0, in ``units``.
    active : float or array_like
        E||m||_1, the mean number of kept weights.
    W : float or array_like
        The diameter of the parameter set.
    J : float or array_like
        The Lipschitz constant of the parametrization w -> f_w.
    eps : float or array_like
        The margin below the noise level.
    units : {"bits", "nats"}
        log2 or ln in the count term, and the units of ``info``.

    Returns
    -------
    BoundResult
        ``value``: p_eff; ``details["count_term"]``: E||m||_1 log(1 + 60 W J / eps).

    Raises
    ------
    ValueError
        If an argument is negative or not finite, or ``units`` is unknown.

    References
    ----------
    NFP Theorem 4. docs/theory.md, section 2.4.
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


def no_free_prune(n: RealArg, d: RealArg, p_eff: RealArg, eps: RealArg, delta: RealArg, c: RealArg = 1.0,
                  k: RealArg = 1, variant: str = "paper", *, units: str = "bits",
                  sigma2: RealArg | None = None) -> BoundResult:
    """NFP Theorem 4 (v1), the sparse law of robustness: for any learning algorithm W with output f^W, with
    probability >= 1 - delta over the data, (1/n) sum (f^W(x_i) - y_i)^2 <= sigma^2 - eps implies

        Lip(f^W) >= eps / (96 a1 sqrt(2c)) sqrt(n d delta / (p_eff + (delta/2) ln(4/delta)))
                  = eps / (1152 sqrt(c)) sqrt(n d delta / (p_eff + (delta/2) ln(4/delta)))      (paper)

    with a1 = sqrt(72), p_eff = I(m_W; D) + E||m||_1 log2(1 + 60 W J / eps) (see ``p_eff``), eps, delta in (0, 1),
    a mixture of k c-isoperimetric measures and 8^3 k ln(8k/delta) <= n eps^2 (docs/theory.md, section 4.3). The bound solves
    a1 sqrt(C0 (2 p_eff/delta + ln(4/delta))) = eps/8 exactly, C0 = 144 c L^2 / (n d). ``units``: those of
    ``p_eff`` ("bits" as in the paper); the paper variant plugs the number in as given, so a p_eff in nats gives
    the sharper bound (docs/theory.md, section 2.4).

    ``variant="rigorous"`` repairs the slips of docs/theory.md, section 4.4 (constants derived in lawrob.symbolic):

        Lip(f^W) >= (13 eps/15) / (1152 sqrt(c)) sqrt(n d delta / (I + (delta/2) ln(4/delta))),
        I = ln 2 (p_eff + 1) for p_eff in bits,  I = p_eff + ln 2 for p_eff in nats,
        mixture condition 8^3 k ln(8k/delta) <= n (13 eps/15)^2.

    1. eps bookkeeping (4.4, item 1): rounding to an eps/(8J)-net moves the MSE by up to eps/2, so the rounded output only
       fits at sigma^2 - eps/2 while Lemma 6 is applied at eps. Repair: an eps/(30J)-net, the finest whose covering
       number (1 + 2 * 30 W J/eps)^||m|| is exactly the printed (1 + 60 W J/eps)^||m|| (so p_eff is unchanged); it
       moves the MSE by <= 4 eps/30, leaving accuracy eps' = 13 eps/15 for Lemma 6, whose eps' replaces eps in the
       prefactor and the mixture condition. (An eps/(16J)-net would leave 3 eps/4, and an eps/(12J)-net
       2 eps/3.)
    2. Lipschitz truncation (4.4, item 2): the truncated output's mask also depends on whether Lip <= L, so
       I(m_{W_L}; D) <= I(m_W; D) + 1 bit. This assumes the fixed replacement f_L can be taken with a mask no larger
       than any other (e.g. the all-pruned, constant network, which lawrob's MLPs contain), so E||m||_1 does not grow.
    3. Units (4.4, item 3): Lemma 1's information is in nats; I is the exact conversion of p_eff (+ 1 bit) to nats.
    4. The sign slip "s(delta/2) >= eps/8" for "<=" (4.4, item 4) does not change a number.

    ``scaling``: the constant-free sqrt(n d / p_eff) (0.0 where p_eff <= 0). ``details``: ``information_nats``
    (the I used; paper: p_eff as given), ``accuracy_eps``, ``mixture_n_min``.

    Parameters
    ----------
    n : int or array_like
        The number of samples.
    d : int or array_like
        The input dimension.
    p_eff : float or array_like
        The effective parameter count (``p_eff``), in ``units``.
    eps : float or array_like
        The margin below the noise level, in (0, 1).
    delta : float or array_like
        The failure probability, in (0, 1).
    c : float or array_like
        The isoperimetry constant of each mixture component.
    k : int or array_like
        The number of mixture components.
    variant : {"paper", "rigorous"}
        The printed constants or the repaired ones.
    units : {"bits", "nats"}
        The units of ``p_eff``.
    sigma2 : float or array_like, optional
        The noise level; when given, the condition sigma2 > 0 is checked.

    Returns
    -------
    BoundResult
        ``value``: the lower bound on Lip(f^W); ``scaling``; ``details`` as above.

    Raises
    ------
    ValueError
        If an argument is out of its domain or ``variant``/``units`` is unknown.

    References
    ----------
    NFP Theorem 4 (arXiv:2402.01089v1). docs/theory.md, sections 4.3 and 4.4.
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


def no_free_prune_inverse(L: RealArg, solve_for: str, *, n: RealArg | None = None, d: RealArg,
                          p_eff: RealArg | None = None, eps: RealArg | None = None, delta: RealArg, c: RealArg = 1.0,
                          k: RealArg = 1, variant: str = "paper", units: str = "bits",
                          sigma2: RealArg | None = None) -> BoundResult:
    """Where NFP Theorem 4's bound (``no_free_prune``, same variant and units) equals a target Lipschitz L.

    All closed form (the bound is eps' / (1152 sqrt(c)) sqrt(n d delta / (I + (delta/2) ln(4/delta)))):
    ``solve_for="p_eff"``: the smallest p_eff with bound <= L (the bound decreases in p_eff): I* = eps'^2 n d
    delta / (1152^2 c L^2) - (delta/2) ln(4/delta), mapped back to p_eff and clipped at 0.
    ``solve_for="n"``: n* = 1152^2 c L^2 (I + (delta/2) ln(4/delta)) / (eps'^2 d delta) (the bound grows like sqrt(n)).
    ``solve_for="eps"``: eps* = 1152 sqrt(c) L sqrt((I + (delta/2) ln(4/delta)) / (n d delta)) / accuracy, with p_eff
    held fixed (p_eff itself depends on eps through log2(1 + 60 W J/eps); recompute it at eps* if that matters).
    ``valid``: the theorem's conditions at the solution (p_eff > 0 is not required when solving for it).

    Parameters
    ----------
    L : float or array_like
        The target Lipschitz constant, > 0.
    solve_for : {"p_eff", "n", "eps"}
        The unknown; it must be left ``None`` and the other two given.
    n : int or array_like, optional
        The number of samples.
    d : int or array_like
        The input dimension.
    p_eff : float or array_like, optional
        The effective parameter count, in ``units``.
    eps : float or array_like, optional
        The margin below the noise level.
    delta : float or array_like
        The failure probability, in (0, 1).
    c : float or array_like
        The isoperimetry constant of each mixture component.
    k : int or array_like
        The number of mixture components.
    variant : {"paper", "rigorous"}
        The constants, as in ``no_free_prune``.
    units : {"bits", "nats"}
        The units of ``p_eff``.
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
    NFP Theorem 4. docs/theory.md, section 4.3.
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


