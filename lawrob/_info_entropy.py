"""The entropy estimators of ``lawrob.info`` over sampled 0/1 masks, the ceiling log2 C(p, k), and ``Estimate``,
the value with a confidence interval that each returns (the module docstring of ``lawrob.info`` gives the
estimators' order and what their intervals certify; import every name from ``lawrob.info``)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats
from scipy.sparse.csgraph import minimum_spanning_tree

from lawrob import _checks, bounds
from lawrob.bounds import LN2, UNITS


class Estimate(NamedTuple):
    """A point estimate with its confidence interval [low, high], in ``units`` ("bits" or "nats").

    ``confidence`` is the probability with which the interval covers the estimand (1.0 for exact values),
    ``method`` names the estimator.

    Parameters
    ----------
    value : float
        The point estimate.
    low : float
        The lower end of the interval.
    high : float
        The upper end of the interval.
    units : str
        "bits" or "nats".
    method : str
        The estimator's name.
    confidence : float
        The probability with which [low, high] covers the estimand.
    """

    value: float
    low: float
    high: float
    units: str = "bits"
    method: str = ""
    confidence: float = 1.0

    def to(self, units: str) -> Estimate:
        """The same estimate in ``units`` (1 bit = ln 2 nats)."""
        _checks.one_of("units", units, UNITS)
        if units == self.units:
            return self
        scale = LN2 if units == "nats" else 1.0 / LN2
        return self._replace(value=self.value * scale, low=self.low * scale, high=self.high * scale, units=units)


def _estimate(method: str, value: float, low: float, high: float, units: str, confidence: float) -> Estimate:
    """An Estimate from values in nats, converted to ``units``."""
    nats = Estimate(float(value), float(low), float(high), "nats", method, confidence)
    return nats.to(units)


def _as_masks(masks) -> np.ndarray:
    array = np.asarray(masks)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"masks must be a [samples, p] array with samples >= 1 and p >= 1, got shape {array.shape}")
    if not np.all((array == 0) | (array == 1)):
        raise ValueError("masks must hold only 0 and 1")
    return array.astype(np.uint8)


def _alpha(confidence: float) -> float:
    return 1.0 - _checks.real_in("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)


def _log_support(ceiling: float | None, p: int) -> float:
    """ln m for the number m of masks the pipeline can output, from ``ceiling`` = log2 m (default: all 2^p masks)."""
    if ceiling is None:
        return p * LN2
    return _checks.real_in("ceiling", ceiling, 0.0, float(p)) * LN2


def _counts(masks: np.ndarray) -> np.ndarray:
    """How often each distinct row occurs (rows are hashed by packing them into bytes)."""
    return np.unique(np.packbits(masks, axis=1), axis=0, return_counts=True)[1]


def _plugin_nats(counts: np.ndarray) -> float:
    return float(special.entr(counts / counts.sum()).sum())  # exactly 0 for a single class


def _whole_mask_interval(counts: np.ndarray, log_m: float, alpha: float) -> tuple[float, float]:
    """Distribution-free (1 - alpha) interval for H (nats) around the plug-in estimate H_N.

    Bias (Paninski 2003, Prop. 1): H - ln(1 + (m - 1)/N) <= E H_N <= H, with m the support size (the upper
    inequality is Jensen's, H concave). Concentration: moving one sample from a class of count a to one of count b
    changes N H_N by g(b) - g(a - 1), g(k) = (k+1) ln(k+1) - k ln k increasing with b + a - 1 <= N - 1, so H_N has
    bounded differences c = g(N - 1) / N = (N ln N - (N-1) ln(N-1)) / N, and McDiarmid gives
    P(H_N - E H_N >= t) <= exp(-2 t^2 / (N c^2)) on each side (cf. Antos & Kontoyiannis 2001).
    With t = c sqrt(N ln(2/alpha) / 2):  H_N - t <= H <= H_N + t + ln(1 + (m-1)/N), and H <= ln m.
    """
    n = int(counts.sum())
    plugin = _plugin_nats(counts)
    c = (special.xlogy(n, n) - special.xlogy(n - 1, n - 1)) / n
    t = c * math.sqrt(n * math.log(2.0 / alpha) / 2.0)
    bias = np.logaddexp(math.log(n - 1) if n > 1 else -math.inf, log_m) - math.log(n)
    return max(plugin - t, 0.0), min(plugin + t + bias, log_m)


def plugin_entropy(masks: ArrayLike, *, confidence: float = 0.95, units: str = "bits",
                   ceiling: float | None = None) -> Estimate:
    """Plug-in (maximum-likelihood) entropy of whole masks: H_N = -sum_m (n_m/N) log(n_m/N) over the distinct rows.

    H_N is biased low (E H_N <= H, Paninski 2003) and can never exceed log N. The interval is the distribution-free
    one of ``_whole_mask_interval``: its lower end needs nothing, its upper end needs the number m of masks the
    pipeline can output, given as ``ceiling`` = log2 m (for a pipeline that keeps exactly k of p weights,
    ``mask_ceiling(p, k).value``; default p bits, every 0/1 vector). Without a small support no sample-based
    upper bound on the whole-mask entropy exists (mass spread thinly over unseen masks is invisible).

    Parameters
    ----------
    masks : array_like
        Sampled 0/1 masks, [N, p].
    confidence : float
        The interval's confidence, in (0, 1).
    units : {"bits", "nats"}
        The units of the estimate.
    ceiling : float, optional
        log2 of the number of possible masks (default: p).

    Returns
    -------
    Estimate
        H_N and its distribution-free interval.

    Raises
    ------
    ValueError
        If ``masks`` is not a 2-d 0/1 array or a number is out of range.

    References
    ----------
    L. Paninski, *Estimation of entropy and mutual information*, Neural Computation, 2003.
    """
    _checks.one_of("units", units, UNITS)
    alpha = _alpha(confidence)
    array = _as_masks(masks)
    counts = _counts(array)
    low, high = _whole_mask_interval(counts, _log_support(ceiling, array.shape[1]), alpha)
    return _estimate("plugin", _plugin_nats(counts), low, high, units, 1.0 - alpha)


def miller_madow_entropy(masks: ArrayLike, *, confidence: float = 0.95, units: str = "bits",
                         ceiling: float | None = None) -> Estimate:
    """Miller-Madow entropy of whole masks: H_N + (m_hat - 1) / (2N) nats, m_hat the number of distinct masks seen.

    Miller (1955): E H_N = H - (m - 1)/(2N) + O(N^-2) for a well-sampled distribution on m outcomes; the
    correction removes that first-order bias (Paninski 2003, Sec. 3). Capped at ln m (m from ``ceiling`` as in
    ``plugin_entropy``), which H cannot exceed. The interval is the plug-in's distribution-free interval for H:
    both estimate the same quantity and the correction is asymptotic, not a finite-sample guarantee.

    Parameters
    ----------
    masks : array_like
        Sampled 0/1 masks, [N, p].
    confidence : float
        The interval's confidence, in (0, 1).
    units : {"bits", "nats"}
        The units of the estimate.
    ceiling : float, optional
        log2 of the number of possible masks (default: p).

    Returns
    -------
    Estimate
        The corrected point value and the plug-in's interval.

    Raises
    ------
    ValueError
        If ``masks`` is not a 2-d 0/1 array or a number is out of range.

    References
    ----------
    G. Miller, *Note on the bias of information estimates*, 1955; L. Paninski, *Estimation of entropy and mutual
    information*, Neural Computation, 2003.
    """
    _checks.one_of("units", units, UNITS)
    alpha = _alpha(confidence)
    array = _as_masks(masks)
    counts = _counts(array)
    log_m = _log_support(ceiling, array.shape[1])
    value = min(_plugin_nats(counts) + (len(counts) - 1) / (2.0 * counts.sum()), log_m)
    low, high = _whole_mask_interval(counts, log_m, alpha)
    return _estimate("miller_madow", value, low, high, units, 1.0 - alpha)


def _binary_entropy(q) -> np.ndarray:
    """h(q) = -q ln q - (1-q) ln(1-q) in nats, elementwise (0 at q in {0, 1})."""
    q = np.asarray(q, dtype=float)
    return special.entr(q) + special.entr(1.0 - q)


def _clopper_pearson(successes, trials, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided exact (Clopper & Pearson 1934) intervals for binomial proportions, each tail alpha/2
    (elementwise; zero trials give [0, 1])."""
    x, n = np.broadcast_arrays(np.asarray(successes, dtype=float), np.asarray(trials, dtype=float))
    low = np.where(x > 0, stats.beta.ppf(alpha / 2, np.maximum(x, 1), np.maximum(n - x + 1, 1)), 0.0)
    high = np.where(x < n, stats.beta.ppf(1 - alpha / 2, x + 1, np.maximum(n - x, 1)), 1.0)
    return low, high


def _entropy_range(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of h over each interval [low, high]: h is concave with its peak at 1/2."""
    return np.minimum(_binary_entropy(low), _binary_entropy(high)), _binary_entropy(np.clip(0.5, low, high))


def marginal_entropy(masks: ArrayLike, *, confidence: float = 0.95, units: str = "bits") -> Estimate:
    """Sum of per-bit entropies, sum_j h(q_j) with q_j = P(m_j = 1): an upper bound on H(m) (subadditivity).

    Point value: the plug-in sum_j h(q_hat_j). Interval: each q_j gets a two-sided Clopper-Pearson interval at
    level alpha/p, so all p hold at once with probability >= 1 - alpha (union bound); on that event the marginal
    sum lies between sum_j min h and sum_j max h over the intervals. The upper end is therefore a certified upper
    bound on H(m) that needs no support size, and it is >= the plug-in value of every whole-mask estimate since
    the empirical distribution is itself subadditive.

    Parameters
    ----------
    masks : array_like
        Sampled 0/1 masks, [N, p].
    confidence : float
        The interval's confidence, in (0, 1).
    units : {"bits", "nats"}
        The units of the estimate.

    Returns
    -------
    Estimate
        The plug-in marginal sum and its certified interval.

    Raises
    ------
    ValueError
        If ``masks`` is not a 2-d 0/1 array or ``confidence``/``units`` is out of range.
    """
    _checks.one_of("units", units, UNITS)
    alpha = _alpha(confidence)
    array = _as_masks(masks)
    n, p = array.shape
    ones = array.sum(axis=0, dtype=np.int64)
    low_q, high_q = _clopper_pearson(ones, n, alpha / p)
    low_h, high_h = _entropy_range(low_q, high_q)
    value = _binary_entropy(ones / n).sum()
    return _estimate("marginal", value, low_h.sum(), high_h.sum(), units, 1.0 - alpha)


def _mixture_information(q, a, b) -> np.ndarray:
    """I(X; Y) in nats for P(X=1) = q, P(Y=1 | X=1) = a, P(Y=1 | X=0) = b: h(q a + (1-q) b) - q h(a) - (1-q) h(b)."""
    return np.maximum(_binary_entropy(q * a + (1 - q) * b) - q * _binary_entropy(a) - (1 - q) * _binary_entropy(b), 0.0)


def _pair_information_range(q_low, q_high, a_low, a_high, b_low, b_high) -> tuple[np.ndarray, np.ndarray]:
    """Exact (min, max) of I(X; Y) over q in [q_low, q_high], a in [a_low, a_high], b in [b_low, b_high] (nats).

    I is convex in the channel (a, b) for fixed q, zero on a = b, and concave in q for a fixed channel (Cover &
    Thomas, Thm 2.7.4). Minimum: if the a- and b-intervals overlap it is 0; if a > b throughout, dI/da =
    q (h'(m) - h'(a)) > 0 and dI/db = (1-q)(h'(m) - h'(b)) < 0 with m = q a + (1-q) b between them, so the
    minimum is at the corner (a_low, b_high) (mirrored if b > a), and then at an end of the q-interval (concavity).
    Maximum: at a corner of the channel box (convexity), then at the stationary point of the concave function
    of q, where h'(m) = (h(a) - h(b)) / (a - b), i.e. m = 1 / (1 + exp(slope)), clipped to the q-interval.
    """
    gap_up, gap_down = a_low > b_high, b_low > a_high
    a_near = np.where(gap_up, a_low, a_high)
    b_near = np.where(gap_up, b_high, b_low)
    near = np.minimum(_mixture_information(q_low, a_near, b_near), _mixture_information(q_high, a_near, b_near))
    low = np.where(gap_up | gap_down, near, 0.0)
    high = np.zeros_like(low)
    for a in (a_low, a_high):
        for b in (b_low, b_high):
            diff = a - b
            safe = np.where(diff == 0, 1.0, diff)
            slope = (_binary_entropy(a) - _binary_entropy(b)) / safe
            q_star = np.clip((special.expit(-slope) - b) / safe, q_low, q_high)
            high = np.maximum(high, np.where(diff == 0, 0.0, _mixture_information(q_star, a, b)))
    return low, high


def _max_spanning_tree_weight(weights: np.ndarray) -> float:
    """Total weight of a maximum spanning forest of the complete graph with nonnegative edge ``weights`` [p, p]
    (scipy's minimum spanning tree of the negated upper triangle; zero-weight edges add nothing either way)."""
    tree = minimum_spanning_tree(-np.triu(weights, k=1))
    return float(-tree.sum())


def chow_liu_entropy(masks: ArrayLike, *, confidence: float = 0.95, units: str = "bits") -> Estimate:
    """Chow-Liu tree entropy: H_T = sum_j H(m_j) - max_T sum_{(i,j) in T} I(m_i; m_j) >= H(m).

    Chow & Liu (1968): for any spanning tree T the tree projection P_T of P has H(P_T) = sum_j H_j - sum_T I_ij and
    KL(P || P_T) = H(P_T) - H(P) >= 0; the maximum spanning tree of the pairwise informations gives the smallest
    such bound, and it is exact when P is tree-structured (e.g. a Markov chain of bits).

    Point value: plug-in bit entropies and pairwise informations reduced by Miller's bias (|X|-1)(|Y|-1)/(2N) =
    1/(2N) nats, clipped at 0. Since the empirical distribution's own tree bound uses the uncorrected (larger)
    informations, plug-in <= this value <= the plug-in marginal sum, by construction.

    Interval (certified): two-sided Clopper-Pearson intervals at level alpha/p^2 for the p proportions
    q_j = P(m_j = 1) and, for each pair i < j, the two conditional proportions P(m_j = 1 | m_i = 1) and
    P(m_j = 1 | m_i = 0) (exact given the number of samples with m_i = 1, hence also unconditionally): p^2
    intervals in all, simultaneous by the union bound. On that event every I_ij lies in the exact range of
    ``_pair_information_range`` over the box, and every H_j between the extremes of h over its interval.
    high = sum_j max H_j - max_T sum_T I_lower (an upper bound for every tree, hence for the data-chosen one);
    low = sum_j min H_j - max_T sum_T I_upper. Cost O(N p^2): meant for masks of up to a few thousand bits.

    Parameters
    ----------
    masks : array_like
        Sampled 0/1 masks, [N, p].
    confidence : float
        The interval's confidence, in (0, 1).
    units : {"bits", "nats"}
        The units of the estimate.

    Returns
    -------
    Estimate
        The point value and the certified interval.

    Raises
    ------
    ValueError
        If ``masks`` is not a 2-d 0/1 array or ``confidence``/``units`` is out of range.

    References
    ----------
    C. Chow and C. Liu, *Approximating discrete probability distributions with dependence trees*, IEEE Trans. Inf.
    Theory, 1968. docs/theory.md, section 2.5.
    """
    _checks.one_of("units", units, UNITS)
    alpha = _alpha(confidence)
    array = _as_masks(masks)
    n, p = array.shape
    x = array.astype(np.float64)
    ones = x.sum(axis=0)
    both = x.T @ x  # [i, j]: samples with m_i = m_j = 1
    q = ones / n
    given_one = both / np.maximum(ones[:, None], 1)  # empirical P(m_j = 1 | m_i = 1)
    given_zero = (ones[None, :] - both) / np.maximum(n - ones[:, None], 1)  # empirical P(m_j = 1 | m_i = 0)
    h = _binary_entropy(q)
    info = np.maximum(_mixture_information(q[:, None], given_one, given_zero) - 1.0 / (2 * n), 0.0)
    value = h.sum() - _max_spanning_tree_weight(info)

    level = alpha / p**2
    q_low, q_high = _clopper_pearson(ones, n, level)
    h_low, h_high = _entropy_range(q_low, q_high)
    a_low, a_high = _clopper_pearson(both, ones[:, None], level)  # P(m_j = 1 | m_i = 1)
    b_low, b_high = _clopper_pearson(ones[None, :] - both, n - ones[:, None], level)  # P(m_j = 1 | m_i = 0)
    info_low, info_high = _pair_information_range(q_low[:, None], q_high[:, None], a_low, a_high, b_low, b_high)
    high = h_high.sum() - _max_spanning_tree_weight(info_low)
    low = max(h_low.sum() - _max_spanning_tree_weight(info_high), 0.0)
    return _estimate("chow_liu", value, low, high, units, 1.0 - alpha)


# ------------------------------------------------------------------------------ ceilings


def mask_ceiling(p: ArrayLike, k: ArrayLike, *, units: str = "bits") -> Estimate:
    """log2 C(p, k): the entropy of the uniform distribution over masks with k of p entries kept, the largest
    entropy any pipeline that keeps exactly k weights can have (NFP Sec. 4.1 uses it for IMP).

    ``p`` and ``k`` may be sequences (one entry per layer, for layerwise pruning): the ceiling is then
    sum_l log2 C(p_l, k_l), never above the global log2 C(sum p_l, sum k_l) (Vandermonde). Exact: low = high = value
    (each term is ``lawrob.bounds.log2_binomial``: exactly 0 at k = 0 and k = p).

    Parameters
    ----------
    p : int or sequence of int
        The number of weights (per layer).
    k : int or sequence of int
        The number kept (per layer).
    units : {"bits", "nats"}
        The units of the ceiling.

    Returns
    -------
    Estimate
        The exact ceiling (low = high = value).

    Raises
    ------
    ValueError
        If k is outside [0, p] or the lengths differ.

    References
    ----------
    NFP Section 4.1. docs/theory.md, section 4.5.
    """
    _checks.one_of("units", units, UNITS)
    sizes, kept = np.atleast_1d(p), np.atleast_1d(k)
    if sizes.ndim != 1 or sizes.shape != kept.shape:
        raise ValueError(f"p and k must be two integers or two sequences of the same length, got {p!r} and {k!r}")
    total = 0.0
    for p_l, k_l in zip(sizes.tolist(), kept.tolist()):
        p_l = _checks.positive_int("p", p_l, minimum=0)
        k_l = _checks.positive_int("k", k_l, minimum=0)
        if k_l > p_l:
            raise ValueError(f"k must lie in [0, p] per layer, got k={k_l} > p={p_l}")
        total += float(bounds.log2_binomial(float(p_l), float(k_l)))
    return Estimate(total, total, total, "bits", "ceiling", 1.0).to(units)
