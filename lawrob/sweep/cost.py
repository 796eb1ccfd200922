"""``lawrob sweep --dry-run``: the runs, shape groups and estimated cost of a grid, from its outline (no run is
listed, so a grid of millions of runs plans at once)."""

from __future__ import annotations

from lawrob import _checks, prune
from lawrob.sweep.config import SHAPE_KEYS, RunConfig
from lawrob.sweep.grid import PLAN_KEYS, Grid
from lawrob.sweep.inputs import model_of

# Cost model of --dry-run, fitted to sweeps measured on the 2-core development CPU (benchmarks/RESULTS.md,
# "dry-run estimate vs actual"). A group compiles its training, its upper bounds and its lower-bound search once
# (and its pruning pipeline when it has IMP or MagAfter runs); each batched training call costs a latency per
# step plus its arithmetic; each run's measurement grows with the cube of N = d + hidden units (the SDP).
COMPILE_SECONDS_PER_GROUP = 26.0
PIPELINE_COMPILE_SECONDS = 8.0
STEP_SECONDS = 8e-4
TRAIN_FLOPS_PER_SECOND = 1.0e11
EVAL_SECONDS_PER_RUN = 0.3
EVAL_REFERENCE_N = 130
WARN_RUNS, WARN_SECONDS = 100_000, 24 * 3600.0
_COST_KEYS = ("upper_method", "lip_search_starts", "lip_exact_max_hidden", "width", "depth", "n", "d", "steps",
              "objective", "robust_trials", "robust_restarts")


def _call_seconds(config: RunConfig, batch: int) -> float:
    """One batched training call of ``batch`` runs: per-step latency plus fwd + bwd arithmetic."""
    flops = 3 * 2 * config.n * model_of(config).num_params * config.steps * batch
    return config.steps * STEP_SECONDS + flops / TRAIN_FLOPS_PER_SECOND


def _pipeline_calls(config: RunConfig) -> int:
    """Training calls of a run's pruning pipeline: IMP trains dense, then once per round (plus a final magnitude
    pruning, no training); MagAfter, and any other registered training-based method, is counted as one
    training. One-shot methods prune without training."""
    if config.method == "imp":
        return prune.imp_schedule(config.density, config.imp_rate)[0] + 1
    return 1 if prune.METHODS[config.method].trains else 0


def _pipelines(configs: list[RunConfig]) -> dict[tuple, list[RunConfig]]:
    """The group's runs with a training pipeline, by (method, density, imp_rate): each is one batched pipeline."""
    pipelines: dict[tuple, list[RunConfig]] = {}
    for c in configs:
        if _pipeline_calls(c):
            pipelines.setdefault((c.method, c.density, c.imp_rate), []).append(c)
    return pipelines


def compile_seconds(configs: list[RunConfig]) -> float:
    return COMPILE_SECONDS_PER_GROUP + (PIPELINE_COMPILE_SECONDS if _pipelines(configs) else 0.0)


def group_seconds(configs: list[RunConfig], multiplicity: int) -> float:
    """Estimated seconds of one shape group: compilation, its batched training calls (the group's training, one
    pipeline per (method, density, imp_rate) batched over its runs, and an information estimate's pipelines on
    ``info_datasets`` fresh data sets per run, the frontier search's trials and restarts), and each run's measurement."""
    pipelines = _pipelines(configs)
    seconds = compile_seconds(configs) + _call_seconds(configs[0], len(configs) * multiplicity)
    for members in pipelines.values():
        seconds += _pipeline_calls(members[0]) * _call_seconds(members[0], len(members) * multiplicity)
        estimated = [c for c in members if c.info == "estimate"]
        seconds += sum(_pipeline_calls(c) * _call_seconds(c, c.info_datasets) for c in estimated) * multiplicity
    searches: dict[tuple[int, int], int] = {}  # the frontier (objective "robust"): one batched training per trial
    for c in configs:
        if c.objective == "robust":
            searches[c.robust_trials, c.robust_restarts] = searches.get((c.robust_trials, c.robust_restarts), 0) + 1
    for (trials, restarts), count in searches.items():
        runs = count * multiplicity
        seconds += trials * _call_seconds(configs[0], restarts * runs)  # every restart searches, batched
        if restarts > 1:  # the restarts' plain fits in one call, and a certificate per extra restart
            seconds += _call_seconds(configs[0], (restarts - 1) * runs) + (restarts - 1) * runs * _eval_seconds(configs[0])
    return seconds + multiplicity * sum(_eval_seconds(c) for c in configs)


def _eval_seconds(config: RunConfig) -> float:
    """One run's measurement (or one restart's certificate): grows with the cube of N = d + hidden units."""
    return EVAL_SECONDS_PER_RUN * max(1.0, sum(model_of(config).sizes[:-1]) / EVAL_REFERENCE_N) ** 3


def wall_seconds(group_costs: list[float], processes: int) -> float:
    """The wall time of groups shared by ``processes`` processes that each take the costliest group left when
    free (``execute.claimed_groups``): list scheduling, at most the mean load plus the costliest group."""
    loads = [0.0] * processes
    for cost in sorted(group_costs, reverse=True):
        loads[loads.index(min(loads))] += cost
    return max(loads)


def plan(grid: Grid, processes: int = 1) -> dict:
    """What ``run`` would do: runs, shape groups and a cost estimate with compilation, computed from the grid's
    outline (no run is listed, so a grid of millions of runs plans at once); ``warnings`` says when the grid is
    very large or very costly.

    Parameters
    ----------
    grid : Grid
        The sweep.
    processes : int
        The processes that share the groups (``jax.distributed``): ``estimated_wall_seconds`` is for them.

    Returns
    -------
    dict
        Runs, shape groups, the cost estimate (``estimated_seconds`` in all, ``estimated_wall_seconds`` for
        ``processes``) and ``warnings``.
    """
    processes = _checks.positive_int("processes", processes)
    configs, multiplicity = grid.outline(set(PLAN_KEYS) | set(SHAPE_KEYS) | set(_COST_KEYS))
    groups: dict[tuple, list] = {}
    for config in configs:
        groups.setdefault(config.shape_key, []).append(config)
    runs = len(configs) * multiplicity
    costs = [group_seconds(g, multiplicity) for g in groups.values()]
    seconds = sum(costs)
    data_bytes = max(8 * c.n * c.d for c in configs)
    warnings = []
    if runs > WARN_RUNS:
        warnings.append(f"{runs} runs: more than {WARN_RUNS}; is every axis meant?")
    if seconds > WARN_SECONDS:
        warnings.append(f"estimated {seconds / 3600:.3g} hours on the 2-core reference CPU")
    if data_bytes > 2**30:
        warnings.append(f"one data set takes {data_bytes / 2**30:.3g} GiB (n x d float64)")
    return {"runs": runs, "groups": len(groups), "group_sizes": [len(g) * multiplicity for g in groups.values()],
            "estimated_seconds": round(seconds, 1), "processes": processes,
            "estimated_wall_seconds": round(wall_seconds(costs, processes), 1),
            "estimated_compile_seconds": sum(compile_seconds(g) for g in groups.values()),
            "shapes": [dict(zip(SHAPE_KEYS[:4], k[:4])) for k in groups], "warnings": warnings}
