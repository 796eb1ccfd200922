"""LipSDP-Neuron by a primal-dual interior-point method (HKM direction, Mehrotra's predictor-corrector).

Same problem, start and multiplier cap as ``_lipsdp_blocks`` (its docstring and ``_lipsdp``'s have the math),
written as the conic program over y = (rho, t):

    (D)  minimise rho  subject to  X(y) = C + rho E + sum_i t_i A_i >= 0,  0 <= t_i <= cap,

with E the identity on the real inputs and A_i = G_i K G_i^T (G_i = [e_i, w_i], K = [[2, -(a+b)], [-(a+b),
2ab]]), and its dual

    (P)  maximise -<C, P> - cap sum_i v_i  subject to  <E, P> = 1,  <A_i, P> + z_i - v_i = 0,  P >= 0, z, v >= 0.

Every iterate keeps X(y) strictly positive definite (the start is the barrier's, X >= I) and the bounds on t
strict, so y stays feasible; P, z and v reach feasibility on the way. The HKM direction (Helmberg, Rendl,
Vanderbei & Wolkowicz 1996; Kojima, Shindoh & Hara 1997; Monteiro 1997) with Y = X^{-1} solves

    (S + D) dy = sigma mu g - e_rho - h,   S_jk = tr(F_j P F_k Y),   D = diag(z / t + v / s),

with F = (E, A_1, ...), s = cap - t, g = (<E, Y>, <A_i, Y> + 1 / t_i - 1 / s_i) (the barrier's gradient
without rho / mu), and then dX = sum_j dy_j F_j, dP = sigma mu Y - P - sym(P dX Y) - sym(dP_a dX_a Y),
dz = (sigma mu - dz_a dt_a) / t - z - z dt / t and likewise for v. Mehrotra's predictor (sigma = 0, h = 0)
gives the affine step (dy_a, dP_a, ...) and sigma = (mu_a / mu)^3; the corrector adds h_j = tr(F_j dP_a dX_a Y)
and the second-order terms of the bounds (Mehrotra, SIAM J. Optim. 2, 1992; Todd, Toh & Tutuncu 1998 for SDP).
When P = mu Y the Schur matrix S is mu times the barrier's Hessian: the barrier method's Newton system with a
primal estimate in place of mu Y, which is what lets the step follow the central path in 20-40 iterations where
the barrier method needs 40-90 Newton steps and twice as many line-search trials (benchmarks/RESULTS.md).

The products never form G: P G and Y G go layer by layer through the blocks W_k (``_times_b``), and dX, which is
block tridiagonal like X, multiplies dense matrices block by block (``_times_tridiagonal``). Step lengths to the
boundary of the cone come from a Lanczos estimate of the extreme eigenvalue of L^{-1} dQ L^{-T} (Q = L L^T),
checked by a Cholesky factorisation at the chosen step (and shortened until it succeeds), so every iterate is
inside the cone in floating point; the primal and the dual side take one common step (separate ones left the
iterates off-centre, and 784-256-10 took 71 iterations instead of 12). The stop: relative gap
(<P, X> + t z + s v) / rho below ``rtol`` and the primal residual below ``_RESIDUAL``; or, once the gap is below
``_NEAR``, a primal residual that grows again (rounding has taken over: the last primal estimate is kept); or no
progress. A float64 solve first iterates in float32 to a relative gap of ``_SINGLE_RTOL`` (1e-2), or until three
steps in a row are shorter than 0.05 (``_SINGLE_STALL``: float32 rounding has taken over; on a trained
256-1024-1024-1024-1 network the float32 steps fell from 0.7 to 1e-2-1e-4 at a gap of 1.4e-2, each retrying its
Cholesky check, and used up the step budget, while healthy solves have single short steps between long ones),
then goes on in float64 from that point: the same iterations and values (to 1e-12 on the networks measured),
each float32 one at about half the cost of a float64 one on the CPU (benchmarks/RESULTS.md). With a float32 stop
at 1e-3 the float64 phase ended at a primal residual of 4e-9 on a test network, its dual objective above rho.
Only the multipliers t leave this module; the caller proves the bound in float64 (``_lipsdp_bound._certified``),
so an inaccurate solve costs tightness, never soundness.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _batching
from lawrob.lipschitz._lipsdp import _start
from lawrob.lipschitz._lipsdp_blocks import _T_CAP, _block, _diag_blocks, _factor, _inverse, _pair_products

_TO_BOUNDARY = 0.98  # a step goes this fraction of the way to the boundary of the cone (and of the bounds)
_LANCZOS = (6, 12)  # Lanczos steps for the step length: predictor (it only sets sigma), corrector
_SHORTEN = 0.8  # a step whose Cholesky check fails is shortened by this factor (at most _RETRIES times)
_RETRIES = 30
_RESIDUAL = 1e-9  # the largest primal residual at the stop
_NEAR = 1e-7  # below this relative gap a growing primal residual ends the solve (rounding has taken over)
_SINGLE_RTOL = 1e-2  # the float32 iterations of a float64 solve stop at this relative gap
_SINGLE_STALL = (0.05, 3)  # or after this many steps in a row shorter than this (float32 rounding has taken over)


class _Layout:
    """The static block layout of one padded network: block offsets of X and the columns of each layer."""

    def __init__(self, weights):
        self.sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights[:-1]]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).tolist()
        self.n = self.offsets[-1]
        self.hidden = self.offsets[1]  # the hidden units' rows are [hidden, n)

    def rows(self, k):
        return slice(self.offsets[k], self.offsets[k + 1])


def _dense(diag, sub):
    """The symmetric block-tridiagonal matrix with these diagonal and subdiagonal (X_k+1,k = sub[k]) blocks."""
    depth = len(diag)

    def block(p, q):
        if p == q:
            return diag[p]
        if p == q + 1:
            return sub[q]
        if q == p + 1:
            return sub[p].T
        return jnp.zeros((diag[p].shape[0], diag[q].shape[0]), diag[0].dtype)

    return jnp.block([[block(p, q) for q in range(depth)] for p in range(depth)])


def _factor_inverse(diag, sub):
    """X's dense lower Cholesky factor and Y = X^{-1}, both from the block factorisation."""
    chol, off = _factor(diag, sub)
    depth = len(chol)
    y = _inverse(chol, sub)
    lower = jnp.tril(_dense(chol, off))  # _dense mirrors the off blocks above the diagonal: drop them
    inverse = jnp.block([[_block(y, p, q) for q in range(depth)] for p in range(depth)])
    return lower, (inverse + inverse.T) / 2


def _times_b(q, weights, layout):
    """q B for a dense q (rows x n): B holds W_k in the rows of block k - 1 and the columns of layer k."""
    return jnp.concatenate([q[:, layout.rows(k - 1)] @ weights[k - 1] for k in range(1, len(layout.sizes))], axis=1)


def _times_tridiagonal(q, diag, sub, layout):
    """q T for a dense q (rows x n) and the symmetric block-tridiagonal T (blocks as ``_dense``)."""
    depth = len(diag)
    out = []
    for j in range(depth):
        col = q[:, layout.rows(j)] @ diag[j]
        if j + 1 < depth:
            col = col + q[:, layout.rows(j + 1)] @ sub[j]
        if j > 0:
            col = col + q[:, layout.rows(j - 1)] @ sub[j - 1].T
        out.append(col)
    return jnp.concatenate(out, axis=1)


def _products(q, weights, layout):
    """(q B, B^T q B) for a dense q: the products behind ``_projections``."""
    qb = _times_b(q, weights, layout)  # n x H: q w_i
    return qb, jnp.concatenate([weights[k - 1].T @ qb[layout.rows(k - 1)] for k in range(1, len(layout.sizes))],
                               axis=0)


def _projections(q, weights, layout, inp, products=None):
    """For a symmetric q: z[a][c] = g_a^T q g_c over the hidden units (g_0 = e, g_1 = w) and the input rows of
    q g_a (weighted by ``inp``), the pieces of <F_j, q> and of the Schur matrix (``products``: q's
    ``_products``, when already computed)."""
    qb, ww = _products(q, weights, layout) if products is None else products
    h = layout.hidden
    z = ((q[h:, h:], qb[h:]), (qb[h:].T, ww))
    on_inputs = (inp[:, None] * q[:h, h:], inp[:, None] * qb[:h])
    return z, on_inputs


def _inner_products(q, weights, layout, inp, kmat, z=None):
    """<F_j, q> for j = rho, t_1, ...: (<E, q>, sum_ac K_ac g_a(i)^T q g_c(i)) for a symmetric q (``z``: its
    ``_projections``, when already computed)."""
    z = _projections(q, weights, layout, inp)[0] if z is None else z
    on_t = sum(kmat[a][c] * jnp.diagonal(z[a][c]) for a in range(2) for c in range(2))
    return jnp.concatenate([jnp.sum(inp * jnp.diagonal(q)[: layout.hidden])[None], on_t])


def _schur(p, y, weights, layout, inp, kmat, p_products):
    """S_jk = tr(F_j P F_k Y) over (rho, t), and <F_j, Y> (``p_products``: P's ``_products``)."""
    zp, pin = _projections(p, weights, layout, inp, p_products)
    zy, yin = _projections(y, weights, layout, inp)
    tt = _pair_products(kmat, zp, zy)
    cross = sum(kmat[a][b] * jnp.sum(pin[a] * yin[b], axis=0) for a in range(2) for b in range(2))
    h = layout.hidden
    corner = jnp.sum(p[:h, :h] * y[:h, :h] * jnp.outer(inp, inp))
    schur = jnp.block([[corner[None, None], cross[None, :]], [cross[:, None], tt]])
    return (schur + schur.T) / 2, _inner_products(y, weights, layout, inp, kmat, zy)


def _largest_eigenvalue(op, size, dtype, steps):
    """A Lanczos estimate (from below) of the largest eigenvalue of the symmetric operator ``op``: ``steps``
    steps with full reorthogonalisation from a fixed start."""
    steps = min(steps, size)
    start = jnp.cos(jnp.arange(size, dtype=dtype) * 1.618033988749895 + 0.5)
    basis = jnp.zeros((steps + 1, size), dtype).at[0].set(start / jnp.linalg.norm(start))

    def body(j, state):
        basis, alphas, betas = state
        w = op(basis[j])
        alpha = w @ basis[j]
        for _ in range(2):
            w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        fine = beta > 1e-12 * (jnp.abs(alpha) + 1.0)
        basis = basis.at[j + 1].set(jnp.where(fine, w / jnp.where(fine, beta, 1.0), 0.0))
        return basis, alphas.at[j].set(alpha), betas.at[j].set(jnp.where(fine, beta, 0.0))

    state = (basis, jnp.zeros(steps, dtype), jnp.zeros(steps, dtype))
    for j in range(steps):  # unrolled: a while loop's per-step overhead on the CPU exceeded these small products
        state = body(j, state)
    _, alphas, betas = state
    tridiagonal = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    return jnp.linalg.eigvalsh(tridiagonal)[-1]


def _max_step(lower, change, steps):
    """The largest a with Q + a dQ >= 0 (estimate), Q = L L^T with L = ``lower``: 1 / lambda_max(-L^{-1} dQ L^{-T}),
    inf when that is <= 0. Each Lanczos step solves with L and L^T (two vector solves cost what two products
    with an explicit L^{-1} would, and forming L^{-1} cost a sixth of an iteration at N = 1536)."""
    def op(v):
        inner = jax.scipy.linalg.solve_triangular(lower, v, lower=True, trans=1)
        return -jax.scipy.linalg.solve_triangular(lower, change @ inner, lower=True)

    top = _largest_eigenvalue(op, lower.shape[0], lower.dtype, steps)
    return jnp.where(top > 0, 1.0 / jnp.where(top > 0, top, 1.0), jnp.inf)


def _ratio_step(value, change):
    """The largest a <= inf with value + a change >= 0, elementwise vectors (entries with value = 0 ignored)."""
    falling = change < 0
    return jnp.min(jnp.where(falling, -value / jnp.where(falling, change, -1.0), jnp.inf))


def _shortened(alpha, feasible):
    """The first of alpha, _SHORTEN alpha, ... at which ``feasible`` holds, with that check's output."""
    def cond(state):
        return (~state[1]) & (state[2] < _RETRIES)

    def body(state):
        a, _, i, _ = state
        a = a * _SHORTEN
        ok, out = feasible(a)
        return a, ok, i + 1, out

    ok, out = feasible(alpha)
    a, ok, _, out = jax.lax.while_loop(cond, body, (alpha, ok, 0, out))
    return jnp.where(ok, a, 0.0), out


def solve(weights, inp, live, *, slopes, rtol, max_steps, single_rtol=_SINGLE_RTOL):
    """Primal-dual multipliers for one padded network; arguments as ``_lipsdp_blocks.solve`` (weights of unit
    spectral norm, ``inp`` and ``live`` 1.0 on real inputs and units).

    Returns (rho, t, iterations, lower, residual): the last iterate, and (P)'s objective -<C, P> - cap sum v
    at the last primal iterate with its largest equality residual. With a zero residual, ``lower`` is a lower
    bound on the optimum of (D) (weak duality; the padded units' frozen t enter C), so rho - lower bounds the
    distance of rho from the optimum; a residual r moves it by at most about r max(rho, |t|).

    Mixed precision: with float64 weights and a ``single_rtol``, the iterations run in float32 (whose dense
    products and factorisations take half the time on the CPU) until the relative gap is below ``single_rtol``
    or its steps stall (``_SINGLE_STALL``), then in float64 from that iterate, to ``rtol``. Where the float32
    iterate is not strictly inside in float64 (X or P not positive definite, a multiplier outside (0, cap)), the
    float64 phase begins at the start instead; either way the float64 phase alone decides the result, and
    ``iterations`` counts both phases.
    """
    used = 0
    warm = None
    if single_rtol is not None and weights[0].dtype == jnp.float64:
        single = functools.partial(jax.tree.map, lambda x: x.astype(jnp.float32))
        warm, used, _, _ = _iterate(single(weights), single(inp), single(live), slopes=slopes, rtol=single_rtol,
                                    residual_tol=jnp.inf, max_steps=max_steps, stall=_SINGLE_STALL)
        warm = jax.tree.map(lambda x: x.astype(jnp.float64), warm)
    (rho, t, *_), steps, lower, residual = _iterate(weights, inp, live, slopes=slopes, rtol=rtol,
                                                    residual_tol=_RESIDUAL, max_steps=max_steps - used, warm=warm)
    return rho, t, used + steps, lower, residual


def _iterate(weights, inp, live, *, slopes, rtol, residual_tol, max_steps, warm=None, stall=(1e-8, 1)):
    """The iterations of ``solve`` in the weights' dtype, from ``warm`` = (rho, t, P, z, v) where that point is
    strictly inside, else from the start, until the relative gap is below ``rtol`` and the primal residual below
    ``residual_tol``, or ``stall`` = (length, count): both step lengths below length in count iterations in a row
    (or one of the other stops of the module docstring). Returns ((rho, t, P, z, v), iterations, lower, residual)."""
    alpha_s, beta_s = slopes
    kmat = ((2.0, -(alpha_s + beta_s)), (-(alpha_s + beta_s), 2.0 * alpha_s * beta_s))
    layout = _Layout(weights)
    widths = [lv.shape[0] for lv in live]
    splits = [sum(widths[: k + 1]) for k in range(len(widths) - 1)]
    live_t = jnp.concatenate(live)
    keep = live_t > 0
    with_rho = jnp.concatenate([jnp.ones(1, bool), keep])
    both = with_rho[:, None] & with_rho[None, :]  # padded units: identity rows of the Schur matrix, dy = 0
    dtype = weights[0].dtype
    rho0, t0 = _start(weights, live, slopes)
    cap = jnp.asarray(_T_CAP * rho0, dtype)
    nu = layout.n + 2 * jnp.sum(live_t)
    zero_blocks = _diag_blocks(0.0, jnp.split(jnp.zeros_like(live_t), splits), weights, inp, slopes)
    constant = _dense(*_diag_blocks(0.0, jnp.split(1.0 - live_t, splits), weights, inp, slopes))  # C, frozen t in

    def blocks(rho, t):
        return _diag_blocks(rho, jnp.split(t, splits), weights, inp, slopes)

    def change_blocks(d_rho, d_t):  # dX = X(d_rho, d_t) - X(0, 0): no constant part
        diag, sub = blocks(d_rho, d_t)
        return [a - b for a, b in zip(diag, zero_blocks[0])], [a - b for a, b in zip(sub, zero_blocks[1])]

    def dual_inside(rho, t):
        """Whether X(rho, t) > 0 (its block factorisation is finite) and every live t is in (0, cap)."""
        chol, _ = _factor(*blocks(rho, jnp.where(keep, t, 1.0)))
        inside = jnp.all(jnp.where(keep, (t > 0) & (t < cap), True))
        return inside & jnp.all(jnp.stack([jnp.all(jnp.isfinite(c)) for c in chol]))

    def primal_inside(p, z, v):
        """Whether P > 0 and the live z, v are > 0, with P's Cholesky factor."""
        lower = jnp.linalg.cholesky(p)
        inside = jnp.all(jnp.where(keep, (z > 0) & (v > 0), True))
        return inside & jnp.all(jnp.isfinite(lower)), lower

    def direction(p, y, t, z, v, schur_chol, grad_y, sigma_mu, corr):
        """(dy, dX blocks, dP, dz, dv) for target sigma mu and the corrector's terms corr (or None)."""
        s = cap - t
        rhs = sigma_mu * (grad_y + jnp.concatenate([jnp.zeros(1, dtype), live_t / t - live_t / s]))
        rhs = jnp.where(with_rho, rhs.at[0].add(-1.0), 0.0)
        if corr is not None:
            h, dz_dt, dv_dt, _ = corr
            rhs = rhs - h - jnp.concatenate([jnp.zeros(1, dtype), (dz_dt / t + dv_dt / s) * live_t])
        dy = jax.scipy.linalg.cho_solve((schur_chol, True), rhs)
        dy = dy.at[1:].set(jnp.where(keep, dy[1:], 0.0))
        d_rho, d_t = dy[0], dy[1:]
        diag, sub = change_blocks(d_rho, d_t)
        pdx = _times_tridiagonal(p, diag, sub, layout)
        pdxy = pdx @ y
        dp = sigma_mu * y - p - (pdxy + pdxy.T) / 2
        extra_z = extra_v = 0.0
        if corr is not None:
            dp = dp - corr[3]
            extra_z, extra_v = dz_dt, dv_dt
        dz = jnp.where(keep, (sigma_mu - extra_z) / t - z - z * d_t / t, 0.0)
        dv = jnp.where(keep, (sigma_mu + extra_v) / s - v + v * d_t / s, 0.0)
        return d_rho, d_t, (diag, sub), dp, dz, dv

    def step_lengths(x_lower, p_lower, t, z, v, d_t, dx_dense, dp, dz, dv, steps):
        s = cap - t
        a_dual = jnp.minimum(_max_step(x_lower, dx_dense, steps),
                             jnp.minimum(_ratio_step(jnp.where(keep, t, 1.0), jnp.where(keep, d_t, 0.0)),
                                         _ratio_step(jnp.where(keep, s, 1.0), jnp.where(keep, -d_t, 0.0))))
        a_primal = jnp.minimum(_max_step(p_lower, dp, steps),
                               jnp.minimum(_ratio_step(jnp.where(keep, z, 1.0), dz),
                                           _ratio_step(jnp.where(keep, v, 1.0), dv)))
        return a_dual, a_primal

    def gap_of(p, x_dense, t, z, v):
        return jnp.sum(p * x_dense) + jnp.sum(jnp.where(keep, t * z + (cap - t) * v, 0.0))

    def residual_of(p, z, v, p_products):
        primal = _inner_products(p, weights, layout, inp, kmat, _projections(p, weights, layout, inp, p_products)[0])
        return jnp.concatenate([(1.0 - primal[0])[None], jnp.where(keep, -(primal[1:] + z - v), 0.0)])

    def body(state):
        rho, t, p, p_lower, p_products, z, v, it, _, last_lower, last_res, short = state
        diag, sub = blocks(rho, t)
        x_dense = _dense(diag, sub)
        x_lower, y = _factor_inverse(diag, sub)
        schur, grad_y = _schur(p, y, weights, layout, inp, kmat, p_products)
        d_lp = jnp.where(keep, z / t + v / (cap - t), 0.0)
        schur = jnp.where(both, schur, 0.0) + jnp.diag(jnp.concatenate([jnp.zeros(1, dtype), d_lp + ~keep]))
        schur_chol = jnp.linalg.cholesky(schur)
        mu = gap_of(p, x_dense, t, z, v) / nu
        # predictor
        d_rho, d_t, dxb, dp, dz, dv = direction(p, y, t, z, v, schur_chol, grad_y, 0.0, None)
        dx_dense = _dense(*dxb)
        a_dual, a_primal = step_lengths(x_lower, p_lower, t, z, v, d_t, dx_dense, dp, dz, dv, _LANCZOS[0])
        a_dual, a_primal = jnp.minimum(1.0, a_dual), jnp.minimum(1.0, a_primal)
        mu_aff = gap_of(p + a_primal * dp, x_dense + a_dual * dx_dense, t + a_dual * d_t, z + a_primal * dz,
                        v + a_primal * dv) / nu
        sigma = jnp.clip((mu_aff / mu) ** 3, 0.0, 1.0)
        # corrector: the second-order terms of P X = sigma mu I and of t z = s v = sigma mu
        second = _times_tridiagonal(dp, *dxb, layout) @ y
        second = (second + second.T) / 2
        h = _inner_products(second, weights, layout, inp, kmat)
        corr = (h, jnp.where(keep, dz * d_t, 0.0), jnp.where(keep, dv * d_t, 0.0), second)
        d_rho, d_t, dxb, dp, dz, dv = direction(p, y, t, z, v, schur_chol, grad_y, sigma * mu, corr)
        dx_dense = _dense(*dxb)
        a_dual, a_primal = step_lengths(x_lower, p_lower, t, z, v, d_t, dx_dense, dp, dz, dv, _LANCZOS[1])
        a_dual = jnp.minimum(1.0, _TO_BOUNDARY * a_dual)
        a_primal = jnp.minimum(1.0, _TO_BOUNDARY * a_primal)

        def dual_ok(a):
            return dual_inside(rho + a * d_rho, t + a * d_t), jnp.zeros((), dtype)

        def primal_ok(a):
            return primal_inside(p + a * dp, z + a * dz, v + a * dv)

        a_dual, _ = _shortened(jnp.minimum(a_dual, a_primal), dual_ok)
        a_primal, new_lower = _shortened(a_dual, primal_ok)
        a_dual = jnp.minimum(a_dual, a_primal)
        broken = ~(jnp.isfinite(d_rho) & jnp.all(jnp.isfinite(d_t))) | (a_dual <= 0)
        a_dual = jnp.where(broken, 0.0, a_dual)
        rho_new = jnp.where(broken, rho, rho + a_dual * d_rho)
        t_new = jnp.where(broken | ~keep, t, t + a_dual * d_t)
        moved = (a_primal > 0) & ~broken & jnp.all(jnp.isfinite(dp))
        p_new = jnp.where(moved, p + a_primal * dp, p)
        p_lower = jnp.where(moved, new_lower, p_lower)
        z_new = jnp.where(moved, z + a_primal * dz, z)
        v_new = jnp.where(moved, v + a_primal * dv, v)
        x_new = _dense(*blocks(rho_new, t_new))
        gap = gap_of(p_new, x_new, t_new, z_new, v_new)
        p_products = _products(p_new, weights, layout)  # for the residual here and the next Schur matrix
        residual = residual_of(p_new, z_new, v_new, p_products)
        res = jnp.max(jnp.abs(residual))
        converged = (gap <= rtol * jnp.abs(rho_new)) & (res <= residual_tol)
        # near the optimum X and P grow ill-conditioned and rounding may push P off its equalities: stop there
        # (the residual grows again) and keep the last primal estimate
        degraded = (gap <= _NEAR * jnp.abs(rho_new)) & (res > jnp.maximum(2 * last_res, _RESIDUAL))
        short = jnp.where((a_dual < stall[0]) & (a_primal < stall[0]), short + 1, 0)
        stalled = broken | (short >= stall[1])
        lower = -jnp.sum(constant * p_new) - cap * jnp.sum(jnp.where(keep, v_new, 0.0))
        lower, res = jnp.where(degraded, last_lower, lower), jnp.where(degraded, last_res, res)
        return (rho_new, t_new, p_new, p_lower, p_products, z_new, v_new, it + 1, converged | degraded | stalled, lower,
                res, short)

    def cond(state):
        return (~state[8]) & (state[7] < max_steps)

    t0 = t0.astype(dtype)
    rho0 = jnp.asarray(rho0, dtype)
    _, y0 = _factor_inverse(*blocks(rho0, t0))
    mu0 = 1.0 / jnp.sum(inp * jnp.diagonal(y0)[: layout.hidden])  # <E, P_0> = 1: the rho row is feasible
    point = (rho0, t0, mu0 * y0, jnp.where(keep, mu0 / t0, 0.0), jnp.where(keep, mu0 / (cap - t0), 0.0))
    p_lower = jnp.linalg.cholesky(point[2])
    if warm is not None:
        inside, warm_lower = primal_inside(*warm[2:])
        inside = inside & dual_inside(*warm[:2])
        point = jax.tree.map(lambda a, b: jnp.where(inside, a, b), warm, point)
        p_lower = jnp.where(inside, warm_lower, p_lower)
    rho, t, p, z, v = point
    state = (rho, t, p, p_lower, _products(p, weights, layout), z, v, 0, jnp.asarray(False),
             jnp.asarray(-jnp.inf, dtype), jnp.asarray(jnp.inf, dtype), 0)
    rho, t, p, _, _, z, v, steps, _, lower, residual, _ = jax.lax.while_loop(cond, body, state)
    return (rho, t, p, z, v), steps, lower, residual


@functools.partial(jax.jit, static_argnames=("slopes", "chunk", "rtol", "max_steps"))
def solve_batch(weights, inp, live, *, slopes, chunk: int, rtol: float, max_steps: int):
    """``solve`` over a leading network axis through ``_batching.map_chunked`` (chunks of ``chunk``, a vmap each)."""
    return _batching.map_chunked(lambda x: solve(*x, slopes=slopes, rtol=rtol, max_steps=max_steps),
                                 (weights, inp, live), chunk=chunk, whole_chunks=True)
