"""E1's setting sweep: the training budget and the hidden width, which the paper does not state, swept on one set
of seeds, each setting judged by E1's criteria, and the setting that reproduces most of the paper's ordering picked by
a rule fixed before the sweep (``CHOICE_RULE``). Run by ``python -m lawrob.checks.e1_memorization_gaussian`` with
``--budgets`` or ``--widths`` of more than one value."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np

from lawrob._io import atomic_write_text
from lawrob.checks import e1_memorization_gaussian as e1
from lawrob.checks._common import pyplot, save_figure


def summary(verdict: dict) -> dict:
    """One setting's line of the sweep: its primary and ordering results, from its verdict."""
    m, s = verdict["measured"], verdict["setup"]
    order = m["secondary_ordering_per_sparsity"]
    return {"steps": s["steps"], "width": s["width"], "seeds": s["seeds"], "dense_memorized": m["dense_memorized"],
            "primary_holds": verdict["passed"],
            "primary_held": sum(e["holds"] for e in m["primary_imp_minus_pai_per_sparsity"]["per_sparsity"]),
            "ordering_held": order["held"], "ordering_tested": order["tested"], "ordering_holds": order["holds"],
            "relations_held": {name: sum(e["holds"] for e in entries) for name, entries in order["relations"].items()},
            "mean_memorized_at_high_sparsity": m["mean_memorized_at_high_sparsity"],
            "curves": {k: v["mean"] for k, v in m["memorized_by_method"].items()}, "sparsity": m["sparsity"],
            "seconds": verdict["seconds"]}


CHOICE_RULE = ("among the settings whose dense network memorizes >= 99 % of the labels, the most (relation, sparsity) "
               "pairs of the ordering that hold; ties by the most sparsities where the primary criterion holds, then "
               "the smaller budget, then the smaller width")


def choose(settings: list[dict]) -> dict | None:
    """The setting that reproduces the paper's ordering best, by ``CHOICE_RULE`` (fixed before the sweep).

    Parameters
    ----------
    settings : list of dict
        One ``summary`` per setting.

    Returns
    -------
    dict or None
        The chosen setting's summary; None if no setting's dense network memorizes >= 99 % of the labels.
    """
    eligible = [x for x in settings if x["dense_memorized"] >= 0.99]
    if not eligible:
        return None
    return max(eligible, key=lambda x: (x["ordering_held"], x["primary_held"], -x["steps"], -x["width"]))


def setting_sweep(scale: str, out: Path, seed: int = 0, seeds: int | None = None, budgets=(100, 200, 500),
                  widths=(25, 50, 100)) -> dict:
    """E1 at every (budget, width) into ``out/steps<S>-width<W>`` (``measure`` once per width, ``judge`` per
    setting), then ``sweep.json``, ``sweep.md`` and ``sweep.png`` comparing the settings, with the one ``choose``
    picks. A setting whose folder already holds its verdict (same setting and seed) is not measured again.

    Parameters
    ----------
    scale : {"smoke", "full"}
        The scale whose grid and seed count the runs use (``seeds`` overrides the count).
    out : Path
        Output folder of the sweep.
    seed : int
        Base PRNG seed (the same for every setting: paired data sets and initializations across budgets).
    seeds : int, optional
        Seeds per setting.
    budgets, widths : sequence of int
        Training budgets (Adam steps) and hidden widths.

    Returns
    -------
    dict
        ``settings`` (one ``summary`` each) and ``chosen``.
    """
    out = Path(out)
    verdicts: dict[tuple[int, int], dict] = {}
    for width in widths:  # the masks at initialization are drawn once per width and trained at every budget
        s = e1.setting(scale, seeds, None, width)
        folders = {steps: out / f"steps{steps}-width{width}" for steps in budgets}
        verdicts |= {(steps, width): v for steps, folder in folders.items() if (v := _finished(folder, s | {"steps": steps}, seed))}
        todo = [steps for steps in budgets if (steps, width) not in verdicts]
        if not todo:
            continue
        start = time.perf_counter()
        results = e1.measure(s, seed, todo, label=f"E1 {scale} sweep, width {width}")
        for steps in todo:
            folders[steps].mkdir(parents=True, exist_ok=True)
            verdicts[steps, width] = e1.judge(results[steps], folders[steps], scale=scale, s=s | {"steps": steps},
                                           seed=seed, start=start)
    settings = [summary(verdicts[steps, width]) for steps, width in itertools.product(budgets, widths)]
    chosen = choose(settings)
    result = {"scale": scale, "seed": seed, "settings": settings,
              "chosen": chosen and {"steps": chosen["steps"], "width": chosen["width"]}, "rule": CHOICE_RULE}
    atomic_write_text(out / "sweep.json", json.dumps(result, indent=2, default=_plain))
    atomic_write_text(out / "sweep.md", sweep_table(result))
    sweep_figure(result, out / "sweep.png")
    return result


def _finished(folder: Path, s: dict, seed: int) -> dict | None:
    """The verdict already in ``folder`` if it is of setting ``s`` and ``seed`` (a resumed sweep), else None."""
    try:
        verdict = json.loads((folder / "verdict.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    wanted = {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()} | {"seed": seed}
    return verdict if all(verdict["setup"].get(k) == v for k, v in wanted.items()) else None


def _plain(x):
    return x.tolist() if isinstance(x, np.ndarray) else x.item()


def _is_chosen(x: dict, result: dict) -> bool:
    return result["chosen"] is not None and (x["steps"], x["width"]) == (result["chosen"]["steps"],
                                                                         result["chosen"]["width"])


def sweep_table(result: dict) -> str:
    """The sweep as Markdown: one row per setting, the chosen one marked."""
    names = list(result["settings"][0]["relations_held"])
    lines = ["| steps | width | seeds | dense | primary (sparsities held) | ordering held | "
             + " | ".join(names) + " | mean at >= 95 %: " + ", ".join(("imp", *e1.PAI)) + " |",
             "| " + " | ".join(["---"] * (7 + len(names))) + " |"]
    for x in result["settings"]:
        mark = " (chosen)" if _is_chosen(x, result) else ""
        high = x["mean_memorized_at_high_sparsity"]
        lines.append(f"| {x['steps']}{mark} | {x['width']} | {x['seeds']} | {x['dense_memorized']:.3f} | "
                     f"{'PASS' if x['primary_holds'] else 'FAIL'} ({x['primary_held']}) | "
                     f"{x['ordering_held']} / {x['ordering_tested']} | "
                     + " | ".join(str(x["relations_held"][n]) for n in names) + " | "
                     + ", ".join(f"{high[m]:.3f}" for m in ("imp", *e1.PAI)) + " |")
    return "\n".join(lines) + "\n"


def sweep_figure(result: dict, path: Path) -> None:
    """One panel per (width, budget): the mean fraction memorized of every method against sparsity."""
    budgets = sorted({x["steps"] for x in result["settings"]})
    widths = sorted({x["width"] for x in result["settings"]})
    plt = pyplot()
    fig, axes = plt.subplots(len(widths), len(budgets), figsize=(3.6 * len(budgets), 2.8 * len(widths)),
                             sharex=True, sharey=True, squeeze=False)
    for x in result["settings"]:
        ax = axes[widths.index(x["width"])][budgets.index(x["steps"])]
        for i, (method, mean) in enumerate(x["curves"].items()):
            ax.plot(x["sparsity"], mean, marker="o", ms=2, color=f"C{i}", label=method)
        chosen = _is_chosen(x, result)
        ax.set_title(f"{x['steps']} steps, width {x['width']}: order {x['ordering_held']}/{x['ordering_tested']}"
                     + (" (chosen)" if chosen else ""), fontsize=8, fontweight="bold" if chosen else "normal")
        ax.axvline(e1.HIGH_SPARSITY, color="gray", ls=":", lw=1)
    axes[0][0].legend(fontsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("sparsity")
    for row in axes:
        row[0].set_ylabel("fraction memorized")
    save_figure(fig, path)
