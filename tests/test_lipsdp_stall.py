"""Tests of the primal-dual LipSDP solver's stall rule and of the certificate's blend with the feasible start.

A module of its own: ``conftest`` drops JAX's compiled programs after each module, and test_lipsdp.py with these
two tests in it compiled enough programs to crash a pytest-xdist worker inside XLA's compiler (its known failure
of too many memory mappings), at a later test that passes alone.
"""

import jax
import numpy as np
import pytest
from test_lipschitz import random_net
from test_lipsdp import jax_inputs, split, unit_norm_net

from lawrob.lipschitz import _lipsdp, _lipsdp_pd, prepare, reduce
from lawrob.lipschitz._lipsdp_bound import _certified, _unit_norm, _verified_rho, lipsdp_matrix
from lawrob.lipschitz._network import Net


def test_primal_dual_stall_rule_counts_short_steps_in_a_row(monkeypatch):
    # ``stall`` = (length, count) ends the iterations after count steps in a row shorter than length: every
    # step is at most 1, so (1.01, k) stops after exactly k; a float32 phase ended that way, far from its gap
    # target, hands its iterate to the float64 phase, which still reaches the float64 optimum and stop
    params, mask = random_net((20, 10, 10, 10), seed=3, density=0.9)
    small = _unit_norm(reduce(prepare(params, mask, None)))[0]
    with jax.enable_x64(True):
        weights, inp, live = jax_inputs(small)
        options = dict(slopes=small.slopes, rtol=1e-12, residual_tol=0.0, max_steps=50)
        counts = [int(_lipsdp_pd._iterate(weights, inp, live, **options, stall=(1.01, k))[1]) for k in (1, 3)]
        alone = _lipsdp_pd.solve(weights, inp, live, slopes=small.slopes, rtol=1e-8, max_steps=100, single_rtol=None)
        monkeypatch.setattr(_lipsdp_pd, "_SINGLE_STALL", (1.01, 4))
        rho, _, steps, below, residual = _lipsdp_pd.solve(weights, inp, live, slopes=small.slopes, rtol=1e-8,
                                                          max_steps=100)
    assert counts == [1, 3]
    assert float(rho) == pytest.approx(float(alone[0]), rel=1e-8)
    assert float(below) <= float(rho) and float(residual) <= 1e-9
    assert int(steps) <= 4 + int(alone[2]) + 2


def test_multipliers_on_the_boundary_verify_once_the_start_is_mixed_in():
    # a hidden unit without outgoing weights: its multiplier's optimum is 0, where -M(rho, T) has a zero row and
    # no rho can be proved in float64; mixing in 1e-8 of the feasible start proves a bound within 1e-6 of LipSDP
    net = unit_norm_net((6, 5, 4, 1), seed=4)
    weights = list(net.weights)
    weights[1] = weights[1].copy()
    weights[1][2] = 0.0
    net = Net(tuple(weights), net.biases, net.activation)
    with jax.enable_x64(True):
        rho, t, _, below, _ = _lipsdp_pd.solve(*jax_inputs(net), slopes=net.slopes, rtol=1e-8, max_steps=100)
    t = np.asarray(t).copy()
    assert t[2] < 1e-6 * np.median(t)  # the solver drives it towards 0
    t[2] = 0.0
    assert _verified_rho(net, split(t, net.widths)) is None
    value = _certified(net, 1.0, t)
    assert value is not None and float(below) <= value**2 <= float(rho) * (1 + 1e-6)
    rho0, t0 = _lipsdp._start(weights, [np.ones(w) for w in net.widths], net.slopes)
    assert np.all(np.linalg.eigvalsh(lipsdp_matrix(net, rho0, split(t0, net.widths))) <= -1 + 1e-9)  # M <= -I
