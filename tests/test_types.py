"""mypy passes on lawrob/ (the configuration is ``[tool.mypy]`` in pyproject.toml: lenient, no --strict)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_passes_on_lawrob():
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"mypy failed:\n{result.stdout}\n{result.stderr}"
