"""The committed write-ups hold together: every relative link or image in a committed Markdown file of
paper_checks/, docs/ and README.md names a committed file, and E6's committed report, verdict and figure are what
the committed code makes of the committed results table (``e6.redraw``, which trains nothing)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lawrob.checks import e6_bound_vs_measurement as e6

ROOT = Path(__file__).resolve().parents[1]
# [text](target) and ![alt](target), with an optional <...> around the target and an optional "title"
LINK = re.compile(r"!?\[[^\]]*\]\(\s*(?:<([^>]+)>|([^)\s]+))(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|#)", re.I)  # http:, mailto:, {doc}-style roles aside: a scheme or anchor


def tracked() -> set[str]:
    """The repository's files known to git (committed or staged), as paths relative to the root."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (e.g. an unpacked sdist): which files are committed is unknown")
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return set(out.splitlines())


def write_ups(files: set[str]) -> list[str]:
    return sorted(f for f in files if f.endswith(".md") and (f == "README.md" or f.startswith(("paper_checks/", "docs/"))))


def relative_links(text: str) -> list[str]:
    """The relative targets of the Markdown links and images in ``text``, without their #fragment."""
    targets = [bracketed or bare for bracketed, bare in LINK.findall(text)]
    return [target.split("#")[0] for target in targets if not EXTERNAL.match(target)]


def test_link_pattern_finds_links_and_images_and_skips_external_ones():
    text = ('![fig](figures/a.png) see [the table](results.csv "title") and [site](https://x.org/y.md), '
            '[anchor](#e1), [part](README_e46.md#e6) <img> ![b](<with space/b.png>)')
    assert relative_links(text) == ["figures/a.png", "results.csv", "README_e46.md", "with space/b.png"]


def test_every_relative_link_in_a_committed_write_up_names_a_committed_file():
    files = tracked()
    pages = write_ups(files)
    assert {"README.md", "paper_checks/README_e123.md", "paper_checks/results/e6/sweep_full/report.md"} <= set(pages)
    broken, seen = [], 0
    for page in pages:
        folder = (ROOT / page).parent
        for target in relative_links((ROOT / page).read_text()):
            seen += 1
            path = (folder / target).resolve()
            name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
            if not path.is_file() or name not in files:
                broken.append(f"{page}: {target}")
    assert seen >= 6  # the four figures of README.md and the two of the E6 report at least
    assert broken == []


@pytest.fixture(scope="module")
def e6_redrawn(tmp_path_factory):
    """A copy of the committed paper_checks/results/e6 after ``e6.redraw`` (about 30 s: figures only)."""
    out = tmp_path_factory.mktemp("e6") / "e6"
    shutil.copytree(ROOT / "paper_checks" / "results" / "e6", out)
    (out / "sweep_full" / "report.md").unlink()
    return e6.redraw(out, "full"), out


def test_committed_e6_report_is_the_report_of_the_committed_table(e6_redrawn):
    _, out = e6_redrawn
    committed = (ROOT / "paper_checks" / "results" / "e6" / "sweep_full" / "report.md").read_text()
    assert (out / "sweep_full" / "report.md").read_text() == committed
    assert "times the rigorous bound" in committed and "margin U / bound: median" in committed  # margins derived
    assert "not drawn, the folder holds no training histories" in committed  # no empty figure linked


def test_committed_e6_verdict_is_the_analysis_of_the_committed_table(e6_redrawn):
    verdict, _ = e6_redrawn
    committed = json.loads((ROOT / "paper_checks" / "results" / "e6" / "verdict.json").read_text())
    assert json.loads(json.dumps(verdict["measured"], default=float)) == committed["measured"]
    assert committed["passed"] == verdict["passed"] and committed["seconds"] == verdict["seconds"]
    assert "was not rerun" in committed["redrawn"]["note"]
    rows = e6.sweep.read_csv(ROOT / "paper_checks" / "results" / "e6" / "sweep_full" / "results.csv")
    fitted = [r for r in rows if r["fits_below_noise"] and r["lip_upper_method"] == committed["measured"]["certificate"]]
    assert committed["measured"]["slope_log_lip_vs_log_p_eff"]["points"] == len(fitted)


def test_redraw_refuses_a_folder_without_a_table(tmp_path):
    with pytest.raises(ValueError, match="out .* must hold verdict.json and sweep_full/results.csv"):
        e6.redraw(tmp_path, "full")
    with pytest.raises(ValueError, match="scale must be one of"):
        e6.redraw(tmp_path, "huge")
