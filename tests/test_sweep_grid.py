"""lawrob.sweep grids and result stores: validation, expansion, hashing, atomic resumable tables."""

import pytest

from lawrob.sweep import Grid, config_hash
from lawrob.sweep.config import SCHEMA


def test_expansion_groups_and_hashes(tmp_path):
    grid = Grid(axes={"width": [8, 16], "method": ["random", "synflow"], "density": [0.5, 1.0]}, fixed={"d": 4}, seeds=2)
    runs = grid.runs()
    assert len(runs) == 2 * 2 * (2 + 1)  # at density 1 both methods are the same dense network, listed once
    assert len({r.hash for r in runs}) == len(runs)
    assert all(r.config.d == 4 and set(r.config.as_dict()) == set(SCHEMA) for r in runs)
    assert sorted({(r.config.method, r.config.density) for r in runs}) == [("dense", 1.0), ("random", 0.5), ("synflow", 0.5)]
    groups = grid.groups()
    assert [len(g) for g in groups] == [6, 6]
    assert {g[0].config.width for g in groups} == {8, 16}
    assert all(len({r.shape_key for r in g}) == 1 for g in groups)
    # the hash is a function of the full configuration only
    assert config_hash(dict(reversed(list(runs[0].config.as_dict().items())))) == runs[0].hash
    assert Grid(axes={"method": ["random", "synflow"], "density": [0.5, 1.0], "width": [8, 16]},
                fixed={"d": 4}, seeds=2).runs()[0].hash in {r.hash for r in runs}


def test_from_toml(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('seeds = 2\n[fixed]\nd = 5\nmeasure = "sphere"\n[axes]\nwidth = [4, 6]\n')
    grid = Grid.from_toml(path)
    assert len(grid.runs()) == 4 and grid.runs()[0].config.measure == "sphere"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"axes": {"widht": [4]}}, "unknown grid key 'widht'; allowed keys"),
        ({"axes": {"method": ["prune_everything"]}}, "'method' must be one of"),
        ({"fixed": {"density": 0.0}}, "'density' must lie in \\(0, 1\\]"),
        ({"fixed": {"n": 2.5}}, "'n' must be an integer >= 1"),
        ({"axes": {"width": []}}, "has no values"),
        ({"axes": {"d": [3]}, "fixed": {"d": 3}}, "both an axis and a fixed"),
        ({"fixed": {"steps": 100, "log_every": 30}}, "must divide"),
        ({"fixed": {"noise": "flip"}}, "needs a target"),
        ({"fixed": {"method": "dense", "density": 0.5}}, "needs density=1.0"),
        ({"seeds": 0}, "seeds must be an integer >= 1"),
    ],
)
def test_bad_grids_name_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Grid(**kwargs).runs()


def test_toml_unknown_table(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text("[axis]\nwidth = [4]\n")
    with pytest.raises(ValueError, match="unknown top-level table"):
        Grid.from_toml(path)
