"""E7 (beyond the paper): the law's scaling on the most robust interpolators, L*(n, k) ~ sqrt(n d / k).

The law of robustness bounds from below the Lipschitz constant of *every* network that fits noisy data below
the noise level, so its scaling is a statement about the most robust such network, not about whatever a plain
fit finds. On Gaussian data N(0, I/d) with random +-1 labels (sigma2 = 1), two-hidden-layer ReLU MLPs of several
widths, dense or pruned to one density by a data-free mask (random, SynFlow) or a data-dependent one (IMP), are
trained with the grid objective "robust" (``lawrob.robust.frontier``: Lipschitz-constrained training with a
bisection on the constraint, from a plain fit; at full scale from 3 initializations per run, keeping the one of
least certified U, since one search from one initialization can sit several times above the best), and each
network found is certified by the grid's one upper-bound method (U) and bracketed from below. Over n (1.5 decades at full scale) and the active weights k:

(1) the fit log U = a + alpha log n + beta log k (+ gamma log d where d varies), ordinary least squares with
    95 % t intervals, beside the law's alpha = +1/2 and beta = -1/2: a claim passes when its interval contains
    the law's exponent (the measurement is consistent with the law) and fails when it excludes it;
(2) data-dependent against data-free masks at equal k (same width, density, n, d, seed): the geometric-mean
    ratio U(IMP) / U(data-free) with its 95 % interval, beside the smallest ratio No Free Prune allows,
    1 / sqrt(1 + I / k) (I from the ceiling log2 C(p, k)): reported, the claim "the data-dependent frontier lies
    below" passes when the interval lies below 1.

The rigorous NFP / BS bounds are drawn where valid; every run's U / bound and U / sqrt(n d / k) are in the table.
Reported beside the criteria, not part of them: the bracket's resolution (median and largest U / lower, per d)
and the same fit on the lower ends of the brackets; each network's true constant lies between the two, so an
exponent that passes (or fails) on both ends does not depend on the certificate's slack.

    uv run python -m lawrob.checks.e7_robust_frontier --scale smoke|full [--seeds N] [--out DIR | --update-committed]
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from lawrob import sweep
from lawrob.checks._common import pyplot, save_figure, script, standard_main, write_verdict

FIXED = dict(measure="gaussian", target="zero", noise="rademacher", depth=2, loss="mse", optimizer="adam",
             learning_rate=1e-2, log_every=50, eps=0.5, delta=0.5, lip_search_starts=16, objective="robust",
             imp_rate=0.5)
DATA_FREE, DATA_DEPENDENT = ("random", "synflow"), ("imp",)
SCALES: dict[str, dict[str, Any]] = {
    "full": dict(d=(8, 16), n=(250, 500, 1000, 2000, 4000), widths=(16, 32, 64, 128), density=0.25, seeds=5,
                 steps=2000, trials=6, restarts=3, group_runs=5),
    "smoke": dict(d=(8,), n=(64, 128, 256), widths=(32,), density=0.25, seeds=1, steps=300, trials=3, restarts=1),
}
LAW = {"n": 0.5, "k": -0.5, "d": 0.5}


def grid(s: dict, seed: int) -> sweep.Grid:
    axes = {"d": list(s["d"]), "n": list(s["n"]), "width": list(s["widths"]),
            "method": [*DATA_FREE, *DATA_DEPENDENT], "density": [s["density"], 1.0],
            "seed": [seed + i for i in range(s["seeds"])]}
    return sweep.Grid(axes=axes, fixed=FIXED | {"steps": s["steps"], "robust_trials": s["trials"],
                                                "robust_restarts": s["restarts"]})


def exponents(rows: list[dict], column: str = "lip_upper") -> dict:
    """OLS of log ``column`` (U by default) on log n, log k (and log d when it varies): each coefficient with its
    95 % t interval."""
    names = ["n", "k"] + (["d"] if len({r["d"] for r in rows}) > 1 else [])
    x = np.column_stack([np.ones(len(rows))] + [np.log([r["n"] if v == "n" else r["d"] if v == "d" else r["active"]
                                                         for r in rows]) for v in names])
    y = np.log([r[column] for r in rows])
    dof = len(rows) - x.shape[1]
    if dof < 1 or np.linalg.matrix_rank(x) < x.shape[1]:
        return {"runs": len(rows), "fitted": False}
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coef
    cov = (residual @ residual / dof) * np.linalg.inv(x.T @ x)
    half = stats.t.ppf(0.975, dof) * np.sqrt(np.diag(cov))
    out: dict[str, Any] = {"runs": len(rows), "fitted": True, "intercept": float(coef[0])}
    for i, v in enumerate(names, start=1):
        low, high = float(coef[i] - half[i]), float(coef[i] + half[i])
        out[v] = {"estimate": float(coef[i]), "low": low, "high": high, "law": LAW[v], "contains_law": low <= LAW[v] <= high}
    return out


def mask_ratio(rows: list[dict]) -> dict:
    """U(data-dependent) / U(data-free) over pairs at equal (n, d, width, density, seed): geometric mean, 95 % t
    interval on the log scale, and NFP's floor 1 / sqrt(1 + I / k) averaged the same way."""
    def key(r):
        return (r["n"], r["d"], r["width"], r["density"], r["seed"])

    free: dict[tuple, list[float]] = {}
    for r in rows:
        if r["method"] in DATA_FREE:
            free.setdefault(key(r), []).append(r["lip_upper"])
    logs, floors = [], []
    for r in rows:
        if r["method"] in DATA_DEPENDENT and key(r) in free:
            logs += [math.log(r["lip_upper"] / u) for u in free[key(r)]]
            floors.append(-0.5 * math.log1p(r["info_bits"] * math.log(2) / r["active"]))
    if len(logs) < 2:
        return {"pairs": len(logs), "fitted": False}
    mean, se = float(np.mean(logs)), float(np.std(logs, ddof=1) / math.sqrt(len(logs)))
    half = stats.t.ppf(0.975, len(logs) - 1) * se
    return {"pairs": len(logs), "fitted": True, "ratio": math.exp(mean), "low": math.exp(mean - half),
            "high": math.exp(mean + half), "nfp_floor": math.exp(float(np.mean(floors))),
            "below_one": bool(mean + half < 0)}


def bracket(rows: list[dict]) -> dict:
    """The certificate's resolution: median and largest U / lower over the runs, overall and per d. The true
    constant of each network lies in [lower, U], so an exponent is resolved only where the bracket varies less
    across the grid than the law's predicted change."""
    def summary(rs):
        ratios = [r["lip_upper"] / r["lip_lower"] for r in rs]
        return {"runs": len(ratios), "median": float(np.median(ratios)), "max": float(np.max(ratios))}

    rows = [r for r in rows if isinstance(r.get("lip_lower"), float) and r["lip_lower"] > 0]
    if not rows:
        return {"runs": 0}
    return summary(rows) | {"by_d": {str(d): summary([r for r in rows if r["d"] == d])
                                     for d in sorted({r["d"] for r in rows})}}


def rigorous_bounds(rows: list[dict]) -> dict:
    """Where a rigorous bound (NFP or BS) applies: the runs with a margin ``upper_over_bound`` (U / the largest
    valid bound) and its median; for the runs without one, the reason at the largest n (the run closest to
    meeting the theorems' sample-size condition)."""
    margins = [r["upper_over_bound"] for r in rows if isinstance(r.get("upper_over_bound"), float)]
    out: dict[str, Any] = {"runs": len(rows), "valid": len(margins),
                           "upper_over_bound_median": float(np.median(margins)) if margins else None}
    invalid = [r for r in rows if not isinstance(r.get("upper_over_bound"), float)]
    if invalid:
        closest = max(invalid, key=lambda r: r["n"])
        out |= {"invalid_at_largest_n": closest["n"], "reason": closest.get("bound_reason_rigorous")}
    return out


def restart_spread(rows: list[dict]) -> dict:
    """Median and largest ``robust_restart_spread`` (largest / smallest U over a run's restarts) per n: if the
    search drifted away from the most robust interpolator as n grows, its restarts would disagree more there."""
    out = {}
    for n in sorted({r["n"] for r in rows}):
        spreads = [r["robust_restart_spread"] for r in rows
                   if r["n"] == n and isinstance(r.get("robust_restart_spread"), float)]
        if spreads:
            out[str(n)] = {"runs": len(spreads), "median": float(np.median(spreads)), "max": float(max(spreads))}
    return out


def figure(rows: list[dict], fit: dict, path: Path) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, method in enumerate(sorted({r["method"] for r in rows})):
        rs = [r for r in rows if r["method"] == method]
        scale = [math.sqrt(r["n"] * r["d"] / r["active"]) for r in rs]
        left.scatter(scale, [r["lip_upper"] for r in rs], s=14, color=f"C{i}", label=f"{method}: U")
        left.scatter(scale, [r["lip_lower"] for r in rs], s=8, color=f"C{i}", marker="v", alpha=0.5)
        right.scatter([r["n"] / r["active"] for r in rs], [r["upper_over_scaling"] for r in rs], s=14, color=f"C{i}",
                      label=method)
    bounded = [r for r in rows if r.get("bound_nfp_rigorous")]
    if bounded:
        left.scatter([math.sqrt(r["n"] * r["d"] / r["active"]) for r in bounded], [r["bound_nfp_rigorous"] for r in bounded],
                     marker="_", color="k", s=40, label="rigorous NFP bound")
    else:
        left.text(0.02, 0.02, "no run meets the rigorous NFP / BS bounds' sample-size condition", fontsize=7,
                  transform=left.transAxes)
    left.scatter([], [], s=8, color="gray", marker="v", label="lower end of each bracket")
    grid_ = np.geomspace(min(math.sqrt(r["n"] * r["d"] / r["active"]) for r in rows),
                         max(math.sqrt(r["n"] * r["d"] / r["active"]) for r in rows), 20)
    left.plot(grid_, grid_, "k:", lw=1, label="sqrt(n d / k)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
    left.set_xlabel("sqrt(n d / k)")
    left.set_ylabel("certified Lipschitz bracket of the most robust fit")
    exps = ", ".join(f"{v} {fit[v]['estimate']:.2f} [{fit[v]['low']:.2f}, {fit[v]['high']:.2f}]"
                     for v in ("n", "k", "d") if fit.get("fitted") and v in fit)
    left.set_title(f"exponents: {exps}" if exps else "exponents not fitted", fontsize=8)
    left.legend(fontsize=6)
    right.set_xlabel("n / k")
    right.set_ylabel("U sqrt(k / (n d))")
    right.set_title("collapse: the law predicts a constant")
    right.legend(fontsize=6)
    save_figure(fig, path)


def sweep_part(scale: str, out: Path, seed: int = 0, seeds: int | None = None) -> tuple[dict, sweep.Grid, Path]:
    """Run (or resume: finished runs are skipped) E7's sweep into ``out/sweep_<scale>``, without analysing it.

    Under ``jax.distributed`` each process runs its share of the groups (``lawrob check E7 --num-processes P``:
    processes 1 .. P-1 call this, process 0 calls ``run``, which calls this and then concludes). Returns the
    scale's settings, the grid and the sweep folder."""
    s = SCALES[scale] | ({"seeds": seeds} if seeds else {})
    g, folder = grid(s, seed), Path(out) / f"sweep_{scale}"
    sweep.run(g, folder, progress=False, group_runs=s.get("group_runs"))
    return s, g, folder


def run(scale: str, out: Path, seed: int = 0, seeds: int | None = None) -> dict:
    start = time.perf_counter()
    out = Path(out)
    s, g, folder = sweep_part(scale, out, seed, seeds)
    sweep.write_report(folder)
    wanted = {r.hash for r in g.runs()}
    rows = [r for r in sweep.read_csv(folder / "results.csv") if r["config_hash"] in wanted]
    fitted = [r for r in rows if r["fits_below_noise"] and isinstance(r.get("lip_upper"), float)]
    kinds = sorted({r["lip_upper_method"] for r in fitted})
    main_kind = max(kinds, key=lambda k: sum(r["lip_upper_method"] == k for r in fitted)) if kinds else None
    certified = [r for r in fitted if r["lip_upper_method"] == main_kind]  # never fit across certificate types
    fit, ratio = exponents(certified), mask_ratio(certified)
    if certified:
        figure(certified, fit, out / "e7.png")
    parts = {f"{v} exponent's interval contains {LAW[v]:+g}": fit[v]["contains_law"]
             for v in ("n", "k", "d") if fit.get("fitted") and v in fit}
    if ratio.get("fitted"):
        parts["data-dependent frontier below data-free at equal k"] = ratio["below_one"]
    measured = {"runs": len(rows), "fitted_below_noise": len(fitted), "certificate": main_kind,
                "certificates": {k: sum(r["lip_upper_method"] == k for r in fitted) for k in kinds},
                "exponents": fit, "mask_ratio": ratio, "bracket": bracket(certified),
                "exponents_of_lower": exponents(certified, "lip_lower"),
                "upper_over_scaling_range": [min(r["upper_over_scaling"] for r in certified),
                                             max(r["upper_over_scaling"] for r in certified)] if certified else None,
                "rigorous_bound": rigorous_bounds(certified), "restart_spread_by_n": restart_spread(certified),
                "train_steps_total": int(sum(r["train_steps_total"] or 0 for r in rows))}
    return write_verdict(
        out, "E7", scale=scale, start=start,
        claim="The certified Lipschitz constant of the most robust interpolator scales as sqrt(n d / k): exponent "
              "+1/2 in n and -1/2 in the active weights k; data-dependent masks reach a lower frontier than data-free "
              "ones at equal k.",
        measured=measured,
        criterion="Fixed before the full run: each exponent of the OLS fit log U = a + alpha log n + beta log k "
                  "(+ gamma log d) passes when its 95 % t interval contains the law's value (+1/2, -1/2, +1/2) and "
                  "fails when it excludes it; the mask claim passes when the 95 % interval of the geometric-mean "
                  "ratio U(IMP) / U(random, SynFlow) at equal (n, d, width, density, seed) lies below 1. Only runs "
                  "that fit below the noise level and share the grid's certificate type are used.",
        passed=bool(parts) and all(parts.values()), parts=parts,
        setup=FIXED | {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()} | {"seed": seed,
                                                                                           "sweep_folder": folder.name})


main = standard_main("E7", run)

if __name__ == "__main__":
    script(main)
