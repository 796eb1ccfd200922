"""The derivations of ``lawrob.symbolic`` for Bubeck & Sellke: the subgaussian chain, the variance proxy, Lemma 2.1,
Hoeffding and Theorems 2 and 3 (each returns its ``Claim`` rows; ``lawrob.symbolic.verify_all`` collects them)."""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from scipy import integrate

from lawrob import bounds
from lawrob._symbolic_claims import (
    POSITIVE, Claim, J, K, L, W, _row, _same, _solve_positive, _tail_constant, c, d, delta, eps, k, n, p, s, t)


# ------------------------------------------------------------------------------------ subgaussian chain


def _subgaussian() -> list[Claim]:
    iso = -d * t**2 / (2 * c * L**2)  # c-isoperimetry: P(|f - Ef| >= t) <= 2 exp(-d t^2 / (2 c L^2))
    c_iso = _tail_constant(iso.subs(t, s * L * sp.sqrt(c / d)), s)  # the tail of sqrt(d/c)(f - Ef)/L at s
    c_z = _tail_constant((-(s / 2) ** 2 / c_iso), s)  # P(|X z| >= s) <= P(|X| >= s/2) for |z| <= 2
    c_prop = 2 * 9  # sum of n independent, variance proxy 9C each, /sqrt(n): tail 2 exp(-t^2 / (2 * 9C))
    c0 = sp.simplify(c_prop * c_z * (L * sp.sqrt(c / d) / sp.sqrt(n)) ** 2)  # X_t = L sqrt(c/d) n^{-1/2} S
    gauss = -t**2 / (2 * (L / sp.sqrt(d)) ** 2)  # Gaussian concentration of f(G/sqrt(d)), Lip(f) = L
    c_gauss = _solve_positive(sp.Eq(gauss, iso), c)
    return [
        _row("sqrt(d/c)(f - E f)/L is C-subgaussian, P(|X| >= t) <= 2 exp(-t^2/C)", "BS Sec. 2 (says 1-subgaussian)",
             1, c_iso, c_iso <= 1, must_hold=False,
             note="known slip (docs/theory.md 3.5): it is 2-subgaussian; rigorous Theorem 2 uses 2 (exponent 9216)"),
        _row("sqrt(d/c)(f - E f)/L is 2-subgaussian", "NFP B.1.3", 2, c_iso, _same(c_iso, 2)),
        _row("times |z| <= 2 it is 8-subgaussian", "NFP B.1.3", 8, c_z, _same(c_z, 8)),
        _row("Prop 1.2: n^{-1/2} sum of independent mean-0 C-subgaussian is 18C-subgaussian", "BS Prop 1.2",
             18, c_prop, c_prop == 18,
             note="18 = 2 * 9 from the variance proxy 9C (van Handel Ex. 3.1 d, e; spot-checked below)"),
        _row("C0 = 144 c L^2/(n d), the subgaussian constant of X_t", "NFP B.1.3",
             bounds.C0_FACTOR * c * L**2 / (n * d), c0, _same(c0, bounds.C0_FACTOR * c * L**2 / (n * d)),
             note="18 * 8 = 144; lawrob.bounds.C0_FACTOR"),
        _row("c = 1 for N(0, I_d/d)", "docs/theory.md 2.1", 1, c_gauss, _same(c_gauss, 1),
             note="Gaussian concentration 2 exp(-t^2/(2 Lip^2)) of f(G/sqrt(d)), Lip = L/sqrt(d)"),
    ]


def _cosh_times_density(u: float, lam: float) -> float:
    """cosh(lam u) times the density 4 u exp(-u^2) of |X| when P(|X| >= t) = 2 exp(-t^2) beyond sqrt(ln 2)."""
    return 2 * u * (math.exp(lam * u - u * u) + math.exp(-lam * u - u * u))


def _variance_proxy() -> Claim:
    """Spot check of log E exp(l X) <= 9 C l^2/2 on the symmetric law with tails exactly 2 exp(-t^2/C), C = 1."""
    start = math.sqrt(math.log(2.0))  # P(|X| >= t) = 1 below
    worst = 0.0
    for lam in np.linspace(0.05, 8.0, 40):
        # E cosh(l|X|); the integrand is < 1e-300 beyond lam/2 + 40
        mgf, _ = integrate.quad(_cosh_times_density, start, lam / 2 + 40, args=(lam,))
        worst = max(worst, 2 * math.log(mgf) / lam**2)
    return _row("variance proxy: 2e^{-t^2/C} tails give log E e^{l X} <= 9C l^2/2", "NFP App. B.1.2 (van Handel)",
                9, f"max 2 log E e^(lX)/(C l^2) = {worst:.3f} on l in [0.05, 8]", worst <= 9,
                note="numeric spot check on the extremal-tail symmetric law, not a proof")


# ------------------------------------------------------------------------------------ Lemma 2.1 and Hoeffding


def _lemma21() -> list[Claim]:
    sigma2 = sp.Symbol("sigma2", positive=True)
    # ||G + Z - F||^2 >= ||Z||^2 + 2<Z, G> - 2<Z, F> on A (<= sigma2 - eps), B (||Z||^2 >= sigma2 - eps/6),
    # C (<Z, G> >= -eps/6):  <F, Z> >= ((sigma2 - eps/6) - 2 eps/6 - (sigma2 - eps)) / 2
    threshold = sp.simplify(((sigma2 - eps / 6) - 2 * eps / 6 - (sigma2 - eps)) / 2)
    # An exact counterexample to eps/3 (n = 1, the events are deterministic statements about the sample):
    R = sp.Rational
    s2, e, z, g, f = R(1), R(1, 10), R(992, 1000), R(-168, 10000), R(266, 10000)
    y = g + z
    facts = {"A: (y - f)^2 <= sigma2 - eps": (y - f) ** 2 <= s2 - e, "B: z^2 >= sigma2 - eps/6": z**2 >= s2 - e / 6,
             "C: z g >= -eps/6": z * g >= -e / 6,
             "|y|, |g|, |f| <= 1, |z| <= 2": max(abs(y), abs(g), abs(f)) <= 1 and abs(z) <= 2}
    counterexample = all(facts.values()) and f * z < e / 3 and f * z >= e / 4
    witness = (f"n = 1, sigma2 = 1, eps = 1/10, z = 0.992, g = -0.0168, f = 0.0266 (y = g + z): MSE = "
               f"{float((y - f) ** 2):.5f} <= 0.9, z^2 = {float(z**2):.5f} >= 59/60, z g = {float(z * g):.5f} >= -1/60, "
               f"but <F, Z> = f z = {float(f * z):.5f} < eps/3 = 0.03333 (and >= eps/4)")
    return [
        _row("fitting below the noise forces <F, Z> >= eps/3", "BS Lemma 2.1", eps / 3, threshold,
             _same(threshold, eps / 3), must_hold=False,
             note=f"known slip: only eps/4 follows (NFP Lemma 4 uses eps/4). Counterexample: {witness}"),
        _row("the counterexample to eps/3 is exact (rational arithmetic)", "docs/theory.md 3.1", "A, B, C hold and <F,Z> < eps/3",
             ", ".join(name for name, ok in facts.items() if ok), counterexample),
        _row("fitting below the noise forces <F, Z> >= eps/4", "NFP Lemma 4", eps / 4, threshold, _same(threshold, eps / 4)),
    ]


def _hoeffding_exponent(range_width, threshold):
    """Hoeffding for a mean of n variables in an interval of width range_width: exp(-2 n threshold^2 / width^2)."""
    return sp.simplify(2 * n * threshold**2 / range_width**2)


def _hoeffding() -> list[Claim]:
    z2 = _hoeffding_exponent(4, eps / 6)  # z^2 in [0, 4]
    zg = _hoeffding_exponent(4, eps / 6)  # z g in [-2, 2]
    t_comp = (eps / 8) * sp.sqrt(n / k)
    per_component = sp.simplify(2 * t_comp**2 / 4**2)  # Hoeffding on |S_l| terms in [-2, 2] at t sqrt|S_l|
    return [
        _row("z^2 in [0,4] at eps/6: exp(-n eps^2/288) <= exp(-n eps^2/8^3)", "BS Lemma 2.1; NFP Lemma 4",
             n * eps**2 / 8**3, z2, sp.simplify(z2 - n * eps**2 / 8**3).is_nonnegative, note="288 <= 512"),
        _row("z g in [-2,2] at eps/6: exp(-n eps^2/288) <= exp(-n eps^2/8^3)", "BS Lemma 2.1; NFP Lemma 4",
             n * eps**2 / 8**3, zg, sp.simplify(zg - n * eps**2 / 8**3).is_nonnegative),
        _row("per component, t = (eps/8) sqrt(n/k): 2 exp(-t^2/8) = 2 exp(-n eps^2/(512 k))", "NFP Lemma 5",
             n * eps**2 / (8**3 * k), per_component, _same(per_component, n * eps**2 / (8**3 * k)), note="exact"),
        _row("first terms: 2 exp(-n eps^2/8^3) + 2k exp(-n eps^2/(8^3 k)) <= (2k+2) exp(.) <= 4k exp(.)", "BS Thm 2",
             4 * k, 2 * k + 2,
             sp.solve_univariate_inequality(2 * k + 2 <= 4 * k, k, relational=False, domain=POSITIVE)
             == sp.Interval(1, sp.oo),
             note="(2k+2) <= 4k iff k >= 1"),
    ]


# ------------------------------------------------------------------------------------ BS Theorems 2 and 3


C_X = 144  # the subgaussian constant of sqrt(d/c)(f - Ef) z/L after Prop 1.2: 2 * 4 * 18 (see _subgaussian)


def _repaired_thm2_exponent():
    """K of the repaired Theorem 2: <F, Z> >= eps/4 split into the centred part and the component means, whose
    Hoeffding term 2k exp(-b^2 n/(8k)) keeps the printed 8^3 iff b^2/8 = eps^2/512, i.e. b = eps/8."""
    b_sym = sp.Symbol("b", positive=True)
    b = _solve_positive(sp.Eq(b_sym**2 / 8, eps**2 / 512), b_sym)
    return sp.simplify(C_X * eps**2 / (eps / 4 - b) ** 2)


def _bs_theorem2() -> list[Claim]:
    printed_proof = C_X * 6**2  # threshold eps/6 for the centred part
    repaired = _repaired_thm2_exponent()
    return [
        _row("Theorem 2 exponent with the printed eps/6 split: eps^2 n d/(K c L^2)", "BS (2.3), Thm 2", 8**4,
             printed_proof, 8**4 >= printed_proof, must_hold=False,
             note="known slip (docs/theory.md 3.5): 36 * 144 = 5184 > 4096 = 8^4; 10^4 repairs this step"),
        _row("Theorem 2 exponent with Lemma 2.1's eps/4 (centred part eps/4 - eps/8 = eps/8)", "BS Thm 2 repaired",
             8**4, repaired, 8**4 >= repaired, must_hold=False,
             note="known slip: 64 * 144 = 9216; the mean part keeps 8^3 only with threshold eps/8"),
        _row("10^4 (likely camera-ready) suffices for the repaired Theorem 2", "BS camera-ready [unconfirmed]",
             10**4, repaired, 10**4 >= repaired, note="10000 >= 9216"),
        _row("lawrob.bounds rigorous Theorem 2 exponent", "lawrob.bounds.BS['rigorous']",
             bounds.BS["rigorous"].thm2_exponent, repaired, bounds.BS["rigorous"].thm2_exponent == repaired),
    ]


def _bs_theorem3() -> list[Claim]:
    N = sp.Symbol("N", positive=True)
    printed_L = eps / (2**9 * sp.sqrt(c)) * sp.sqrt(n * d / (p * sp.log(N) + sp.log(4 / delta)))
    step3 = sp.simplify(8**4 / (sp.Rational(1, 2) ** 2) * 2**2)  # Theorem 2 at eps/2 with Lipschitz bound 2L
    solved = _solve_positive(sp.Eq(p * sp.log(N) - eps**2 * n * d / (8**6 * c * L**2), sp.log(delta / 4)), L)
    rig = bounds.BS["rigorous"]
    rigorous_exponent = _repaired_thm2_exponent() * 2**2  # Theorem 2 (9216) at eps/2, Lipschitz bound L (internal net)
    rig_L = _solve_positive(sp.Eq(p * sp.log(N) - eps**2 * n * d / (rigorous_exponent * c * L**2), sp.log(delta / 4)), L)
    rig_prefactor = sp.sqrt(rigorous_exponent)
    with_2L = sp.sqrt(rigorous_exponent * 4)
    mixture_min = 4 * 8**3  # 4k exp(-n (eps/2)^2/(8^3 k)) <= delta/2  <=>  2048 k ln(8k/delta) <= n eps^2
    extreme = {n: K * k * sp.log(8 * k / delta) / eps**2}  # the condition at equality (the term decreases in n)
    first_term = sp.simplify((4 * k * sp.exp(-n * eps**2 / (K * k))).subs(extreme))
    nfp_k = sp.solve_univariate_inequality((2 * k + 2) / (8 * k) <= sp.Rational(1, 2), k, relational=False,
                                           domain=POSITIVE)
    example = float((eps / (2**9 * sp.sqrt(c)) * sp.sqrt(n * d / (p * sp.log(60 * W * J / eps) + sp.log(4 / delta)))).subs(
        {eps: sp.Rational(1, 10), c: 1, n: 10**4, d: 100, p: 10**5, W: 10, J: 10, delta: sp.Rational(1, 100)}))
    return [
        _row("Thm 3 step 3: Theorem 2 at eps/2 and 2L gives exponent eps^2 n d/(K c L^2)", "BS Thm 3 proof",
             8**6, step3, 8**6 >= step3, note="8^4 * 16 = 2^16 <= 8^6 = 2^18 (loose, valid)"),
        _row("2^9 from the net and union bound: 2 exp(p ln N - eps^2 n d/(8^6 c L^2)) = delta/2", "BS Thm 3",
             printed_L, solved, _same(solved**2, printed_L**2), note="2^9 = sqrt(8^6)"),
        _row("mixture condition 8^4 k ln(8k/delta) <= n eps^2 makes 4k exp(-n eps^2/(8^4 k)) <= delta/2",
             "BS Thm 3", "delta/2", first_term, _same(first_term, delta / 2), note="for any constant K: 4k delta/(8k)"),
        _row("smallest sufficient BS mixture constant (Theorem 2 at eps/2: 4 * 8^3)", "docs/theory.md 3.3",
             bounds.BS_MIXTURE_MIN, mixture_min, bounds.BS_MIXTURE_MIN == mixture_min,
             note="lawrob.bounds.BS_MIXTURE_MIN; 8^4 = 4096 and 10^4 both >= 2048 (default 8^4)"),
        _row("8^4 and 10^4 are both sufficient mixture constants", "BS Thm 3 (submission / camera-ready)",
             "8^4, 10^4", f">= {mixture_min}", min(8**4, 10**4) >= mixture_min),
        _row("10^4 is compatible with the final 2^9: sqrt(16 * 10^4) = 400 <= 512", "docs/theory.md 3.5", 2**9,
             sp.sqrt(16 * 10**4), sp.sqrt(16 * 10**4) <= 2**9),
        _row("printed 2^9 survives the repaired Theorem 2 with an eps/(8J)-net, even with 2L", "BS Thm 3 repaired",
             2**9, with_2L, with_2L <= 2**9, note="sqrt(9216 * 4 * 4) = 384; needs W J/eps >= 1/44 for (60WJ/eps)^p"),
        _row("rigorous BS prefactor: Theorem 2 (9216) at eps/2, Lipschitz bound L, internal eps/(8J)-net",
             "lawrob.bounds.BS['rigorous']", rig.prefactor, rig_prefactor,
             rig.prefactor == rig_prefactor and _same(rig_L**2, (eps / (rig.prefactor * sp.sqrt(c))) ** 2
                                                       * n * d / (p * sp.log(N) + sp.log(4 / delta)))),
        _row("worked example n=1e4, d=100, p=1e5, W=J=10, eps=0.1, delta=0.01, c=1: L_BS ~ 1.9e-4", "docs/theory.md 6",
             "1.9e-4", f"{example:.4g}", round(example, 5) == 1.9e-4),
        _row("NFP: 8^3 k ln(8k/delta) <= n eps^2 makes (2k+2) exp(-n eps^2/(8^3 k)) <= delta/2", "NFP Thm 4 step 3",
             "k >= 1", nfp_k, nfp_k == sp.Interval(1, sp.oo), note="(2k+2) delta/(8k) <= delta/2 iff k >= 1"),
    ]
