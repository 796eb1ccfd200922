"""LipSDP-Neuron by a barrier method on the block-tridiagonal matrix: the solver ``_upper`` uses at every size.

Same problem, barrier and start as ``_lipsdp`` (whose docstring has the math; its dense ``solve`` is kept as the
reference), written in X = -M(rho, t), which is block tridiagonal over the blocks of the input and of each
hidden layer (with V_k = W_k^T, a = alpha, b = beta):

    X_00 = rho I + 2ab W_1 T_1 W_1^T,   X_kk = 2 T_k + 2ab W_{k+1} T_{k+1} W_{k+1}^T (+ -W_L W_L^T for the last),
    X_k,k-1 = -(a + b) T_k W_k^T.

Three changes make it scale (measured in benchmarks/RESULTS.md, "LipSDP at scale"):

- Structure. X is factored block by block (X = L L^T with L block bidiagonal: L_kk L_kk^T = S_k, the Schur
  complements S_k = X_kk - X_k,k-1 S_{k-1}^{-1} X_k-1,k), and Y = X^{-1} is built by the backward recursion
  Y_k+1,k = Y_k+1,k+1 Phi_k, Y_kk = S_k^{-1} + Phi_k^T Y_k+1,k, Y_jk = Y_j,k+1 Phi_k (j > k + 1), with
  Phi_k = -X_k+1,k S_k^{-1}; the products Z = G^T Y G of the Newton system (``_lipsdp``) then only touch the
  nonzero blocks W_k of G. About 3 L n^3 + L^2 n^3 flops for L blocks of size n, against 2.3 N^3 for the dense
  inverse of the N x N matrix (N = L n).
- The caller eliminates the inputs beyond the first layer's width (``_lipsdp_bound._reduced``): with W_1 = Q R, the
  input block only sees x Q, so the problem on R (a network with min(d, n_1) inputs) has the same optimum.
- Steps. rho is minimised out exactly: Newton's method runs on F~_mu(t) = min_rho F_mu(rho, t)
  (``_reduced_barrier``: one eigenvalue decomposition of the inputs' Schur complement, then a scalar root),
  with a backtracking line search (Armijo; every trial point proved strictly feasible by its factorisation)
  instead of the damped step 1 / (1 + lambda), and mu divided by ``_MU_FACTOR`` = 20 once centred. On the
  784-256-10 MLP: 44 Newton steps against 134 before. The joint Newton step on (rho, t) with the same line
  search took 189: it stalls with one eigenvalue of X far below the others (1e-8 against 1e-5, mostly in the
  input block) that it lifts by a few percent a step; minimising over rho removes that at once.

Only the multipliers leave this module; the caller verifies them in float64 (``_lipsdp_bound._verified_rho``).
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp

from lawrob import _batching
from lawrob.lipschitz._lipsdp import _start

_MU0 = 1e-4  # first mu, relative to the start's rho (as in ``_lipsdp``)
_MU_FACTOR = 20.0  # mu is divided by this once the point is centred
_CENTRED = 0.05  # lambda^2 / 2 below this counts as centred
_ARMIJO = 0.01  # sufficient decrease: F(x + s dx) <= F(x) + _ARMIJO s grad.dx
_BACKTRACK = 0.5  # the step shrinks by this factor until the trial point is accepted
_MAX_TRIALS = 30  # trial points per line search (0.5^30: the step is then 0 and the solve stops)
_FULL_STEP = 0.25  # a Newton decrement below this takes the full step if feasible (quadratic convergence)
_BOUNDARY = 0.99  # a step stops at this fraction of the distance to t = 0 (or to the cap)
_T_CAP = 1e4  # every multiplier stays below this times the start's rho (see ``solve``)


def _diag_blocks(rho, ts, weights, inp, slopes):
    """The diagonal blocks X_kk and the subdiagonal blocks X_k,k-1 (k = 1, ..., L-1)."""
    alpha, beta = slopes
    ab, apb = 2.0 * alpha * beta, alpha + beta
    depth = len(weights)
    diag = [jnp.diag(rho * inp + (1.0 - inp))]
    for k in range(1, depth):
        diag.append(jnp.diag(2.0 * ts[k - 1]))
    if ab != 0.0:
        for k in range(depth - 1):  # unit j of layer k + 1 puts 2ab t_j w_j w_j^T into block k
            w = weights[k]
            diag[k] = diag[k] + ab * (w * ts[k]) @ w.T
    last = weights[-1]
    diag[-1] = diag[-1] - last @ last.T
    sub = [-apb * ts[k - 1][:, None] * weights[k - 1].T for k in range(1, depth)]
    return diag, sub


def _factor(diag, sub):
    """Block Cholesky X = L L^T: the factors L_kk of the Schur complements S_k and L_k,k-1 = X_k,k-1 L_k-1^-T."""
    chol = [jnp.linalg.cholesky(diag[0])]
    off = []
    for k in range(1, len(diag)):
        o = jax.scipy.linalg.solve_triangular(chol[-1], sub[k - 1].T, lower=True).T
        off.append(o)
        chol.append(jnp.linalg.cholesky(diag[k] - o @ o.T))
    return chol, off


def _logdet(chol):
    return sum(2.0 * jnp.sum(jnp.log(jnp.diagonal(c))) for c in chol)


def _inverse(chol, sub):
    """All blocks Y[p][q] (p >= q) of Y = X^{-1} by the backward recursion of the module docstring."""
    depth = len(chol)
    eye = [jnp.eye(c.shape[0], dtype=c.dtype) for c in chol]
    y = [[None] * depth for _ in range(depth)]
    y[-1][-1] = jax.scipy.linalg.cho_solve((chol[-1], True), eye[-1])
    for k in range(depth - 2, -1, -1):
        phi = -jax.scipy.linalg.cho_solve((chol[k], True), sub[k].T).T  # -X_k+1,k S_k^{-1}: n_k+1 x n_k
        for j in range(k + 1, depth):
            y[j][k] = y[j][k + 1] @ phi if j > k + 1 else y[k + 1][k + 1] @ phi
        y[k][k] = jax.scipy.linalg.cho_solve((chol[k], True), eye[k]) + phi.T @ y[k + 1][k]
    return y


def _block(y, p, q):
    return y[p][q] if p >= q else y[q][p].T


def _newton_system(rho, ts, mu, weights, inp, live, slopes, cap):
    """Gradient and Hessian of F_mu over [rho, t] (frozen units: zero gradient, identity rows), and F_mu."""
    alpha, beta = slopes
    kmat = ((2.0, -(alpha + beta)), (-(alpha + beta), 2.0 * alpha * beta))  # dX/dt_i = G_i kmat G_i^T
    diag, sub = _diag_blocks(rho, ts, weights, inp, slopes)
    chol, off = _factor(diag, sub)
    depth = len(diag)
    y = _inverse(chol, sub)
    hidden = range(1, depth)
    # YW[p][l] = Y_p,l-1 W_l: Y times the w-columns of layer l, for every row block p
    yw = {(p, l): _block(y, p, l - 1) @ weights[l - 1] for p in range(depth) for l in hidden}
    z_ee = jnp.block([[_block(y, k, l) for l in hidden] for k in hidden])
    z_ew = jnp.block([[yw[k, l] for l in hidden] for k in hidden])
    z_ww = jnp.block([[weights[k - 1].T @ yw[k - 1, l] for l in hidden] for k in hidden])
    z = ((z_ee, z_ew), (z_ew.T, z_ww))  # z[a][c][i, j] = g_a(i)^T Y g_c(j), g_0 = e, g_1 = w
    t = jnp.concatenate(ts)
    inv_t, inv_room = live / t, live / (cap - t)
    grad_t = -sum(kmat[a][c] * jnp.diagonal(z[a][c]) for a in range(2) for c in range(2)) - inv_t + inv_room
    hess_t = jnp.diag(inv_t**2 + inv_room**2) + _pair_products(kmat, z, z)  # H_ij = tr(Y A_i Y A_j)
    p = (jnp.concatenate([inp[:, None] * _block(y, 0, k) for k in hidden], axis=1),
         jnp.concatenate([inp[:, None] * yw[0, k] for k in hidden], axis=1))  # p[a][r, i] = (E_0 Y g_a(i))_r
    hess_cross = sum(kmat[a][c] * jnp.sum(p[a] * p[c], axis=0) for a in range(2) for c in range(2))
    grad_rho = 1.0 / mu - jnp.sum(inp * jnp.diagonal(y[0][0]))
    hess_rho = jnp.sum(jnp.outer(inp, inp) * y[0][0] ** 2)
    keep = live.astype(bool)
    grad = jnp.concatenate([grad_rho[None], jnp.where(keep, grad_t, 0.0)])
    both = keep[:, None] & keep[None, :]
    hess_t = jnp.where(both, hess_t, 0.0) + jnp.diag(jnp.where(keep, 0.0, 1.0))
    cross = jnp.where(keep, hess_cross, 0.0)
    hess = jnp.block([[hess_rho[None, None], cross[None, :]], [cross[:, None], hess_t]])
    value = rho / mu - _logdet(chol) - _multiplier_barrier(t, live, cap)
    return grad, hess, value


def _pair_products(kmat, left, right):
    """tr(A_i L A_j R) for all units i, j (A_i = G_i K G_i^T): sum over c, a, e, f of K_ce K_af left[c][a]
    right[e][f], elementwise, where left[a][c] = g_a^T L g_c over the units (g_0 = e, g_1 = w) and likewise right
    for R (symmetric L and R)."""
    total = 0.0
    for c, a, e, f in itertools.product(range(2), repeat=4):
        coefficient = kmat[c][e] * kmat[a][f]
        if coefficient != 0.0:
            total = total + coefficient * left[c][a] * right[e][f]
    return total


def _multiplier_barrier(t, live, cap):
    """sum over live units of log t_i + log(cap - t_i) (the padded units' t are kept at 1 and left out)."""
    inside = jnp.where(live > 0, t, 1.0)
    return jnp.sum(live * (jnp.log(inside) + jnp.log(jnp.where(live > 0, cap - inside, 1.0))))


def _multipliers_inside(t, live, cap):
    return jnp.all(((t > 0) & (t < cap)) | (live == 0))


def _reduced_barrier(ts, mu, weights, inp, live, slopes, cap):
    """F~_mu(t) = min over rho of F_mu(rho, t), and the minimiser rho; (+inf, 0) where X_hh(t) is not positive
    definite or a live t_i is outside (0, cap).

    The hidden blocks are eliminated from the last layer up (U_k = X_kk - X_k,k+1 U_k+1^-1 X_k+1,k), which leaves
    X's Schur complement on the inputs, rho I - Sigma(t) on the real inputs (Sigma = X_01 U_1^-1 X_10 - 2ab W_1 T_1
    W_1^T) and I on the padded ones. With sigma_j the eigenvalues of Sigma, F_mu = rho / mu - log det X_hh -
    sum_j log(rho - sigma_j) - sum_i [log t_i + log(cap - t_i)], and rho solves sum_j 1 / (rho - sigma_j) = 1 / mu (a convex
    decreasing function of rho: Newton's method from rho = sigma_max + mu increases monotonically to the root).
    """
    diag, sub = _diag_blocks(0.0, ts, weights, inp, slopes)
    depth = len(diag)
    u = diag[-1]
    logdet = 0.0
    for k in range(depth - 2, -1, -1):
        chol = jnp.linalg.cholesky(u)
        logdet = logdet + 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
        v = jax.scipy.linalg.solve_triangular(chol, sub[k], lower=True)
        u = diag[k] - v.T @ v  # k = 0: X_00(rho = 0) - X_01 U_1^-1 X_10 = diag(1 - inp) - Sigma
    pad = 1.0 - inp
    sigma_mat = jnp.diag(pad) - u
    sigma_mat = (sigma_mat + sigma_mat.T) / 2
    big = 2.0 * (jnp.sqrt(jnp.sum(sigma_mat**2)) + 1.0)  # padded inputs' eigenvalues -big: below every real one
    sigma = jnp.linalg.eigvalsh(sigma_mat - big * jnp.diag(pad))
    real = jnp.arange(sigma.shape[0]) >= jnp.sum(pad)
    top = sigma[-1]

    def newton(r_state):
        r, _, i = r_state
        gap = jnp.where(real, r - sigma, 1.0)
        g = jnp.sum(jnp.where(real, 1.0 / gap, 0.0)) - 1.0 / mu
        gp = -jnp.sum(jnp.where(real, 1.0 / gap**2, 0.0))
        new = r - g / gp
        return new, jnp.abs(new - r) <= 1e-15 * jnp.abs(new), i + 1

    rho, _, _ = jax.lax.while_loop(lambda r_state: (~r_state[1]) & (r_state[2] < 200), newton,
                                   (top + mu, False, 0))
    t = jnp.concatenate(ts)
    gap = jnp.where(real, rho - sigma, 1.0)
    value = (rho / mu - logdet - jnp.sum(jnp.where(real, jnp.log(gap), 0.0))
             - _multiplier_barrier(t, live, cap))
    ok = jnp.isfinite(value) & _multipliers_inside(t, live, cap) & jnp.all(gap > 0)
    return jnp.where(ok, value, jnp.inf), jnp.where(ok, rho, 0.0)


def solve(weights, inp, live, *, slopes, rtol, max_steps):
    """Barrier-method multipliers for one padded network; arguments and result as ``_lipsdp.solve``.

    ``weights``: padded masked weights [fan_in, fan_out] of unit spectral norm; ``inp``: 1.0 on real inputs,
    0.0 on padding; ``live``: per hidden layer, 1.0 on real units, 0.0 on padding. Returns (rho, t, steps).
    Newton's method on F~_mu(t) = min_rho F_mu(rho, t) (``_reduced_barrier``; self-concordant as a partial
    minimum of one): its gradient is dF/dt and its Hessian the Schur complement of d2F/drho2 in F's Hessian,
    both at the minimising rho.

    Every multiplier is kept below cap = ``_T_CAP`` x the start's rho by a second barrier -log(cap - t_i): a
    restriction of the feasible set, so the bound stays sound. Without it a unit whose incoming weights are
    nearly zero (1e-11 after Lipschitz-constrained training, say) lets its t_i run off to 1e14 and more, where
    X's float64 rounding error exceeds its smallest eigenvalue and no certificate verifies. Measured on such a
    network (tests/test_lipsdp.py), against Clarabel's verified optimum: cap 1e4 x rho_0 within 4e-7, 1e6 within
    5e-5, 1e9 within 5e-3, 1e12 no certificate (large multipliers cost X's precision long before they fail).
    """
    widths = [lv.shape[0] for lv in live]
    splits = [sum(widths[: k + 1]) for k in range(len(widths) - 1)]
    live_t = jnp.concatenate(live)
    nu = jnp.sum(inp) + 3 * jnp.sum(live_t)  # real rows of X plus two barriers per real multiplier
    rho0, t0 = _start(weights, live, slopes)
    dtype = weights[0].dtype
    cap = jnp.asarray(_T_CAP * rho0, dtype)

    def reduced(t, mu):
        return _reduced_barrier(jnp.split(t, splits), mu, weights, inp, live_t, slopes, cap)

    def body(state):
        t, rho, value, mu, steps, _ = state
        grad, hess, _ = _newton_system(rho, jnp.split(t, splits), mu, weights, inp, live_t, slopes, cap)
        hess_t = hess[1:, 1:] - jnp.outer(hess[1:, 0], hess[0, 1:]) / hess[0, 0]
        step = -jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(hess_t, lower=True), grad[1:])
        step = jnp.where(live_t > 0, step, 0.0)
        slope = grad[1:] @ step
        lam = jnp.sqrt(jnp.maximum(-slope, 0.0))
        shrinking, growing = (step < 0) & (live_t > 0), (step > 0) & (live_t > 0)
        room = jnp.minimum(jnp.min(jnp.where(shrinking, -t / jnp.where(shrinking, step, -1.0), jnp.inf)),
                           jnp.min(jnp.where(growing, (cap - t) / jnp.where(growing, step, 1.0), jnp.inf)))
        first = jnp.minimum(1.0, _BOUNDARY * room)

        def trial_cond(s_state):
            return (~s_state[4]) & (s_state[3] < _MAX_TRIALS)

        def trial_body(s_state):
            size, _, _, trials, _ = s_state
            new, new_rho = reduced(t + size * step, mu)
            accepted = (new <= value + _ARMIJO * size * slope) | ((lam <= _FULL_STEP) & jnp.isfinite(new))
            return jnp.where(accepted, size, size * _BACKTRACK), new, new_rho, trials + 1, accepted

        size, new, new_rho, _, accepted = jax.lax.while_loop(
            trial_cond, trial_body, (first, value, rho, 0, jnp.asarray(False)))
        broken = ~jnp.isfinite(lam) | ~accepted  # no acceptable step: keep the last (feasible) iterate, stop
        t = jnp.where(broken, t, t + size * step)
        rho, value = jnp.where(broken, rho, new_rho), jnp.where(broken, value, new)
        centred = lam**2 / 2 <= _CENTRED
        done = broken | (centred & (nu * mu <= rtol * jnp.abs(rho)))
        lower = centred & ~done
        mu = jnp.where(lower, mu / _MU_FACTOR, mu)
        value, rho = jax.lax.cond(lower, lambda: reduced(t, mu), lambda: (value, rho))
        return t, rho, value, mu, steps + 1, done

    def cond(state):
        return (~state[5]) & (state[4] < max_steps)

    mu0 = jnp.asarray(_MU0 * rho0, dtype)
    t0 = t0.astype(dtype)
    value0, rho0 = reduced(t0, mu0)
    state = (t0, rho0, value0, mu0, 0, jnp.asarray(False))
    t, rho, _, _, steps, _ = jax.lax.while_loop(cond, body, state)
    return rho, t, steps


@functools.partial(jax.jit, static_argnames=("slopes", "chunk", "rtol", "max_steps"))
def solve_batch(weights, inp, live, *, slopes, chunk: int, rtol: float, max_steps: int):
    """``solve`` over a leading network axis through ``_batching.map_chunked`` (chunks of ``chunk``, a vmap each)."""
    return _batching.map_chunked(lambda x: solve(*x, slopes=slopes, rtol=rtol, max_steps=max_steps),
                                 (weights, inp, live), chunk=chunk, whole_chunks=True)
