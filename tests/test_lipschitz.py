"""Tests of lawrob.lipschitz against independent computations.

The references: a brute force over all 2^h activation patterns with one scipy LP each (no pruning, no shared
code with the enumeration), Jacobians by jax.jacfwd of ``MLP.apply`` in float64, central finite differences,
numpy's SVD, and closed forms. Float tolerance of the sandwich lower <= exact <= upper: relative 1e-9 (every
value is float64; exact and certified lower values are the same float64 Jacobian norm computed two ways).
"""

import itertools
import math
import os
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from lawrob import nets
from lawrob.lipschitz import Bound, SearchConfig, exact, lower, lower_batch, region_bound, upper
from lawrob.lipschitz._network import certify, prepare
from lawrob.lipschitz._psd import _psd_certified, spectral_norm_upper

RTOL = 1e-9
SMALL = SearchConfig(samples=128, probes=512, starts=8, steps=16, rounds=3, walkers=4, local_probes=64)
KEY = jax.random.key(0)


# --- helpers ------------------------------------------------------------------------------------------------


def make_params(weights, biases=None):
    """params from lists of [fan_in, fan_out] weights and [fan_out] biases (float64 numpy kept exact in f32?)."""
    biases = biases if biases is not None else [np.zeros(np.shape(w)[1]) for w in weights]
    return tuple({"w": jnp.asarray(np.asarray(w, np.float32)), "b": jnp.asarray(np.asarray(b, np.float32))}
                 for w, b in zip(weights, biases))


def model_of(params, activation="relu"):
    sizes = (params[0]["w"].shape[0],) + tuple(layer["w"].shape[1] for layer in params)
    return nets.MLP(sizes, activation=activation)


def random_net(sizes, seed, density=1.0, *, dead=False, zero_bias=False, duplicate=False, masked_unit=False,
               masked_row=False):
    """A random small sparse ReLU net (params, mask) with optional degenerate features."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(a, b)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [np.zeros(b) if zero_bias else rng.normal(size=b) * 0.5 for b in sizes[1:]]
    masks_w = [(rng.random(w.shape) < density).astype(np.float32) for w in weights]
    if dead:  # unit 0 of the first hidden layer: no input, negative bias: constantly 0
        weights[0][:, 0] = 0.0
        biases[0][0] = -1.0
    if duplicate and sizes[1] >= 2:  # unit 1 copies unit 0's hyperplane (parallel, identical)
        weights[0][:, 1], biases[0][1] = weights[0][:, 0], biases[0][0]
        masks_w[0][:, 1] = masks_w[0][:, 0]
    if masked_unit:  # the last unit of the first hidden layer is fully masked (incoming and outgoing)
        masks_w[0][:, -1] = 0.0
        masks_w[1][-1, :] = 0.0
    if masked_row:  # input 0 is cut off: a fully masked row of the first weight matrix
        masks_w[0][0, :] = 0.0
    params = make_params(weights, biases)
    mask = tuple({"w": jnp.asarray(m), "b": jnp.ones(b.shape, jnp.float32)} for m, b in zip(masks_w, biases))
    return params, mask


def masked_arrays(params, mask):
    mask = mask or jax.tree.map(jnp.ones_like, params)
    ws = [np.asarray(p["w"], np.float64) * np.asarray(m["w"], np.float64) for p, m in zip(params, mask)]
    bs = [np.asarray(p["b"], np.float64) * np.asarray(m["b"], np.float64) for p, m in zip(params, mask)]
    return ws, bs


def brute_force(params, mask=None, alpha=0.0, box=None):
    """max ||J|| over all 2^h patterns whose region holds a ball of radius 1e-7 (one scipy LP per pattern)."""
    ws, bs = masked_arrays(params, mask)
    d = ws[0].shape[0]
    widths = [w.shape[1] for w in ws[:-1]]
    box_rows = [] if box is None else ([(np.eye(d)[i], box[1][i]) for i in range(d)]
                                       + [(-np.eye(d)[i], -box[0][i]) for i in range(d)])
    best = 0.0
    for pattern in itertools.product([0, 1], repeat=sum(widths)):
        rows, rhs = [r for r, _ in box_rows], [h for _, h in box_rows]
        A, c, start, feasible = np.eye(d), np.zeros(d), 0, True
        for k, width in enumerate(widths):
            za, zc = A @ ws[k], c @ ws[k] + bs[k]
            s = np.array(pattern[start : start + width])
            start += width
            for j in range(width):
                norm = np.linalg.norm(za[:, j])
                if norm < 1e-13:
                    feasible &= (zc[j] > 0) == bool(s[j])
                    continue
                sign = 1.0 if s[j] else -1.0
                rows.append(-sign * za[:, j] / norm)
                rhs.append(sign * zc[j] / norm)
            slope = np.where(s == 1, 1.0, alpha)
            A, c = za * slope, zc * slope
        if not feasible:
            continue
        if rows:
            res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.hstack([rows, np.ones((len(rows), 1))]), b_ub=rhs,
                          bounds=[(None, None)] * d + [(None, 1.0)], method="highs",
                          options={"presolve": False})  # HiGHS's presolve called such LPs infeasible (PRESOLVE_NET)
            if res.status != 0 or -res.fun <= 1e-7:
                continue
        best = max(best, np.linalg.norm(A @ ws[-1], 2))
    return best


def jax_jacobian_norm(model, params, mask, x):
    """||J(x)||_2 by jax.jacfwd of MLP.apply in float64 (independent of lawrob.lipschitz)."""
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        m64 = None if mask is None else jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), mask)
        jac = jax.jacfwd(lambda y: model.apply(p64, y, m64))(jnp.asarray(x, jnp.float64))
    return float(np.linalg.norm(np.asarray(jac), 2))


def finite_difference_slope(model, params, mask, x, h=1e-6):
    """Largest |f(x + h v) - f(x - h v)| / 2h over the Jacobian's top right singular vector v (float64)."""
    ws, bs = masked_arrays(params, mask)
    net = prepare(params, mask, model)
    with jax.enable_x64(True):
        jac = jax.jacfwd(lambda y: model.apply(jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params),
                                               y, jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), mask)
                                               if mask is not None else None))(jnp.asarray(x, jnp.float64))
    v = np.linalg.svd(np.asarray(jac))[2][0]
    return float(np.linalg.norm(net(x + h * v) - net(x - h * v)) / (2 * h))


def assert_sandwich(low, ex, high):
    assert low <= ex * (1 + RTOL) + 1e-12, (low, ex)
    assert ex <= high * (1 + RTOL) + 1e-12, (ex, high)


# --- known answers ------------------------------------------------------------------------------------------


def test_linear_networks_equal_the_spectral_norm():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    params = make_params([w])
    sigma = np.linalg.norm(np.asarray(params[0]["w"], np.float64), 2)
    for bound in (exact(params), lower(params, key=KEY, config=SMALL)):
        assert bound.value == pytest.approx(sigma, rel=RTOL)
    for method in ("product", "eclipse_fast", "lipsdp"):  # certified margins of about 1e-12 to 1e-9
        assert sigma <= upper(params, method=method).value <= sigma * (1 + 1e-7)
    # two layers with the identity activation compose linearly: Lip = ||W1 W2||
    w1, w2 = rng.normal(size=(3, 5)), rng.normal(size=(5, 2))
    params = make_params([w1, w2], [rng.normal(size=5), rng.normal(size=2)])
    model = model_of(params, "identity")
    product = np.linalg.norm(np.asarray(params[0]["w"], np.float64) @ np.asarray(params[1]["w"], np.float64), 2)
    assert exact(params, model=model).value == pytest.approx(product, rel=RTOL)
    assert lower(params, key=KEY, model=model, config=SMALL).value == pytest.approx(product, rel=RTOL)
    assert upper(params, model=model, method="lipsdp").value == pytest.approx(product, rel=1e-3)
    assert upper(params, model=model).value >= product * (1 - RTOL)


def test_single_relu_unit():
    a, w, b = -2.5, np.array([[0.3], [-1.2], [0.4]]), np.array([0.7])
    params = make_params([w, [[a]]], [b, [0.1]])
    answer = abs(np.float32(a)) * np.linalg.norm(np.asarray(params[0]["w"], np.float64))
    assert exact(params).value == pytest.approx(answer, rel=RTOL)
    assert lower(params, key=KEY, config=SMALL).value == pytest.approx(answer, rel=RTOL)
    assert upper(params, method="product").value == pytest.approx(answer, rel=1e-7)
    assert upper(params, method="eclipse_fast").value == pytest.approx(answer, rel=1e-7)
    assert upper(params, method="lipsdp").value == pytest.approx(answer, rel=1e-4)  # LipSDP is tight on one unit


def test_relu_x_minus_relu_minus_x_is_the_identity():
    params = make_params([[[1.0, -1.0]], [[1.0], [-1.0]]])
    assert exact(params).value == pytest.approx(1.0, rel=RTOL)
    assert lower(params, key=KEY, config=SMALL).value == pytest.approx(1.0, rel=RTOL)
    assert upper(params, method="product").value == pytest.approx(2.0, rel=1e-7)  # ||W1|| ||W2|| = sqrt2 sqrt2
    assert 1.0 - RTOL <= upper(params).value <= 2.0 + 1e-7


def test_sum_of_units_with_disjoint_supports():
    """f(x) = sum_i a_i relu(w_i . x_{S_i} + b_i), S_i disjoint (by the mask): Lip = sqrt(sum a_i^2 |w_i|^2)."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 3))
    mask_w = np.zeros((6, 3), np.float32)
    for unit, support in enumerate(([0, 1], [2, 3, 4], [5])):
        mask_w[support, unit] = 1.0
    params = make_params([w, rng.normal(size=(3, 1))], [rng.normal(size=3), [0.0]])
    mask = ({"w": jnp.asarray(mask_w), "b": jnp.ones(3)}, {"w": jnp.ones((3, 1)), "b": jnp.ones(1)})
    ws, _ = masked_arrays(params, mask)
    answer = math.sqrt(sum((ws[1][i, 0] * np.linalg.norm(ws[0][:, i])) ** 2 for i in range(3)))
    assert exact(params, mask).value == pytest.approx(answer, rel=RTOL)
    assert lower(params, mask, key=KEY, config=SMALL).value == pytest.approx(answer, rel=RTOL)
    assert upper(params, mask).value >= answer * (1 - RTOL)
    assert exact(params).value != pytest.approx(answer, rel=1e-3)  # the dense network is another function


def tiny_triangle(delta=1e-3):
    """relu(x1) + relu(x2) - relu(delta - x1 - x2): gradient (2, 2) only inside a triangle of legs delta."""
    return make_params([[[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]], [[1.0], [1.0], [-1.0]]], [[0.0, 0.0, delta], [0.0]])


def test_region_that_exists_only_in_a_tiny_cell():
    params = tiny_triangle()
    delta = float(np.float32(1e-3))
    bound = exact(params)
    assert bound.value == pytest.approx(2 * math.sqrt(2), rel=RTOL)
    x = bound.witness
    assert x[0] > 0 and x[1] > 0 and x[0] + x[1] < delta  # the witness is inside the triangle
    assert bound.details["witness_radius"] == pytest.approx(delta / (2 + math.sqrt(2)), rel=1e-6)  # its incentre
    assert brute_force(params) == pytest.approx(bound.value, rel=RTOL)
    # random points essentially never land in the triangle; the search's probes do
    data = np.random.default_rng(0).normal(size=(20, 2))
    assert lower(params, key=KEY, points=data, method="points").value < 2.3
    assert lower(params, key=KEY, points=data, config=SMALL).value == pytest.approx(2 * math.sqrt(2), rel=RTOL)


def test_steep_slab_far_from_the_data():
    """Parallel hyperplanes x1 = 0 and x1 = 1e-3 (a slab) and x2 = 2000: the steepest region is far away."""
    w1 = [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    params = make_params([w1, [[10.0], [-10.0], [10.0]]], [[0.0, -1e-3, -2000.0], [0.0]])
    answer = math.sqrt(200.0)
    assert exact(params).value == pytest.approx(answer, rel=RTOL)
    found = lower(params, key=KEY, points=np.random.default_rng(0).normal(size=(20, 2)), config=SMALL)
    assert found.value == pytest.approx(answer, rel=RTOL)
    assert found.witness[1] > 2000 and 0 < found.witness[0] < 1e-3


def test_ascent_climbs_where_starts_are_flat():
    """Smoothed ascent alone (no probes, no walking) leaves flat starts: 3 relu(x1 + x2 - 4) seen from |x| <= 1."""
    params = make_params([[[1.0], [1.0]], [[3.0]]], [[-4.0], [0.0]])
    no_climb = SearchConfig(samples=8, probes=0, starts=8, steps=1, rounds=0, radius_max=1.0)
    assert lower(params, key=KEY, config=no_climb).value == 0.0  # every start has gradient 0
    found = lower(params, key=KEY, config=no_climb, steps=100)  # a keyword overrides one field
    assert found.value == pytest.approx(3 * math.sqrt(2), rel=RTOL)
    assert found.witness.sum() > 4


def test_permuting_hidden_units_changes_nothing():
    params, mask = random_net((3, 5, 4, 2), seed=3, density=0.7)
    perm1, perm2 = np.array([3, 0, 4, 1, 2]), np.array([2, 3, 1, 0])

    def permute(tree):
        (l1, l2, l3) = tree
        return ({"w": l1["w"][:, perm1], "b": l1["b"][perm1]},
                {"w": l2["w"][perm1][:, perm2], "b": l2["b"][perm2]},
                {"w": l3["w"][perm2], "b": l3["b"]})

    for method, rel in (("product", 1e-7), ("eclipse_fast", 1e-7), ("lipsdp", 1e-4)):
        assert upper(permute(params), permute(mask), method=method).value == pytest.approx(
            upper(params, mask, method=method).value, rel=rel)
    assert exact(permute(params), permute(mask)).value == pytest.approx(exact(params, mask).value, rel=RTOL)


@pytest.mark.parametrize("a", [-4.0, 0.5])  # powers of 2: the float32 weights scale exactly
def test_scaling_the_output_weights_scales_the_constant(a):
    params, mask = random_net((2, 6, 1), seed=4)
    scaled = params[:-1] + ({"w": params[-1]["w"] * a, "b": params[-1]["b"]},)
    assert exact(scaled, mask).value == pytest.approx(abs(a) * exact(params, mask).value, rel=RTOL)
    for method in ("product", "eclipse_fast"):
        assert upper(scaled, mask, method=method).value == pytest.approx(
            abs(a) * upper(params, mask, method=method).value, rel=1e-7)


def test_a_constant_network_has_constant_zero():
    """relu(x+1) - relu(x) + relu(-x) - relu(-x-1) = 1 everywhere; at x = 0 the convention relu'(0) = 0 claims 1."""
    params = make_params([[[1.0, 1.0, -1.0, -1.0]], [[1.0], [-1.0], [1.0], [-1.0]]], [[1.0, 0.0, 0.0, -1.0], [0.0]])
    assert exact(params).value == pytest.approx(0.0, abs=1e-12)
    assert lower(params, key=KEY, config=SMALL).value == pytest.approx(0.0, abs=1e-12)
    at_kink = lower(params, key=KEY, points=[[0.0]], method="points")
    assert at_kink.value == 0.0 and at_kink.witness is None  # x = 0 is on two hyperplanes: not certified
    assert certify(prepare(params, None, None), np.array([0.0]))[1] is False
    assert certify(prepare(params, None, None), np.array([0.5]))[1] is True


# --- witnesses, masks, domains --------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes,activation", [((3, 5, 4, 2), "relu"), ((2, 6, 1), "leaky_relu"),
                                              ((3, 4, 3, 1), "tanh")])
def test_witness_reproduces_the_value(sizes, activation):
    params, mask = random_net(sizes, seed=5, density=0.8)
    model = nets.MLP(sizes, activation=activation)
    bounds = [lower(params, mask, key=KEY, model=model, config=SMALL)]
    if activation != "tanh":
        bounds.append(exact(params, mask, model=model))
    for bound in bounds:
        x = bound.witness
        assert jax_jacobian_norm(model, params, mask, x) == pytest.approx(bound.value, rel=1e-12)
        assert finite_difference_slope(model, params, mask, x) == pytest.approx(bound.value, rel=1e-5)


def test_masks_are_honoured():
    params, mask = random_net((3, 6, 4, 1), seed=6, density=0.5)
    pruned = jax.tree.map(lambda p, m: p * m, params, mask)
    assert exact(params, mask).value == pytest.approx(exact(pruned).value, rel=RTOL)
    assert exact(params, mask).value == pytest.approx(brute_force(params, mask), rel=RTOL)
    for method in ("product", "eclipse_fast", "lipsdp"):
        assert upper(params, mask, method=method).value == pytest.approx(upper(pruned, method=method).value,
                                                                          rel=1e-6)
    zero = jax.tree.map(jnp.zeros_like, mask)
    assert exact(params, zero).value == 0.0 and upper(params, zero).value == 0.0
    assert lower(params, zero, key=KEY, config=SMALL).value == 0.0


def test_domain_box():
    params, mask = random_net((2, 5, 1), seed=7)
    box = (np.array([-0.3, 0.1]), np.array([0.2, 0.4]))
    bound = exact(params, mask, domain=box)
    assert bound.value == pytest.approx(brute_force(params, mask, box=box), rel=RTOL)
    assert np.all(bound.witness > box[0]) and np.all(bound.witness < box[1])
    low = lower(params, mask, key=KEY, domain=box, config=SMALL)
    assert np.all(low.witness >= box[0]) and np.all(low.witness <= box[1])
    assert_sandwich(low.value, bound.value, exact(params, mask).value)


# --- the sandwich on random small sparse nets -----------------------------------------------------------------

ARCHS = [(2, 4, 1), (2, 3, 3, 1), (3, 4, 2)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arch=st.sampled_from(ARCHS), seed=st.integers(0, 2**31 - 1), density=st.sampled_from([1.0, 0.6, 0.35]),
       dead=st.booleans(), zero_bias=st.booleans(), duplicate=st.booleans(), masked_unit=st.booleans(),
       masked_row=st.booleans())
def test_sandwich_on_random_sparse_nets(arch, seed, density, dead, zero_bias, duplicate, masked_unit, masked_row):
    params, mask = random_net(arch, seed, density, dead=dead, zero_bias=zero_bias, duplicate=duplicate,
                              masked_unit=masked_unit, masked_row=masked_row)
    ex = exact(params, mask)
    assert ex.value == pytest.approx(brute_force(params, mask), rel=RTOL, abs=1e-12)
    points = np.random.default_rng(seed).normal(size=(20, arch[0]))
    lows = [lower(params, mask, key=jax.random.key(seed), config=SMALL, points=points),
            lower(params, mask, key=KEY, points=points, method="points")]
    highs = [upper(params, mask, method=m) for m in ("product", "eclipse_fast", "lipsdp", "best")]
    for low in lows:
        for high in highs:
            assert_sandwich(low.value, ex.value, high.value)
    assert lows[0].value >= lows[1].value * (1 - RTOL)  # the search scores the given points too


@settings(max_examples=15, deadline=None)
@given(arch=st.sampled_from([(2, 4, 1), (2, 3, 2, 2)]), seed=st.integers(0, 2**31 - 1),
       density=st.sampled_from([1.0, 0.5]), zero_bias=st.booleans())
def test_leaky_relu_sandwich(arch, seed, density, zero_bias):
    params, mask = random_net(arch, seed, density, zero_bias=zero_bias)
    model = nets.MLP(arch, activation="leaky_relu")
    ex = exact(params, mask, model=model)
    assert ex.value == pytest.approx(brute_force(params, mask, alpha=0.01), rel=RTOL)
    points = np.random.default_rng(seed).normal(size=(20, arch[0]))
    low = lower(params, mask, key=KEY, model=model, points=points, method="points")
    for method in ("product", "eclipse_fast", "lipsdp"):
        assert_sandwich(low.value, ex.value, upper(params, mask, model=model, method=method).value)


def test_brute_force_agrees_on_two_hidden_layers():
    for seed in range(3):
        params, mask = random_net((2, 4, 4, 1), seed=seed, density=0.8)
        assert exact(params, mask).value == pytest.approx(brute_force(params, mask), rel=RTOL)
        assert exact(params, mask, solver="scipy").value == pytest.approx(exact(params, mask).value, rel=RTOL)


# A 5-10-1 ReLU net (a random sparse 5-19-1 net cut down to the units that matter, float64) on which exact with the
# scipy backend raised "linprog failed on a Chebyshev LP: ... infeasible" at scipy 1.13 and 1.14, where highspy
# solved every LP: linprog ran HiGHS with its presolve, which called one of these LPs infeasible. None is: t is
# unbounded below, so every x is feasible (notebook 01 stopped the same way without highspy).
PRESOLVE_NET = (
    {"w": np.array([
        [0.12489445385965152, 0.0, 0.4451103465830858, 0.0, 0.26141225458653905, 0.8607131628605609,
         1.215886636131389, 0.0, -2.2329029006616645, 0.3373966758431151],
        [0.0, 0.0, -0.23269498113621478, 0.0, 0.0, -1.0494770448868727, 0.6277533916260494, 0.0, 0.0,
         -3.803339559796899],
        [-0.295874839626461, 2.3670827366938565, -1.2806821007804685, 1.2195842218810926, 0.0, 0.0492673456368438,
         0.0, 0.0, 3.8824031985665783, 4.143374533847011],
        [0.0, 0.0, -0.05117236576455657, 0.0, 0.0, -1.633216252181598, 0.0, -1.8100258353902445,
         0.37847568714342456, -1.4050829592736],
        [0.6733491449335046, -1.7433740835166471, 0.3681475474937442, 0.0, 0.0, 0.0, 0.0, 0.0,
         -0.38938520531150117, 1.713682369660275]]),
     "b": np.array([0.11790017388997263, 0.02708131304143061, 0.03636293868105377, 0.027917956514941472,
                    0.05015937908698562, -0.1411876174040386, -0.10424143441405734, 0.05996376168940775,
                    -0.030103033198695124, 0.03152191701177999])},
    {"w": np.array([[-3.2531105512719796], [1.6361123833167395], [0.27779103128689153], [-0.18818897349244665],
                    [-0.6363780832573068], [0.8329850733656853], [0.448606814009397], [-0.16973939464633783],
                    [-2.9996889562623106], [0.11037472293780148]]),
     "b": np.array([0.01932815318890898])},
)


@pytest.mark.parametrize("solver", ["highspy", "scipy"])
def test_both_lp_backends_solve_the_lp_an_old_presolve_called_infeasible(solver):
    if solver == "highspy":
        pytest.importorskip("highspy")
    assert exact(PRESOLVE_NET, solver=solver).value == pytest.approx(brute_force(PRESOLVE_NET), rel=RTOL)


def test_the_scipy_backend_runs_highs_as_the_highspy_backend_does(monkeypatch):
    """linprog gets _HighsLP's settings: presolve off (what misreported, see PRESOLVE_NET) and tolerances 1e-10."""
    from scipy import optimize

    seen, solve = [], optimize.linprog

    def recorded(*args, options=None, **kwargs):
        seen.append(dict(options or {}))
        return solve(*args, options=options, **kwargs)

    monkeypatch.setattr(optimize, "linprog", recorded)
    params, mask = random_net((2, 4, 1), seed=0)
    assert exact(params, mask, solver="scipy").details["lps"] == len(seen) > 0
    assert all(o == {"presolve": False, "primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
               for o in seen)


# --- enumeration details, refusal and errors -----------------------------------------------------------------


def test_enumeration_prunes_and_counts_regions():
    params, _ = random_net((2, 8, 1), seed=8)
    bound = exact(params)
    # 8 lines in general position cut the plane into 1 + 8 + 28 = 37 regions; far fewer LPs than 2^8 patterns
    assert bound.details["regions"] == 37 == region_bound(params)
    assert bound.details["lps"] < 2**8
    with pytest.raises(ValueError, match=r"up to 2517 linear regions"):
        exact(random_net((4, 16, 1), seed=0)[0], max_regions=1000)
    assert region_bound(*random_net((3, 8, 8, 1), seed=0)) == 93 * 93  # Serra et al.: (sum_{j<=3} C(8, j))^2


def test_highs_banner_is_silenced_once_and_concurrent_solvers_leave_stdout_alone(monkeypatch, capfd):
    # a sweep's measuring threads make HiGHS solvers concurrently; the banner's redirection of file descriptor 1
    # once interleaved between threads and left the process's stdout on /dev/null (a test's "DONE" line lost)
    from lawrob.lipschitz import _exact

    made = []

    class FakeHighspy:  # prints a banner on fd 1 when the process makes its first solver, as HiGHS does
        @staticmethod
        def Highs():
            if not made:
                os.write(1, b"BANNER\n")
            made.append(1)
            time.sleep(0.001)
            return object()

    monkeypatch.setattr(_exact, "_banner_printed", False)
    before = os.fstat(1)
    threads = [threading.Thread(target=lambda: [_exact._new_highs(FakeHighspy) for _ in range(20)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = os.fstat(1)
    print("still visible", flush=True)
    out = capfd.readouterr().out
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    assert len(made) == 80 and "BANNER" not in out and "still visible" in out


def test_exact_refuses_smooth_activations():
    params, mask = random_net((2, 3, 1), seed=0)
    with pytest.raises(ValueError, match="piecewise-linear"):
        exact(params, mask, model=nets.MLP((2, 3, 1), activation="tanh"))


def test_bad_arguments_name_themselves():
    params, mask = random_net((2, 3, 1), seed=0)
    with pytest.raises(TypeError, match="model"):
        exact(params, model="relu")
    with pytest.raises(ValueError, match="method"):
        upper(params, method="fast")
    with pytest.raises(ValueError, match="method"):
        lower(params, key=KEY, method="climb")
    with pytest.raises(TypeError, match="key"):
        lower(params, key=0)
    with pytest.raises(ValueError, match="points"):
        lower(params, key=KEY, points=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="points"):
        lower(params, key=KEY, method="points")
    with pytest.raises(ValueError, match="domain"):
        exact(params, domain=(1.0, 0.0))
    with pytest.raises(ValueError, match="domain"):
        lower(params, key=KEY, domain=(np.zeros(3), np.ones(3)))
    with pytest.raises(ValueError, match="mask"):
        exact(params, mask[:1] + ({"w": jnp.ones((2, 1)), "b": jnp.ones(1)},))
    with pytest.raises(ValueError, match="max_regions"):
        exact(params, max_regions=0)
    with pytest.raises(ValueError, match="solver"):
        exact(params, solver="gurobi")
    with pytest.raises(TypeError, match="config"):
        lower(params, key=KEY, config={"steps": 3})
    with pytest.raises(ValueError, match="steps"):
        SearchConfig(steps=-1)
    with pytest.raises(ValueError, match="steps"):
        lower(params, key=KEY, steps=-1)
    with pytest.raises(TypeError, match="budget"):
        lower(params, key=KEY, climbers=3)


# --- upper-bound components ------------------------------------------------------------------------------------


def test_spectral_norm_upper_is_certified_and_tight():
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    matrices = [rng.normal(size=(7, 3)), rng.normal(size=(3, 9)), 2.5 * q, np.diag([3.0, 3.0, 1.0]),
                np.outer(rng.normal(size=5), rng.normal(size=4)), np.zeros((3, 2))]
    for w in matrices:
        sigma = np.linalg.norm(w, 2) if w.any() else 0.0
        bound = spectral_norm_upper(w)
        assert sigma <= bound <= sigma * (1 + 1e-6) + 1e-12


def test_psd_certificate_rejects_negative_eigenvalues():
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    assert _psd_certified(q @ np.diag([1.0, 2, 3, 4, 5]) @ q.T)
    assert not _psd_certified(q @ np.diag([-1e-10, 2, 3, 4, 5]) @ q.T)
    assert not _psd_certified(q @ np.diag([1e-20, 2, 3, 4, 5]) @ q.T)  # too close to singular to prove


def test_lipsdp_needs_cvxpy_only_for_cvxpy_solvers(monkeypatch):
    params, mask = random_net((2, 4, 1), seed=0)
    with_cvxpy = upper(params, mask, method="lipsdp", solver="CLARABEL").value
    monkeypatch.setitem(sys.modules, "cvxpy", None)  # import cvxpy now raises ImportError
    bound = upper(params, mask)  # the barrier method needs no SDP library
    assert bound.method == "lipsdp" and bound.value == pytest.approx(with_cvxpy, rel=1e-5)
    fallback = upper(params, mask, solver="SCS")
    assert fallback.method in ("product", "eclipse_fast") and "cvxpy" in fallback.details["lipsdp"]
    with pytest.raises(ImportError, match="cvxpy"):
        upper(params, mask, method="lipsdp", solver="SCS")


def test_lipsdp_is_tighter_than_the_product_on_a_wider_net():
    params, mask = random_net((4, 12, 10, 1), seed=2, density=0.7)
    values = {m: upper(params, mask, method=m).value for m in ("product", "eclipse_fast", "lipsdp")}
    best = upper(params, mask)
    assert best.value == min(values.values()) and best.method == "lipsdp"
    assert values["lipsdp"] < values["eclipse_fast"] < values["product"]
    assert lower(params, mask, key=KEY, config=SMALL).value <= values["lipsdp"]


# --- batching ----------------------------------------------------------------------------------------------------


def test_lower_batch_matches_single_calls():
    trees = [random_net((2, 4, 1), seed=s, density=0.7) for s in range(3)]
    stack = lambda ts: jax.tree.map(lambda *leaves: jnp.stack(leaves), *ts)  # noqa: E731
    params, masks = stack([t[0] for t in trees]), stack([t[1] for t in trees])
    batch = lower_batch(params, masks, key=KEY, config=SMALL, chunk=2)
    keys = jax.random.split(KEY, 3)
    for b, (p, m) in enumerate(trees):
        single = lower(p, m, key=keys[b], config=SMALL)
        assert isinstance(batch[b], Bound) and batch[b].kind == "lower"
        assert batch[b].value == pytest.approx(single.value, rel=1e-9)
        assert batch[b].value <= exact(p, m).value * (1 + RTOL)


@pytest.mark.parametrize("activation", list(nets.ACTIVATIONS))
def test_net_activation_equals_the_models(activation):
    z = np.random.default_rng(0).normal(size=50) * 10.0 ** np.arange(-5, 5).repeat(5)
    z = np.concatenate([z, [0.0, -0.0, 1e300, -1e300]])
    net = prepare(*random_net((2, 3, 1), seed=0)[:1], None, nets.MLP((2, 3, 1), activation=activation))
    with jax.enable_x64(True):
        expected = np.asarray(nets.ACTIVATIONS[activation][0](jnp.asarray(z, jnp.float64)))
    np.testing.assert_array_equal(net.act(z), expected)
