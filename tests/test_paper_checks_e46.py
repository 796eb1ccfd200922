"""Smoke scale of the paper checks E4 (NFP Figs. 2b, 2c) and E6 (the rigorous bound against measured Lipschitz
constants), the latter through ``lawrob check E6``: verdict contents, figures, and numbers of the verdicts recomputed
independently (from the verdict's own curves for E4, from the sweep's results.csv for E6)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lawrob import bounds
from lawrob.cli import main as cli_main
from lawrob.sweep import read_csv

CHECKS = Path(__file__).resolve().parents[1] / "paper_checks"
COMMITTED = CHECKS / "results"  # the committed full-scale results: a smoke check never writes there
KEYS = {"experiment", "claim", "scale", "measured", "criterion", "passed", "seconds", "parts", "setup"}


def load(script: str):
    spec = importlib.util.spec_from_file_location(f"paper_check_{script}", CHECKS / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed_files() -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(COMMITTED)): (p.stat().st_size, p.stat().st_mtime_ns) for p in COMMITTED.rglob("*")
            if p.is_file()}


def check_common(verdict: dict, out: Path, experiment: str) -> None:
    assert KEYS <= verdict.keys()
    assert verdict["experiment"] == experiment and verdict["scale"] == "smoke"
    assert verdict["claim"] and verdict["criterion"]
    assert verdict["passed"] == all(verdict["parts"].values())
    assert (out / verdict["setup"]["figure"]).stat().st_size > 0


def test_e4_larger_learning_rate_correlates_sooner_and_gradient_noise_suppresses(tmp_path):
    before = committed_files()
    assert load("e4_learning_rate_and_gradient_noise").main(["--scale", "smoke", "--out", str(tmp_path)]) == 0
    assert committed_files() == before
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    check_common(verdict, tmp_path, "E4")
    assert verdict["passed"], verdict["parts"]
    m = verdict["measured"]
    by_lr = {float(k): v for k, v in m["mean_correlation_over_training_by_lr"].items()}
    by_noise = {float(k): v for k, v in m["final_correlation_by_grad_noise"].items()}
    assert sorted(by_lr) == [1e-4, 2.5e-4, 5e-4, 7.5e-4, 1e-3] and sorted(by_noise) == [0.0, 0.1, 0.2, 0.3, 0.5]
    # direction: a larger rate has more correlation (averaged over training, i.e. it gets there sooner) ...
    lrs = sorted(by_lr)
    assert by_lr[1e-3] > by_lr[1e-4]
    assert all(by_lr[a] < by_lr[b] for a, b in zip(lrs, lrs[1:]))
    # ... and gradient noise leaves less at the end; without it the student reaches the noise level (sigma2 = 1)
    assert by_noise[0.0] > 0.5 and by_noise[0.0] > by_noise[0.5]
    # the verdict's statistics agree with its own curves, recomputed here
    assert m["spearman_lr"] == pytest.approx(stats.spearmanr(lrs, [by_lr[x] for x in lrs]).statistic)
    noises = sorted(by_noise)
    assert m["spearman_grad_noise"] == pytest.approx(stats.spearmanr(noises, [by_noise[x] for x in noises]).statistic)
    # a paired mean difference is the difference of the means
    assert m["lr_max_vs_min"]["mean_difference"] == pytest.approx(by_lr[1e-3] - by_lr[1e-4], rel=1e-5, abs=1e-7)
    assert m["noise_0_vs_max"]["mean_difference"] == pytest.approx(by_noise[0.0] - by_noise[0.5], rel=1e-5, abs=1e-7)
    assert m["lr_max_vs_min"]["seeds"] == verdict["setup"]["seeds"]
    assert m["lr_max_vs_min"]["p_value"] < 0.01 and m["noise_0_vs_max"]["p_value"] < 0.01


@pytest.fixture(scope="module")
def e6_via_cli(tmp_path_factory):
    """``lawrob check E6 --out BASE`` once for the module: (exit status, printed text, E6's output folder)."""
    base = tmp_path_factory.mktemp("check")
    printed = io.StringIO()
    before = committed_files()
    with contextlib.redirect_stdout(printed):
        status = cli_main(["check", "E6", "--out", str(base)])
    assert committed_files() == before
    return status, printed.getvalue(), base / "e6"


def test_cli_check_e6_prints_the_verdict_table_and_exits_with_it(e6_via_cli):
    status, printed, out = e6_via_cli
    verdict = json.loads((out / "verdict.json").read_text())
    assert status == (0 if verdict["passed"] else 1)
    assert re.search(r"^check\s+scale\s+verdict\s+seconds\s+claim$", printed, re.M)
    line = re.search(r"^E6\s+smoke\s+(PASS|FAIL)\s+([\d.]+)\s+(.+)$", printed, re.M)
    assert line, printed[-2000:]
    assert line.group(1) == ("PASS" if verdict["passed"] else "FAIL")
    assert float(line.group(2)) == verdict["seconds"]
    assert line.group(3) == verdict["claim"]
    assert f"E6: running at smoke scale -> {out}" in printed


def test_e6_no_violation_among_runs_with_a_valid_bound(e6_via_cli):
    status, _, out = e6_via_cli
    verdict = json.loads((out / "verdict.json").read_text())
    check_common(verdict, out, "E6")
    assert verdict["passed"] and status == 0, verdict["parts"]
    m, setup = verdict["measured"], verdict["setup"]
    assert m["violations"] == 0 and m["sweep_flagged_violations"] == [] and m["recomputed_nfp_bound_mismatches"] == 0
    assert m["checked_runs"] >= 1  # non-vacuous: some fitted run meets the theorem's conditions

    rows = read_csv(out / setup["sweep_folder"] / "results.csv")
    assert len(rows) == m["runs"]
    assert {r["method"] for r in rows} == {"dense", *setup["methods"]}
    # fit below the noise level, recomputed from the table's columns
    fitted = [r for r in rows if r["train_mse"] <= r["sigma2"] - r["eps"]]
    assert [r["fits_below_noise"] for r in rows] == [r in fitted for r in rows]
    assert len(fitted) == m["fitted_below_noise"]
    # the NFP mixture condition 8^3 k ln(8k/delta) <= n (13 eps/15)^2 (rigorous), by hand: it holds on every run
    for r in rows:
        holds = 512 * r["k"] * math.log(8 * r["k"] / r["delta"]) <= r["n"] * (13 * r["eps"] / 15) ** 2
        assert holds == (r["bound_nfp_rigorous"] is not None)
    checked = [r for r in fitted if r["bound_nfp_rigorous"] is not None or r["bound_bs_rigorous"] is not None]
    assert len(checked) == m["checked_runs"] >= 1
    for r in checked:
        # the rigorous NFP bound by its formula (13 eps/15) / (1152 sqrt c) sqrt(n d delta / (I + delta/2 ln(4/delta))),
        # I = ln 2 (p_eff + 1) nats, and the certified bracket above it
        info = math.log(2) * (r["p_eff"] + 1)
        by_hand = (13 * r["eps"] / 15) / (1152 * math.sqrt(r["c"])) * math.sqrt(
            r["n"] * r["d"] * r["delta"] / (info + r["delta"] / 2 * math.log(4 / r["delta"])))
        assert r["bound_nfp_rigorous"] == pytest.approx(by_hand, rel=1e-9)
        assert r["bound_nfp_rigorous"] == pytest.approx(float(bounds.no_free_prune(
            r["n"], r["d"], r["p_eff"], r["eps"], r["delta"], c=r["c"], k=r["k"], variant="rigorous")), rel=1e-12)
        assert r["lip_upper"] >= max(b for b in (r["bound_nfp_rigorous"], r["bound_bs_rigorous"]) if b is not None)
        assert 0 < r["lip_lower"] <= r["lip_upper"] * (1 + 1e-9)
        assert not r["bound_violation"]
    assert m["min_lip_upper_over_bound"] == pytest.approx(min(r["lip_upper"] / r["bound_nfp_rigorous"] for r in checked))
    # the slope of log Lip (geometric mean of the bracket) against log p_eff, refitted here
    fit = m["slope_log_lip_vs_log_p_eff"]
    if len(fitted) >= 3:
        res = stats.linregress(np.log([r["p_eff"] for r in fitted]),
                               np.log([math.sqrt(r["lip_lower"] * r["lip_upper"]) for r in fitted]))
        assert fit["slope"] == pytest.approx(res.slope, rel=1e-9) and fit["points"] == len(fitted)
        assert fit["low"] < fit["slope"] < fit["high"]
        assert fit["ci_contains_theory"] == (fit["low"] <= -0.5 <= fit["high"])
    # the sweep's own report was written beside it
    assert (out / setup["sweep_folder"] / "report.md").exists()
