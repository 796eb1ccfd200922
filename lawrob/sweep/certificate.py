"""Which certified upper bound each run of a sweep gets: one method for a whole grid.

A grid whose runs ask for ``upper_method = "best"`` is certified with one method for all of them: the tightest
registered method affordable on the grid's largest network (``lipschitz.uniform_method``), so that the
certificate type never changes along an axis of the grid (a fit of the Lipschitz constant against p_eff would
otherwise mix, say, LipSDP on the narrow networks with ECLipsE-Fast on the wide ones). A run that names its
method keeps it. Every row records the method (``lip_upper_method``) and the rule that chose it
(``lip_upper_rule``).
"""

from __future__ import annotations

import jax

from lawrob import lipschitz
from lawrob.sweep.config import Run
from lawrob.sweep.inputs import model_of

__all__ = ["NAMED", "certificates"]

NAMED = "named by the grid"


def _size(run: Run) -> int:
    """N = d + hidden units: what the affordability of an upper bound depends on."""
    return run.config.d + run.config.width * run.config.depth


def certificates(runs: list[Run]) -> dict[str, tuple[str, str]]:
    """{run hash: (upper-bound method, the rule that chose it)} for the runs of one grid.

    Parameters
    ----------
    runs : list of Run
        The runs of one grid.

    Returns
    -------
    dict
        Run hash -> (method, rule).
    """
    out = {r.hash: (r.config.upper_method, NAMED) for r in runs if r.config.upper_method != "best"}
    best = [r for r in runs if r.config.upper_method == "best"]
    if best:
        largest = max(best, key=_size)
        model = model_of(largest.config)
        net = lipschitz.prepare(model.init(jax.random.key(0)), None, model)
        method = lipschitz.uniform_method(net)
        rule = (f"best for the grid: the tightest method affordable on its largest network (d + hidden units = "
                f"{_size(largest)})")
        out |= {r.hash: (method, rule) for r in best}
    return out
