"""Bring your own network: dense MLPs from and to flax and equinox, masks from and to jaxpruner's format.

Weight conventions (each library's own forward pass is tested against ``MLP.apply`` in tests/test_interop.py):

- lawrob: one dict per layer, ``{"w": [fan_in, fan_out], "b": [fan_out]}``, f(x) = x @ w + b (``lawrob.nets``).
- flax (``flax.linen.Dense`` and ``flax.nnx.Linear``): ``{"kernel": [in, out], "bias": [out]}``, y = x @ kernel +
  bias, the same orientation as lawrob's, so no transpose; linen names the layers of a compact module
  ``Dense_0, Dense_1, ...`` (flax docs, "Module" / "Dense").
- equinox (``equinox.nn.Linear`` inside ``equinox.nn.MLP``): ``weight`` is [out, in] and y = weight @ x + bias, so
  lawrob's w is its transpose (equinox docs, ``eqx.nn.Linear``).
- jaxpruner: a mask pytree of the parameters' structure whose leaves are uint8 0/1 arrays, or None for a
  parameter it does not prune (jaxpruner's ``mask_calculator.MASK_DTYPE = 'uint8'``; ``base_updater.apply_mask``
  leaves a parameter with a None mask unchanged). Bit-packed masks (``use_packed_masks``) are not read.

flax and equinox are optional (``pip install lawrob[interop]``): they are imported only by the functions that
build or read their objects. Only dense MLPs with one of ``nets.ACTIVATIONS`` are converted; anything else raises
a ValueError/TypeError that says what is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import nets

__all__ = ["activation_name", "from_equinox", "from_flax", "mask_from_flax", "to_equinox", "to_flax",
           "to_jaxpruner_mask"]

_NUMBERED = re.compile(r"^(.*?)_?(\d+)$")


def _order(keys) -> list:
    """The layer order of a flax mapping's keys: numerically when every key is an int or ends in a number
    (``Dense_0 ... Dense_10``, nnx list indices), else the mapping's own (insertion) order."""
    keys = list(keys)
    if all(isinstance(k, int) for k in keys):
        return sorted(keys)
    if all(isinstance(k, str) and _NUMBERED.match(k) for k in keys):
        # the match is not None: every key matched _NUMBERED just above
        return sorted(keys, key=lambda k: (_NUMBERED.match(k).group(1), int(_NUMBERED.match(k).group(2))))  # type: ignore[union-attr]
    return keys


def _value(leaf):
    """An nnx ``Variable``'s array (``.value``), anything else as it is."""
    return leaf.value if hasattr(leaf, "value") and not hasattr(leaf, "shape") else leaf


def _flax_layers(tree, name: str) -> list[Mapping]:
    """The Dense layers (mappings with a "kernel") of a nested flax mapping, in layer order."""
    if isinstance(tree, Mapping) and "kernel" in tree:
        extra = sorted(set(map(str, tree)) - {"kernel", "bias"})
        if extra:
            raise ValueError(f"{name} has a layer with entries {extra} besides 'kernel' and 'bias': only Dense layers "
                             "are converted")
        return [tree]
    if not isinstance(tree, Mapping) or not tree:
        raise TypeError(f"{name} must be a flax parameter mapping ({{'Dense_0': {{'kernel': ..., 'bias': ...}}, ...}}, "
                        f"optionally under 'params'), got {type(tree).__name__}")
    return [layer for key in _order(tree) for layer in _flax_layers(tree[key], f"{name}[{key!r}]")]


def _flax_tree(params, name: str):
    """A flax variables dict, params dict or nnx Module as a plain nested mapping of its parameters."""
    if not isinstance(params, Mapping):
        try:
            from flax import nnx
        except ImportError:  # pragma: no cover - flax is a dev dependency
            nnx = None  # type: ignore[assignment]  # flax absent: the module name falls back to None
        if nnx is not None and isinstance(params, nnx.Module):
            state = nnx.state(params, nnx.Param)
            params = nnx.to_pure_dict(state) if hasattr(nnx, "to_pure_dict") else state.to_pure_dict()
    if isinstance(params, Mapping) and set(params) == {"params"}:
        params = params["params"]
    return params


def from_flax(params: Any, *, activation: str = "relu") -> tuple[nets.Params, nets.MLP]:
    """lawrob parameters and model of a flax MLP.

    Parameters
    ----------
    params : Any
        the parameters of a stack of ``flax.linen.Dense`` layers (``module.init(...)`` output, with or
        without its "params" level), their nested mapping, or a ``flax.nnx`` Module made of ``nnx.Linear``
        layers. Layers are ordered by the number their names end in (``Dense_0``, ``Dense_1``, ...; nnx list
        indices), else in the mapping's order.
    activation : str
        the activation between the layers, a name in ``nets.ACTIVATIONS`` (flax parameters do not
        carry it).

    Returns
    -------
    tuple[nets.Params, nets.MLP]
        (params, model): lawrob parameters (``w`` = kernel, no transpose; ``b`` = bias) and the ``nets.MLP``
        computing the same function.

    Raises
    ------
    TypeError
        ``params`` is not a flax parameter tree.
    ValueError
        a layer is not Dense, the shapes do not chain, or only some layers have a bias.
    """
    layers = _flax_layers(_flax_tree(params, "params"), "params")
    out = []
    for layer in layers:
        kernel = jnp.asarray(_value(layer["kernel"]))
        if kernel.ndim != 2:
            raise ValueError(f"params: every kernel must be a matrix [in, out], got shape {kernel.shape}")
        out.append({"w": kernel} | ({"b": jnp.asarray(_value(layer["bias"]))} if "bias" in layer else {}))
    return _model_of(out, activation, "params")


def _model_of(layers: list[dict], activation: str, name: str) -> tuple[nets.Params, nets.MLP]:
    """(params, MLP) of converted layers, checked to form one lawrob MLP."""
    if len({"b" in layer for layer in layers}) != 1:
        raise ValueError(f"{name}: either every layer has a bias or none has (lawrob's MLP.bias is one flag)")
    params = tuple(layers)
    nets.check_layers(name, params)
    sizes = (params[0]["w"].shape[0],) + tuple(layer["w"].shape[1] for layer in params)
    model = nets.MLP(sizes, activation=activation, bias="b" in params[0])
    nets.check_params(model, params, name)
    return params, model


def to_flax(params: nets.Params, *, prefix: str = "Dense") -> dict[str, dict[str, jax.Array]]:
    """The flax parameter dict of lawrob ``params``: ``{"Dense_0": {"kernel": w, "bias": b}, ...}``.

    Pass it as ``module.apply({"params": to_flax(params)}, x)`` to a compact linen module that calls
    ``nn.Dense`` once per layer (they are then named ``Dense_0, Dense_1, ...``), with the model's activation in
    between; ``prefix`` names the layers otherwise. Kernels are lawrob's w as they are ([in, out]).

    Parameters
    ----------
    params : nets.Params
        The parameters.
    prefix : str
        The layer-name prefix.

    Returns
    -------
    dict
        ``{"Dense_0": {"kernel": w, "bias": b}, ...}``.

    Raises
    ------
    TypeError/ValueError
        ``params`` is not a params-like pytree (``nets.check_layers``).
    """
    nets.check_layers("params", params)
    return {f"{prefix}_{i}": {"kernel": layer["w"]} | ({"bias": layer["b"]} if "b" in layer else {})
            for i, layer in enumerate(params)}


def activation_name(fn: Callable, *, name: str = "activation") -> str:
    """The name in ``nets.ACTIVATIONS`` of the elementwise function ``fn``, found by evaluating both on a grid of
    points in [-4, 4] (``jax.nn.relu``, ``jnp.tanh``, ``lambda x: x``, ... are recognised whatever object they are).

    Parameters
    ----------
    fn : callable
        The elementwise function.
    name : str
        The argument's name in error messages.

    Returns
    -------
    str
        The name in ``nets.ACTIVATIONS``.

    Raises
    ------
    ValueError
        ``fn`` agrees with none of them.
    """
    grid = jnp.linspace(-4.0, 4.0, 33)
    try:
        values = np.asarray(fn(grid))
    except Exception as error:  # noqa: BLE001 - any failure means it is not an elementwise activation
        raise ValueError(f"{name} {fn!r} cannot be evaluated elementwise: {error}") from error
    for key, (act, _, _) in nets.ACTIVATIONS.items():
        if values.shape == grid.shape and np.allclose(values, np.asarray(act(grid)), rtol=1e-6, atol=1e-6):
            return key
    raise ValueError(f"{name} {fn!r} is none of the supported activations {sorted(nets.ACTIVATIONS)}")


def from_equinox(model: Any) -> tuple[nets.Params, nets.MLP]:
    """lawrob parameters and model of an ``equinox.nn.MLP``.

    Parameters
    ----------
    model : Any
        an ``eqx.nn.MLP`` (``scan=False``) with an activation from ``nets.ACTIVATIONS`` and the identity as
        final activation, biases on every layer or on none. ``in_size``/``out_size`` "scalar" become width 1.

    Returns
    -------
    tuple[nets.Params, nets.MLP]
        (params, model): w = weight.T ([in, out]), b = bias, and the ``nets.MLP`` with the same activation. The
        lawrob network maps [..., d] to [..., out]; equinox's maps one [d] input (vmap it for a batch).

    Raises
    ------
    TypeError
        ``model`` is not an ``eqx.nn.MLP``.
    ValueError
        its activation is not supported, its final activation is not the identity, it is scanned,
        or only some layers have a bias.
    """
    import equinox as eqx

    if not isinstance(model, eqx.nn.MLP):
        raise TypeError(f"model must be an equinox.nn.MLP, got {type(model).__name__}")
    if getattr(model, "scan", False):
        raise ValueError("model: a scanned equinox MLP (scan=True) is not supported; build it with scan=False")
    if activation_name(model.final_activation, name="final_activation") != "identity":
        raise ValueError("model.final_activation must be the identity (lawrob's output layer is affine)")
    activation = activation_name(model.activation)
    layers = []
    for linear in model.layers:
        weight = jnp.asarray(linear.weight)
        layers.append({"w": weight.T} | ({"b": jnp.reshape(jnp.asarray(linear.bias), (weight.shape[0],))}
                                         if linear.bias is not None else {}))
    return _model_of(layers, activation, "model")


def to_equinox(params: nets.Params, model: nets.MLP) -> Any:
    """The ``equinox.nn.MLP`` computing ``model.apply(params, .)`` on one input [d] (weight = w.T, bias = b).

    Parameters
    ----------
    params : nets.Params
        The parameters.
    model : nets.MLP
        The lawrob network.

    Returns
    -------
    equinox.nn.MLP
        The same function as an equinox module.

    Raises
    ------
    TypeError/ValueError
        ``params`` do not fit ``model`` (``nets.check_params``), or the hidden layers have
        different widths (``eqx.nn.MLP`` has one ``width_size``).
    """
    import equinox as eqx

    nets.check_params(model, params)
    hidden = set(model.sizes[1:-1])
    if len(hidden) > 1:
        raise ValueError(f"model: equinox.nn.MLP needs equal hidden widths, got sizes {model.sizes}")
    width = hidden.pop() if hidden else model.sizes[-1]
    dtype = params[0]["w"].dtype
    act = nets.ACTIVATIONS[model.activation][0]
    out = eqx.nn.MLP(model.sizes[0], model.sizes[-1], width, model.depth - 1, activation=act,
                     use_bias=model.bias, use_final_bias=model.bias, dtype=dtype, key=jax.random.key(0))
    weights = [layer["w"].T for layer in params]
    out = eqx.tree_at(lambda m: [linear.weight for linear in m.layers], out, weights)
    if model.bias:
        out = eqx.tree_at(lambda m: [linear.bias for linear in m.layers], out, [layer["b"] for layer in params])
    return out


def mask_from_flax(mask: Any, params: nets.Params) -> nets.Mask:
    """A mask in flax's structure (``{"Dense_0": {"kernel": m, "bias": None}, ...}``, jaxpruner's format: uint8,
    bool or 0/1 float leaves, None meaning unpruned) as a lawrob mask of ``params``' structure and dtypes.

    Parameters
    ----------
    mask : Any
        The mask in flax's structure.
    params : nets.Params
        The lawrob parameters it belongs to.

    Returns
    -------
    nets.Mask
        The lawrob mask.

    Raises
    ------
    TypeError/ValueError
        ``mask`` is not a flax mapping of Dense layers, or has more layers than ``params``.
    """
    layers = _flax_layers(_flax_tree(mask, "mask"), "mask")
    if len(layers) != len(params):
        raise ValueError(f"mask has {len(layers)} Dense layers, params have {len(params)}")
    renamed = [{"w": layer.get("kernel")} | ({"b": layer.get("bias")} if "b" in p else {})
               for layer, p in zip(layers, params)]
    return nets.as_mask(renamed, params)


def to_jaxpruner_mask(mask: nets.Mask, *, flax: bool = False, prefix: str = "Dense") -> Any:
    """A lawrob 0/1 mask in jaxpruner's format: uint8 leaves, and None for a bias that is not pruned (all ones).

    Parameters
    ----------
    mask : nets.Mask
        a lawrob mask (0/1 leaves of any numeric dtype, concrete values).
    flax : bool
        False keeps lawrob's structure ``({"w": ..., "b": ...}, ...)``; True gives flax's
        (``{"Dense_0": {"kernel": ..., "bias": ...}, ...}``, the structure of ``to_flax``), which is what
        jaxpruner pairs with flax parameters.
    prefix : str
        the flax layer name prefix (with ``flax=True``).

    Returns
    -------
    Any
        The mask pytree; ``nets.as_mask`` (and so every lawrob function taking a mask) reads it back.

    Raises
    ------
    TypeError/ValueError
        ``mask`` is not params-like or holds values other than 0 and 1.
    """
    nets.check_layers("mask", mask)
    nets.check_mask(mask, mask)
    out = []
    for layer in mask:
        new: dict[str, jax.Array | None] = {"w": jnp.asarray(layer["w"]).astype(jnp.uint8)}
        if "b" in layer:
            b = jnp.asarray(layer["b"])
            new["b"] = None if bool(jnp.all(b == 1)) else b.astype(jnp.uint8)
        out.append(new)
    if not flax:
        return tuple(out)
    return {f"{prefix}_{i}": {"kernel": layer["w"]} | ({"bias": layer["b"]} if "b" in layer else {})
            for i, layer in enumerate(out)}
