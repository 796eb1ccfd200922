"""``lawrob sweep --dry-run``: the runs, shape groups and estimated cost of a grid, from its outline (no run is
listed, so a grid of millions of runs plans at once)."""

from __future__ import annotations

from lawrob.sweep.execute import model_of
from lawrob.sweep.grid import PLAN_KEYS, SHAPE_KEYS, Grid, imp_schedule

# Cost model of --dry-run, fitted to measured sweeps on the 2-core development CPU (benchmarks/RESULTS.md).
TRAIN_FLOPS_PER_SECOND = 1.0e11
COMPILE_SECONDS_PER_GROUP = 12.0  # training, the batched upper bound and the lower-bound search, compiled once
EVAL_SECONDS_PER_RUN = 0.45  # a two-hidden-layer width-64 run: search 0.28 s, LipSDP 0.14 s
WARN_RUNS, WARN_SECONDS = 100_000, 24 * 3600.0
_COST_KEYS = ("upper_method", "lip_search_starts", "lip_exact_max_hidden", "width", "depth", "n", "d", "steps")


def _run_seconds(config: dict) -> float:
    """Seconds one run costs: its trainings (the pruning pipeline's and the information estimate's too) and
    its measurement (the SDP grows with the cube of its size N = d + hidden units, measured 0.14 s at N ~ 130)."""
    model = model_of(config)
    training = 3 * 2 * config["n"] * model.num_params * config["steps"] / TRAIN_FLOPS_PER_SECOND  # fwd + bwd
    trainings = 1
    if config["method"] in ("imp", "mag_after"):
        rounds = imp_schedule(config["density"], config["imp_rate"])[0] if config["method"] == "imp" else 0
        trainings += (rounds + 1) * (1 + (config["info_datasets"] if config["info"] == "estimate" else 0))
    sdp = sum(model.sizes[:-1]) / 130
    return trainings * training + EVAL_SECONDS_PER_RUN * max(1.0, sdp ** 3)


def plan(grid: Grid) -> dict:
    """What ``run`` would do: runs, shape groups and a cost estimate with compilation, computed from the grid's
    outline (no run is listed, so a grid of millions of runs plans at once); ``warnings`` says when the grid is
    very large or very costly."""
    configs, multiplicity = grid.outline(set(PLAN_KEYS) | set(SHAPE_KEYS) | set(_COST_KEYS))
    groups: dict[tuple, list] = {}
    for config in configs:
        groups.setdefault(tuple(config[k] for k in SHAPE_KEYS), []).append(config)
    runs = len(configs) * multiplicity
    seconds = len(groups) * COMPILE_SECONDS_PER_GROUP + multiplicity * sum(_run_seconds(c) for c in configs)
    data_bytes = max(8 * c["n"] * c["d"] for c in configs)
    warnings = []
    if runs > WARN_RUNS:
        warnings.append(f"{runs} runs: more than {WARN_RUNS}; is every axis meant?")
    if seconds > WARN_SECONDS:
        warnings.append(f"estimated {seconds / 3600:.3g} hours on the 2-core reference CPU")
    if data_bytes > 2**30:
        warnings.append(f"one data set takes {data_bytes / 2**30:.3g} GiB (n x d float64)")
    return {"runs": runs, "groups": len(groups), "group_sizes": [len(g) * multiplicity for g in groups.values()],
            "estimated_seconds": round(seconds, 1), "estimated_compile_seconds": len(groups) * COMPILE_SECONDS_PER_GROUP,
            "shapes": [dict(zip(SHAPE_KEYS[:4], k[:4])) for k in groups], "warnings": warnings}
