"""Smoke scale of the noise-correlation checks E3 (across IMP rounds, NFP Figs. 2a and 3) and E4 (learning rate
and gradient noise, NFP Figs. 2b, 2c): verdict contents, figures, the measured direction of each claim, and E4's
statistics recomputed from the verdict's own curves."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from check_support import smoke
from scipy import stats

from lawrob import nets
from lawrob.checks import e3_noise_correlation_imp, e4_learning_rate_and_gradient_noise


def test_e3_correlation_rises_within_rounds_and_collapses_at_rewind(tmp_path):
    verdict = smoke(e3_noise_correlation_imp, tmp_path)
    assert verdict["experiment"] == "E3" and verdict["passed"], verdict["parts"]
    assert "late_decay" not in verdict["parts"]  # only the full scale reaches round 9
    m, setup = verdict["measured"], verdict["setup"]
    assert "not tested at this scale" in m["late_decay"]
    corr = np.array(verdict["raw"]["corr"])  # [seeds, rounds + 1, logs]
    assert corr.shape[:2] == (setup["seeds"], setup["rounds"] + 1) and setup["steps_per_epoch"] == 4
    start, end = corr[:, :, 0], corr[:, :, -1]
    assert np.all(end.mean(axis=0) > 0.5 * m["sigma2"])
    # the one-epoch trainings start from the same rewound, masked network as the logged rounds
    np.testing.assert_allclose(verdict["raw"]["first_epoch_start"], start, atol=1e-5)
    after = np.array(verdict["raw"]["first_epoch_end"])
    np.testing.assert_allclose(m["mean_after_first_epoch"], after.mean(axis=0))
    # effect sizes and their t-intervals, recomputed from the raw curves
    rise = end - start
    low, high = stats.t.interval(0.95, len(rise) - 1, loc=rise.mean(axis=0), scale=stats.sem(rise, axis=0))
    np.testing.assert_allclose(m["rise_end_minus_start"]["ci95_low"], low, rtol=1e-6)
    np.testing.assert_allclose(m["rise_end_minus_start"]["ci95_high"], high, rtol=1e-6)
    assert np.all(low >= 0.5 * m["sigma2"])  # every smoke round lies before the decay window
    lost = (end[:, :-1] - start[:, 1:]) / end[:, :-1]
    low, _ = stats.t.interval(0.95, len(lost) - 1, loc=lost.mean(axis=0), scale=stats.sem(lost, axis=0))
    np.testing.assert_allclose(m["fraction_lost_at_rewind"]["ci95_low"], low, rtol=1e-6)
    assert np.all(low >= 0.9)
    lost_epoch = (end[:, :-1] - after[:, 1:]) / end[:, :-1]
    np.testing.assert_allclose(m["fraction_lost_after_first_epoch"]["mean"], lost_epoch.mean(axis=0), rtol=1e-6)
    assert (tmp_path / "e3.pdf").stat().st_size > 0


def test_e4_larger_learning_rate_correlates_sooner_and_gradient_noise_suppresses_gradually(tmp_path):
    e4 = e4_learning_rate_and_gradient_noise
    verdict = smoke(e4, tmp_path)
    assert verdict["experiment"] == "E4" and verdict["passed"], verdict["parts"]
    m, setup = verdict["measured"], verdict["setup"]
    assert setup["steps_per_epoch"] == 4 and setup["epochs"] == 100  # n = 200, batch 50, 400 steps
    corr = np.array(verdict["raw"]["corr"])  # [seeds, 5 rates + levels, logs]
    levels = np.array(m["relative_noise_levels"])
    assert corr.shape[:2] == (setup["seeds"], 5 + len(levels)) and np.all(np.diff(np.log10(levels)) > 0)
    # the relative units: g_rms of seed 0 from a gradient computed here, on the seed's own data and initialization
    model = nets.MLP((setup["d"], *setup["student"], 1))
    init, ds, _ = e4.make_seed(jax.random.fold_in(jax.random.key(0), 0), e4.SCALES["smoke"], model)
    grads = jax.grad(lambda p: jnp.mean((model.apply(p, ds.x)[:, 0] - ds.y) ** 2))(init)
    flat = np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads)])
    rms = m["gradient_rms_at_init"]["per_seed"]
    assert rms[0] == pytest.approx(np.sqrt(np.mean(flat.astype(float) ** 2)), rel=1e-4)
    assert levels[0] <= 0.01 and levels[-1] >= 10  # from well below g_rms to well above it
    # learning rate: means and the paired difference's t-interval, recomputed from the raw curves
    auc = corr[:, :5].mean(axis=2)
    assert np.allclose(m["learning_rate"]["mean"], auc.mean(axis=0))
    diff = auc[:, -1] - auc[:, 0]
    low, high = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
    assert m["learning_rate"]["max_minus_min"]["ci95"] == pytest.approx([low, high], rel=1e-6)
    assert low > 0 and np.all(np.diff(auc.mean(axis=0)) > 0)
    # gradient noise: R(r), the crossing of 1/2 (log-linear) and the band count, recomputed in plain numpy
    noise_free, final = corr[:, 4, -1], corr[:, 5:, -1]
    ratio = final.mean(axis=0) / noise_free.mean()
    assert np.allclose(m["gradient_noise"]["ratio"], ratio)
    i = next(j for j, v in enumerate(ratio) if v <= 0.5)
    x = np.interp(0.5, [ratio[i], ratio[i - 1]], np.log10([levels[i], levels[i - 1]]))
    assert m["gradient_noise"]["half_level"] == pytest.approx(10 ** x, rel=1e-9)
    assert m["gradient_noise"]["band_points"] == np.sum((ratio > 0.1) & (ratio < 0.9)) >= 2
    low, high = m["gradient_noise"]["half_level_ci"]
    assert levels[0] < low <= m["gradient_noise"]["half_level"] <= high < levels[-1]
    assert ratio[0] > 0.9 and ratio[-1] < 0.1  # the grid resolves the whole fall
    assert noise_free.mean() > 0.5  # without gradient noise the student reaches the noise level (sigma2 = 1)
    assert (tmp_path / "e4.pdf").stat().st_size > 0


def test_e4_noise_judge_fails_a_cliff_and_a_fall_outside_the_grid():
    e4 = e4_learning_rate_and_gradient_noise
    levels = np.logspace(-2, 1, 10)
    rng = np.random.default_rng(0)
    noise_free = 1 + 0.01 * rng.standard_normal(12)
    graded = 1 / (1 + levels[None] / 0.3) + 0.01 * rng.standard_normal((12, 10))
    assert e4.judge_noise(levels, noise_free, graded)["passed"]
    cliff = np.where(levels < 0.05, 1.0, 0.002)[None] + 0.01 * rng.standard_normal((12, 10))
    verdict = e4.judge_noise(levels, noise_free, cliff)
    assert verdict["interior"] and verdict["band_points"] == 0 and not verdict["passed"]
    flat = 0.95 + 0.01 * rng.standard_normal((12, 10))  # never falls to half: r_half at the grid's edge
    assert not e4.judge_noise(levels, noise_free, flat)["interior"]
    with pytest.raises(ValueError, match="final must be"):
        e4.judge_noise(levels, noise_free, graded[:, :5])


def test_e4_learning_rate_judge_fails_when_the_rate_does_not_help():
    e4 = e4_learning_rate_and_gradient_noise
    rng = np.random.default_rng(1)
    rising = np.linspace(0.1, 0.8, 5)[None] + 0.01 * rng.standard_normal((10, 5))
    assert e4.judge_learning_rate(rising)["passed"]
    assert not e4.judge_learning_rate(rising[:, ::-1])["passed"]
    level = 0.5 + 0.05 * rng.standard_normal((10, 5))
    assert not e4.judge_learning_rate(level)["passed"]
