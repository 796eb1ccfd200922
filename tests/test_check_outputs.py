"""Where the paper checks write, and what a person sees while they run.

`lawrob check` and the scripts write under --out (default ./lawrob-out/checks/<eN> in the current directory), never
into the checkout's committed results unless asked with --update-committed (full scale only, not with --out);
E6 refuses, without touching it, a sweep folder holding another grid's results; progress and verdict lines go to
the ``lawrob`` logger. One smoke check runs here: E5, the fastest (about 30 s on 2 cores, E4 about 40 s, E3 about
60 s, E6 about 75 s, E1 about 85 s, E2 about 110 s, measured one at a time on a loaded machine).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lawrob import cli
from lawrob.checks import _common
from lawrob.checks._common import holm

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ROOT / "paper_checks"  # the checkout's committed results and write-ups (the code is lawrob/checks/)
FAST = "E5"  # the fastest smoke check


def load(module: str):
    return importlib.import_module(f"lawrob.checks.{module}")


def git_status_paper_checks() -> str:
    """`git status --porcelain` of paper_checks/ (whatever else is uncommitted, before equals after)."""
    return subprocess.run(["git", "status", "--porcelain", "--", "paper_checks"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def tree(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``folder`` (ignored ones too): relative path -> (size, mtime in ns, first bytes)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()[:4096])
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@contextlib.contextmanager
def recording_lawrob_logger():
    """Collect the ``lawrob`` logger's records (a handler on that logger itself, as `lawrob` sets
    propagate=False on it) at INFO, and leave the logger as it was."""
    logger = logging.getLogger("lawrob")
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def fast_check(tmp_path_factory):
    """`lawrob check E5 --scale smoke --out TMP` once, from an empty working directory: (exit status, stdout,
    the lawrob log records, git status of paper_checks/ before and after, the committed results' files before
    and after, TMP, the working directory)."""
    base, cwd = tmp_path_factory.mktemp("out"), tmp_path_factory.mktemp("cwd")
    status_before, committed_before = git_status_paper_checks(), tree(CHECKS / "results")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, recording_lawrob_logger() as records:
        mp.chdir(cwd)
        with contextlib.redirect_stdout(printed):
            status = cli.main(["check", FAST, "--scale", "smoke", "--out", str(base)])
    return dict(status=status, printed=printed.getvalue(), records=list(records), status_before=status_before,
                status_after=git_status_paper_checks(), committed_before=committed_before,
                committed_after=tree(CHECKS / "results"), base=base, cwd=cwd)


def test_check_with_out_writes_only_there_and_leaves_the_checkout_alone(fast_check):
    base, out = fast_check["base"], fast_check["base"] / FAST.lower()
    verdict = json.loads((out / "verdict.json").read_text())
    assert fast_check["status"] == (0 if verdict["passed"] else 1)
    assert verdict["experiment"] == FAST and verdict["scale"] == "smoke"
    assert sorted(p.name for p in base.iterdir()) == [FAST.lower()]  # one subfolder per experiment
    assert sorted(p.name for p in out.iterdir()) == ["e5.pdf", "e5.png", "verdict.json"]  # no temporary files left behind
    assert list(fast_check["cwd"].iterdir()) == []  # nothing in the working directory (no ./lawrob-out)
    assert fast_check["status_after"] == fast_check["status_before"]
    assert fast_check["committed_after"] == fast_check["committed_before"]
    assert f"{FAST}: running at smoke scale -> {out}" in fast_check["printed"]
    assert f"{FAST}     smoke  {'PASS' if verdict['passed'] else 'FAIL'}" in fast_check["printed"]  # the table


def test_progress_and_verdict_lines_go_to_the_lawrob_logger(fast_check):
    lines = [r.getMessage() for r in fast_check["records"] if r.name == "lawrob" and r.levelno == logging.INFO]
    progress = [line for line in lines if line.startswith(f"{FAST} smoke: ")]
    assert progress[0].startswith(f"{FAST} smoke: 0/2 toys, phase mse") and "ETA -" in progress[0]
    assert any(line.startswith(f"{FAST} smoke: 1/2 toys") for line in progress)
    assert progress[-1].startswith(f"{FAST} smoke: 2/2 toys") and "elapsed" in progress[-1]
    verdict = json.loads((fast_check["base"] / FAST.lower() / "verdict.json").read_text())
    final = [line for line in lines if line.startswith(f"{FAST} {'PASS' if verdict['passed'] else 'FAIL'}: ")]
    assert len(final) == 1 and final[0].endswith(f"-> {fast_check['base'] / FAST.lower()}")


@pytest.fixture
def fake_checks(tmp_path, monkeypatch):
    """`lawrob check` on stand-ins: an importable check module whose E3 writes a verdict at once, and an empty
    committed-results folder tmp_path/paper_checks/results (to follow `lawrob check`'s folders)."""
    name = "lawrob_fake_check_e3"
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / f"{name}.py").write_text(
        "import json\n"
        "def run(scale, out):\n"
        "    verdict = {'experiment': 'E3', 'scale': scale, 'passed': True, 'seconds': 0.0, 'claim': 'fake'}\n"
        "    (out / 'verdict.json').write_text(json.dumps(verdict))\n"
        "    return verdict\n")
    monkeypatch.syspath_prepend(str(tmp_path / "modules"))
    monkeypatch.setattr(cli, "paper_check_modules", lambda: {"E3": name})
    committed = tmp_path / "paper_checks" / "results"
    committed.mkdir(parents=True)
    monkeypatch.setattr(_common, "COMMITTED", committed)
    monkeypatch.chdir(tmp_path)
    yield committed
    sys.modules.pop(name, None)


def test_check_default_output_is_lawrob_out_checks_in_the_working_directory(fake_checks, tmp_path):
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert cli.main(["check", "E3"]) == 0
    assert (tmp_path / "lawrob-out" / "checks" / "e3" / "verdict.json").is_file()
    assert "E3: running at smoke scale -> lawrob-out/checks/e3" in printed.getvalue()
    assert list(fake_checks.iterdir()) == []
    # --update-committed at full scale is the one way into the checkout's results folder
    assert cli.main(["check", "E3", "--scale", "full", "--update-committed"]) == 0
    assert json.loads((fake_checks / "e3" / "verdict.json").read_text())["scale"] == "full"


def test_update_committed_without_a_source_checkout_fails_in_one_line(fake_checks, capsys):
    # an installed lawrob has no paper_checks/results beside it: the option is refused, nothing runs or is written
    fake_checks.rmdir()
    assert cli.main(["check", "E3", "--scale", "full", "--update-committed"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lawrob check: error: --update-committed ")
    assert str(fake_checks) in err[0] and "does not exist" in err[0] and "--out" in err[0]
    with pytest.raises(SystemExit) as stop:
        _common.parse_args("E3", ["--scale", "full", "--update-committed"])
    assert stop.value.code == 2 and "does not exist" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not fake_checks.exists() and not Path("lawrob-out").exists()


def test_every_check_is_a_module_of_the_package_runnable_with_python_m():
    assert sorted(cli.paper_check_modules()) == [f"E{i}" for i in range(1, 8)]
    for experiment, name in cli.paper_check_modules().items():
        module = importlib.import_module(name)
        assert name.startswith("lawrob.checks.e") and callable(module.run) and callable(module.main), experiment
    out = subprocess.run([sys.executable, "-m", "lawrob.checks.e4_learning_rate_and_gradient_noise", "--help"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "--scale" in out and "--update-committed" in out


def test_script_default_output_is_lawrob_out_checks_in_the_working_directory(tmp_path, monkeypatch):
    common = _common
    monkeypatch.chdir(tmp_path)
    args = common.parse_args("E3", ["--scale", "smoke"])
    assert args.out == Path("lawrob-out") / "checks" / "e3"
    assert (tmp_path / "lawrob-out" / "checks" / "e3").is_dir()
    assert common.parse_args("E3", ["--out", "elsewhere"]).out == Path("elsewhere")
    assert common.output_folder("E3", scale="full", update_committed=True) == CHECKS / "results" / "e3"


@pytest.mark.parametrize("extra", [["--scale", "smoke"], [], ["--scale", "full", "--out", "somewhere"]])
def test_update_committed_is_refused_at_smoke_scale_and_with_out(extra, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = git_status_paper_checks()
    assert cli.main(["check", "E3", "--update-committed", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lawrob check: error: --update-committed ")
    assert ("--scale full" in err[0]) if "--out" not in extra else ("--out" in err[0])
    # the scripts' own options refuse the same way (argparse: exit status 2, the usage and one error line)
    with pytest.raises(SystemExit) as stop:
        _common.parse_args("E3", ["--update-committed", *extra])
    assert stop.value.code == 2
    assert "--update-committed" in capsys.readouterr().err.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == [] and git_status_paper_checks() == before


def other_grid_folder(folder: Path) -> None:
    """A sweep folder holding a results table (merged and per-process part) of runs of another grid."""
    (folder / "parts").mkdir(parents=True)
    table = "config_hash,method,density\n0123456789abcdef,random,0.5\n"
    (folder / "results.csv").write_text(table)
    (folder / "parts" / "results-p0.csv").write_text(table)
    (folder / "report.md").write_text("another grid's report\n")


def test_e6_refuses_a_folder_with_another_grids_results_and_leaves_it_alone(tmp_path):
    e6 = load("e6_bound_vs_measurement")
    out = tmp_path / "e6"
    folder = out / "sweep_smoke"
    other_grid_folder(folder)
    before = tree(out)
    with pytest.raises(e6.OtherGridResults) as error:
        e6.run("smoke", out)
    message = str(error.value)
    assert str(folder) in message and "another grid" in message and "--out" in message and "delete" in message
    assert isinstance(error.value, ValueError)  # `lawrob check` reports it in one line, exit status 2
    assert tree(out) == before


def test_e6_cli_and_script_report_the_refusal_in_one_line(tmp_path, capsys):
    other_grid_folder(tmp_path / "base" / "e6" / "sweep_smoke")
    before = tree(tmp_path)
    assert cli.main(["check", "E6", "--out", str(tmp_path / "base")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds results of 1 run(s) of another grid" in err[0]
    assert load("e6_bound_vs_measurement").main(["--out", str(tmp_path / "base" / "e6")]) == 2
    assert "another --out, or delete" in capsys.readouterr().err
    assert tree(tmp_path) == before


def test_e6_folder_check_accepts_its_own_runs_and_an_empty_folder(tmp_path):
    e6 = load("e6_bound_vs_measurement")
    wanted = [r.hash for g in e6.grids(e6.SCALES["smoke"], 0) for r in g.runs()]
    assert e6.other_grid_results(tmp_path / "missing", wanted) == []
    folder = tmp_path / "sweep_smoke"
    (folder / "parts").mkdir(parents=True)
    (folder / "parts" / "results-p0.csv").write_text("config_hash,method\n" + f"{wanted[0]},random\n")
    assert e6.other_grid_results(folder, wanted) == []  # a part of its own grid: resumed, not refused
    e6.refuse_other_grid(folder, wanted)
    assert e6.other_grid_results(folder, wanted[1:]) == [wanted[0]]  # e.g. another --seeds


def _holm_rejections(p_values, alpha):
    """Holm's step-down procedure as stated in the paper: walk the sorted p-values, reject while
    p_(i) <= alpha / (m - i + 1), stop at the first that is not."""
    m = len(p_values)
    rejected = set()
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        if p_values[index] > alpha / (m - rank):
            break
        rejected.add(index)
    return rejected


def test_holm_adjusted_p_values_reject_what_the_step_down_procedure_rejects():
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = list(rng.uniform(0, 0.05, size=int(rng.integers(1, 9))) ** rng.uniform(0.5, 2))
        adjusted = holm(p)
        assert all(a >= q for a, q in zip(adjusted, p)) and all(a <= 1 for a in adjusted)
        for alpha in (0.01, 0.02, 0.05):
            assert {i for i, a in enumerate(adjusted) if a <= alpha} == _holm_rejections(p, alpha)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    with pytest.raises(ValueError, match="p_values"):
        holm([0.1, 1.5])
