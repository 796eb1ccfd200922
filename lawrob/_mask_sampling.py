"""Sampling the masks of a pruning pipeline on many resampled data sets in one compiled call (for ``lawrob.info``,
which re-exports ``sample_masks``, ``default_chunk`` and ``DEFAULT_CHUNK``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _batching, _checks

# Data sets per jax.lax.map chunk in ``sample_masks``, measured with benchmarks/bench_info.py on the E5 toy
# (see benchmarks/RESULTS.md); None (one full vmap) on other backends.
DEFAULT_CHUNK = _batching.DEFAULT_CHUNKS["masks"]


def default_chunk(backend: str | None = None) -> int | None:
    """Data sets per chunk for ``sample_masks`` on ``backend`` (default: JAX's); None means one full vmap.

    Parameters
    ----------
    backend : str, optional
        A JAX platform name ("cpu", "gpu", "tpu").

    Returns
    -------
    int or None
        The chunk size.
    """
    return _batching.default_chunk(DEFAULT_CHUNK, backend)


def _flatten(tree) -> tuple[jax.Array, jax.Array]:
    """The leaves of a mask pytree raveled and concatenated as uint8, and whether all entries were 0 or 1."""
    flat = jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])
    return flat.astype(jnp.uint8), jnp.all((flat == 0) | (flat == 1))


def _sample_datasets(pipeline, sample_data, chunk, devices, init_key, data_keys):
    """The flattened masks (and whether they were 0/1) of ``pipeline(init_key, .)`` on each data set of ``data_keys``."""
    return _batching.map_chunked(lambda data_key, init: _flatten(pipeline(init, sample_data(data_key))), data_keys,
                                 shared=(init_key,), chunk=chunk, devices=devices)


# one compilation per (pipeline, sample_data, chunk, devices) and key shapes
_sample_one_init = jax.jit(_sample_datasets, static_argnums=(0, 1, 2, 3))


def _keys(key, inits: int, datasets: int) -> tuple[jax.Array, jax.Array]:
    """([inits] pipeline keys, [inits, datasets] data keys): fresh data sets for every initialization."""
    pairs = jax.vmap(lambda k: jax.random.split(k))(jax.random.split(key, inits))
    return pairs[:, 0], jax.vmap(lambda k: jax.random.split(k, datasets))(pairs[:, 1])


def sample_masks(pipeline: Callable, sample_data: Callable, *, key: jax.Array, datasets: int, inits: int = 1,
                 chunk_size: int | None | str = "auto", devices: Sequence | None = None) -> np.ndarray:
    """masks[i, k] = pipeline(key_i, sample_data(key_ik)) flattened: a uint8 array [inits, datasets, p].

    ``pipeline(key, data)`` is a pure JAX function returning a 0/1 mask pytree (its leaves are raveled and
    concatenated in ``jax.tree.leaves`` order); ``key`` must fix everything it draws (initialization, minibatch
    order, tie-breaks), so that the mask is a deterministic function of (key, data). ``sample_data(key)`` draws
    one data set from the generator under study. For each of ``inits`` pipeline keys, ``datasets`` fresh data
    sets are drawn and the pipeline runs on all of them in one compiled call: the data sets are split over
    ``devices`` (default: this process's JAX devices; on CPU set XLA_FLAGS=--xla_force_host_platform_device_count=C
    before importing jax to use C cores) with ``jax.shard_map``, and on each device go through ``jax.lax.map`` in
    chunks of ``chunk_size`` (a vmap inside each chunk; "auto": ``default_chunk()``, None: one full vmap).
    Both functions are static arguments of the compiled call: pass the same function objects to reuse it.

    Parameters
    ----------
    pipeline : callable
        (key, data) -> 0/1 mask pytree, pure JAX.
    sample_data : callable
        key -> one data set.
    key : jax.Array
        A ``jax.random.key``.
    datasets : int
        The number of data sets per pipeline key.
    inits : int
        The number of pipeline keys.
    chunk_size : int, None or "auto"
        Data sets per vmap.
    devices : sequence, optional
        The devices to split the data sets over.

    Returns
    -------
    numpy.ndarray
        uint8 masks [inits, datasets, p].

    Raises
    ------
    ValueError
        If a count is not a positive integer or a mask is not 0/1.
    """
    _checks.prng_key("key", key)
    datasets = _checks.positive_int("datasets", datasets)
    inits = _checks.positive_int("inits", inits)
    if not callable(pipeline) or not callable(sample_data):
        raise TypeError("pipeline and sample_data must be callables: pipeline(key, data) -> mask, sample_data(key) -> data")
    devices = tuple(jax.local_devices() if devices is None else devices)
    if chunk_size == "auto":
        chunk_size = default_chunk(devices[0].platform)
    if chunk_size is not None:
        chunk_size = _checks.positive_int("chunk_size", chunk_size)
    init_keys, data_keys = _keys(key, inits, datasets)
    out = []
    for i in range(inits):
        masks, binary = _sample_one_init(pipeline, sample_data, chunk_size, devices, init_keys[i], data_keys[i])
        if not bool(jnp.all(binary)):
            raise ValueError("pipeline must return masks holding only 0 and 1")
        out.append(np.asarray(masks))
    return np.stack(out)
