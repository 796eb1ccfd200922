"""The package stands alone: ``uv build`` makes a wheel and an sdist with what they should hold, and the wheel,
installed into a clean virtual environment with the locked dependencies, runs ``lawrob --version``,
``lawrob demo --print-grid`` and a smoke-scale paper check from outside the source tree."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import lawrob

ROOT = Path(__file__).resolve().parent.parent
UV = shutil.which("uv")
pytestmark = pytest.mark.skipif(UV is None, reason="needs uv (the project's installer) on PATH")


def run(*args, cwd, timeout=900, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env=env)
    return result


def pyproject_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("dist")
    result = run(UV, "build", "--out-dir", out, ROOT, cwd=out)
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("lawrob-*.whl")
    (sdist,) = out.glob("lawrob-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist, "dir": out}


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory) -> Path:
    """A fresh virtual environment holding the wheel and the locked runtime dependencies, nothing else."""
    base = tmp_path_factory.mktemp("venv")
    requirements = base / "requirements.txt"
    result = run(UV, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "-o", requirements,
                 cwd=ROOT)
    assert result.returncode == 0, result.stderr
    env_dir = base / "env"
    result = run(UV, "venv", "--python", sys.executable, env_dir, cwd=base)
    assert result.returncode == 0, result.stderr
    python = env_dir / "bin" / "python"
    result = run(UV, "pip", "install", "--python", python, "-r", requirements, built["wheel"], cwd=base)
    assert result.returncode == 0, result.stderr
    return env_dir


def test_version_has_one_source():
    assert lawrob.__version__ == pyproject_version()


def test_wheel_and_sdist_contents(built):
    names = zipfile.ZipFile(built["wheel"]).namelist()
    assert "lawrob/py.typed" in names and "lawrob/cli.py" in names
    assert {f"lawrob/checks/{m}.py" for m in ("__init__", "_common", "e1_memorization_gaussian",
                                              "e7_robust_frontier")} <= set(names)
    assert not any(n.startswith(("tests/", "paper_checks/", "docs/")) for n in names)
    with tarfile.open(built["sdist"]) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for path in ("lawrob/py.typed", "docs/theory.md", "docs/checks.md", "docs/conf.py", "CHANGELOG.md",
                 "paper_checks/README_e123.md", "tests/test_packaging.py", "pyproject.toml"):
        assert path in members, path


def test_installed_wheel_runs_outside_the_source_tree(venv, tmp_path):
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MPLBACKEND"] = "Agg"
    where = run(bin_dir / "python", "-c", "import lawrob; print(lawrob.__file__)", cwd=tmp_path, env=env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).resolve().is_relative_to(venv.resolve())

    version = run(bin_dir / "lawrob", "--version", cwd=tmp_path, env=env)
    assert version.returncode == 0 and version.stdout.strip() == f"lawrob {pyproject_version()}"

    grid = run(bin_dir / "lawrob", "demo", "--print-grid", cwd=tmp_path, env=env)
    assert grid.returncode == 0 and "[axes]" in grid.stdout and "width = [64, 96, 128]" in grid.stdout

    refused = run(bin_dir / "lawrob", "check", "E5", "--scale", "full", "--update-committed", cwd=tmp_path, env=env)
    assert refused.returncode == 2 and "not running from a source checkout" in refused.stderr

    check = run(bin_dir / "lawrob", "check", "E5", cwd=tmp_path, env=env)
    assert check.returncode in (0, 1), check.stderr  # 1: the check ran and its verdict is FAIL; 2 would be an error
    verdict = json.loads((tmp_path / "lawrob-out" / "checks" / "e5" / "verdict.json").read_text())
    assert verdict["experiment"] == "E5" and verdict["scale"] == "smoke"
    assert ("PASS" if verdict["passed"] else "FAIL") in check.stdout.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lawrob-out"]  # nothing written outside the output folder


def test_version_option_prints_the_package_version(capsys):
    from lawrob import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"lawrob {pyproject_version()}"
