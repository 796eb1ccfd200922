"""The vocabulary of ``lawrob.symbolic``'s derivations: the sympy symbols, the ``Claim`` row and the helpers that
build and compare rows (import ``Claim`` from ``lawrob.symbolic``)."""

from __future__ import annotations

import dataclasses

import sympy as sp

from lawrob import bounds

eps, delta, n, d, c, L, k, I, t, s, W, J, p, alpha, C, K, x = sp.symbols(
    "eps delta n d c L k I t s W J p alpha C K x", positive=True)
A1 = sp.sqrt(bounds.A1_SQUARED)
POSITIVE = sp.Interval.open(0, sp.oo)


@dataclasses.dataclass(frozen=True)
class Claim:
    """One checked statement. ``printed``/``derived``: the constant or expression as printed and as re-derived;
    ``holds``: the printed one is correct (a valid, possibly loose, constant); ``must_hold``: False only for
    the known slips, whose ``note`` gives the repair used by ``variant="rigorous"``.

    Parameters
    ----------
    claim : str
        The statement.
    source : str
        Where it is printed.
    printed : str
        The constant or expression as printed.
    derived : str
        As re-derived.
    holds : bool
        Whether the printed one is correct.
    must_hold : bool
        False only for the known slips.
    note : str
        The repair used by ``variant="rigorous"``.

    References
    ----------
    docs/theory.md, sections 3.5, 4.4 and 5.
    """

    claim: str
    source: str
    printed: str
    derived: str
    holds: bool
    must_hold: bool = True
    note: str = ""


def _text(value) -> str:
    return value if isinstance(value, str) else sp.sstr(value)


def _row(claim, source, printed, derived, holds, must_hold=True, note="") -> Claim:
    return Claim(claim, source, _text(printed), _text(derived), bool(holds), must_hold, note)


def _same(a, b) -> bool:
    return sp.simplify(a - b) == 0


def _solve_positive(equation, symbol):
    """The unique solution of ``equation`` for a positive ``symbol``; for L it solves for L^2 (linear) first."""
    if symbol == L:
        square = sp.Symbol("L2", positive=True)
        (solution,) = sp.solve(equation.subs(L, sp.sqrt(square)), square)
        return sp.sqrt(solution)
    (solution,) = [s_ for s_ in sp.solve(equation, symbol) if not s_.is_negative]
    return solution


def _tail_constant(tail_exponent, variable):
    """C such that the tail exponent equals -variable^2 / C (the convention P(|X| >= t) <= 2 exp(-t^2/C))."""
    return sp.simplify(-variable**2 / tail_exponent)
