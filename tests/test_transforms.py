"""train.fit / fit_batched, the pruning scores and lipschitz.lower under jax.jit, jax.vmap and jax.grad.

Each transformed result is compared with an independent computation: the eager call, a Python loop over the
batch, or a central finite difference of the final loss in the learning rate.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lawrob import data, lipschitz, nets, prune, train

MODEL = nets.MLP((4, 8, 1))
STEPS = 20


@pytest.fixture(scope="module")
def setup():
    params = MODEL.init(jax.random.key(0))
    mask = prune.mask_from_scores(prune.magnitude(params), 0.6, "global", jax.random.key(1))
    ds = data.make_dataset(jax.random.key(2), data.Gaussian(d=4), 32, target="zero", noise="rademacher")
    return params, mask, ds


def _final_loss(setup, optimizer="adam"):
    params, mask, ds = setup

    def final(lr):
        _, history = train.fit(params, mask, ds, model=MODEL, steps=STEPS, learning_rate=lr, optimizer=optimizer)
        return history["loss"][-1]

    return final


def test_fit_under_jit_equals_eager(setup):
    final = _final_loss(setup)
    assert float(jax.jit(final)(jnp.asarray(3e-3))) == pytest.approx(float(final(3e-3)), rel=1e-6)
    # a concrete 0-d array is validated as the number it holds
    with pytest.raises(ValueError, match="learning_rate"):
        final(jnp.asarray(-1.0))


def test_fit_vmap_over_learning_rates_equals_loop(setup):
    final = _final_loss(setup)
    rates = jnp.asarray([1e-3, 3e-3, 1e-2])
    looped = np.array([float(final(float(r))) for r in rates])
    np.testing.assert_allclose(jax.vmap(final)(rates), looped, rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", lambda lr: optax.adam(lr, eps_root=1e-16)],
                         ids=["sgd", "momentum", "adam_eps_root"])
def test_grad_of_final_loss_in_learning_rate_matches_finite_difference(setup, optimizer):
    params, mask, ds = setup
    model = nets.MLP((4, 8, 1), activation="tanh")  # smooth: a ReLU kink within h would spoil the difference

    def final(lr):  # float64 training, so that the finite difference is accurate
        p64, m64, ds64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), (params, mask, ds))
        _, history = train.fit(p64, m64, ds64, model=model, steps=STEPS, learning_rate=lr, optimizer=optimizer)
        return history["loss"][-1]

    with jax.enable_x64(True):
        lr, h = 5e-3, 1e-6
        grad = float(jax.grad(final)(jnp.asarray(lr)))
        fd = (float(final(lr + h)) - float(final(lr - h))) / (2 * h)
    assert np.isfinite(grad) and abs(grad) > 1e-3
    assert grad == pytest.approx(fd, rel=1e-5)


def test_grad_through_plain_adam_is_nan_on_pruned_weights(setup):
    """The caveat fit's docstring states: adam without eps_root differentiates sqrt(v) at v = 0 (pruned weights)."""
    assert np.isnan(float(jax.grad(_final_loss(setup))(jnp.asarray(5e-3))))


def test_fit_batched_under_jit_with_traced_learning_rates(setup):
    params, mask, ds = setup
    b = 3
    stacked = train.stack([params] * b), train.stack([mask] * b), train.stack([ds] * b)
    keys = jax.random.split(jax.random.key(3), b)
    rates = jnp.asarray([1e-3, 3e-3, 1e-2])

    def losses(rates):
        _, history = train.fit_batched(*stacked, keys=keys, model=MODEL, steps=STEPS, learning_rate=rates)
        return history["loss"][:, -1]

    np.testing.assert_allclose(jax.jit(losses)(rates), losses(rates), rtol=1e-6)
    with pytest.raises(ValueError, match="learning_rate must be > 0 for every run"):
        losses(jnp.asarray([1e-3, -1.0, 1e-2]))


def test_scores_under_jit_and_vmap(setup):
    params, mask, ds = setup
    scores = {
        "magnitude": lambda p, k: prune.magnitude(p, mask),
        "random": lambda p, k: prune.random(p, k),
        "snip": lambda p, k: prune.snip(p, ds, model=MODEL, mask=mask),
        "grasp": lambda p, k: prune.grasp(p, ds, model=MODEL, mask=mask),
        "synflow": lambda p, k: prune.synflow(p, mask),
    }
    many = [MODEL.init(k) for k in jax.random.split(jax.random.key(4), 3)]
    keys = jax.random.split(jax.random.key(5), 3)
    for name, score in scores.items():
        eager = score(params, keys[0])
        jitted = jax.jit(score)(params, keys[0])
        for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=name)
        batched = jax.vmap(score)(train.stack(many), keys)
        for i, (p, k) in enumerate(zip(many, keys)):
            for a, b in zip(jax.tree.leaves(score(p, k)), jax.tree.leaves(batched)):
                np.testing.assert_allclose(a, b[i], rtol=1e-5, atol=1e-7, err_msg=name)


def test_lower_under_jit_and_vmap(setup):
    params, mask, ds = setup
    points = ds.x

    def value(p, m, key):
        return lipschitz.lower(p, m, key=key, model=MODEL, points=points, method="points").value

    key = jax.random.key(6)
    eager = lipschitz.lower(params, mask, key=key, model=MODEL, points=points, method="points")
    jitted = jax.jit(value)(params, mask, key)
    assert jitted.dtype == jnp.float32 and float(jitted) <= eager.value
    assert float(jitted) == pytest.approx(eager.value, rel=1e-6)
    # vmap over networks equals a loop; jaxpruner's uint8 format works inside the transformation too
    many = [MODEL.init(k) for k in jax.random.split(jax.random.key(7), 3)]
    uint8 = nets.to_jaxpruner_mask(mask)
    batched = jax.jit(jax.vmap(lambda p: value(p, uint8, key)))(train.stack(many))
    looped = [lipschitz.lower(p, mask, key=key, model=MODEL, points=points, method="points").value for p in many]
    np.testing.assert_allclose(batched, looped, rtol=1e-6)
    assert np.all(np.asarray(batched, np.float64) <= np.asarray(looped))
