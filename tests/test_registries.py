"""Registries owned by their modules and read by the sweep grid: a pruning method, an upper bound and a lower
bound registered from outside the package run in a one-run sweep each, and agree with independent values."""

import hashlib
import json

import jax
import numpy as np
import pytest

from lawrob import data, lipschitz, nets, prune
from lawrob.sweep import Grid, run

TINY = {"d": 2, "n": 12, "depth": 1, "width": 3, "steps": 40, "log_every": 20, "learning_rate": 1e-2,
        "lip_search_starts": 4, "lip_exact_max_hidden": 8}


@pytest.fixture
def registered():
    """Register toy methods for one test and remove them afterwards."""
    added = []

    def add(registry, name, register, *args, **kwargs):
        added.append((registry, name))
        return register(name, *args, **kwargs)

    yield add
    for registry, name in added:
        registry.pop(name, None)


def first_weights(params, mask, data_, key, *, model, loss):
    """A toy data-free score: each matrix's entries ranked by their flat index (the first ones kept)."""
    return [{name: -np.arange(np.size(v), dtype=np.float32).reshape(np.shape(v)) for name, v in layer.items()}
            for layer in params]


def test_a_registered_pruning_method_prunes_and_runs_in_a_sweep(registered, tmp_path):
    registered(prune.METHODS, "first", prune.register_method, score=first_weights, data_free=True)
    model = nets.MLP((2, 3, 1))
    params = model.init(jax.random.key(0))
    mask = prune.prune("first", params, None, 0.5, jax.random.key(1), model=model, collapse="allow")
    # global ranking over the 9 weights: flat indices 0 of both matrices score highest, then 1, ...; 4 or 5 kept
    assert nets.count_active(mask) == prune.kept_count(0.5, 9)
    row, = run(Grid(fixed=TINY | {"method": "first", "density": 0.5}, seeds=1), tmp_path, progress=False)
    assert row["method"] == "first" and row["info_bits"] == 0.0 and row["failed_stage"] == ""
    assert row["active"] == prune.kept_count(0.5, 9) + 3 + 1  # kept weights and every bias
    with pytest.raises(ValueError, match="grid key 'method' must be one of"):
        Grid(fixed={"method": "not_registered"})


def test_a_registered_upper_bound_is_used_by_name_and_in_best(registered, tmp_path):
    registered(lipschitz.UPPER_METHODS, "doubled", lipschitz.register_upper,
               lambda net: 2 * lipschitz._upper.product_bound(net))
    model = nets.MLP((2, 3, 1))
    params = model.init(jax.random.key(0))
    product = lipschitz.upper(params, model=model, method="product").value
    assert lipschitz.upper(params, model=model, method="doubled").value == pytest.approx(2 * product, rel=1e-12)
    best = lipschitz.upper(params, model=model)
    assert best.method != "doubled" and best.details["doubled"] == pytest.approx(2 * product, rel=1e-12)
    row, = run(Grid(fixed=TINY | {"upper_method": "doubled", "method": "random", "density": 0.5}, seeds=1), tmp_path,
               progress=False)
    assert row["lip_upper_method"] == "doubled" and row["lip_lower"] <= row["lip_exact"] <= row["lip_upper"]


def test_a_registered_lower_bound_is_certified(registered, tmp_path):
    registered(lipschitz.LOWER_METHODS, "at_points", lipschitz.register_lower, lambda net, key, points: points)
    model = nets.MLP((2, 3, 1))
    params = model.init(jax.random.key(0))
    ds = data.make_dataset(jax.random.key(1), data.Gaussian(2), 16)
    mine = lipschitz.lower(params, model=model, key=jax.random.key(2), points=ds.x, method="at_points")
    points = lipschitz.lower(params, model=model, key=jax.random.key(2), points=ds.x, method="points")
    assert mine.value == pytest.approx(points.value, rel=1e-12) and mine.details["candidates"] == 16
    row, = run(Grid(fixed=TINY | {"lower_method": "at_points", "method": "random", "density": 0.5}, seeds=1),
               tmp_path, progress=False)
    assert row["lip_lower_method"] == "at_points" and row["lip_lower"] <= row["lip_exact"] * (1 + 1e-9)


def test_a_key_added_later_keeps_old_hashes_at_its_default():
    config = Grid(fixed={"d": 3}).runs()[0].config.as_dict()
    later = ("lower_method", "objective", "robust_trials", "robust_spread", "schedule", "schedule_warmup",
             "schedule_end", "robust_restarts")  # the keys added after the first folders
    old = {("lip_upper" if k == "upper_method" else k): v for k, v in config.items() if k not in later}
    assert Grid(fixed={"d": 3}).runs()[0].hash == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    for key, value in (("lower_method", "points"), ("objective", "robust"), ("robust_trials", 3), ("robust_spread", 10.0),
                       ("schedule", "cosine"), ("schedule_warmup", 5), ("schedule_end", 0.5)):
        assert Grid(fixed={"d": 3, key: value}).runs()[0].hash != Grid(fixed={"d": 3}).runs()[0].hash
    robust = {"d": 3, "objective": "robust"}
    assert Grid(fixed=robust | {"robust_restarts": 2}).runs()[0].hash != Grid(fixed=robust).runs()[0].hash


@pytest.mark.parametrize("call,match", [
    (lambda: prune.register_method("random", score=first_weights), "already a pruning method"),
    (lambda: prune.register_method("x", score=first_weights, pipeline=first_weights), "exactly one of"),
    (lambda: prune.register_method("x"), "exactly one of"),
    (lambda: prune.register_method("not a name", score=first_weights), "identifier"),
    (lambda: lipschitz.register_upper("best", lambda net: 1.0), "other than 'best'"),
    (lambda: lipschitz.register_upper("product", lambda net: 1.0), "already an upper-bound method"),
    (lambda: lipschitz.register_lower("search", lambda net, key, points: points), "already a lower-bound method"),
])
def test_registering_badly_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
