"""lawrob.nets: forward pass against NumPy, masks, counts, initializations, (W, J) constants."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lawrob import nets


def numpy_forward(params, x, activation):
    h = np.asarray(x, dtype=np.float64)
    for i, layer in enumerate(params):
        h = h @ np.asarray(layer["w"], dtype=np.float64) + (np.asarray(layer["b"], dtype=np.float64) if "b" in layer else 0)
        if i < len(params) - 1:
            h = activation(h)
    return h


NUMPY_ACTIVATIONS = {
    "relu": lambda h: np.maximum(h, 0),
    "tanh": np.tanh,
    "leaky_relu": lambda h: np.where(h > 0, h, 0.01 * h),
    "sigmoid": lambda h: 1 / (1 + np.exp(-h)),
}


@pytest.mark.parametrize("activation", sorted(NUMPY_ACTIVATIONS))
@pytest.mark.parametrize("bias", [True, False])
def test_apply_matches_numpy(activation, bias):
    model = nets.MLP((5, 7, 3, 2), activation=activation, bias=bias)
    params = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (11, 5))
    np.testing.assert_allclose(model.apply(params, x), numpy_forward(params, x, NUMPY_ACTIVATIONS[activation]), rtol=1e-5, atol=1e-6)


def test_mask_zeroes_weights_and_counts():
    model = nets.MLP((4, 6, 1))
    params = model.init(jax.random.key(0))
    rng = np.random.default_rng(0)
    mask = tuple({"w": jnp.asarray(rng.integers(0, 2, l["w"].shape), jnp.float32), "b": jnp.ones_like(l["b"])} for l in params)
    masked = [{"w": np.asarray(l["w"]) * np.asarray(m["w"]), "b": np.asarray(l["b"])} for l, m in zip(params, mask)]
    x = jax.random.normal(jax.random.key(2), (9, 4))
    np.testing.assert_allclose(model.apply(params, x, mask), numpy_forward(masked, x, NUMPY_ACTIVATIONS["relu"]), rtol=1e-5, atol=1e-6)
    expected = sum(int(np.asarray(m["w"]).sum()) for m in mask)
    assert nets.count_active(mask) == expected
    assert nets.count_active(mask, include_biases=True) == expected + 7
    assert nets.count_active(nets.dense_mask(params)) == model.num_weights == 4 * 6 + 6
    assert model.num_params == nets.count_params(params) == 4 * 6 + 6 + 6 + 1


def test_scalar_output():
    model = nets.MLP((3, 4, 1))
    params = model.init(jax.random.key(0))
    x = jnp.ones((2, 3))
    np.testing.assert_array_equal(model.scalar(params, x), model.apply(params, x)[:, 0])
    with pytest.raises(ValueError, match="output width of 1"):
        nets.MLP((3, 4, 2)).scalar(nets.MLP((3, 4, 2)).init(jax.random.key(0)), x)


@pytest.mark.parametrize("scheme,variance", [("he_normal", 2.0), ("lecun_normal", 1.0)])
def test_normal_inits_have_the_stated_variance(scheme, variance):
    fan_in = 400
    w = np.asarray(nets.MLP((fan_in, 500, 1), init_scheme=scheme).init(jax.random.key(3))[0]["w"])
    assert w.var() == pytest.approx(variance / fan_in, rel=0.02)


def test_torch_init_bounds_and_reproducibility():
    model = nets.MLP((25, 30, 1))
    a, b = model.init(jax.random.key(4)), model.init(jax.random.key(4))
    for la, lb in zip(a, b):
        np.testing.assert_array_equal(la["w"], lb["w"])
    assert float(jnp.max(jnp.abs(a[0]["w"]))) <= 1 / 5 and float(jnp.max(jnp.abs(a[0]["b"]))) <= 1 / 5
    assert float(jnp.max(jnp.abs(a[0]["w"]))) > 0.19  # uniform fills its range
    assert not np.array_equal(a[0]["w"], model.init(jax.random.key(5))[0]["w"])


def test_check_mask_and_params_errors():
    model = nets.MLP((3, 4, 1))
    params = model.init(jax.random.key(0))
    good = nets.dense_mask(params)
    nets.check_mask(params, good)
    with pytest.raises(ValueError, match="pytree structure"):
        nets.check_mask(params, good[:1])
    bad_shape = ({"w": jnp.ones((4, 3)), "b": jnp.ones(4)}, good[1])
    with pytest.raises(ValueError, match="shape"):
        nets.check_mask(params, bad_shape)
    with pytest.raises(ValueError, match="only 0 and 1"):
        nets.check_mask(params, jax.tree.map(lambda m: 0.5 * m, good))
    with pytest.raises(ValueError, match="sequence of 2 layer dicts"):
        nets.check_params(model, params[:1])
    with pytest.raises(ValueError, match="non-finite"):
        nets.check_params(model, ({"w": params[0]["w"].at[0, 0].set(jnp.nan), "b": params[0]["b"]}, params[1]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"sizes": (3,)}, "at least an input and an output"),
        ({"sizes": (3, 0, 1)}, "sizes\\[i\\] must be an integer >= 1"),
        ({"sizes": (3, 2), "activation": "gelu"}, "activation must be one of"),
        ({"sizes": (3, 2), "init_scheme": "orthogonal"}, "init_scheme must be one of"),
        ({"sizes": "abc"}, "sequence of layer widths"),
    ],
)
def test_mlp_bad_input(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        nets.MLP(**kwargs)


def test_parametrization_constants_formula():
    model = nets.MLP((3, 5, 1))
    consts = nets.parametrization_constants(model, radius=2.0, box=1.5)
    p = 3 * 5 + 5 + 5 + 1
    R = math.sqrt(2.0**2 + 1)
    assert consts.p == p and consts.D == 2 and consts.Q == 1
    assert consts.J == pytest.approx(R * (1.5 * 1 * p) ** 2)
    assert consts.W == pytest.approx(2 * 1.5 * math.sqrt(p))
    nobias = nets.parametrization_constants(nets.MLP((3, 5, 1), bias=False), radius=2.0)
    assert nobias.J == pytest.approx(2.0 * (1.0 * 20) ** 2)
    params = model.init(jax.random.key(0))
    params = ({"w": params[0]["w"].at[0, 0].set(3.0), "b": params[0]["b"]}, params[1])
    assert nets.parametrization_constants(model, params).box == 3.0
    with pytest.raises(ValueError, match="box must lie in"):
        nets.parametrization_constants(model, box=0.5)


def test_parametrization_constant_bounds_the_sup_norm_change():
    """|f_w1(x) - f_w2(x)| <= J ||w1 - w2|| for weights in the box and ||x|| <= R (BS Lemma 3.1)."""
    model = nets.MLP((4, 6, 6, 1))
    consts = nets.parametrization_constants(model, radius=1.0, box=1.0)
    keys = jax.random.split(jax.random.key(0), 3)
    w1 = jax.tree.map(lambda a: jnp.clip(a * 3, -1, 1), model.init(keys[0]))
    w2 = jax.tree.map(lambda a: jnp.clip(a * 3, -1, 1), model.init(keys[1]))
    x = jax.random.normal(keys[2], (2000, 4))
    x = x / jnp.maximum(1.0, jnp.linalg.norm(x, axis=1, keepdims=True))
    dist = math.sqrt(sum(float(jnp.sum((a - b) ** 2)) for a, b in zip(jax.tree.leaves(w1), jax.tree.leaves(w2))))
    assert float(jnp.max(jnp.abs(model.scalar(w1, x) - model.scalar(w2, x)))) <= consts.J * dist
