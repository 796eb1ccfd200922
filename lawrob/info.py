"""Mask entropy and mask-data mutual information: estimators with certified intervals, the inputs of p_eff.

No Free Prune (NFP, Kumar, Luo & Sellke 2024) bounds Lip(f) through p_eff = I(m_W; D) + E||m||_1 log2(1 + 60 W J / eps)
(docs/theory.md, sections 2.4 and 2.5). A larger p_eff only loosens the theorem's bound, so lawrob estimates I(m; D) from above, with
confidence. The route (NFP App. C.2): fix everything random except the data (initialization, minibatch order,
tie-breaks); the pruning pipeline is then a deterministic function of D, so, since the initialization is drawn
independently of D,

    I(m; D) <= I(m; D | init) = H(m | init) - H(m | D, init) = H(m | init),

and H(m | init) is an entropy of masks that can be sampled: rerun the pipeline on K fresh data sets.

Entropy estimators over masks, an array [samples, p] of 0/1 (one row per sampled mask):

- ``plugin_entropy``: the entropy of the empirical distribution of whole masks.
- ``miller_madow_entropy``: plug-in plus Miller's (1955) first-order bias correction (m_hat - 1) / (2N) nats.
- ``chow_liu_entropy``: the entropy of the best tree-structured approximation (Chow & Liu 1968),
  sum_j H(m_j) - max_T sum_{(i,j) in T} I(m_i; m_j) >= H(m).
- ``marginal_entropy``: sum_j H(m_j) >= H(m) (subadditivity).
- ``mask_ceiling``: log2 C(p, k), the entropy of the uniform distribution on masks with k ones (per layer: the sum).

For the point values, plug-in <= Chow-Liu <= marginal holds by construction (see each function); the ceiling
bounds H(m) itself but not the marginal sum (uniform k-subsets have marginal sum p h2(k/p) > log2 C(p, k)),
so ``mask_information`` checks that link and reports it. Every interval is a finite-sample confidence interval
for the estimator's own estimand (H(m), the tree entropy or the marginal sum, all >= H(m)), so each ``high`` is a
certified upper bound on H(m) at its confidence level; the derivations are in the functions' docstrings.

``mask_information`` runs a pruning pipeline on resampled data sets and applies all of them; NFP's effective
parameter count is then ``lawrob.bounds.p_eff(result.upper, result.active, W, J, eps, units=result.units)`` (the
one p_eff: every formula and constant lives in ``lawrob.bounds``). ``information_from_correlations`` is the other
direction, a certified lower bound on the information from measured noise correlations (the Lemma-1 inversion,
``lawrob.bounds.lemma1_information``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from lawrob import _checks, bounds
from lawrob._info_entropy import (
    Estimate, _alpha, _as_masks, _estimate, chow_liu_entropy, marginal_entropy, mask_ceiling, miller_madow_entropy,
    plugin_entropy)
from lawrob._mask_sampling import DEFAULT_CHUNK, _keys, default_chunk, sample_masks
from lawrob.bounds import LN2, UNITS

__all__ = [
    "CHOW_LIU_MAX_BITS", "DEFAULT_CHUNK", "ESTIMATORS", "Estimate", "MaskInformation", "chow_liu_entropy",
    "default_chunk", "estimate_information", "information_from_correlations", "marginal_entropy", "mask_ceiling",
    "mask_information", "miller_madow_entropy", "plugin_entropy", "sample_masks",
]


# ------------------------------------------------------------------------ mask information

ESTIMATORS = ("plugin", "miller_madow", "chow_liu", "marginal")
CHOW_LIU_MAX_BITS = 4096  # O(N p^2) time and O(p^2) memory: beyond this the default skips the Chow-Liu bound


class MaskInformation(NamedTuple):
    """Estimates of I(m; D | init) = H(m | init) for a pipeline deterministic given (init, D), in ``units``.

    estimates: name -> Estimate, the mean over the initializations of each estimator ("plugin", "miller_madow",
        "chow_liu", "marginal") and of the "ceiling"; per_init: name -> one Estimate per initialization.

    upper: the mean over initializations of the smallest certified upper bound (the least ``high`` among the
        plug-in, Chow-Liu and marginal bounds and the ceiling): the I(m; D) to put into p_eff,
        ``lawrob.bounds.p_eff(upper, active, W, J, eps, units=units)``.

    Confidence: every interval (all estimators, all initializations) holds at once with probability
        >= ``confidence`` (union bound); the mean intervals cover the mean of the per-initialization values.

    chain: (name, mean point value) in the order plug-in <= Chow-Liu <= marginal <= ceiling;
        chain_violations: the links that fail (plug-in <= Chow-Liu <= marginal hold by construction; the last
        link can fail, see the module docstring).

    active: E||m||_1, the mean number of ones per mask (for p_eff's count term).

    Parameters
    ----------
    estimates : dict
        Estimator name -> mean ``Estimate`` over the initializations.
    per_init : dict
        Estimator name -> one ``Estimate`` per initialization.
    upper : float
        The mean smallest certified upper bound, the I(m; D) for p_eff.
    chain : tuple
        (name, mean point value) pairs, plug-in to ceiling.
    chain_violations : tuple
        The links of the chain that fail.
    active : float
        E||m||_1.
    datasets : int
        The number of data sets per initialization.
    inits : int
        The number of initializations.
    confidence : float
        The joint confidence of all intervals.
    units : str
        "bits" or "nats".

    References
    ----------
    NFP Section 1.4 and Appendix C.2. docs/theory.md, section 2.5.
    """

    estimates: dict
    per_init: dict
    upper: float
    chain: tuple
    chain_violations: tuple
    active: float
    datasets: int
    inits: int
    confidence: float
    units: str


def _ceiling_bits(masks: np.ndarray, groups) -> float:
    """log2 of the number of masks whose block counts are among those observed in ``masks`` [N, p].

    Blocks (``groups``: consecutive sizes, e.g. one per layer) whose count never varies contribute
    log2 C(p_l, k_l); the other blocks are merged and contribute log2 sum_k C(p_rest, k) over their observed
    total counts (log2 C(p_rest, k) when that total is fixed, as under global pruning to a fixed density).
    """
    p = masks.shape[-1]
    sizes = [p] if groups is None else list(_checks.positive_ints("groups", groups))
    if sum(sizes) != p:
        raise ValueError(f"groups must add up to the mask length p={p}, got sizes summing to {sum(sizes)}")
    edges = np.cumsum([0, *sizes])
    counts = np.stack([masks[:, a:b].sum(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)
    fixed = np.all(counts == counts[:1], axis=0)
    bits = float(mask_ceiling([s for s, f in zip(sizes, fixed) if f], counts[0, fixed]).value) if fixed.any() else 0.0
    rest = [s for s, f in zip(sizes, fixed) if not f]
    if rest:
        totals = np.unique(counts[:, ~fixed].sum(axis=1))
        logs = np.array([mask_ceiling(sum(rest), int(k)).value for k in totals]) * LN2
        bits += float(special.logsumexp(logs)) / LN2
    return min(bits, float(p))  # log2 2^p: rounding of the sums above can only overshoot it


def _chain(values: dict) -> tuple[tuple, tuple]:
    order = [name for name in ("plugin", "chow_liu", "marginal", "ceiling") if name in values]
    chain = tuple((name, values[name]) for name in order)
    violations = tuple(f"{a} > {b}" for (a, x), (b, y) in zip(chain[:-1], chain[1:]) if x > y + 1e-9 * max(1.0, abs(y)))
    return chain, violations


def estimate_information(masks: ArrayLike, *, confidence: float = 0.95, units: str = "bits",
                         ceiling: float | None = None, groups: ArrayLike | None = None,
                         estimators: Sequence[str] | None = None) -> MaskInformation:
    """Every entropy estimator on sampled masks [inits, datasets, p] (or [datasets, p] for one initialization).

    Row k of initialization i must be the pipeline's mask on the k-th independent data set with the i-th
    initialization held fixed; H(m | init_i) is then I(m; D | init_i) for a pipeline deterministic given
    (init, D). ``ceiling`` (bits): log2 of the number of masks the pipeline can output; by default it is
    inferred from the observed counts, per block of ``groups`` (see ``_ceiling_bits``), which assumes the
    pipeline keeps the counts the samples show (true of ``lawrob.prune``, which keeps exact counts); it is
    inferred for each initialization on its own.
    ``estimators``: a subset of ``ESTIMATORS`` (default: all, Chow-Liu only up to ``CHOW_LIU_MAX_BITS`` bits).
    The confidence is split evenly over the three interval families (whole-mask, Chow-Liu, marginal) and the
    initializations, so all intervals hold at once with probability >= ``confidence``.

    Parameters
    ----------
    masks : array_like
        Sampled 0/1 masks, [inits, datasets, p] or [datasets, p].
    confidence : float
        The joint confidence of all intervals, in (0, 1).
    units : {"bits", "nats"}
        The units of the estimates.
    ceiling : float, optional
        log2 of the number of masks the pipeline can output (default: inferred).
    groups : array_like, optional
        The block of each bit, for the inferred ceiling.
    estimators : sequence of str, optional
        A subset of ``ESTIMATORS``.

    Returns
    -------
    MaskInformation
        Every estimate, the chain and the certified upper bound.

    Raises
    ------
    ValueError
        If ``masks`` is not a 0/1 array of 2 or 3 dimensions, an estimator is unknown or a number is out of range.

    References
    ----------
    NFP Section 4.1. docs/theory.md, section 2.5.
    """
    _checks.one_of("units", units, UNITS)
    alpha = _alpha(confidence)
    array = np.asarray(masks)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"masks must be a [inits, datasets, p] or [datasets, p] array, got shape {np.shape(masks)}")
    inits, datasets, p = array.shape
    if estimators is None:
        estimators = tuple(e for e in ESTIMATORS if e != "chow_liu" or p <= CHOW_LIU_MAX_BITS)
    if isinstance(estimators, str) or not hasattr(estimators, "__iter__") or not estimators:
        raise TypeError(f"estimators must be None or a non-empty sequence of names in {list(ESTIMATORS)}, "
                        f"got {estimators!r}")
    for name in estimators:
        _checks.one_of("estimators[i]", name, ESTIMATORS)
    families = len({"whole" if e in ("plugin", "miller_madow") else e for e in estimators})
    level = 1.0 - alpha / (families * inits)
    array = _as_masks(array.reshape(-1, p)).reshape(array.shape)
    if ceiling is not None:
        ceiling = _checks.real_in("ceiling", ceiling, 0.0, float(p))
    functions = {"plugin": plugin_entropy, "miller_madow": miller_madow_entropy, "chow_liu": chow_liu_entropy,
                 "marginal": marginal_entropy}
    per_init: dict[str, list] = {name: [] for name in (*estimators, "ceiling")}
    uppers = []
    for masks_i in array:
        bits = _ceiling_bits(masks_i, groups) if ceiling is None else ceiling
        ceiling_i = Estimate(bits, bits, bits, "bits", "ceiling", 1.0).to(units)
        per_init["ceiling"].append(ceiling_i)
        for name in estimators:
            options = {"ceiling": bits} if name in ("plugin", "miller_madow") else {}
            per_init[name].append(functions[name](masks_i, confidence=level, units=units, **options))
        uppers.append(min([per_init[e][-1].high for e in estimators if e != "miller_madow"] + [ceiling_i.value]))
    mean = {name: Estimate(float(np.mean([e.value for e in values])), float(np.mean([e.low for e in values])),
                           float(np.mean([e.high for e in values])), units, name, 1.0 - alpha)
            for name, values in per_init.items()}
    mean["ceiling"] = mean["ceiling"]._replace(confidence=1.0)
    chain, violations = _chain({name: e.value for name, e in mean.items()})
    return MaskInformation(estimates=mean, per_init={k: tuple(v) for k, v in per_init.items()},
                           upper=float(np.mean(uppers)), chain=chain, chain_violations=violations,
                           active=float(array.sum(axis=-1).mean()), datasets=datasets, inits=inits,
                           confidence=1.0 - alpha, units=units)


def mask_information(pipeline: Callable, sample_data: Callable, *, key: jax.Array, datasets: int, inits: int = 3,
                     chunk_size: int | None | str = "auto", devices: Sequence | None = None, confidence: float = 0.95,
                     units: str = "bits", ceiling: float | None = None,
                     estimators: Sequence[str] | None = None) -> MaskInformation:
    """Upper estimates of I(m; D) for a pruning pipeline: ``sample_masks`` then ``estimate_information``.

    The pipeline runs with its key (initialization, minibatch order, tie-breaks) fixed while ``datasets`` data
    sets are resampled from ``sample_data``, for ``inits`` keys. When the pipeline is deterministic given
    (key, D) and the key is drawn independently of D, I(m; D) <= I(m; D | key) = H(m | key) (NFP Sec. 1.4 and
    App. C.2), the quantity estimated here and averaged over the keys. A data-free pipeline (random pruning
    with a fixed key, SynFlow) gives identical masks, hence point values of exactly 0 for every estimator.
    The blocks for the ceiling are the pipeline's mask leaves (one per weight matrix and bias vector).

    Parameters
    ----------
    pipeline : callable
        (key, dataset) -> mask, deterministic given both.
    sample_data : callable
        key -> a fresh ``Dataset``.
    key : jax.Array
        A ``jax.random.key``.
    datasets : int
        The number of data sets per initialization.
    inits : int
        The number of pipeline keys.
    chunk_size : int, None or "auto"
        Pipelines per vmap (``sample_masks``).
    devices : sequence, optional
        The devices to split the runs over.
    confidence : float
        The joint confidence of all intervals.
    units : {"bits", "nats"}
        The units of the estimates.
    ceiling : float, optional
        log2 of the number of masks the pipeline can output.
    estimators : sequence of str, optional
        A subset of ``ESTIMATORS``.

    Returns
    -------
    MaskInformation
        The estimates of I(m; D).

    Raises
    ------
    ValueError
        If a count or option is out of range.

    References
    ----------
    NFP Section 1.4 and Appendix C.2. docs/theory.md, section 2.5.
    """
    masks = sample_masks(pipeline, sample_data, key=key, datasets=datasets, inits=inits, chunk_size=chunk_size,
                         devices=devices)
    init_key, data_key = _keys(key, 1, 1)
    leaves = jax.tree.leaves(jax.eval_shape(pipeline, init_key[0], jax.eval_shape(sample_data, data_key[0, 0])))
    return estimate_information(masks, confidence=confidence, units=units, ceiling=ceiling,
                                groups=[math.prod(leaf.shape) for leaf in leaves], estimators=estimators)


def information_from_correlations(correlations: ArrayLike, *, n: int, d: int, L: float, c: float = 1.0,
                                  confidence: float = 0.95, units: str = "bits") -> Estimate:
    """A certified lower bound on I({X_t}; W) <= I(W; D) from the measured noise correlations of trained networks.

    ``correlations``: X_W = (1/n) sum_i (f^W(x_i) - E f^W) z_i of N independent trainings (fresh data and
    randomness each; e.g. ``history["noise_corr"][-1]`` of ``lawrob.train.fit``). The Lemma-1 inversion
    (docs/theory.md, section 4.1; ``lawrob.bounds.lemma1_information``): if P(|X_W| >= alpha) > delta, then
    I > delta (alpha^2 / (72 C0) - ln(2/delta)) nats, with C0 = 144 c L^2 / (n d) (``lawrob.bounds.C0_FACTOR``) for L-Lipschitz networks on c-isoperimetric data (L: a bound on every trained network's
    Lipschitz constant, e.g. the largest certified upper bound). For every threshold alpha = the j-th largest
    |X_i|, delta_j is the Clopper-Pearson lower confidence bound on P(|X_W| >= alpha) from j of N samples, at
    level 1 - (1 - confidence) / N (a union bound over the N thresholds), and the best of the N bounds is
    returned. ``value`` = ``low`` = that bound (it may be negative: the data then certify nothing), ``high`` = inf.

    Parameters
    ----------
    correlations : array_like
        The N measured noise correlations X_W.
    n : int
        The number of samples of each training.
    d : int
        The input dimension.
    L : float
        A bound on every trained network's Lipschitz constant.
    c : float
        The isoperimetry constant of the data.
    confidence : float
        The confidence of the bound, in (0, 1).
    units : {"bits", "nats"}
        The units of the bound.

    Returns
    -------
    Estimate
        ``value`` = ``low`` = the certified lower bound, ``high`` = inf.

    Raises
    ------
    ValueError
        If a correlation is not finite or a number is out of range.

    References
    ----------
    NFP Lemma 1, inverted. docs/theory.md, section 4.1.
    """
    x = np.abs(np.asarray(_checks.finite_array("correlations", correlations), dtype=float).ravel())
    if x.size < 1:
        raise ValueError("correlations must hold at least one value")
    n = _checks.positive_int("n", n)
    d = _checks.positive_int("d", d)
    L = _checks.real_in("L", L, 0.0, math.inf, low_open=True, high_open=True)
    c = _checks.real_in("c", c, 0.0, math.inf, low_open=True, high_open=True)
    alpha = _alpha(confidence)
    _checks.one_of("units", units, UNITS)
    c0 = bounds.C0_FACTOR * c * L**2 / (n * d)
    thresholds = np.sort(x)[::-1]  # at least j samples reach thresholds[j - 1]
    reached = np.arange(1, x.size + 1)
    delta = stats.beta.ppf(alpha / x.size, reached, x.size - reached + 1) * (1 - 1e-12)  # one-sided CP, P > delta
    inverted = np.atleast_1d(bounds.lemma1_information(thresholds, delta, c0, units="nats").value)
    nats = np.where(delta > 0, inverted, -np.inf)
    best = float(np.max(nats))
    return _estimate("lemma1_inversion", best, best, math.inf, units, confidence)
