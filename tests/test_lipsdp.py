"""Tests of the LipSDP solvers (barrier: _lipsdp, _lipsdp_blocks; primal-dual: _lipsdp_pd) against independent
computations.

References: the LipSDP matrix built entry by entry in NumPy (``lipsdp_matrix``), jax.grad / jax.hessian of the
barrier written directly with slogdet, numpy's eigvalsh, the same SDP solved by Clarabel through cvxpy, and the
exact Lipschitz constant by region enumeration (soundness).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_lipschitz import KEY, SMALL, random_net

from lawrob import nets
from lawrob.lipschitz import (_lipsdp, _lipsdp_blocks, _lipsdp_pd, exact, lower, lower_batch, prepare, reduce, upper,
                              upper_batch)
from lawrob.lipschitz._network import Net
from lawrob.lipschitz._lipsdp_bound import (_negated_blocks, _reduced, _unit_norm, _verified_rho, _verified_rho_dense,
                                            lipsdp_barrier_bounds, lipsdp_bound, lipsdp_matrix,
                                            lipsdp_primal_dual_bounds)
from lawrob.lipschitz._psd import _psd_certified_blocks

SLOPED = ("relu", "leaky_relu", "tanh", "sigmoid")


def unit_norm_net(sizes, seed, activation="relu") -> Net:
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(a, b)) * (rng.random((a, b)) < 0.7) for a, b in zip(sizes[:-1], sizes[1:])]
    return _unit_norm(Net(tuple(weights), tuple(np.zeros(b) for b in sizes[1:]), activation))[0]


def jax_inputs(net: Net):
    with jax.enable_x64(True):
        return (tuple(jnp.asarray(w) for w in net.weights), jnp.ones(net.d),
                tuple(jnp.ones(w) for w in net.widths))


def split(t, widths):
    return np.split(np.asarray(t), np.cumsum(widths)[:-1])


@pytest.mark.parametrize("activation", SLOPED)
@pytest.mark.parametrize("sizes", [(3, 4, 1), (4, 6, 5, 2), (2, 3, 3, 3, 1)])
def test_the_start_is_strictly_feasible(activation, sizes):
    net = unit_norm_net(sizes, seed=len(sizes), activation=activation)
    weights, _, live = jax_inputs(net)
    with jax.enable_x64(True):
        rho, t = _lipsdp._start(weights, live, net.slopes)
    m = lipsdp_matrix(net, float(rho), split(t, net.widths))
    assert np.linalg.eigvalsh(m)[-1] <= -1 + 1e-12  # M(rho_0, t_0) <= -I, as the module docstring proves


@pytest.mark.parametrize("activation", ("relu", "leaky_relu"))
def test_newton_system_matches_autodiff_of_the_barrier(activation):
    net = unit_norm_net((3, 4, 3, 2), seed=1, activation=activation)
    weights, inp, live = jax_inputs(net)
    alpha, beta = net.slopes
    mu = 0.3
    with jax.enable_x64(True):
        rho0, t0 = _lipsdp._start(weights, live, net.slopes)
        x0 = jnp.concatenate([jnp.asarray([rho0]), t0 * jnp.linspace(0.8, 1.3, t0.shape[0])])

        def barrier(x):  # F_mu written directly on the NumPy-defined matrix's JAX twin
            m0 = lipsdp_matrix(net, 0.0, split(np.zeros(t0.shape[0]), net.widths))
            m = jnp.asarray(m0)
            m = m - x[0] * jnp.zeros_like(m).at[: net.d, : net.d].set(jnp.eye(net.d))
            for i in range(t0.shape[0]):
                unit = np.zeros(t0.shape[0])
                unit[i] = 1.0
                base = lipsdp_matrix(net, 0.0, split(unit, net.widths)) - m0
                m = m + x[1 + i] * jnp.asarray(base)
            return x[0] / mu - jnp.linalg.slogdet(-m)[1] - jnp.sum(jnp.log(x[1:]))

        k_mat = jnp.array([[-2.0, alpha + beta], [alpha + beta, -2.0 * alpha * beta]])
        b, last = _lipsdp._pieces(weights, inp)
        grad, hess = _lipsdp._newton_system(x0[0], x0[1:], mu, b, last, inp, jnp.concatenate(live), k_mat)
        np.testing.assert_allclose(grad, jax.grad(barrier)(x0), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(hess, jax.hessian(barrier)(x0), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("activation", SLOPED)
@pytest.mark.parametrize("sizes", [(3, 6, 1), (4, 8, 6, 2), (3, 5, 4, 4, 1)])
def test_barrier_agrees_with_clarabel(activation, sizes):
    pytest.importorskip("cvxpy")
    params, mask = random_net(sizes, seed=sum(sizes), density=0.7)
    net = reduce(prepare(params, mask, nets.MLP(sizes, activation=activation)))
    (barrier, steps), = lipsdp_barrier_bounds([net], tuple(sizes[:-1]))
    clarabel = lipsdp_bound(net, "CLARABEL")
    assert steps < 500  # converged, not stopped by the step limit
    assert barrier == pytest.approx(clarabel, rel=2e-5)  # same SDP: both optimal up to their tolerances


@pytest.mark.parametrize("seed", range(4))
def test_barrier_bound_is_sound_and_tighter_than_the_closed_forms(seed):
    sizes = (2, 5, 4, 1)
    params, mask = random_net(sizes, seed=seed, density=0.8, dead=seed % 2 == 0)
    truth = exact(params, mask).value
    values = {m: upper(params, mask, method=m).value for m in ("product", "eclipse_fast", "lipsdp")}
    assert truth <= values["lipsdp"] * (1 + 1e-12)
    assert values["lipsdp"] <= values["eclipse_fast"] * (1 + 1e-9) <= values["product"] * (1 + 1e-9)


def test_padding_leaves_the_result_unchanged():
    params, mask = random_net((3, 5, 4, 1), seed=7, density=0.8)
    net = reduce(prepare(params, mask, None))
    (tight, steps), = lipsdp_barrier_bounds([net], (3, 5, 4))
    (padded, padded_steps), = lipsdp_barrier_bounds([net], (6, 9, 8))
    assert padded == pytest.approx(tight, rel=1e-9) and padded_steps == steps


def test_upper_batch_matches_single_calls():
    trees = [random_net((3, 6, 5, 1), seed=s, density=0.6, dead=s == 1, masked_unit=s == 2) for s in range(4)]
    stack = lambda ts: jax.tree.map(lambda *leaves: jnp.stack(leaves), *ts)  # noqa: E731
    batch = upper_batch(stack([t[0] for t in trees]), stack([t[1] for t in trees]), chunk=3)
    for bound, (params, mask) in zip(batch, trees):
        single = upper(params, mask)
        assert bound.kind == "upper" and bound.method == single.method
        assert bound.value == pytest.approx(single.value, rel=1e-9)


def test_upper_batch_default_chunk_is_the_backends_and_gives_the_same_values():
    from lawrob import _batching

    trees = [random_net((3, 6, 5, 1), seed=s, density=0.6) for s in range(3)]
    stack = lambda ts: jax.tree.map(lambda *leaves: jnp.stack(leaves), *ts)  # noqa: E731
    params, mask = stack([t[0] for t in trees]), stack([t[1] for t in trees])
    assert _batching.default_chunk(_batching.DEFAULT_CHUNKS["lipsdp"], "cpu") == 1
    by_default = upper_batch(params, mask, method="lipsdp")
    one_vmap = upper_batch(params, mask, method="lipsdp", chunk=3)
    for a, b in zip(by_default, one_vmap):
        assert a.value == pytest.approx(b.value, rel=1e-9)
    with pytest.raises(ValueError, match="chunk"):
        upper_batch(params, mask, chunk=0)


def test_lower_batch_takes_one_key_per_network():
    trees = [random_net((2, 4, 1), seed=s, density=0.7) for s in range(3)]
    stack = lambda ts: jax.tree.map(lambda *leaves: jnp.stack(leaves), *ts)  # noqa: E731
    keys = jnp.stack([jax.random.fold_in(KEY, 10 + s) for s in range(3)])
    batch = lower_batch(stack([t[0] for t in trees]), stack([t[1] for t in trees]), key=keys, config=SMALL)
    for b, (params, mask) in enumerate(trees):
        assert batch[b].value == pytest.approx(lower(params, mask, key=keys[b], config=SMALL).value, rel=1e-9)
    with pytest.raises(ValueError, match="key"):
        lower_batch(stack([t[0] for t in trees]), stack([t[1] for t in trees]), key=keys[:2], config=SMALL)


def test_affine_activation_gives_the_norm_of_the_product():
    rng = np.random.default_rng(3)
    weights = (rng.normal(size=(4, 6)), rng.normal(size=(6, 5)), rng.normal(size=(5, 2)))
    net = Net(weights, tuple(np.zeros(w.shape[1]) for w in weights), "identity")
    (value, _), = lipsdp_barrier_bounds([net], (4, 6, 5))
    truth = np.linalg.norm(weights[0] @ weights[1] @ weights[2], 2)
    assert truth <= value <= truth * (1 + 1e-9)  # the certified margins of spectral_norm_upper


# --- the block-tridiagonal solver (_lipsdp_blocks) and the block certificate ---------------------------------


@pytest.mark.parametrize("activation", ("relu", "leaky_relu", "sigmoid"))
@pytest.mark.parametrize("sizes", [(3, 4, 3, 2), (5, 4, 6, 3, 1)])
def test_block_newton_system_equals_the_dense_one(activation, sizes):
    net = unit_norm_net(sizes, seed=2, activation=activation)
    weights, inp, live = jax_inputs(net)
    alpha, beta = net.slopes
    with jax.enable_x64(True):
        inp = inp.at[-1].set(0.0)  # a padded input
        rho, t = _lipsdp._start(weights, live, net.slopes)
        t = (t * jnp.linspace(0.8, 1.3, t.shape[0])).at[1].set(1.0)
        live_t = jnp.concatenate(live).at[1].set(0.0)  # a frozen (padded) unit
        k_mat = jnp.array([[-2.0, alpha + beta], [alpha + beta, -2.0 * alpha * beta]])
        b, last = _lipsdp._pieces(weights, inp)
        grad, hess = _lipsdp._newton_system(1.1 * rho, t, 0.3, b, last, inp, live_t, k_mat)
        grad_b, hess_b, _ = _lipsdp_blocks._newton_system(1.1 * rho, split(t, net.widths), 0.3, weights, inp, live_t,
                                                         net.slopes, jnp.inf)  # no cap: the dense system's
    np.testing.assert_allclose(grad_b, grad, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(hess_b, hess, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("sizes", "activation"), [((20, 10, 10, 10), "relu"), ((12, 5, 7, 3), "sigmoid")])
def test_block_solver_equals_the_dense_barrier(sizes, activation):
    # N = 40 and 24, the previous dense solver as the reference (N = 300-1040: benchmarks/bench_lipsdp_scale.py,
    # 45 s here, mostly the two compilations)
    params, mask = random_net(sizes, seed=sum(sizes), density=0.7)
    net = reduce(prepare(params, mask, nets.MLP(sizes, activation=activation)))
    (new, steps), = lipsdp_barrier_bounds([net], tuple(sizes[:-1]))
    (old, _), = lipsdp_barrier_bounds([net], tuple(sizes[:-1]), _dense=True)
    assert steps < 500
    assert new == pytest.approx(old, rel=1e-6)


def test_a_nearly_constant_unit_keeps_its_multiplier_bounded_and_the_certificate_verifies():
    # Lipschitz-constrained training leaves units whose incoming weights are ~1e-11 (not zero, so reduce()
    # keeps them): their multipliers cost almost nothing and, uncapped, ran off to 1e14, where float64 could no
    # longer verify M <= 0 (each of the dense and the block solver returned no bound on such a network)
    params, mask = random_net((8, 32, 32, 1), seed=5, density=1.0)
    params[1]["w"] = params[1]["w"].at[:, 21].multiply(1e-11)
    params[2]["w"] = params[2]["w"].at[21].multiply(1e-5)
    net = reduce(prepare(params, mask, nets.MLP((8, 32, 32, 1))))
    (value, steps), = lipsdp_barrier_bounds([net], (8, 32, 32))
    assert value is not None and steps < 500
    scaled, _ = _unit_norm(net)
    with jax.enable_x64(True):
        weights, inp, live = jax_inputs(_reduced(scaled))
        _, t, _ = _lipsdp_blocks.solve(weights, inp, live, slopes=net.slopes, rtol=1e-6, max_steps=500)
        rho0, _ = _lipsdp._start(weights, live, net.slopes)
        assert float(jnp.max(t)) < _lipsdp_blocks._T_CAP * float(rho0)
    pytest.importorskip("cvxpy")
    assert value == pytest.approx(lipsdp_bound(net, "CLARABEL"), rel=1e-6)


def test_input_reduction_keeps_the_optimum():
    # d = 40 > n_1 = 6: the solver sees R of W_1 = Q R (6 inputs); the dense solver the 40 inputs
    params, mask = random_net((40, 6, 5, 2), seed=3, density=0.8)
    net = reduce(prepare(params, mask, None))
    (new, _), = lipsdp_barrier_bounds([net], (40, 6, 5))
    (old, _), = lipsdp_barrier_bounds([net], (40, 6, 5), _dense=True)
    assert new == pytest.approx(old, rel=1e-6)
    pytest.importorskip("cvxpy")
    assert new == pytest.approx(lipsdp_bound(net, "CLARABEL"), rel=2e-6)


@pytest.mark.parametrize("seed", range(3))
def test_multi_output_lipsdp_is_sound(seed):
    params, mask = random_net((2, 5, 4, 3), seed=seed, density=0.8)
    truth = exact(params, mask).value
    value = upper(params, mask, method="lipsdp").value
    assert truth <= value * (1 + 1e-12)
    assert value <= upper(params, mask, method="product").value * (1 + 1e-9)


def test_block_certificate_equals_the_dense_one_and_rejects_infeasible_multipliers():
    net = unit_norm_net((6, 5, 4, 2), seed=4)
    params, mask = random_net((6, 5, 4, 2), seed=4, density=0.9)
    small = _unit_norm(reduce(prepare(params, mask, None)))[0]
    with jax.enable_x64(True):
        weights, inp, live = jax_inputs(small)
        _, t, _ = _lipsdp_blocks.solve(weights, inp, live, slopes=small.slopes, rtol=1e-6, max_steps=500)
    multipliers = split(t, small.widths)
    rho = _verified_rho(small, multipliers)
    assert rho is not None and rho == pytest.approx(_verified_rho_dense(small, multipliers), rel=1e-12)
    assert np.linalg.eigvalsh(lipsdp_matrix(small, rho, multipliers))[-1] <= 0  # M(rho, T) <= 0 indeed
    below = rho * (1 - 1e-4)
    assert not _psd_certified_blocks(*_negated_blocks(small, below, multipliers))
    assert np.linalg.eigvalsh(lipsdp_matrix(small, below, multipliers))[-1] > 0  # and it is infeasible
    # a multiplier set whose hidden part is not negative definite: no rho makes M <= 0
    assert _verified_rho(small, [np.zeros_like(m) for m in multipliers]) is None
    broken = [m.copy() for m in multipliers]
    broken[-1][:] = 1e-3 * broken[-1]  # the last layer's -2 T_L-1 + W_L W_L^T turns indefinite
    assert _verified_rho(small, broken) is None
    assert _verified_rho(net, multipliers[:1] + [np.zeros(4)]) is None


# --- the primal-dual interior-point solver (_lipsdp_pd) ------------------------------------------------------


@pytest.mark.parametrize("activation", ("relu", "leaky_relu", "tanh"))
@pytest.mark.parametrize("sizes", [(3, 6, 1), (5, 4, 6, 3, 1), (20, 10, 10, 10)])
def test_primal_dual_equals_the_barrier_and_brackets_the_optimum(activation, sizes):
    # two algorithms on one SDP: the barrier's value and the primal-dual value agree, and the primal-dual
    # method's dual objective (weak duality) lies below both, within its stopping gap
    params, mask = random_net(sizes, seed=sum(sizes) + 1, density=0.7)
    net = reduce(prepare(params, mask, nets.MLP(sizes, activation=activation)))
    (barrier, _), = lipsdp_barrier_bounds([net], tuple(sizes[:-1]))
    (value, iterations, below), = lipsdp_primal_dual_bounds([net], tuple(sizes[:-1]))
    assert iterations < 60  # converged, in a fraction of the barrier's Newton steps
    assert value == pytest.approx(barrier, rel=1e-6)
    assert below <= value and below <= barrier * (1 + 1e-9)
    assert (value - below) / value < 1e-6


def test_primal_dual_agrees_with_clarabel_and_with_exact_soundness():
    pytest.importorskip("cvxpy")
    params, mask = random_net((4, 8, 6, 2), seed=11, density=0.7)
    net = reduce(prepare(params, mask, None))
    (value, _, below), = lipsdp_primal_dual_bounds([net], (4, 8, 6))
    clarabel = lipsdp_bound(net, "CLARABEL")
    assert value == pytest.approx(clarabel, rel=2e-6)
    assert below <= clarabel * (1 + 1e-6)  # Clarabel's solve carries a 1e-7 I margin, so it sits a little above
    assert exact(params, mask).value <= upper(params, mask, method="lipsdp", solver="primal_dual").value * (1 + 1e-12)


def test_primal_dual_padding_and_batching_leave_the_result_unchanged():
    trees = [random_net((3, 5, 4, 1), seed=s, density=0.8, dead=s == 1) for s in range(3)]
    smalls = [reduce(prepare(p, m, None)) for p, m in trees]
    alone = [lipsdp_primal_dual_bounds([n], (3, 5, 4))[0] for n in smalls]
    together = lipsdp_primal_dual_bounds(smalls, (6, 9, 8), chunk=2)  # padded, two per vmap
    for (a, _, _), (b, _, _) in zip(alone, together):
        assert b == pytest.approx(a, rel=1e-6)


def test_primal_dual_multipliers_certify_through_the_float64_check():
    # only the multipliers leave the solver: the float64 verification proves M(rho, T) <= 0 for the rho reported,
    # and rejects the same multipliers with rho a little lower
    params, mask = random_net((6, 5, 4, 2), seed=4, density=0.9)
    small = _unit_norm(reduce(prepare(params, mask, None)))[0]
    with jax.enable_x64(True):
        weights, inp, live = jax_inputs(small)
        rho, t, _, below, residual = _lipsdp_pd.solve(weights, inp, live, slopes=small.slopes, rtol=1e-8,
                                                      max_steps=100)
    multipliers = split(t, small.widths)
    verified = _verified_rho(small, multipliers)
    assert verified is not None and float(below) <= verified and float(residual) <= 1e-9
    assert verified == pytest.approx(float(rho), rel=1e-6)
    assert np.linalg.eigvalsh(lipsdp_matrix(small, verified, multipliers))[-1] <= 0
    assert np.linalg.eigvalsh(lipsdp_matrix(small, verified * (1 - 1e-4), multipliers))[-1] > 0


@pytest.mark.parametrize("sizes, seed", [((6, 5, 4, 2), 4), ((20, 10, 10, 10), 3), ((40, 30, 30, 1), 5)])
def test_primal_dual_float32_phase_changes_nothing_but_the_time(sizes, seed):
    # the float32 iterations only hand their iterate to the float64 ones: same optimum, a dual objective that is
    # still below it, the float64 stop met, and no more iterations than float64 alone takes
    params, mask = random_net(sizes, seed=seed, density=0.9)
    small = _unit_norm(reduce(prepare(params, mask, None)))[0]
    with jax.enable_x64(True):
        weights, inp, live = jax_inputs(small)
        runs = {single: _lipsdp_pd.solve(weights, inp, live, slopes=small.slopes, rtol=1e-8, max_steps=100,
                                          single_rtol=single) for single in (None, 1e-2)}
    (rho64, _, steps64, _, _), (rho, _, steps, below, residual) = runs[None], runs[1e-2]
    assert float(rho) == pytest.approx(float(rho64), rel=1e-8)
    assert float(below) <= float(rho) and (float(rho) - float(below)) / float(rho) < 1e-7
    assert float(residual) <= 1e-9 and int(steps) <= int(steps64)


def test_primal_dual_float64_phase_restarts_from_a_warm_point_outside():
    # a warm point outside the cone (a negative multiplier) is replaced by the start: the result is the cold one
    params, mask = random_net((6, 5, 4, 2), seed=4, density=0.9)
    small = _unit_norm(reduce(prepare(params, mask, None)))[0]
    with jax.enable_x64(True):
        weights, inp, live = jax_inputs(small)
        options = dict(slopes=small.slopes, rtol=1e-8, residual_tol=1e-9, max_steps=100)
        cold, steps, below, _ = _lipsdp_pd._iterate(weights, inp, live, **options)
        warm = (cold[0], cold[1].at[0].set(-1.0), *cold[2:])
        restarted, steps_again, below_again, _ = _lipsdp_pd._iterate(weights, inp, live, **options, warm=warm)
        continued, steps_on, _, _ = _lipsdp_pd._iterate(weights, inp, live, **options, warm=cold)
    assert float(restarted[0]) == float(cold[0]) and int(steps_again) == int(steps)
    assert float(below_again) == float(below)
    assert int(steps_on) <= 2 and float(continued[0]) == pytest.approx(float(cold[0]), rel=1e-8)  # already there


def test_primal_dual_keeps_a_nearly_constant_unit_bounded():
    params, mask = random_net((8, 32, 32, 1), seed=5, density=1.0)
    params[1]["w"] = params[1]["w"].at[:, 21].multiply(1e-11)
    params[2]["w"] = params[2]["w"].at[21].multiply(1e-5)
    net = reduce(prepare(params, mask, nets.MLP((8, 32, 32, 1))))
    (value, iterations, _), = lipsdp_primal_dual_bounds([net], (8, 32, 32))
    (barrier, _), = lipsdp_barrier_bounds([net], (8, 32, 32))
    assert value is not None and iterations < 60
    assert value == pytest.approx(barrier, rel=1e-6)


def test_auto_takes_the_primal_dual_method_only_on_large_matrices():
    from lawrob.lipschitz._lipsdp_bound import AUTO_PRIMAL_DUAL_DIM, resolved_solver

    assert resolved_solver("auto", (784, 256)) == "barrier"  # 256 + 256 rows after the input reduction
    assert resolved_solver("auto", (784, 1024, 1024, 1024)) == "primal_dual"  # 784 + 3072
    assert resolved_solver("auto", (10, AUTO_PRIMAL_DUAL_DIM - 10)) == "barrier"
    assert resolved_solver("auto", (11, AUTO_PRIMAL_DUAL_DIM - 10)) == "primal_dual"
    assert resolved_solver("auto", (5,)) == "barrier"  # no hidden layer
    assert resolved_solver("barrier", (784, 1024, 1024, 1024)) == "barrier"  # a named solver is kept
    params, mask = random_net((3, 5, 1), seed=2, density=1.0)
    assert "barrier_steps" in upper(params, mask, method="lipsdp").details
    assert "primal_dual_iterations" in upper(params, mask, method="lipsdp", solver="primal_dual").details
