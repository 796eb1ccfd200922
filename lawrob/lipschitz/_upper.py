"""Sound upper bounds on the l2 Lipschitz constant of an MLP with slope-restricted activations.

Every activation s of ``nets.ACTIVATIONS`` is slope-restricted, alpha <= (s(a) - s(b)) / (a - b) <= beta with
0 <= alpha <= beta. Three bounds, all computed in float64 on the masked weights (pruned weights are zeros) of
the network without its dead units (``reduce``: same function):

- "product": beta^(L-1) prod_k ||W_k||_2, each norm certified from above (power iteration, then a Cholesky
  proof that s^2 I - W^T W is positive semidefinite).
- "eclipse_fast": the closed-form sequential certificate of ECLipsE-Fast (Xu & Sivaranjani, NeurIPS 2024).
- "lipsdp": LipSDP-Neuron (Fazlyab, Robey, Hassani, Morari & Pappas, NeurIPS 2019, Thm 2) solved by the
  barrier method of ``_lipsdp_blocks`` (JAX, block tridiagonal, batched over networks) or with cvxpy (Clarabel
  or SCS); the solver's multipliers are then verified in float64, block by block (``_lipsdp_bound``).
"best" takes the smallest of those affordable at the network's size (LipSDP while its matrix has at most
``sdp_max_dim`` rows); the minimum of sound bounds is sound.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from lawrob import _batching, _checks, nets
from lawrob.lipschitz._lipsdp_bound import lipsdp_values, resolved_solver
from lawrob.lipschitz._network import Bound, Net, batch_size, drop_unused_inputs, is_constant, prepare, reduce
from lawrob.lipschitz._psd import spectral_norm_upper

SDP_SOLVERS = ("auto", "barrier", "primal_dual", "CLARABEL", "SCS")
# LipSDP's matrix has N = d + (hidden units) rows. Rule: "best" runs LipSDP while N <= 300, where the block
# barrier solver (``_lipsdp_blocks``) takes at most about 0.8 s a network, as the dense one did at N <= 150-230.
# Measured warm on 2 cores, quiet machine (benchmarks/RESULTS.md, "LipSDP at scale"): 0.02-0.06 s at N = 66-106,
# 0.36 s at N = 270 (200-100-1), 0.78 s at N = 300 (100-100-100-1), 1.7 s at N = 1040 (784-256-10); the dense
# solver 1.1-1.7 s at N = 270-300 and 15.9 s at N = 1040; cvxpy/Clarabel 2-24 s at N = 66-106.
DEFAULT_SDP_MAX_DIM = 300


def upper(
    params: Any, mask: Any = None, *, model: nets.MLP | None = None, method: str = "best", solver: str = "auto",
    sdp_max_dim: int = DEFAULT_SDP_MAX_DIM,
) -> Bound:
    """A sound upper bound on the global l2 Lipschitz constant (valid on any domain).

    ``model``: the ``nets.MLP`` (its activation's slope bounds are used; None means ReLU). ``method``: "best"
    (default), "product", "eclipse_fast" or "lipsdp". ``solver`` for LipSDP: "barrier" (``_lipsdp_blocks``:
    a primal barrier method in JAX, float64, no SDP library needed), "primal_dual" (``_lipsdp_pd``: a primal-dual
    interior-point method in JAX, 4-5x fewer iterations, each dearer), cvxpy's "CLARABEL" or "SCS" (the "sdp"
    extra), or "auto" (the barrier method up to 1000 rows of the reduced LipSDP matrix, min(d, n_1) + hidden
    units, the primal-dual one above); the float64 verification of the multipliers makes every solver sound, a
    looser solve only costs tightness. ``sdp_max_dim``: "best" runs LipSDP only while N = d + hidden units
    (after dropping dead units and unused inputs) is at most this. ``details`` holds every value computed (a LipSDP whose
    certificate fails verification is reported, not used), N as sdp_dim and the barrier's Newton steps (or the
    primal-dual method's iterations).

    Parameters
    ----------
    params : Any
        The parameters (a sequence of layer dicts).
    mask : Any, optional
        A 0/1 mask (None: dense).
    model : nets.MLP, optional
        The network (its activation).
    method : str
        "best" or a name of ``upper_methods()``.
    solver : str
        The LipSDP solver: "auto", "barrier", "primal_dual", "CLARABEL" or "SCS".
    sdp_max_dim : int
        The largest N for which "best" runs LipSDP.

    Returns
    -------
    Bound
        The sound upper bound (``kind="upper"``).

    Raises
    ------
    ValueError
        If ``method`` or ``solver`` is unknown or the arguments do not fit together.
    ImportError
        If a method asked for by name needs a missing extra.

    References
    ----------
    M. Fazlyab et al., LipSDP, NeurIPS 2019; Y. Xu and S. Sivaranjani, ECLipsE, NeurIPS 2024.
    """
    start = time.perf_counter()
    net = prepare(params, mask, model)
    bound, = _upper_bounds([net], method, solver, sdp_max_dim, chunk=1)
    return dataclasses.replace(bound, seconds=time.perf_counter() - start)


def upper_batch(
    params: Any, mask: Any = None, *, model: nets.MLP | None = None, method: str = "best", solver: str = "auto",
    sdp_max_dim: int = DEFAULT_SDP_MAX_DIM, chunk: int | None = None,
) -> list[Bound]:
    """``upper`` for B networks of one architecture: params (and mask) carry a leading axis of size B.

    The barrier method runs as one compiled call over all of them (``jax.lax.map`` over chunks of ``chunk``,
    ``vmap`` within); every value equals ``upper`` on that network up to float64 rounding. Each Bound's seconds
    is its share of the total. ``chunk`` None: ``_batching.DEFAULT_CHUNKS["lipsdp"]`` for the backend (1 on the
    CPU, where a chunk of 8 ran 1.45x slower: a vmapped while loop runs every network for the slowest one's
    steps, and batched linear algebra is slower there; 8 on an accelerator).

    Parameters
    ----------
    params : Any
        Stacked parameters, leading axis B.
    mask : Any, optional
        Stacked masks (None: dense).
    model : nets.MLP, optional
        The network (its activation).
    method : str
        As in ``upper``.
    solver : str
        As in ``upper``.
    sdp_max_dim : int
        As in ``upper``.
    chunk : int | None
        Networks per vmap (None: the backend's default).

    Returns
    -------
    list of Bound
        One bound per network.

    Raises
    ------
    ValueError
        As ``upper``, or if the leading axes differ.
    """
    start = time.perf_counter()
    chunk = _checks.positive_int("chunk", chunk) if chunk is not None else (
        _batching.default_chunk(_batching.DEFAULT_CHUNKS["lipsdp"]) or 8)
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
    method was asked for by name (``required``: then a missing dependency is an error, not a skip).

    Parameters
    ----------
    solver : str
        The LipSDP solver.
    chunk : int
        The batch chunk.
    sizes : tuple of int
        The architecture before dead units were dropped.
    required : bool
        Whether the method was asked for by name.
    """

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

    Parameters
    ----------
    name : str
        The method's name.
    bounds : callable
        (nets, context) -> one (value or reason, details) per network.
    affordable : callable
        (net, sdp_max_dim) -> whether "best" runs it.
    tightness : float
        Its place in the order from the tightest.

    References
    ----------
    M. Fazlyab et al., *Efficient and accurate estimation of Lipschitz constants for deep neural networks*
    (LipSDP), NeurIPS 2019; Y. Xu and S. Sivaranjani, *ECLipsE: Efficient compositional Lipschitz constant
    estimation for deep neural networks*, NeurIPS 2024.
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
    as a certified upper bound as it is. ``tightness``: see ``UpperMethod``.

    Parameters
    ----------
    name : str
        The method's name, an identifier other than "best".
    per_network : callable, optional
        net -> a sound bound for one ``Net``.
    bounds : callable, optional
        The batched form of ``UpperMethod.bounds``.
    affordable : callable, optional
        (net, sdp_max_dim) -> whether "best" runs it (default: always).
    tightness : float
        See ``UpperMethod``.
    replace : bool
        Allow replacing a registered method.

    Returns
    -------
    UpperMethod
        The registered method.

    Raises
    ------
    ValueError
        If ``name`` is invalid or taken (without ``replace``), or not exactly one of ``per_network`` and ``bounds``
        is given.
    """
    if not isinstance(name, str) or not name.isidentifier() or name == "best":
        raise ValueError(f"name must be an identifier-like string other than 'best', got {name!r}")
    if name in UPPER_METHODS and not replace:
        raise ValueError(f"name {name!r} is already an upper-bound method; pass replace=True to overwrite it")
    if (per_network is None) == (bounds is None):
        raise ValueError("give exactly one of per_network and bounds")
    if per_network is not None:
        bounds = lambda nets, context: [(float(per_network(net)), {}) for net in nets]  # noqa: E731
    # bounds is set here: exactly one of per_network and bounds was given
    method = UpperMethod(name, bounds, affordable or UpperMethod.affordable, float(tightness))  # type: ignore[arg-type]
    UPPER_METHODS[name] = method
    return method


def upper_methods() -> tuple[str, ...]:
    """The names ``upper`` accepts: "best" and every registered method.

    Returns
    -------
    tuple of str
        "best" and the registered methods' names.
    """
    return ("best", *UPPER_METHODS)


def uniform_method(net: Net, sdp_max_dim: int = DEFAULT_SDP_MAX_DIM) -> str:
    """The one upper-bound method for a family of networks whose largest is ``net``: the tightest registered
    method (least ``tightness``, then registration order) that "best" would afford on it. A sweep certifies
    every run of a grid with it, so that no fit mixes certificate types (smaller networks are cheaper).

    Parameters
    ----------
    net : Net
        The largest network of the family.
    sdp_max_dim : int
        As in ``upper``.

    Returns
    -------
    str
        The method's name.
    """
    sdp_max_dim = _checks.positive_int("sdp_max_dim", sdp_max_dim)
    affordable = [m for m in UPPER_METHODS.values() if m.affordable(net, sdp_max_dim)]
    if not affordable:
        raise ValueError(f"no registered upper-bound method is affordable at d + hidden units = {_sdp_dim(net)}")
    return min(affordable, key=lambda m: m.tightness).name


def _sdp_dim(net: Net) -> int:
    return net.d + sum(net.widths)


def _lipsdp_bounds(nets: list[Net], context: UpperContext) -> list[tuple[float | str, dict]]:
    found = lipsdp_values(nets, context.sizes, context.solver, context.required, context.chunk)
    primal_dual = resolved_solver(context.solver, context.sizes) == "primal_dual"
    key = "primal_dual_iterations" if primal_dual else "barrier_steps"
    return [(value, {} if steps is None else {key: steps}) for value, steps in found]


def _upper_bounds(nets: list[Net], method: str, solver: str, sdp_max_dim: int, chunk: int) -> list[Bound]:
    """Each registered method asked for (all affordable ones for "best") on the reduced networks; the bound is
    the smallest value found."""
    _checks.one_of("method", method, upper_methods())
    _checks.one_of("solver", solver, SDP_SOLVERS)
    sdp_max_dim = _checks.positive_int("sdp_max_dim", sdp_max_dim)
    smalls = [drop_unused_inputs(reduce(net))[0] for net in nets]
    context = UpperContext(solver, chunk, (nets[0].d,) + nets[0].widths, required=method != "best")
    values: list[dict[str, float | str]] = [{} for _ in nets]
    value: Any  # a method's value in the first loop, a run's dict of them in the second
    chosen: Any
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
        chosen = min(numbers, key=numbers.get)  # type: ignore[arg-type]  # typeshed: dict.get overloads as a key
        bounds.append(Bound(numbers[chosen], "upper", chosen, details=dict(value, sdp_dim=_sdp_dim(small))))
    return bounds


def product_bound(net: Net) -> float:
    """beta^(L-1) prod_k ||W_k||_2: f is a composition of the maps x -> x W_k + b_k and of beta-Lipschitz s."""
    if is_constant(net):
        return 0.0
    beta = net.slopes[1]
    return beta ** (net.depth - 1) * math.prod(spectral_norm_upper(w) for w in net.weights)


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
    if is_constant(net):
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


register_upper("product", product_bound, tightness=20)
register_upper("eclipse_fast", eclipse_fast_bound, tightness=10)
register_upper("lipsdp", bounds=_lipsdp_bounds, affordable=lambda net, sdp_max_dim: _sdp_dim(net) <= sdp_max_dim,
               tightness=0)
