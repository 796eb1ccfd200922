"""lawrob.bounds: exact values against the formulas written out in plain math, scaling and monotonicity,
conditions and their reasons, invalid input, vectorized == elementwise, inverse forms, and the `lawrob bound` CLI."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lawrob import bounds, cli

LN2 = math.log(2)


# ------------------------------------------------------------------ the formulas, written out independently


def bs_paper(n, d, p, eps, delta, W, J, c=1.0):
    return eps / (2**9 * math.sqrt(c)) * math.sqrt(n * d / (p * math.log(60 * W * J / eps) + math.log(4 / delta)))


def bs_rigorous(n, d, p, eps, delta, W, J, c=1.0):
    return eps / (192 * math.sqrt(c)) * math.sqrt(n * d / (p * math.log(1 + 16 * W * J / eps) + math.log(4 / delta)))


def nfp_paper(n, d, p_eff, eps, delta, c=1.0):
    prefactor = eps / (96 * math.sqrt(72) * math.sqrt(2 * c))
    return prefactor * math.sqrt(n * d * delta / (p_eff + delta / 2 * math.log(4 / delta)))


def nfp_rigorous(n, d, p_eff_bits, eps, delta, c=1.0):
    information = LN2 * (p_eff_bits + 1)
    return 13 * eps / 15 / (1152 * math.sqrt(c)) * math.sqrt(n * d * delta / (information + delta / 2 * math.log(4 / delta)))


# (n, d, p or p_eff, eps, delta, W, J, c, k): all inside every condition of both theorems
VALID_POINTS = [
    (1e8, 100, 1e5, 0.1, 0.01, 10, 10, 1.0, 1),
    (5e7, 784, 2e5, 0.5, 0.05, 3.0, 0.7, 2.5, 3),
    (3e6, 10, 123, 0.9, 0.5, 1.0, 1.0, 0.5, 1),
    (2e9, 1, 1e6, 0.01, 0.001, 100.0, 1e3, 1.0, 2),
]


@pytest.mark.parametrize("n, d, p, eps, delta, W, J, c, k", VALID_POINTS)
def test_bubeck_sellke_exact_values(n, d, p, eps, delta, W, J, c, k):
    paper = bounds.bubeck_sellke(n, d, p, eps, delta, W, J, c=c, k=k)
    rigorous = bounds.bubeck_sellke(n, d, p, eps, delta, W, J, c=c, k=k, variant="rigorous")
    assert paper.value == pytest.approx(bs_paper(n, d, p, eps, delta, W, J, c), rel=1e-13)
    assert rigorous.value == pytest.approx(bs_rigorous(n, d, p, eps, delta, W, J, c), rel=1e-13)
    assert paper.valid and rigorous.valid and paper.reason == rigorous.reason == ""
    assert paper.scaling == pytest.approx(math.sqrt(n * d / p), rel=1e-14)
    assert (paper.variant, rigorous.variant, paper.theorem) == ("paper", "rigorous", "BS Theorem 3")


@pytest.mark.parametrize("n, d, p_eff, eps, delta, W, J, c, k", VALID_POINTS)
def test_no_free_prune_exact_values(n, d, p_eff, eps, delta, W, J, c, k):
    paper = bounds.no_free_prune(n, d, p_eff, eps, delta, c=c, k=k)
    rigorous = bounds.no_free_prune(n, d, p_eff, eps, delta, c=c, k=k, variant="rigorous")
    assert paper.value == pytest.approx(nfp_paper(n, d, p_eff, eps, delta, c), rel=1e-13)
    assert paper.value == pytest.approx(eps / (1152 * math.sqrt(c)) * math.sqrt(
        n * d * delta / (p_eff + delta / 2 * math.log(4 / delta))), rel=1e-13)
    assert rigorous.value == pytest.approx(nfp_rigorous(n, d, p_eff, eps, delta, c), rel=1e-13)
    assert paper.valid and rigorous.valid
    assert paper.scaling == pytest.approx(math.sqrt(n * d / p_eff), rel=1e-14)


def test_theory_worked_example():
    """docs/theory.md, section 6: n=1e4, d=100, p=1e5, W=J=10, eps=0.1, delta=0.01, c=1 gives L_BS ~ 1.9e-4."""
    result = bounds.bubeck_sellke(1e4, 100, 1e5, 0.1, 0.01, 10, 10)
    assert round(result.value, 5) == 1.9e-4
    assert result.value == pytest.approx(1.8620488e-4, rel=1e-7)


def test_rigorous_nfp_units_are_converted_exactly():
    """A p_eff in bits and the same p_eff in nats give the same rigorous bound; the paper reading differs."""
    bits = bounds.no_free_prune(1e8, 50, 3e4, 0.2, 0.05, variant="rigorous", units="bits")
    nats = bounds.no_free_prune(1e8, 50, 3e4 * LN2, 0.2, 0.05, variant="rigorous", units="nats")
    assert bits.value == pytest.approx(nats.value, rel=1e-14)
    assert bits.details["information_nats"] == pytest.approx((3e4 + 1) * LN2, rel=1e-14)
    paper_nats = bounds.no_free_prune(1e8, 50, 3e4 * LN2, 0.2, 0.05, units="nats")
    assert paper_nats.value == pytest.approx(nfp_paper(1e8, 50, 3e4 * LN2, 0.2, 0.05), rel=1e-13)


def test_bs_finite_class_exact():
    n, d, log_card, eps, L, c, k = 1e6, 20, 300.0, 0.3, 0.05, 1.5, 2
    for variant, K in (("paper", 8**4), ("rigorous", 9216)):
        expected = 4 * k * math.exp(-n * eps**2 / (512 * k)) + 2 * math.exp(log_card - eps**2 * n * d / (K * c * L**2))
        result = bounds.bs_finite_class(n, d, log_card, eps, L, c=c, k=k, variant=variant)
        assert result.value == pytest.approx(expected, rel=1e-13) and result.valid
    assert not bounds.bs_finite_class(n, d, log_card, -0.1, L).valid


def test_nfp_finite_probability_exact_and_both_branches_of_the_max():
    n, d, eps, L, c, k = 1e4, 10, 0.5, 0.01, 1.0, 1
    scale = 2**7 * 72 * 144 * c * L**2 / (n * d)
    first = (2 * k + 2) * math.exp(-n * eps**2 / (512 * k))
    for info in (0.0, 1e4):  # I = 0: the exponential branch; large I: the linear branch
        expected = first + max(scale * info / eps**2, 2 * math.exp(-eps**2 / scale))
        assert bounds.nfp_finite_probability(n, d, info, eps, L, c=c, k=k).value == pytest.approx(expected, rel=1e-13)
    linear = bounds.nfp_finite_probability(n, d, 1e4, eps, L, c=c, k=k)
    assert linear.value - first == pytest.approx(scale * 1e4 / eps**2, rel=1e-12)
    rigorous = bounds.nfp_finite_probability(n, d, 1e4, eps, L, c=c, k=k, variant="rigorous")
    assert rigorous.value - first == pytest.approx(scale * 1e4 * LN2 / eps**2, rel=1e-12)


def test_lemma1_threshold_and_inversion_are_inverse():
    info, C, delta = 12.5, 3e-6, 0.05
    threshold = bounds.lemma1_threshold(info, C, delta)
    assert threshold.value == pytest.approx(math.sqrt(72 * C * (info / delta + math.log(2 / delta))), rel=1e-14)
    back = bounds.lemma1_information(threshold.value, delta, C)
    assert back.value == pytest.approx(info, rel=1e-12) and back.valid
    assert bounds.lemma1_information(threshold.value, delta, C, units="bits").value == pytest.approx(info / LN2, rel=1e-12)
    assert bounds.lemma1_threshold(info / LN2, C, delta, units="bits").value == pytest.approx(threshold.value, rel=1e-14)
    # an observed correlation alpha with C0 = 144 c L^2/(n d): I > delta (alpha^2/(72 C0) - ln(2/delta))
    alpha, c0 = 0.02, 144 * 1.0 * 2.0**2 / (1000 * 10)
    assert bounds.lemma1_information(alpha, 0.1, c0).value == pytest.approx(
        0.1 * (alpha**2 / (72 * c0) - math.log(20)), rel=1e-13)
    assert not bounds.lemma1_information(alpha, 1.5, c0).valid


def test_p_eff_exact_in_bits_and_nats():
    info, active, W, J, eps = 250.0, 1000, 2.0, 3.0, 0.1
    bits = bounds.p_eff(info, active, W, J, eps)
    assert bits.value == pytest.approx(info + active * math.log2(1 + 60 * W * J / eps), rel=1e-14)
    nats = bounds.p_eff(info * LN2, active, W, J, eps, units="nats")
    assert nats.value == pytest.approx(bits.value * LN2, rel=1e-14)
    assert float(bits) == bits.value and bits.details["count_term"] == pytest.approx(bits.value - info)
    assert not bounds.p_eff(info, active, W, J, 1.5).valid


def test_mask_entropy_helpers():
    for p, k in ((10, 3), (64, 32), (200, 1), (1000, 900), (7, 0), (7, 7)):
        assert bounds.log2_binomial(p, k) == pytest.approx(math.log2(math.comb(p, k)), rel=1e-12, abs=1e-12)
    assert all(bounds.log2_binomial(p, k) == 0.0 for p in (1, 96, 5000, 10**7) for k in (0, p))  # never -1e-12
    assert bounds.log2_binomial(10**6, 3) == pytest.approx(math.log2(math.comb(10**6, 3)), rel=1e-11)
    assert bounds.h2(0.5) == 1.0 and bounds.h2(0.0) == 0.0 and bounds.h2(1.0) == 0.0
    assert bounds.h2(0.11) == pytest.approx(-(0.11 * math.log2(0.11) + 0.89 * math.log2(0.89)), rel=1e-14)
    ceiling = bounds.entropy_ceiling(1000, 0.9)
    exact = math.log2(math.comb(1000, 900))
    assert ceiling.details["lower"] <= exact <= ceiling.value and ceiling.valid
    assert ceiling.details["exact"] == pytest.approx(exact, rel=1e-12)
    assert ceiling.value - ceiling.details["lower"] == pytest.approx(math.log2(1001))
    off_grid = bounds.entropy_ceiling(10, 0.25)
    assert not off_grid.valid and "integer" in off_grid.reason
    ratios = bounds.imp_ratio([0.9, 0.95, 0.99, 0.999])
    assert [float(f"{r:.3g}") for r in ratios] == [5.69, 6.73, 9.08, 12.4]


def test_deep_network_constants():
    R, box, p, D, Q = 2.0, 1.5, 300, 3, 2
    paper = bounds.deep_network_constants(R, box, p, D, Q=Q)
    rigorous = bounds.deep_network_constants(R, box, p, D, Q=Q, variant="rigorous")
    b_bar = (box * math.sqrt(p * Q)) ** D
    assert paper.value == pytest.approx(R * (box * Q * p) ** D, rel=1e-14) and paper.valid
    assert rigorous.value == pytest.approx(b_bar * Q * R * math.sqrt(p), rel=1e-14) and rigorous.value <= paper.value
    assert paper.details["B_bar"] == pytest.approx(b_bar)
    assert paper.details["diameter"] == pytest.approx(2 * box * math.sqrt(p))
    shared_one_layer = bounds.deep_network_constants(R, box, p, 1, Q=4)
    assert not shared_one_layer.valid and "D >= 2 or Q = 1" in shared_one_layer.reason
    assert not bounds.deep_network_constants(R, 0.5, p, D).valid
    huge = bounds.deep_network_constants(1.0, 10.0, 1e9, 40)
    assert huge.value == math.inf and huge.details["log_J"] == pytest.approx(40 * math.log(1e10))


# ------------------------------------------------------------------ scaling and monotonicity

positive_counts = st.floats(10.0, 1e9)
epsilons = st.floats(0.01, 0.99)
deltas = st.floats(1e-4, 0.99)
factors = st.floats(0.1, 10.0)


@settings(max_examples=60, deadline=None)
@given(n=positive_counts, d=st.floats(10.0, 1e4), p=st.floats(1.0, 1e8), eps=epsilons, delta=deltas,
       W=st.floats(0.5, 1e3), J=st.floats(0.5, 1e3), lam=factors, variant=st.sampled_from(bounds.VARIANTS))
def test_bs_scaling_and_monotonicity(n, d, p, eps, delta, W, J, lam, variant):
    base = bounds.bubeck_sellke(n, d, p, eps, delta, W, J, variant=variant).value
    assert base > 0
    scaled_nd = bounds.bubeck_sellke(n * lam, d, p, eps, delta, W, J, variant=variant).value
    assert scaled_nd == pytest.approx(base * math.sqrt(lam), rel=1e-12)
    assert bounds.bubeck_sellke(n, d, p, eps, delta, W, J, c=lam, variant=variant).value == pytest.approx(
        base / math.sqrt(lam), rel=1e-12)
    more = 1.5
    assert bounds.bubeck_sellke(n, d, p * more, eps, delta, W, J, variant=variant).value < base
    assert bounds.bubeck_sellke(n, d, p, eps, delta, W * more, J, variant=variant).value < base
    assert bounds.bubeck_sellke(n, d, p, eps, delta, W, J * more, variant=variant).value < base
    assert bounds.bubeck_sellke(n, d, p, eps, delta * 0.5, W, J, variant=variant).value < base
    if eps * more < 1:
        assert bounds.bubeck_sellke(n, d, p, eps * more, delta, W, J, variant=variant).value > base


@settings(max_examples=60, deadline=None)
@given(n=positive_counts, d=st.floats(10.0, 1e4), p_eff=st.floats(1e-3, 1e8), eps=epsilons, delta=deltas, lam=factors,
       variant=st.sampled_from(bounds.VARIANTS))
def test_nfp_scaling(n, d, p_eff, eps, delta, lam, variant):
    def bound(**changes):
        args = {"n": n, "d": d, "p_eff": p_eff, "eps": eps, "delta": delta} | changes
        return bounds.no_free_prune(variant=variant, **args).value

    base = bound()
    assert bound(eps=eps * lam) == pytest.approx(base * lam, rel=1e-12)
    assert bound(n=n * lam) == pytest.approx(base * math.sqrt(lam), rel=1e-12)
    assert bound(d=d * lam) == pytest.approx(base * math.sqrt(lam), rel=1e-12)
    assert bound(p_eff=p_eff * 2) < base
    assert bound(delta=delta / 2) < base


@settings(max_examples=100, deadline=None)
@given(n=st.floats(1.0, 1e10), p_eff=st.floats(-1e3, 1e6), eps=st.floats(-1.0, 2.0), delta=st.floats(-1.0, 2.0),
       k=st.floats(1.0, 50.0), variant=st.sampled_from(bounds.VARIANTS))
def test_nfp_validity_is_exactly_the_theorem_conditions_and_never_nan(n, p_eff, eps, delta, k, variant):
    result = bounds.no_free_prune(n, 10, p_eff, eps, delta, k=k, variant=variant)
    accuracy = 1.0 if variant == "paper" else 13 / 15
    expected = (0 < eps < 1 and 0 < delta < 1 and p_eff > 0
                and 8**3 * k * math.log(8 * k / delta) <= n * (accuracy * eps) ** 2)
    assert result.valid == expected
    assert math.isfinite(result.value) and (result.reason == "") == expected
    if expected:
        reference = nfp_paper(n, 10, p_eff, eps, delta) if variant == "paper" else nfp_rigorous(n, 10, p_eff, eps, delta)
        assert result.value == pytest.approx(reference, rel=1e-12)


def test_nfp_is_proportional_to_one_over_sqrt_p_eff_and_sqrt_delta_when_p_eff_dominates():
    """sqrt(delta / (p_eff + (delta/2) ln(4/delta))) -> sqrt(delta / p_eff) once p_eff >> delta ln(4/delta)."""
    base = bounds.no_free_prune(1e9, 100, 1e10, 0.3, 0.02).value
    assert bounds.no_free_prune(1e9, 100, 4e10, 0.3, 0.02).value == pytest.approx(base / 2, rel=1e-10)
    assert bounds.no_free_prune(1e9, 100, 1e10, 0.3, 0.005).value == pytest.approx(base / 2, rel=1e-10)


# ------------------------------------------------------------------ conditions, reasons, invalid input


def test_failing_conditions_give_invalid_with_reasons_not_exceptions():
    cases = [
        (bounds.bubeck_sellke(1e8, 100, 1e5, 1.5, 0.01, 10, 10), "eps < 1 fails: 1.5 >= 1"),
        (bounds.bubeck_sellke(1e8, 100, 1e5, 0.1, 0.0, 10, 10), "0 < delta fails: 0 >= 0"),
        (bounds.bubeck_sellke(1e4, 100, 1e5, 0.1, 0.01, 10, 10),
         "mixture condition 8^4 k ln(8k/delta) <= n eps^2 fails: 2.738e+04 > 100"),
        (bounds.bubeck_sellke(1e8, 100, 1e5, 0.1, 0.01, 1e-3, 1e-3), "covering condition 1/48 <= W J/eps"),
        (bounds.bubeck_sellke(1e8, 100, 1e5, 0.1, 0.01, 10, 10, sigma2=0.0), "0 < sigma2"),
        (bounds.no_free_prune(1e8, 100, -5.0, 0.1, 0.01), "0 < p_eff (effective parameter count) fails: 0 >= -5"),
        (bounds.no_free_prune(1e8, 100, 0.0, 0.1, 0.01), "0 < p_eff"),
        (bounds.no_free_prune(1e4, 100, 1e3, 0.1, 0.01, variant="rigorous"), "n (13 eps/15)^2 fails"),
        (bounds.no_free_prune(1e8, 100, 1e3, -0.1, 0.01), "0 < eps fails"),
        (bounds.mixture_condition(100, 0.1, 0.01, constant=bounds.MIXTURE_CAMERA_READY), "10^4 k ln(8k/delta)"),
    ]
    for result, text in cases:
        assert result.valid is False
        assert text in result.reason, result.reason
        assert isinstance(result.value, float) and math.isfinite(result.value)
    # where the formula is undefined the value is 0.0, never NaN
    assert bounds.bubeck_sellke(1e8, 100, 1e5, -0.1, 0.01, 10, 10).value == 0.0
    assert bounds.no_free_prune(1e8, 100, -50.0, 0.1, 0.01).value == 0.0
    # where it is defined the formula's number is still reported
    outside = bounds.bubeck_sellke(1e8, 100, 1e5, 1.5, 0.01, 10, 10)
    assert outside.value == pytest.approx(bs_paper(1e8, 100, 1e5, 1.5, 0.01, 10, 10), rel=1e-13)


def test_mixture_condition_value_and_constants():
    n_min = 8**4 * 2 * math.log(16 / 0.01) / 0.2**2
    assert bounds.mixture_condition(1e7, 0.2, 0.01, k=2).value == pytest.approx(n_min, rel=1e-14)
    assert bounds.mixture_condition(n_min * 1.000001, 0.2, 0.01, k=2).valid
    assert not bounds.mixture_condition(n_min * 0.999999, 0.2, 0.01, k=2).valid
    # the default is 8^4 for both variants; 10^4 is stricter; below the derived minimum 2048 raises
    n = 3e6
    assert bounds.bubeck_sellke(n, 10, 100, 0.1, 0.01, 1, 1).valid
    assert not bounds.bubeck_sellke(n, 10, 100, 0.1, 0.01, 1, 1, mixture_constant=10**4).valid
    assert bounds.bubeck_sellke(n, 10, 100, 0.1, 0.01, 1, 1, variant="rigorous").valid
    with pytest.raises(ValueError, match="mixture_constant"):
        bounds.bubeck_sellke(n, 10, 100, 0.1, 0.01, 1, 1, mixture_constant=1000)


@pytest.mark.parametrize("call, name, error", [
    (lambda: bounds.bubeck_sellke(-3, 10, 100, 0.1, 0.01, 1, 1), "n", ValueError),
    (lambda: bounds.bubeck_sellke(100, "10", 100, 0.1, 0.01, 1, 1), "d", TypeError),
    (lambda: bounds.bubeck_sellke(100, 10, True, 0.1, 0.01, 1, 1), "p", TypeError),
    (lambda: bounds.bubeck_sellke(100, 10, 100, None, 0.01, 1, 1), "eps", TypeError),
    (lambda: bounds.bubeck_sellke(100, 10, 100, 0.1, math.nan, 1, 1), "delta", ValueError),
    (lambda: bounds.bubeck_sellke(100, 10, 100, 0.1, 0.01, -1, 1), "W", ValueError),
    (lambda: bounds.bubeck_sellke(100, 10, 100, 0.1, 0.01, 1, 1, c=0), "c", ValueError),
    (lambda: bounds.bubeck_sellke(100, 10, 100, 0.1, 0.01, 1, 1, k=0.5), "k", ValueError),
    (lambda: bounds.bubeck_sellke(np.ones(3), np.ones(4), 100, 0.1, 0.01, 1, 1), "d", ValueError),
    (lambda: bounds.bubeck_sellke(100, 10, 100, 0.1, 0.01, 1, 1, variant="exact"), "variant", ValueError),
    (lambda: bounds.no_free_prune(100, 10, 100, 0.1, 0.01, units="hartleys"), "units", ValueError),
    (lambda: bounds.no_free_prune(100, 10, [1.0, "x"], 0.1, 0.01), "p_eff", TypeError),
    (lambda: bounds.p_eff(-1.0, 10, 1, 1, 0.1), "info", ValueError),
    (lambda: bounds.log2_binomial(5, 6), "k", ValueError),
    (lambda: bounds.h2(1.5), "gamma", ValueError),
    (lambda: bounds.imp_ratio(1.0), "gamma", ValueError),
    (lambda: bounds.lemma1_information(0.1, 0.1, 0.0), "C", ValueError),
    (lambda: bounds.bubeck_sellke_inverse(1.0, "p", n=10, d=1, p=5, eps=0.1, delta=0.1, W=1, J=1), "p", ValueError),
    (lambda: bounds.no_free_prune_inverse(1.0, "n", d=1, eps=0.1, delta=0.1), "p_eff", ValueError),
    (lambda: bounds.no_free_prune_inverse(1.0, "delta", n=10, d=1, p_eff=1, eps=0.1, delta=0.1), "solve_for", ValueError),
])
def test_invalid_input_raises_naming_the_argument(call, name, error):
    with pytest.raises(error, match=rf"\b{name}\b"):
        call()


# ------------------------------------------------------------------ vectorized == elementwise


def test_vectorized_equals_elementwise():
    rng = np.random.default_rng(0)
    n = 10 ** rng.uniform(3, 9, (5, 1))
    p = 10 ** rng.uniform(0, 7, (1, 6))
    eps = rng.uniform(-0.2, 1.3, (5, 6))  # includes invalid points
    delta = np.array([0.001, 0.1, 0.9, 1.2, 0.3, 0.05])
    for variant in bounds.VARIANTS:
        bs = bounds.bubeck_sellke(n, 30, p, eps, delta, 2.0, 5.0, variant=variant)
        nfp = bounds.no_free_prune(n, 30, p - 10, eps, delta, variant=variant)
        assert bs.value.shape == bs.valid.shape == (5, 6) and bs.valid.dtype == bool
        for i in range(5):
            for j in range(6):
                one = bounds.bubeck_sellke(float(n[i, 0]), 30, float(p[0, j]), float(eps[i, j]), float(delta[j]), 2.0, 5.0,
                                           variant=variant)
                assert bs.value[i, j] == one.value and bs.valid[i, j] == one.valid
                two = bounds.no_free_prune(float(n[i, 0]), 30, float(p[0, j]) - 10, float(eps[i, j]), float(delta[j]),
                                           variant=variant)
                assert nfp.value[i, j] == two.value and nfp.valid[i, j] == two.valid
                assert nfp.scaling[i, j] == two.scaling
        assert not np.any(np.isnan(bs.value)) and not np.any(np.isnan(nfp.value))
        assert 0 < int(np.sum(~bs.valid)) < bs.valid.size
        assert f"of {bs.valid.size} points (first at index" in bs.reason


@pytest.mark.parametrize("solve_for", ["p_eff", "n", "eps"])
def test_vectorized_inverse_equals_elementwise(solve_for):
    args = {"n": np.array([[1e8], [1e9]]), "p_eff": np.array([1e3, 1e5, 1e7]), "eps": np.array([[0.05], [0.3]])}
    del args[solve_for]
    grid = bounds.no_free_prune_inverse(np.array([1e-5, 1e-4, 1e-3]), solve_for, d=50, delta=0.05, variant="rigorous",
                                        **args)
    assert grid.value.shape == (2, 3)
    for i in range(2):
        for j, L in enumerate([1e-5, 1e-4, 1e-3]):
            one = {key: float(np.broadcast_to(value, (2, 3))[i, j]) for key, value in args.items()}
            single = bounds.no_free_prune_inverse(L, solve_for, d=50, delta=0.05, variant="rigorous", **one)
            assert grid.value[i, j] == single.value and grid.valid[i, j] == single.valid


def test_result_types_and_numeric_conversion():
    scalar = bounds.no_free_prune(1e8, 10, 1e3, 0.1, 0.1)
    assert type(scalar.value) is float and type(scalar.valid) is bool
    assert float(scalar) == scalar.value and np.asarray(scalar) == scalar.value
    array = bounds.no_free_prune([1e8, 1e9], 10, 1e3, 0.1, 0.1)
    assert isinstance(array.value, np.ndarray) and np.max(array) == array.value[1]


# ------------------------------------------------------------------ inverse forms


@pytest.mark.parametrize("variant", bounds.VARIANTS)
def test_bs_inverse_round_trips(variant):
    n, d, p, eps, delta, W, J = 1e9, 100, 1e5, 0.2, 0.01, 3.0, 4.0
    target = bounds.bubeck_sellke(n, d, p, eps, delta, W, J, variant=variant).value
    common = {"d": d, "delta": delta, "W": W, "J": J, "variant": variant}
    p_min = bounds.bubeck_sellke_inverse(target, "p", n=n, eps=eps, **common)
    n_at = bounds.bubeck_sellke_inverse(target, "n", p=p, eps=eps, **common)
    eps_at = bounds.bubeck_sellke_inverse(target, "eps", n=n, p=p, **common)
    assert p_min.value == pytest.approx(p, rel=1e-10) and p_min.valid
    assert n_at.value == pytest.approx(n, rel=1e-10) and n_at.valid
    assert eps_at.value == pytest.approx(eps, rel=1e-10) and eps_at.valid
    # smallest p: just above it the bound is below the target, just below it above
    assert bounds.bubeck_sellke(n, d, p_min.value * (1 + 1e-6), eps, delta, W, J, variant=variant).value < target
    assert bounds.bubeck_sellke(n, d, p_min.value * (1 - 1e-6), eps, delta, W, J, variant=variant).value > target


def test_bs_inverse_unreachable_and_invalid_solutions():
    huge_L = bounds.bubeck_sellke_inverse(10.0, "eps", n=1e9, d=100, p=1e5, delta=0.01, W=3, J=4)
    assert huge_L.value == 0.0 and not huge_L.valid and "reaches L" in huge_L.reason
    tiny_L = bounds.bubeck_sellke_inverse(1e-9, "p", n=1e9, d=100, eps=0.2, delta=0.01, W=3, J=4)
    assert tiny_L.value > 1e12
    small_n = bounds.bubeck_sellke_inverse(1e-5, "n", d=100, p=10, eps=0.2, delta=0.01, W=3, J=4)
    assert not small_n.valid and "mixture condition" in small_n.reason
    grid = bounds.bubeck_sellke_inverse([1e-4, 1e-3, 10.0], "eps", n=1e9, d=100, p=1e5, delta=0.01, W=3, J=4)
    for L, value in zip([1e-4, 1e-3, 10.0], grid.value):
        assert value == bounds.bubeck_sellke_inverse(L, "eps", n=1e9, d=100, p=1e5, delta=0.01, W=3, J=4).value


@pytest.mark.parametrize("variant, units", [("paper", "bits"), ("rigorous", "bits"), ("rigorous", "nats")])
def test_nfp_inverse_round_trips(variant, units):
    n, d, p_eff, eps, delta = 1e9, 100, 1e5, 0.2, 0.01
    target = bounds.no_free_prune(n, d, p_eff, eps, delta, variant=variant, units=units).value
    common = {"d": d, "delta": delta, "variant": variant, "units": units}
    assert bounds.no_free_prune_inverse(target, "p_eff", n=n, eps=eps, **common).value == pytest.approx(p_eff, rel=1e-10)
    assert bounds.no_free_prune_inverse(target, "n", p_eff=p_eff, eps=eps, **common).value == pytest.approx(n, rel=1e-10)
    eps_at = bounds.no_free_prune_inverse(target, "eps", n=n, p_eff=p_eff, **common)
    assert eps_at.value == pytest.approx(eps, rel=1e-10) and eps_at.valid
    too_big = bounds.no_free_prune_inverse(target * 10, "eps", n=n, p_eff=p_eff, **common)
    assert not too_big.valid and "eps < 1 fails" in too_big.reason
    assert bounds.no_free_prune_inverse(1e-12, "p_eff", n=n, eps=eps, **common).value > 1e15
    assert bounds.no_free_prune_inverse(1e3, "p_eff", n=n, eps=eps, **common).value == 0.0


# ------------------------------------------------------------------ consistency with lawrob.symbolic's numbers


def test_rigorous_constants_are_the_derived_ones():
    assert bounds.BS["rigorous"].prefactor**2 == 4 * bounds.BS["rigorous"].thm2_exponent == 4 * 64 * 144
    rigorous = bounds.NFP["rigorous"]
    assert Fraction(rigorous.accuracy).limit_denominator(100) == 1 - Fraction(4, rigorous.net_divisor) == Fraction(13, 15)
    assert 2 * bounds.NFP["rigorous"].net_divisor == bounds.NFP_COVER
    assert bounds.NFP["paper"].prefactor == 96 * 12 and 72 * 144 * 2**7 == bounds.NFP["paper"].prefactor ** 2


# ------------------------------------------------------------------ CLI


def test_cli_bound_prints_value_validity_and_scaling(capsys):
    assert cli.main(["bound", "--n", "1e4", "--d", "100", "--p", "1e5", "--eps", "0.1", "--delta", "0.01",
                     "--W", "10", "--J", "10"]) == 1  # the mixture condition fails: exit 1, the value is no bound
    out = capsys.readouterr().out
    assert f"{bs_paper(1e4, 100, 1e5, 0.1, 0.01, 10, 10):.6g}" in out
    assert "valid: no: mixture condition" in out and f"sqrt(n d / p) = {math.sqrt(10):.6g}" in out
    assert cli.main(["bound", "--theorem", "nfp", "--variant", "rigorous", "--n", "1e9", "--d", "100", "--p-eff", "1e5",
                     "--eps", "0.2", "--delta", "0.01"]) == 0
    out = capsys.readouterr().out
    assert f"{nfp_rigorous(1e9, 100, 1e5, 0.2, 0.01):.6g}" in out and "valid: yes" in out
    assert cli.main(["bound", "--theorem", "nfp", "--n", "1e9", "--d", "100", "--eps", "0.2", "--delta", "0.01"]) == 2
    assert "--p-eff" in capsys.readouterr().err
