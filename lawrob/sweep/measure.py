"""The measurement stage of a sweep: one trained run -> its table row.

A row is built from three parts, each a small function of the run:

- ``fit_columns``: how well the network fits (train MSE against sigma2 - eps, accuracy, memorization, noise
  correlation);
- ``bracket``: its certified Lipschitz bracket [lip_lower, lip_upper] (and the exact constant when small);
- ``bound_columns``: p_eff and both papers' bounds in both variants (``None`` with the reason where a theorem's
  conditions fail), and ``margins``: the certified upper bound over the rigorous bound and over the
  constant-free law;

and ``verdict`` says whether the row is a counterexample (a certified upper bound below a rigorous bound).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import bounds, lipschitz, nets
from lawrob.data import Dataset
from lawrob.sweep.config import Run, RunConfig
from lawrob.sweep.inputs import measure_of

__all__ = ["RunState", "bound_columns", "bracket", "failure_row", "fit_columns", "margins", "measure_row", "split_by",
           "verdict"]

_VARIANTS = ("paper", "rigorous")


def _float(x) -> float:
    return float(np.asarray(x))


@dataclasses.dataclass
class RunState:
    """What the stages of a sweep know of one run so far: its inputs, mask, trained parameters, training
    history, information term and the upper-bound method its grid certifies it with (``certificate.
    certificates``: (method, rule)); ``upper_bound``, when a stage already certified the network with that
    method (the frontier's restart selection). ``failure`` is its failure row once a stage failed for it (the later
    stages skip it).

    Parameters
    ----------
    run : Run
        The run.
    dataset : Dataset
        Its data.
    init : nets.Params
        Its initialization.
    upper : tuple of (str, str)
        Its upper-bound method and the rule that chose it.
    mask : nets.Mask, optional
        Its mask, once made.
    params : nets.Params, optional
        Its trained parameters.
    history : dict, optional
        Its training history.
    information : tuple of (float, str), optional
        Its information term.
    columns : dict
        Its extra columns.
    failure : dict, optional
        Its failure row.
    upper_bound : lipschitz.Bound, optional
        Its certified upper bound, when a stage already computed it.
    """

    run: Run
    dataset: Dataset
    init: nets.Params
    upper: tuple[str, str]
    mask: nets.Mask | None = None
    params: nets.Params | None = None
    history: dict | None = None
    information: tuple[float, str] | None = None
    columns: dict = dataclasses.field(default_factory=dict)
    failure: dict | None = None
    upper_bound: lipschitz.Bound | None = None

    def fail(self, stage: str, reason: str, **columns: object) -> None:
        self.failure = failure_row(stage, reason, **columns)


def split_by(states: list[RunState], key: Callable[[RunState], Any]) -> list[list[RunState]]:
    """The states split by ``key(state)``, in first-appearance order (one batched call per part).

    Parameters
    ----------
    states : list of RunState
        The states.
    key : callable
        state -> a hashable part key.

    Returns
    -------
    list of list of RunState
        The parts.
    """
    parts: dict = {}
    for state in states:
        parts.setdefault(key(state), []).append(state)
    return list(parts.values())


def failure_row(stage: str, reason: str, **columns: object) -> dict:
    """The row of a run that could not be measured: it does not fit, ``fit_reason`` says why, ``failed_stage``
    names the stage (masks, train, information, measure); the other measured columns stay empty.

    Parameters
    ----------
    stage : str
        The stage that failed.
    reason : str
        Why.
    **columns
        Columns to keep.

    Returns
    -------
    dict
        The row.
    """
    return {"fits_below_noise": False, "fit_reason": f"{stage}: {reason}", "failed_stage": stage,
            "diverged": False, **columns}


def fit_columns(config: RunConfig, dataset: Dataset, history: dict) -> dict:
    """The fit of the trained network: it fits below the noise level when train MSE <= sigma2 - eps (the
    theorems' hypothesis, BS21 Thm 3 / NFP Thm 4), with the reason when it does not.

    Parameters
    ----------
    config : RunConfig
        The run's settings.
    dataset : Dataset
        Its data.
    history : dict
        Its training history.

    Returns
    -------
    dict
        The fit's columns.

    References
    ----------
    BS Theorem 3; NFP Theorem 4.
    """
    sigma2 = _float(dataset.sigma2)
    mse = _float(history["mse"][-1])
    steps = int(history["steps_run"])
    fits = mse <= sigma2 - config.eps
    return {"sigma2": sigma2, "train_mse": mse, "fits_below_noise": bool(fits),
            "fit_reason": "" if fits else f"train MSE {mse:.4g} > sigma2 - eps = {sigma2 - config.eps:.4g} after {steps} steps",
            "train_accuracy": _float(history["accuracy"][-1]), "memorized": _float(history["memorized"][-1]),
            "noise_corr": _float(history["noise_corr"][-1]), "steps_run": steps}


def bracket(state: RunState, model: nets.MLP, lower: lipschitz.Bound | None = None,
            upper: lipschitz.Bound | None = None) -> dict:
    """The certified bracket lip_lower <= Lip <= lip_upper with the methods that gave it (the run's
    ``lower_method``; its grid's upper-bound method and the rule that chose it), and the exact constant
    ``lip_exact`` when the activation is one ``lipschitz.exact`` handles and the hidden units are at most
    ``lip_exact_max_hidden``. ``lower``/``upper``: bounds already computed by a batched call, else computed here.
    Where the grid's method gives no bound (a LipSDP certificate that does not verify in float64), "best" does,
    and ``lip_upper_rule`` says so: the row then has another certificate type and is fitted apart.

    Parameters
    ----------
    state : RunState
        The trained run.
    model : nets.MLP
        Its network.
    lower : lipschitz.Bound, optional
        A lower bound already computed.
    upper : lipschitz.Bound, optional
        An upper bound already computed.

    Returns
    -------
    dict
        The bracket's columns.
    """
    config, params, mask = state.run.config, state.params, state.mask
    if lower is None:
        lower = lipschitz.lower(params, mask, model=model, key=state.run.keys.lipschitz, points=state.dataset.x,
                                method=config.lower_method, starts=config.lip_search_starts)
    method, rule = state.upper
    if upper is None:
        try:
            upper = lipschitz.upper(params, mask, model=model, method=method)
        except RuntimeError as error:  # no bound from that method (e.g. a certificate that did not verify)
            upper = lipschitz.upper(params, mask, model=model, method="best")
            rule = f"fallback to best, {method} gave no bound: {str(error)[:200]}"
    start = time.perf_counter()
    exact = None
    if model.activation in lipschitz.EXACT_ACTIVATIONS and sum(model.sizes[1:-1]) <= config.lip_exact_max_hidden:
        exact = lipschitz.exact(params, mask, model=model)
    return {"lip_lower": lower.value, "lip_upper": upper.value, "lip_exact": None if exact is None else exact.value,
            "lip_lower_method": lower.method, "lip_upper_method": upper.method, "lip_upper_rule": rule,
            "lip_seconds": round(lower.seconds + upper.seconds + time.perf_counter() - start, 3)}


def bound_columns(config: RunConfig, model: nets.MLP, dataset: Dataset, params: nets.Params, mask: nets.Mask,
                  information: tuple[float, str]) -> dict:
    """p_eff = I(m; D) + active x log-factor (NFP Thm 4, ``bounds.p_eff``) and both papers' bounds in both
    variants. ``information``: (bits, source) from ``masks.information_bits``. The parameter box is
    ``param_box``, or max(1, max |w|) of the trained weights when 0 (a class read off after training); a bound
    is None with its reason when the measure is not c-isoperimetric, the labels are unbounded or the weights
    leave the box.

    Parameters
    ----------
    config : RunConfig
        The run's settings.
    model : nets.MLP
        Its network.
    dataset : Dataset
        Its data.
    params : nets.Params
        Its trained parameters.
    mask : nets.Mask
        Its mask.
    information : tuple of (float, str)
        (bits, source).

    Returns
    -------
    dict
        The p_eff and bound columns.

    References
    ----------
    BS Theorem 3; NFP Theorem 4. docs/theory.md, sections 3.3 and 4.3.
    """
    active = nets.count_active(mask, include_biases=True)
    radius = float(jnp.max(jnp.linalg.norm(dataset.x, axis=1)))
    box = config.param_box or None
    largest = max(float(jnp.max(jnp.abs(leaf))) for leaf in jax.tree.leaves(params))
    consts = nets.parametrization_constants(model, params, mask, radius=radius, box=box)
    dense_consts = nets.parametrization_constants(model, params, radius=radius, box=box)
    info_bits, info_source = information
    peff = float(bounds.p_eff(info_bits, active, consts.W, consts.J, config.eps, units="bits"))
    measure = measure_of(config)
    c, k = measure.c, measure.k
    row = {"active": active, "p": model.num_params, "W": consts.W, "J": consts.J, "radius": radius,
           "max_abs_weight": largest, "info_bits": info_bits, "info_source": info_source, "p_eff": peff, "c": c, "k": k,
           "scaling_sqrt_nd_over_peff": math.sqrt(config.n * config.d / peff)}
    why_not = ("measure not c-isoperimetric" if c is None else "labels unbounded" if not dataset.bounded else
               f"weights leave the box: max |w| = {largest:.4g} > param_box = {box:g}" if box is not None and largest > box
               else None)
    for variant in _VARIANTS:
        if why_not is not None or c is None:  # (c is None only with a why_not: the test narrows c's type)
            row |= {f"bound_bs_{variant}": None, f"bound_nfp_{variant}": None, f"bound_reason_{variant}": why_not}
            continue
        bs = bounds.bubeck_sellke(config.n, config.d, model.num_params, config.eps, config.delta, dense_consts.W,
                                  dense_consts.J, c=c, k=k, variant=variant)
        nfp = bounds.no_free_prune(config.n, config.d, peff, config.eps, config.delta, c=c, k=k, variant=variant)
        row[f"bound_bs_{variant}"] = float(bs.value) if bool(bs.valid) else None
        row[f"bound_nfp_{variant}"] = float(nfp.value) if bool(nfp.valid) else None
        row[f"bound_reason_{variant}"] = "; ".join(r for r in (str(bs.reason), str(nfp.reason)) if r)
    return row


def margins(row: dict, n: int, d: int) -> dict:
    """How far the certified upper bound U = lip_upper sits above what the law asks: ``upper_over_bound`` =
    U / the largest valid rigorous bound (BS or NFP; None when neither is valid), a check ``bound <= U`` is only
    as informative as this ratio is close to 1; and ``upper_over_scaling`` = U / sqrt(n d / active), the
    constant-free law (Bubeck & Sellke 2021, Thm 1 with p = active weights). ``row`` needs ``lip_upper``,
    ``active`` and the rigorous bound columns; ``n`` and ``d`` are the run's.

    Parameters
    ----------
    row : dict
        A measured row.
    n : int
        The run's number of samples.
    d : int
        The run's input dimension.

    Returns
    -------
    dict
        ``upper_over_bound`` and ``upper_over_scaling``.

    References
    ----------
    Bubeck & Sellke 2021, Theorem 1.
    """
    rigorous = [row[key] for key in ("bound_bs_rigorous", "bound_nfp_rigorous") if row.get(key) is not None]
    upper = row["lip_upper"]
    return {"upper_over_bound": upper / max(rigorous) if rigorous and max(rigorous) > 0 else None,
            "upper_over_scaling": upper / math.sqrt(n * d / row["active"]) if row["active"] else None}


def verdict(row: dict) -> bool:
    """A counterexample to a theorem (or a bug): the run fits below the noise level and its certified upper
    bound is below a valid rigorous bound (BS or NFP).

    Parameters
    ----------
    row : dict
        A measured row.

    Returns
    -------
    bool
        Whether the row contradicts a valid rigorous bound.
    """
    rigorous = [row[key] for key in ("bound_bs_rigorous", "bound_nfp_rigorous") if row.get(key) is not None]
    return bool(row.get("fits_below_noise") and rigorous and row["lip_upper"] < max(rigorous))


def measure_row(state: RunState, model: nets.MLP, lower: lipschitz.Bound | None = None,
                upper: lipschitz.Bound | None = None) -> dict:
    """One trained run's measured columns: ``fit_columns``, ``bracket``, ``bound_columns`` and the verdict
    ``bound_violation``.

    Parameters
    ----------
    state : RunState
        The trained run.
    model : nets.MLP
        Its network.
    lower : lipschitz.Bound, optional
        A lower bound already computed.
    upper : lipschitz.Bound, optional
        An upper bound already computed.

    Returns
    -------
    dict
        The measured columns.
    """
    config = state.run.config
    row = fit_columns(config, state.dataset, state.history)  # type: ignore[arg-type]  # set by training before measuring
    row |= bracket(state, model, lower, upper)
    row |= bound_columns(config, model, state.dataset, state.params, state.mask, state.information)  # type: ignore[arg-type]  # set by the mask stage
    row |= margins(row, config.n, config.d)
    return row | {"bound_violation": verdict(row)}
