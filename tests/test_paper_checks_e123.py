"""Smoke scale of the paper checks E1-E3 (NFP Figs. 1a, 1b, 2a and 3): each writes a complete verdict and its figure,
and the measured direction of its claim is asserted as measured at this scale."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

CHECKS = Path(__file__).resolve().parents[1] / "paper_checks"
COMMITTED = CHECKS / "results"  # the committed full-scale results: a smoke check never writes there
KEYS = {"experiment", "claim", "scale", "measured", "criterion", "passed", "seconds", "parts", "setup"}


def committed_files() -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(COMMITTED)): (p.stat().st_size, p.stat().st_mtime_ns) for p in COMMITTED.rglob("*")
            if p.is_file()}


def smoke(script: str, out: Path) -> dict:
    spec = importlib.util.spec_from_file_location(f"paper_check_{script}", CHECKS / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = committed_files()
    assert module.main(["--scale", "smoke", "--out", str(out)]) == 0
    assert committed_files() == before
    verdict = json.loads((out / "verdict.json").read_text())
    assert KEYS <= verdict.keys()
    assert verdict["scale"] == "smoke" and verdict["claim"] and verdict["criterion"]
    assert verdict["passed"] == all(verdict["parts"].values())
    assert (out / verdict["setup"]["figure"]).stat().st_size > 0
    return verdict


def test_e1_imp_memorizes_more_than_pruning_at_init(tmp_path):
    verdict = smoke("e1_memorization_gaussian", tmp_path)
    assert verdict["passed"], verdict["parts"]
    measured = verdict["measured"]
    assert measured["dense_memorized"] == 1.0  # the chosen width fits all labels when dense
    at_high = measured["mean_memorized_at_high_sparsity"]
    assert at_high["imp"] > max(at_high[m] for m in ("synflow", "snip", "grasp", "random"))
    assert measured["imp_vs_method_at_high_sparsity"]["random"]["p_value"] < 0.01


def test_e2_imp_stays_above_pruning_at_init(tmp_path):
    verdict = smoke("e2_memorization_images", tmp_path)
    measured = verdict["measured"]
    assert measured["data"].startswith(("FashionMNIST", "scikit-learn digits", "synthetic stand-in"))
    assert all(verdict["parts"][f"imp > {m}"] for m in ("synflow", "snip", "grasp", "random")), verdict["parts"]
    # MagAfter's half of the claim is reported, not asserted: at smoke scale on the digits it measured level with
    # SNIP and GraSP and below SynFlow (see paper_checks/README_e123.md), so the verdict may fail on it.
    assert {f"magafter > {m}" for m in ("synflow", "snip", "grasp", "random")} <= verdict["parts"].keys()


def test_e3_correlation_rises_within_rounds_and_collapses_at_rewind(tmp_path):
    verdict = smoke("e3_noise_correlation_imp", tmp_path)
    assert verdict["passed"], verdict["parts"]
    assert "late_decay" not in verdict["parts"]  # only the full scale reaches round 9
    assert "not tested at this scale" in verdict["measured"]["late_decay"]
    end = np.array(verdict["measured"]["mean_end_of_round"])
    assert np.all(end > 0.5 * verdict["measured"]["sigma2"])

