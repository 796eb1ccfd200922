"""Shared pieces: the ``Bound`` record, argument handling and the masked network in float64 NumPy.

A network is handled here as ``Net``: the masked weights ``W_k`` ([fan_in, fan_out], so a layer maps a row
vector ``h -> h @ W_k + b_k``) and biases in float64, plus the activation's name. Every Lipschitz constant is
the l2 -> l2 one, ``Lip(f) = sup_x ||J_f(x)||_2`` (operator norm of the Jacobian; the gradient norm for one
output), global over R^d unless a box ``domain`` is given.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks, nets

KINDS = ("lower", "upper", "exact")
# Activations with two linear pieces, slope alpha below 0 and 1 above (identity: alpha = 1, one piece).
PIECEWISE_LINEAR = ("relu", "leaky_relu", "identity")
_U = float(np.finfo(np.float64).eps) / 2  # unit roundoff of float64


@dataclasses.dataclass(frozen=True, eq=False)
class Bound:
    """A bound on the l2 Lipschitz constant of one network.

    ``kind``: "lower" (certified: ``value`` is the exact network's Jacobian norm at ``witness``, where the
    network is affine on a ball around it), "upper" (sound) or "exact". ``witness``: the input point that
    attains ``value`` (lower and exact bounds), else None. ``seconds``: wall time spent. ``details``: what the
    method wants to report (regions visited, LPs solved, the values of the methods "best" compared, ...).

    Parameters
    ----------
    value : float
        The bound.
    kind : str
        "lower", "upper" or "exact".
    method : str
        The method that computed it.
    norm : str
        The norm ("l2").
    seconds : float
        Wall time spent.
    witness : numpy.ndarray, optional
        The input point attaining ``value``.
    details : Mapping
        What the method reports.
    """

    value: float
    kind: str
    method: str
    norm: str = "l2"
    seconds: float = 0.0
    witness: np.ndarray | None = None
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        _checks.one_of("kind", self.kind, KINDS)

    def __float__(self) -> float:
        return float(self.value)


class _Layers:
    """The layer sizes of a network held as ``weights`` ([fan_in, fan_out] matrices, input layer first): shared by
    ``Net`` (NumPy, float64) and the search's ``_search_net._JaxNet`` (JAX)."""

    weights: tuple

    @property
    def depth(self) -> int:
        return len(self.weights)

    @property
    def d(self) -> int:
        return self.weights[0].shape[0]

    @property
    def out(self) -> int:
        return self.weights[-1].shape[1]

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden widths."""
        return tuple(w.shape[1] for w in self.weights[:-1])


@dataclasses.dataclass(frozen=True, eq=False)
class Net(_Layers):
    """A masked MLP in float64: ``weights[k]`` is [fan_in, fan_out], ``biases[k]`` is [fan_out].

    ``depth``, ``d`` (inputs), ``out`` (outputs) and ``widths`` (hidden widths) are read off the weights.

    Parameters
    ----------
    weights : tuple of numpy.ndarray
        The masked weight matrices.
    biases : tuple of numpy.ndarray
        The biases.
    activation : str
        The activation's name.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str

    @property
    def slopes(self) -> tuple[float, float]:
        """(alpha, beta): alpha <= (s(a) - s(b)) / (a - b) <= beta."""
        return nets.ACTIVATIONS[self.activation][1:]

    @property
    def piecewise_linear(self) -> bool:
        return self.activation in PIECEWISE_LINEAR

    def act(self, z: np.ndarray) -> np.ndarray:
        """The activation in float64: in NumPy for the piecewise-linear ones (s(z) = z for z > 0, alpha z below:
        exact in floating point), else with the same JAX function ``nets.MLP`` uses."""
        if self.piecewise_linear:
            z, alpha = np.asarray(z, np.float64), self.slopes[0]
            return np.maximum(z, 0.0) if alpha == 0 else np.where(z > 0, z, alpha * z)
        with jax.enable_x64(True):
            return np.asarray(nets.ACTIVATIONS[self.activation][0](jnp.asarray(z, jnp.float64)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, np.float64)
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if k < self.depth - 1:
                h = self.act(h)
        return h


def infer_model(params) -> nets.MLP:
    """The ReLU MLP whose shapes ``params`` have (what every function here assumes when ``model`` is None)."""
    if not isinstance(params, (tuple, list)) or not params:
        raise TypeError(f"params must be a non-empty sequence of layer dicts, got {type(params).__name__}")
    for i, layer in enumerate(params):
        if not isinstance(layer, dict) or "w" not in layer or np.ndim(layer["w"]) != 2:
            raise ValueError(f"params[{i}] must be a dict with a 2-d 'w' entry")
    sizes = (np.shape(params[0]["w"])[0],) + tuple(np.shape(layer["w"])[1] for layer in params)
    return nets.MLP(sizes, activation="relu", bias="b" in params[0])


def prepare(params: Any, mask: Any, model: nets.MLP | None) -> Net:
    """Check the arguments and return the masked network in float64.

    ``model`` supplies the activation (params do not carry it); None means a ReLU MLP of the params' shapes.
    ``mask`` None means dense; jaxpruner's format (uint8/bool, None leaves unpruned) is read by ``nets.as_mask``.
    The masked weights must be small enough for float64 arithmetic: a ValueError
    naming ``params`` is raised when prod_k ||W_k||_F (an upper bound on Lip(f)) overflows float64.

    Parameters
    ----------
    params : Any
        The parameters.
    mask : Any
        A 0/1 mask, or None (dense).
    model : nets.MLP or None
        The network (None: ReLU).

    Returns
    -------
    Net
        The masked network in float64.

    Raises
    ------
    ValueError
        If the arguments do not fit together or the weights overflow float64.
    """
    if model is None:
        model = infer_model(params)
    elif not isinstance(model, nets.MLP):
        raise TypeError(f"model must be a lawrob.nets.MLP or None, got {type(model).__name__}")
    nets.check_params(model, params)
    if mask is not None:
        mask = nets.as_mask(mask, params)
        nets.check_mask(params, mask)
    weights, biases = [], []
    for k, layer in enumerate(params):
        m = mask[k] if mask is not None else {}
        w = np.asarray(layer["w"], np.float64) * np.asarray(m.get("w", 1.0), np.float64)
        b = np.asarray(layer["b"], np.float64) * np.asarray(m.get("b", 1.0), np.float64) if "b" in layer else None
        weights.append(w)
        biases.append(np.zeros(w.shape[1]) if b is None else b)
    _check_overflow(weights)
    return Net(tuple(weights), tuple(biases), model.activation)


def _check_overflow(weights) -> None:
    """Raise unless every ||W_k||_F^2 and the product of the ||W_k||_F are finite in float64."""
    with np.errstate(over="ignore"):
        squares = [float(np.sum(w * w)) for w in weights]
    product = math.prod(math.sqrt(s) for s in squares)
    if not all(map(math.isfinite, squares)) or not math.isfinite(product):
        raise ValueError(f"params are too large for float64: the product of the layers' Frobenius norms "
                         f"{[f'{math.sqrt(s):.3g}' for s in squares]} overflows (max |w| = "
                         f"{max(float(np.max(np.abs(w), initial=0.0)) for w in weights):.3g}); rescale the network")


def reduce(net: Net) -> Net:
    """The same function with fewer hidden units: drop units that cannot change the output.

    A hidden unit whose incoming weights are all zero outputs the constant s(b_j): it is folded into the next
    layer's bias. A unit whose outgoing weights are all zero never reaches the output: it is dropped. Repeated
    until nothing changes (dropping one unit can make others constant or unused). A hidden layer may end up
    with width 0, which makes the network constant. ``net``: a ``Net`` (from ``prepare``).

    Parameters
    ----------
    net : Net
        The network.

    Returns
    -------
    Net
        The same function without constant or unused hidden units.
    """
    if not isinstance(net, Net):
        raise TypeError(f"net must be a lawrob.lipschitz.Net (from prepare), got {type(net).__name__}")
    weights, biases = list(net.weights), list(net.biases)
    changed = True
    while changed:
        changed = False
        for k in range(net.depth - 1):
            constant = ~np.any(weights[k] != 0, axis=0)
            unused = ~np.any(weights[k + 1] != 0, axis=1)
            drop = constant | unused
            if not drop.any():
                continue
            value = net.act(biases[k][constant])
            biases[k + 1] = biases[k + 1] + value @ weights[k + 1][constant]
            keep = ~drop
            weights[k], biases[k], weights[k + 1] = weights[k][:, keep], biases[k][keep], weights[k + 1][keep]
            changed = True
    return Net(tuple(weights), tuple(biases), net.activation)


def drop_unused_inputs(net: Net) -> tuple[Net, np.ndarray]:
    """The network on the inputs that have an outgoing weight (f does not depend on the others), and their indices."""
    used = np.flatnonzero(np.any(net.weights[0] != 0, axis=1))
    return Net((net.weights[0][used],) + net.weights[1:], net.biases, net.activation), used


def batch_size(params, mask=None) -> int:
    """The size B of the leading batch axis every leaf of ``params`` carries; ``mask`` (if given) must carry the same."""
    def size(name, tree):
        sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in jax.tree.leaves(tree)}
        if len(sizes) != 1 or None in sizes:
            raise ValueError(f"{name} must carry one leading batch axis of the same size on every leaf, got sizes {sizes}")
        return sizes.pop()

    b = size("params", params)
    if mask is not None and (masks := size("mask", mask)) != b:
        raise ValueError(f"mask must carry the batch axis of params: got {masks} masks for {b} networks")
    return b


def check_domain(domain, d: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``domain``: None (all of R^d) or a box ``(low, high)`` of scalars or length-d arrays with low < high."""
    if domain is None:
        return None
    if not isinstance(domain, (tuple, list)) or len(domain) != 2:
        raise TypeError(f"domain must be None or a pair (low, high), got {domain!r}")
    box = []
    for i, value in enumerate(domain):
        array = _checks.finite_array(f"domain[{i}]", value)
        if array.ndim > 1 or array.size not in (1, d):
            raise ValueError(f"domain[{i}] must be a scalar or a vector of length d = {d}, got shape {array.shape}")
        box.append(np.broadcast_to(array.reshape(-1), (d,)).astype(np.float64))
    if not np.all(box[0] < box[1]):
        raise ValueError("domain must have low < high in every coordinate")
    return box[0], box[1]


def check_points(points, d: int, name: str = "points") -> np.ndarray:
    """A [n, d] float64 array of finite points (one point [d] is accepted too)."""
    array = _checks.finite_array(name, points)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != d or array.shape[0] == 0:
        raise ValueError(f"{name} must have shape [n, {d}] with n >= 1, got {np.shape(points)}")
    return array


def jacobian_norm(j: np.ndarray) -> float:
    """||J||_2, the largest singular value (the vector norm for one output; 0 for an empty J)."""
    if j.size == 0:
        return 0.0
    return float(np.linalg.norm(j) if min(j.shape) == 1 else np.linalg.norm(j, 2))


def certify(net: Net, x: np.ndarray) -> tuple[float, float]:
    """(||J_f(x)||_2, certified) for one point ``x``, in float64.

    For a piecewise-linear activation the value is a certified lower bound on Lip(f) only when ``x`` lies
    strictly inside a linear region: every hidden pre-activation z_j whose gradient is not zero must have a
    sign that rounding cannot flip, |z_j| > 2 e_j, with e_j the a-priori forward error bound of the dot products
    (Higham, Accuracy and Stability of Numerical Algorithms, Sec. 3.1: |fl(w.h) - w.h| <= gamma_n |w|.|h|,
    gamma_n = n u / (1 - n u), propagated through the layers). Then the pattern, hence f, is constant (affine)
    on a ball around x, and Lip(f) >= ||J_f(x)||_2 (up to the rounding of J's entries). For smooth activations
    f is C^1 and every x certifies.
    """
    alpha = net.slopes[0]
    kinked = net.piecewise_linear and alpha != 1.0
    h, jac, err = x.astype(np.float64), np.eye(net.d), np.zeros(net.d)
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        z, jz = h @ w + b, jac @ w
        if k == net.depth - 1:
            return jacobian_norm(jz), True
        gamma = _gamma(w.shape[0] + 1)
        err = np.abs(w).T @ err + gamma * (np.abs(h) @ np.abs(w) + np.abs(b)) + _U * np.abs(z)
        if kinked:
            moving = np.any(jz != 0, axis=0)
            if np.any(moving & (np.abs(z) <= 2 * err)):
                return jacobian_norm(_finish(net, k, z, jz)), False
            slope = np.where(z > 0, 1.0, alpha)
        else:
            slope = _derivative(net, z)
        h, jac = net.act(z), jz * slope
    raise AssertionError("unreachable: the loop returns at the output layer")


def _finish(net: Net, k: int, z: np.ndarray, jz: np.ndarray) -> np.ndarray:
    """The Jacobian continued from layer k with the convention s'(0) = alpha (used only to report a value)."""
    alpha = net.slopes[0]
    h, jac = net.act(z), jz * np.where(z > 0, 1.0, alpha)
    for w, b in zip(net.weights[k + 1 : -1], net.biases[k + 1 : -1]):
        z, jz = h @ w + b, jac @ w
        h, jac = net.act(z), jz * np.where(z > 0, 1.0, alpha)
    return jac @ net.weights[-1]


def _derivative(net: Net, z: np.ndarray) -> np.ndarray:
    with jax.enable_x64(True):
        act = nets.ACTIVATIONS[net.activation][0]
        return np.asarray(jax.vmap(jax.grad(act))(jnp.asarray(z, jnp.float64)))


def _gamma(n: int) -> float:
    """gamma_n = n u / (1 - n u) (Higham, Accuracy and Stability, Lemma 3.1): the float64 rounding-error factor
    of an n-term sum or dot product; the one definition, shared with ``_upper``."""
    return n * _U / (1 - n * _U)


def region_bound(net: Net) -> int:
    """Upper bound on the number of linear regions of a ReLU-type network (after ``reduce``).

    Serra, Tjandraatmadja & Ramalingam (ICML 2018, Thm 1 in its product form, also Montufar et al. 2017):
    within one region of the layers below, layer l's n_l hyperplanes live in an image space of dimension at most
    d_l = min(d, n_1, ..., n_{l-1}), so they cut it into at most sum_{j <= d_l} C(n_l, j) pieces (Zaslavsky);
    hence #regions <= prod_l sum_{j=0}^{d_l} C(n_l, j). Here d is the rank of the first masked weight matrix.
    """
    if net.depth == 1 or not net.piecewise_linear or net.activation == "identity":
        return 1
    dim = int(np.linalg.matrix_rank(net.weights[0])) if net.weights[0].size else 0
    total = 1
    for width in net.widths:
        total *= sum(math.comb(width, j) for j in range(min(dim, width) + 1))
        dim = min(dim, width)
    return total


def is_constant(net: Net) -> bool:
    """True when the reduced network computes a constant (no input left or a hidden layer emptied)."""
    return net.d == 0 or 0 in net.widths or net.out == 0
