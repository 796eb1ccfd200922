"""lawrob: the sparse Law of Robustness, put to the test.

Modules (``from lawrob import data, nets, ...``):
    data       isoperimetric measures and label models with an exact noise level
    nets       sparse MLPs as pytrees, masks, parameter counts, (W, J) constants
    train      optax training of one run or of many runs in one compiled call
    prune      pruning scores, masks, IMP with rewinding, MagAfter, ablations
    lipschitz  certified lower / upper / exact Lipschitz constants
    info       mask entropy and mutual-information estimators, p_eff
    bounds     the Bubeck-Sellke and No-Free-Prune bounds with every constant
    symbolic   sympy re-derivation of the theorems' constants
    sweep      resumable, batched bound-vs-empirical sweeps
    plots      the standard figures

The most used names are re-exported here; the heavier modules load on first use.
"""

import importlib

__version__ = "0.1.0"

_MODULES = ("data", "nets", "train", "prune", "lipschitz", "info", "bounds", "symbolic", "sweep", "plots")
_NAMES = {
    "Gaussian": "data", "Sphere": "data", "EmbeddedSphere": "data", "BooleanCube": "data", "Mixture": "data",
    "Dataset": "data", "make_dataset": "data",
    "MLP": "nets", "dense_mask": "nets", "count_active": "nets", "parametrization_constants": "nets",
    "fit": "train", "fit_batched": "train",
    "prune_mask": ("prune", "prune"), "imp": "prune", "mask_from_scores": "prune",
    "Bound": "lipschitz",
    "BoundResult": "bounds", "bubeck_sellke": "bounds", "no_free_prune": "bounds", "p_eff": "bounds",
    "verify_all": "symbolic",
    "Grid": "sweep",
}

__all__ = [*_MODULES, *_NAMES, "__version__"]


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"lawrob.{name}")
    if name in _NAMES:
        module, attr = _NAMES[name] if isinstance(_NAMES[name], tuple) else (_NAMES[name], name)
        return getattr(importlib.import_module(f"lawrob.{module}"), attr)
    raise AttributeError(f"module 'lawrob' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
