"""The public faces of lawrob: every module's ``__all__`` names what it offers, and nothing private."""

import importlib
import inspect
import subprocess
import sys

import pytest

import lawrob

# modules whose __all__ is required; prune and sweep are checked once they have one
MODULES = ("bounds", "data", "info", "lipschitz", "nets", "plots", "progress", "robust", "symbolic", "train",
           "sweep.config", "sweep.inputs", "sweep.masks", "sweep.measure", "sweep.certificate")
OPTIONAL = ("prune", "sweep")


def _public_modules():
    modules = [importlib.import_module(f"lawrob.{name}") for name in MODULES]
    for name in OPTIONAL:
        module = importlib.import_module(f"lawrob.{name}")
        if hasattr(module, "__all__"):
            modules.append(module)
    return modules


@pytest.mark.parametrize("name", MODULES)
def test_every_public_module_has_an_all(name):
    module = importlib.import_module(f"lawrob.{name}")
    assert isinstance(module.__all__, list) and module.__all__, f"lawrob.{name} has no __all__"


@pytest.mark.parametrize("module", _public_modules(), ids=lambda m: m.__name__)
def test_all_names_exist_are_public_and_unique(module):
    names = module.__all__
    assert all(isinstance(n, str) for n in names)
    assert len(names) == len(set(names)), f"{module.__name__}.__all__ repeats a name"
    assert [n for n in names if n.startswith("_")] == [], f"{module.__name__} exports private names"
    missing = [n for n in names if not hasattr(module, n)]
    assert missing == [], f"{module.__name__}.__all__ names missing attributes: {missing}"
    namespace = {}
    exec(f"from {module.__name__} import *", namespace)  # noqa: S102 - the star import must work
    assert set(names) <= set(namespace)


@pytest.mark.parametrize("module", _public_modules(), ids=lambda m: m.__name__)
def test_every_public_function_and_class_is_listed(module):
    # defined in the module itself or in one of its private submodules (lawrob.bounds._nfp, lawrob.lipschitz._upper)
    own = [name for name, value in vars(module).items()
           if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
           and (value.__module__ == module.__name__ or value.__module__.startswith(module.__name__ + "._"))]
    assert sorted(set(own) - set(module.__all__)) == []


def test_package_root_names_resolve():
    assert [n for n in lawrob.__all__ if n.startswith("_")] == []
    assert len(lawrob.__all__) == len(set(lawrob.__all__))
    for name in lawrob.__all__:
        assert getattr(lawrob, name) is not None, name
    assert lawrob.prune_mask is lawrob.prune.prune and lawrob.p_eff is lawrob.bounds.p_eff
    assert lawrob.MLP is lawrob.nets.MLP and lawrob.verify_all is lawrob.symbolic.verify_all
    assert set(lawrob.__all__) <= set(dir(lawrob)) and isinstance(lawrob.__version__, str)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lawrob.nope  # noqa: B018


def test_dead_code_is_gone():
    from lawrob import info, nets, plots

    assert not hasattr(plots, "imp_rounds_correlation")
    assert not hasattr(nets.MLP, "slope_bounds")
    assert list(inspect.signature(nets.dense_mask).parameters) == ["params"]
    assert not hasattr(info, "p_eff")  # the one p_eff is lawrob.bounds.p_eff


def test_import_lawrob_stays_light():
    # `import lawrob` runs for every `lawrob` command (even --help): JAX, SciPy and sympy load on first use only
    code = "import sys, lawrob; print(sorted(m for m in ('jax', 'scipy', 'sympy', 'optax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
