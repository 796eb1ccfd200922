"""Every public function and class of lawrob (tests/public_api.py) has a NumPy-format docstring, checked with
numpydoc's validator: a summary, each parameter documented (and none that does not exist, in signature order), a
Returns section where it returns something, only known sections in the standard order (none in Google's style), and
the source of a docstring that cites one (docs/theory.md, a paper's theorem or lemma) named in a References section."""

import inspect
import re

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

from public_api import public_objects  # noqa: E402

# numpydoc's codes: GL06 unknown section, GL07 sections out of order, GL08 no docstring, SS01 no summary,
# PR01 a parameter undocumented, PR02 an unknown parameter documented, PR03 parameters out of order,
# RT01 no Returns section (only where the function returns a value)
CODES = ("GL06", "GL07", "GL08", "SS01", "PR01", "PR02", "PR03", "RT01")
GOOGLE = re.compile(r"^(?:Args|Arguments|Returns|Raises|Yields|Example|Examples|References):\s*$", re.M)
CITATION = re.compile(r"docs/theory\.md|\b(?:BS|NFP) (?:Theorem|Lemma|Thm|Prop)")
PUBLIC = public_objects()


def problems(key: str) -> list[str]:
    """numpydoc's ``CODES`` errors for the object at ``key``, and a citation outside a References section."""
    found = [f"{code} {message}" for code, message in numpydoc_validate.validate(key)["errors"] if code in CODES]
    doc = inspect.getdoc(PUBLIC.get(key)) or ""
    body, _, references = doc.partition("\nReferences\n----------\n")
    if CITATION.search(body) and not CITATION.search(references):
        found.append("cites a source without a References section naming it")
    if GOOGLE.search(doc):
        found.append("has a Google-style section (the standard here is NumPy's)")
    return found


def test_the_public_api_is_covered():
    assert len(PUBLIC) > 150
    assert {"lawrob.bounds._nfp.no_free_prune", "lawrob.nets.MLP", "lawrob.train.fit", "lawrob.sweep.store.load",
            "lawrob.robust.frontier", "lawrob.checks.load", "lawrob.sweep.frontier.frontier_stage"} <= PUBLIC.keys()


@pytest.mark.parametrize("key", sorted(PUBLIC))
def test_numpy_docstring(key):
    assert problems(key) == [], key


def test_problems_finds_a_bad_docstring(monkeypatch):
    def bad(x: int, y: int) -> int:
        """Add, by NFP Theorem 4.

        Parameters
        ----------
        x : int
            One.
        """
        return x + y

    monkeypatch.setitem(PUBLIC, f"{__name__}.bad", bad)
    globals()["bad"] = bad
    found = problems(f"{__name__}.bad")
    assert "has a Google-style section (the standard here is NumPy's)" not in found
    assert any(p.startswith("PR01") and "y" in p for p in found) and any(p.startswith("RT01") for p in found)
    assert "cites a source without a References section naming it" in found
