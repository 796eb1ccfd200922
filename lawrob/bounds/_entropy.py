"""Mask entropy: the binary entropy, the binomial ceiling log2 C(p, k) and its entropy form, and the IMP ratio
(NFP Sec. 4.1; THEORY.md 3.5)."""

from __future__ import annotations

import numpy as np
from scipy import special

from lawrob.bounds._constants import LN2
from lawrob.bounds._results import BoundResult, _Condition, _inputs, _out, _result

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
