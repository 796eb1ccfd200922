"""LipSDP-Neuron by a primal barrier method in JAX: batched over networks, no SDP library needed.

The problem (Fazlyab et al., NeurIPS 2019, Thm 2; ``lipsdp_matrix`` in ``_upper``) is

    minimise rho  over rho and diagonal T >= 0  subject to  M(rho, T) <= 0,

with M affine in (rho, t). Every unit's multiplier enters through a rank-2 term: with e_i the unit's own
coordinate and w_i its incoming weights placed in the block of the layer below,

    dM/dt_i = G_i K G_i^T,   G_i = [e_i, w_i],   K = [[-2, alpha + beta], [alpha + beta, -2 alpha beta]],

and dM/drho = -E_0 (the identity on the input block). The barrier method (Boyd & Vandenberghe, Convex
Optimization, Sec. 11.3) follows the central path of

    F_mu(rho, t) = rho / mu - log det(-M(rho, t)) - sum_i log t_i,

a self-concordant function, by Newton steps damped to 1 / (1 + lambda) while the Newton decrement lambda
exceeds 1/4 (Nesterov & Nemirovski: such a step stays inside the Dikin ellipsoid, hence strictly feasible),
with mu divided by ``_MU_FACTOR`` whenever the point is centred, until nu mu <= rtol rho (nu = N + H, the
barrier's parameter over the real rows and units: on the central path rho exceeds the optimum by at most
nu mu). With Y = (-M)^{-1} and Z_ij = G_i^T Y G_j, the gradient and Hessian are exact and cheap:
dF/dt_i = tr(K Z_ii) - 1/t_i, d2F/dt_i dt_j = tr(Z_ji K Z_ij K) + delta_ij / t_i^2, and likewise for rho with
E_0 (``_newton_system``). For alpha < beta, K is indefinite, so no live multiplier can grow without bound and
the central path exists; an affine activation (alpha = beta, K of rank 1) has no finite optimum and is left
to the caller (``_lipsdp_bound._linear_bound``).

The start is strictly feasible by construction (``_start``): for weights of unit spectral norm, T_k = a_k I
with a_{L-1} = 2, a_k = c a_{k+1} + 1, rho = c a_1 + 1 and c = alpha^2 + beta^2 gives M <= -I (Young's inequality
on the coupling terms). Only the multipliers leave this module: the caller proves the bound in float64
(``_lipsdp_bound._verified_rho``), so an inaccurate solve costs tightness, never soundness.

Networks are padded to a common shape with isolated units whose multiplier is frozen at 1 and inputs whose
block is a constant -1: both add a constant to F, so a padded network follows exactly its own central path.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _batching

# Measured on trained two-hidden-layer ReLU nets (N = 55-112): 50-125 Newton steps to rtol = 1e-6 with these;
# a first mu of 1e-1 rho_0 (or Boyd & Vandenberghe's least-squares choice) took about twice as many.
_MU0 = 1e-4  # first mu, relative to the start's rho
_MU_FACTOR = 10.0  # mu is divided by this once the point is centred
_CENTRED = 0.05  # lambda^2 / 2 below this counts as centred
_FULL_STEP = 0.25  # a Newton decrement below this takes the full step (quadratic convergence region)


def _pieces(weights, inp):
    """The dense blocks of M: B (N x H) holds W_k in the rows of block k - 1 and the columns of layer k."""
    d = inp.shape[0]
    widths = [w.shape[1] for w in weights[:-1]]
    sizes = [d] + widths
    row_offsets = np.concatenate([[0], np.cumsum(sizes)])
    col_offsets = np.concatenate([[0], np.cumsum(widths)])
    n, h = int(row_offsets[-1]), int(col_offsets[-1])
    b = jnp.zeros((n, h), weights[0].dtype)
    for k, w in enumerate(weights[:-1]):
        b = b.at[row_offsets[k] : row_offsets[k + 1], col_offsets[k] : col_offsets[k + 1]].set(w)
    last = jnp.zeros((n, n), weights[0].dtype)
    lo = int(row_offsets[-2])
    last = last.at[lo:, lo:].set(weights[-1] @ weights[-1].T)
    return b, last


def _matrix(rho, t, b, last, inp, k_mat):
    """M(rho, t): -rho on the real inputs (-1 on padded ones), sum_i t_i G_i K G_i^T and W_L W_L^T."""
    d = inp.shape[0]
    bt = b * t
    m = k_mat[1, 1] * bt @ b.T + last
    m = m.at[d:, :].add(k_mat[0, 1] * bt.T).at[:, d:].add(k_mat[0, 1] * bt)
    m = m.at[d:, d:].add(jnp.diag(k_mat[0, 0] * t))
    return m.at[:d, :d].add(jnp.diag(-(rho * inp + (1.0 - inp))))


def _newton_system(rho, t, mu, b, last, inp, live, k_mat):
    """Gradient and Hessian of F_mu at (rho, t) over [rho, t] (frozen units: zero gradient, identity rows)."""
    d = inp.shape[0]
    x = -_matrix(rho, t, b, last, inp, k_mat)
    y = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(x, lower=True), jnp.eye(x.shape[0], dtype=x.dtype))
    yb = y @ b
    z = jnp.stack([jnp.stack([y[d:, d:], yb[d:]]), jnp.stack([yb[d:].T, b.T @ yb])])  # z[a, c, i, j]
    p = jnp.stack([inp[:, None] * y[:d, d:], inp[:, None] * yb[:d]])  # E_0 Y G: p[a, r, i]
    inv_t = live / t
    grad_t = jnp.einsum("ac,caii->i", k_mat, z) - inv_t
    hess_t = jnp.einsum("acji,ce,efij,fa->ij", z, k_mat, z, k_mat)
    hess_t = hess_t + jnp.diag(inv_t**2)
    grad_rho = 1.0 / mu - jnp.sum(inp * jnp.diag(y)[:d])
    hess_rho = jnp.sum(jnp.outer(inp, inp) * y[:d, :d] ** 2)
    hess_cross = -jnp.einsum("ac,ari,cri->i", k_mat, p, p)
    keep = live.astype(bool)
    grad = jnp.concatenate([grad_rho[None], jnp.where(keep, grad_t, 0.0)])
    both = keep[:, None] & keep[None, :]
    hess_t = jnp.where(both, hess_t, 0.0) + jnp.diag(jnp.where(keep, 0.0, 1.0))
    hess = jnp.block([[hess_rho[None, None], jnp.where(keep, hess_cross, 0.0)[None, :]],
                      [jnp.where(keep, hess_cross, 0.0)[:, None], hess_t]])
    return grad, hess


def _start(weights, live, slopes):
    """A strictly feasible (rho, t) with M <= -I for weights of unit spectral norm (see the module docstring)."""
    alpha, beta = slopes
    c = alpha**2 + beta**2
    a = [2.0]
    for _ in range(len(weights) - 2):
        a.insert(0, c * a[0] + 1.0)
    t = jnp.concatenate([jnp.where(lv, ak, 1.0) for lv, ak in zip(live, a)])
    return c * a[0] + 1.0, t


def solve(weights, inp, live, *, slopes, rtol, max_steps):
    """Barrier-method multipliers for one padded network (``solve_batch`` maps it over a batch).

    ``weights``: the padded masked weights [fan_in, fan_out] scaled to unit spectral norm; ``inp``: 1.0 on real
    inputs, 0.0 on padding; ``live``: per hidden layer, 1.0 on real units, 0.0 on padding. Returns
    (rho, t, steps): the last iterate and the Newton steps taken.
    """
    alpha, beta = slopes
    k_mat = jnp.array([[-2.0, alpha + beta], [alpha + beta, -2.0 * alpha * beta]], weights[0].dtype)
    b, last = _pieces(weights, inp)
    live_t = jnp.concatenate(live)
    nu = jnp.sum(inp) + 2 * jnp.sum(live_t)  # real rows of M plus real multipliers
    rho0, t0 = _start(weights, live, slopes)
    mu0 = _MU0 * rho0

    def body(state):
        rho, t, mu, steps, _ = state
        grad, hess = _newton_system(rho, t, mu, b, last, inp, live_t, k_mat)
        step = -jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(hess, lower=True), grad)
        lam = jnp.sqrt(jnp.maximum(-grad @ step, 0.0))
        size = jnp.where(lam <= _FULL_STEP, 1.0, 1.0 / (1.0 + lam))
        broken = ~jnp.isfinite(lam)  # rounding broke a factorisation: keep the last (feasible) iterate and stop
        size = jnp.where(broken, 0.0, size)
        step = jnp.where(broken, 0.0, step)
        rho, t = rho + size * step[0], jnp.where(live_t > 0, t + size * step[1:], 1.0)
        centred = lam**2 / 2 <= _CENTRED
        done = broken | (centred & (nu * mu <= rtol * jnp.abs(rho)))
        mu = jnp.where(centred & ~done, mu / _MU_FACTOR, mu)
        return rho, t, mu, steps + 1, done

    def cond(state):
        return (~state[4]) & (state[3] < max_steps)

    state = (jnp.asarray(rho0, weights[0].dtype), t0, jnp.asarray(mu0, weights[0].dtype), 0, False)
    rho, t, _, steps, _ = jax.lax.while_loop(cond, body, state)
    return rho, t, steps


@functools.partial(jax.jit, static_argnames=("slopes", "chunk", "rtol", "max_steps"))
def solve_batch(weights, inp, live, *, slopes, chunk: int, rtol: float, max_steps: int):
    """``solve`` over a leading network axis: ``jax.lax.map`` over chunks of ``chunk`` networks, ``vmap`` within.

    A vmapped while loop runs until every network of its chunk is done, so small chunks waste fewer steps."""
    return _batching.map_chunked(lambda x: solve(*x, slopes=slopes, rtol=rtol, max_steps=max_steps),
                                 (weights, inp, live), chunk=chunk, whole_chunks=True)
