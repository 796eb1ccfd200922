"""LipSDP-Neuron as a certified upper bound: the solvers' front end and the float64 verification.

LipSDP-Neuron (Fazlyab, Robey, Hassani, Morari & Pappas, NeurIPS 2019, Thm 2): Lip(f) <= sqrt(rho) for every
rho and diagonal T_k >= 0 with M(rho, T) <= 0 (``lipsdp_matrix``). The multipliers come from the barrier method
of ``_lipsdp_blocks`` (JAX, batched over networks; ``lipsdp_barrier_bounds``) or from cvxpy with Clarabel or SCS
(``lipsdp_bound``); either way the bound reported is proved in float64 for those multipliers, or for a blend of
them with a strictly feasible point where they sit too close to the boundary (``_certified``, ``_verified_rho``),
so an inaccurate solve costs tightness, never soundness.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from lawrob.lipschitz import _lipsdp, _lipsdp_blocks, _lipsdp_pd
from lawrob.lipschitz._network import Net, _gamma, is_constant
from lawrob.lipschitz._psd import _psd_certified, _psd_certified_blocks, spectral_norm_upper

_SDP_MARGIN = 1e-7  # cvxpy solves LipSDP with M <= -margin I (weights scaled to norm 1) so the check has room
_BARRIER_RTOL = 1e-6  # relative suboptimality of rho the barrier method stops at
_BARRIER_MAX_STEPS = 500
_PRIMAL_DUAL_RTOL = 1e-8  # relative duality gap and primal residual the primal-dual method stops at
_INTERIOR_WEIGHTS = (1e-8, 1e-6, 1e-4)  # weights of the feasible start mixed into multipliers that fail to verify
# "auto" takes the primal-dual method above this many rows of the reduced LipSDP matrix. Measured quietly with the
# float32 first phase (RESULTS, "LipSDP at scale"): at 512 rows the two are within 1.4x either way (784-256-10: 1.46 s
# primal-dual against 1.57 s barrier at init, 2.78 against 2.07 s trained-like), at 1536 rows (784-512-512-1) the
# primal-dual method takes 15.8 s against 27.1 s, and at 3856 (784-1024-1024-1024-10) 197 s where the barrier method
# had not finished in 1200 s.
AUTO_PRIMAL_DUAL_DIM = 1000


_FAILED = "failed: the solver's certificate did not verify in float64"


def lipsdp_values(smalls: list[Net], sizes: tuple[int, ...], solver: str, required: bool, chunk: int):
    """(LipSDP bound or the reason there is none, the JAX solver's steps or None) for each reduced network."""
    solver = resolved_solver(solver, sizes)
    if solver in ("barrier", "primal_dual"):
        found = lipsdp_barrier_bounds(smalls, sizes, chunk, primal_dual=solver == "primal_dual")
        return [(_FAILED if v is None else v, steps) for v, steps in found]
    try:
        import cvxpy  # noqa: F401
    except ImportError:
        if required:
            raise ImportError(f"solver={solver!r} needs cvxpy: pip install 'lawrob[sdp]' "
                              "(or use solver='barrier')") from None
        return [("skipped: cvxpy is not installed", None)] * len(smalls)
    return [(_FAILED if (v := lipsdp_bound(small, solver)) is None else v, None) for small in smalls]


def resolved_solver(solver: str, sizes: tuple[int, ...]) -> str:
    """The solver "auto" stands for on an architecture of these (d, hidden widths): the barrier method up to
    ``AUTO_PRIMAL_DUAL_DIM`` rows of the reduced matrix (min(d, n_1) + hidden units), the primal-dual one above."""
    if solver != "auto":
        return solver
    rows = (min(sizes[0], sizes[1]) if len(sizes) > 1 else sizes[0]) + sum(sizes[1:])
    return "primal_dual" if rows > AUTO_PRIMAL_DUAL_DIM else "barrier"


def lipsdp_matrix(net: Net, rho: float, multipliers: list[np.ndarray]) -> np.ndarray:
    """LipSDP-Neuron's matrix M(rho, T) in float64 (blocks: input, hidden layer 1, ..., L-1).

    With V_k = W_k^T, slopes [alpha, beta] and T_k = diag(t_k) >= 0 (Fazlyab et al. 2019, Thm 2, written for
    the increments dx_0, ..., dx_{L-1} of the inputs of each affine layer):
      M_00 = -rho I - 2 alpha beta V_1^T T_1 V_1,
      M_kk = -2 T_k - 2 alpha beta V_{k+1}^T T_{k+1} V_{k+1} (k + 1 < L) + V_L^T V_L (k = L - 1),
      M_k,k-1 = (alpha + beta) T_k V_k.
    M <= 0 implies Lip(f) <= sqrt(rho).
    """
    alpha, beta = net.slopes
    sizes = [net.d] + list(net.widths)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    m = np.zeros((offsets[-1], offsets[-1]))

    def block(i, j):
        return m[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]]

    block(0, 0)[...] = -rho * np.eye(net.d)
    for k, t in enumerate(multipliers, start=1):
        w = net.weights[k - 1]
        block(k - 1, k - 1)[...] -= 2 * alpha * beta * (w * t) @ w.T
        block(k, k)[...] -= 2 * np.diag(t)
        coupling = (alpha + beta) * t[:, None] * w.T
        block(k, k - 1)[...] += coupling
        block(k - 1, k)[...] += coupling.T
    block(net.depth - 1, net.depth - 1)[...] += net.weights[-1] @ net.weights[-1].T
    return m


def _unit_norm(net: Net) -> tuple[Net, float]:
    """The network with every W_k scaled to unit spectral norm, and prod_k ||W_k||_2.

    The network equals prod s_k times one with the weights W_k / s_k and the rescaled activations s(s_k u) / s_k,
    slope-restricted in the same [alpha, beta], so Lip(f) = prod s_k Lip(scaled)."""
    scales = [_norm_estimate(w) for w in net.weights]
    return Net(tuple(w / s for w, s in zip(net.weights, scales)), net.biases, net.activation), math.prod(scales)


def _norm_estimate(w: np.ndarray) -> float:
    """||w||_2 from the largest eigenvalue of the smaller Gram matrix (any positive scale keeps the bound exact;
    this one is cheaper than the SVD: 10 ms against 50 ms for 784 x 256)."""
    gram = w.T @ w if w.shape[1] <= w.shape[0] else w @ w.T
    return math.sqrt(max(float(np.linalg.eigvalsh(gram)[-1]), 0.0)) or 1.0


def _certified(scaled: Net, scale: float, t: np.ndarray) -> float | None:
    """sqrt(verified rho) x scale for multipliers t (clipped at 0), or None when the verification fails.

    A solve that ends close to the optimum leaves -M(rho, T) with eigenvalues near 0 in its hidden block, below
    the float64 proof's rounding margin (2 gamma_{n+1} tr(-M), ``_psd_certified_blocks``): no rho proves those
    multipliers. Then the strictly feasible start (rho_0, t_0) of ``_lipsdp._start`` (-M(rho_0, T_0) >= I) is
    mixed in with weights w = ``_INTERIOR_WEIGHTS``: -M is affine in (rho, t), so at the blend (1 - w) t + w t_0
    and rho' = (1 - w) rho + w rho_0 it is (1 - w) (-M(rho, T)) + w (-M(rho_0, T_0)) >= w I wherever
    -M(rho, T) >= 0: a margin of w for at most w (rho_0 - rho) more rho (the verification then finds the
    smallest rho for the blend, often less)."""
    if not np.all(np.isfinite(t)):
        return None
    t = np.maximum(np.asarray(t, np.float64), 0.0)
    offsets = np.cumsum(scaled.widths)[:-1]
    rho = _verified_rho(scaled, np.split(t, offsets))
    if rho is None:  # rare: the start is only formed here
        with jax.enable_x64(True):
            start = np.asarray(_lipsdp._start(scaled.weights, [np.ones(w) for w in scaled.widths], scaled.slopes)[1])
        for weight in _INTERIOR_WEIGHTS:
            rho = _verified_rho(scaled, np.split((1 - weight) * t + weight * start, offsets))
            if rho is not None:
                break
    return None if rho is None else math.sqrt(rho) * scale


def lipsdp_bound(net: Net, solver: str = "SCS") -> float | None:
    """LipSDP-Neuron through cvxpy: min rho s.t. M(rho, T) <= 0 over diagonal T_k >= 0; Lip(f) <= sqrt(rho).

    Solved with ``solver`` ("CLARABEL" or "SCS") on the weights scaled to unit spectral norm (``_unit_norm``)
    with M <= -1e-7 I, then verified in float64 (``_verified_rho``). Returns None when the verification fails.
    """
    import cvxpy as cp

    if is_constant(net):
        return 0.0
    scaled, scale = _unit_norm(net)
    constant, linear = _lipsdp_affine(scaled)
    n = constant.shape[0]
    variables = cp.Variable(linear.shape[1])
    matrix = constant + cp.reshape(linear @ variables, (n, n), order="F")
    hidden = sum(scaled.widths)
    problem = cp.Problem(
        cp.Minimize(variables[0]),
        [(matrix + matrix.T) / 2 << -_SDP_MARGIN * np.eye(n), variables[1 : 1 + hidden] >= 0],
    )
    with warnings.catch_warnings():  # "solution may be inaccurate": harmless, the float64 check below decides
        warnings.simplefilter("ignore", UserWarning)
        problem.solve(solver=solver)
    if problem.status not in ("optimal", "optimal_inaccurate") or variables.value is None:
        return None
    return _certified(scaled, scale, variables.value[1:])


def lipsdp_barrier_bounds(smalls: list[Net], sizes: tuple[int, ...], chunk: int = 8, *, primal_dual: bool = False,
                          _dense: bool = False) -> list[tuple[float | None, int]]:
    """LipSDP-Neuron by the barrier method of ``_lipsdp_blocks`` for networks of one activation and depth, batched.

    Each network (reduced, so no wider than ``sizes`` = (d, hidden widths) of the architecture) is scaled to unit
    spectral norms, its inputs beyond the first layer's width eliminated (``_reduced``: same optimum), padded to
    a fixed shape (one compilation per architecture) and solved in one compiled call; its multipliers are then
    verified in float64 on the original network (``_certified``). Returns (bound or None when the verification
    fails, Newton steps) per network. A constant network is 0; a network without hidden layers, or with an
    affine activation (alpha = beta), is linear: LipSDP's infimum is then beta^(L-1) ||W_1 ... W_L||_2, not
    attained (the multipliers run off to infinity), and that value is returned, certified (``_linear_bound``).
    ``primal_dual``: the primal-dual interior-point method of ``_lipsdp_pd`` instead (iterations in place of
    Newton steps; ``lipsdp_primal_dual_bounds`` also returns its optimality gap); ``_dense``: the first, dense
    barrier solver (``_lipsdp.solve_batch`` on the unreduced networks), for comparison.
    """
    solver = _lipsdp.solve_batch if _dense else _lipsdp_pd.solve_batch if primal_dual else _lipsdp_blocks.solve_batch
    rtol = _PRIMAL_DUAL_RTOL if primal_dual else _BARRIER_RTOL
    return [(value, steps) for value, steps, _ in _solved(smalls, sizes, chunk, solver, rtol, reduce_inputs=not _dense)]


def lipsdp_primal_dual_bounds(smalls: list[Net], sizes: tuple[int, ...], chunk: int = 8
                              ) -> list[tuple[float | None, int, float | None]]:
    """``lipsdp_barrier_bounds(..., primal_dual=True)`` with, per network, a third entry: sqrt(lower) x scale,
    where lower is the primal-dual method's dual objective (``_lipsdp_pd.solve``), an estimate from below of
    LipSDP's optimum (exact up to the primal residual, at most 1e-9 at a regular stop), or None where it is
    not positive or the network needed no solve. Certified bound / this = 1 + the relative optimality gap."""
    return _solved(smalls, sizes, chunk, _lipsdp_pd.solve_batch, _PRIMAL_DUAL_RTOL, reduce_inputs=True)


def _solved(smalls: list[Net], sizes: tuple[int, ...], chunk: int, solver, rtol: float, *, reduce_inputs: bool):
    """(certified bound or None, steps, LipSDP lower estimate or None) per network, for ``lipsdp_barrier_bounds``."""
    out: list = [(0.0, 0, None) if is_constant(n) else (None, 0, None) for n in smalls]
    solve = [i for i, n in enumerate(smalls) if not is_constant(n)]
    if not solve:
        return out
    alpha, beta = smalls[solve[0]].slopes
    if smalls[solve[0]].depth == 1 or alpha == beta:
        for i in solve:
            out[i] = (_linear_bound(smalls[i]), 0, None)
        return out
    scaled = [_unit_norm(smalls[i]) for i in solve]
    solved = [_reduced(net) if reduce_inputs else net for net, _ in scaled]
    widths = sizes[1:]
    sizes = (min(sizes[0], sizes[1]),) + tuple(widths) if reduce_inputs else sizes
    with jax.enable_x64(True):
        shapes = [(sizes + (smalls[solve[0]].out,))[k : k + 2] for k in range(len(sizes))]
        weights = tuple(jnp.asarray(np.stack([_pad(net.weights[k], shape) for net in solved]))
                        for k, shape in enumerate(shapes))
        inp = jnp.asarray(np.stack([np.arange(sizes[0]) < net.d for net in solved]), jnp.float64)
        live = tuple(jnp.asarray(np.stack([np.arange(w) < net.widths[k] for net in solved]), jnp.float64)
                     for k, w in enumerate(widths))
        result = solver(weights, inp, live, slopes=smalls[solve[0]].slopes, chunk=min(chunk, len(solve)),
                        rtol=rtol, max_steps=_BARRIER_MAX_STEPS)
    t, steps = np.asarray(result[1]), np.asarray(result[2])
    lower = np.asarray(result[3]) if len(result) > 3 else np.full(len(solve), np.nan)
    offsets = np.concatenate([[0], np.cumsum(widths)])
    for j, (i, (net, scale)) in enumerate(zip(solve, scaled)):
        real = np.concatenate([t[j, offsets[k] : offsets[k] + net.widths[k]] for k in range(len(widths))])
        estimate = math.sqrt(lower[j]) * scale if lower[j] > 0 else None
        out[i] = (_certified(net, scale, real), int(steps[j]), estimate)
    return out


def _reduced(net: Net) -> Net:
    """The network on min(d, n_1) inputs with LipSDP's optimum of ``net``: W_1 replaced by R of W_1 = Q R.

    M(rho, T) only sees the inputs through W_1 = Q R (Q: d x n_1 orthonormal columns): in the basis [Q, Q_perp]
    of the inputs, M is the matrix of the network with first weights R plus the block -rho I on Q_perp's
    d - n_1 inputs, which is <= 0 iff rho >= 0. So both problems have one optimum, and the same multipliers
    certify both; ``_certified`` verifies them on ``net`` itself.
    """
    first = net.weights[0]
    if first.shape[0] <= first.shape[1]:
        return net
    r = np.linalg.qr(first, mode="r")
    return Net((r,) + net.weights[1:], net.biases, net.activation)  # type: ignore[arg-type]  # numpy stubs: qr(mode="r") returns an array


def _linear_bound(net: Net) -> float:
    """A certified upper bound on beta^(L-1) ||W_1 ... W_L||_2, the Lipschitz constant of a linear network.

    The product P is formed in float64 with its rounding tracked: ||fl(P W) - P W||_2 <= gamma_n || |P| |W| ||_F
    (Higham, Thm 3.5) and an error e in P grows to e ||W||_2; the certified ||fl(P)||_2 plus the error bounds it.
    """
    product, error = net.weights[0], 0.0
    for w in net.weights[1:]:
        rounding = _gamma(w.shape[0]) * float(np.linalg.norm(np.abs(product) @ np.abs(w))) * (1 + 1e-10)
        error = error * spectral_norm_upper(w) + rounding
        product = product @ w
    return net.slopes[1] ** (net.depth - 1) * (spectral_norm_upper(product) + error)


def _pad(w: np.ndarray, shape) -> np.ndarray:
    """w in the top-left corner of zeros of ``shape``."""
    padded = np.zeros(tuple(shape))
    padded[: w.shape[0], : w.shape[1]] = w
    return padded


def _lipsdp_affine(net: Net):
    """M(rho, T) = constant + reshape(linear @ [rho, t_1, ..., t_{L-1}]) (column-major), linear sparse.

    The columns are ``lipsdp_matrix``'s dependence on rho and on each unit's multiplier, found by evaluating it
    at unit vectors (M is affine in (rho, T)).
    """
    from scipy import sparse

    widths = list(net.widths)
    constant = lipsdp_matrix(net, 0.0, [np.zeros(w) for w in widths])
    columns = [sparse.csc_matrix((lipsdp_matrix(net, 1.0, [np.zeros(w) for w in widths]) - constant).reshape(-1, 1, order="F"))]
    for k, width in enumerate(widths):
        for j in range(width):
            t = [np.zeros(w) for w in widths]
            t[k][j] = 1.0
            column = (lipsdp_matrix(net, 0.0, t) - constant).reshape(-1, 1, order="F")
            columns.append(sparse.csc_matrix(column))
    return constant, sparse.hstack(columns).tocsc()


def _verified_rho(net: Net, multipliers: list[np.ndarray]) -> float | None:
    """The smallest rho' (up to a proved margin) with M(rho', T) <= 0 for these multipliers, or None.

    Block by block (``_negated_blocks``): the hidden part of -M is eliminated from the last layer up to give the
    estimate rho = lambda_max(S) of the Schur complement S = W_1 Phi W_1^T of M onto the inputs (an eigenvalue
    problem of size min(d, n_1)), and a candidate slightly above it is proved by a block Cholesky factorisation
    of -M (``_psd_certified_blocks``), about L n^3 flops instead of N^3 for the dense matrix.
    """
    if net.depth == 1:
        return _verified_rho_dense(net, multipliers)
    from scipy import linalg as scipy_linalg

    alpha, beta = net.slopes
    diag, sub = _negated_blocks(net, 0.0, multipliers)
    hidden = diag[1:]
    try:  # the hidden part of -M, eliminated upwards: U_k = X_kk - X_k,k+1 U_k+1^-1 X_k+1,k
        u = hidden[-1]
        for k in range(len(hidden) - 2, -1, -1):
            u = hidden[k] - sub[k + 1].T @ scipy_linalg.cho_solve(scipy_linalg.cho_factor(u, lower=True), sub[k + 1])
        u_factor = scipy_linalg.cho_factor(u, lower=True)
    except np.linalg.LinAlgError:
        return None
    t1 = multipliers[0]
    phi = (alpha + beta) ** 2 * t1[:, None] * scipy_linalg.cho_solve(u_factor, np.diag(t1))
    phi = phi - 2 * alpha * beta * np.diag(t1)
    w1 = net.weights[0]
    base = np.linalg.qr(w1, mode="r") if w1.shape[0] > w1.shape[1] else w1  # same nonzero spectrum of W Phi W^T
    schur = base @ phi @ base.T  # type: ignore[union-attr]  # numpy stubs: qr(mode="r") returns an array, not QRResult
    if not np.all(np.isfinite(schur)):
        return None
    rho = max(float(np.linalg.eigvalsh((schur + schur.T) / 2)[-1]), 0.0)
    for delta in (1e-9, 1e-7, 1e-5, 1e-3):
        candidate = rho + delta * max(rho, 1.0)
        if _psd_certified_blocks(*_negated_blocks(net, candidate, multipliers)):
            return candidate
    return None


def _negated_blocks(net: Net, rho: float, multipliers: list[np.ndarray]):
    """-M(rho, T) as its diagonal blocks X_kk and subdiagonal blocks X_k,k-1 (k >= 1): the entries of
    -``lipsdp_matrix``, computed by the same float64 operations in the same order."""
    alpha, beta = net.slopes
    diag = [-rho * np.eye(net.d)] + [np.zeros((w, w)) for w in net.widths]
    sub = []
    for k, t in enumerate(multipliers, start=1):
        w = net.weights[k - 1]
        diag[k - 1] -= 2 * alpha * beta * (w * t) @ w.T
        diag[k] -= 2 * np.diag(t)
        sub.append(-((alpha + beta) * t[:, None] * w.T))
    diag[-1] += net.weights[-1] @ net.weights[-1].T
    return [-block for block in diag], sub


def _verified_rho_dense(net: Net, multipliers: list[np.ndarray]) -> float | None:
    """``_verified_rho`` on the dense N x N matrix (the previous check; kept for networks without hidden layers
    and as the tests' reference)."""
    m0 = lipsdp_matrix(net, 0.0, multipliers)
    d = net.d
    p, q, r = m0[:d, :d], m0[d:, :d], m0[d:, d:]
    if r.size and not _psd_certified(-r):
        return None
    schur = p - q.T @ np.linalg.solve(r, q) if r.size else p
    rho = max(float(np.linalg.eigvalsh((schur + schur.T) / 2)[-1]), 0.0)
    for delta in (1e-9, 1e-7, 1e-5, 1e-3):
        candidate = rho + delta * max(rho, 1.0)
        if _psd_certified(-lipsdp_matrix(net, candidate, multipliers)):
            return candidate
    return None
