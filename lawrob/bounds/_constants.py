"""The constants of both papers' theorems, as printed and as repaired (docs/theory.md, sections 3.5,
4.4 and the table of section 5).

``lawrob.symbolic`` re-derives each of them with sympy; every formula of ``lawrob.bounds`` reads them from here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

VARIANTS = ("paper", "rigorous")
UNITS = ("bits", "nats")
LN2 = math.log(2.0)


class BSConstants(NamedTuple):
    """Constants of BS Theorem 3, L = eps / (prefactor sqrt(c)) sqrt(n d / (p ln(offset + cover W J/eps) + ln(4/delta))).

    ``thm2_exponent``: K in Theorem 2's term 2 exp(log|F| - eps^2 n d / (K c L^2)); ``net_divisor``: the proof's
    eps/(net_divisor J)-net, whose size is <= (1 + 2 net_divisor W J/eps)^p.

    Parameters
    ----------
    prefactor : int
        The prefactor (2^9 printed, 192 repaired).
    thm2_exponent : int
        K of Theorem 2.
    net_divisor : int
        The proof's net is an eps/(net_divisor J)-net.
    cover_offset : int
        The offset inside the covering logarithm.
    cover : int
        The factor of W J/eps inside the covering logarithm.

    References
    ----------
    BS Theorems 2 and 3. docs/theory.md, sections 3.2, 3.3 and 3.5.
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

    Parameters
    ----------
    prefactor : int
        The prefactor 1152 = 96 a1 sqrt(2).
    accuracy : float
        The fraction of eps left after the net rounding.
    truncation_bits : int
        The bits the Lipschitz truncation adds to the information.
    net_divisor : int
        The proof's net is an eps/(net_divisor J)-net.
    eps_label : str
        How the accuracy reads in a condition.

    References
    ----------
    NFP Theorem 4. docs/theory.md, sections 4.3 and 4.4.
    """

    prefactor: int
    accuracy: float
    truncation_bits: int
    net_divisor: int
    eps_label: str


# BS Theorem 3 as printed (the submission text): 2^9, Theorem 2 with 8^4, an eps/(6J)-net covered by (60 W J/eps)^p.
# Rigorous (derived in lawrob.symbolic): Theorem 2 needs 8^2 * 144 = 9216 (2-subgaussian convention and Lemma
# 2.1's eps/4); an internal eps/(8J)-net of {Lip <= L} (size <= (1 + 16 W J/eps)^p, MSE moves by <= eps/2) and
# Theorem 2 at eps/2 with Lipschitz bound L give the prefactor 2 sqrt(9216) = 192.
BS = {"paper": BSConstants(prefactor=2**9, thm2_exponent=8**4, net_divisor=6, cover_offset=0, cover=60),
      "rigorous": BSConstants(prefactor=192, thm2_exponent=9216, net_divisor=8, cover_offset=1, cover=16)}
# NFP Theorem 4 as printed (arXiv v1): 96 a1 sqrt(2) = 1152 with a1^2 = 72. Rigorous: an eps/(30J)-net, the
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
BS_MIXTURE_MIN = 4 * 8**3  # 2048: Theorem 2 at eps/2 needs only this (docs/theory.md 3.3; lawrob.symbolic)
NFP_MIXTURE = 8**3  # NFP Thm 4: 8^3 k ln(8k/delta) <= n eps^2
NFP_COVER = 60  # p_eff's log2(1 + 60 W J / eps)

_CONSTANT_NAMES = {8**3: "8^3", 8**4: "8^4", 10**4: "10^4"}
