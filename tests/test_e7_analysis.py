"""E7's analysis on synthetic tables whose answers are known in closed form (the smoke run itself is slow-marked
in tests/test_check_robust_frontier.py)."""

import math

import numpy as np
import pytest

from lawrob.checks.e7_robust_frontier import bracket, exponents, mask_ratio, restart_spread, rigorous_bounds


def rows_from_law(alpha=0.5, beta=-0.5, gamma=0.0, ds=(8,), slack=1.5, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for d in ds:
        for n in (250, 1000, 4000):
            for k in (300, 1200, 4800, 9600):
                u = 2.0 * n ** alpha * k ** beta * d ** gamma * math.exp(noise * rng.standard_normal())
                rows.append({"n": n, "d": d, "active": k, "lip_upper": u, "lip_lower": u / slack})
    return rows


def test_noiseless_power_law_gives_its_exponents_on_both_ends_of_the_bracket():
    rows = rows_from_law(alpha=0.5, beta=-0.3)
    up, low = exponents(rows), exponents(rows, "lip_lower")
    for fit in (up, low):
        assert fit["fitted"] and fit["runs"] == 12 and "d" not in fit
        assert fit["n"]["estimate"] == pytest.approx(0.5, abs=1e-10)
        assert fit["k"]["estimate"] == pytest.approx(-0.3, abs=1e-10)
    assert up["intercept"] - low["intercept"] == pytest.approx(math.log(1.5), abs=1e-10)
    noisy = exponents(rows_from_law(alpha=0.5, beta=-0.3, noise=0.02, seed=1))
    assert noisy["n"]["contains_law"] and not noisy["k"]["contains_law"]  # -0.3 is not the law's -1/2


def test_d_enters_the_fit_only_when_it_varies_and_its_interval_covers_the_truth():
    rows = rows_from_law(gamma=0.5, ds=(8, 16), noise=0.05, seed=3)
    fit = exponents(rows)
    assert set(fit) >= {"n", "k", "d"}
    for name, truth in (("n", 0.5), ("k", -0.5), ("d", 0.5)):
        assert fit[name]["low"] < truth < fit[name]["high"]
        assert fit[name]["high"] - fit[name]["low"] < 0.6
    assert exponents(rows_from_law()[:3]) == {"runs": 3, "fitted": False}  # fewer rows than coefficients + 1


def test_bracket_reports_median_and_largest_ratio_per_d():
    rows = [{"d": 8, "lip_upper": 3.0, "lip_lower": 2.0}, {"d": 8, "lip_upper": 4.0, "lip_lower": 1.0},
            {"d": 16, "lip_upper": 1.1, "lip_lower": 1.0}, {"d": 16, "lip_upper": 5.0, "lip_lower": None}]
    b = bracket(rows)
    assert b["runs"] == 3 and b["median"] == pytest.approx(1.5) and b["max"] == pytest.approx(4.0)
    assert b["by_d"]["8"] == {"runs": 2, "median": pytest.approx(2.75), "max": pytest.approx(4.0)}
    assert b["by_d"]["16"] == {"runs": 1, "median": pytest.approx(1.1), "max": pytest.approx(1.1)}
    assert bracket([{"d": 8, "lip_upper": 1.0, "lip_lower": None}]) == {"runs": 0}


def test_mask_ratio_pairs_each_data_dependent_run_with_its_data_free_runs():
    base = {"n": 500, "d": 8, "width": 32, "density": 0.25, "active": 1000, "info_bits": 3000.0}
    rows = []
    for seed in range(4):
        free = 10.0 + seed
        rows += [base | {"seed": seed, "method": "random", "lip_upper": free},
                 base | {"seed": seed, "method": "synflow", "lip_upper": free},
                 base | {"seed": seed, "method": "imp", "lip_upper": free * (0.7 if seed % 2 else 0.9)}]
    out = mask_ratio(rows)
    assert out["pairs"] == 8 and out["fitted"]
    assert out["ratio"] == pytest.approx(math.sqrt(0.7 * 0.9))
    assert out["low"] < out["ratio"] < out["high"]
    assert out["nfp_floor"] == pytest.approx(1 / math.sqrt(1 + 3000 * math.log(2) / 1000))
    assert out["below_one"] is (out["high"] < 1)  # a Python bool: the verdict is JSON


def test_rigorous_bounds_count_the_valid_margins_and_name_the_reason_closest_to_validity():
    rows = [{"n": 250, "lip_upper": 9.0, "upper_over_bound": None, "bound_reason_rigorous": "fails at 250"},
            {"n": 4000, "lip_upper": 9.0, "upper_over_bound": None, "bound_reason_rigorous": "fails at 4000"},
            {"n": 9000, "lip_upper": 9.0, "upper_over_bound": 3.0}, {"n": 9000, "lip_upper": 9.0, "upper_over_bound": 5.0},
            {"n": 9000, "lip_upper": 9.0, "upper_over_bound": 40.0}]
    s = rigorous_bounds(rows)
    assert s == {"runs": 5, "valid": 3, "upper_over_bound_median": 5.0, "invalid_at_largest_n": 4000,
                 "reason": "fails at 4000"}
    assert rigorous_bounds(rows[2:]) == {"runs": 3, "valid": 3, "upper_over_bound_median": 5.0}
    assert rigorous_bounds(rows[:1])["upper_over_bound_median"] is None


def test_restart_spread_is_summarized_per_n_without_the_runs_that_had_one_restart():
    rows = [{"n": 250, "robust_restart_spread": 1.1}, {"n": 250, "robust_restart_spread": 1.5},
            {"n": 250, "robust_restart_spread": 1.2}, {"n": 4000, "robust_restart_spread": None},
            {"n": 4000, "robust_restart_spread": 2.0}, {"n": 1000, "robust_restart_spread": None}]
    assert restart_spread(rows) == {"250": {"runs": 3, "median": pytest.approx(1.2), "max": 1.5},
                                    "4000": {"runs": 1, "median": 2.0, "max": 2.0}}
