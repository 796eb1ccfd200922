"""Smoke scale of the paper check E6 (the rigorous bound against measured Lipschitz constants), through
``lawrob check E6``: verdict contents, figure, and the verdict's numbers recomputed independently from the sweep's
results.csv."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import numpy as np
import pytest
from check_support import check_verdict, committed_files
from scipy import stats

from lawrob import bounds
from lawrob.cli import main as cli_main
from lawrob.sweep import read_csv


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
    check_verdict(verdict, out, "E6")
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
    margins = sorted(r["lip_upper"] / r["bound_nfp_rigorous"] for r in checked)
    assert m["min_lip_upper_over_bound"] == pytest.approx(margins[0])
    assert m["lip_upper_over_bound"] == pytest.approx(
        {"min": margins[0], "median": float(np.median(margins)), "max": margins[-1]})
    assert f"{margins[0]:.3g} (min)" in m["summary"]
    # one certificate type for the grid: the slope and the effect size use only its runs
    methods = [r["lip_upper_method"] for r in rows]
    assert m["certificate"] == max(set(methods), key=methods.count)
    fitted = [r for r in fitted if r["lip_upper_method"] == m["certificate"]]
    assert m["fitted_with_grid_certificate"] == len(fitted)
    res = m["resolution"]
    assert res["predicted_effect"] == pytest.approx(
        math.sqrt(max(r["p_eff"] for r in fitted) / min(r["p_eff"] for r in fitted)))
    assert res["bracket_median_ratio"] == pytest.approx(float(np.median([r["lip_upper"] / r["lip_lower"] for r in fitted])))
    assert res["effect_exceeds_resolution"] == (res["predicted_effect"] > res["bracket_median_ratio"])
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
