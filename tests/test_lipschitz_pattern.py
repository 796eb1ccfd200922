"""Pattern ascent (``lower(method="pattern")``, ``lawrob.lipschitz._lower_pattern``) against brute force over
all activation patterns, the exact constant (region enumeration) and every slope-restricted upper bound."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lawrob import nets
from lawrob.sweep import Grid, run
from lawrob.sweep.config import RunConfig
from lawrob.lipschitz import SearchConfig, exact, lower, lower_batch, prepare, upper
from lawrob.lipschitz import _lower_pattern as pattern

RTOL = 1e-9
SMALL = SearchConfig(samples=128, probes=512, starts=8, steps=16, rounds=3, walkers=4, local_probes=64)


def random_net(sizes, seed, density=1.0):
    rng = np.random.default_rng(seed)
    return tuple({"w": jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a) * (rng.random((a, b)) < density),
                                   jnp.float32), "b": jnp.asarray(rng.normal(size=b) * 0.5, jnp.float32)}
                 for a, b in zip(sizes[:-1], sizes[1:]))


def jacobian_of(weights, slopes):
    """W_1 S_1 W_2 ... W_L in plain NumPy, slopes one flat vector over the hidden units."""
    j, start = np.asarray(weights[0], float), 0
    for w in weights[1:]:
        width = j.shape[1]
        j = (j * slopes[start:start + width]) @ np.asarray(w, float)
        start += width
    return j


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("sizes,seed", [((3, 4, 4, 1), 0), ((2, 5, 3), 1), ((4, 3, 3, 3, 2), 2)])
def test_ascent_ends_at_a_pattern_no_single_flip_improves_and_below_the_all_pattern_maximum(sizes, seed,
                                                                                           activation):
    net = prepare(random_net(sizes, seed), None, nets.MLP(sizes, activation=activation))
    alpha = net.slopes[0]
    start = pattern.pattern_of(net, np.random.default_rng(seed).normal(size=sizes[0]))
    slopes, value = pattern.ascend(net, start)
    flat = np.concatenate(slopes)
    j = jacobian_of(net.weights, flat)
    assert value == pytest.approx(np.linalg.norm(j, 2), rel=1e-12)
    u, _, vt = np.linalg.svd(j)
    objective = u[:, 0] @ j @ vt[0]
    for i in range(flat.size):  # the layer-wise update's fixed point: no single unit's slope raises u^T J v
        flipped = flat.copy()
        flipped[i] = alpha if flat[i] == 1.0 else 1.0
        assert u[:, 0] @ jacobian_of(net.weights, flipped) @ vt[0] <= objective * (1 + 1e-12)
    everything = max(np.linalg.norm(jacobian_of(net.weights, np.array(s)), 2)
                     for s in itertools.product([alpha, 1.0], repeat=flat.size))
    assert value <= everything * (1 + 1e-12)
    assert value >= np.linalg.norm(jacobian_of(net.weights, np.concatenate(start)), 2) * (1 - 1e-12)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.sampled_from([(2, 5, 1), (3, 4, 4, 1), (2, 4, 3)]), seed=st.integers(0, 2**31 - 1),
       density=st.sampled_from([1.0, 0.5]), activation=st.sampled_from(["relu", "leaky_relu"]))
def test_pattern_is_sound_at_least_the_search_and_its_pattern_bound_is_below_every_upper_bound(sizes, seed, density,
                                                                                            activation):
    params = random_net(sizes, seed, density)
    model = nets.MLP(sizes, activation=activation)
    key = jax.random.key(seed % 997)
    found = lower(params, model=model, key=key, method="pattern", config=SMALL)
    assert found.value <= exact(params, model=model).value * (1 + RTOL) + 1e-12
    assert found.value >= lower(params, model=model, key=key, config=SMALL).value
    for method in ("product", "eclipse_fast", "lipsdp"):
        assert found.details["pattern_bound"] <= upper(params, model=model, method=method).value * (1 + 1e-7) + 1e-12


def test_pattern_bound_counts_the_ascent_from_the_all_active_pattern():
    # from this start's pattern the ascent stops at 0.74; from the all-active pattern it reaches 1.98, and every
    # pattern's norm (brute force over the 2^12) is a lower bound on every slope-restricted upper bound
    sizes, params = (2, 4, 4, 4, 1), random_net((2, 4, 4, 4, 1), 3)
    net = prepare(params, None, nets.MLP(sizes))
    start = np.random.default_rng(3).normal(size=(1, 2))
    from_start = pattern.ascend(net, pattern.pattern_of(net, start[0]))[1]
    from_all_active = pattern.ascend(net, [np.ones(w) for w in net.widths])[1]
    _, details = pattern.candidates(net, start, max_patterns=1)
    everything = max(np.linalg.norm(jacobian_of(net.weights, np.array(s)), 2)
                     for s in itertools.product([0.0, 1.0], repeat=12))
    assert from_start < 0.5 * from_all_active
    assert details["pattern_bound"] >= from_all_active * (1 - 1e-12)
    assert details["pattern_bound"] <= everything * (1 + 1e-12)
    assert everything <= upper(params, model=nets.MLP(sizes), method="lipsdp").value * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_every_pattern_of_a_hidden_layer_narrower_than_the_input_is_realized(seed):
    """With W_1 of full column rank (width <= d) every pattern has a region, so the LP keeps every unit and
    the certified value is the ascent's value; both are at most the exact constant."""
    sizes = (10, 6, 2)
    params = random_net(sizes, seed)
    found = lower(params, model=nets.MLP(sizes), key=jax.random.key(seed), method="pattern", config=SMALL)
    assert found.value == pytest.approx(found.details["pattern_bound"], rel=1e-9)
    assert found.value <= exact(params, model=nets.MLP(sizes)).value * (1 + RTOL)
    assert found.details["pattern_lps"] >= 1


def test_realize_keeps_the_point_in_the_box_and_the_pattern_when_the_region_meets_it():
    sizes = (3, 5, 1)
    net = prepare(random_net(sizes, 4), None, nets.MLP(sizes))
    low, high = np.full(3, 0.5), np.full(3, 2.0)
    inside = np.array([1.0, 1.5, 0.7])
    wanted = pattern.pattern_of(net, inside)
    point = pattern.realize(net, wanted, [np.ones(5)], box=(low, high))
    assert np.all(point >= low - 1e-9) and np.all(point <= high + 1e-9)
    assert all(np.array_equal(a, b) for a, b in zip(pattern.pattern_of(net, point), wanted))
    found = lower(random_net(sizes, 4), model=nets.MLP(sizes), key=jax.random.key(0), method="pattern",
                  domain=(low, high), config=SMALL)
    assert np.all(found.witness >= low) and np.all(found.witness <= high)


def test_batch_equals_one_network_at_a_time():
    sizes = (3, 6, 6, 1)
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[random_net(sizes, seed) for seed in range(2)])
    keys = jax.random.split(jax.random.key(5), 2)
    batch = lower_batch(stacked, model=nets.MLP(sizes), key=keys, method="pattern", config=SMALL)
    for b in range(2):
        one = lower(random_net(sizes, b), model=nets.MLP(sizes), key=keys[b], method="pattern", config=SMALL)
        assert batch[b].value == pytest.approx(one.value, rel=1e-12)
        assert batch[b].details["pattern_bound"] == pytest.approx(one.details["pattern_bound"], rel=1e-12)


def test_pattern_needs_a_piecewise_linear_activation():
    sizes = (2, 4, 1)
    with pytest.raises(ValueError, match="method='pattern' needs a piecewise-linear activation"):
        lower(random_net(sizes, 0), model=nets.MLP(sizes, activation="tanh"), key=jax.random.key(0),
              method="pattern", config=SMALL)


def test_a_sweep_measures_with_pattern_and_a_grid_rejects_it_for_smooth_activations(tmp_path):
    tiny = {"d": 2, "n": 12, "depth": 1, "width": 3, "steps": 40, "log_every": 20, "learning_rate": 1e-2,
            "lip_search_starts": 4, "lower_method": "pattern"}
    row, = run(Grid(fixed=tiny, seeds=1), tmp_path, progress=False)
    assert row["lip_lower_method"] == "pattern"
    assert 0 < row["lip_lower"] <= row["lip_exact"] * (1 + RTOL)
    with pytest.raises(ValueError, match="lower_method='pattern' needs activation 'relu' or 'leaky_relu'"):
        RunConfig.from_mapping({"lower_method": "pattern", "activation": "tanh"})
