"""E6 (beyond the paper): the rigorous NFP / BS bounds against measured Lipschitz constants of trained networks.

On Gaussian data N(0, I/d) (c-isoperimetric with c = 1, k = 1) with +-a Rademacher labels (pure noise, sigma2 = a^2),
two-hidden-layer ReLU MLPs of several widths are pruned by every method of ``lawrob.sweep`` (random, SynFlow, SNIP,
GraSP, IMP with rewinding, MagAfter) to several densities (plus the dense network), trained by full-batch Adam at
lr 1e-2 until the train MSE is <= 0.04 (checked every 50 steps; below both noise levels' sigma2 - eps) or the step
budget runs out, and each trained network is measured by ``lawrob.sweep``: its Lipschitz constant bracketed between a certified lower
bound (climbing search, certified at its witness) and a certified upper bound, p_eff with a valid upper bound on
I(m; D) (0 for data-free masks, the ceiling log2 C(p, k) otherwise), and both theorems' bounds in the rigorous
variant (``None`` where a theorem's conditions fail). The sweep itself (results.csv, report.md, standard figures)
lies in ``OUT/sweep_<scale>``; a rerun resumes it, and a folder holding another grid's results (other seeds or
settings) is refused, never deleted.

Making the check non-vacuous. Both theorems hold only under the mixture condition
8^3 k ln(8k/delta) <= n (13 eps/15)^2 (NFP, rigorous) and 8^4 k ln(8k/delta) <= n eps^2 (BS), and a network only
counts when it fits below the noise level, train MSE <= sigma2 - eps <= 1 - eps. So a valid NFP bound needs a large
margin eps, a moderate delta and a large n: eps = 0.9 and delta = 0.5 need n >= 2333 (``lawrob.bounds``), and the
fit then needs train MSE <= sigma2 - 0.9, i.e. (near-)interpolation of n = 2400 random labels. Every run of this
check sits at n = 2400, d = 16 (the rigorous NFP bound is valid on every run; the BS bound, whose condition needs
n >= 14020 here, on none), and the noise-level axis is limited to sigma2 in {0.95, 1}, the levels at which a fit below
sigma2 - 0.9 is possible.

Every run of the grid is certified from above by one method (``lawrob.sweep``'s uniform certificate: the
tightest affordable on the grid's largest network, LipSDP at N = d + hidden units <= 300), so no fit mixes
certificate types; a run whose certificate failed and fell back to another method is left out of the fit.

Checks: (1) no fitted network's certified upper bound falls below a valid rigorous bound (a violation would be a
counterexample to the theorem, or a bug), with at least one checked run (else the check is vacuous, and fails);
that check holds by a wide margin, so the margin U / bound of every checked run is reported (min, median, max),
never the pass alone; (2) the slope of log Lip (geometric mean of the bracket) against log p_eff over the fitted
runs of the grid's certificate type, with its 95 % confidence interval, beside the theory's -1/2 (the theorem is
a lower bound, so it need not match), and next to it the effect the law predicts across those runs,
sqrt(max p_eff / min p_eff), and the bracket's resolution, the median upper / lower: a predicted effect below
the resolution cannot be seen in this grid, whatever the slope says.

    uv run python -m lawrob.checks.e6_bound_vs_measurement --scale smoke|full [--seeds N] [--redraw]
        [--out DIR | --update-committed]

``--redraw`` (``redraw``) recomputes verdict.json, e6.png and the sweep's report from the table already in the
output folder, training nothing: ``--scale full --update-committed --redraw`` refreshes the committed results.

Output: --out DIR (default ./lawrob-out/checks/e6, in the current directory); --update-committed (with
--scale full only) rewrites the committed results in paper_checks/results/e6 instead.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from lawrob import bounds, sweep
from lawrob.checks._common import parse_args, print_verdict, pyplot, save_figure, script, seeds_option, write_verdict
from lawrob.checks._e6_folder import (  # noqa: F401 (E6's public names, defined apart)
    OtherGridResults, other_grid_results, refuse_other_grid,
)

# The one (n, d, eps, delta) of every run: the smallest round n above the NFP mixture condition's 2333.
FIXED: dict[str, Any] = dict(measure="gaussian", d=16, n=2400, target="zero", noise="rademacher", depth=2, loss="mse",
             optimizer="adam", learning_rate=1e-2, stop_loss=0.04, log_every=50, eps=0.9, delta=0.5, imp_rate=0.2,
             lip_search_starts=8, lip_exact_max_hidden=12)
SPARSE_METHODS = ("random", "synflow", "snip", "grasp", "imp", "mag_after")
SCALES: dict[str, dict[str, Any]] = {
    "full": dict(widths=(64, 96, 128), amplitudes=(0.975, 1.0), methods=SPARSE_METHODS, densities=(0.5, 0.3),
                 seeds=2, steps=3000),
    "smoke": dict(widths=(96,), amplitudes=(1.0,), methods=("random", "synflow", "snip"), densities=(0.5,),
                  seeds=1, steps=1200),
}
THEORY_SLOPE = -0.5


def grids(s: dict, seed: int) -> list[sweep.Grid]:
    """E6's one grid: methods x densities, and density 1, which the grid lists once per network as the method
    "dense" (the same runs, and hashes, as the separate dense grid of earlier versions).

    Parameters
    ----------
    s : dict
        A ``SCALES`` entry.
    seed : int
        The first seed.

    Returns
    -------
    list of lawrob.sweep.Grid
        The grid, in a list (``lawrob.sweep.run`` takes one grid at a time).
    """
    fixed = FIXED | {"steps": s["steps"]}
    axes = {"width": list(s["widths"]), "amplitude": list(s["amplitudes"]), "seed": [seed + i for i in range(s["seeds"])],
            "method": list(s["methods"]), "density": [*s["densities"], 1.0]}
    return [sweep.Grid(axes=axes, fixed=fixed)]


def _num(row: dict, key: str) -> float | None:
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def rigorous_bounds(row: dict) -> list[float]:
    """The valid rigorous theorem bounds of a run.

    Parameters
    ----------
    row : dict
        A row of the sweep's results table.

    Returns
    -------
    list of float
        Its finite ``bound_nfp_rigorous`` and ``bound_bs_rigorous`` (empty where neither theorem's conditions hold).
    """
    return [v for key in ("bound_nfp_rigorous", "bound_bs_rigorous") if (v := _num(row, key)) is not None]


def _spread(values: list[float]) -> dict | None:
    return {"min": min(values), "median": float(np.median(values)), "max": max(values)} if values else None


def resolution(fitted: list[dict]) -> dict:
    """The law's predicted change of Lip across ``fitted`` beside the bracket's resolution.

    Parameters
    ----------
    fitted : list of dict
        Rows of runs that fit below the noise level.

    Returns
    -------
    dict
        ``predicted_effect`` sqrt(max p_eff / min p_eff) (slope -1/2 in p_eff), ``bracket_median_ratio`` and
        ``bracket_worst_ratio`` (lip_upper / lip_lower), and ``effect_exceeds_resolution`` (None where not
        computable).
    """
    ratios = [r["lip_upper"] / r["lip_lower"] for r in fitted if r["lip_lower"] > 0]
    p_eff = [r["p_eff"] for r in fitted]
    predicted = math.sqrt(max(p_eff) / min(p_eff)) if p_eff and min(p_eff) > 0 else None
    median = float(np.median(ratios)) if ratios else None
    return {"predicted_effect": predicted, "bracket_median_ratio": median, "bracket_worst_ratio": max(ratios, default=None),
            "effect_exceeds_resolution": None if predicted is None or median is None else predicted > median}


def analyse(rows: list[dict]) -> dict:
    """Every number of the verdict, recomputed from the results table alone.

    Parameters
    ----------
    rows : list of dict
        The runs to judge (rows of ``results.csv``).

    Returns
    -------
    dict
        The verdict's ``measured`` block: counts, violations, margins, the slope per the grid's certificate type
        with its 95 % interval, the resolution and a per-method summary.
    """
    certificate_counts = Counter(str(r.get("lip_upper_method")) for r in rows)
    certificate = certificate_counts.most_common(1)[0][0] if rows else None
    fitted_all = [r for r in rows if r["fits_below_noise"]]
    fitted = [r for r in fitted_all if str(r.get("lip_upper_method")) == certificate]
    checked = [r for r in fitted_all if rigorous_bounds(r) and _num(r, "lip_upper") is not None]
    violations = [r["config_hash"] for r in checked if r["lip_upper"] < max(rigorous_bounds(r))]
    flagged = sorted(r["config_hash"] for r in rows if r.get("bound_violation"))
    law = [r["lip_upper"] / math.sqrt(r["n"] * r["d"] / r["p_eff"]) for r in fitted if r["p_eff"] > 0]
    # an independent evaluation of NFP Theorem 4 (rigorous) from the row's own n, d, p_eff, eps, delta, c, k
    recomputed = [bounds.no_free_prune(r["n"], r["d"], r["p_eff"], r["eps"], r["delta"], c=r["c"], k=r["k"],
                                       variant="rigorous") for r in rows]
    mismatch = sum(1 for r, b in zip(rows, recomputed)
                   if bool(b.valid) != (_num(r, "bound_nfp_rigorous") is not None)
                   or (bool(b.valid) and not math.isclose(float(b.value), r["bound_nfp_rigorous"], rel_tol=1e-9)))
    margin_upper = [r["lip_upper"] / max(rigorous_bounds(r)) for r in checked]
    margin_lower = [r["lip_lower"] / max(rigorous_bounds(r)) for r in checked if r["lip_lower"] > 0]
    x = [r["p_eff"] for r in fitted]
    slope = sweep.report.fit_loglog_slope(x, [math.sqrt(r["lip_lower"] * r["lip_upper"]) for r in fitted])
    slope_lower = sweep.report.fit_loglog_slope(x, [r["lip_lower"] for r in fitted])
    slope_upper = sweep.report.fit_loglog_slope(x, [r["lip_upper"] for r in fitted])
    reasons = Counter(str(r.get("bound_reason_rigorous") or "") for r in fitted_all if not rigorous_bounds(r))
    by_method = {}
    for method in sorted({r["method"] for r in rows}):
        rs = [r for r in rows if r["method"] == method]
        fit_rs = [r for r in rs if r["fits_below_noise"]]
        by_method[method] = {"runs": len(rs), "fitted": len(fit_rs),
                             "median_p_eff": float(np.median([r["p_eff"] for r in rs])),
                             "median_lip_lower_fitted": float(np.median([r["lip_lower"] for r in fit_rs])) if fit_rs else None,
                             "median_lip_upper_fitted": float(np.median([r["lip_upper"] for r in fit_rs])) if fit_rs else None}
    return {
        "runs": len(rows), "fitted_below_noise": len(fitted_all),
        "certificate": certificate, "certificate_counts": dict(certificate_counts),
        "fitted_with_grid_certificate": len(fitted),
        "runs_with_valid_rigorous_nfp_bound": sum(_num(r, "bound_nfp_rigorous") is not None for r in rows),
        "runs_with_valid_rigorous_bs_bound": sum(_num(r, "bound_bs_rigorous") is not None for r in rows),
        "checked_runs": len(checked), "violations": len(violations), "violation_hashes": violations,
        "sweep_flagged_violations": flagged,
        "recomputed_nfp_bound_mismatches": mismatch,
        "min_lip_upper_over_bound": min(margin_upper) if margin_upper else None,
        "lip_upper_over_bound": _spread(margin_upper),
        "lip_upper_over_law": _spread(law),
        "resolution": resolution(fitted),
        "median_lip_lower_over_bound": float(np.median(margin_lower)) if margin_lower else None,
        "rigorous_nfp_bound_range": [min(b), max(b)] if (b := [r["bound_nfp_rigorous"] for r in checked
                                                               if _num(r, "bound_nfp_rigorous") is not None]) else None,
        "lip_lower_range_fitted": [min(r["lip_lower"] for r in fitted), max(r["lip_lower"] for r in fitted)] if fitted else None,
        "lip_upper_range_fitted": [min(r["lip_upper"] for r in fitted), max(r["lip_upper"] for r in fitted)] if fitted else None,
        "p_eff_range_fitted": [min(x), max(x)] if fitted else None,
        "exact_lipschitz_runs": sum(_num(r, "lip_exact") is not None for r in rows),
        "slope_log_lip_vs_log_p_eff": slope | {"theory": THEORY_SLOPE,
                                               "ci_contains_theory": (slope["low"] <= THEORY_SLOPE <= slope["high"])
                                               if slope["slope"] is not None else None},
        "slope_lip_lower": slope_lower, "slope_lip_upper": slope_upper,
        "why_no_valid_bound_among_fitted": dict(reasons),
        "by_method": by_method,
    }


def figure(rows: list[dict], measured: dict, path: Path) -> None:
    """Draw E6's figure into ``path`` (PNG, and a PDF beside it).

    Left: the certified bracket of every fitted run against p_eff (colour: method, marker: width), with the
    rigorous bound of every run whose conditions hold (a wide black bar), the constant-free sqrt(n d / p_eff) and
    the fitted slope; the legends sit below the plots, so the y-axes span only the data. Right: the train MSE of
    every run against its sparsity, beside each noise level's sigma2 - eps (a run fits below its own line).

    Parameters
    ----------
    rows : list of dict
        The sweep's rows (``lawrob.sweep.read_csv``).
    measured : dict
        ``analyse(rows)``.
    path : Path
        The PNG to write.
    """
    plt = pyplot()
    fig, ((ax, ax2), (key, key2)) = plt.subplots(2, 2, figsize=(12, 6.2), height_ratios=(4, 1))
    fitted = [r for r in rows if r["fits_below_noise"]]
    methods = sorted({r["method"] for r in rows})
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    widths = sorted({r["width"] for r in rows})
    markers = dict(zip(widths, "os^Dv<>p"))
    for method in methods:
        for width in widths:
            rs = [r for r in fitted if r["method"] == method and r["width"] == width]
            if not rs:
                continue
            x = np.array([r["p_eff"] for r in rs])
            lo, hi = np.array([r["lip_lower"] for r in rs]), np.array([r["lip_upper"] for r in rs])
            ax.vlines(x, lo, hi, color=colors[method], alpha=0.6)
            ax.scatter(x, np.sqrt(lo * hi), color=colors[method], marker=markers[width], s=16)
    for method in methods:  # legend entries: one per method (circles), one per width (grey markers)
        if any(r["method"] == method for r in fitted):
            ax.scatter([], [], color=colors[method], marker="o", s=16, label=f"{method}: certified bracket")
    for width in widths:
        ax.scatter([], [], color="gray", marker=markers[width], s=16, label=f"width {width}")
    if fitted:
        x = np.array([r["p_eff"] for r in fitted])
        grid = np.geomspace(x.min(), x.max(), 50)
        nd = np.median([r["n"] * r["d"] for r in fitted])
        ax.plot(grid, np.sqrt(nd / grid), color="gray", ls=":", lw=1.5, label="sqrt(n d / p_eff) (no constants)")
        bound = [(r["p_eff"], max(rigorous_bounds(r))) for r in fitted if rigorous_bounds(r)]
        if bound:
            ax.scatter(*zip(*bound), color="k", marker="_", s=260, linewidths=2.5,
                       label="rigorous NFP bound (conditions met)")
        fit = measured["slope_log_lip_vs_log_p_eff"]
        if fit["slope"] is not None:
            ax.plot(grid, np.exp(fit["intercept"]) * grid ** fit["slope"], "k--", lw=1,
                    label=f"fit ({measured['certificate']} runs): slope {fit['slope']:.2f} "
                          f"[{fit['low']:.2f}, {fit['high']:.2f}] (theory -0.5)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.margins(y=0.08)
    ax.set_xlabel("p_eff (bits)")
    ax.set_ylabel("Lipschitz constant")
    ax.set_title(f"E6: fitted runs, {measured['violations']} violations in {measured['checked_runs']} checked")
    for method in methods:
        for width in widths:
            rs = [r for r in rows if r["method"] == method and r["width"] == width]
            jitter = 0.004 * (methods.index(method) - len(methods) / 2)
            ax2.scatter([1 - r["density"] + jitter for r in rs], [r["train_mse"] for r in rs], color=colors[method],
                        marker=markers[width], s=16, label=method if width == widths[0] else None)
    for width in widths:
        ax2.scatter([], [], color="gray", marker=markers[width], s=16, label=f"width {width}")
    eps = rows[0]["eps"]
    for s2 in sorted({r["sigma2"] for r in rows}):
        ax2.axhline(s2 - eps, color="k", ls=":", lw=1)
        ax2.text(0.0, s2 - eps, f" sigma2 - eps = {s2 - eps:.3g}", fontsize=7, va="bottom")
    ax2.set_yscale("log")
    ax2.set_xlabel("sparsity (fraction of weights pruned)")
    ax2.set_ylabel("train MSE")
    ax2.set_title("train MSE: a run fits below its own noise level's line")
    for legend, source, columns in ((key, ax, 3), (key2, ax2, 5)):  # legends in their own axes, below the plots
        legend.axis("off")
        legend.legend(*source.get_legend_handles_labels(), fontsize=7, loc="upper center", ncol=columns,
                      frameon=False)
    save_figure(fig, path)


def sweep_part(scale: str, out: Path, seed: int = 0, seeds: int | None = None) -> tuple[dict, list[str], Path]:
    """Run (or resume) E6's grids into ``out/sweep_<scale>`` without analysing them: the scale's settings, the run
    hashes in grid order and the folder. Under ``jax.distributed`` each process runs its share of every grid's
    groups (``lawrob check E6 --num-processes P``: process 0 calls ``run``, which calls this, the others this);
    ``OtherGridResults`` if the folder holds another grid's results."""
    s = SCALES[scale] | ({"seeds": seeds} if seeds else {})
    folder = Path(out) / f"sweep_{scale}"
    todo = grids(s, seed)
    wanted = [r.hash for g in todo for r in g.runs()]
    refuse_other_grid(folder, wanted)
    for grid in todo:  # the sweep logs its own progress per run
        sweep.run(grid, folder, progress=False)
    return s, wanted, folder


def run(scale: str, out: Path, seed: int = 0, seeds: int | None = None) -> dict:
    """Run E6's sweep at ``scale`` into ``out/sweep_<scale>`` (resuming it), then write its report, figure and verdict.

    Parameters
    ----------
    scale : {"smoke", "full"}
        The grid of ``SCALES``.
    out : Path
        Output folder (``verdict.json``, ``e6.png``, ``e6.pdf`` and the sweep folder).
    seed : int
        First seed of the grid.
    seeds : int, optional
        Number of seeds instead of the scale's.

    Returns
    -------
    dict
        The verdict, as written to ``verdict.json``.

    Raises
    ------
    OtherGridResults
        If the sweep folder holds results of another grid (nothing is changed).
    """
    start = time.perf_counter()
    out = Path(out)
    s, wanted, folder = sweep_part(scale, out, seed, seeds)
    rank = {h: i for i, h in enumerate(wanted)}
    rows = sorted((r for r in sweep.read_csv(folder / "results.csv") if r["config_hash"] in rank),
                  key=lambda r: rank[r["config_hash"]])
    return conclude(out, folder, rows, scale=scale, setup=s, seed=seed, start=start)


def redraw(out: Path, scale: str = "full") -> dict:
    """Rewrite E6's verdict, figure and sweep report from the results table already in ``out/sweep_<scale>``,
    without training or measuring anything (for committed results whose analysis or figure changed after the run).

    Every row of the table is used (the grid's run hashes may have changed since the table was written, so rows are
    not matched against the current grid); the settings recorded are the scale's, the verdict keeps the original
    run's ``seconds`` from the previous ``verdict.json`` and says in ``redrawn`` that it was recomputed.

    Parameters
    ----------
    out : Path
        A folder holding ``verdict.json`` and ``sweep_<scale>/results.csv`` of an earlier E6 run.
    scale : {"smoke", "full"}
        The scale of that run.

    Returns
    -------
    dict
        The verdict, as written to ``verdict.json``.

    Raises
    ------
    ValueError
        If ``scale`` is unknown, or ``out`` lacks the results table or the previous verdict.
    """
    start = time.perf_counter()
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    out = Path(out)
    folder = out / f"sweep_{scale}"
    if not (folder / "results.csv").is_file() or not (out / "verdict.json").is_file():
        raise ValueError(f"out {out} must hold verdict.json and sweep_{scale}/results.csv of an earlier E6 run")
    previous = json.loads((out / "verdict.json").read_text())
    setup = {k: previous["setup"][k] for k in ("widths", "amplitudes", "methods", "densities", "seeds", "steps")}
    return conclude(out, folder, sweep.read_csv(folder / "results.csv"), scale=scale, setup=setup,
                    seed=previous["setup"]["seed"], start=start, seconds=previous["seconds"],
                    redrawn={"from": f"sweep_{scale}/results.csv", "note": "verdict, figure and sweep report recomputed from the committed table by "
                                     "redraw(); the sweep was not rerun"})


def conclude(out: Path, folder: Path, rows: list[dict], *, scale: str, setup: dict, seed: int, start: float,
             **extra) -> dict:
    """The sweep report of ``folder``, then ``analyse(rows)``, the figure and the verdict of E6 into ``out``.

    Parameters
    ----------
    out, folder : Path
        E6's output folder and its sweep folder.
    rows : list of dict
        The runs to judge.
    scale : str
        Recorded in the verdict.
    setup : dict
        The grid's settings (a ``SCALES`` entry).
    seed : int
        The grid's first seed.
    start : float
        ``time.perf_counter()`` at the start (the verdict's ``seconds``, unless ``extra`` gives them).
    **extra
        Further verdict keys.

    Returns
    -------
    dict
        The verdict.
    """
    sweep.write_report(folder)
    s = setup
    measured = analyse(rows)
    figure(rows, measured, out / "e6.png")
    no_violation = measured["violations"] == 0 and not measured["sweep_flagged_violations"]
    non_vacuous = measured["checked_runs"] >= 1
    fit = measured["slope_log_lip_vs_log_p_eff"]
    slope_text = (f"slope {fit['slope']:.3f} (95% CI [{fit['low']:.3f}, {fit['high']:.3f}], {fit['points']} runs) beside "
                  "the theory's -1/2" if fit["slope"] is not None else "slope not fitted (fewer than 3 fitted runs)")
    margin, res = measured["lip_upper_over_bound"], measured["resolution"]
    margin_text = (f"certified upper bound / rigorous bound {margin['min']:.3g} (min), {margin['median']:.3g} "
                   f"(median), {margin['max']:.3g} (max)" if margin else "no margin (no checked run)")
    resolution_text = (f"the law predicts a {res['predicted_effect']:.3g}x change across the fitted runs against a "
                       f"median bracket of {res['bracket_median_ratio']:.3g}x ("
                       + ("resolvable" if res["effect_exceeds_resolution"] else "not resolvable") + ")"
                       if res["effect_exceeds_resolution"] is not None else "effect size not computable")
    measured["summary"] = (
        f"{measured['violations']} violations among {measured['checked_runs']} checked runs (fitted below the noise "
        f"level with a valid rigorous bound) out of {measured['runs']} runs ({measured['fitted_below_noise']} fitted); "
        f"rigorous NFP bound valid on {measured['runs_with_valid_rigorous_nfp_bound']} runs, rigorous BS bound on "
        f"{measured['runs_with_valid_rigorous_bs_bound']}; {margin_text}; certificate {measured['certificate']} "
        f"({measured['fitted_with_grid_certificate']} fitted runs); {slope_text}; {resolution_text}")
    return write_verdict(
        out, "E6", scale=scale, start=start,
        claim="No trained network's certified Lipschitz upper bound falls below the rigorous theorem bound, and the "
              "measured Lipschitz constant scales with p_eff with a slope reported beside -1/2.",
        measured=measured,
        criterion="Pass/fail: 0 violations (fitted run with certified upper bound < a valid rigorous NFP or BS bound) "
                  "among >= 1 checked run (fewer would make the check vacuous); the margin U / bound of the checked "
                  "runs is reported beside it (a pass by a margin of 1e5 says little). Reported, not pass/fail: the "
                  "least-squares slope of log Lip (geometric mean of the certified bracket) against log p_eff over "
                  "the fitted runs of the grid's one certificate type, with its 95 % t interval, beside -1/2 (a "
                  "lower-bound law; measured slopes need not equal it), and the law's predicted effect across those "
                  "runs against the median bracket ratio (below it, the grid cannot resolve the scaling).",
        passed=no_violation and non_vacuous, parts={"no violations": no_violation, "non-vacuous": non_vacuous},
        setup=FIXED | {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()}
        | {"seed": seed, "c": 1.0, "k": 1, "sigma2": [a**2 for a in s["amplitudes"]],
           "nfp_mixture_n_min": float(bounds.no_free_prune(FIXED["n"], FIXED["d"], 1.0, FIXED["eps"], FIXED["delta"],
                                                           variant="rigorous").details["mixture_n_min"]),
           "bs_mixture_n_min": float(bounds.bubeck_sellke(FIXED["n"], FIXED["d"], 1, FIXED["eps"], FIXED["delta"], 1.0,
                                                          1.0, variant="rigorous").details["mixture_n_min"]),
           "sweep_folder": folder.name, "figure": "e6.png"}, **extra)


def main(argv=None) -> int:
    """``python -m lawrob.checks.e6_bound_vs_measurement``: run the check, or with ``--redraw`` recompute its
    outputs from the table in the output folder. Returns 0, or 2 on a refused folder."""
    def options(parser):
        seeds_option(parser)
        parser.add_argument("--redraw", action="store_true",
                            help="recompute verdict.json, e6.png and the sweep report from the output folder's "
                                 "sweep_<scale>/results.csv, training nothing")

    args = parse_args("E6", argv, extra=options)
    try:
        verdict = redraw(args.out, args.scale) if args.redraw else run(args.scale, args.out, args.seed, args.seeds)
    except (OtherGridResults, ValueError) as error:
        print(f"E6: error: {error}", file=sys.stderr)
        return 2
    print_verdict(verdict, verdict["measured"]["summary"], args.out)
    return 0

if __name__ == "__main__":
    script(main)
