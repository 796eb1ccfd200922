"""The bounds of Bubeck & Sellke (BS) and of Kumar, Luo & Sellke, "No Free Prune" (NFP), with every constant.

Pure math on numbers (NumPy/SciPy, float64; no JAX). Every array argument broadcasts against the others with
NumPy rules, so one call evaluates a whole grid. The formulas, their sources and the audit of the papers'
constants are in ``docs/theory.md`` (section numbers below refer to it); ``lawrob.symbolic`` re-derives
every constant of this module with sympy (``verify_all()`` has a must-hold row per rigorous constant, so the
two cannot drift apart).

Variants. ``variant="paper"`` is each formula exactly as printed. ``variant="rigorous"`` is what the proof gives
once every slip listed in docs/theory.md, sections 3.5 and 4.4, is repaired; the repairs are listed in ``bubeck_sellke`` and
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

Layout (private modules; import every name from ``lawrob.bounds``): ``_constants`` (every constant, printed and
repaired), ``_results`` (``BoundResult`` and the shared argument checks), ``_bs`` (Bubeck-Sellke), ``_nfp``
(No Free Prune: Lemma 1, Theorems 3 and 4, p_eff) and ``_entropy`` (the mask-entropy identities).
"""

from lawrob.bounds._bs import (
    bs_finite_class, bubeck_sellke, bubeck_sellke_inverse, deep_network_constants, mixture_condition)
from lawrob.bounds._constants import (
    A1_SQUARED, BS, BS_MIXTURE_MIN, C0_FACTOR, HOEFFDING, LN2, MIXTURE_CAMERA_READY, MIXTURE_DEFAULT,
    MIXTURE_SUBMISSION, NFP, NFP_COVER, NFP_FINITE_CONSTANT, NFP_MIXTURE, UNITS, VARIANTS, BSConstants, NFPConstants)
from lawrob.bounds._entropy import entropy_ceiling, h2, imp_ratio, log2_binomial
from lawrob.bounds._nfp import (
    lemma1_information, lemma1_threshold, nfp_finite_probability, no_free_prune, no_free_prune_inverse, p_eff)
from lawrob.bounds._results import BoundResult

__all__ = [
    "A1_SQUARED", "BS", "BS_MIXTURE_MIN", "C0_FACTOR", "HOEFFDING", "LN2", "MIXTURE_CAMERA_READY", "MIXTURE_DEFAULT",
    "MIXTURE_SUBMISSION", "NFP", "NFP_COVER", "NFP_FINITE_CONSTANT", "NFP_MIXTURE", "UNITS", "VARIANTS", "BSConstants",
    "BoundResult", "NFPConstants", "bs_finite_class", "bubeck_sellke", "bubeck_sellke_inverse",
    "deep_network_constants", "entropy_ceiling", "h2", "imp_ratio", "lemma1_information", "lemma1_threshold",
    "log2_binomial", "mixture_condition", "nfp_finite_probability", "no_free_prune", "no_free_prune_inverse", "p_eff",
]
