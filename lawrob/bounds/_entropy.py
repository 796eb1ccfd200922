"""Mask entropy: the binary entropy, the binomial ceiling log2 C(p, k) and its entropy form, and the IMP ratio
(NFP Sec. 4.1; docs/theory.md, section 4.5)."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from lawrob.bounds._constants import LN2
from lawrob.bounds._results import BoundResult, RealArg, _Condition, _inputs, _out, _result


def h2(gamma: RealArg) -> RealArg:
    """Binary entropy in bits, h2(g) = -g log2 g - (1 - g) log2(1 - g), h2(0) = h2(1) = 0; gamma in [0, 1].

    Parameters
    ----------
    gamma : float or array_like
        The probability, in [0, 1].

    Returns
    -------
    float or numpy.ndarray
        h2(gamma) in bits.

    Raises
    ------
    ValueError
        If gamma is outside [0, 1].
    """
    (gamma,), shape = _inputs(gamma=(gamma, "nonneg"))
    if np.any(gamma > 1):
        raise ValueError(f"gamma must lie in [0, 1], got {gamma[gamma > 1].flat[0]:g}")
    return _out((special.entr(gamma) + special.entr(1 - gamma)) / LN2, shape)


_STIRLING_FROM = 16.0  # below it ln m! - (m ln m - m) comes from gammaln directly (|error| < 1e-14 there)
# ln m! - (m ln m - m) - ln(2 pi m)/2 = sum_j B_2j / (2j (2j - 1) m^(2j - 1)): 1/12, -1/360, 1/1260, -1/1680, 1/1188;
# the first omitted term, 691/360360 m^-11, is < 1e-16 for m >= 16.
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188)
_LN_2PI = math.log(2 * math.pi)


def _stirling_tail(m):
    """delta(m) = ln m! - (m ln m - m + ln(2 pi m)/2) for m >= 16 (elsewhere a finite placeholder)."""
    inv = 1.0 / np.maximum(m, _STIRLING_FROM)
    inv2, total = inv * inv, 0.0
    for coefficient in reversed(_STIRLING):
        total = total * inv2 + coefficient
    return total * inv


def _log_factorial_rest(m):
    """S(m) = ln m! - (m ln m - m) (0 at m = 0), accurate to a few ulps of ln m!'s small part for every m >= 0."""
    small = m < _STIRLING_FROM
    x = np.where(small, m, 0.0)
    direct = special.gammaln(x + 1) - special.xlogy(x, x) + x
    return np.where(small, direct, 0.5 * (_LN_2PI + np.log(np.maximum(m, 1.0))) + _stirling_tail(m))


def log2_binomial(p: RealArg, k: RealArg) -> RealArg:
    """log2 C(p, k) for 0 <= k <= p (reals allowed: Gamma functions), to a few ulps for any size, and exactly 0 at
    k = 0 and k = p. The mask-entropy ceiling: the entropy of the uniform distribution on masks with k of p weights
    kept, >= H(m) >= I(m; D) for such a pruner (NFP Sec. 4.1).

    With j = min(k, p - k) and S(m) = ln m! - (m ln m - m) (``_log_factorial_rest``: gammaln below 16, Stirling's
    series above), ln C(p, k) = j ln(p/j) - (p - j) log1p(-j/p) + S(p) - S(p - j) - S(j): two nonnegative terms and
    corrections of size O(ln j), so no huge lgammas cancel (the lgamma difference loses ~1e-10 relative at
    p ~ 1e6 and scipy's betaln form ~1e-11 at p ~ 1e7); for p, p - j >= 16, S(p) - S(p - j) =
    -log1p(-j/p)/2 + delta(p) - delta(p - j), again free of cancellation.

    Parameters
    ----------
    p : float or array_like
        The number of weights, >= 0.
    k : float or array_like
        The number kept, 0 <= k <= p.

    Returns
    -------
    float or numpy.ndarray
        log2 C(p, k).

    Raises
    ------
    ValueError
        If k is outside [0, p] or an argument is not finite.

    References
    ----------
    NFP Section 4.1. docs/theory.md, section 4.5.
    """
    (p, k), shape = _inputs(p=(p, "nonneg"), k=(k, "nonneg"))
    if np.any(k > p):
        raise ValueError(f"k must lie in [0, p], got k > p at {np.count_nonzero(np.broadcast_to(k > p, shape))} point(s)")
    j = np.minimum(k, p - k)
    edge = j <= 0  # C(p, 0) = C(p, p) = 1 exactly
    j, p = np.where(edge, 1.0, j), np.where(edge, 2.0, p)  # placeholders, replaced by 0 below
    with np.errstate(all="ignore"):
        tail = np.log1p(-j / p)
        both_large = (p - j) >= _STIRLING_FROM
        upper = np.where(both_large, -0.5 * tail + _stirling_tail(p) - _stirling_tail(p - j),
                         _log_factorial_rest(p) - _log_factorial_rest(p - j))
        nats = j * np.log(p / j) - (p - j) * tail + upper - _log_factorial_rest(j)
    return _out(np.where(edge, 0.0, nats / LN2), shape)


def entropy_ceiling(p: RealArg, gamma: RealArg) -> BoundResult:
    """The entropy form of the ceiling (Csiszar & Shields, Lemma 2.2; NFP Sec. 4.1; docs/theory.md, section 4.5):

        p h2(gamma) - log2(p + 1) <= log2 C(p, gamma p) <= p h2(gamma),

    ``value`` = p h2(gamma) (the upper end), ``details["lower"]`` = p h2(gamma) - log2(p + 1) and
    ``details["exact"]`` = log2 C(p, gamma p). The lemma needs gamma p to be an integer (checked up to 1e-9 relative).

    Parameters
    ----------
    p : int or array_like
        The number of weights.
    gamma : float or array_like
        The fraction gamma in [0, 1], with gamma p an integer.

    Returns
    -------
    BoundResult
        ``value`` = p h2(gamma); ``details``: ``lower`` and ``exact``.

    Raises
    ------
    ValueError
        If gamma p is not an integer or an argument is out of its domain.

    References
    ----------
    I. Csiszar and P. Shields, *Information Theory and Statistics: A Tutorial*, 2004, Lemma 2.2; NFP Section 4.1.
    docs/theory.md, section 4.5.
    """
    (p, gamma), shape = _inputs(p=(p, "count"), gamma=(gamma, "nonneg"))
    upper = p * h2(gamma)
    kept = gamma * p
    gap = np.abs(kept - np.round(kept))
    condition = _Condition("gamma p is an integer: |gamma p - round(gamma p)|", gap, "<=", 1e-9 * np.maximum(p, 1.0))
    return _result(upper, np.ones(shape, bool), [condition], shape, variant="paper",
                   theorem="Csiszar-Shields Lemma 2.2",
                   details={"lower": upper - np.log2(p + 1), "exact": log2_binomial(p, np.round(kept))})


def imp_ratio(gamma: RealArg) -> RealArg:
    """p_eff(IMP) / p_eff(pruning at initialization) at sparsity gamma with I(m; D) at the entropy ceiling
    p h2(gamma) and E||m||_1 = (1 - gamma) p (docs/theory.md, section 4.5; derived, not stated by NFP): 1 + h2(gamma) / (1 - gamma);
    5.69, 6.73, 9.08, 12.4 at gamma = 0.9, 0.95, 0.99, 0.999. gamma in [0, 1).

    Parameters
    ----------
    gamma : float or array_like
        The sparsity (pruned fraction), in [0, 1).

    Returns
    -------
    float or numpy.ndarray
        1 + h2(gamma) / (1 - gamma).

    Raises
    ------
    ValueError
        If gamma is outside [0, 1).

    References
    ----------
    docs/theory.md, section 4.5.
    """
    (gamma,), shape = _inputs(gamma=(gamma, "nonneg"))
    if np.any(gamma >= 1):
        raise ValueError(f"gamma must lie in [0, 1), got {gamma[gamma >= 1].flat[0]:g}")
    return _out(1 + h2(gamma) / (1 - gamma), shape)
