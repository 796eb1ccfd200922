"""Multi-output networks (C > 1) and the memory budget of the lower-bound search (issue 14, goal 4).

References independent of lawrob.lipschitz: a brute force over all 2^h activation patterns with one scipy LP
each (``test_lipschitz.brute_force``, whose ||A W_L||_2 is the l2 -> l2 norm for any number of outputs), the Jacobian spectral norm by jax.jacfwd of ``MLP.apply`` and numpy's SVD on a dense grid and at many
random points, central finite differences; the memory budget is checked against XLA's own memory analysis of
the compiled search.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_lipschitz import brute_force

from lawrob import nets
from lawrob.lipschitz import SearchConfig, exact, lower, peak_bytes, upper
from lawrob.lipschitz import _lower_search
from lawrob.lipschitz._network import certify, prepare

RTOL = 1e-9
SMALL = SearchConfig(samples=128, probes=512, segments=16, segment_points=16, starts=8, steps=16, rounds=3,
                     walkers=4, local_probes=64)


def random_net(sizes, seed, density=1.0):
    rng = np.random.default_rng(seed)
    params = tuple({"w": jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a) * (rng.random((a, b)) < density),
                                     jnp.float32),
                    "b": jnp.asarray(rng.normal(size=b) * 0.5, jnp.float32)} for a, b in zip(sizes[:-1], sizes[1:]))
    return params, nets.MLP(tuple(sizes))


def jacobian_norms(model, params, xs):
    """||J(x)||_2 at each row of xs by jax.jacfwd of MLP.apply and numpy's SVD (float64)."""
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        jac = jax.jit(jax.vmap(jax.jacfwd(lambda y: model.apply(p64, y))))(jnp.asarray(xs, jnp.float64))
    return np.linalg.norm(np.asarray(jac), 2, axis=(1, 2))


# --- brackets of multi-output networks ------------------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.sampled_from([(2, 5, 3), (3, 4, 3, 4), (2, 3, 3, 2)]), seed=st.integers(0, 2**31 - 1),
       density=st.sampled_from([1.0, 0.6]))
def test_multi_output_bracket_against_brute_force(sizes, seed, density):
    params, model = random_net(sizes, seed, density)
    ex = exact(params, model=model)
    assert ex.value == pytest.approx(brute_force(params), rel=RTOL, abs=1e-12)
    points = np.random.default_rng(seed).normal(size=(40, sizes[0]))
    low = lower(params, model=model, key=jax.random.key(seed % 1000), points=points, config=SMALL)
    assert low.value <= ex.value * (1 + RTOL) + 1e-12
    assert low.value >= jacobian_norms(model, params, points).max() * (1 - RTOL)  # it scores the given points
    for method in ("product", "eclipse_fast", "lipsdp"):
        assert ex.value <= upper(params, model=model, method=method).value * (1 + RTOL) + 1e-12


def test_search_matches_a_dense_grid_and_many_random_points():
    """d = 2, three outputs: the search's certified value is at least the largest Jacobian norm on a 300 x 300
    grid of [-4, 4]^2 and at 20 000 random points, and at most the exact constant."""
    params, model = random_net((2, 6, 5, 3), seed=11)
    grid = np.stack(np.meshgrid(*[np.linspace(-4, 4, 300)] * 2), axis=-1).reshape(-1, 2)
    scattered = np.random.default_rng(0).normal(size=(20_000, 2)) * 3
    brute = max(jacobian_norms(model, params, grid).max(), jacobian_norms(model, params, scattered).max())
    ex = exact(params, model=model).value
    low = lower(params, model=model, key=jax.random.key(0), config=SMALL).value
    assert brute <= ex * (1 + RTOL)
    assert brute * (1 - RTOL) <= low <= ex * (1 + RTOL)


@pytest.mark.parametrize("sizes", [(3, 6, 4), (4, 5, 5, 6)])
def test_witness_agrees_with_finite_differences(sizes):
    """At the witness x, ||f(x + h v) - f(x - h v)|| / 2h along the top right singular vector v of J(x) (from
    numpy's SVD of jax.jacfwd) equals the certified value; no direction does better (random ones)."""
    params, model = random_net(sizes, seed=3)
    low = lower(params, model=model, key=jax.random.key(1), config=SMALL)
    x, net = low.witness, prepare(params, None, model)
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        jac = np.asarray(jax.jacfwd(lambda y: model.apply(p64, y))(jnp.asarray(x, jnp.float64)))
    v = np.linalg.svd(jac)[2][0]
    h = 1e-6

    def slope(direction):
        return np.linalg.norm(net(x + h * direction) - net(x - h * direction)) / (2 * h)

    assert slope(v) == pytest.approx(low.value, rel=1e-6)
    directions = np.random.default_rng(0).normal(size=(200, sizes[0]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    assert max(slope(u) for u in directions) <= low.value * (1 + 1e-6)
    assert certify(net, x)[1]


def test_lower_never_exceeds_upper_on_wider_multi_output_nets():
    for seed, sizes in enumerate([(8, 32, 10), (6, 24, 24, 5)]):
        params, model = random_net(sizes, seed, density=0.7)
        low = lower(params, model=model, key=jax.random.key(seed), config=SMALL).value
        highs = [upper(params, model=model, method=m).value for m in ("product", "eclipse_fast", "lipsdp")]
        assert 0 < low <= min(highs) * (1 + RTOL)


# --- the memory budget -------------------------------------------------------------------------------------


def test_784_256_10_search_fits_a_small_budget():
    """The MNIST MLP that ran out of memory (an 81.7 GB allocation) before: with a 64 MiB budget the compiled
    search's temporaries (XLA's memory analysis) stay below the budget, and so does the model's estimate."""
    budget = 64 << 20
    model = nets.MLP((784, 256, 10))
    params = model.init(jax.random.key(0))
    cfg = SearchConfig(samples=256, probes=512, segments=32, segment_points=16, starts=4, steps=8, rounds=1,
                       walkers=4, local_probes=64, memory_budget_bytes=budget)
    points = np.random.default_rng(0).normal(size=(100, 784))
    assert peak_bytes(params, model=model, points=points, config=cfg) <= budget
    net = prepare(params, None, model)
    with jax.enable_x64(True):
        arrays, x = _lower_search._arrays(net), jnp.asarray(points, jnp.float64)
        compiled = _lower_search._run.lower("relu", cfg, "search", arrays, jax.random.key(0), x).compile()
        assert compiled.memory_analysis().temp_size_in_bytes <= budget
        candidates, scores = compiled(arrays, jax.random.key(0), x)
    values = [certify(net, np.asarray(c)) for c in candidates]
    best = max(v for v, ok in values if ok)
    assert np.isfinite(np.asarray(scores)).all() and best > 0
    assert best <= upper(params, model=model, method="product").value


def test_the_result_does_not_depend_on_the_budget():
    params, model = random_net((3, 16, 8, 2), seed=5)
    points = np.random.default_rng(1).normal(size=(30, 3))
    values = [lower(params, model=model, key=jax.random.key(2), points=points, config=SMALL,
                    memory_budget_bytes=budget).value for budget in (1 << 30, 1 << 20)]
    assert values[0] == pytest.approx(values[1], rel=1e-12)


def test_a_budget_too_small_is_refused_by_name():
    params, model = random_net((3, 16, 2), seed=0)
    with pytest.raises(ValueError, match="memory_budget_bytes"):
        lower(params, model=model, key=jax.random.key(0), config=SMALL, memory_budget_bytes=1000)
    with pytest.raises(ValueError, match="memory_budget_bytes"):
        SearchConfig(memory_budget_bytes=0)
