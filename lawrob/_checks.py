"""Argument checks shared by every module: each raises a ValueError/TypeError that names the argument.

Checks of values (finiteness, 0/1 entries) need concrete arrays; the checks of types, dtypes, shapes and pytree
structure read only static properties, so they also pass on traced values under ``jax.jit``/``jax.vmap``.
"""

from __future__ import annotations

import functools
import numbers

import jax
import numpy as np

FLOAT_DTYPES = ("float32", "float64")


def positive_int(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise naming ``name`` unless it is an integer >= ``minimum``
    (an integral float such as 3.0 counts; a bool does not)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        if not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(value)  # type: ignore[call-overload]  # typeshed: int() takes no numbers.Real, floats pass
        else:
            raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def positive_ints(name: str, values, minimum: int = 1) -> tuple[int, ...]:
    """Return ``values`` as a tuple of ints, or raise unless it is a sequence of integers >= ``minimum``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of integers >= {minimum}, got {values!r}")
    return tuple(positive_int(f"{name}[i]", v, minimum) for v in values)


def boolean(name: str, value) -> bool:
    """Return ``value`` as a bool, or raise a TypeError unless it is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def real_in(name: str, value, low: float, high: float, *, low_open=False, high_open=False) -> float:
    """Return ``value`` as a float, or raise unless it is a finite real in the stated interval."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if not np.isfinite(value) or too_low or too_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


def scalar_in(name: str, value, low: float, high: float, **open_ends):
    """``real_in`` for a hyperparameter that may be traced: a tracer (under jit/vmap/grad) is returned unchecked
    and unchanged, a concrete 0-d numeric array (``jnp.asarray(1e-3)``) is checked as the real it holds and
    returned as it is, anything else goes through ``real_in`` (and is returned as a float)."""
    if traced(value):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype") and np.ndim(value) == 0 \
            and np.issubdtype(np.dtype(value.dtype), np.number) and not np.issubdtype(np.dtype(value.dtype), np.bool_):
        real_in(name, float(value), low, high, **open_ends)
        return value
    return real_in(name, value, low, high, **open_ends)


def finite_array(name: str, value, ndim: int | None = None, *, nonempty: bool = False) -> np.ndarray:
    """Return ``value`` as a float array, or raise if it has the wrong rank, a non-finite entry or (with
    ``nonempty``) no entry at all."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}")
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}") from error
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if nonempty and array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite; it has {int(np.sum(~np.isfinite(array)))} NaN/inf (non-finite) entries")
    return array


def finite_tree(name: str, tree) -> None:
    """Raise naming the leaf (``name[0]['w']``) unless every leaf of ``tree`` is a finite numeric array; traced
    leaves are skipped (their values are unknown under jit/vmap)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if not isinstance(leaf, jax.core.Tracer):
            finite_array(f"{name}{jax.tree_util.keystr(path)}", leaf)


def one_of(name: str, value, allowed) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise listing the allowed values."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value


def traced(*trees) -> bool:
    """True if any leaf of ``trees`` is a tracer (inside jit/vmap), where only static checks are possible."""
    return any(isinstance(leaf, jax.core.Tracer) for tree in trees for leaf in jax.tree.leaves(tree))


@functools.cache
def _raw_key_shape() -> tuple[int, ...]:
    return tuple(jax.eval_shape(jax.random.PRNGKey, 0).shape)


def prng_key(name: str, value, ndim: int | tuple[int, ...] = 0):
    """Return ``value`` if it is a JAX PRNG key with ``ndim`` batch axes (one int or a tuple of allowed ones).

    Accepted: a typed key (``jax.random.key(seed)``; B of them: ``jax.random.split(key, B)``) or a legacy raw
    key (``jax.random.PRNGKey(seed)``, uint32 of shape [..., 2]). Only the dtype and shape are read, so traced
    keys pass under jit/vmap. Anything else (an int seed, None, a float array) raises a TypeError naming ``name``.
    """
    dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    dtype, shape = getattr(value, "dtype", None), getattr(value, "shape", None)
    if dtype is not None and shape is not None:
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            if len(shape) in dims:
                return value
        elif np.dtype(dtype) == np.uint32 and tuple(shape[len(shape) - len(_raw_key_shape()):]) == _raw_key_shape() \
                and len(shape) - len(_raw_key_shape()) in dims:
            return value
    what = "one key" if dims == (0,) else f"a batch of keys with {' or '.join(map(str, dims))} leading axis/axes"
    got = f"an array of shape {tuple(shape)} and dtype {dtype}" if shape is not None else repr(value)
    raise TypeError(f"{name} must be a JAX PRNG key ({what}): make one with jax.random.key(seed) "
                    f"(B keys: jax.random.split(jax.random.key(seed), B)), got {got}")


def float_dtypes(name: str, tree) -> None:
    """Raise a TypeError naming ``name`` unless every leaf of ``tree`` is float32 or float64 (static: traceable)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or str(np.dtype(dtype)) not in FLOAT_DTYPES:
            raise TypeError(f"{name}{jax.tree_util.keystr(path)} must be float32 or float64 (float16 and bfloat16 "
                            f"are not supported: they overflow in training), got {dtype}")


def same_tree(name: str, tree, like, like_name: str) -> None:
    """Raise a ValueError naming ``name`` unless ``tree`` has the pytree structure and leaf shapes of ``like``
    (static: works on traced values)."""
    if jax.tree.structure(tree) != jax.tree.structure(like):  # type: ignore[operator]  # jax stubs: PyTreeDef has __ne__
        raise ValueError(f"{name} must have the pytree structure of {like_name}: {jax.tree.structure(tree)} vs "
                         f"{jax.tree.structure(like)}")
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(tree)[0], jax.tree.leaves(like)):
        if np.shape(a) != np.shape(b):
            raise ValueError(f"{name}{jax.tree_util.keystr(path)} has shape {np.shape(a)}, {like_name} has {np.shape(b)}")
