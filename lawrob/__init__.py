"""lawrob: the sparse Law of Robustness, put to the test.

Modules (``from lawrob import data, nets, ...``):
    data       isoperimetric measures and label models with an exact noise level
    nets       sparse MLPs as pytrees, masks, parameter counts, (W, J) constants
    train      optax training of one run or of many runs in one compiled call
    prune      pruning scores, masks, IMP with rewinding, MagAfter, ablations
    lipschitz  certified lower / upper / exact Lipschitz constants
    info       mask entropy and mutual-information estimators (the I(m; D) of p_eff)
    bounds     the Bubeck-Sellke and No-Free-Prune bounds with every constant, and p_eff
    progress   logging and progress bars
    symbolic   sympy re-derivation of the theorems' constants
    sweep      resumable, batched bound-vs-empirical sweeps
    plots      the standard figures

The public face is ``__all__``: these modules and the most used names, each re-exported from the module named
in ``_EXPORTS`` (and written out as imports under ``TYPE_CHECKING`` for readers and type checkers). They load
on first use: every module but ``progress`` imports JAX and/or SciPy (about 3 s and 2 s here), and
``import lawrob`` runs for every ``lawrob`` command, so importing them eagerly would make ``lawrob --help``
take seconds instead of 0.2 s.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING


def _version() -> str:
    try:
        return importlib.metadata.version("lawrob")
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path without an install
        return "0+unknown"


if TYPE_CHECKING:  # the names below, for type checkers and editors (at run time they load on first use)
    # ruff: noqa: F401
    from lawrob import bounds, data, info, lipschitz, nets, plots, progress, prune, robust, sweep, symbolic, train
    from lawrob.bounds import BoundResult, bubeck_sellke, no_free_prune, p_eff
    from lawrob.data import BooleanCube, Dataset, EmbeddedSphere, Gaussian, Mixture, Sphere, make_dataset
    from lawrob.lipschitz import Bound
    from lawrob.nets import MLP, count_active, dense_mask, parametrization_constants
    from lawrob.prune import imp, mask_from_scores
    from lawrob.prune import prune as prune_mask
    from lawrob.sweep import Grid
    from lawrob.symbolic import verify_all
    from lawrob.train import fit, fit_batched

__version__ = _version()  # the one version source is pyproject.toml's, read from the installed metadata

_MODULES = ("bounds", "data", "info", "lipschitz", "nets", "plots", "progress", "prune", "robust", "sweep", "symbolic",
            "train")
_EXPORTS = {  # name -> (module, attribute)
    "BoundResult": ("bounds", "BoundResult"), "bubeck_sellke": ("bounds", "bubeck_sellke"),
    "no_free_prune": ("bounds", "no_free_prune"), "p_eff": ("bounds", "p_eff"),
    "BooleanCube": ("data", "BooleanCube"), "Dataset": ("data", "Dataset"),
    "EmbeddedSphere": ("data", "EmbeddedSphere"), "Gaussian": ("data", "Gaussian"), "Mixture": ("data", "Mixture"), "Sphere": ("data", "Sphere"),
    "make_dataset": ("data", "make_dataset"),
    "Bound": ("lipschitz", "Bound"),
    "MLP": ("nets", "MLP"), "count_active": ("nets", "count_active"), "dense_mask": ("nets", "dense_mask"),
    "parametrization_constants": ("nets", "parametrization_constants"),
    "imp": ("prune", "imp"), "mask_from_scores": ("prune", "mask_from_scores"), "prune_mask": ("prune", "prune"),
    "Grid": ("sweep", "Grid"),
    "verify_all": ("symbolic", "verify_all"),
    "fit": ("train", "fit"), "fit_batched": ("train", "fit_batched"),
}

__all__ = [*_MODULES, *_EXPORTS]  # and __version__


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"lawrob.{name}")
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(importlib.import_module(f"lawrob.{module}"), attribute)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'lawrob' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
