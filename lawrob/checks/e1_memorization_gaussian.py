"""E1 (NFP Fig. 1a): at high sparsity, IMP-found subnetworks memorize far more random labels than the subnetworks
found by pruning at initialization.

Memorization capacity on Gaussian data (docs/checks.md, E1): n = d = 30, x ~ N(0, I/d), labels uniform in {-1, +1}
(pure noise), a ReLU MLP with two hidden layers (width and training budget not stated by the paper: see below),
logistic loss, full-batch Adam at lr 1e-2. A point is memorized when its loss is below (ln 2)/10. Sparsities
1 - 0.8^k on the IMP grid (20 % pruned per round), methods IMP (rewinding to initialization), SynFlow, SNIP, GraSP
and random pruning; every seed draws a fresh dataset and network shared by all methods.

Criteria (fixed before the full-scale runs). Primary, the claim "far more": at every grid sparsity >= 95 %, IMP
minus each pruning-at-initialization method, in fraction of labels memorized, exceeds ``MARGIN`` = 0.1 (one-sided
paired t-test of H0: mean difference <= 0.1, Holm-adjusted over all sparsities x methods, every adjusted p below
``ALPHA`` = 0.05); the effect size reported per sparsity is IMP minus the best such method with its 95 % t
interval. Secondary, the paper's ordering, tested the same way at every sparsity >= 95 % (Holm over the whole
family): SynFlow > SNIP, SynFlow > GraSP, SNIP ~ GraSP (two one-sided tests, margin 0.1), SNIP > random and GraSP >
random; and which method first falls below half memorized.

The width and the training budget are swept with ``--widths`` and ``--budgets`` (``lawrob.checks._e1_sweep``): one
run per setting in ``OUT/steps<S>-width<W>``, and ``sweep.json``, ``sweep.md`` and ``sweep.png`` comparing the
settings' orderings, with the setting that reproduces most of the ordering by a rule fixed in advance.

    uv run python -m lawrob.checks.e1_memorization_gaussian --scale smoke|full [--seeds N]
        [--budgets S [S ...]] [--widths W [W ...]] [--out DIR | --update-committed]

Output: --out DIR (default ./lawrob-out/checks/e1, in the current directory); --update-committed (with
--scale full only) rewrites the committed results in paper_checks/results/e1 instead.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lawrob import data, nets, prune, train
from lawrob.checks._common import (
    batched_imp, holm, holm_tests, label_axes, mean_se, paired_effect, paired_equivalent, parse_args, print_verdict,
    prune_runs,
    pyplot, save_figure, script, seed_runs, seeds_option, write_per_seed, write_verdict)
from lawrob.progress import Progress

PAI = ("synflow", "snip", "grasp", "random")  # pruning at initialization, in the claimed order
HIGH_SPARSITY = 0.95
MARGIN = 0.1  # "far more": IMP memorizes at least 10 % more of the labels than every PaI method
EQUIVALENCE = 0.1  # "SNIP ~ GraSP": their mean difference within +-0.1
ALPHA = 0.05  # family-wise, Holm
# the paper's ordering below IMP: (a, b, relation) with relation "greater" (a > b) or "equivalent" (a ~ b)
ORDER = (("synflow", "snip", "greater"), ("synflow", "grasp", "greater"), ("snip", "grasp", "equivalent"),
         ("snip", "random", "greater"), ("grasp", "random", "greater"))
SCALES: dict[str, dict[str, Any]] = {
    # full: the setting the budget x width sweep picked (paper_checks/README_e123.md, E1)
    "full": dict(n=30, d=30, width=100, seeds=250, steps=100, exponents=tuple(range(9, 24))),
    "smoke": dict(n=30, d=30, width=50, seeds=16, steps=200, exponents=(14, 17, 20)),
}


def measure(s: dict, seed: int, budgets=None, label: str = "E1") -> dict[int, dict]:
    """Train every method at every grid sparsity on ``s["seeds"]`` seeds, at each training budget.

    The masks found at initialization do not depend on the budget: they are drawn once and trained at every budget;
    IMP is run once per budget (its masks depend on the trained weights).

    Parameters
    ----------
    s : dict
        A setting: ``n``, ``d``, ``width``, ``seeds``, ``steps`` (full-batch Adam steps per training, the default
        budget) and ``exponents`` (sparsities 1 - 0.8^k).
    seed : int
        Base PRNG seed; seed k of the run uses ``fold_in(key(seed), k)`` (the same data and networks at every
        budget).
    budgets : sequence of int, optional
        Training budgets (default: ``(s["steps"],)``).
    label : str
        Name of the progress lines.

    Returns
    -------
    dict
        Budget -> {``sparsity`` [S], ``memorized`` and ``collapsed``: method -> array [seeds, S] (fraction of labels
        memorized at the end of training; whether a layer lost all its weights), ``dense_memorized`` (mean over
        seeds)}.
    """
    budgets = tuple(budgets or (s["steps"],))
    model = nets.MLP((s["d"], s["width"], s["width"], 1))
    fit_options: dict[str, Any] = dict(loss="logistic", learning_rate=1e-2)

    def make(key):  # one seed: a fresh dataset and network, shared by all methods
        key_data, key_init, key_train, key_prune = jax.random.split(key, 4)
        dataset = data.make_dataset(key_data, data.Gaussian(s["d"]), s["n"], "zero", "rademacher")
        return model.init(key_init), dataset, key_train, key_prune

    params, sets, train_keys, prune_keys = seed_runs(seed, s["seeds"], make)
    rounds_imp = max(s["exponents"])
    per_budget = rounds_imp + 1 + len(PAI) * len(s["exponents"])
    progress = Progress(len(PAI) * len(s["exponents"]) + len(budgets) * per_budget, label, unit="mask or training")
    masks = {}
    for method, k in itertools.product(PAI, s["exponents"]):
        progress.phase(f"{method} mask at sparsity {1 - 0.8**k:.4f}")
        masks[method, k] = prune_runs(method, params, sets, 0.8**k, prune_keys, model=model, loss="logistic")
        progress.advance()
    results = {}
    for steps in budgets:
        imp = batched_imp(progress, params, sets, model=model, rounds=rounds_imp, steps=steps, key=train_keys,
                          **fit_options)
        rounds = [k - 1 for k in s["exponents"]]  # IMP round r keeps 0.8^(r + 1)
        memorized = {"imp": np.stack([np.asarray(imp.histories[r]["memorized"][:, -1]) for r in rounds], 1)}
        collapsed = {"imp": np.stack([np.asarray(prune.layer_collapse(imp.masks[r])).any(-1) for r in rounds], 1)}
        for method in PAI:  # one training call per sparsity, shaped like IMP's, so training compiles only once
            mem = []
            for k in s["exponents"]:
                progress.phase(f"{method} at sparsity {1 - 0.8**k:.4f}, {steps} steps")
                history = train.fit_batched(params, masks[method, k], sets, model=model, steps=steps, keys=train_keys,
                                            **fit_options)[1]
                mem.append(np.asarray(history["memorized"][:, -1]))
                progress.advance()
            memorized[method] = np.stack(mem, 1)  # [seeds, sparsities]
            collapsed[method] = np.stack([np.asarray(prune.layer_collapse(masks[method, k])).any(-1)
                                          for k in s["exponents"]], 1)
        results[steps] = {"sparsity": np.array([1 - 0.8**k for k in s["exponents"]]), "memorized": memorized,
                          "collapsed": collapsed,
                          "dense_memorized": float(np.asarray(imp.dense_history["memorized"][:, -1]).mean())}
    progress.close()
    return results


def compare(memorized: dict, sparsity, *, margin: float = MARGIN, alpha: float = ALPHA) -> dict:
    """The primary criterion: IMP minus every PaI method > ``margin`` at every grid sparsity >= 95 %.

    For each sparsity s >= ``HIGH_SPARSITY`` and each method m of ``PAI``, the one-sided paired t-test over seeds
    of H0: mean(IMP - m) <= margin; the 4 S p-values are Holm-adjusted together, and the criterion holds at s when
    all four adjusted p-values are below ``alpha``. The effect size at s is IMP minus the PaI method of highest mean
    there ("best"), with its two-sided 95 % t interval and its unadjusted p-value against the margin.

    Parameters
    ----------
    memorized : dict
        Method -> array [seeds, S] of fractions memorized, with "imp" and every method of ``PAI``.
    sparsity : array_like
        The S grid sparsities.
    margin, alpha : float
        The effect size to exceed and the family-wise level.

    Returns
    -------
    dict
        ``per_sparsity`` (one entry per s >= 95 %: ``sparsity``, ``best``, ``imp_minus_best`` as from
        ``paired_effect``, ``holm_p`` per method, ``holds``), ``holds`` (at every such s), ``margin``, ``alpha``.

    Raises
    ------
    ValueError
        If no grid sparsity reaches ``HIGH_SPARSITY``.
    """
    columns = _high(sparsity)
    tests = holm_tests({(j, m): (memorized["imp"][:, j], memorized[m][:, j]) for j in columns for m in PAI},
                       margin=margin, alpha=alpha)
    per_sparsity = []
    for j in columns:
        best = max(PAI, key=lambda m: float(memorized[m][:, j].mean()))
        per_sparsity.append({"sparsity": float(sparsity[j]), "best": best,
                             "imp_minus_best": paired_effect(memorized["imp"][:, j], memorized[best][:, j],
                                                             margin=margin),
                             "holm_p": {m: tests[j, m]["holm_p"] for m in PAI},
                             "holds": all(tests[j, m]["holds"] for m in PAI)})
    return {"per_sparsity": per_sparsity, "holds": all(e["holds"] for e in per_sparsity), "margin": margin,
            "alpha": alpha}


def ordering(memorized: dict, sparsity, *, alpha: float = ALPHA, equivalence: float = EQUIVALENCE) -> dict:
    """The paper's ordering below IMP (``ORDER``), tested at every grid sparsity >= 95 %.

    "a > b": the one-sided paired t-test of mean(a - b) > 0; "a ~ b": two one-sided tests that |mean(a - b)| <
    ``equivalence``. All relations x sparsities are Holm-adjusted together; a relation holds at s when its
    adjusted p-value is below ``alpha``.

    Parameters
    ----------
    memorized : dict
        Method -> array [seeds, S] of fractions memorized (every method named in ``ORDER``).
    sparsity : array_like
        The S grid sparsities.
    alpha, equivalence : float
        The family-wise level and the equivalence margin.

    Returns
    -------
    dict
        ``relations``: "a > b" / "a ~ b" -> list over the sparsities >= 95 % of {``sparsity``, effect (as from
        ``paired_effect``), ``holm_p``, ``holds``}; ``held`` and ``tested`` (counts over the family), ``holds``
        (every relation at every such sparsity).
    """
    columns = _high(sparsity)
    tests = []
    for a, b, relation in ORDER:
        for j in columns:
            x, y = memorized[a][:, j], memorized[b][:, j]
            effect = paired_effect(x, y) if relation == "greater" else paired_equivalent(x, y, margin=equivalence)
            tests.append((f"{a} {'>' if relation == 'greater' else '~'} {b}", j, effect))
    adjusted = holm([t["p_value"] for _, _, t in tests])
    relations: dict[str, list] = {}
    for (name, j, effect), p in zip(tests, adjusted):
        relations.setdefault(name, []).append({"sparsity": float(sparsity[j]), **effect, "holm_p": p,
                                               "holds": p < alpha})
    held = sum(e["holds"] for entries in relations.values() for e in entries)
    return {"relations": relations, "held": held, "tested": len(tests), "holds": held == len(tests),
            "alpha": alpha, "equivalence_margin": equivalence}


def _high(sparsity) -> list[int]:
    columns = [j for j, x in enumerate(np.asarray(sparsity)) if x >= HIGH_SPARSITY]
    if not columns:
        raise ValueError(f"sparsity must reach {HIGH_SPARSITY} at some grid point, got {list(sparsity)}")
    return columns


def first_below_half(memorized: dict, sparsity) -> dict:
    """Where each method collapses: the first grid sparsity at which its mean fraction memorized is below 1/2.

    Parameters
    ----------
    memorized : dict
        Method -> array [seeds, S] of fractions memorized.
    sparsity : array_like
        The S grid sparsities, increasing.

    Returns
    -------
    dict
        Method -> that sparsity, or None where the mean never falls below one half.
    """
    return {m: next((float(x) for x, v in zip(sparsity, memorized[m].mean(0)) if v < 0.5), None) for m in memorized}


def figure(sparsity, memorized: dict, primary: dict, path: Path, title: str) -> None:
    """Draw E1's figure into ``path`` (PNG, and a PDF beside it).

    Left: mean fraction memorized (+- standard error over seeds) against sparsity per method. Right: IMP minus
    each PaI method at the sparsities >= 95 %, with 95 % t intervals, beside the margin of the primary criterion.

    Parameters
    ----------
    sparsity : array_like
        The S grid sparsities.
    memorized : dict
        Method -> array [seeds, S] of fractions memorized.
    primary : dict
        ``compare(memorized, sparsity)``.
    path : Path
        The PNG to write.
    title : str
        Title of the left panel.
    """
    plt = pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, method in enumerate(memorized):
        mean, se = mean_se(memorized[method])
        ax.errorbar(sparsity, mean, yerr=se, marker="o", ms=3, capsize=2, color=f"C{i}", label=method)
    ax.axvline(HIGH_SPARSITY, color="gray", ls=":", lw=1)
    label_axes(ax, "sparsity (fraction of weights pruned)", "fraction of random labels memorized", title, fontsize=10)
    columns = _high(sparsity)
    x = np.asarray(sparsity)[columns]
    for i, method in enumerate(PAI, start=1):
        effects = [paired_effect(memorized["imp"][:, j], memorized[method][:, j]) for j in columns]
        mean = np.array([e["mean_difference"] for e in effects])
        err = np.array([[e["mean_difference"] - e["ci_low"], e["ci_high"] - e["mean_difference"]] for e in effects]).T
        ax2.errorbar(x + 0.0004 * (i - 2.5), mean, yerr=err, marker="o", ms=3, capsize=2, color=f"C{i}",
                     label=f"IMP - {method}")
    ax2.axhline(primary["margin"], color="k", ls="--", lw=1, label=f"margin {primary['margin']:g}")
    ax2.axhline(0, color="gray", lw=0.5)
    label_axes(ax2, "sparsity", "IMP minus method (fraction memorized), 95 % CI",
               f"primary criterion holds at {sum(e['holds'] for e in primary['per_sparsity'])} of "
               f"{len(primary['per_sparsity'])} sparsities >= 95 %",
               fontsize=10)
    save_figure(fig, path)


def setting(scale: str, seeds: int | None = None, steps: int | None = None, width: int | None = None) -> dict:
    """The scale's setting (``SCALES``) with the seed count, budget and width overridden where given.

    Parameters
    ----------
    scale : {"smoke", "full"}
        The scale.
    seeds, steps, width : int, optional
        Overrides (None: the scale's).

    Returns
    -------
    dict
        The setting.

    Raises
    ------
    ValueError
        If ``scale`` is unknown, or ``seeds`` < 2, ``steps`` < 1 or ``width`` < 1.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    overrides = {k: v for k, v in (("seeds", seeds), ("steps", steps), ("width", width)) if v is not None}
    for name, value in overrides.items():
        if not isinstance(value, int) or value < (2 if name == "seeds" else 1):
            raise ValueError(f"{name} must be an integer >= {2 if name == 'seeds' else 1}, got {value!r}")
    return SCALES[scale] | overrides


def run(scale: str, out: Path, seed: int = 0, seeds: int | None = None, steps: int | None = None,
        width: int | None = None) -> dict:
    """Run E1 at ``scale`` (optionally with another seed count, budget or width) and write its verdict and figure.

    Parameters
    ----------
    scale : {"smoke", "full"}
        The setting of ``SCALES``.
    out : Path
        Output folder (``verdict.json``, ``e1.png`` and ``e1.pdf``).
    seed : int
        Base PRNG seed.
    seeds, steps, width : int, optional
        Override the scale's seed count, training budget (Adam steps) and hidden width.

    Returns
    -------
    dict
        The verdict, as written to ``verdict.json``.

    Raises
    ------
    ValueError
        As ``setting``.
    """
    start = time.perf_counter()
    s = setting(scale, seeds, steps, width)
    result = measure(s, seed, label=f"E1 {scale} steps {s['steps']} width {s['width']}")[s["steps"]]
    return judge(result, Path(out), scale=scale, s=s, seed=seed, start=start)


def judge(result: dict, out: Path, *, scale: str, s: dict, seed: int, start: float) -> dict:
    """The criteria on one setting's measurements (``measure``), its figure and its verdict file in ``out``.

    Parameters
    ----------
    result : dict
        One budget's entry of ``measure``.
    out : Path
        Output folder.
    scale : str
        Recorded in the verdict.
    s : dict
        The setting measured (``setting``), with ``steps`` the budget of ``result``.
    seed : int
        Its base PRNG seed.
    start : float
        ``time.perf_counter()`` when its measurement began.

    Returns
    -------
    dict
        The verdict, as written to ``out/verdict.json``.
    """
    sparsity, memorized = result["sparsity"], result["memorized"]
    primary, order = compare(memorized, sparsity), ordering(memorized, sparsity)
    below_half = first_below_half(memorized, sparsity)
    reached = {m: x for m, x in below_half.items() if x is not None}
    first = [m for m, x in reached.items() if x == min(reached.values())]
    figure(sparsity, memorized, primary, out / "e1.png",
           f"E1: n = d = {s['n']}, width {s['width']}, {s['steps']} steps, {s['seeds']} seeds (NFP Fig. 1a)")
    write_per_seed(out / "per_seed.csv", memorized, sparsity)
    high = sparsity >= HIGH_SPARSITY
    curves = {m: {"mean": mean_se(v)[0], "se": mean_se(v)[1], "collapsed_fraction": result["collapsed"][m].mean(0)}
              for m, v in memorized.items()}
    return write_verdict(
        out, "E1", scale=scale, start=start,
        claim="At high sparsity (>= 95 %) the IMP subnetworks memorize far more random labels than those found by "
              "pruning at initialization (SynFlow, SNIP, GraSP, random).",
        measured={"sparsity": sparsity, "dense_memorized": result["dense_memorized"], "memorized_by_method": curves,
                  "mean_memorized_at_high_sparsity": {m: float(v[:, high].mean()) for m, v in memorized.items()},
                  "primary_imp_minus_pai_per_sparsity": primary, "secondary_ordering_per_sparsity": order,
                  "secondary_first_sparsity_below_half": below_half, "secondary_collapses_first": first},
        criterion=f"Primary (fixed before the full runs): at every grid sparsity >= {HIGH_SPARSITY:.0%}, IMP minus "
                  f"each of SynFlow, SNIP, GraSP and random (fraction of labels memorized, paired over seeds) exceeds "
                  f"{MARGIN:g}: one-sided paired t-tests of H0: mean difference <= {MARGIN:g}, Holm-adjusted over "
                  f"all sparsities x methods, every adjusted p < {ALPHA:g}; reported per sparsity: IMP minus the "
                  f"best PaI method with its 95 % t interval. Secondary, reported but not part of pass/fail: the "
                  f"paper's ordering at every sparsity >= {HIGH_SPARSITY:.0%} (SynFlow > SNIP, SynFlow > GraSP, SNIP ~ "
                  f"GraSP within +-{EQUIVALENCE:g} by two one-sided tests, SNIP > random, GraSP > random; Holm over "
                  f"the family at {ALPHA:g}) and which method first falls below half memorized.",
        passed=primary["holds"],
        parts={f"imp - pai > {MARGIN:g} at {e['sparsity']:.1%}": e["holds"] for e in primary["per_sparsity"]},
        setup=s | {"seed": seed, "exponents": list(s["exponents"]), "activation": "relu", "optimizer": "adam (full batch)",
                   "learning_rate": 1e-2, "loss": "logistic", "memorized_if_loss_below": train.MEMORIZED_LOSS,
                   "synflow_iterations": prune.SYNFLOW_ITERATIONS, "figure": "e1.png",
                   "per_seed": "per_seed.csv"})


def main(argv=None) -> int:
    """``python -m lawrob.checks.e1_memorization_gaussian``: one run, or with ``--budgets``/``--widths`` of more
    than one value together, the setting sweep (``lawrob.checks._e1_sweep``).

    Parameters
    ----------
    argv : list of str, optional
        The command line (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0.
    """
    def options(parser):
        seeds_option(parser)
        parser.add_argument("--budgets", type=int, nargs="+", default=None,
                            help="training budgets (Adam steps) to sweep (default: the scale's)")
        parser.add_argument("--widths", type=int, nargs="+", default=None,
                            help="hidden widths to sweep (default: the scale's)")

    args = parse_args("E1", argv, extra=options)
    s = SCALES[args.scale]
    budgets, widths = args.budgets or [s["steps"]], args.widths or [s["width"]]
    if len(budgets) * len(widths) == 1:
        verdict = run(args.scale, args.out, args.seed, args.seeds, budgets[0], widths[0])
        print_verdict(verdict, verdict["parts"], args.out)
        return 0
    from lawrob.checks import _e1_sweep  # the sweep builds on this module's measure and judge

    result = _e1_sweep.setting_sweep(args.scale, args.out, args.seed, args.seeds, budgets, widths)
    print(_e1_sweep.sweep_table(result) + f"chosen: {result['chosen']} -> {args.out}")
    return 0


if __name__ == "__main__":
    script(main)
