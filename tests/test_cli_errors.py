"""The command line on bad input: one line naming the argument, exit status 2, before any computation; a bound
outside its theorem's conditions exits 1; default output folders are safe names."""

import json
from pathlib import Path

import pytest

from lawrob.cli import main, safe_folder_name

GRID = '[fixed]\nd = 2\nn = 12\ndepth = 1\nwidth = 3\nsteps = 20\nlog_every = 10\nlip_search_starts = 2\n'


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_a_folder_given_as_the_grid(tmp_path, capsys):
    assert main(["sweep", str(tmp_path)]) == 2
    err = _error_line(capsys)
    assert "config" in err and "is a folder" in err


@pytest.mark.parametrize("setup,message", [
    (lambda tmp: (tmp / "out").write_text("a file"), "--out .* is a file"),
    (lambda tmp: (tmp / "blocker").write_text("a file"), "--out .* is not writable"),
])
def test_a_bad_output_folder_is_refused_before_computing(tmp_path, capsys, setup, message):
    grid = tmp_path / "g.toml"
    grid.write_text(GRID)
    setup(tmp_path)
    out = tmp_path / "out" if "is a file" in message else tmp_path / "blocker" / "sub"
    assert main(["sweep", str(grid), "--out", str(out)]) == 2
    assert __import__("re").search(message, _error_line(capsys))


def test_a_grid_that_is_not_toml(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text("[fixed\nd = ")
    assert main(["sweep", str(grid), "--dry-run"]) == 2
    assert "not valid TOML" in _error_line(capsys)


def test_a_locked_folder_is_one_line(tmp_path, capsys):
    from lawrob.sweep import ResultStore

    grid = tmp_path / "g.toml"
    grid.write_text(GRID)
    with ResultStore(tmp_path / "out", writer=True):
        assert main(["sweep", str(grid), "--out", str(tmp_path / "out")]) == 2
    assert "in use by pid" in _error_line(capsys)


@pytest.mark.parametrize("name,expected", [("...toml", "grid"), ("..toml", "grid"), ("my grid.toml", "my_grid"),
                                           ("e6.full.toml", "e6.full"), ("/abs/path/x.toml", "x")])
def test_default_output_folder_names_are_safe(name, expected):
    assert safe_folder_name(Path(name)) == expected


BOUND = ["bound", "--theorem", "nfp", "--n", "1e6", "--d", "100", "--p-eff", "1e4", "--delta", "0.01"]


@pytest.mark.parametrize("args,option", [
    (["--eps", "1.5"], "--eps"), (["--eps", "0"], "--eps"), (["--eps", "nan"], "--eps"),
    (["--eps", "0.5", "--k", "2.5"], "--k"), (["--eps", "0.5", "--c", "-1"], "--c"),
])
def test_bound_arguments_out_of_range_exit_2(args, option, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(BOUND + args)
    assert exit_.value.code == 2 and option in capsys.readouterr().err


def test_bound_n_must_be_an_integer(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bound", "--n", "2.5", "--d", "3", "--p", "4", "--W", "1", "--J", "1", "--eps", "0.5", "--delta", "0.1"])
    assert exit_.value.code == 2 and "--n" in capsys.readouterr().err


def test_bound_exit_status_says_whether_the_conditions_hold(capsys):
    assert main(BOUND + ["--eps", "0.5"]) == 0
    assert "valid: yes" in capsys.readouterr().out
    assert main(["bound", "--theorem", "nfp", "--n", "100", "--d", "100", "--p-eff", "1e4", "--delta", "0.01",
                 "--eps", "0.1", "--k", "3"]) == 1
    assert "valid: no" in capsys.readouterr().out


def test_dry_run_prints_the_plan_and_warns_on_huge_grids(tmp_path, capsys):
    grid = tmp_path / "huge.toml"
    grid.write_text(GRID.replace("d = 2", "d = 1000000000") + "[axes]\nseed = " + json.dumps(list(range(200))) + "\n")
    assert main(["sweep", str(grid), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["runs"] == 200 and "GiB" in captured.err
    widths = tmp_path / "widths.toml"
    widths.write_text(GRID.replace("width = 3\n", "") + "[axes]\nwidth = [3, 6, 12, 24]\n")
    assert main(["sweep", str(widths), "--dry-run", "--num-processes", "4"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["processes"] == 4 and plan["estimated_wall_seconds"] < plan["estimated_seconds"] / 3


def test_group_runs_must_be_positive(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(GRID)
    assert main(["-q", "sweep", str(grid), "--out", str(tmp_path / "out"), "--group-runs", "0"]) == 2
    assert "group_runs" in _error_line(capsys)


def test_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from lawrob.sweep import store

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    grid = tmp_path / "g.toml"
    grid.write_text(GRID)
    monkeypatch.setattr(store, "atomic_write_text", full)
    assert main(["-q", "sweep", str(grid), "--out", str(tmp_path / "out")]) == 2
    assert "No space left on device" in _error_line(capsys)


@pytest.mark.parametrize("argv,message", [
    (["check", "E1", "--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0"],
     r"only the checks whose work is a sweep, \['E6', 'E7'\], can be split; got \['E1'\]"),
    (["check", "--distributed"], r"got \['E1', 'E2', 'E3', 'E4', 'E5'\]"),
    (["check", "E7", "--num-processes", "2"], "must be given together"),
    (["check", "E7", "--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"],
     r"--process-id must be in \[0, 2\)"),
])
def test_splitting_a_check_over_processes_is_refused_where_it_cannot_be(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert __import__("re").search(message, _error_line(capsys))
    assert not list(tmp_path.iterdir())  # refused before any folder is made
