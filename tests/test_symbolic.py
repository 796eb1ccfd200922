"""lawrob.symbolic: every must-hold constant holds, the known slips are reproduced with their repairs, the rows
the issue asks for are present, and `lawrob constants` prints the report with the right exit status."""

import time
from fractions import Fraction

import pytest

from lawrob import bounds, cli, symbolic


@pytest.fixture(scope="module")
def report():
    start = time.perf_counter()
    rows = symbolic.verify_all()
    return rows, time.perf_counter() - start


def find(rows, *phrases):
    """The unique row whose claim contains every phrase."""
    matches = [row for row in rows if all(phrase in row.claim for phrase in phrases)]
    assert len(matches) == 1, (phrases, [row.claim for row in matches])
    return matches[0]


def test_verify_all_is_fast_and_every_must_hold_row_holds(report):
    rows, seconds = report
    assert seconds < 30
    assert len(rows) >= 40
    assert symbolic.failed(rows) == []
    assert all(row.holds for row in rows if row.must_hold)
    assert all(isinstance(row, symbolic.Claim) and row.printed and row.derived and row.source for row in rows)


def test_known_slips_are_reported_with_their_repairs(report):
    rows, _ = report
    slips = [row for row in rows if not row.must_hold]
    assert all(not row.holds for row in slips)
    expected = {  # claim phrase -> what the note must say about the repair
        "C-subgaussian": "9216",
        "forces <F, Z> >= eps/3": "Counterexample",
        "printed eps/6 split": "5184",
        "Lemma 2.1's eps/4": "9216",
        "eps/(6J)-net moves the MSE": "eps/(8J)-net",
        "eps bookkeeping": "eps/(30J)-net",
        "Lipschitz truncation": "1 bit",
        "decreasing, so s^-1": "sign slip",
        "J = R (W Q p)^D covers": "D >= 2 or Q = 1",
    }
    for phrase, repair in expected.items():
        row = find(slips, phrase)
        assert repair in row.note, (phrase, row.note)
    assert len(slips) == len(expected)


def test_the_issue_rows_are_present_with_the_right_numbers(report):
    rows, _ = report
    assert find(rows, "2^9 from the net and union bound").holds
    assert find(rows, "96 a1 sqrt(2) = 1152").derived == "1152"
    assert find(rows, "L_NFP solves", "eps/8 exactly").holds
    smallest = find(rows, "2^7 is the smallest admissible")
    assert (smallest.printed, smallest.derived, smallest.holds) == ("128", "128", True)
    hoeffding = find(rows, "z^2 in [0,4]")
    assert hoeffding.derived == "eps**2*n/288" and hoeffding.printed == "eps**2*n/512"
    exponent = find(rows, "printed eps/6 split")
    assert (exponent.printed, exponent.derived) == ("4096", "5184")
    assert find(rows, "mixture condition 8^4", "delta/2").holds
    covering = find(rows, "covering: BS eps/(6J)-net")
    assert "Interval(1/48, oo)" in covering.derived and covering.holds
    assert "Interval(1/44, oo)" in find(rows, "covering: eps/(8J)-net").derived
    assert find(rows, "c = 1 for N(0, I_d/d)").derived == "1"
    assert find(rows, "Prop 1.2").derived == "18"
    assert find(rows, "a1^2 = 8 * 9").derived == "72"
    assert find(rows, "2^7 a1^2 = 9216").derived == "9216, 1327104"
    assert find(rows, "fitting below the noise forces <F, Z> >= eps/4").derived == "eps/4"


def test_counterexample_to_eps_over_3_independently():
    """n = 1, sigma^2 = 1, eps = 1/10: the three events hold, yet <F, Z> < eps/3."""
    sigma2, eps = Fraction(1), Fraction(1, 10)
    z, g, f = Fraction(992, 1000), Fraction(-168, 10000), Fraction(266, 10000)
    y = g + z
    assert (y - f) ** 2 <= sigma2 - eps and z**2 >= sigma2 - eps / 6 and z * g >= -eps / 6
    assert abs(y) <= 1 and abs(f) <= 1 and abs(z) <= 2
    assert eps / 4 <= f * z < eps / 3


def test_rigorous_constants_of_bounds_match_their_rows(report):
    rows, _ = report
    assert find(rows, "lawrob.bounds rigorous Theorem 2 exponent").derived == str(bounds.BS["rigorous"].thm2_exponent)
    assert find(rows, "rigorous BS prefactor").derived == str(bounds.BS["rigorous"].prefactor)
    assert find(rows, "smallest sufficient BS mixture constant").derived == str(bounds.BS_MIXTURE_MIN)
    assert find(rows, "finest eps/(bJ)-net").derived == str(bounds.NFP["rigorous"].net_divisor)
    assert find(rows, "rigorous NFP accuracy").derived == "13/15"
    assert find(rows, "truncation bits in lawrob.bounds").derived == str(bounds.NFP["rigorous"].truncation_bits)


def test_a_drifted_constant_fails_its_must_hold_row(monkeypatch):
    monkeypatch.setitem(bounds.BS, "rigorous", bounds.BS["rigorous"]._replace(thm2_exponent=5184, prefactor=144))
    claims = [row.claim for row in symbolic.failed(symbolic.verify_all())]
    assert any("rigorous Theorem 2 exponent" in claim for claim in claims)
    assert any("rigorous BS prefactor" in claim for claim in claims)


def test_format_table_and_cli_constants(report, capsys, monkeypatch):
    rows, _ = report
    table = symbolic.format_table(rows)
    assert table.count("[known slip]") == sum(not row.must_hold for row in rows)
    assert table.splitlines()[-1].endswith("0 must-hold failures")
    assert cli.main(["constants"]) == 0
    assert "must-hold failures" in capsys.readouterr().out
    broken = symbolic.Claim("a constant that must hold", "test", "1", "2", holds=False)
    monkeypatch.setattr(symbolic, "verify_all", lambda: [*rows, broken])
    assert cli.main(["constants"]) == 1
    assert "[FAIL] a constant that must hold" in capsys.readouterr().out
