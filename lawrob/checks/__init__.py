"""The paper checks E1..E6 and the experiment E7 beyond the paper: one module each, run by ``lawrob check`` or on its own as
``python -m lawrob.checks.<module> --scale smoke|full [--out DIR | --update-committed]``.

Each module has ``run(scale, out, ...) -> verdict`` (it writes ``verdict.json`` and its figure into ``out``) and
``main(argv)``. ``_common`` holds what they share: the command line, output folders (default
./lawrob-out/checks/<eN>; ``--update-committed`` writes the committed full-scale results paper_checks/results/<eN>
of a source checkout, and only there), verdict files, statistics and the stacked runs over seeds. The committed
results and the write-ups (paper_checks/README_e123.md, README_e46.md) stay in the checkout's paper_checks/.
Importing this package is light; each check imports JAX and the library when loaded.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# experiment -> module of this package, in the order `lawrob check` runs them
EXPERIMENTS = {
    "E1": "e1_memorization_gaussian",
    "E2": "e2_memorization_images",
    "E3": "e3_noise_correlation_imp",
    "E4": "e4_learning_rate_and_gradient_noise",
    "E5": "e5_mask_information",
    "E6": "e6_bound_vs_measurement",
    "E7": "e7_robust_frontier",
}


def module_names() -> dict[str, str]:
    """The importable module of every check.

    Returns
    -------
    dict of str to str
        ``{"E1": "lawrob.checks.e1_memorization_gaussian", ...}``, in the order ``lawrob check`` runs them.
    """
    return {experiment: f"{__name__}.{module}" for experiment, module in EXPERIMENTS.items()}


def load(experiment: str) -> ModuleType:
    """The module of one check, imported.

    Parameters
    ----------
    experiment : str
        "E1" .. "E7", in any case.

    Returns
    -------
    types.ModuleType
        The check's module, with its ``run(scale, out, ...)`` and ``main(argv)``.

    Raises
    ------
    ValueError
        If ``experiment`` names no check.
    """
    names = module_names()
    if experiment.upper() not in names:
        raise ValueError(f"experiment must be among {sorted(names)}, got {experiment!r}")
    return importlib.import_module(names[experiment.upper()])


__all__ = ["EXPERIMENTS", "load", "module_names"]
