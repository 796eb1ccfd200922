"""Sparse multilayer perceptrons as plain pytrees.

Parameters are a tuple with one dict per affine layer, ``{"w": [fan_in, fan_out], "b": [fan_out]}``
(``"b"`` absent when ``bias=False``). A mask is a pytree of the same structure holding 0/1 in the
parameters' dtype; biases are kept (mask 1) unless pruning them is asked for. ``apply`` multiplies the
parameters by the mask, so a masked network is exactly the network with those weights set to zero.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks
from lawrob._nets_masks import (
    Mask, Params, _shapes_of, apply_mask, as_mask, check_layers, check_mask, count_params, dense_mask, weight_leaves)

__all__ = [
    "ACTIVATIONS", "INITS", "MLP", "Mask", "ParametrizationConstants", "Params", "apply_mask", "as_mask",
    "check_layers", "check_mask", "check_params", "count_active", "count_params", "dense_mask", "from_equinox",
    "from_flax", "param_shapes", "parametrization_constants", "to_equinox", "to_flax", "to_jaxpruner_mask",
    "weight_leaves",
]

# name -> (function, slope lower bound alpha, slope upper bound beta): every activation is
# slope-restricted, alpha <= (s(a) - s(b)) / (a - b) <= beta <= 1, as LipSDP needs.
ACTIVATIONS: dict[str, tuple[Any, float, float]] = {
    "relu": (jax.nn.relu, 0.0, 1.0),
    "leaky_relu": (lambda x: jax.nn.leaky_relu(x, 0.01), 0.01, 1.0),
    "tanh": (jnp.tanh, 0.0, 1.0),
    "softplus": (jax.nn.softplus, 0.0, 1.0),
    "sigmoid": (jax.nn.sigmoid, 0.0, 0.25),
    "identity": (lambda x: x, 1.0, 1.0),
}

INITS = ("torch", "he_normal", "lecun_normal", "glorot_uniform")


@dataclasses.dataclass(frozen=True)
class MLP:
    """A fully connected network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    ``activation`` is applied after every hidden layer (never after the output layer) and is one of
    ``ACTIVATIONS``: all are 1-Lipschitz, as Bubeck & Sellke (Section 3) assume.
    ``init``: ``"torch"`` (PyTorch's default: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as in the
    Synaptic-Flow code NFP used), ``"he_normal"`` (N(0, 2/fan_in), zero bias), ``"lecun_normal"``
    (N(0, 1/fan_in), zero bias) or ``"glorot_uniform"`` (zero bias).
    The dataclass is frozen and hashable, so it can be a static argument of ``jax.jit``.

    Parameters
    ----------
    sizes : tuple of int
        The layer widths, input dimension first and output dimension last.
    activation : str
        One of ``ACTIVATIONS``.
    bias : bool
        Whether the layers have biases.
    init_scheme : str
        One of ``INITS``, the scheme of ``init``.

    Raises
    ------
    ValueError
        If a size is not a positive integer, there are fewer than two, or ``activation``/``init_scheme`` is unknown.

    References
    ----------
    Bubeck & Sellke, Section 3 (1-Lipschitz activations).
    """

    sizes: tuple[int, ...]
    activation: str = "relu"
    bias: bool = True
    init_scheme: str = "torch"

    def __post_init__(self):
        if isinstance(self.sizes, (str, bytes)) or not hasattr(self.sizes, "__iter__"):
            raise TypeError(f"sizes must be a sequence of layer widths, got {self.sizes!r}")
        sizes = tuple(_checks.positive_int("sizes[i]", s) for s in self.sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must name at least an input and an output width, got {sizes}")
        object.__setattr__(self, "sizes", sizes)
        _checks.one_of("activation", self.activation, ACTIVATIONS)
        _checks.boolean("bias", self.bias)
        _checks.one_of("init_scheme", self.init_scheme, INITS)

    @property
    def depth(self) -> int:
        """Number of affine layers D."""
        return len(self.sizes) - 1

    @property
    def d(self) -> int:
        return self.sizes[0]

    @property
    def num_params(self) -> int:
        """p: all weights plus, when present, all biases."""
        return sum(a * b + (b if self.bias else 0) for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def num_weights(self) -> int:
        return sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def init(self, key: jax.Array, dtype: jnp.dtype | type = jnp.float32) -> Params:
        """Draw parameters from ``key`` (a ``jax.random.key``) with the configured scheme (the same key gives the
        same params). ``dtype``: float32 or float64."""
        _checks.prng_key("key", key)
        if str(np.dtype(dtype)) not in _checks.FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        layers = []
        for key_l, fan_in, fan_out in zip(jax.random.split(key, self.depth), self.sizes[:-1], self.sizes[1:]):
            key_w, key_b = jax.random.split(key_l)
            shape = (fan_in, fan_out)
            if self.init_scheme == "torch":
                bound = 1.0 / math.sqrt(fan_in)
                w = jax.random.uniform(key_w, shape, dtype, -bound, bound)
                b = jax.random.uniform(key_b, (fan_out,), dtype, -bound, bound)
            elif self.init_scheme == "glorot_uniform":
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                w = jax.random.uniform(key_w, shape, dtype, -bound, bound)
                b = jnp.zeros((fan_out,), dtype)
            else:
                variance = (2.0 if self.init_scheme == "he_normal" else 1.0) / fan_in
                w = math.sqrt(variance) * jax.random.normal(key_w, shape, dtype)
                b = jnp.zeros((fan_out,), dtype)
            layers.append({"w": w, "b": b} if self.bias else {"w": w})
        return tuple(layers)

    def apply(self, params: Params, x: jax.Array, mask: Mask | None = None) -> jax.Array:
        """f(x) for x of shape [..., d]; returns [..., sizes[-1]]. With a mask, weights are multiplied by it.

        ``params`` must have the model's layer shapes (leading batch axes allowed) and ``mask`` their structure;
        only shapes are checked, so this works under jit/vmap."""
        check_layers("params", params, self.sizes)
        if not hasattr(x, "shape") or not jnp.issubdtype(x.dtype, jnp.number):
            raise TypeError(f"x must be a numeric array of shape [..., {self.d}], got {type(x).__name__}")
        if x.shape[-1:] != (self.d,):
            raise ValueError(f"x must have shape [..., {self.d}] for this model, got {x.shape}")
        if mask is not None:
            params = apply_mask(params, mask)
        act = ACTIVATIONS[self.activation][0]
        h = x
        for i, layer in enumerate(params):
            h = h @ layer["w"]
            if "b" in layer:
                h = h + layer["b"]
            if i < len(params) - 1:
                h = act(h)
        return h

    def scalar(self, params: Params, x: jax.Array, mask: Mask | None = None) -> jax.Array:
        """f(x) for a network with one output, shape [...]."""
        if self.sizes[-1] != 1:
            raise ValueError(f"scalar() needs an output width of 1, the network has {self.sizes[-1]}")
        return self.apply(params, x, mask)[..., 0]


def count_active(mask: Mask, include_biases: bool = False, *, model: MLP | None = None) -> int:
    """Number of unmasked weights ||m||_1 (biases counted too when ``include_biases``).

    ``mask``: a 0/1 mask (a sequence of layer dicts whose shapes chain); with ``model`` it must also have exactly
    that model's layers and shapes.

    Parameters
    ----------
    mask : Mask
        A 0/1 mask.
    include_biases : bool
        Count the bias entries too.
    model : MLP, optional
        The network the mask must fit exactly.

    Returns
    -------
    int
        ||m||_1.

    Raises
    ------
    ValueError
        If ``mask`` is not a 0/1 mask (of ``model``).
    """
    if model is not None:
        if not isinstance(model, MLP):
            raise TypeError(f"model must be a lawrob.nets.MLP or None, got {type(model).__name__}")
        mask = as_mask(mask, param_shapes(model))
        _checks.same_tree("mask", mask, param_shapes(model), f"the parameters of {model}")
    else:
        mask = as_mask(mask, _shapes_of(mask))
    check_layers("mask", mask)
    check_mask(mask, mask)
    leaves = jax.tree.leaves(mask) if include_biases else weight_leaves(mask)
    return int(sum(int(np.count_nonzero(np.asarray(m))) for m in leaves))


def check_params(model: MLP, params: Params, name: str = "params") -> None:
    """Raise unless ``params`` fit ``model`` (one dict per layer with the right shapes) and are finite
    (finiteness is checked only on concrete values, so this also works under jit/vmap).

    Parameters
    ----------
    model : MLP
        The network the parameters must fit.
    params : Params
        The parameters to check.
    name : str
        The argument's name in error messages.

    Raises
    ------
    TypeError
        If ``params`` is not a sequence of layer dicts.
    ValueError
        If a shape differs from ``model``'s or a concrete value is not finite.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a lawrob.nets.MLP, got {type(model).__name__}")
    if not isinstance(params, (tuple, list)):
        raise TypeError(f"{name} must be a sequence of {model.depth} layer dicts for {model}, got {type(params).__name__}")
    if len(params) != model.depth:
        raise ValueError(f"{name} must be a sequence of {model.depth} layer dicts for {model}, got {len(params)}")
    for i, (layer, fan_in, fan_out) in enumerate(zip(params, model.sizes[:-1], model.sizes[1:])):
        expected = {"w": (fan_in, fan_out)} | ({"b": (fan_out,)} if model.bias else {})
        if not isinstance(layer, dict) or set(layer) != set(expected):
            raise ValueError(f"{name}[{i}] must be a dict with keys {sorted(expected)}")
        for k, shape in expected.items():
            if np.shape(layer[k]) != shape:
                raise ValueError(f"{name}[{i}]['{k}'] must have shape {shape}, got {np.shape(layer[k])}")
    _checks.finite_tree(name, params)


def param_shapes(model: MLP) -> tuple[dict[str, jax.ShapeDtypeStruct], ...]:
    """The shapes of ``model``'s parameters as a pytree of ``jax.ShapeDtypeStruct`` (for structure checks).

    Parameters
    ----------
    model : MLP
        The network.

    Returns
    -------
    tuple of dict
        One ``{"w": ..., "b": ...}`` of ``jax.ShapeDtypeStruct`` per layer.
    """
    return tuple({"w": jax.ShapeDtypeStruct((a, b), jnp.float32)} | ({"b": jax.ShapeDtypeStruct((b,), jnp.float32)}
                 if model.bias else {}) for a, b in zip(model.sizes[:-1], model.sizes[1:]))


class ParametrizationConstants(NamedTuple):
    """(W, J) of the Lipschitz parametrization (docs/theory.md, section 2.3), from Bubeck & Sellke Lemma 3.1.

    W: l2 diameter of the parameter box [-box, box]^p, i.e. 2 * box * sqrt(p).
    J: sup-norm Lipschitz constant of w -> f_w over inputs with ||x|| <= R, J = R (box Q p)^D.

    Parameters
    ----------
    W : float
        The l2 diameter 2 box sqrt(p) of the parameter box.
    J : float
        The sup-norm Lipschitz constant R (box Q p)^D of w -> f_w.
    box : float
        The box half-width.
    R : float
        The input radius (sqrt(R^2 + 1) with folded biases).
    Q : int
        The most matrix entries tied to one parameter.
    D : int
        The number of layers.
    p : int
        The number of (active) parameters.

    References
    ----------
    Bubeck & Sellke, Lemma 3.1. docs/theory.md, section 2.3.
    """

    W: float
    J: float
    box: float
    R: float
    Q: int
    D: int
    p: int


def parametrization_constants(
    model: MLP, params: Params | None = None, mask: Mask | None = None, *, radius: float = 1.0,
    box: float | None = None, Q: int = 1,
) -> ParametrizationConstants:
    """(W, J) for ``model`` restricted to weights in [-box, box]^p and inputs with ||x|| <= radius.

    Bubeck & Sellke, Lemma 3.1: for w in [-W_box, W_box]^p with W_box >= 1 and inputs of norm <= R,
    |f_w1(x) - f_w2(x)| <= R (W_box Q p)^D ||w1 - w2||, so J = R (W_box Q p)^D; Q is the largest number of
    matrix entries tied to one parameter (1 without weight sharing) and D the number of layers.
    Trainable biases are folded in as weights on a constant input 1 carried through the layers (exact for
    ReLU-type activations with s(1) = 1), which adds them to p and turns R into sqrt(R^2 + 1).
    The box defaults to max(1, max |w|) over the given params. p counts the active parameters when a mask
    is given (the class then lives in the mask's ||m||_1-dimensional subspace), else all of them.

    Parameters
    ----------
    model : MLP
        The network.
    params : Params, optional
        Parameters whose largest weight sets the default box.
    mask : Mask, optional
        A mask restricting the class to its active parameters.
    radius : float
        The input radius R.
    box : float, optional
        The weight box half-width (default: max(1, max |w|), or 1 without ``params``).
    Q : int
        The most matrix entries tied to one parameter.

    Returns
    -------
    ParametrizationConstants
        W, J and what they were computed from.

    Raises
    ------
    ValueError
        If ``box`` < 1, ``radius`` is not positive, or ``params``/``mask`` do not fit ``model``.

    References
    ----------
    Bubeck & Sellke, Lemma 3.1. docs/theory.md, section 2.3.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a lawrob.nets.MLP, got {type(model).__name__}")
    if params is not None:
        check_params(model, params)
    radius = _checks.real_in("radius", radius, 0.0, math.inf, low_open=True, high_open=True)
    Q = _checks.positive_int("Q", Q)
    if box is None:
        box = 1.0 if params is None else max(1.0, max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(params)))
    box = _checks.real_in("box", box, 1.0, math.inf, high_open=True)
    if mask is not None:
        p = count_active(mask, include_biases=True, model=model)
    else:
        p = model.num_params
    R = math.sqrt(radius**2 + 1.0) if model.bias else radius
    D = model.depth
    J = R * (box * Q * p) ** D
    return ParametrizationConstants(W=2.0 * box * math.sqrt(p), J=J, box=box, R=R, Q=Q, D=D, p=p)


# The adapters to flax, equinox and jaxpruner live in lawrob.interop (which imports this module); these wrappers
# import it when called, so lawrob.nets never imports flax or equinox itself.
def from_flax(params: Any, *, activation: str = "relu") -> tuple[Params, MLP]:
    """(params, model) of a flax MLP: ``lawrob.interop.from_flax``.

    Parameters
    ----------
    params : dict
        The flax parameter dict.
    activation : str
        The network's activation, one of ``ACTIVATIONS``.

    Returns
    -------
    tuple of (Params, MLP)
        The parameters and the lawrob network.
    """
    from lawrob import interop

    return interop.from_flax(params, activation=activation)


def to_flax(params: Params, *, prefix: str = "Dense") -> dict:
    """The flax parameter dict of lawrob params: ``lawrob.interop.to_flax``.

    Parameters
    ----------
    params : Params
        The parameters.
    prefix : str
        The layer-name prefix (``Dense_0``, ...).

    Returns
    -------
    dict
        The flax parameter dict.
    """
    from lawrob import interop

    return interop.to_flax(params, prefix=prefix)


def from_equinox(model: Any) -> tuple[Params, MLP]:
    """(params, model) of an ``equinox.nn.MLP``: ``lawrob.interop.from_equinox``.

    Parameters
    ----------
    model : equinox.nn.MLP
        The network to convert.

    Returns
    -------
    tuple of (Params, MLP)
        The parameters and the lawrob network.
    """
    from lawrob import interop

    return interop.from_equinox(model)


def to_equinox(params: Params, model: MLP) -> Any:
    """The ``equinox.nn.MLP`` of lawrob params: ``lawrob.interop.to_equinox``.

    Parameters
    ----------
    params : Params
        The parameters.
    model : MLP
        The lawrob network.

    Returns
    -------
    equinox.nn.MLP
        The same function as an equinox module.
    """
    from lawrob import interop

    return interop.to_equinox(params, model)


def to_jaxpruner_mask(mask: Mask, *, flax: bool = False, prefix: str = "Dense") -> Any:
    """A lawrob mask in jaxpruner's format (uint8, None for unpruned biases): ``lawrob.interop.to_jaxpruner_mask``.

    Parameters
    ----------
    mask : Mask
        A lawrob mask.
    flax : bool
        Give it flax's structure rather than lawrob's.
    prefix : str
        The flax layer-name prefix.

    Returns
    -------
    Any
        The mask with uint8 leaves and None for the biases.
    """
    from lawrob import interop

    return interop.to_jaxpruner_mask(mask, flax=flax, prefix=prefix)
