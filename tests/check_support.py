"""What the smoke-scale tests of the paper checks (tests/test_check_*.py) share: the committed results they must
leave alone and the contents every verdict has."""

from __future__ import annotations

import json
from pathlib import Path

COMMITTED = Path(__file__).resolve().parents[1] / "paper_checks" / "results"  # a smoke check never writes there
KEYS = {"experiment", "claim", "scale", "measured", "criterion", "passed", "seconds", "parts", "setup"}


def committed_files() -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(COMMITTED)): (p.stat().st_size, p.stat().st_mtime_ns) for p in COMMITTED.rglob("*")
            if p.is_file()}


def check_verdict(verdict: dict, out: Path, experiment: str) -> None:
    """The contents every smoke verdict has: all keys, a claim and criterion, pass = all parts, its figure."""
    assert KEYS <= verdict.keys()
    assert verdict["experiment"] == experiment and verdict["scale"] == "smoke"
    assert verdict["claim"] and verdict["criterion"]
    assert verdict["passed"] == all(verdict["parts"].values())
    assert (out / verdict["setup"]["figure"]).stat().st_size > 0


def smoke(module, out: Path) -> dict:
    """``module.main(["--scale", "smoke", "--out", out])`` (exit status 0, the committed results untouched) and
    the verdict it wrote, checked by ``check_verdict``."""
    before = committed_files()
    assert module.main(["--scale", "smoke", "--out", str(out)]) == 0
    assert committed_files() == before
    verdict = json.loads((out / "verdict.json").read_text())
    check_verdict(verdict, out, verdict["experiment"])
    return verdict
