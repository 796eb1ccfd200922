"""The results layer on its own (no training): typed cells, damaged files, stale temporaries, the folder lock,
Parquet schemas, renamed and colliding keys, dense runs listed once, and dry-run plans without listing runs."""

import hashlib
import itertools
import json
import math
import subprocess
import sys

import pytest

from lawrob.sweep import DamagedFile, FolderLocked, Grid, ResultStore, column_types, load, plan, read_csv
from lawrob.sweep.config import SCHEMA
from lawrob.sweep.cost import COMPILE_SECONDS_PER_GROUP, group_seconds
from lawrob.sweep.store import write_parquet

# Hashes that a type-guessing reader turns into inf, an int without its leading zero, and an int.
DIGIT_HASHES = ["60e5958100166644", "0123456789012345", "1234567890123456", "00000000000000e1"]


def _row(h, **extra):
    return {"config_hash": h, "method": "imp", "width": 4, "density": 0.5, "train_mse": 0.25, "lip_exact": None,
            "fits_below_noise": True, "fit_reason": "", "imp_round_noise_peaks": [0.5, 0.25], **extra}


def _store_with(tmp_path, hashes):
    store = ResultStore(tmp_path)
    store.append([_row(h) for h in hashes], {h: {"step": [0, 1]} for h in hashes})
    return store


def test_digit_hashes_stay_strings_and_are_not_recomputed(tmp_path):
    store = _store_with(tmp_path, DIGIT_HASHES)
    assert [r["config_hash"] for r in store.rows()] == DIGIT_HASHES
    assert store.done() == set(DIGIT_HASHES)
    store.append([_row(h) for h in DIGIT_HASHES], {h: {"step": [0]} for h in DIGIT_HASHES})  # a resume's rewrite
    table = read_csv(store.write_table())
    assert [r["config_hash"] for r in table] == DIGIT_HASHES
    frame = load(tmp_path)
    assert list(frame["config_hash"]) == DIGIT_HASHES and str(frame["config_hash"].dtype) == "string"


def test_cells_read_back_with_the_types_they_were_written_with(tmp_path):
    row = _row(DIGIT_HASHES[0], lip_upper=math.inf, steps_run=7, bound_nfp_rigorous=None, seed=0, learning_rate=1e-3)
    ResultStore(tmp_path).append([row], {row["config_hash"]: {}})
    back, = read_csv(ResultStore(tmp_path).write_table())
    for key, value in row.items():
        assert back[key] == value and type(back[key]) is type(value), key
    frame = load(tmp_path)
    assert str(frame["width"].dtype) == "Int64" and str(frame["train_mse"].dtype) == "Float64"
    assert str(frame["fits_below_noise"].dtype) == "boolean" and frame["lip_exact"].isna().all()


def test_every_grid_key_and_measured_column_has_one_declared_type():
    types = column_types()
    assert set(SCHEMA) <= set(types) and set(types.values()) <= {"str", "int", "float", "bool", "floats"}
    assert types["config_hash"] == "str" and types["lip_upper"] == "float" and types["upper_method"] == "str"


def test_a_damaged_row_names_its_file(tmp_path):
    store = _store_with(tmp_path, DIGIT_HASHES[:2])
    text = store.own.read_text()
    store.own.write_text(text[: len(text) - 20])  # the last row cut short
    with pytest.raises(DamagedFile, match="results-p0.csv.*line 3"):
        read_csv(store.own)


def test_damaged_part_and_history_are_set_aside_and_only_their_runs_redone(tmp_path, caplog):
    store = _store_with(tmp_path, DIGIT_HASHES)
    part, history = store.own.read_text(), store.histories.read_text().splitlines()
    store.own.write_text(part[: len(part) - 25])  # row 4 truncated
    store.histories.write_text("\n".join(history[:1] + ['{"config_hash": "0123456789012345", "step": [0,'] + history[2:]) + "\n")
    with caplog.at_level("WARNING", logger="lawrob"):
        reopened = ResultStore(tmp_path, writer=True)
    reopened.close()
    assert any("results-p0.csv" in m and "moved to" in m for m in caplog.messages)
    assert any("histories-p0.jsonl" in m and "moved to" in m for m in caplog.messages)
    assert len(list((tmp_path / "parts" / "damaged").iterdir())) == 2
    assert reopened.done() == {DIGIT_HASHES[0], DIGIT_HASHES[2]}
    assert {r["config_hash"] for r in reopened.rows()} == set(DIGIT_HASHES[:3])


def test_garbage_part_is_set_aside_whole(tmp_path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "results-p0.csv").write_bytes(b"\x00\xffnot,a\ntable")
    ResultStore(tmp_path, writer=True).close()
    assert ResultStore(tmp_path).rows() == []
    assert len(list((tmp_path / "parts" / "damaged").iterdir())) == 1


def test_stale_temporaries_are_removed(tmp_path):
    store = _store_with(tmp_path, DIGIT_HASHES[:1])
    stale = [tmp_path / "parts" / ".results-p0.csv.tmp-999999", tmp_path / ".report.md.tmp-999999",
             tmp_path / "figures" / ".noise_correlation.png.tmp-999999"]
    other = tmp_path / "parts" / ".results-p1.csv.tmp-999999"  # process 1's, which may be writing it now
    for path in [*stale, other]:
        path.parent.mkdir(exist_ok=True)
        path.write_text("half")
    ResultStore(tmp_path, writer=True).close()
    assert not any(p.exists() for p in stale) and other.exists()
    assert store.done() == {DIGIT_HASHES[0]}


def test_a_second_writer_is_refused(tmp_path):
    with ResultStore(tmp_path, writer=True):
        with pytest.raises(FolderLocked, match=f"{tmp_path}.*in use by pid"):
            ResultStore(tmp_path, writer=True)
        ResultStore(tmp_path, process=1, writer=True).close()  # another process of one distributed sweep
    ResultStore(tmp_path, writer=True).close()  # released


def test_a_writer_in_another_process_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom lawrob.sweep import ResultStore\n"
                               f"s = ResultStore({str(tmp_path)!r}, writer=True)\nprint('held', flush=True)\ntime.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderLocked, match=f"pid {holder.pid}"):
            ResultStore(tmp_path, writer=True)
    finally:
        holder.kill()
        holder.wait()
    ResultStore(tmp_path, writer=True).close()  # the lock dies with its process


def test_parquet_has_a_declared_schema_and_tables_concatenate(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [_row(h) for h in DIGIT_HASHES[:2]]
    columns = list(rows[0])
    write_parquet(rows, columns, tmp_path / "a.parquet")
    write_parquet([r | {"lip_exact": 1.5} for r in rows], columns, tmp_path / "b.parquet")
    a, b = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    assert a.schema.field("lip_exact").type == pa.float64()  # all empty, still typed
    assert a.schema.field("imp_round_noise_peaks").type == pa.list_(pa.float64())
    both = pa.concat_tables([a, b])
    assert both.column("lip_exact").to_pylist() == [None, None, 1.5, 1.5]
    assert both.column("config_hash").to_pylist() == DIGIT_HASHES[:2] * 2


def test_old_grid_key_lip_upper_is_renamed_and_keeps_its_hash(caplog):
    with caplog.at_level("WARNING", logger="lawrob"):
        old = Grid(fixed={"lip_upper": "product"})
    assert "now called 'upper_method'" in caplog.text
    run, = old.runs()
    assert run.config.upper_method == "product" and "lip_upper" not in run.config.as_dict()
    later = ("lower_method", "objective", "robust_trials", "robust_spread", "schedule", "schedule_warmup",
             "schedule_end", "robust_restarts")  # added after lip_upper was renamed
    legacy = {("lip_upper" if k == "upper_method" else k): v for k, v in run.config.as_dict().items() if k not in later}
    assert run.hash == hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()[:16]
    assert run.hash == Grid(fixed={"upper_method": "product"}).runs()[0].hash


def test_integer_values_of_float_keys_are_one_run():
    assert Grid(fixed={"amplitude": 1}).runs()[0].hash == Grid(fixed={"amplitude": 1.0}).runs()[0].hash
    assert len(Grid(axes={"width": [4, 4, 6]}).runs()) == 2


def test_dense_runs_are_measured_once_as_method_dense():
    grid = Grid(axes={"method": ["imp", "random", "synflow"], "density": [1.0, 0.5]}, seeds=2)
    runs = grid.runs()
    assert len(runs) == 2 * (1 + 3)
    assert sorted(r.config.method for r in runs if r.config.density == 1.0) == ["dense", "dense"]


def test_imp_without_a_full_round_is_refused():
    with pytest.raises(ValueError, match="imp_rate <= 1 - density"):
        Grid(fixed={"method": "imp", "density": 0.5, "imp_rate": 0.99}).runs()


@pytest.mark.parametrize("spec", [
    {"axes": {"width": [4, 8], "method": ["imp", "random"], "density": [1.0, 0.5, 0.25], "amplitude": [0.5, 1.0]}, "seeds": 3},
    {"axes": {"method": ["imp", "mag_after", "dense"], "density": [1.0], "learning_rate": [1e-3, 1e-2]}, "seeds": 2},
    {"axes": {"n": [16, 32], "steps": [100, 200], "eps": [0.1, 0.2]}, "fixed": {"log_every": 50}},
])
def test_plan_counts_exactly_without_listing_runs(spec, monkeypatch):
    grid = Grid(**spec)
    expected_runs, expected_sizes = len(grid.runs()), [len(g) for g in grid.groups()]
    monkeypatch.setattr(Grid, "runs", lambda self: pytest.fail("plan listed the runs"))
    result = plan(grid)
    assert result["runs"] == expected_runs and sorted(result["group_sizes"]) == sorted(expected_sizes)
    assert result["estimated_seconds"] > result["estimated_compile_seconds"] >= result["groups"] * COMPILE_SECONDS_PER_GROUP


def test_plan_wall_time_is_the_best_split_of_unequal_groups():
    """Groups of 26 and 176 estimated seconds (widths 4 and 512, two n): the wall time the plan gives for P
    processes equals the best assignment of the groups to P processes, found by trying all P^4 of them."""
    grid = Grid(fixed={"d": 8, "depth": 2, "steps": 100}, axes={"n": [32, 64], "width": [4, 512]})
    costs = [group_seconds([r.config for r in g], 1) for g in grid.groups()]
    for processes in (1, 2, 3):
        best = min(max(sum(c for c, p in zip(costs, owners) if p == i) for i in range(processes))
                   for owners in itertools.product(range(processes), repeat=len(costs)))
        result = plan(grid, processes=processes)
        assert result["processes"] == processes and result["estimated_wall_seconds"] == pytest.approx(best, abs=0.06)
    assert plan(grid)["estimated_wall_seconds"] == plan(grid)["estimated_seconds"]
    with pytest.raises(ValueError, match="processes"):
        plan(grid, processes=0)


def test_plan_of_a_million_runs_warns(monkeypatch):
    grid = Grid(axes={"learning_rate": [1e-3 * (1 + i) for i in range(1000)], "eps": [0.01 * (1 + i) for i in range(40)]},
                fixed={"d": 10**9}, seeds=30)
    monkeypatch.setattr(Grid, "runs", lambda self: pytest.fail("plan listed the runs"))  # 1.2M runs took minutes
    result = plan(grid)
    assert result["runs"] == 1000 * 40 * 30
    assert any("runs" in w for w in result["warnings"]) and any("GiB" in w for w in result["warnings"])
