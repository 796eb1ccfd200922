"""The memorization checks E1 (Gaussian data, NFP Fig. 1a) and E2 (noisy images, NFP Fig. 1b): each smoke run
writes a complete verdict, its figure and its per-seed table, and the verdict's numbers are recomputed here from
that table with scipy and a hand-written Holm step-down; synthetic inputs where the claimed ordering is violated at
one sparsity make the criteria fail there."""

from __future__ import annotations

import json

import numpy as np
import pytest
from check_support import smoke
from scipy import stats

from lawrob.checks import _e1_sweep as sweep
from lawrob.checks import e1_memorization_gaussian as e1
from lawrob.checks import e2_memorization_images as e2
from lawrob.checks._common import read_per_seed


def holm_by_hand(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values by the step-down definition: sort, scale p_(i) by (m - i + 1), running maximum."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def greater_p(a, b, margin: float) -> float:
    """One-sided paired t-test of mean(a - b) > margin (scipy), 0/1 where the differences are constant."""
    diff = np.asarray(a) - np.asarray(b) - margin
    if np.ptp(diff) == 0:
        return 0.0 if diff.mean() > 0 else 1.0
    return float(stats.ttest_rel(np.asarray(a) - margin, b, alternative="greater").pvalue)


def t_interval(a, b) -> tuple[float, float]:
    diff = np.asarray(a) - np.asarray(b)
    return stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff)) if np.ptp(diff) else (
        diff.mean(), diff.mean())


@pytest.fixture(scope="module")
def e1_smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("e1")
    return smoke(e1, out), out


def test_e1_verdict_is_recomputed_from_its_per_seed_table(e1_smoke):
    verdict, out = e1_smoke
    measured = verdict["measured"]
    assert measured["dense_memorized"] == 1.0  # the chosen width fits all labels when dense
    memorized, sparsity = read_per_seed(out / verdict["setup"]["per_seed"])
    assert sorted(memorized) == sorted(("imp", *e1.PAI)) and np.allclose(sparsity, measured["sparsity"])
    assert all(v.shape == (verdict["setup"]["seeds"], len(sparsity)) for v in memorized.values())
    high = [j for j, x in enumerate(sparsity) if x >= 0.95]
    p = [greater_p(memorized["imp"][:, j], memorized[m][:, j], 0.1) for j in high for m in e1.PAI]
    adjusted = holm_by_hand(p)
    primary = measured["primary_imp_minus_pai_per_sparsity"]["per_sparsity"]
    assert [e["sparsity"] for e in primary] == pytest.approx(sparsity[high].tolist())
    for i, (j, entry) in enumerate(zip(high, primary)):
        mine = adjusted[4 * i: 4 * i + 4]
        assert [entry["holm_p"][m] for m in e1.PAI] == pytest.approx(mine, abs=1e-12)
        assert entry["holds"] == all(q < 0.05 for q in mine)
        best = max(e1.PAI, key=lambda m: memorized[m][:, j].mean())
        assert entry["best"] == best
        low, high_end = t_interval(memorized["imp"][:, j], memorized[best][:, j])
        assert entry["imp_minus_best"]["ci_low"] == pytest.approx(low) and entry["imp_minus_best"]["ci_high"] == pytest.approx(high_end)
    assert verdict["passed"] == all(e["holds"] for e in primary)
    # the ordering family: 5 relations x the sparsities >= 95 %, Holm over all of them
    order = measured["secondary_ordering_per_sparsity"]
    assert order["tested"] == 5 * len(high) and order["held"] == sum(e["holds"] for es in order["relations"].values() for e in es)
    by_hand = [greater_p(memorized[a][:, j], memorized[b][:, j], 0.0) for a, b, r in e1.ORDER if r == "greater" for j in high]
    mine = [e["holm_p"] for name, es in order["relations"].items() if ">" in name for e in es]
    assert all(q >= p_ - 1e-12 for q, p_ in zip(mine, by_hand))  # adjusted >= raw


def synthetic(sparsity, seeds=40, seed=0) -> dict:
    """Fractions memorized with the paper's ordering: IMP 0.9, SynFlow 0.6, SNIP ~ GraSP 0.4, random 0.05."""
    rng = np.random.default_rng(seed)
    means = {"imp": 0.9, "synflow": 0.6, "snip": 0.4, "grasp": 0.4, "random": 0.05}
    return {m: np.clip(mu + 0.05 * rng.standard_normal((seeds, len(sparsity))), 0, 1) for m, mu in means.items()}


def test_e1_criteria_fail_where_the_ordering_is_violated_at_one_sparsity():
    sparsity = np.array([0.9, 0.956, 0.965, 0.972, 0.978])
    memorized = synthetic(sparsity)
    assert e1.compare(memorized, sparsity)["holds"] and e1.ordering(memorized, sparsity)["holds"]
    # at 96.5 % SynFlow comes within 0.05 of IMP: "far more" fails there, and only there
    violated = {m: v.copy() for m, v in memorized.items()}
    violated["synflow"][:, 2] = violated["imp"][:, 2] - 0.05
    result = e1.compare(violated, sparsity)
    assert not result["holds"] and [e["holds"] for e in result["per_sparsity"]] == [True, False, True, True]
    assert result["per_sparsity"][1]["best"] == "synflow"
    assert result["per_sparsity"][1]["imp_minus_best"]["mean_difference"] == pytest.approx(0.05)
    # SNIP above SynFlow at 97.8 %: the relation fails there, and SNIP ~ GraSP fails there too
    violated = {m: v.copy() for m, v in memorized.items()}
    violated["snip"][:, 4] = 0.8
    order = e1.ordering(violated, sparsity)
    assert not order["holds"]
    assert [e["holds"] for e in order["relations"]["synflow > snip"]] == [True, True, True, False]
    assert [e["holds"] for e in order["relations"]["snip ~ grasp"]] == [True, True, True, False]
    with pytest.raises(ValueError, match="sparsity must reach 0.95"):
        e1.compare(memorized, np.array([0.5, 0.6, 0.7, 0.8, 0.9]))


def test_e1_setting_sweep_writes_its_comparison_and_resumes(tmp_path, monkeypatch):
    sparsity = np.array([0.9, 0.956, 0.965])
    calls = []

    def fake_measure(s, seed, budgets=None, label=""):
        calls.append((s["width"], tuple(budgets)))
        results = {}
        for steps in budgets:
            memorized = synthetic(sparsity, seeds=s["seeds"], seed=steps + s["width"])
            if steps == 100:  # the small budget breaks "SynFlow second"
                memorized["synflow"] = memorized["snip"] - 0.1
            results[steps] = {"sparsity": sparsity, "memorized": memorized, "dense_memorized": 1.0,
                              "collapsed": {m: np.zeros_like(v, bool) for m, v in memorized.items()}}
        return results

    monkeypatch.setattr(e1, "measure", fake_measure)
    result = sweep.setting_sweep("smoke", tmp_path, seeds=8, budgets=(100, 200), widths=(20, 30))
    assert calls == [(20, (100, 200)), (30, (100, 200))]  # masks drawn once per width
    assert {(x["steps"], x["width"]) for x in result["settings"]} == {(100, 20), (200, 20), (100, 30), (200, 30)}
    assert result["chosen"]["steps"] == 200  # the budget where the ordering holds
    held = {(x["steps"], x["width"]): x["ordering_held"] for x in result["settings"]}
    assert held[200, 20] > held[100, 20]
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved["chosen"] == result["chosen"] and "(chosen)" in (tmp_path / "sweep.md").read_text()
    assert (tmp_path / "sweep.png").stat().st_size > 0 and (tmp_path / "sweep.pdf").exists()
    assert (tmp_path / "steps100-width20" / "per_seed.csv").is_file()
    sweep.setting_sweep("smoke", tmp_path, seeds=8, budgets=(100, 200), widths=(20, 30))
    assert len(calls) == 2  # every setting finished: resumed without measuring
    sweep.setting_sweep("smoke", tmp_path, seeds=8, budgets=(100, 200, 300), widths=(20,))
    assert calls[-1] == (20, (300,))  # only the missing budget


def test_e1_choose_needs_a_dense_network_that_memorizes():
    base = {"ordering_held": 5, "primary_held": 1, "steps": 100, "width": 50}
    assert sweep.choose([base | {"dense_memorized": 0.9}]) is None
    best = base | {"ordering_held": 6, "dense_memorized": 1.0}
    assert sweep.choose([base | {"dense_memorized": 1.0}, best, base | {"ordering_held": 9, "dense_memorized": 0.5}]) is best
    with pytest.raises(ValueError, match="seeds must be an integer >= 2"):
        e1.run("smoke", "unused", seeds=1)


def test_e2_smoke_verdict_is_recomputed_from_its_per_seed_table(tmp_path):
    verdict = smoke(e2, tmp_path)
    measured = verdict["measured"]
    assert measured["data"].startswith(("FashionMNIST", "scikit-learn digits", "synthetic stand-in"))
    assert measured["dense_accuracy"] > 0.9
    if not measured["data"].startswith("FashionMNIST"):
        assert "cannot test" in measured["what_the_data_can_test"]
    accuracy, sparsity = read_per_seed(tmp_path / verdict["setup"]["per_seed"])
    chance = accuracy.pop("chance")[:, 0]
    assert sorted(accuracy) == sorted(e2.METHODS)
    names = [(a, b, j) for a in e2.AFTER for b in e2.PAI for j in range(len(sparsity))]
    adjusted = holm_by_hand([greater_p(accuracy[a][:, j], accuracy[b][:, j], 0.05) for a, b, j in names])
    tests = measured["after_vs_initialization"]
    for (a, b, j), q in zip(names, adjusted):
        assert tests[f"{a} > {b} at {sparsity[j]:.4f}"]["holm_p"] == pytest.approx(q, abs=1e-12)
    top = measured["imp_above_chance"]
    assert top["p_value"] == pytest.approx(greater_p(accuracy["imp"][:, -1], chance, 0.05), abs=1e-12)
    parts = verdict["parts"]
    assert list(parts.values()) == [all(q < 0.05 for q in adjusted), top["p_value"] < 0.05]
    # structure: the layer densities average out to the grid density (biases are not pruned)
    for method, entries in measured["structure_by_method"].items():
        for x, entry in zip(sparsity, entries):
            sizes = [a * b for a, b in zip(measured["layer_sizes"], measured["layer_sizes"][1:])]
            kept = sum(d * n for d, n in zip(entry["layer_density"], sizes)) / sum(sizes)
            assert kept == pytest.approx(1 - x, abs=2e-3), method
            assert all(0 <= u <= verdict["setup"]["width"] for u in entry["live_units"])
    signal = measured["class_signal"]
    assert 0 <= signal["noisy"] < signal["clean"] <= 1


def test_e2_criteria_fail_where_synflow_reaches_imp_at_one_sparsity():
    rng = np.random.default_rng(1)
    seeds, sparsity = 10, np.array([0.972, 0.982, 0.988])
    means = {"imp": 0.6, "magafter_keep": 0.55, "magafter": 0.5, "synflow": 0.3, "snip": 0.25, "grasp": 0.25,
             "random": 0.12}
    accuracy = {m: mu + 0.02 * rng.standard_normal((seeds, 3)) for m, mu in means.items()}
    chance = np.full(seeds, 0.1)
    assert e2.contrasts(accuracy, sparsity, chance)["holds"]
    accuracy["synflow"][:, 1] = accuracy["imp"][:, 1] - 0.02
    result = e2.contrasts(accuracy, sparsity, chance)
    assert not result["holds"]
    failing = sorted(k for k, t in result["after_vs_initialization"].items() if not t["holds"])
    assert failing == ["imp > synflow at 0.9820", "magafter_keep > synflow at 0.9820"]
    assert result["best_pai"]["imp at 0.9820"]["best"] == "synflow"
    accuracy["imp"][:, -1] = 0.12  # IMP near chance at the highest sparsity
    assert not e2.contrasts(accuracy, sparsity, chance)["imp_above_chance"]["holds"]


def test_e2_structure_counts_live_units_by_hand():
    w0 = np.zeros((1, 3, 4))
    w0[0, 0, 1] = w0[0, 2, 3] = 1  # units 1 and 3 of layer 1 have an input
    w1 = np.zeros((1, 4, 2))
    w1[0, 1, 0] = w1[0, 2, 1] = 1  # units 1 and 2 have an output; unit 0 of layer 2 an input, unit 1 too
    w2 = np.zeros((1, 2, 5))
    w2[0, 1, 4] = 1  # only unit 1 of layer 2 has an output
    result = e2.structure([{"w": w0}, {"w": w1}, {"w": w2}])
    assert result["live_units"] == [1.0, 1.0]  # layer 1: unit 1 only; layer 2: unit 1 only
    assert result["layer_density"] == pytest.approx([2 / 12, 2 / 8, 1 / 10])
