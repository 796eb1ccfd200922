"""E7 at smoke scale: the most robust interpolators' exponents, refitted independently from the written table.

Marked slow: the smoke run takes several minutes on 2 cores (12 runs, each a plain fit and 3 constrained trials,
IMP pipelines, LipSDP), which would push the suite past 30 minutes; the frontier itself is tested in
tests/test_robust.py. Run with ``uv run pytest -m slow tests/test_check_robust_frontier.py``.
"""

import json
import math
import socket
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from lawrob.checks import load
from lawrob.sweep import read_csv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def e7(tmp_path_factory):
    out = tmp_path_factory.mktemp("e7")
    return out, load("E7").run("smoke", out)


def test_e7_verdict_has_its_claims_and_the_numbers_behind_them(e7):
    out, verdict = e7
    assert json.loads((out / "verdict.json").read_text()) == json.loads(json.dumps(verdict))
    assert (out / "e7.png").exists()
    m = verdict["measured"]
    assert m["runs"] == 12 and m["fitted_below_noise"] >= 6
    # one certificate type for the grid (a run whose certificate fails falls back and is left out of the fits)
    assert m["certificate"] == max(m["certificates"], key=m["certificates"].get)
    assert m["exponents"]["runs"] == m["certificates"][m["certificate"]]
    assert verdict["passed"] == all(verdict["parts"].values()) and verdict["parts"]
    assert m["upper_over_scaling_range"][0] > 0
    assert m["rigorous_bound"]["runs"] == m["exponents"]["runs"]  # smoke n <= 256: no run meets the condition
    assert m["rigorous_bound"]["valid"] == 0 and "mixture condition" in m["rigorous_bound"]["reason"]


def test_e7_exponents_equal_an_independent_least_squares_fit(e7):
    out, verdict = e7
    rows = [r for r in read_csv(out / "sweep_smoke" / "results.csv")
            if r["fits_below_noise"] and r["lip_upper_method"] == verdict["measured"]["certificate"]]
    assert all(r["train_mse"] <= r["sigma2"] - r["eps"] for r in rows)  # only runs that fit are fitted
    # normal equations by hand, t interval from scipy: log U = a + alpha log n + beta log k
    x = np.array([[1.0, math.log(r["n"]), math.log(r["active"])] for r in rows])
    y = np.array([math.log(r["lip_upper"]) for r in rows])
    coef = np.linalg.solve(x.T @ x, x.T @ y)
    dof = len(rows) - 3
    sigma2 = float(np.sum((y - x @ coef) ** 2) / dof)
    half = stats.t.ppf(0.975, dof) * np.sqrt(sigma2 * np.diag(np.linalg.inv(x.T @ x)))
    fit = verdict["measured"]["exponents"]
    for i, name in ((1, "n"), (2, "k")):
        assert fit[name]["estimate"] == pytest.approx(coef[i], rel=1e-9, abs=1e-12)
        assert fit[name]["high"] - fit[name]["low"] == pytest.approx(2 * half[i], rel=1e-9)
        assert fit[name]["contains_law"] == (fit[name]["low"] <= fit[name]["law"] <= fit[name]["high"])


def test_e7_split_over_two_processes_gives_the_same_table_and_verdict(e7, tmp_path):
    """``lawrob check E7 --num-processes 2``: process 1 runs its share of the groups, process 0 its share and the
    analysis; the table and the verdict equal the single-process run's."""
    out, verdict = e7
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen(
        [sys.executable, "-c", "import sys; from lawrob.cli import main; sys.exit(main(sys.argv[1:]))", "check", "E7",
         "--out", str(tmp_path), "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=1800) for p in procs]
    assert procs[1].returncode == 0 and "share is done" in outs[1][0], outs[1][1][-3000:]
    assert "E7     smoke" in outs[0][0], outs[0][1][-3000:]
    parts = sorted(p.name for p in (tmp_path / "e7" / "sweep_smoke" / "parts").glob("results-p*.csv"))
    assert parts == ["results-p0.csv", "results-p1.csv"]
    split = {r["config_hash"]: r for r in read_csv(tmp_path / "e7" / "sweep_smoke" / "results.csv")}
    single = {r["config_hash"]: r for r in read_csv(out / "sweep_smoke" / "results.csv")}
    assert split.keys() == single.keys()
    for h, row in single.items():
        for column in ("train_mse", "lip_lower", "lip_upper", "fits_below_noise"):
            assert split[h][column] == pytest.approx(row[column], rel=1e-6), (h, column)
    again = json.loads((tmp_path / "e7" / "verdict.json").read_text())
    assert again["passed"] == verdict["passed"] and again["parts"] == verdict["parts"]
    for name in ("n", "k"):
        assert again["measured"]["exponents"][name]["estimate"] == pytest.approx(
            verdict["measured"]["exponents"][name]["estimate"], rel=1e-6)
