"""mypy passes on lawrob/ (the configuration is ``[tool.mypy]`` in pyproject.toml: lenient, no --strict, except the
CLI, whose every function must be annotated), and every public signature is fully annotated: each function of the
public API (tests/public_api.py) and each public method of its classes, every parameter and the return value."""

import inspect
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from public_api import public_methods, public_objects

ROOT = Path(__file__).resolve().parents[1]
SIGNATURES = {key: obj for key, obj in public_objects().items() if inspect.isfunction(obj)} | public_methods()


def unannotated(function) -> list[str]:
    """The parameters (and ``"return"``) of ``function`` without an annotation (``self`` and ``cls`` need none)."""
    signature = inspect.signature(function)
    names = [p.name for i, p in enumerate(signature.parameters.values())
             if p.annotation is inspect.Parameter.empty and not (i == 0 and p.name in ("self", "cls"))]
    return names + ["return"] * (signature.return_annotation is inspect.Signature.empty)


def test_mypy_passes_on_lawrob():
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"mypy failed:\n{result.stdout}\n{result.stderr}"


def test_mypy_requires_the_cli_to_be_annotated():
    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    cli = [o for o in overrides if "lawrob.cli" in o["module"]]
    assert cli and cli[0]["disallow_untyped_defs"] and cli[0]["disallow_incomplete_defs"]


def test_the_public_api_is_what_it_should_be():
    assert len(SIGNATURES) > 150 and "lawrob.robust.frontier" in SIGNATURES
    assert {"lawrob.bounds._nfp.no_free_prune", "lawrob.nets.MLP.apply", "lawrob._data_measures.Gaussian.c",
            "lawrob.sweep.grid.Grid.from_toml", "lawrob._train_run.TrainConfig.make_optimizer"} <= SIGNATURES.keys()


@pytest.mark.parametrize("key", sorted(SIGNATURES))
def test_public_signature_is_annotated(key):
    assert unannotated(SIGNATURES[key]) == [], f"{key} lacks annotations"


def test_unannotated_finds_what_is_missing():
    def partly(self, a: int, b, *args, c=1, **kw) -> None: ...

    def bare(x): ...

    assert unannotated(partly) == ["b", "args", "c", "kw"] and unannotated(bare) == ["x", "return"]
