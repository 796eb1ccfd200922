"""One certificate type per grid: a sweep bounds every run of a grid from above with the same method (the tightest
affordable on its largest network, or the one the grid names), records it, and never fits across types."""

import jax
import pytest

from lawrob import lipschitz, nets
from lawrob.sweep import Grid, load_params, run, scaling_fit, write_report
from lawrob.sweep.report import scaling_fits

SMALL = {"d": 2, "n": 12, "depth": 1, "steps": 20, "log_every": 10, "learning_rate": 1e-2, "lip_search_starts": 4,
         "lip_exact_max_hidden": 0, "method": "random", "density": 0.5}


def _net(sizes):
    model = nets.MLP(sizes)
    return lipschitz.prepare(model.init(jax.random.key(0)), None, model)


def test_uniform_method_is_the_tightest_affordable_on_the_largest_network(monkeypatch):
    small, large = _net((8, 20, 20, 1)), _net((8, 160, 160, 1))  # N = 48 and 328
    assert lipschitz.uniform_method(small) == "lipsdp"
    assert lipschitz.uniform_method(large) == "eclipse_fast"  # LipSDP is affordable up to N = 300
    assert lipschitz.uniform_method(large, sdp_max_dim=400) == "lipsdp"
    monkeypatch.setitem(lipschitz.UPPER_METHODS, "tighter", lipschitz.UpperMethod("tighter", None, tightness=-1.0))
    assert lipschitz.uniform_method(small) == "tighter"
    monkeypatch.setitem(lipschitz.UPPER_METHODS, "tighter", lipschitz.UpperMethod(
        "tighter", None, affordable=lambda net, sdp_max_dim: False, tightness=-1.0))
    assert lipschitz.uniform_method(small) == "lipsdp"


def test_a_grid_whose_largest_network_is_too_large_for_lipsdp_uses_one_method_for_all(tmp_path):
    # widths 3 and 160 on d = 2, depth 2: the wide network has N = 322 > 300, where LipSDP is not affordable, so
    # the whole grid is ECLipsE-Fast, although "best" on the narrow one alone would take LipSDP
    grid = Grid(fixed=SMALL | {"depth": 2}, axes={"width": [3, 160]}, seeds=1, save_params=True)
    rows = run(grid, tmp_path, progress=False)
    assert [r["lip_upper_method"] for r in rows] == ["eclipse_fast", "eclipse_fast"]
    assert all("largest network (d + hidden units = 322)" in r["lip_upper_rule"] for r in rows)
    narrow = next(r for r in rows if r["width"] == 3)
    params, mask = load_params(tmp_path, narrow["config_hash"])
    model = nets.MLP((2, 3, 3, 1))
    assert narrow["lip_upper"] == pytest.approx(lipschitz.upper(params, mask, model=model, method="eclipse_fast").value,
                                                rel=1e-9)
    best = lipschitz.upper(params, mask, model=model)  # a per-run "best" would have run LipSDP here, mixing types
    assert isinstance(best.details["lipsdp"], float) and best.details["sdp_dim"] <= 8
    text = write_report(tmp_path).read_text()
    assert "Certified upper bounds: eclipse_fast for 2 run(s) (best for the grid" in text
    assert "Slopes are fitted per certificate type" not in text


def test_named_methods_of_one_group_are_each_computed_and_fitted_apart(tmp_path):
    # an axis over upper_method: both runs train in one group, each must get its own method (not the first's)
    grid = Grid(fixed=SMALL | {"width": 4}, axes={"upper_method": ["product", "lipsdp"]}, seeds=1)
    rows = {r["upper_method"]: r for r in run(grid, tmp_path, progress=False)}
    assert rows["product"]["lip_upper_method"] == "product" and rows["lipsdp"]["lip_upper_method"] == "lipsdp"
    assert rows["product"]["lip_upper_rule"] == rows["lipsdp"]["lip_upper_rule"] == "named by the grid"
    assert rows["lipsdp"]["lip_upper"] < rows["product"]["lip_upper"]  # same network, LipSDP tighter
    assert rows["lipsdp"]["train_mse"] == rows["product"]["train_mse"]
    assert "Slopes are fitted per certificate type, never across types." in write_report(tmp_path).read_text()


def test_no_fit_mixes_certificate_types():
    def row(kind, p_eff, lip):
        return {"fits_below_noise": True, "p_eff": p_eff, "lip_lower": lip, "lip_upper": lip, "lip_upper_method": kind}

    rows = [row("lipsdp", p, 10 / p**0.5) for p in (10, 20, 40)] + [row("product", p, 30 / p**0.25) for p in (10, 20, 40)]
    with pytest.raises(ValueError, match="share one upper-bound method"):
        scaling_fit(rows)
    fits = scaling_fits(rows)
    assert sorted(fits) == ["lipsdp", "product"]
    assert fits["lipsdp"]["slope"] == pytest.approx(-0.5, abs=1e-12) and fits["product"]["slope"] == pytest.approx(-0.25, abs=1e-12)
