"""The mask stage of a sweep: every run's pruning mask, and the information its pruning pipeline extracts.

One-shot methods (``prune.METHODS[m].trains`` false) prune run by run; training-based pipelines (IMP,
MagAfter, any registered one) run batched per (method, density, imp_rate), and a batch that fails is retried
run by run so that one failing run does not take the others with it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import bounds, info, nets, prune, train
from lawrob.sweep.config import Run
from lawrob.sweep.inputs import dataset_of, train_options

__all__ = ["error_text", "estimated_information", "information_bits", "make_masks"]


def error_text(error: Exception) -> str:
    """One line (at most 500 characters) naming an exception and its message, for a run's ``fit_reason``.

    Parameters
    ----------
    error : Exception
        The exception.

    Returns
    -------
    str
        One line.
    """
    return f"{type(error).__name__}: {error}".splitlines()[0][:500]


def _batched_masks(method: str, runs: list[Run], model: nets.MLP, inits: list, datasets: list) -> tuple[list, list[dict]]:
    """Masks of runs of a training-based method (``prune.METHODS[method].pipeline``) that share a density,
    found with one batched pruning pipeline."""
    config = runs[0].config
    fit_options = train_options(config) | {"learning_rate": jnp.asarray([r.config.learning_rate for r in runs])}
    # a training-based method has a pipeline
    return prune.METHODS[method].pipeline(train.stack(inits), train.stack(datasets), config.density, model=model,  # type: ignore[misc]
                                          keys=jnp.stack([r.keys.mask for r in runs]), rate=config.imp_rate,
                                          **fit_options)


def make_masks(runs: list[Run], model: nets.MLP, inits: list, datasets: list) -> tuple[list, list[dict], dict[int, str]]:
    """Every run's mask and extra columns, and {run index: why its pruning failed}; a failed run's mask is None.

    Parameters
    ----------
    runs : list of Run
        The runs of one shape group.
    model : nets.MLP
        Their network.
    inits : list
        Their initializations.
    datasets : list
        Their data sets.

    Returns
    -------
    tuple of (list, list of dict, dict)
        The masks, extra columns and failures.
    """
    masks: list[Any]
    extras: list[dict]
    failed: dict[int, str]
    masks, extras, failed = [None] * len(runs), [{} for _ in runs], {}
    batched: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        config = run.config
        if config.method == "dense" or config.density == 1.0:
            masks[i] = nets.dense_mask(inits[i])
        elif prune.METHODS[config.method].trains:
            batched.setdefault((config.method, config.density, config.imp_rate), []).append(i)
        else:
            try:
                masks[i] = prune.prune(config.method, inits[i], datasets[i], config.density, run.keys.mask, model=model,
                                       loss=config.loss, collapse="allow")
            except Exception as error:  # noqa: BLE001 - recorded in the run's row
                failed[i] = error_text(error)
    for (method, *_), idx in batched.items():
        tries = [idx]
        while tries:
            part = tries.pop()
            try:
                found, extra = _batched_masks(method, [runs[i] for i in part], model, [inits[i] for i in part],
                                              [datasets[i] for i in part])
            except Exception as error:  # noqa: BLE001 - retried run by run, then recorded in the run's row
                if len(part) > 1:
                    tries += [[i] for i in part]
                else:
                    failed[part[0]] = error_text(error)
                continue
            for i, m, e in zip(part, found, extra):
                masks[i], extras[i] = m, e
    return masks, extras, failed


def estimated_information(run: Run, model: nets.MLP, init: nets.Params) -> tuple[float, str]:
    """An upper bound on I(m; D) for the run's pruning pipeline, in bits, and a note saying what it is.

    The pipeline (``make_masks``: same initialization, same mask key) runs on ``info_datasets`` fresh data sets
    from the run's generator; for a pipeline deterministic given (init, D), I(m; D) <= H(m | init) (NFP Sec. 1.4),
    bounded above by ``lawrob.info.estimate_information``'s ``upper``: the least 95 % upper confidence bound
    among the plug-in, Chow-Liu and marginal estimators and the count ceiling.

    Parameters
    ----------
    run : Run
        The run.
    model : nets.MLP
        Its network.
    init : nets.Params
        Its initialization.

    Returns
    -------
    tuple of (float, str)
        The bound in bits and what it is.

    References
    ----------
    NFP Section 1.4. docs/theory.md, section 2.5.
    """
    count = run.config.info_datasets
    datasets = [dataset_of(run.config, key) for key in jax.random.split(run.keys.info, count)]
    masks, _, failed = make_masks([run] * count, model, [init] * count, datasets)
    if failed:
        raise ValueError(f"the pruning pipeline failed on {len(failed)} of {count} fresh data sets: {next(iter(failed.values()))}")
    leaves = [jax.tree.leaves(m) for m in masks]
    flat = np.stack([np.concatenate([np.ravel(np.asarray(leaf)) for leaf in ls]) for ls in leaves])
    estimate = info.estimate_information(flat, groups=[leaf.size for leaf in leaves[0]])
    return estimate.upper, (f"{estimate.confidence:.0%} upper bound on H(m | init) >= I(m;D) from {count} data sets "
                            "(least of plug-in, Chow-Liu, marginal, ceiling)")


def information_bits(run: Run, model: nets.MLP, init: nets.Params, mask: nets.Mask) -> tuple[float, str]:
    """The I(m; D) that goes into the run's p_eff, in bits, and what it is: 0 for a mask fixed without the data,
    else the ceiling log2 C(p, k) or, with ``info = "estimate"``, ``estimated_information``.

    Parameters
    ----------
    run : Run
        The run.
    model : nets.MLP
        Its network.
    init : nets.Params
        Its initialization.
    mask : nets.Mask
        Its mask.

    Returns
    -------
    tuple of (float, str)
        The bits and what they are.
    """
    config = run.config
    if prune.METHODS[config.method].data_free or config.density == 1.0:
        return 0.0, "mask fixed without the data (data-free method or dense): I(m;D) = 0"
    if config.info == "estimate":
        return estimated_information(run, model, init)
    return float(bounds.log2_binomial(model.num_weights, nets.count_active(mask))), "ceiling log2 C(p, k) >= H(m) >= I(m;D)"
