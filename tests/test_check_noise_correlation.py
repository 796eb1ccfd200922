"""Smoke scale of the noise-correlation checks E3 (across IMP rounds, NFP Figs. 2a and 3) and E4 (learning rate
and gradient noise, NFP Figs. 2b, 2c): verdict contents, figures, the measured direction of each claim, and E4's
statistics recomputed from the verdict's own curves."""

from __future__ import annotations

import numpy as np
import pytest
from check_support import smoke
from scipy import stats

from lawrob.checks import e3_noise_correlation_imp, e4_learning_rate_and_gradient_noise


def test_e3_correlation_rises_within_rounds_and_collapses_at_rewind(tmp_path):
    verdict = smoke(e3_noise_correlation_imp, tmp_path)
    assert verdict["experiment"] == "E3" and verdict["passed"], verdict["parts"]
    assert "late_decay" not in verdict["parts"]  # only the full scale reaches round 9
    assert "not tested at this scale" in verdict["measured"]["late_decay"]
    end = np.array(verdict["measured"]["mean_end_of_round"])
    assert np.all(end > 0.5 * verdict["measured"]["sigma2"])


def test_e4_larger_learning_rate_correlates_sooner_and_gradient_noise_suppresses(tmp_path):
    verdict = smoke(e4_learning_rate_and_gradient_noise, tmp_path)
    assert verdict["experiment"] == "E4" and verdict["passed"], verdict["parts"]
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
