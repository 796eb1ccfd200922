"""E7 at smoke scale: the most robust interpolators' exponents, refitted independently from the written table.

Marked slow: the smoke run takes several minutes on 2 cores (12 runs, each a plain fit and 3 constrained trials,
IMP pipelines, LipSDP), which would push the suite past 30 minutes; the frontier itself is tested in
tests/test_robust.py. Run with ``uv run pytest -m slow tests/test_check_robust_frontier.py``.
"""

import json
import math

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
