"""lawrob.info: entropy estimators against exact answers, the certified intervals' coverage, mask information."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lawrob import _info_entropy, bounds, info, nets, prune
from lawrob.data import BooleanCube, Dataset

ESTIMATORS = (info.plugin_entropy, info.miller_madow_entropy, info.chow_liu_entropy, info.marginal_entropy)


def h2(q):
    """Binary entropy in bits, written out."""
    return 0.0 if q in (0.0, 1.0) else -(q * math.log2(q) + (1 - q) * math.log2(1 - q))


def markov_chain(rng, n, p, first=0.5, flip=0.1):
    """Bits m_0 ~ Bernoulli(first), m_j = m_{j-1} flipped with probability ``flip``: a tree (path) distribution."""
    bits = np.zeros((n, p), np.uint8)
    bits[:, 0] = rng.random(n) < first
    for j in range(1, p):
        bits[:, j] = bits[:, j - 1] ^ (rng.random(n) < flip)
    return bits


def exact_entropy(probabilities):
    p = np.asarray([q for q in probabilities if q > 0])
    return float(-(p * np.log2(p)).sum())


# ------------------------------------------------------------------------------------ known answers


def test_independent_bernoulli_bits_exact_entropy():
    q = np.array([0.05, 0.2, 0.5, 0.7, 0.95])
    truth = sum(h2(x) for x in q)
    masks = (np.random.default_rng(0).random((20_000, q.size)) < q).astype(np.uint8)
    for estimator in ESTIMATORS:
        e = estimator(masks)
        assert e.units == "bits" and e.confidence == pytest.approx(0.95)
        assert abs(e.value - truth) < 0.03, (e, truth)
        assert e.low <= truth <= e.high, (e, truth)


def test_deterministic_function_of_uniform_data_has_its_known_entropy():
    # D uniform on 12 values; the mask is a fixed function of D whose image has probabilities 6/12, 3/12, 2/12, 1/12.
    table = np.array([[1, 0, 0, 1]] * 6 + [[0, 1, 0, 1]] * 3 + [[1, 1, 1, 0]] * 2 + [[0, 0, 0, 0]], np.float32)
    truth = exact_entropy(np.array([6, 3, 2, 1]) / 12)
    result = info.mask_information(lambda key, d: jnp.asarray(table)[d], lambda key: jax.random.randint(key, (), 0, 12),
                                   key=jax.random.key(0), datasets=4000, inits=2)
    plugin = result.estimates["plugin"]
    assert abs(plugin.value - truth) < 0.03
    assert plugin.low <= truth <= plugin.high
    assert result.upper >= truth - 1e-12
    assert result.chain_violations == ()
    assert result.active == pytest.approx((2 * 6 + 2 * 3 + 3 * 2 + 0) / 12, abs=0.05)


def test_chow_liu_is_exact_on_a_markov_chain_and_marginal_is_not():
    p, flip = 8, 0.1
    truth = 1.0 + (p - 1) * h2(flip)
    masks = markov_chain(np.random.default_rng(1), 20_000, p, flip=flip)
    chow_liu, marginal = info.chow_liu_entropy(masks), info.marginal_entropy(masks)
    assert abs(chow_liu.value - truth) < 0.05
    assert chow_liu.low <= truth <= chow_liu.high
    assert marginal.value > truth + 3.0  # the bits are nearly copies of each other: the marginal sum is ~p bits
    assert chow_liu.high < marginal.low


def test_chow_liu_finds_a_star_tree():
    # m_0 uniform; every other bit copies m_0 with its own flip probability: a star centred on bit 0.
    rng = np.random.default_rng(2)
    flips = [0.02, 0.1, 0.2, 0.3]
    root = rng.random(30_000) < 0.5
    masks = np.stack([root] + [root ^ (rng.random(root.size) < f) for f in flips], axis=1).astype(np.uint8)
    truth = 1.0 + sum(h2(f) for f in flips)
    assert abs(info.chow_liu_entropy(masks).value - truth) < 0.05


@pytest.mark.parametrize("seed", range(6))
def test_point_values_are_ordered_plugin_chow_liu_marginal(seed):
    rng = np.random.default_rng(seed)
    prototypes = rng.random((int(rng.integers(2, 9)), 7)) < 0.5
    noise = rng.random((int(rng.integers(20, 400)), 7)) < rng.uniform(0, 0.2)
    masks = (prototypes[rng.integers(0, len(prototypes), len(noise))] ^ noise).astype(np.uint8)
    plugin, mm, chow_liu, marginal = (f(masks).value for f in ESTIMATORS)
    assert plugin <= chow_liu + 1e-12 <= marginal + 2e-12
    assert mm >= plugin
    assert plugin <= math.log2(len(masks)) + 1e-12


def test_miller_madow_adds_the_first_order_bias():
    masks = np.array([[0, 1], [0, 1], [1, 1], [1, 0], [0, 1]])
    counts = np.array([3, 1, 1])
    plugin = exact_entropy(counts / 5)
    assert info.plugin_entropy(masks).value == pytest.approx(plugin)
    assert info.miller_madow_entropy(masks).value == pytest.approx(plugin + (3 - 1) / (2 * 5) / math.log(2))


def test_plugin_converges_to_the_truth_within_paninskis_bias_bound():
    rng = np.random.default_rng(3)
    weights = rng.dirichlet(np.ones(64))
    truth = exact_entropy(weights)
    codes = ((np.arange(64)[:, None] >> np.arange(6)) & 1).astype(np.uint8)
    errors = []
    for n in (100, 1000, 10_000, 100_000):
        draws = [info.plugin_entropy(codes[rng.choice(64, n, p=weights)]).value for _ in range(5)]
        bias = truth - np.mean(draws)
        assert -0.05 < bias <= math.log2(1 + 63 / n) + 0.05  # E H_N <= H and H - E H_N <= log(1 + (m-1)/N)
        errors.append(abs(bias))
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 0.01


def test_plugin_bounded_differences_constant_by_enumeration():
    # Moving one of N samples between classes changes H_N by at most c = (N ln N - (N-1) ln(N-1)) / N nats.
    n = 7
    c = (n * math.log(n) - (n - 1) * math.log(n - 1)) / n
    worst = 0.0
    for counts in itertools.product(range(n + 1), repeat=4):
        if sum(counts) != n:
            continue
        base = _info_entropy._plugin_nats(np.array([x for x in counts if x]))
        for a, b in itertools.permutations(range(4), 2):
            if counts[a]:
                moved = list(counts)
                moved[a] -= 1
                moved[b] += 1
                worst = max(worst, abs(_info_entropy._plugin_nats(np.array([x for x in moved if x])) - base))
    assert worst <= c + 1e-12
    assert worst == pytest.approx(c)


def test_pair_information_range_matches_a_brute_force_search():
    rng = np.random.default_rng(4)
    grid = np.linspace(0, 1, 41)
    for _ in range(30):
        q_lo, a_lo, b_lo = rng.uniform(0.02, 0.9, 3)
        q_hi, a_hi, b_hi = (x + rng.uniform(0.01, 0.1) for x in (q_lo, a_lo, b_lo))
        q_hi, a_hi, b_hi = min(q_hi, 0.99), min(a_hi, 0.99), min(b_hi, 0.99)
        q, a, b = np.meshgrid(q_lo + grid * (q_hi - q_lo), a_lo + grid * (a_hi - a_lo), b_lo + grid * (b_hi - b_lo))
        mix = q * a + (1 - q) * b
        values = np.vectorize(h2)(mix) - q * np.vectorize(h2)(a) - (1 - q) * np.vectorize(h2)(b)
        values *= math.log(2)
        low, high = _info_entropy._pair_information_range(*(np.array([x]) for x in (q_lo, q_hi, a_lo, a_hi, b_lo, b_hi)))
        assert low[0] <= values.min() + 1e-12 and values.min() - low[0] < 1e-4
        assert high[0] >= values.max() - 1e-12 and high[0] - values.max() < 1e-4


def test_identical_masks_have_zero_entropy_everywhere():
    masks = np.tile(np.array([1, 0, 1, 1, 0], np.uint8), (300, 1))
    for estimator in ESTIMATORS:
        e = estimator(masks)
        assert e.value == 0.0 and e.low == 0.0 and 0.0 < e.high < 5.0


# ------------------------------------------------------------------------------------ intervals


def test_intervals_cover_the_truth_at_the_nominal_rate_and_shrink():
    """Repeated sampling: each interval covers its estimand in >= 95 % of 150 draws (binomial slack 0.92),
    and the intervals are not trivially wide: they shrink as N grows."""
    rng = np.random.default_rng(5)
    p, flip, first = 4, 0.2, 0.3
    # exact law of the chain: H = h(first) + (p-1) h(flip), the tree entropy is H itself, the marginal sum is
    # sum_j h(q_j) with q_j = P(m_j = 1) following q -> q (1 - flip) + (1 - q) flip.
    truth = {"plugin": h2(first) + (p - 1) * h2(flip)}
    truth["chow_liu"] = truth["plugin"]
    q, marginal = first, 0.0
    for _ in range(p):
        marginal += h2(q)
        q = q * (1 - flip) + (1 - q) * flip
    truth["marginal"] = marginal
    functions = {"plugin": lambda m: info.plugin_entropy(m, ceiling=p), "chow_liu": info.chow_liu_entropy,
                 "marginal": info.marginal_entropy}
    covered = {name: 0 for name in functions}
    reps = 150
    for _ in range(reps):
        masks = markov_chain(rng, 200, p, first=first, flip=flip)
        for name, f in functions.items():
            e = f(masks)
            covered[name] += e.low <= truth[name] <= e.high
    for name in functions:
        assert covered[name] / reps >= 0.92, (name, covered[name])
    for name, f in functions.items():
        small = f(markov_chain(rng, 200, p, first=first, flip=flip))
        large = f(markov_chain(rng, 12_800, p, first=first, flip=flip))
        assert large.high - large.low < 0.3 * (small.high - small.low), name


def test_confidence_level_widens_the_intervals():
    masks = markov_chain(np.random.default_rng(6), 500, 5)
    for estimator in ESTIMATORS:
        loose, strict = estimator(masks, confidence=0.5), estimator(masks, confidence=0.999)
        assert strict.low <= loose.low and strict.high >= loose.high
        assert strict.high - strict.low > loose.high - loose.low


def test_units_switch():
    masks = markov_chain(np.random.default_rng(7), 300, 4)
    for estimator in ESTIMATORS:
        bits, nats = estimator(masks), estimator(masks, units="nats")
        assert nats.units == "nats"
        np.testing.assert_allclose([nats.value, nats.low, nats.high], np.array([bits.value, bits.low, bits.high]) * math.log(2))
        assert bits.to("nats").to("bits") == pytest.approx(bits)


# ------------------------------------------------------------------------------------ ceilings


def test_mask_ceiling_global_and_per_layer():
    assert info.mask_ceiling(21, 10).value == pytest.approx(math.log2(math.comb(21, 10)))
    assert info.mask_ceiling(21, 10).value == pytest.approx(18.43, abs=0.005)  # docs/checks.md, E5
    per_layer = info.mask_ceiling([12, 4, 5], [6, 2, 1])
    assert per_layer.value == pytest.approx(math.log2(math.comb(12, 6) * math.comb(4, 2) * math.comb(5, 1)))
    assert per_layer.value <= info.mask_ceiling(21, 9).value
    assert per_layer.low == per_layer.high == per_layer.value and per_layer.confidence == 1.0
    assert info.mask_ceiling(21, 10, units="nats").value == pytest.approx(math.log(math.comb(21, 10)))
    assert info.mask_ceiling(10**6, 10**5).value == pytest.approx(
        (math.lgamma(10**6 + 1) - math.lgamma(10**5 + 1) - math.lgamma(9 * 10**5 + 1)) / math.log(2))


def test_chain_reports_marginal_above_ceiling_for_uniform_k_subsets():
    rng = np.random.default_rng(8)
    p, k = 12, 3
    masks = np.zeros((5000, p), np.uint8)
    for row in masks:
        row[rng.choice(p, k, replace=False)] = 1
    result = info.estimate_information(masks)
    ceiling = math.log2(math.comb(p, k))
    assert result.estimates["ceiling"].value == pytest.approx(ceiling)
    assert result.estimates["marginal"].value == pytest.approx(p * h2(k / p), abs=0.01)
    assert result.chain_violations == ("marginal > ceiling",)
    assert result.upper <= ceiling + 1e-12
    assert result.estimates["plugin"].high <= ceiling + 1e-12


# ------------------------------------------------------------------------------------ pipelines

MODEL = nets.MLP((3, 4, 1))


def toy_data(key):
    key_x, key_y = jax.random.split(key)
    y = jax.random.rademacher(key_y, (6,), dtype=jnp.float32)
    zeros = jnp.zeros(6)
    return Dataset(x=BooleanCube(3).sample(key_x, 6), y=y, g=zeros, z=y, ell=jnp.zeros(6, jnp.int32),
                   sigma2=jnp.asarray(1.0))


def pruned(method, **options):
    def pipeline(key, data):
        key_init, key_prune = jax.random.split(key)
        return prune.prune(method, MODEL.init(key_init), data, 0.5, key_prune, model=MODEL, collapse="allow", **options)
    return pipeline


# prune.synflow computes in a float64 scope; traced in a float32 pipeline JAX warns and uses float32
@pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64")
@pytest.mark.parametrize("method", ["synflow", "random"])
def test_data_free_pipelines_carry_zero_information(method):
    options = {"iterations": 3} if method == "synflow" else {}
    result = info.mask_information(pruned(method, **options), toy_data, key=jax.random.key(0), datasets=64, inits=2)
    for name in info.ESTIMATORS:
        assert result.estimates[name].value == 0.0 and result.estimates[name].low == 0.0, name
    assert result.upper > 0.0  # a finite sample never certifies exactly zero


def test_snip_reads_the_data_and_the_ceiling_follows_the_mask_leaves():
    result = info.mask_information(pruned("snip"), toy_data, key=jax.random.key(0), datasets=256, inits=1)
    assert result.estimates["plugin"].value > 1.0
    # biases are not pruned: 8 of the 16 weights are kept globally, biases fixed -> log2 C(16, 8)
    assert result.estimates["ceiling"].value == pytest.approx(math.log2(math.comb(16, 8)))
    assert result.active == 8 + 5


def test_sample_masks_is_chunking_invariant_and_checks_binary_output():
    kw = dict(key=jax.random.key(3), datasets=37, inits=2)
    a = info.sample_masks(pruned("snip"), toy_data, chunk_size=None, **kw)
    b = info.sample_masks(pruned("snip"), toy_data, chunk_size=5, **kw)
    assert a.shape == (2, 37, MODEL.num_params) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])
    with pytest.raises(ValueError, match="only 0 and 1"):
        info.sample_masks(lambda key, d: d.x[0] * 0.5, toy_data, **kw)


def test_estimate_information_confidence_is_split_over_families_and_inits():
    masks = np.stack([markov_chain(np.random.default_rng(s), 400, 5) for s in range(3)])
    result = info.estimate_information(masks, confidence=0.9)
    assert result.inits == 3 and result.datasets == 400 and result.confidence == pytest.approx(0.9)
    single = info.plugin_entropy(masks[0], confidence=1 - 0.1 / 9, ceiling=5)
    assert result.per_init["plugin"][0] == pytest.approx(single)
    assert result.estimates["plugin"].value == pytest.approx(np.mean([e.value for e in result.per_init["plugin"]]))
    uppers = [min(result.per_init[n][i].high for n in ("plugin", "chow_liu", "marginal", "ceiling")) for i in range(3)]
    assert result.upper == pytest.approx(np.mean(uppers))


@pytest.mark.parametrize("bad, match", [
    (np.array([[0, 2]]), "only 0 and 1"),
    (np.zeros(5), r"\[samples, p\]"),
    (np.zeros((0, 3)), r"\[samples, p\]"),
])
def test_bad_masks_raise(bad, match):
    for estimator in ESTIMATORS:
        with pytest.raises(ValueError, match=match):
            estimator(bad)


def test_bad_arguments_raise():
    masks = np.zeros((4, 3))
    with pytest.raises(ValueError, match="confidence"):
        info.plugin_entropy(masks, confidence=1.0)
    with pytest.raises(ValueError, match="units"):
        info.marginal_entropy(masks, units="dits")
    with pytest.raises(ValueError, match="ceiling"):
        info.plugin_entropy(masks, ceiling=4.0)
    with pytest.raises(ValueError, match="k must lie"):
        info.mask_ceiling(3, 4)
    with pytest.raises(ValueError, match="same length"):
        info.mask_ceiling([3, 4], [1])
    with pytest.raises(ValueError, match="estimators"):
        info.estimate_information(masks, estimators=("plugin", "nope"))
    with pytest.raises(ValueError, match="groups"):
        info.estimate_information(masks, groups=[2, 2])


def test_p_eff_from_an_information_estimate_matches_the_formula():
    # the one p_eff is lawrob.bounds.p_eff; an estimate supplies its certified upper end and its mean active count
    assert not hasattr(info, "p_eff")
    masks = np.array([[1, 0, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1], [1, 1, 0, 0]] * 8)
    estimate = info.estimate_information(masks)
    W, J, eps = 3.0, 2.5, 0.2
    count = 2.0 * math.log2(1 + 60 * W * J / eps)  # every mask keeps 2 weights
    assert estimate.active == 2.0
    assert bounds.p_eff(estimate.upper, estimate.active, W, J, eps).value == pytest.approx(estimate.upper + count,
                                                                                             rel=1e-12)
    in_nats = info.estimate_information(masks, units="nats")
    assert in_nats.upper == pytest.approx(estimate.upper * math.log(2), rel=1e-12)
    nats = bounds.p_eff(in_nats.upper, in_nats.active, W, J, eps, units="nats").value
    assert nats == pytest.approx(estimate.upper * math.log(2) + 2.0 * math.log(1 + 60 * W * J / eps), rel=1e-12)
    marginal = estimate.estimates["marginal"]
    assert bounds.p_eff(marginal.high, 2, W, J, eps).value == pytest.approx(marginal.high + count, rel=1e-12)
    assert bounds.p_eff(1.5, 3, W, J, eps).value == pytest.approx(1.5 + 1.5 * count, rel=1e-12)
    with pytest.raises(ValueError, match="info"):
        bounds.p_eff(-1.0, 3, W, J, eps)


def test_mask_ceiling_is_the_exact_binomial_of_lawrob_bounds():
    # one binomial ceiling (lawrob.bounds.log2_binomial, betaln): log2 C(p, k) to 1e-12 relative against exact
    # integer binomials, and exactly 0 at k = 0 and k = p
    for p_ in (1, 2, 3, 7, 21, 64, 100, 1000, 4096, 10**5):
        for k_ in sorted({0, 1, 2, p_ // 3, p_ // 2, p_ - 2, p_ - 1, p_} & set(range(p_ + 1))):
            exact = math.log2(math.comb(p_, k_))
            for value in (info.mask_ceiling(p_, k_).value, float(bounds.log2_binomial(p_, k_))):
                assert value == pytest.approx(exact, rel=1e-12, abs=0.0)
    assert all(info.mask_ceiling(p_, k_).value == 0.0 for p_ in (1, 96, 5000, 10**7) for k_ in (0, p_))
    assert info.mask_ceiling([5, 7], [5, 0]).value == 0.0


def test_information_from_correlations_inverts_lemma_1():
    n, d, L = 1000, 10, 0.5
    c0 = 144 * L**2 / (n * d)
    # one sample: the one-sided Clopper-Pearson bound with 1 of 1 is the level itself, delta = 0.05
    one = info.information_from_correlations([0.9], n=n, d=d, L=L, units="nats")
    assert one.value == pytest.approx(0.05 * (0.81 / (72 * c0) - math.log(2 / 0.05)), rel=1e-9)
    assert one.low == one.value and one.high == math.inf and one.confidence == 0.95
    # N equal samples with a positive bound: the best threshold keeps all N, delta = (0.05 / N)^(1/N)
    N = 50
    delta = (0.05 / N) ** (1 / N)
    many = info.information_from_correlations(np.full(N, -0.9), n=n, d=d, L=L)
    assert many.value == pytest.approx(delta * (0.81 / (72 * c0) - math.log(2 / delta)) / math.log(2), rel=1e-9)
    assert one.value < 0 < many.value  # more evidence, a larger certified lower bound
    tiny = info.information_from_correlations(np.full(N, 1e-3), n=n, d=d, L=L)
    assert tiny.value < 0  # small correlations certify nothing
    with pytest.raises(ValueError, match="correlations"):
        info.information_from_correlations([np.nan], n=n, d=d, L=L)
