"""The frontier stage of a sweep: for the runs whose objective is "robust", the most robust network that fits.

A run's plain fit is the first start of ``robust.frontier``. With ``robust_restarts`` = R > 1 the run also trains
R - 1 further initializations of the same architecture under the same mask and data (restart r: init key
fold_in(init key, r), training key fold_in(training key, r)), searches from each, certifies every restart that
fits with the grid's upper-bound method and keeps the one with the smallest certified upper bound. The constrained
problem is non-convex: one search from one initialization sat 3.4x above the best of 20 (benchmarks/RESULTS.md,
"frontier search"), so the frontier L*(n, k, mask) is the least over restarts, and the selection is by the
certificate that the run reports, never by the search's own estimate. All restarts of all runs of a part train
in one batched call per step of the search.

Columns: ``robust_target`` (the constraint the kept network fit under), ``robust_trials_fit``, ``robust_restart``
(which restart was kept; 0 is the run's own initialization), ``robust_restarts_fit`` (how many restarts fit),
``robust_restart_spread`` (largest over smallest certified upper bound among them; None with fewer than two) and
``train_steps_total`` (every optimizer step of every restart, plain fits included).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import lipschitz, nets, robust, train
from lawrob.sweep.inputs import train_options
from lawrob.sweep.masks import error_text
from lawrob.sweep.measure import RunState, split_by

__all__ = ["frontier_stage"]


def _pick(tree, index: int):
    return jax.tree.map(lambda a: a[index], tree)


def _restart_fits(part: list[RunState], model: nets.MLP, restarts: int, devices):
    """Plain fits of restarts 1 .. R - 1 of every run of ``part``, restart-major (index (r - 1) B + b), in one
    batched call: (params, history, training keys)."""
    pairs = [(r, s) for r in range(1, restarts) for s in part]
    keys = jnp.stack([jax.random.fold_in(s.run.keys.train, r) for r, s in pairs])
    params, history = train.fit_batched(
        train.stack([model.init(jax.random.fold_in(s.run.keys.init, r)) for r, s in pairs]),
        train.stack([s.mask for _, s in pairs]), train.stack([s.dataset for _, s in pairs]), model=model, keys=keys,
        learning_rate=jnp.asarray([s.run.config.learning_rate for _, s in pairs]), devices=devices,
        **train_options(part[0].run.config))
    return params, history, keys


def _certified(params, mask, model: nets.MLP, method: str, candidates: list[int]) -> dict[int, lipschitz.Bound]:
    """{index: certified upper bound by ``method``} of the candidate networks; one that gets no bound (a
    certificate that does not verify) is left out, so it cannot be selected."""
    out: dict[int, lipschitz.Bound] = {}
    for i in candidates:
        try:
            out[i] = lipschitz.upper(_pick(params, i), _pick(mask, i), model=model, method=method)
        except RuntimeError:
            pass
    return out


def _search(part: list[RunState], model: nets.MLP, devices) -> None:
    config = part[0].run.config
    restarts, size = config.robust_restarts, len(part)
    params, history = train.stack([s.params for s in part]), train.stack([s.history for s in part])
    keys = jnp.stack([s.run.keys.train for s in part])
    if restarts > 1:
        more_params, more_history, more_keys = jax.device_get(_restart_fits(part, model, restarts, devices))
        params, history = (jax.tree.map(lambda a, b: np.concatenate([a, b]), old, new)
                           for old, new in ((params, more_params), (history, more_history)))
        keys = jnp.concatenate([keys, more_keys])
    masks = train.stack([s.mask for s in part] * restarts)
    datasets = train.stack([s.dataset for s in part] * restarts)
    found = jax.device_get(robust.frontier(
        params, history, masks, datasets, model=model, keys=keys, eps=config.eps, trials=config.robust_trials,
        spread=config.robust_spread, learning_rate=jnp.asarray([s.run.config.learning_rate for s in part] * restarts),
        **train_options(config)))
    fits = robust.fits_below_noise(found.history, np.asarray(datasets.sigma2, np.float64).reshape(-1), config.eps)
    fits &= ~np.asarray(found.history["diverged"])
    steps = found.steps.reshape(restarts, size).sum(axis=0)
    for b, state in enumerate(part):
        fitted = [r * size + b for r in range(restarts) if fits[r * size + b]]
        bounds = _certified(found.params, masks, model, state.upper[0], fitted) if restarts > 1 else {}
        kept = min(bounds, key=lambda i: bounds[i].value) if bounds else b
        values = sorted(bound.value for bound in bounds.values())
        state.params, state.history = _pick(found.params, kept), _pick(found.history, kept)
        state.upper_bound = bounds.get(kept)
        target = float(found.target[kept])
        state.columns |= {"robust_target": target if np.isfinite(target) else None,
                          "robust_trials_fit": int(found.trials_fit[kept]), "train_steps_total": int(steps[b]),
                          "robust_restart": kept // size, "robust_restarts_fit": len(fitted),
                          "robust_restart_spread": values[-1] / values[0] if len(values) > 1 else None}


def frontier_stage(states: list[RunState], model: nets.MLP, devices: Sequence | None = None) -> None:
    """For the healthy runs whose objective is "robust": the most robust network found over their restarts
    (module docstring), one part per (trials, spread, restarts, upper-bound method).

    Parameters
    ----------
    states : list of RunState
        The group's runs after training; updated in place (parameters, history, columns, ``upper_bound``).
    model : nets.MLP
        The group's architecture.
    devices : sequence of jax.Device, optional
        Shard the restarts' plain fits over these (``train.fit_batched``).

    Notes
    -----
    A part whose search raises gives each of its runs a failure row (stage "frontier"), never an abort.
    """
    healthy = [s for s in states if s.failure is None]
    for state in healthy:
        state.columns["train_steps_total"] = int(state.history["steps_run"])  # type: ignore[index]  # healthy runs are trained
    todo = [s for s in healthy if s.run.config.objective == "robust"]
    for part in split_by(todo, lambda s: (s.run.config.robust_trials, s.run.config.robust_spread,
                                     s.run.config.robust_restarts, s.upper[0])):
        try:
            _search(part, model, devices)
        except Exception as error:  # noqa: BLE001 - recorded in the runs' rows
            for state in part:
                state.fail("frontier", error_text(error))
