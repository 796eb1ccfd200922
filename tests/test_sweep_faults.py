"""A sweep that meets faults: diverging and failing runs become rows, damaged parts are redone, other grids are
refused (or kept apart with add), and the folder says what it holds (manifest, typed table, saved parameters)."""

import math
import shutil

import pytest

from lawrob import lipschitz, nets
from lawrob.sweep import Grid, column_types, load, load_params, read_csv, run, write_report
from lawrob.sweep import RunConfig, SCHEMA, execute, manifest
from lawrob.sweep.inputs import model_of

TINY = {"d": 2, "n": 12, "depth": 1, "width": 3, "steps": 40, "log_every": 20, "learning_rate": 1e-2,
        "lip_search_starts": 4, "lip_exact_max_hidden": 8}


def tiny_grid(**changes) -> Grid:
    spec = {"fixed": TINY, "axes": {"method": ["random", "imp"], "density": [1.0, 0.5]}, "seeds": 2,
            "save_params": True} | changes
    return Grid(**spec)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return out, run(tiny_grid(), out, progress=False)


def _copy(swept, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(swept[0], out)
    return out


def test_every_written_column_is_declared_and_typed(swept):
    out, rows = swept
    assert len(rows) == 2 + 4  # the dense network once per seed
    types = column_types()
    frame = load(out)
    expected = {"str": "string", "int": "Int64", "float": "Float64", "bool": "boolean", "floats": "object"}
    for column in frame.columns:
        assert column in types, column
        assert str(frame[column].dtype) == expected[types[column]], column
    for row in read_csv(out / "results.csv"):
        assert all(not (isinstance(v, float) and math.isnan(v)) for v in row.values())


def test_manifest_and_grid_record(swept):
    out, _ = swept
    session, = manifest.read(out)["sessions"]
    for key in ("lawrob", "jax", "jaxlib", "numpy", "backend", "devices", "started", "finished", "processor"):
        assert session[key], key
    assert session["grid"] == tiny_grid().id and session["runs_computed"] == 6
    assert manifest.grids(out) == {tiny_grid().id: tiny_grid().spec()}


def test_saved_parameters_can_be_measured_again(swept):
    out, rows = swept
    row = next(r for r in rows if r["method"] == "imp")
    params, mask = load_params(out, row["config_hash"])
    assert nets.count_active(mask, include_biases=True) == row["active"]
    model = model_of(RunConfig.from_mapping({k: row[k] for k in SCHEMA}))
    again = lipschitz.upper(params, mask, model=model, method=row["lip_upper_method"])
    assert again.value == pytest.approx(row["lip_upper"], rel=1e-5)
    with pytest.raises(ValueError, match="config_hash"):
        load_params(out, "0" * 16)


def test_a_diverging_run_is_a_row_and_the_others_are_measured(tmp_path, caplog):
    fixed = {k: v for k, v in TINY.items() if k != "learning_rate"}
    grid = Grid(fixed=fixed | {"optimizer": "sgd", "method": "random", "density": 0.5},
                axes={"learning_rate": [1e-2, 1e8]}, seeds=1)
    with caplog.at_level("INFO", logger="lawrob"):
        rows = {r["learning_rate"]: r for r in run(grid, tmp_path, progress=False)}
    bad, good = rows[1e8], rows[1e-2]
    assert bad["diverged"] is True and bad["fits_below_noise"] is False and bad["failed_stage"] == "train"
    assert "diverged" in bad["fit_reason"] and bad.get("lip_upper") is None
    assert good["diverged"] is False and isinstance(good["lip_upper"], float) and good["lip_lower"] <= good["lip_upper"]
    assert any("phase train" in m for m in caplog.messages) and any("ETA" in m for m in caplog.messages)
    caplog.clear()
    with caplog.at_level("INFO", logger="lawrob"):
        again = run(grid, tmp_path, progress=False)
    assert "0 to do" in caplog.messages[0] and len(again) == 2


def test_a_failing_stage_is_a_row_with_its_reason(tmp_path, monkeypatch):
    real = execute.information_bits  # the scheduler calls it by this name

    def flaky(run_, *args):
        if run_.config.seed == 1:
            raise RuntimeError("estimator exploded")
        return real(run_, *args)

    monkeypatch.setattr(execute, "information_bits", flaky)
    grid = Grid(fixed=TINY | {"method": "random", "density": 0.5}, seeds=2)
    rows = {r["seed"]: r for r in run(grid, tmp_path, progress=False)}
    assert rows[1]["failed_stage"] == "information" and "estimator exploded" in rows[1]["fit_reason"]
    assert rows[0]["failed_stage"] == "" and isinstance(rows[0]["p_eff"], float)
    assert "1 could not be measured" in write_report(tmp_path).read_text()


def test_a_truncated_part_is_set_aside_and_only_its_runs_redone(swept, tmp_path, caplog):
    out = _copy(swept, tmp_path)
    part = out / "parts" / "results-p0.csv"
    text = part.read_text()
    part.write_text(text[: len(text) - 40])
    with caplog.at_level("INFO", logger="lawrob"):
        rows = run(tiny_grid(), out, progress=False)
    assert any(str(part) in m and "damaged" in m for m in caplog.messages)
    assert any("1 to do" in m for m in caplog.messages)
    assert list((out / "parts" / "damaged").iterdir())
    reference = {r["config_hash"]: r["lip_upper"] for r in swept[1]}
    assert {r["config_hash"]: r["lip_upper"] for r in rows} == pytest.approx(reference, rel=1e-6)


def test_another_grid_is_refused_unless_added_and_the_report_keeps_them_apart(swept, tmp_path):
    out = _copy(swept, tmp_path)
    other = tiny_grid(seeds=None, axes={"method": ["random"], "density": [0.5], "seed": [7]})
    with pytest.raises(ValueError, match="holds results of grid.*add=True"):
        run(other, out, progress=False)
    assert len(run(tiny_grid(), out, progress=False)) == 6  # the folder's own grid still resumes
    rows = run(other, out, progress=False, add=True)
    assert len(rows) == 7
    report = write_report(out).read_text()
    assert report.count("# Grid ") == 2
    verdicts = __import__("json").loads((out / "verdicts.json").read_text())
    assert {c["grid"] for c in verdicts["checks"]} == {tiny_grid().id, other.id}
    assert (out / "figures" / other.id / "lipschitz_vs_peff.png").exists()


def test_layer_collapse_is_flagged_and_an_empty_mask_is_a_row(tmp_path):
    """Two weights kept of 18 cannot cover three weight matrices: the network collapses to a constant (Lipschitz
    constant exactly 0); a density that keeps no weight at all fails at the masks stage with its reason."""
    fixed = TINY | {"depth": 2, "method": "random"}
    rows = {r["density"]: r for r in run(Grid(fixed=fixed, axes={"density": [0.12, 0.01]}, seeds=1), tmp_path, progress=False)}
    collapsed, empty = rows[0.12], rows[0.01]
    assert collapsed["collapsed"] is True and collapsed["failed_stage"] == ""
    assert collapsed["lip_lower"] == collapsed["lip_upper"] == collapsed["lip_exact"] == 0.0
    assert empty["failed_stage"] == "masks" and "keeps no weight" in empty["fit_reason"] and empty["collapsed"] is None
