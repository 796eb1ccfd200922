"""Shared plumbing of the paper checks: command-line options and entry points, output folders, atomic writes of
verdict files and figures, progress, simple statistics, stacked runs over seeds and batched pruning."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from lawrob import prune, train
from lawrob._io import atomic_savefig, atomic_write_text
from lawrob.progress import configure_logging, logger

# The committed full-scale results (the ones the README shows) live in the source checkout, beside the package:
# paper_checks/results/<experiment>. Written only with --update-committed, and only from a source checkout.
COMMITTED = Path(__file__).resolve().parents[2] / "paper_checks" / "results"
# Where every check writes by default: ./lawrob-out/checks/<experiment>, relative to the current directory.
DEFAULT_BASE = Path("lawrob-out") / "checks"


def output_folder(name: str, out: Path | None = None, *, scale: str, update_committed: bool = False,
                  base: bool = False) -> Path:
    """The folder a check writes into: ``out`` if given, else ``./lawrob-out/checks/<name>``; with
    ``update_committed``, the committed results ``paper_checks/results/<name>`` of the source checkout (full scale
    only, not with an ``out``, and only where that folder exists). ``base``: ``out`` is a base folder holding one
    subfolder per experiment (``lawrob check --out``). Raises ``ValueError`` (one line, naming the option) on a
    refused combination."""
    if update_committed:
        if scale != "full":
            raise ValueError(f"--update-committed rewrites the committed full-scale results in {COMMITTED}; it needs "
                             f"--scale full, not --scale {scale}")
        if out is not None:
            raise ValueError("--update-committed writes into the committed results folder "
                             f"{COMMITTED}; it cannot be combined with --out")
        if not COMMITTED.is_dir():
            raise ValueError(f"--update-committed writes into a source checkout's committed results, but {COMMITTED} "
                             "does not exist (lawrob is not running from a source checkout); use --out instead")
        return COMMITTED / name.lower()
    if out is None:
        return DEFAULT_BASE / name.lower()
    return Path(out) / name.lower() if base else Path(out)


def update_committed_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--update-committed", action="store_true",
                        help="write into the source checkout's committed full-scale results paper_checks/results/"
                             "<experiment> instead (needs --scale full; not with --out)")


def parse_args(name: str, argv=None, extra=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=name, description=f"lawrob paper check {name}")
    parser.add_argument("--scale", choices=("smoke", "full"), default="smoke",
                        help="smoke (CI-sized) or full (the paper's)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default: ./{DEFAULT_BASE.as_posix()}/{name.lower()}, in the current "
                             "directory)")
    update_committed_option(parser)
    parser.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    if extra:
        extra(parser)
    args = parser.parse_args(argv)
    try:
        args.out = output_folder(name, args.out, scale=args.scale, update_committed=args.update_committed)
    except ValueError as error:
        parser.error(str(error))  # exit status 2 with the usage and a one-line message
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def write_verdict(out: Path, experiment: str, *, claim: str, measured: dict, criterion: str, passed: bool, scale: str,
                  start: float, **extra) -> dict:
    """Write ``verdict.json``: the claim in one sentence, the numbers behind it, the criterion and pass/fail."""
    verdict = {"experiment": experiment, "claim": claim, "scale": scale, "measured": measured, "criterion": criterion,
               "passed": bool(passed), "seconds": round(time.perf_counter() - start, 1), **extra}
    atomic_write_text(Path(out) / "verdict.json", json.dumps(verdict, indent=2, default=_jsonable))
    logger.info(verdict_line(verdict, extra.get("parts", extra.get("conclusion", "")), out))
    return verdict


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.bool_):
        return bool(x)
    raise TypeError(type(x).__name__)


def paired_greater(a, b) -> dict:
    """One-sided paired t-test of mean(a - b) > 0 over seeds: the mean difference, its standard error and p."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    se = diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else math.inf
    if se == 0:
        p = 0.0 if diff.mean() > 0 else 1.0
    else:
        p = float(stats.t.sf(diff.mean() / se, len(diff) - 1))
    return {"mean_difference": float(diff.mean()), "se": float(se), "p_value": p, "seeds": len(diff)}


def paired_effect(a, b, *, margin: float = 0.0, level: float = 0.95) -> dict:
    """Effect size of a paired comparison over seeds, with a test of it exceeding a margin.

    With D_i = a_i - b_i over the n seeds, mean D, se = sd(D) / sqrt(n) and t = t_{(1 + level)/2, n - 1}, the
    interval is mean +- t se (two-sided, at ``level``), and the p-value is the one-sided paired t-test of
    H0: E[D] <= margin against E[D] > margin, i.e. ``paired_greater(a, b + margin)``.

    Parameters
    ----------
    a, b : array_like
        Paired values, one per seed (same length, at least 2).
    margin : float
        The effect size the alternative must exceed (0: a plain one-sided test).
    level : float
        Coverage of the two-sided interval, in (0, 1).

    Returns
    -------
    dict
        ``mean_difference``, ``ci_low``, ``ci_high``, ``level``, ``margin``, ``p_value`` (one-sided, against the
        margin) and ``seeds``.

    Raises
    ------
    ValueError
        If ``a`` and ``b`` differ in length or hold fewer than 2 seeds, or ``level`` is outside (0, 1).

    References
    ----------
    Student's paired t-test and t interval; e.g. E. L. Lehmann and J. P. Romano, Testing Statistical Hypotheses,
    3rd ed. (2005), section 5.2.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"paired_effect: a and b must be 1-d of equal length >= 2, got shapes {a.shape} and {b.shape}")
    if not 0 < level < 1:
        raise ValueError(f"paired_effect: level must be in (0, 1), got {level}")
    mean, low, high = (float(v) for v in mean_ci(a - b, level=level))
    return {"mean_difference": mean, "ci_low": low, "ci_high": high, "level": level, "margin": margin,
            "p_value": paired_greater(a, b + margin)["p_value"], "seeds": len(a)}


def paired_equivalent(a, b, *, margin: float, level: float = 0.95) -> dict:
    """Two one-sided tests (TOST) that the paired mean difference lies within +-``margin``.

    H0: |E[a - b]| >= margin against |E[a - b]| < margin; the p-value is the larger of the one-sided paired
    t-tests of E[a - b] > -margin and E[a - b] < margin. The interval reported is the two-sided one at ``level``
    of ``paired_effect``.

    Parameters
    ----------
    a, b : array_like
        Paired values, one per seed (same length, at least 2).
    margin : float
        The equivalence margin, > 0.
    level : float
        Coverage of the reported interval, in (0, 1).

    Returns
    -------
    dict
        ``paired_effect``'s keys, with ``p_value`` the TOST p-value.

    Raises
    ------
    ValueError
        If ``margin`` is not positive, or as ``paired_effect``.

    References
    ----------
    D. J. Schuirmann, "A comparison of the two one-sided tests procedure and the power approach for assessing the
    equivalence of average bioavailability", J. Pharmacokin. Biopharm. 15 (1987) 657-680.
    """
    if not margin > 0:
        raise ValueError(f"paired_equivalent: margin must be > 0, got {margin}")
    effect = paired_effect(a, b, margin=-margin, level=level)
    above = paired_greater(np.asarray(b, float) + margin, np.asarray(a, float))["p_value"]  # E[a - b] < margin
    return effect | {"margin": margin, "p_value": max(effect["p_value"], above)}


def holm_tests(pairs: dict, *, margin: float = 0.0, alpha: float = 0.05) -> dict:
    """Paired tests of mean(a - b) > ``margin`` for every named pair, Holm-adjusted together.

    Parameters
    ----------
    pairs : dict
        Name -> (a, b), paired values over seeds (``paired_effect``'s arguments).
    margin : float
        The effect size each difference must exceed.
    alpha : float
        The family-wise level: a pair's test holds when its Holm-adjusted p-value is below it.

    Returns
    -------
    dict
        Name -> ``paired_effect`` (with its 95 % t interval and unadjusted p-value) plus ``holm_p`` and ``holds``.

    References
    ----------
    S. Holm (1979), see ``holm``.
    """
    effects = {name: paired_effect(a, b, margin=margin) for name, (a, b) in pairs.items()}
    adjusted = holm([e["p_value"] for e in effects.values()]) if effects else []
    return {name: e | {"holm_p": p, "holds": p < alpha} for (name, e), p in zip(effects.items(), adjusted)}


def spearman(x, y) -> float:
    return float(stats.spearmanr(x, y).statistic)


def holm(p_values) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given.

    With the m p-values sorted increasingly, p_(1) <= ... <= p_(m), the adjusted value of p_(i) is
    max_{j <= i} min(1, (m - j + 1) p_(j)). Rejecting every hypothesis whose adjusted value is below alpha controls
    the family-wise error rate at alpha under any dependence.

    References
    ----------
    S. Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6 (1979) 65-70.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"holm: p_values must be a 1-d sequence of numbers in [0, 1], got {p_values!r}")
    order = np.argsort(p, kind="stable")
    m = len(p)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return [float(v) for v in adjusted]


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 150) -> None:
    """Lay out, write and close a pyplot figure: a PNG at ``dpi`` and a PDF beside it (same stem).

    Each file is written atomically (into a temporary file of the same folder, then ``os.replace``). ``path``
    names the PNG; its suffix must be ``.png``.
    """
    path = Path(path)
    if path.suffix != ".png":
        raise ValueError(f"save_figure: path must end in .png (a PDF is written beside it), got {path}")
    fig.tight_layout()
    try:
        atomic_savefig(fig, path, dpi=dpi)
        atomic_savefig(fig, path.with_suffix(".pdf"))
    finally:
        pyplot().close(fig)


def verdict_line(verdict: dict, detail, out: Path) -> str:
    """Experiment, PASS/FAIL, the detail, the run time and where the results went, on one line."""
    passed = "PASS" if verdict["passed"] else "FAIL"
    return f"{verdict['experiment']} {passed}: {detail} ({verdict['seconds']} s) -> {out}"


def print_verdict(verdict: dict, detail, out: Path) -> None:
    """The verdict line for the terminal (stdout; ``write_verdict`` has logged it already)."""
    print(verdict_line(verdict, detail, out))


def standard_main(name: str, run: Callable[..., dict], *, seeds: bool = True) -> Callable[..., int]:
    """The ``main(argv=None) -> 0`` of a check whose command line is ``parse_args``'s (plus ``--seeds N`` with
    ``seeds``): it calls ``run(scale, out, seed[, seeds])`` and prints the verdict line with its parts."""
    def main(argv=None) -> int:
        args = parse_args(name, argv, extra=seeds_option if seeds else None)
        verdict = run(args.scale, args.out, args.seed, *([args.seeds] if seeds else []))
        print_verdict(verdict, verdict["parts"], args.out)
        return 0
    return main


def script(main: Callable[[], int]) -> None:
    """``python -m lawrob.checks.<module>``: progress and verdict lines to stderr, then exit with ``main()``'s status."""
    configure_logging(0)
    sys.exit(main())


def seeds_option(parser: argparse.ArgumentParser) -> None:
    """``--seeds N``: run N seeds instead of the scale's number (for a documented reduced-seed full run)."""
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the scale's)")


def mean_se(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean over ``axis`` (the seeds)."""
    values = np.asarray(values, float)
    count = values.shape[axis]
    se = values.std(axis=axis, ddof=1) / math.sqrt(count) if count > 1 else np.zeros_like(values.mean(axis=axis))
    return values.mean(axis=axis), se


def mean_ci(values, axis: int = 0, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over ``axis`` (the seeds) and its two-sided Student-t confidence interval.

    Parameters
    ----------
    values : array_like
        Samples, independent along ``axis``; at least two along it.
    axis : int
        The axis of the independent samples.
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    mean, low, high : numpy.ndarray
        mean -+ t_{(1 + level)/2, m - 1} s / sqrt(m), with s the sample standard deviation (ddof 1) of the m
        samples.

    Raises
    ------
    ValueError
        If ``level`` is not in (0, 1) or fewer than two samples lie along ``axis``.

    References
    ----------
    W. S. Gosset ("Student"), "The probable error of a mean", Biometrika 6 (1908) 1-25.
    """
    values = np.asarray(values, float)
    if not 0 < level < 1:
        raise ValueError(f"mean_ci: level must lie in (0, 1), got {level!r}")
    count = values.shape[axis]
    if count < 2:
        raise ValueError(f"mean_ci: values needs at least 2 samples along axis {axis}, got {count}")
    mean = values.mean(axis=axis)
    half = stats.t.ppf((1 + level) / 2, count - 1) * values.std(axis=axis, ddof=1) / math.sqrt(count)
    return mean, mean - half, mean + half


def write_per_seed(path: Path, values: dict, sparsity) -> None:
    """Write per-seed results as CSV (atomically): one row per (method, sparsity), one column per seed.

    Parameters
    ----------
    path : Path
        The CSV file.
    values : dict
        Method -> array [seeds, S] (e.g. the fraction memorized of every seed at every grid sparsity).
    sparsity : array_like
        The S grid sparsities.
    """
    seeds = len(next(iter(values.values())))
    lines = ["method,sparsity," + ",".join(f"seed_{k}" for k in range(seeds))]
    for method, array in values.items():
        for j, x in enumerate(np.asarray(sparsity)):
            lines.append(f"{method},{float(x)!r}," + ",".join(repr(float(v)) for v in np.asarray(array)[:, j]))
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


def read_per_seed(path: Path) -> tuple[dict, np.ndarray]:
    """The per-seed results ``write_per_seed`` wrote: (method -> array [seeds, S], sparsities [S]).

    Raises
    ------
    ValueError
        If the file's methods do not share one sparsity grid.
    """
    rows = [line.split(",") for line in Path(path).read_text().splitlines()[1:]]
    methods = list(dict.fromkeys(r[0] for r in rows))
    grids = {m: [float(r[1]) for r in rows if r[0] == m] for m in methods}
    if len({tuple(g) for g in grids.values()}) != 1:
        raise ValueError(f"path {path}: the methods do not share one sparsity grid")
    values = {m: np.array([[float(v) for v in r[2:]] for r in rows if r[0] == m]).T for m in methods}
    return values, np.array(grids[methods[0]])


def label_axes(ax, xlabel: str, ylabel: str, title: str, *, legend: float = 8, **title_options) -> None:
    """Axis labels, a title and a legend of font size ``legend`` on a pyplot axes."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, **title_options)
    ax.legend(fontsize=legend)


def _stack(pieces: list):
    if all(np.isscalar(piece) for piece in pieces):
        return np.asarray(pieces)
    return jnp.stack(pieces) if isinstance(pieces[0], jax.Array) else train.stack(pieces)


def seed_runs(seed: int, seeds: int, make: Callable[[jax.Array], tuple]) -> tuple:
    """One run per seed k = 0..seeds-1: ``make(fold_in(key(seed), k))`` returns the run's pieces (params, a Dataset,
    PRNG keys, numbers); returns each piece stacked over the runs along a leading run axis (pytrees with
    ``lawrob.train.stack``, keys with ``jnp.stack``, numbers as a NumPy array)."""
    runs = [make(jax.random.fold_in(jax.random.key(seed), k)) for k in range(seeds)]
    return tuple(_stack([run[i] for run in runs]) for i in range(len(runs[0])))


def batched_imp(progress, params, data, *, rounds: int, key: jax.Array, **options) -> prune.ImpResult:
    """``lawrob.prune.imp`` on stacked runs (``batched=True``, one key per run, layer collapse allowed), as one
    progress phase that counts its rounds + 1 trainings (lawrob.prune reports nothing within it)."""
    progress.phase(f"IMP: dense + {rounds} rounds on {len(key)} seeds")
    result = prune.imp(params, data, rounds=rounds, key=key, batched=True, collapse="allow", **options)
    jax.block_until_ready(result)
    progress.advance(rounds + 1)
    return result


def prune_runs(method: str, params, data, density: float, keys, *, model, loss: str, **options):
    """``lawrob.prune.prune`` vmapped over stacked runs (params, data and keys with a leading run axis).

    Layer collapse is allowed (callers measure it with ``prune.layer_collapse``). The x64 scope is needed by
    SynFlow, whose float64 scores fail to trace under ``jax.vmap`` without it; the masks are float32 either way.
    """
    with jax.enable_x64(True):
        return jax.vmap(lambda p, d, k: prune.prune(method, p, d, density, k, model=model, loss=loss,
                                                    collapse="allow", **options))(params, data, keys)

