"""The documentation site (docs/) builds with Sphinx with every warning an error, and its pages hold what they
promise: the theory with its constants, the API from the docstrings, the CLI from the parser, the notebooks."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import lawrob
from lawrob import bounds

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")
pytest.importorskip("sphinxarg")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SPEC_NAMES = re.compile(r"THEORY\.md|EXPERIMENTS\.md|DESIGN\.md|shared/spec")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    before = sorted(DOCS.rglob("*"))
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(out / "doctrees"),
         str(DOCS), str(out / "html")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout}\n{result.stderr}"
    assert sorted(DOCS.rglob("*")) == before, "the build wrote into docs/"
    return out / "html"


def text(site: Path, page: str) -> str:
    return re.sub(r"<[^>]+>", "", (site / page).read_text())


def test_every_page_is_built(site):
    for page in ("index", "getting-started", "theory", "checks", "cli", "api", "notebooks", "changelog"):
        assert (site / f"{page}.html").is_file(), page
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert (site / "notebooks" / f"{notebook.stem}.html").is_file(), notebook.name


def test_api_page_documents_the_public_functions(site):
    api = text(site, "api.html")
    for name in ("no_free_prune", "bubeck_sellke", "p_eff", "make_dataset", "verify_all", "mask_information",
                 "fit_batched", "parametrization_constants"):
        assert name in api, name


def test_cli_page_comes_from_the_parser(site):
    cli = text(site, "cli.html")
    for option in ("--print-grid", "--update-committed", "--dry-run", "--p-eff", "--version"):
        assert option in cli, option


def test_theory_page_states_the_codes_constants(site):
    theory = (DOCS / "theory.md").read_text()
    rigorous, paper = bounds.BS["rigorous"], bounds.BS["paper"]
    for number in (paper.prefactor, rigorous.prefactor, rigorous.thm2_exponent, bounds.BS_MIXTURE_MIN,
                   bounds.NFP["paper"].prefactor, bounds.A1_SQUARED, bounds.C0_FACTOR, bounds.NFP_COVER,
                   bounds.NFP["rigorous"].net_divisor):
        assert str(number) in theory, number
    assert "13\\varepsilon/15" in theory and "1 + 16 W J/\\varepsilon" in theory


def test_no_reference_points_outside_the_repository():
    offenders = []
    for folder in ("lawrob", "tests", "benchmarks", "paper_checks", "notebooks", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".md", ".ipynb", ".toml"} and path != Path(__file__):
                offenders += [f"{path.relative_to(ROOT)}" for _ in SPEC_NAMES.finditer(path.read_text())][:1]
    readme = (ROOT / "README.md").read_text()
    assert not SPEC_NAMES.search(readme) and "docs/" in readme
    assert offenders == []


def test_site_carries_the_package_version(site):
    assert f"lawrob {lawrob.__version__}" in (site / "index.html").read_text()
