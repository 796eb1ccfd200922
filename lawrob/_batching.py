"""One batched map for the package: a function over a leading axis, split over devices, in chunks of a vmap.

``map_chunked`` is what ``train.fit_batched`` (runs), ``info.sample_masks`` (data sets), ``lipschitz.lower_batch``
and the LipSDP barrier solver (networks) run their batches through; ``DEFAULT_CHUNKS`` holds the measured
per-backend chunk sizes; ``stack``/``unstack``/``leading_size`` build and read such batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks

__all__ = ["AXIS", "DEFAULT_CHUNKS", "default_chunk", "leading_size", "map_chunked", "stack", "unstack"]

AXIS = "batch"  # the mesh axis of map_chunked: fn may read jax.lax.axis_index(AXIS) (its device) when split

# Elements per jax.lax.map chunk by caller and backend (a backend not listed: None, one full vmap), measured on
# CPU where small chunks beat a full vmap (cache pressure); see benchmarks/RESULTS.md.
DEFAULT_CHUNKS: dict[str, dict[str, int]] = {
    "train": {"cpu": 4},  # runs per chunk in train.fit_batched (benchmarks/bench_train.py)
    "masks": {"cpu": 2048},  # data sets per chunk in info.sample_masks (benchmarks/bench_info.py, the E5 toy)
    "lipsdp": {"cpu": 1, "gpu": 8, "tpu": 8},  # networks per chunk in lipschitz.upper_batch (bench_lipsdp_scale)
}


def default_chunk(table: dict[str, int], backend: str | None = None) -> int | None:
    """The chunk size ``table`` gives ``backend`` (default: JAX's default backend); None (one full vmap) if absent.

    Parameters
    ----------
    table : dict[str, int]
        backend name -> chunk size, e.g. ``DEFAULT_CHUNKS["train"]``.
    backend : str | None
        a JAX platform name ("cpu", "gpu", "tpu") or None.
    """
    return table.get(backend or jax.default_backend())


def leading_size(tree: Any, name: str = "tree", axis: str = "leading") -> int:
    """The size of the leading axis that every leaf of ``tree`` carries.

    Parameters
    ----------
    tree : Any
        a pytree of arrays (works on tracers: only shapes are read).
    name : str
        the argument's name, for the error message.
    axis : str
        how the message calls the axis, e.g. "leading run".

    Raises
    ------
    ValueError
        naming ``name``, when ``tree`` has no leaves, a scalar leaf, or leaves of different sizes.
    """
    sizes: set[Any] = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in jax.tree.leaves(tree)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"{name} must be a pytree whose leaves all carry one {axis} axis, got sizes {sizes}")
    return int(sizes.pop())


def stack(trees: list) -> Any:
    """Stack a non-empty list of same-structure pytrees (params, masks, datasets) along a new leading run axis.

    Parameters
    ----------
    trees : list
        Pytrees of one structure and leaf shapes.

    Returns
    -------
    Any
        One pytree whose leaves carry a new leading axis.

    Raises
    ------
    ValueError
        If ``trees`` is empty or the structures differ.
    """
    if not isinstance(trees, (list, tuple)) or not trees:
        raise ValueError(f"trees must be a non-empty list of pytrees, got {trees!r:.80}")
    for i, tree in enumerate(trees[1:], start=1):
        _checks.same_tree(f"trees[{i}]", tree, trees[0], "trees[0]")
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def unstack(tree: Any) -> list:
    """Inverse of ``stack``: the list of per-run pytrees (every leaf must carry the same leading run axis).

    Parameters
    ----------
    tree : Any
        A pytree whose leaves share a leading axis.

    Returns
    -------
    list
        One pytree per index of that axis.

    Raises
    ------
    ValueError
        If the leaves do not share a leading axis.
    """
    size = leading_size(tree, "tree", "leading run")
    return [jax.tree.map(lambda a: a[i], tree) for i in range(size)]


def map_chunked(fn: Callable, args: Any, *, chunk: int | None, devices: Sequence | None = None,
                shared: tuple = (), whole_chunks: bool = False) -> Any:
    """``fn(args[i], *shared)`` for every i along the leading axis of ``args``, stacked: a batched ``jax.lax.map``.

    The axis is padded by repeating its last element to a multiple of the number of ``devices`` and, when more
    than one, split over them with ``jax.shard_map`` on a 1-D mesh (``shared`` is replicated). On each device the
    elements go through ``jax.lax.map(..., batch_size=chunk)``, a ``jax.vmap`` inside each chunk (none for chunk
    1); ``chunk`` is capped at the elements per device, and None means one full vmap. ``jax.lax.map`` handles a last partial chunk
    with a second, smaller vmap; ``whole_chunks`` pads each device's share to a multiple of ``chunk`` instead (one
    compiled body, at most chunk - 1 padded elements). The padding is dropped from the result.

    This function does not jit: call it inside a ``jax.jit`` whose static arguments fix ``fn`` (e.g. a config
    object and ``chunk``/``devices`` as static arguments, ``fn`` built from them inside), so that the computation
    compiles once per argument shapes and static configuration.

    Parameters
    ----------
    fn : Callable
        maps one element's pytree (and the shared values) to an output pytree; traceable.
    args : Any
        a pytree whose leaves all carry the same leading axis.
    chunk : int | None
        elements per vmap, a positive int, or None.
    devices : Sequence | None
        the devices to split the axis over (a tuple, to be a static argument); None or one device: no split.
    shared : tuple
        values passed to every call of ``fn`` as they are (not mapped).
    whole_chunks : bool
        pad to whole chunks rather than vmap a partial last chunk separately.

    Returns
    -------
    Any
        The stacked outputs: a pytree of ``fn``'s output structure, each leaf with the leading axis of ``args``.

    Raises
    ------
    ValueError
        when the leaves of ``args`` do not share one leading axis, or ``chunk`` is not positive.
    """
    size = leading_size(args, "args")
    devices = () if devices is None else tuple(devices)
    parts = max(len(devices), 1)
    per_device = -(-size // parts)
    if chunk is not None:
        chunk = min(_checks.positive_int("chunk", chunk), per_device)
        if whole_chunks:
            per_device = -(-per_device // chunk) * chunk
    padding = per_device * parts - size
    if padding:
        args = jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], padding, axis=0)]), args)

    def local(xs, shared):
        def one(x):
            return fn(x, *shared)
        if chunk is None:
            return jax.vmap(one)(xs)
        # chunk 1 maps without a vmap: batched linear algebra on a batch of one is up to 2x slower on the CPU
        return jax.lax.map(one, xs) if chunk == 1 else jax.lax.map(one, xs, batch_size=chunk)

    if parts > 1:
        spec = jax.sharding.PartitionSpec(AXIS)
        mesh = jax.sharding.Mesh(np.array(devices), (AXIS,))
        out = jax.shard_map(local, mesh=mesh, in_specs=(spec, jax.sharding.PartitionSpec()), out_specs=spec,
                            check_vma=False)(args, tuple(shared))
    else:
        out = local(args, tuple(shared))
    return jax.tree.map(lambda a: a[:size], out) if padding else out
