"""optax optimizers and learning-rate schedules in train.fit / fit_batched, and the schedule keys of grids."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lawrob import data, nets, schedules, train
from lawrob.sweep import config as sweep_config
from lawrob.sweep.inputs import train_options

MODEL = nets.MLP((3, 6, 1))
STEPS = 12


@pytest.fixture(scope="module")
def setup():
    params = MODEL.init(jax.random.key(0))
    ds = data.make_dataset(jax.random.key(1), data.Gaussian(d=3), 24, target="zero", noise="rademacher")
    return params, nets.dense_mask(params), ds


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("name,end,warmup", [("cosine", 0.1, 0), ("linear", 0.0, 3), ("exponential", 0.01, 2),
                                             ("constant", 0.0, 4)])
def test_schedule_factors_are_the_closed_forms(name, end, warmup):
    s = schedules.Schedule(name, 20, warmup, end)
    for t in range(21):
        if t < warmup:
            expected = t / warmup
        else:
            u = (t - warmup) / (20 - warmup)
            expected = {"cosine": end + (1 - end) * 0.5 * (1 + math.cos(math.pi * u)), "linear": 1 + (end - 1) * u,
                        "exponential": end**u, "constant": 1.0}[name]
        assert float(s(t)) == pytest.approx(expected, rel=1e-5, abs=1e-6), t
    assert s == schedules.Schedule(name, 20, warmup, end) and hash(s) == hash(schedules.Schedule(name, 20, warmup, end))


def test_schedule_rejects_bad_values():
    with pytest.raises(ValueError, match="schedule must be one of"):
        schedules.Schedule("cosin", 10)
    with pytest.raises(ValueError, match="warmup must be < steps"):
        schedules.Schedule("cosine", 10, warmup=10)
    with pytest.raises(ValueError, match=r"end must lie in \[0.0, 1.0\]"):
        schedules.Schedule("linear", 10, end=1.5)
    with pytest.raises(ValueError, match="end must be > 0"):
        schedules.Schedule("exponential", 10)


def test_learning_rate_schedule_equals_the_optax_transformation(setup):
    params, mask, ds = setup
    schedule = optax.cosine_decay_schedule(1e-2, STEPS, alpha=0.1)
    a, ha = train.fit(params, mask, ds, model=MODEL, steps=STEPS, learning_rate=schedule)
    b, hb = train.fit(params, mask, ds, model=MODEL, steps=STEPS, optimizer=optax.adam(schedule))
    assert _same(a, b) and _same(ha["loss"], hb["loss"])
    constant, _ = train.fit(params, mask, ds, model=MODEL, steps=STEPS, learning_rate=1e-2)
    assert not _same(a, constant)  # the schedule changed the training


def test_config_schedule_scales_the_per_run_learning_rate(setup):
    params, mask, ds = setup
    shape = schedules.Schedule("linear", STEPS, 2, 0.0)
    a, _ = train.fit(params, mask, ds, model=MODEL, steps=STEPS, learning_rate=3e-2, schedule=shape,
                     optimizer="sgd")
    b, _ = train.fit(params, mask, ds, model=MODEL, steps=STEPS, optimizer=optax.sgd(lambda c: 3e-2 * shape(c)))
    assert _same(a, b)
    # vmap over the per-run rate with a shared schedule equals a loop
    final = lambda lr: train.fit(params, mask, ds, model=MODEL, steps=STEPS, learning_rate=lr,  # noqa: E731
                                 schedule=shape)[1]["loss"][-1]
    rates = jnp.asarray([1e-3, 1e-2])
    np.testing.assert_allclose(jax.vmap(final)(rates), [float(final(float(r))) for r in rates], rtol=1e-5)


def test_fit_batched_takes_a_schedule_and_a_transformation(setup):
    params, mask, ds = setup
    keys = jax.random.split(jax.random.key(2), 2)
    stacked = train.stack([params] * 2), train.stack([mask] * 2), train.stack([ds] * 2)
    schedule = optax.exponential_decay(1e-2, STEPS, 0.1)
    batched, _ = train.fit_batched(*stacked, keys=keys, model=MODEL, steps=STEPS, learning_rate=schedule)
    one, _ = train.fit(params, mask, ds, model=MODEL, steps=STEPS, optimizer=optax.adam(schedule))
    for leaf_b, leaf_1 in zip(jax.tree.leaves(batched), jax.tree.leaves(one)):
        np.testing.assert_allclose(leaf_b[1], leaf_1, rtol=1e-6, atol=1e-7)


def test_optimizer_and_schedule_errors_name_the_argument(setup):
    params, mask, ds = setup
    with pytest.raises(TypeError, match="optimizer must be a name in"):
        train.TrainConfig(model=MODEL, steps=2, optimizer=3)
    with pytest.raises(TypeError, match="schedule must be None or an optax schedule"):
        train.TrainConfig(model=MODEL, steps=2, schedule=0.5)
    with pytest.raises(ValueError, match="schedule cannot be combined with an optax.GradientTransformation"):
        train.TrainConfig(model=MODEL, steps=2, optimizer=optax.sgd(0.1), schedule=lambda c: 1.0)
    with pytest.raises(ValueError, match="give the schedule once"):
        train.fit(params, mask, ds, model=MODEL, steps=2, schedule=lambda c: 1.0, learning_rate=lambda c: 1e-2)


def test_grid_schedule_keys_are_validated():
    config = sweep_config.RunConfig.from_mapping({"schedule": "cosine", "schedule_end": 0.1, "schedule_warmup": 5,
                                                  "steps": 100, "log_every": 10})
    assert train_options(config)["schedule"] == schedules.Schedule("cosine", 100, 5, 0.1)
    assert "schedule" not in train_options(sweep_config.RunConfig())  # the default: a constant rate
    assert "schedule" in sweep_config.SHAPE_KEYS  # a static part of the compiled training
    cases = [({"schedule": "cosin"}, "grid key 'schedule' must be one of"),
             ({"schedule_end": 2.0}, r"grid key 'schedule_end' must lie in \[0, 1\]"),
             ({"schedule_warmup": -1}, "grid key 'schedule_warmup' must be an integer >= 0"),
             ({"schedule_warmup": 2000}, r"'schedule_warmup' \(2000\) must be < 'steps' \(2000\)"),
             ({"schedule": "exponential"}, "'schedule_end' must be > 0 for schedule = 'exponential'")]
    for values, message in cases:
        with pytest.raises(ValueError, match=message):
            sweep_config.RunConfig.from_mapping(values)


def test_grid_hashes_are_unchanged_at_the_default_schedule():
    config = sweep_config.RunConfig()
    without = {k: v for k, v in config.as_dict().items() if not k.startswith("schedule")}
    assert config.hash == sweep_config.config_hash(without)
    assert dataclasses.replace(config, schedule="cosine").hash != config.hash
