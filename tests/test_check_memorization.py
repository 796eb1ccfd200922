"""Smoke scale of the memorization checks E1 (Gaussian data, NFP Fig. 1a) and E2 (noisy images, NFP Fig. 1b):
each writes a complete verdict and its figure, and the measured direction of its claim is asserted as measured at
this scale."""

from __future__ import annotations

from check_support import smoke

from lawrob.checks import e1_memorization_gaussian, e2_memorization_images


def test_e1_imp_memorizes_more_than_pruning_at_init(tmp_path):
    verdict = smoke(e1_memorization_gaussian, tmp_path)
    assert verdict["experiment"] == "E1" and verdict["passed"], verdict["parts"]
    measured = verdict["measured"]
    assert measured["dense_memorized"] == 1.0  # the chosen width fits all labels when dense
    at_high = measured["mean_memorized_at_high_sparsity"]
    assert at_high["imp"] > max(at_high[m] for m in ("synflow", "snip", "grasp", "random"))
    assert measured["imp_vs_method_at_high_sparsity"]["random"]["p_value"] < 0.01


def test_e2_imp_stays_above_pruning_at_init(tmp_path):
    verdict = smoke(e2_memorization_images, tmp_path)
    assert verdict["experiment"] == "E2"
    measured = verdict["measured"]
    assert measured["data"].startswith(("FashionMNIST", "scikit-learn digits", "synthetic stand-in"))
    assert all(verdict["parts"][f"imp > {m}"] for m in ("synflow", "snip", "grasp", "random")), verdict["parts"]
    # MagAfter's half of the claim is reported, not asserted: at smoke scale on the digits it measured level with
    # SNIP and GraSP and below SynFlow (see paper_checks/README_e123.md), so the verdict may fail on it.
    assert {f"magafter > {m}" for m in ("synflow", "snip", "grasp", "random")} <= verdict["parts"].keys()
