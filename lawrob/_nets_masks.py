"""The parameter and mask pytrees of ``lawrob.nets``, with no model: masks (``as_mask``, ``apply_mask``,
``dense_mask``), counts and the structure checks (the module docstring of ``lawrob.nets`` gives the layout;
import every name from ``lawrob.nets``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks

Params = Sequence[dict[str, jax.Array]]  # a tuple, or a list (as_mask keeps the container of params)
Mask = Params


def as_mask(mask: Any, params: Any, name: str = "mask") -> Mask:
    """``mask`` as a lawrob mask of ``params``: their pytree structure, with 0/1 leaves in their dtypes.

    Parameters
    ----------
    mask : Any
        None (dense), a lawrob mask (a sequence of layer dicts) whose leaves are 0/1 arrays of any bool,
        integer or float dtype (jaxpruner's uint8 included) or None (that parameter unpruned, as jaxpruner
        marks the parameters it leaves alone; a missing "b" entry likewise), or a mask in flax's structure
        (``{"Dense_0": {"kernel": ..., "bias": ...}, ...}``, read by ``interop.mask_from_flax``).
    params : Any
        the parameters (arrays or ``jax.ShapeDtypeStruct``; leading batch axes allowed).
    name : str
        the argument's name in error messages.

    Returns
    -------
    Mask
        The mask (leaves already in ``params``' dtypes are kept as they are). Anything that is not mask-like is returned unchanged, for the caller's own checks to reject with their messages.

    Raises
    ------
    TypeError
        a leaf is not a numeric array.
    """
    if mask is None:
        return jax.tree.map(lambda p: jnp.ones(p.shape, p.dtype), params)
    if isinstance(mask, Mapping):
        from lawrob import interop

        return interop.mask_from_flax(mask, params)
    if not (isinstance(mask, (tuple, list)) and isinstance(params, (tuple, list)) and len(mask) == len(params)
            and all(isinstance(m, dict) and isinstance(p, dict) for m, p in zip(mask, params))
            and all(set(m) <= set(p) for m, p in zip(mask, params))):
        return mask
    layers = []
    for i, (m, p) in enumerate(zip(mask, params)):
        layer = {}
        for k, param in p.items():
            leaf = m.get(k)
            if leaf is None:
                layer[k] = jnp.ones(param.shape, param.dtype)
                continue
            dtype = getattr(leaf, "dtype", None) or np.asarray(leaf).dtype
            if not (jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)):
                raise TypeError(f"{name}[{i}]['{k}'] must be a 0/1 array (bool, integer or float), got dtype {dtype}")
            layer[k] = leaf if dtype == param.dtype else jnp.asarray(leaf).astype(param.dtype)
        layers.append(layer)
    return tuple(layers) if isinstance(params, tuple) else list(layers)


def apply_mask(params: Params, mask: Mask) -> Params:
    """Elementwise params * mask (pruned weights become exactly zero); ``mask`` must have the structure and
    leaf shapes of ``params`` (jaxpruner's uint8/bool leaves and None leaves are read by ``as_mask``).

    Parameters
    ----------
    params : Params
        The parameters, a sequence of layer dicts.
    mask : Mask
        A 0/1 mask of the same structure.

    Returns
    -------
    Params
        The masked parameters.

    Raises
    ------
    ValueError
        If ``mask`` does not fit ``params``.
    """
    mask = as_mask(mask, params)
    _checks.same_tree("mask", mask, params, "params")
    return jax.tree.map(lambda p, m: p * m.astype(p.dtype), params, mask)


def dense_mask(params: Params) -> Mask:
    """All-ones mask of the same structure as ``params`` (a sequence of layer dicts).

    Parameters
    ----------
    params : Params
        A sequence of layer dicts.

    Returns
    -------
    Mask
        Ones in the dtypes and shapes of ``params``.
    """
    check_layers("params", params)
    return jax.tree.map(jnp.ones_like, params)


def weight_leaves(tree: Params) -> list[jax.Array]:
    """The weight matrices of a params/mask pytree, in layer order (biases excluded).

    Parameters
    ----------
    tree : Params
        A params or mask pytree.

    Returns
    -------
    list of jax.Array
        The "w" leaves.
    """
    check_layers("tree", tree)
    return [layer["w"] for layer in tree]


def _shapes_of(mask):
    """The parameter shapes a mask stands for, read off its weight matrices (a None weight needs the model)."""
    if not isinstance(mask, (tuple, list)) or not all(isinstance(layer, dict) for layer in mask):
        return mask
    if any(layer.get("w") is None for layer in mask):
        raise ValueError("mask has a None weight matrix: pass model= so that its shape is known")
    return tuple({"w": jax.ShapeDtypeStruct(np.shape(layer["w"]), jnp.float32)}
                 | ({"b": jax.ShapeDtypeStruct(np.shape(layer["w"])[-1:], jnp.float32)} if "b" in layer else {})
                 for layer in mask)


def count_params(params: Params, include_biases: bool = True) -> int:
    """Number of parameters (weights, and biases when ``include_biases``) of a sequence of layer dicts.

    Parameters
    ----------
    params : Params
        A sequence of layer dicts.
    include_biases : bool
        Count the biases too.

    Returns
    -------
    int
        The number of parameters.
    """
    check_layers("params", params)
    leaves = jax.tree.leaves(params) if include_biases else weight_leaves(params)
    return int(sum(np.size(x) for x in leaves))


def check_mask(params: Params, mask: Mask, name: str = "mask") -> None:
    """Raise a ValueError unless ``mask`` has the structure and shapes of ``params`` and holds only 0/1
    (the values are checked only when concrete, so this also works under jit/vmap).

    Parameters
    ----------
    params : Params
        The parameters the mask belongs to.
    mask : Mask
        The mask to check.
    name : str
        The argument's name in error messages.

    Raises
    ------
    ValueError
        If the structure or a shape differs from ``params``', or a concrete value is not 0 or 1.
    """
    _checks.same_tree(name, mask, params, "the parameters")
    if _checks.traced(mask):
        return
    for path, m in jax.tree_util.tree_flatten_with_path(mask)[0]:
        values = np.asarray(m)
        if not np.all((values == 0) | (values == 1)):
            raise ValueError(f"{name}{jax.tree_util.keystr(path)} must hold only 0 and 1")


def check_layers(name: str, tree: Any, sizes: tuple[int, ...] | None = None) -> None:
    """Raise unless ``tree`` is params-like: a non-empty sequence of layer dicts, each with a weight array "w"
    (trailing shape [fan_in, fan_out], chaining from layer to layer) and optionally a bias "b" ([fan_out]).

    Leading batch axes are allowed (stacked runs); with ``sizes`` the widths must be those. Static: traceable.

    Parameters
    ----------
    name : str
        The argument's name in error messages.
    tree : Any
        The pytree to check.
    sizes : tuple of int, optional
        The widths the layers must have.

    Raises
    ------
    TypeError
        If ``tree`` is not a sequence of layer dicts of arrays.
    ValueError
        If the shapes do not chain or differ from ``sizes``.
    """
    if not isinstance(tree, (tuple, list)) or not tree or not all(isinstance(l, dict) and "w" in l for l in tree):
        raise TypeError(f"{name} must be a params-like pytree: a non-empty sequence of layer dicts with a 'w' matrix, "
                        f"got {type(tree).__name__}")
    shapes = [np.shape(layer["w"]) for layer in tree]
    for i, (layer, shape) in enumerate(zip(tree, shapes)):
        if len(shape) < 2:
            raise ValueError(f"{name}[{i}]['w'] must be a matrix, got shape {shape}")
        if sizes is not None and (len(tree) != len(sizes) - 1 or shape[-2:] != tuple(sizes[i:i + 2])):
            raise ValueError(f"{name} must have the layer shapes {list(zip(sizes[:-1], sizes[1:]))} of the model, "
                             f"got {[s[-2:] for s in shapes]}")
        if i and shape[-2] != shapes[i - 1][-1]:
            raise ValueError(f"{name}[{i}]['w'] has {shape[-2]} rows but layer {i - 1} has {shapes[i - 1][-1]} outputs")
        if "b" in layer and np.shape(layer["b"])[-1:] != shape[-1:]:
            raise ValueError(f"{name}[{i}]['b'] must have shape [{shape[-1]}], got {np.shape(layer['b'])}")


