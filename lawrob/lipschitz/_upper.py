"""Sound upper bounds on the l2 Lipschitz constant of an MLP with slope-restricted activations.

Every activation s of ``nets.ACTIVATIONS`` is slope-restricted, alpha <= (s(a) - s(b)) / (a - b) <= beta with
0 <= alpha <= beta. Three bounds, all computed in float64 on the masked weights (pruned weights are zeros) of
the network without its dead units (``reduce``: same function):

- "product": beta^(L-1) prod_k ||W_k||_2, each norm certified from above (power iteration, then a Cholesky
  proof that s^2 I - W^T W is positive semidefinite).
- "eclipse_fast": the closed-form sequential certificate of ECLipsE-Fast (Xu & Sivaranjani, NeurIPS 2024).
- "lipsdp": LipSDP-Neuron (Fazlyab, Robey, Hassani, Morari & Pappas, NeurIPS 2019, Thm 2) solved by the
  barrier method of ``_lipsdp_blocks`` (JAX, block tridiagonal, batched over networks) or with cvxpy (Clarabel
  or SCS); the solver's multipliers are then verified in float64, block by block (``_verified_rho``).
"best" takes the smallest of those affordable at the network's size (LipSDP while its matrix has at most
``sdp_max_dim`` rows); the minimum of sound bounds is sound.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks
from lawrob.lipschitz import _lipsdp, _lipsdp_blocks
from lawrob.lipschitz._network import Bound, Net, _gamma, batch_size, drop_unused_inputs, prepare, reduce

SDP_SOLVERS = ("auto", "barrier", "CLARABEL", "SCS")
# LipSDP's matrix has N = d + (hidden units) rows. Rule: "best" runs LipSDP while N <= 300, where the block
# barrier solver (``_lipsdp_blocks``) takes at most about 0.8 s a network, as the dense one did at N <= 150-230.
# Measured warm on 2 cores, quiet machine (benchmarks/RESULTS.md, "LipSDP at scale"): 0.02-0.06 s at N = 66-106,
# 0.43 s at N = 270 (200-100-1), 0.78 s at N = 300 (100-100-100-1), 2.9 s at N = 1040 (784-256-10); the dense
# solver 1.1-1.7 s at N = 270-300 and 15.9 s at N = 1040; cvxpy/Clarabel 2-24 s at N = 66-106.
DEFAULT_SDP_MAX_DIM = 300
_SDP_MARGIN = 1e-7  # cvxpy solves LipSDP with M <= -margin I (weights scaled to norm 1) so the check has room
_BARRIER_RTOL = 1e-6  # relative suboptimality of rho the barrier method stops at
_BARRIER_MAX_STEPS = 500


def upper(
    params, mask=None, *, model=None, method: str = "best", solver: str = "auto",
    sdp_max_dim: int = DEFAULT_SDP_MAX_DIM,
) -> Bound:
    """A sound upper bound on the global l2 Lipschitz constant (valid on any domain).

    ``model``: the ``nets.MLP`` (its activation's slope bounds are used; None means ReLU). ``method``: "best"
    (default), "product", "eclipse_fast" or "lipsdp". ``solver`` for LipSDP: "barrier" (``_lipsdp_blocks``:
    a primal barrier method in JAX, float64, no SDP library needed), cvxpy's "CLARABEL" or "SCS" (the "sdp" extra), or
    "auto" (= "barrier"); the float64 verification of the multipliers makes every solver sound, a looser solve
    only costs tightness. ``sdp_max_dim``: "best" runs LipSDP only while N = d + hidden units (after dropping
    dead units and unused inputs) is at most this. ``details`` holds every value computed (a LipSDP whose
    certificate fails verification is reported, not used), N as sdp_dim and the barrier's Newton steps.
    """
    start = time.perf_counter()
    net = prepare(params, mask, model)
    bound, = _upper_bounds([net], method, solver, sdp_max_dim, chunk=1)
    return dataclasses.replace(bound, seconds=time.perf_counter() - start)


def upper_batch(
    params, mask=None, *, model=None, method: str = "best", solver: str = "auto",
    sdp_max_dim: int = DEFAULT_SDP_MAX_DIM, chunk: int = 8,
) -> list[Bound]:
    """``upper`` for B networks of one architecture: params (and mask) carry a leading axis of size B.

    The barrier method runs as one compiled call over all of them (``jax.lax.map`` over chunks of ``chunk``,
    ``vmap`` within); every value equals ``upper`` on that network up to float64 rounding. Each Bound's seconds
    is its share of the total.
    """
    start = time.perf_counter()
    chunk = _checks.positive_int("chunk", chunk)
    size = batch_size(params, mask)
    nets = [prepare(jax.tree.map(lambda leaf: leaf[b], params),
                    None if mask is None else jax.tree.map(lambda leaf: leaf[b], mask), model) for b in range(size)]
    bounds = _upper_bounds(nets, method, solver, sdp_max_dim, chunk=chunk)
    share = (time.perf_counter() - start) / size
    return [dataclasses.replace(bound, seconds=share) for bound in bounds]


@dataclasses.dataclass(frozen=True)
class UpperContext:
    """What an upper-bound method may need beyond the networks: the LipSDP ``solver``, the batch ``chunk``,
    the architecture ``sizes`` before dead units were dropped (to pad to one compiled shape), and whether the
    method was asked for by name (``required``: then a missing dependency is an error, not a skip)."""

    solver: str
    chunk: int
    sizes: tuple[int, ...]
    required: bool


@dataclasses.dataclass(frozen=True)
class UpperMethod:
    """A sound upper bound of the registry ``UPPER_METHODS``.

    ``bounds(nets, context) -> [(value or the reason there is none, details), ...]``, one per network; the
    networks are ``Net``s without dead units or unused inputs, so a bound only needs to be sound for them.
    ``affordable(net, sdp_max_dim) -> bool``: whether "best" runs it on that network. ``tightness``: its place
    in the order of methods from the tightest (smallest) in general, used where one method must be chosen for
    many networks (``uniform_method``): LipSDP-Neuron 0 (its optimum is below ECLipsE-Fast's feasible
    certificate), ECLipsE-Fast 10, the spectral product 20 (ECLipsE-Fast with one multiplier per layer is at
    most it in practice); a registered method defaults to 15.
    """

    name: str
    bounds: Callable[[list[Net], UpperContext], list[tuple[float | str, dict]]]
    affordable: Callable[[Net, int], bool] = lambda net, sdp_max_dim: True
    tightness: float = 15.0


UPPER_METHODS: dict[str, UpperMethod] = {}


def register_upper(name: str, per_network: Callable[[Net], float] | None = None, *,
                   bounds: Callable | None = None, affordable: Callable[[Net, int], bool] | None = None,
                   tightness: float = 15.0, replace: bool = False) -> UpperMethod:
    """Add an upper-bound method: ``upper(..., method=name)`` runs it, "best" takes it into its minimum (where
    ``affordable``), and sweep grids accept it as ``upper_method``. Give ``per_network(net) -> float`` (a sound
    bound for one ``Net``) or the batched ``bounds`` of ``UpperMethod``. The value must be sound: it is taken
    as a certified upper bound as it is. ``tightness``: see ``UpperMethod``."""
    if not isinstance(name, str) or not name.isidentifier() or name == "best":
        raise ValueError(f"name must be an identifier-like string other than 'best', got {name!r}")
    if name in UPPER_METHODS and not replace:
        raise ValueError(f"name {name!r} is already an upper-bound method; pass replace=True to overwrite it")
    if (per_network is None) == (bounds is None):
        raise ValueError("give exactly one of per_network and bounds")
    if per_network is not None:
        bounds = lambda nets, context: [(float(per_network(net)), {}) for net in nets]  # noqa: E731
    method = UpperMethod(name, bounds, affordable or UpperMethod.affordable, float(tightness))
    UPPER_METHODS[name] = method
    return method


def upper_methods() -> tuple[str, ...]:
    """The names ``upper`` accepts: "best" and every registered method."""
    return ("best", *UPPER_METHODS)


def uniform_method(net: Net, sdp_max_dim: int = DEFAULT_SDP_MAX_DIM) -> str:
    """The one upper-bound method for a family of networks whose largest is ``net``: the tightest registered
    method (least ``tightness``, then registration order) that "best" would afford on it. A sweep certifies
    every run of a grid with it, so that no fit mixes certificate types (smaller networks are cheaper)."""
    sdp_max_dim = _checks.positive_int("sdp_max_dim", sdp_max_dim)
    affordable = [m for m in UPPER_METHODS.values() if m.affordable(net, sdp_max_dim)]
    if not affordable:
        raise ValueError(f"no registered upper-bound method is affordable at d + hidden units = {_sdp_dim(net)}")
    return min(affordable, key=lambda m: m.tightness).name


def _sdp_dim(net: Net) -> int:
    return net.d + sum(net.widths)


def _lipsdp_bounds(nets: list[Net], context: UpperContext) -> list[tuple[float | str, dict]]:
    found = _lipsdp_values(nets, context.sizes, context.solver, context.required, context.chunk)
    return [(value, {} if steps is None else {"barrier_steps": steps}) for value, steps in found]


def _upper_bounds(nets: list[Net], method: str, solver: str, sdp_max_dim: int, chunk: int) -> list[Bound]:
    """Each registered method asked for (all affordable ones for "best") on the reduced networks; the bound is
    the smallest value found."""
    _checks.one_of("method", method, upper_methods())
    _checks.one_of("solver", solver, SDP_SOLVERS)
    sdp_max_dim = _checks.positive_int("sdp_max_dim", sdp_max_dim)
    smalls = [drop_unused_inputs(reduce(net))[0] for net in nets]
    context = UpperContext(solver, chunk, (nets[0].d,) + nets[0].widths, required=method != "best")
    values: list[dict[str, float | str]] = [{} for _ in nets]
    for entry in UPPER_METHODS.values() if method == "best" else [UPPER_METHODS[method]]:
        chosen = []
        for i, small in enumerate(smalls):
            if method != "best" or entry.affordable(small, sdp_max_dim):
                chosen.append(i)
            else:
                values[i][entry.name] = (f"skipped: not affordable at d + hidden units = {_sdp_dim(small)} "
                                         f"(sdp_max_dim = {sdp_max_dim})")
        if chosen:
            for i, (value, details) in zip(chosen, entry.bounds([smalls[i] for i in chosen], context)):
                values[i][entry.name] = value
                values[i].update(details)
    bounds = []
    for value, small in zip(values, smalls):
        numbers = {k: v for k, v in value.items() if k in UPPER_METHODS and not isinstance(v, str)}
        if not numbers:
            raise RuntimeError(f"upper: no method gave a bound ({value}); use another method")
        chosen = min(numbers, key=numbers.get)
        bounds.append(Bound(numbers[chosen], "upper", chosen, details=dict(value, sdp_dim=_sdp_dim(small))))
    return bounds


def _constant(net: Net) -> bool:
    """True when the reduced network computes a constant (no input left or a hidden layer emptied)."""
    return net.d == 0 or 0 in net.widths or net.out == 0


def product_bound(net: Net) -> float:
    """beta^(L-1) prod_k ||W_k||_2: f is a composition of the maps x -> x W_k + b_k and of beta-Lipschitz s."""
    if _constant(net):
        return 0.0
    beta = net.slopes[1]
    return beta ** (net.depth - 1) * math.prod(spectral_norm_upper(w) for w in net.weights)


def spectral_norm_upper(w: np.ndarray, iterations: int = 100) -> float:
    """A certified upper bound s >= ||w||_2.

    Power iteration on the smaller Gram matrix G = w^T w (or w w^T) gives an estimate sigma of ||w||_2 from
    below; s = sigma (1 + delta) + delta ||w||_F is accepted once s^2 I - G is proved positive semidefinite
    (``_psd_certified``), with delta = 1e-12, 1e-10, ..., 1e26 (s then exceeds ||w||_F >= ||w||_2 by far, so this
    certifies unless w^T w overflowed, which raises a FloatingPointError; ``prepare`` rejects such weights first).
    The rounding in forming G, |fl(G) - G| <= gamma_m |w|^T |w| (Higham, Thm 3.5), is covered by shifting the
    test by gamma_m ||w||_F^2 >= ||fl(G) - G||_2.
    """
    gram = w.T @ w if w.shape[1] <= w.shape[0] else w @ w.T
    if not gram.any():
        return 0.0
    frobenius_sq = float(np.sum(w * w))
    vector = np.random.default_rng(0).standard_normal(gram.shape[0])
    for _ in range(iterations):
        vector = gram @ vector
        vector /= np.max(np.abs(vector))  # first to the largest entry: the norm of a vector of 1e200s overflows
        vector /= np.linalg.norm(vector)
    sigma = float(np.sqrt(max(vector @ gram @ vector, 0.0)))
    sigma = sigma if math.isfinite(sigma) else 0.0  # a start vector in the null space: the loop below still ends
    rounding = _gamma(max(w.shape)) * frobenius_sq
    for tries in range(20):  # delta up to 1e26: s > ||w||_F certifies unless G overflowed
        delta = 1e-12 * 100.0**tries
        s = sigma * (1 + delta) + delta * math.sqrt(frobenius_sq)
        if _psd_certified(s * s * np.eye(gram.shape[0]) - gram, rounding):
            return s
    raise FloatingPointError(f"spectral_norm_upper: no certified bound for a matrix with ||w||_F^2 = {frobenius_sq:.3g} "
                             "(overflow in float64?); rescale it")


def _psd_certified(a: np.ndarray, shift: float = 0.0) -> bool:
    """True only if a - shift I is positive semidefinite (a symmetric, in float64).

    Rump's test (Verification of positive definiteness, BIT 46, 2006; INTLAB's isspd): a floating-point
    Cholesky factorisation that succeeds on b = a - c I computes R^T R = b + E with |E_ij| <= gamma_{n+1} /
    (1 - gamma_{n+1}) sqrt(b_ii b_jj) (Demmel 1989), so ||E||_2 <= gamma_{n+1} / (1 - gamma_{n+1}) tr(a) and
    a >= (c - ||E||_2) I >= 0 once c exceeds that. c is doubled to absorb the rounding of forming a - c I, plus a
    tiny term for underflow, and the extra ``shift`` is added to it.
    """
    n = a.shape[0]
    trace = float(np.trace(a))
    if not np.all(np.isfinite(a)) or trace <= 0:
        return False
    c = 2 * (_gamma(n + 1) / (1 - _gamma(n + 1)) * trace + shift + 1e-290 * n)
    try:
        np.linalg.cholesky(a - c * np.eye(n))
    except np.linalg.LinAlgError:
        return False
    return True


def eclipse_fast_bound(net: Net) -> float:
    """ECLipsE-Fast (Xu & Sivaranjani 2024, Alg. 2, with slopes in [0, beta], which every activation here obeys).

    With m = beta / 2, X_0 = I and, for each hidden layer k (column-convention weights V_k = W_k^T),
        K_k = V_k X_{k-1}^{-1} V_k^T,   l_k = 1 / (2 m^2 lambda_max(K_k)),   X_k = l_k I - l_k^2 m^2 K_k,
    Lip(f)^2 <= lambda_max(V_L^T V_L X_{L-1}^{-1}) (generalised eigenvalue of (W_L W_L^T, X_{L-1})).
    Soundness, for increments dx_k of the inputs of layer k + 1 (dx_0 = dx) along any pair of inputs: the slope
    restriction gives every hidden layer q_k = beta dx_k.(V_k dx_{k-1}) - |dx_k|^2 >= 0 (LipSDP's quadratic
    constraint with multiplier 1/2 per unit). Maximising over dx_{k-1}, -u.X u + 2 b.u <= b.X^{-1} b (X > 0), so
        -dx_{k-1}.X_{k-1} dx_{k-1} + l_k q_k <= -dx_k.X_k dx_k,
    and chaining from X_0 = I: dx_{L-1}.X_{L-1} dx_{L-1} <= |dx|^2 - sum_k l_k q_k <= |dx|^2, whence
    |V_L dx_{L-1}|^2 <= lambda dx_{L-1}.X_{L-1} dx_{L-1} <= lambda |dx|^2. This l_k maximises
    lambda_min(X_k) = l_k / 2 > 0, which keeps every X_k well conditioned; a relative margin of 1e-9 per layer
    covers the float64 rounding.
    """
    if _constant(net):
        return 0.0
    from scipy.linalg import eigh

    m_sq = (net.slopes[1] / 2) ** 2
    x = np.eye(net.d)
    for w in net.weights[:-1]:
        k = w.T @ np.linalg.solve(x, w)
        k = (k + k.T) / 2
        top = float(np.linalg.eigvalsh(k)[-1])
        if top <= 0:
            return 0.0
        step = 1.0 / (2 * m_sq * top)
        x = step * np.eye(k.shape[0]) - step**2 * m_sq * k
        x = (x + x.T) / 2
    last = net.weights[-1] @ net.weights[-1].T
    lam = float(eigh(last, x, eigvals_only=True)[-1])
    return math.sqrt(max(lam, 0.0)) * (1 + 1e-9 * net.depth)


_FAILED = "failed: the solver's certificate did not verify in float64"


def _lipsdp_values(smalls: list[Net], sizes: tuple[int, ...], solver: str, required: bool, chunk: int):
    """(LipSDP bound or the reason there is none, barrier Newton steps or None) for each reduced network."""
    if solver in ("auto", "barrier"):
        return [(_FAILED if v is None else v, steps) for v, steps in lipsdp_barrier_bounds(smalls, sizes, chunk)]
    try:
        import cvxpy  # noqa: F401
    except ImportError:
        if required:
            raise ImportError(f"solver={solver!r} needs cvxpy: pip install 'lawrob[sdp]' "
                              "(or use solver='barrier')") from None
        return [("skipped: cvxpy is not installed", None)] * len(smalls)
    return [(_FAILED if (v := lipsdp_bound(small, solver)) is None else v, None) for small in smalls]


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
    """sqrt(verified rho) x scale for multipliers t (clipped at 0), or None when the verification fails."""
    multipliers = np.split(np.maximum(np.asarray(t, np.float64), 0.0), np.cumsum(scaled.widths)[:-1])
    rho = _verified_rho(scaled, multipliers)
    return None if rho is None else math.sqrt(rho) * scale


def lipsdp_bound(net: Net, solver: str = "SCS") -> float | None:
    """LipSDP-Neuron through cvxpy: min rho s.t. M(rho, T) <= 0 over diagonal T_k >= 0; Lip(f) <= sqrt(rho).

    Solved with ``solver`` ("CLARABEL" or "SCS") on the weights scaled to unit spectral norm (``_unit_norm``)
    with M <= -1e-7 I, then verified in float64 (``_verified_rho``). Returns None when the verification fails.
    """
    import cvxpy as cp

    if _constant(net):
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


def lipsdp_barrier_bounds(smalls: list[Net], sizes: tuple[int, ...], chunk: int = 8, *,
                          _dense: bool = False) -> list[tuple[float | None, int]]:
    """LipSDP-Neuron by the barrier method of ``_lipsdp_blocks`` for networks of one activation and depth, batched.

    Each network (reduced, so no wider than ``sizes`` = (d, hidden widths) of the architecture) is scaled to unit
    spectral norms, its inputs beyond the first layer's width eliminated (``_reduced``: same optimum), padded to
    a fixed shape (one compilation per architecture) and solved in one compiled call; its multipliers are then
    verified in float64 on the original network (``_certified``). Returns (bound or None when the verification
    fails, Newton steps) per network. A constant network is 0; a network without hidden layers, or with an
    affine activation (alpha = beta), is linear: LipSDP's infimum is then beta^(L-1) ||W_1 ... W_L||_2, not
    attained (the multipliers run off to infinity), and that value is returned, certified (``_linear_bound``).
    ``_dense``: the previous solver instead (``_lipsdp.solve_batch`` on the unreduced networks), for comparison.
    """
    out: list[tuple[float | None, int]] = [(0.0, 0) if _constant(n) else (None, 0) for n in smalls]
    solve = [i for i, n in enumerate(smalls) if not _constant(n)]
    if not solve:
        return out
    alpha, beta = smalls[solve[0]].slopes
    if smalls[solve[0]].depth == 1 or alpha == beta:
        for i in solve:
            out[i] = (_linear_bound(smalls[i]), 0)
        return out
    scaled = [_unit_norm(smalls[i]) for i in solve]
    solved = [net if _dense else _reduced(net) for net, _ in scaled]
    widths = sizes[1:]
    sizes = sizes if _dense else (min(sizes[0], sizes[1]),) + tuple(widths)
    solver = _lipsdp.solve_batch if _dense else _lipsdp_blocks.solve_batch
    with jax.enable_x64(True):
        shapes = [(sizes + (smalls[solve[0]].out,))[k : k + 2] for k in range(len(sizes))]
        weights = tuple(jnp.asarray(np.stack([_pad(net.weights[k], shape) for net in solved]))
                        for k, shape in enumerate(shapes))
        inp = jnp.asarray(np.stack([np.arange(sizes[0]) < net.d for net in solved]), jnp.float64)
        live = tuple(jnp.asarray(np.stack([np.arange(w) < net.widths[k] for net in solved]), jnp.float64)
                     for k, w in enumerate(widths))
        _, t, steps = solver(weights, inp, live, slopes=smalls[solve[0]].slopes, chunk=min(chunk, len(solve)),
                             rtol=_BARRIER_RTOL, max_steps=_BARRIER_MAX_STEPS)
    t, steps = np.asarray(t), np.asarray(steps)
    offsets = np.concatenate([[0], np.cumsum(widths)])
    for j, (i, (net, scale)) in enumerate(zip(solve, scaled)):
        real = np.concatenate([t[j, offsets[k] : offsets[k] + net.widths[k]] for k in range(len(widths))])
        out[i] = (_certified(net, scale, real), int(steps[j]))
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
    return Net((r,) + net.weights[1:], net.biases, net.activation)


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
    schur = base @ phi @ base.T
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


def _psd_certified_blocks(diag: list[np.ndarray], sub: list[np.ndarray], shift: float = 0.0) -> bool:
    """``_psd_certified`` for the symmetric block-tridiagonal matrix with these diagonal and subdiagonal blocks.

    The factorisation is the Cholesky factorisation of the whole matrix, done block by block (L_kk L_kk^T =
    A_kk - c I - L_k,k-1 L_k,k-1^T, L_k,k-1 = A_k,k-1 L_k-1,k-1^-T: the blocks off the band of L are exact zeros),
    so Demmel's bound on its backward error, which holds for every order of evaluating the inner products, and
    hence Rump's shift c are those of the dense test with n = the total size and tr(a) = the total trace.
    """
    from scipy import linalg as scipy_linalg

    n = sum(block.shape[0] for block in diag)
    trace = sum(float(np.trace(block)) for block in diag)
    if not all(np.all(np.isfinite(block)) for block in diag + sub) or trace <= 0:
        return False
    c = 2 * (_gamma(n + 1) / (1 - _gamma(n + 1)) * trace + shift + 1e-290 * n)
    try:
        factor = np.linalg.cholesky(diag[0] - c * np.eye(diag[0].shape[0]))
        for block, coupling in zip(diag[1:], sub):
            off = scipy_linalg.solve_triangular(factor, coupling.T, lower=True, check_finite=False).T
            factor = np.linalg.cholesky(block - c * np.eye(block.shape[0]) - off @ off.T)
    except np.linalg.LinAlgError:
        return False
    return bool(np.all(np.isfinite(factor)))


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


register_upper("product", product_bound, tightness=20)
register_upper("eclipse_fast", eclipse_fast_bound, tightness=10)
register_upper("lipsdp", bounds=_lipsdp_bounds, affordable=lambda net, sdp_max_dim: _sdp_dim(net) <= sdp_max_dim,
               tightness=0)
