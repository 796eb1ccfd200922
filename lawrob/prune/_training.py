"""Training-based pruning: iterative magnitude pruning with rewinding (``imp``) and magnitude pruning after
training (``mag_after``), one run or B stacked runs (``batched=True``), and their pipelines for the registry.
Import every name from ``lawrob.prune``."""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks
from lawrob.data import Dataset, check_dataset
from lawrob.nets import MLP, Mask, Params, check_params
from lawrob.progress import logger
from lawrob.prune._masking import (
    COLLAPSE, SCOPES, _check_density, _counts, _report_collapse, _select_jit, _select_runs, mask_from_scores)
from lawrob.prune._methods import register_method
from lawrob.prune._scores import magnitude
from lawrob.train import fit, fit_batched, unstack


class ImpResult(NamedTuple):
    """Iterative magnitude pruning, one entry per round r = 0..R-1 (leading run axis when batched).

    masks[r]: the mask after round r's pruning, keeping ``kept_count((1 - rate)^(r+1), P)`` weights.
    params[r], histories[r]: the network trained with masks[r] from the rewound weights, and its training
    history (``lawrob.train.fit``'s: loss, accuracy, memorized, noise_corr, ...).
    dense_params, dense_history: the dense training whose magnitudes round 0 prunes, run from
    ``rewind_params`` for steps - rewind_step steps (its "step" counts from the rewind point).
    rewind_params: the saved weights every round restarts from: the initialization, or the dense network
    after ``rewind_step`` steps.

    Parameters
    ----------
    masks : tuple
        The mask of each round.
    params : tuple
        The trained parameters of each round.
    histories : tuple
        The training history of each round.
    dense_params : Params
        The dense training's parameters.
    dense_history : dict
        The dense training's history.
    rewind_params : Params
        The weights every round restarts from.
    """

    masks: tuple
    params: tuple
    histories: tuple
    dense_params: Params
    dense_history: dict
    rewind_params: Params


def _split(keys: jax.Array, n: int) -> jax.Array:
    """n keys per run: [n] for one key, [B, n] for a batch of B keys."""
    return jax.random.split(keys, n) if keys.ndim == 0 else jax.vmap(lambda k: jax.random.split(k, n))(keys)


def _as_key(key, name: str = "key", ndim: int = 0) -> jax.Array:
    """A typed key (array) from a typed or legacy raw one, raising a TypeError naming ``name`` for anything else."""
    key = _checks.prng_key(name, key, ndim)
    return key if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else jax.random.wrap_key_data(jnp.asarray(key))


def _magnitude_rounds(params, data, densities, key, *, model, steps, rewind_step, scope, prune_biases, collapse,
                      batched, fit_options) -> ImpResult:
    """Train dense, then per density: prune the trained weights by magnitude, rewind, retrain. One run, or B
    stacked runs with ``batched`` (``key``: B keys). The arguments shared by ``imp`` and ``mag_after`` are checked
    here."""
    batched = _checks.boolean("batched", batched)
    key = _as_key(key, ndim=int(batched))
    steps, rewind_step = _check_training(steps, rewind_step, scope, collapse, model, params, data, batched)
    train = _trainer(data, model, fit_options, batched)
    select = _select_runs if batched else _select_jit
    n = len(densities)
    halves = _split(key, 2)
    key_train, key_prune = halves[..., 0], halves[..., 1]
    train_keys, prune_keys = _split(key_train, n + 2), _split(key_prune, n)
    one_run = params if key.ndim == 0 else jax.tree.map(lambda a: a[0], params)
    counts = _counts(one_run, densities, scope, prune_biases, collapse == "keep_one")
    dense = jax.tree.map(jnp.ones_like, params)
    rewind_params = params
    if rewind_step:
        rewind_params, _ = train(params, dense, train_keys[..., 0], rewind_step, pre_rewind=True)
    start = time.perf_counter()
    trained, dense_history = train(rewind_params, dense, train_keys[..., 1], steps - rewind_step)
    logger.info(f"pruning: dense network trained ({time.perf_counter() - start:.0f} s); {n} magnitude round(s) to go")
    mask, masks, outs, histories = dense, [], [], []
    dense_params = trained
    for r in range(n):
        mask = select(magnitude(trained, mask), mask, counts[r], prune_keys[..., r], scope=scope,
                      prune_biases=prune_biases, keep_one=collapse == "keep_one", dtype=jax.tree.leaves(params)[0].dtype)
        _report_collapse(mask, collapse)
        trained, history = train(rewind_params, mask, train_keys[..., r + 2], steps - rewind_step)
        logger.info(f"pruning: round {r + 1}/{n} trained at density {densities[r]:.4g} "
                    f"({time.perf_counter() - start:.0f} s elapsed)")
        masks.append(mask)
        outs.append(trained)
        histories.append(history)
    return ImpResult(tuple(masks), tuple(outs), tuple(histories), dense_params, dense_history, rewind_params)


def _check_training(steps, rewind_step, scope, collapse, model, params, data, batched=False) -> tuple[int, int]:
    """The shared arguments of the training-based pruners (params and data of run 0 when ``batched``)."""
    one = (lambda tree: jax.tree.map(lambda a: a[0], tree)) if batched else (lambda tree: tree)
    check_params(model, one(params))
    check_dataset(data, model.d, batched=batched)
    _checks.one_of("scope", scope, SCOPES)
    _checks.one_of("collapse", collapse, COLLAPSE)
    steps = _checks.positive_int("steps", steps)
    rewind_step = _checks.positive_int("rewind_step", rewind_step, minimum=0)
    if rewind_step >= steps:
        raise ValueError(f"rewind_step must lie in [0, steps={steps}), got {rewind_step}")
    return steps, rewind_step


def _imp_densities(rounds, rate) -> list[float]:
    rounds = _checks.positive_int("rounds", rounds)
    rate = _checks.real_in("rate", rate, 0.0, 1.0, low_open=True, high_open=True)
    return [(1 - rate) ** (r + 1) for r in range(rounds)]


def _trainer(data, model, fit_options, batched: bool):
    """train(params, mask, key(s), steps, pre_rewind) with ``fit`` or ``fit_batched``; the segment before the
    rewind point logs once (its length need not be a multiple of log_every)."""
    def train(params, mask, keys, steps, pre_rewind=False):
        options = {**fit_options, "log_every": None} if pre_rewind else fit_options
        if batched:
            return fit_batched(params, mask, data, model=model, steps=steps, keys=keys, **options)
        return fit(params, mask, data, model=model, steps=steps, key=keys, **options)
    return train


def imp(params: Params, data: Dataset, *, model: MLP, rounds: int, steps: int, key: jax.Array, rate: float = 0.2,
        rewind_step: int = 0, scope: str = "global", prune_biases: bool = False, collapse: str = "warn",
        batched: bool = False, **fit_options: Any) -> ImpResult:
    """Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; rewinding to step k: Frankle et al. 2020).

    Train the dense network (``steps`` steps of ``lawrob.train.fit`` with ``fit_options``), saving its weights
    at step ``rewind_step`` (0: the initialization). Then for r = 0..R-1: remove the lowest-magnitude weights
    of the last trained network (globally by default) so that ``kept_count((1 - rate)^(r+1), P)`` remain
    (about ``rate`` of the remaining ones; counting from P each round keeps the densities on the grid
    (1 - rate)^k instead of compounding rounding), set the rest back to the saved weights, and train
    steps - rewind_step steps. Every training starts a fresh optimizer state. ``key`` draws the training keys
    (minibatches, gradient noise) and the tie-breaks. Returns an ``ImpResult``.

    ``batched=True``: B runs at once. ``params`` and ``data`` are stacked (``lawrob.train.stack``) and ``key``
    holds one key per run (shape [B], e.g. ``jax.random.split(key, B)``). Each training is one
    ``lawrob.train.fit_batched`` call (``fit_options`` may include its ``chunk_size``), each pruning one vmapped
    selection; run i equals the unbatched call on run i with ``key[i]`` (up to the float rounding differences
    between ``fit_batched`` and ``fit``). Every entry of the result then has a leading run axis.

    Parameters
    ----------
    params : Params
        The initialization (stacked with ``batched``).
    data : Dataset
        The training data (stacked with ``batched``).
    model : MLP
        The network.
    rounds : int
        R, the number of pruning rounds.
    steps : int
        Training steps of the dense training and of each round.
    key : jax.Array
        A ``jax.random.key`` (one per run with ``batched``).
    rate : float
        The fraction pruned per round, in (0, 1).
    rewind_step : int
        The step rewound to, 0 <= rewind_step < steps.
    scope : {"global", "layer"}
        As in ``mask_from_scores``.
    prune_biases : bool
        Whether biases are prunable.
    collapse : str
        As in ``mask_from_scores``.
    batched : bool
        Run B stacked runs at once.
    **fit_options
        Keywords of ``lawrob.train.fit`` (or ``fit_batched``).

    Returns
    -------
    ImpResult
        The masks, trained networks and histories of every round.

    Raises
    ------
    ValueError
        If a count or rate is out of range.

    References
    ----------
    J. Frankle and M. Carbin, *The lottery ticket hypothesis*, ICLR 2019; J. Frankle, G. K. Dziugaite, D. M. Roy and
    M. Carbin, *Linear mode connectivity and the lottery ticket hypothesis*, ICML 2020.
    """
    return _magnitude_rounds(params, data, _imp_densities(rounds, rate), key, model=model, steps=steps,
                             rewind_step=rewind_step, scope=scope, prune_biases=prune_biases, collapse=collapse,
                             batched=batched, fit_options=fit_options)


def mag_after(params: Params, data: Dataset, density: float, *, model: MLP, steps: int, key: jax.Array,
              rewind_step: int = 0, scope: str = "global", prune_biases: bool = False, collapse: str = "warn",
              batched: bool = False, **fit_options: Any) -> ImpResult:
    """Magnitude pruning after training ("MagAfter"): train dense, keep the ``kept_count(density, P)``
    largest-magnitude weights in one shot, retrain from the rewound weights. The ``ImpResult`` has one round.
    ``batched=True``: B stacked runs, ``key`` of shape [B] (as in ``imp``).

    Parameters
    ----------
    params : Params
        The initialization (stacked with ``batched``).
    data : Dataset
        The training data.
    density : float
        The fraction kept, in (0, 1].
    model : MLP
        The network.
    steps : int
        Training steps of each training.
    key : jax.Array
        A ``jax.random.key`` (one per run with ``batched``).
    rewind_step : int
        The step rewound to.
    scope : {"global", "layer"}
        As in ``mask_from_scores``.
    prune_biases : bool
        Whether biases are prunable.
    collapse : str
        As in ``mask_from_scores``.
    batched : bool
        Run B stacked runs at once.
    **fit_options
        Keywords of ``lawrob.train.fit``.

    Returns
    -------
    ImpResult
        One round.
    """
    return _magnitude_rounds(params, data, [_check_density(density)], key, model=model, steps=steps,
                             rewind_step=rewind_step, scope=scope, prune_biases=prune_biases, collapse=collapse,
                             batched=batched, fit_options=fit_options)


def imp_schedule(density: float, rate: float) -> tuple[int, bool]:
    """(k, exact): the number k of full IMP rounds with (1 - rate)^k >= density, and whether (1 - rate)^k == density
    (otherwise one more magnitude pruning of round k's trained weights reaches the density exactly).

    Parameters
    ----------
    density : float
        The target density, in (0, 1].
    rate : float
        The fraction pruned per round, in (0, 1).

    Returns
    -------
    tuple of (int, bool)
        (k, exact).
    """
    k = math.floor(math.log(density) / math.log(1 - rate) + 1e-9)
    return k, math.isclose((1 - rate) ** k, density, rel_tol=1e-9)


def imp_to_density(params: Params, data: Dataset, density: float, *, model: MLP, keys: jax.Array, rate: float = 0.2,
                   **fit_options: Any) -> tuple[list[Mask], list[dict]]:
    """The pipeline of the method "imp" on B stacked runs: the k full rounds of batched ``imp`` with
    (1 - rate)^k >= density (``imp_schedule``), then, unless (1 - rate)^k == density, one magnitude pruning of
    round k's trained weights to exactly ``density`` (tie-breaks from ``fold_in(keys[b], k)``). Layer collapse is
    allowed (the caller reports it). Returns each run's mask and its extra columns ``imp_rounds`` and
    ``imp_round_noise_peaks`` (the largest noise correlation of each round's training).

    Parameters
    ----------
    params : Params
        Stacked initializations.
    data : Dataset
        Stacked data.
    density : float
        The target density.
    model : MLP
        The network.
    keys : jax.Array
        One key per run.
    rate : float
        The fraction pruned per round.
    **fit_options
        Keywords of ``lawrob.train.fit_batched``.

    Returns
    -------
    tuple of (list of Mask, list of dict)
        Each run's mask and extra columns.
    """
    k, exact = imp_schedule(_check_density(density), rate)
    if k == 0:
        raise ValueError(f"imp at density {density:g} needs rate <= 1 - density (one full round), got rate = {rate:g}")
    result = imp(params, data, model=model, rounds=k, rate=rate, key=keys, collapse="allow", batched=True,
                 **fit_options)
    masks = unstack(result.masks[-1])
    if not exact:
        last = unstack(result.params[-1])
        keys = _as_key(keys, "keys", ndim=1)
        masks = [mask_from_scores(magnitude(p, m), density, "global", jax.random.fold_in(keys[b], k), mask=m,
                                  collapse="allow") for b, (p, m) in enumerate(zip(last, masks))]
    peaks = np.stack([np.max(np.asarray(h["noise_corr"]), axis=-1) for h in result.histories], axis=1)  # [runs, rounds]
    return masks, [{"imp_rounds": k + (not exact), "imp_round_noise_peaks": p.tolist()} for p in peaks]


def mag_after_to_density(params: Params, data: Dataset, density: float, *, model: MLP, keys: jax.Array,
                         rate: float | None = None, **fit_options: Any) -> tuple[list[Mask], list[dict]]:
    """The pipeline of the method "mag_after" on B stacked runs (batched ``mag_after``, layer collapse allowed;
    ``rate`` is not used): each run's mask and no extra columns.

    Parameters
    ----------
    params : Params
        Stacked initializations.
    data : Dataset
        Stacked data.
    density : float
        The density.
    model : MLP
        The network.
    keys : jax.Array
        One key per run.
    rate : float, optional
        Not used (the pipelines share a signature).
    **fit_options
        Keywords of ``lawrob.train.fit_batched``.

    Returns
    -------
    tuple of (list of Mask, list of dict)
        Each run's mask and no extra columns.
    """
    masks = unstack(mag_after(params, data, density, model=model, key=keys, collapse="allow", batched=True,
                              **fit_options).masks[0])
    return masks, [{} for _ in masks]


register_method("imp", pipeline=imp_to_density)
register_method("mag_after", pipeline=mag_after_to_density)
