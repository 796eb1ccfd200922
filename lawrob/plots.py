"""The standard figures of a sweep, drawn from its tidy results table (a list of row dicts).

Each function saves PNG and PDF next to each other and returns the files and what it drew (e.g. the curves), so
the report can state numbers beside the pictures. Fits are the report's (``lawrob.sweep.report``): a figure draws
a fit it is given, it does not make one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from lawrob._io import atomic_savefig

__all__ = ["fitted_runs", "lipschitz_vs_peff", "memorization_vs_sparsity", "noise_correlation"]


def _axes(figsize: tuple[float, float]):
    """A figure outside pyplot (no backend is selected or changed, so notebooks keep theirs) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def _save(fig, path: Path) -> list[Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_suffix(".png"), path.with_suffix(".pdf")]
    for p in out:
        atomic_savefig(fig, p, dpi=120, bbox_inches="tight")
    return out


def _num(row, key):
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def fitted_runs(rows: list[dict]) -> list[dict]:
    """The runs a Lipschitz-vs-p_eff figure or fit uses: those that fit below the noise level (the theorem says
    nothing about the others) with a p_eff and both ends of the Lipschitz bracket.

    Parameters
    ----------
    rows : list of dict
        The results rows of a sweep.

    Returns
    -------
    list of dict
        The rows drawn.
    """
    return [r for r in rows if r.get("fits_below_noise") and _num(r, "p_eff") and _num(r, "lip_lower") and _num(r, "lip_upper")]


def lipschitz_vs_peff(rows: list[dict], path: Path, fit: dict | None = None) -> dict:
    """Measured Lipschitz bracket [lip_lower, lip_upper] (exact as a dot) against p_eff on log-log axes, with the
    rigorous NFP bound of each run, the constant-free law sqrt(n d / p_eff) and, when ``fit`` is
    given (``sweep.report.scaling_fit``: slope, its interval and intercept), the fitted line. Only
    ``fitted_runs(rows)`` are drawn. Returns the files written and the number of runs drawn.

    Parameters
    ----------
    rows : list of dict
        The results rows of a sweep.
    path : pathlib.Path
        The file stem written (``.png`` and ``.pdf``).
    fit : dict, optional
        The scaling fit to draw.

    Returns
    -------
    dict
        ``files`` (the paths written) and ``runs`` (the number drawn).

    References
    ----------
    NFP Theorem 4. docs/theory.md, section 4.3.
    """
    fig, ax = _axes((6.4, 4.6))
    fitted = fitted_runs(rows)
    by_method = defaultdict(list)
    for r in fitted:  # one colour per method, and per objective where a grid has the frontier search
        by_method[r["method"] + (", most robust" if r.get("objective") == "robust" else "")].append(r)
    for i, (method, rs) in enumerate(sorted(by_method.items())):
        color = f"C{i}"
        x = np.array([_num(r, "p_eff") for r in rs])
        lo = np.array([_num(r, "lip_lower") for r in rs])
        hi = np.array([_num(r, "lip_upper") for r in rs])
        ax.vlines(x, lo, hi, color=color, alpha=0.6)
        ax.scatter(x, np.sqrt(lo * hi), color=color, s=14, label=f"{method} (bracket)")
        exact = [(_num(r, "p_eff"), _num(r, "lip_exact")) for r in rs if _num(r, "lip_exact")]
        if exact:
            ax.scatter(*zip(*exact), color=color, marker="*", s=40)
    bound = [(_num(r, "p_eff"), _num(r, "bound_nfp_rigorous")) for r in fitted if _num(r, "bound_nfp_rigorous")]
    if bound:
        ax.scatter(*zip(*bound), color="k", marker="_", s=60, label="NFP bound (rigorous)")
    if fitted and len({_num(r, "p_eff") for r in fitted}) > 1:
        grid = np.geomspace(min(_num(r, "p_eff") for r in fitted), max(_num(r, "p_eff") for r in fitted), 50)
        if fit is not None and fit.get("slope") is not None:
            ax.plot(grid, np.exp(fit["intercept"]) * grid ** fit["slope"], "k--", lw=1,
                    label=f"fit: slope {fit['slope']:.2f} [{fit['low']:.2f}, {fit['high']:.2f}] (theory -0.5)")
        ax.plot(grid, np.sqrt(np.median([r["n"] * r["d"] for r in fitted]) / grid), ":", color="gray", lw=1,
                label="sqrt(n d / p_eff) (constant-free law)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("p_eff (bits)")
    ax.set_ylabel("Lipschitz constant")
    ax.set_title("Measured Lipschitz bracket vs p_eff")
    if fitted:
        ax.legend(fontsize=7)
    files = _save(fig, path)
    return {"files": [str(f) for f in files], "runs_drawn": len(fitted)}


def _mean_se(values):
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def memorization_vs_sparsity(rows: list[dict], path: Path, metric: str = "train_accuracy") -> dict:
    """Mean (with standard error over seeds) of ``metric`` against sparsity 1 - density, one line per method.

    Parameters
    ----------
    rows : list of dict
        The results rows of a sweep.
    path : pathlib.Path
        The file stem written.
    metric : str
        The column drawn.

    Returns
    -------
    dict
        ``files`` (the paths written).
    """
    fig, ax = _axes((6.4, 4.2))
    curves = {}
    groups: defaultdict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if _num(r, metric) is not None:
            groups[r["method"]][1 - float(r["density"])].append(_num(r, metric))
    for i, (method, by_sparsity) in enumerate(sorted(groups.items())):
        xs = sorted(by_sparsity)
        stats_ = [_mean_se(by_sparsity[x]) for x in xs]
        means, ses = np.array([m for m, _ in stats_]), np.array([s for _, s in stats_])
        ax.errorbar(xs, means, yerr=ses, marker="o", ms=3, capsize=2, color=f"C{i}", label=method)
        curves[method] = {"sparsity": xs, "mean": means.tolist(), "se": ses.tolist()}
    ax.set_xlabel("sparsity (fraction of weights pruned)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title("Memorization against sparsity")
    if curves:
        ax.legend(fontsize=8)
    return {"curves": curves, "files": [str(f) for f in _save(fig, path)]}


def noise_correlation(histories: dict[str, dict], rows: list[dict], path: Path) -> dict:
    """The noise correlation (1/n) sum (f(x_i) - E f) z_i over training steps, averaged per method, with the mean
    noise level sigma2 for reference. ``histories`` maps config hashes to {"step": [...], "noise_corr": [...]}.

    Parameters
    ----------
    histories : dict
        Config hash -> {"step": [...], "noise_corr": [...]}.
    rows : list of dict
        The results rows of the sweep.
    path : pathlib.Path
        The file stem written.

    Returns
    -------
    dict
        ``files`` (the paths written).

    References
    ----------
    NFP Section 6.2, Figure 2.
    """
    fig, ax = _axes((6.4, 4.2))
    by_method = defaultdict(list)
    for r in rows:
        h = histories.get(r["config_hash"])
        if h and h.get("noise_corr"):
            by_method[r["method"]].append(h)
    finals = {}
    for i, (method, hs) in enumerate(sorted(by_method.items())):
        steps = hs[0]["step"]
        curves = np.array([h["noise_corr"] for h in hs if h["step"] == steps])
        ax.plot(steps, curves.mean(axis=0), color=f"C{i}", label=method)
        finals[method] = float(curves[:, -1].mean())
    sigma2 = [_num(r, "sigma2") for r in rows if _num(r, "sigma2") is not None]
    if sigma2:
        ax.axhline(float(np.mean(sigma2)), color="k", ls=":", lw=1, label="sigma2")
    ax.set_xlabel("training step")
    ax.set_ylabel("noise correlation")
    ax.set_title("Correlation with the label noise during training")
    if finals:
        ax.legend(fontsize=8)
    return {"final_mean": finals, "files": [str(f) for f in _save(fig, path)]}
