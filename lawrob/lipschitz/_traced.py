"""``lipschitz.lower`` on traced arguments (inside ``jax.jit``, ``jax.vmap``): the certified computation runs on
the host through ``jax.pure_callback``.

A lower bound is certified on concrete float64 weights (the witness must sit inside one linear region of the
exact network), which no traced computation can do; so under a transformation ``lower`` hands its concrete
arguments to itself on the host (``jax.pure_callback``, JAX docs "External callbacks"), once per network under
``jax.vmap`` (``vmap_method="sequential"``), and returns a ``Bound`` whose ``value`` and ``witness`` are arrays of
the traced computation. The value is rounded down to the result dtype (float32 unless x64 is on), so it stays a
sound lower bound. Not differentiable (a certified bound has no useful derivative in the weights).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import nets
from lawrob.lipschitz._network import Bound


def round_down(value: float, dtype) -> np.ndarray:
    """``value`` in ``dtype``, rounded toward -inf (a float32 of a float64 lower bound must not exceed it)."""
    out = np.asarray(value, dtype)
    if float(out) > value:
        out = np.nextafter(out, np.asarray(-np.inf, dtype))
    return out


def traced_lower(lower, params, mask, *, key, points, **static) -> Bound:
    """``lower(params, mask, key=key, points=points, **static)`` with traced arrays, through a host callback.

    Parameters
    ----------
    lower
        the concrete ``lipschitz.lower``.
    params, mask, key, points
        as in ``lower``; any of them may be traced (``mask`` may use jaxpruner's
        format, read by ``nets.as_mask``). ``key``: a typed key or a raw uint32 key.
    **static
        the other keywords of ``lower`` (model, method, domain, config, budget), concrete.

    Returns
    -------
    Bound
        A ``Bound`` of kind "lower" whose ``value`` (a scalar) and ``witness`` ([d]; zeros when no candidate
        certified and the bound is the trivial 0) are arrays of the traced computation; ``details`` says
        ``{"traced": True}``.
    """
    if mask is not None:
        mask = nets.as_mask(mask, params)
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    impl = jax.random.key_impl(key) if typed else None
    key_data = jax.random.key_data(key) if typed else key
    # jax.config reads its options as attributes at run time; its type stubs do not declare them
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32  # type: ignore[attr-defined]
    d = int(np.shape(params[0]["w"])[-2])

    def host(params, mask, key_data, points):
        k = jax.random.wrap_key_data(key_data, impl=impl) if typed else key_data
        bound = lower(params, mask, key=k, points=points, **static)
        witness = np.zeros(d) if bound.witness is None else bound.witness
        return round_down(bound.value, dtype), np.asarray(witness, dtype)

    shapes = (jax.ShapeDtypeStruct((), dtype), jax.ShapeDtypeStruct((d,), dtype))
    value, witness = jax.pure_callback(host, shapes, params, mask, key_data, points, vmap_method="sequential")
    return Bound(value=value, kind="lower", method=static.get("method", "search"), witness=witness,
                 details={"traced": True})
