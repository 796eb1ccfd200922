"""Exact-count masks from scores (global or per layer, random tie-breaks, no regrowth), layer collapse, and the
mask ablations (layerwise shuffle, reinitialization). Import every name from ``lawrob.prune``."""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks
from lawrob.nets import MLP, Mask, Params, apply_mask, check_layers, check_mask
from lawrob.prune._scores import Scores

SCOPES = ("global", "layer")
COLLAPSE = ("warn", "raise", "keep_one", "allow")


class LayerCollapseWarning(UserWarning):
    """A mask left some weight matrix with no weight: the network's output no longer depends on its input."""


def kept_count(density: float, size: int) -> int:
    """The number of entries a mask of ``density`` in (0, 1] keeps out of ``size`` >= 0: floor(density * size + 0.5).

    Parameters
    ----------
    density : float
        The fraction kept, in (0, 1].
    size : int
        The number of entries, >= 0.

    Returns
    -------
    int
        floor(density * size + 0.5).

    Raises
    ------
    ValueError
        If ``density`` or ``size`` is out of range.
    """
    return math.floor(_check_density(density) * _checks.positive_int("size", size, minimum=0) + 0.5)


def _slots(tree, prune_biases: bool) -> list[tuple[int, str]]:
    """(layer, name) of the prunable leaves, in order: every "w", and every "b" when ``prune_biases``."""
    names = ("w", "b") if prune_biases else ("w",)
    return [(i, name) for i, layer in enumerate(tree) for name in names if name in layer]


def _rank(values: jax.Array, key: jax.Array) -> jax.Array:
    """Rank (0 = lowest) of each entry of a 1-d array, ties broken by a random permutation drawn from ``key``.

    Only the comparison sort runs under x64, so float64 scores compare exactly; the bookkeeping stays int32.
    """
    n = values.shape[0]
    positions = jnp.arange(n, dtype=jnp.int32)
    tiebreak = jax.random.permutation(key, n).astype(jnp.int32)
    with jax.enable_x64(True):
        _, _, order = jax.lax.sort((values, tiebreak, positions), num_keys=2)
    return jnp.zeros_like(positions).at[order].set(positions)


def _select(scores, mask, counts, key, *, scope, prune_biases, keep_one, dtype):
    """Keep the ``counts`` highest-scoring active prunable entries (one count, or one per slot for "layer").

    Pure and traceable (counts may be traced). The scores are only compared, under x64, so float64 SynFlow
    scores keep their precision.
    """
    slots = _slots(scores, prune_biases)
    with jax.enable_x64(True):
        flat = [jnp.ravel(scores[i][name]) if mask is None
                else jnp.where(jnp.ravel(mask[i][name]) > 0, jnp.ravel(scores[i][name]), -jnp.inf) for i, name in slots]
        if scope == "global":
            values = jnp.concatenate([f.astype(jnp.result_type(*flat)) for f in flat])
    if scope == "global":
        rank = _rank(values, key)
        offsets = np.cumsum([0] + [f.size for f in flat])
        if keep_one:  # lift the best entry of every weight matrix above all others, then rank again
            lift = jnp.zeros_like(rank)
            for j, (_, name) in enumerate(slots):
                if name == "w":
                    segment = rank[offsets[j]:offsets[j + 1]]
                    lift = lift.at[offsets[j]:offsets[j + 1]].set(jnp.where(segment == segment.max(), rank.size, 0))
            rank = jnp.argsort(jnp.argsort(rank + lift))
        keep = rank >= rank.size - counts[0]
        pieces = [keep[offsets[j]:offsets[j + 1]] for j in range(len(slots))]
    else:
        keys = jax.random.split(key, len(slots))
        pieces = [_rank(f, k) >= f.size - counts[j] for j, (f, k) in enumerate(zip(flat, keys))]
    kept = dict(zip(slots, pieces))
    return tuple(
        {name: kept[(i, name)].reshape(jnp.shape(s)).astype(dtype) if (i, name) in kept
         else (jnp.ones(jnp.shape(s), dtype) if mask is None else mask[i][name].astype(dtype))
         for name, s in layer.items()}
        for i, layer in enumerate(scores))


_SELECT_STATIC = ("scope", "prune_biases", "keep_one", "dtype")
_select_jit = jax.jit(_select, static_argnames=_SELECT_STATIC)


@functools.partial(jax.jit, static_argnames=_SELECT_STATIC)
def _select_runs(scores, mask, counts, keys, **static):
    """``_select`` for a leading run axis on scores, mask and keys (counts shared)."""
    return jax.vmap(lambda s, m, k: _select(s, m, counts, k, **static))(scores, mask, keys)


def layer_collapse(mask: Mask) -> jax.Array:
    """Boolean [D] (or [..., D] for stacked masks): True where layer l's weight matrix has no weight left.

    Parameters
    ----------
    mask : Mask
        A 0/1 mask, possibly stacked.

    Returns
    -------
    jax.Array
        Boolean [D] or [..., D].
    """
    check_layers("mask", mask)
    return jnp.stack([jnp.all(layer["w"] == 0, axis=(-2, -1)) for layer in mask], axis=-1)


def _warn_collapse(collapsed) -> None:
    layers = np.flatnonzero(np.any(np.reshape(np.asarray(collapsed), (-1, np.shape(collapsed)[-1])), axis=0))
    if layers.size:
        warnings.warn(f"layer collapse: weight matrices {layers.tolist()} have no weight left, so the network's output "
                      "no longer depends on its input; collapse='keep_one' keeps the best weight of every layer, "
                      "collapse='raise' forbids it, collapse='allow' silences this", LayerCollapseWarning, stacklevel=3)


def _report_collapse(mask: Mask, collapse: str) -> None:
    """Warn (works under jit/vmap through a debug callback) or raise on layer collapse."""
    if collapse == "warn":
        jax.debug.callback(_warn_collapse, layer_collapse(mask))
    elif collapse == "raise":
        if _checks.traced(mask):
            raise ValueError("collapse='raise' needs concrete masks; under jit or vmap use collapse='keep_one' "
                             "or test lawrob.prune.layer_collapse(mask) on the result")
        collapsed = np.asarray(layer_collapse(mask))
        if collapsed.any():
            layers = np.flatnonzero(np.reshape(collapsed, (-1, collapsed.shape[-1])).any(axis=0)).tolist()
            raise ValueError(f"layer collapse: weight matrices {layers} have no weight left (collapse='raise'); "
                             "raise the density, use scope='layer' or collapse='keep_one'")


def _check_density(density) -> float:
    return _checks.real_in("density", density, 0.0, 1.0, low_open=True)


def _counts(tree, density_list, scope: str, prune_biases: bool, keep_one: bool) -> np.ndarray:
    """[len(density_list), groups] int array of kept counts: one group ("global") or one per prunable leaf."""
    slots = _slots(tree, prune_biases)
    sizes = [int(np.size(tree[i][name])) for i, name in slots]
    rows = []
    for density in density_list:
        if scope == "global":
            row = [kept_count(density, sum(sizes))]
            if row[0] == 0:
                raise ValueError(f"density={density} keeps no weight of the {sum(sizes)} prunable ones; raise the density")
            weight_layers = sum(n == "w" for _, n in slots)
            if keep_one and row[0] < weight_layers:
                raise ValueError(f"collapse='keep_one' needs at least one weight per layer ({weight_layers}), but "
                                 f"density={density} keeps {row[0]}")
        else:
            row = [max(kept_count(density, s), 1 if keep_one and n == "w" else 0) for s, (_, n) in zip(sizes, slots)]
        rows.append(row)
    return np.asarray(rows, dtype=np.int32)


def _check_no_regrowth(mask, counts, scope: str, prune_biases: bool) -> None:
    active = [int(np.count_nonzero(np.asarray(mask[i][name]))) for i, name in _slots(mask, prune_biases)]
    need = [int(counts.max())] if scope == "global" else counts.max(axis=0).tolist()
    have = [sum(active)] if scope == "global" else active
    if any(n > h for n, h in zip(need, have)):
        raise ValueError(f"density keeps {need} weights but mask has only {have} active: pruned weights never regrow; "
                         "lower the density or pass a denser mask")


def _mask_dtype(scores, mask):
    return jax.tree.leaves(mask)[0].dtype if mask is not None else jax.dtypes.canonicalize_dtype(jax.tree.leaves(scores)[0].dtype)


def mask_from_scores(scores: Scores, density: float, scope: str, key: jax.Array, *, mask: Mask | None = None,
                     prune_biases: bool = False, collapse: str = "warn") -> Mask:
    """The 0/1 mask keeping exactly ``kept_count(density, P)`` highest-scoring prunable entries.

    scope: "global" ranks all P prunable entries together; "layer" keeps ``kept_count(density, size)`` of each
    prunable matrix (and bias vector, with ``prune_biases``) on its own. Ties are broken at random with ``key``.
    ``mask``: entries it prunes stay pruned (asking to keep more than it has active raises); without
    ``prune_biases`` the biases keep its values (ones without a mask). Works under jit and vmap.
    collapse: what to do when a weight matrix loses all its weights: "warn" (``LayerCollapseWarning``, also
    under jit/vmap), "raise" (ValueError; concrete inputs only), "keep_one" (the best-scored weight of every
    matrix is kept first, even if ``mask`` had already emptied that matrix, and the rest of the count filled
    by rank, so the global count stays exact; with scope "layer" each matrix keeps max(1, its count)), or
    "allow". ``layer_collapse(mask)`` tells which matrices are empty (traceable).
    The mask has the dtype of ``mask`` if given, else of the scores (float64 SynFlow scores give the default
    float dtype, float32 unless x64 is on).

    Parameters
    ----------
    scores : Scores
        A pytree like params.
    density : float
        The fraction of prunable entries kept, in (0, 1].
    scope : {"global", "layer"}
        Rank all entries together or each matrix on its own.
    key : jax.Array
        A ``jax.random.key`` for the tie-breaks.
    mask : Mask, optional
        A mask whose pruned entries stay pruned.
    prune_biases : bool
        Whether biases are prunable.
    collapse : {"warn", "raise", "keep_one", "allow"}
        What to do when a weight matrix loses all its weights.

    Returns
    -------
    Mask
        The 0/1 mask.

    Raises
    ------
    ValueError
        If an option is unknown, ``mask`` has fewer active entries than asked for, or (``collapse="raise"``) a
        matrix collapses.
    """
    density = _check_density(density)
    _checks.one_of("scope", scope, SCOPES)
    _checks.one_of("collapse", collapse, COLLAPSE)
    check_layers("scores", scores)
    _checks.prng_key("key", key)
    if mask is not None:
        _checks.same_tree("mask", mask, scores, "scores")
    counts = _counts(scores, [density], scope, prune_biases, collapse == "keep_one")[0]
    if not _checks.traced(scores):
        bad = [np.count_nonzero(np.isnan(np.asarray(leaf))) for leaf in jax.tree.leaves(scores)]
        if sum(bad):
            raise ValueError(f"scores must not be NaN; {sum(bad)} entries are")
    if mask is not None and not _checks.traced(mask):
        check_mask(scores, mask)
        _check_no_regrowth(mask, counts[None], scope, prune_biases)
    dtype = _mask_dtype(scores, mask)
    with jax.enable_x64(True):  # float64 scores (SynFlow) enter the jitted selection unconverted
        out = _select_jit(scores, mask, counts, key, scope=scope, prune_biases=prune_biases,
                          keep_one=collapse == "keep_one", dtype=dtype)
    _report_collapse(out, collapse)
    return out


# ------------------------------------------------------------------------------------------- ablations


def shuffle_within_layer(mask: Mask, key: jax.Array, *, prune_biases: bool = False) -> Mask:
    """Randomly permute the entries of every weight matrix's mask (and bias mask with ``prune_biases``):
    per-layer densities are kept, the per-weight choice is destroyed (Frankle et al. 2020's layerwise shuffle).

    Parameters
    ----------
    mask : Mask
        The mask.
    key : jax.Array
        A ``jax.random.key``.
    prune_biases : bool
        Shuffle the bias masks too.

    Returns
    -------
    Mask
        The shuffled mask.

    References
    ----------
    J. Frankle, G. K. Dziugaite, D. M. Roy and M. Carbin, *Pruning neural networks at initialization: why are we
    missing the mark?*, ICLR 2021 (arXiv 2020).
    """
    check_layers("mask", mask)
    _checks.prng_key("key", key)
    slots = _slots(mask, prune_biases)
    keys = dict(zip(slots, jax.random.split(key, len(slots))))
    return tuple({name: jax.random.permutation(keys[(i, name)], jnp.ravel(m)).reshape(jnp.shape(m)) if (i, name) in keys else m
                  for name, m in layer.items()} for i, layer in enumerate(mask))


def reinit(mask: Mask, key: jax.Array, *, model: MLP) -> Params:
    """Fresh weights from ``model``'s initialization distribution under the same mask (Frankle et al. 2020).

    Parameters
    ----------
    mask : Mask
        The mask to keep.
    key : jax.Array
        A ``jax.random.key``.
    model : MLP
        The network whose initialization is drawn.

    Returns
    -------
    Params
        Fresh masked parameters.

    References
    ----------
    J. Frankle, G. K. Dziugaite, D. M. Roy and M. Carbin, *Pruning neural networks at initialization: why are we
    missing the mark?*, ICLR 2021 (arXiv 2020).
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a lawrob.nets.MLP, got {type(model).__name__}")
    params = model.init(key)
    _checks.same_tree("mask", mask, params, "model.init(key)")
    return apply_mask(params, mask)

