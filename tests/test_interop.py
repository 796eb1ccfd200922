"""Adapters to flax and equinox, checked against each library's own forward pass; jaxpruner's mask format.

jaxpruner itself is not installable here (it is not on the package index this project resolves against), so
its format is tested as jaxpruner documents it: a mask pytree of the parameters' structure with uint8 0/1
leaves, None for a parameter it leaves unpruned, applied as ``param if mask is None else param * mask``
(jaxpruner's ``base_updater.apply_mask``), re-implemented here independently of lawrob.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

equinox = pytest.importorskip("equinox")

from lawrob import data, interop, lipschitz, nets, prune, train  # noqa: E402


class LinenMLP(nn.Module):
    widths: tuple
    act: object = nn.relu

    @nn.compact
    def __call__(self, x):
        for i, w in enumerate(self.widths):
            x = nn.Dense(w)(x)
            if i < len(self.widths) - 1:
                x = self.act(x)
        return x


def _x(d, n=16, seed=3):
    return jax.random.normal(jax.random.key(seed), (n, d))


@pytest.mark.parametrize("activation,act", [("relu", nn.relu), ("tanh", jnp.tanh), ("softplus", nn.softplus)])
def test_from_flax_linen_matches_flax_forward(activation, act):
    module = LinenMLP((7, 5, 2), act)
    x = _x(3)
    variables = module.init(jax.random.key(0), x)
    params, model = nets.from_flax(variables, activation=activation)
    assert model.sizes == (3, 7, 5, 2) and model.bias and model.activation == activation
    np.testing.assert_allclose(model.apply(params, x), module.apply(variables, x), rtol=1e-6, atol=1e-6)
    # the inner "params" dict works too, and gives the same arrays (kernel is [in, out] like w: no transpose)
    again, _ = nets.from_flax(variables["params"], activation=activation)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again)))


def test_from_flax_orders_layers_numerically():
    module = LinenMLP(tuple([4] * 11 + [1]))  # Dense_0 ... Dense_11: "Dense_10" sorts before "Dense_2" as text
    x = _x(2)
    variables = module.init(jax.random.key(1), x)
    shuffled = {"params": dict(sorted(variables["params"].items()))}
    params, model = nets.from_flax(shuffled)
    np.testing.assert_allclose(model.apply(params, x), module.apply(variables, x), rtol=1e-5, atol=1e-6)


def test_to_flax_runs_in_a_linen_module():
    model = nets.MLP((4, 6, 6, 1), activation="tanh")
    params = model.init(jax.random.key(2))
    x = _x(4)
    out = LinenMLP((6, 6, 1), jnp.tanh).apply({"params": interop.to_flax(params)}, x)
    np.testing.assert_allclose(out, model.apply(params, x), rtol=1e-6, atol=1e-6)
    back, same = nets.from_flax({"params": nets.to_flax(params)}, activation="tanh")
    assert same == model and all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params)))


def test_from_flax_nnx_module():
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.layers = nnx.List([nnx.Linear(3, 8, rngs=rngs), nnx.Linear(8, 8, rngs=rngs), nnx.Linear(8, 1, rngs=rngs)])

        def __call__(self, x):
            for layer in self.layers[:-1]:
                x = nnx.relu(layer(x))
            return self.layers[-1](x)

    net = Net(nnx.Rngs(0))
    x = _x(3)
    params, model = nets.from_flax(net)
    assert model.sizes == (3, 8, 8, 1)
    np.testing.assert_allclose(model.apply(params, x), net(x), rtol=1e-6, atol=1e-6)


def test_from_flax_rejects_what_it_cannot_convert():
    with pytest.raises(TypeError, match="flax parameter mapping"):
        nets.from_flax([1, 2])
    with pytest.raises(ValueError, match="besides 'kernel' and 'bias'"):
        nets.from_flax({"Conv_0": {"kernel": jnp.ones((3, 3)), "scale": jnp.ones(3)}})
    with pytest.raises(ValueError, match="rows"):
        nets.from_flax({"Dense_0": {"kernel": jnp.ones((3, 4))}, "Dense_1": {"kernel": jnp.ones((5, 1))}})
    with pytest.raises(ValueError, match="every layer has a bias or none"):
        nets.from_flax({"Dense_0": {"kernel": jnp.ones((3, 4)), "bias": jnp.ones(4)}, "Dense_1": {"kernel": jnp.ones((4, 1))}})
    with pytest.raises(ValueError, match="activation"):
        nets.from_flax({"Dense_0": {"kernel": jnp.ones((3, 1))}}, activation="gelu")


@pytest.mark.parametrize("activation,fn", [("relu", jax.nn.relu), ("tanh", jnp.tanh), ("sigmoid", jax.nn.sigmoid),
                                           ("leaky_relu", lambda x: jax.nn.leaky_relu(x, 0.01))])
def test_from_equinox_matches_equinox_forward(activation, fn):
    eqx_model = equinox.nn.MLP(5, 2, 9, 2, activation=fn, key=jax.random.key(4))
    params, model = nets.from_equinox(eqx_model)
    assert model.sizes == (5, 9, 9, 2) and model.activation == activation
    # equinox's weight is [out, in]: lawrob's w is its transpose
    np.testing.assert_array_equal(params[0]["w"], eqx_model.layers[0].weight.T)
    x = _x(5)
    np.testing.assert_allclose(model.apply(params, x), jax.vmap(eqx_model)(x), rtol=1e-6, atol=1e-6)


def test_to_equinox_round_trip_and_forward():
    model = nets.MLP((3, 6, 6, 1), activation="softplus")
    params = model.init(jax.random.key(5))
    eqx_model = nets.to_equinox(params, model)
    x = _x(3)
    np.testing.assert_allclose(jax.vmap(eqx_model)(x), model.apply(params, x), rtol=1e-6, atol=1e-6)
    back, same = nets.from_equinox(eqx_model)
    assert same == model and all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params)))


def test_equinox_rejections():
    with pytest.raises(TypeError, match="equinox.nn.MLP"):
        nets.from_equinox({"w": 1})
    with pytest.raises(ValueError, match="none of the supported activations"):
        nets.from_equinox(equinox.nn.MLP(2, 1, 3, 1, activation=jax.nn.gelu, key=jax.random.key(0)))
    with pytest.raises(ValueError, match="final_activation"):
        nets.from_equinox(equinox.nn.MLP(2, 1, 3, 1, final_activation=jnp.tanh, key=jax.random.key(0)))
    with pytest.raises(ValueError, match="every layer has a bias or none"):
        nets.from_equinox(equinox.nn.MLP(2, 1, 3, 1, use_final_bias=False, key=jax.random.key(0)))
    model = nets.MLP((2, 3, 4, 1))
    with pytest.raises(ValueError, match="equal hidden widths"):
        nets.to_equinox(model.init(jax.random.key(0)), model)


def test_converted_network_is_bracketed_and_pruned():
    eqx_model = equinox.nn.MLP(3, 1, 6, 1, key=jax.random.key(6))
    params, model = nets.from_equinox(eqx_model)
    lo = lipschitz.lower(params, key=jax.random.key(0), model=model, points=_x(3, 64), method="points")
    hi = lipschitz.upper(params, model=model, method="product")
    # an independent upper bound: the product of the spectral norms of equinox's own weight matrices
    product = np.prod([np.linalg.norm(np.asarray(linear.weight, np.float64), 2) for linear in eqx_model.layers])
    assert 0 < lo.value <= hi.value * (1 + 1e-9) and hi.value == pytest.approx(product, rel=1e-6)
    mask = prune.mask_from_scores(prune.magnitude(params), 0.5, "global", jax.random.key(1))
    assert nets.count_active(mask) == 12  # floor(0.5 * 24 + 0.5) of the 3*6 + 6*1 weights


def _jaxpruner_apply(params, masks):
    """jaxpruner's rule, written out: a None mask leaves the parameter alone, else param * mask."""
    return jax.tree.map(lambda m, p: p if m is None else p * m, masks, params, is_leaf=lambda m: m is None)


def test_jaxpruner_mask_round_trip():
    model = nets.MLP((4, 8, 1))
    params = model.init(jax.random.key(7))
    mask = prune.mask_from_scores(prune.magnitude(params), 0.5, "global", jax.random.key(2))
    flax_mask = nets.to_jaxpruner_mask(mask, flax=True)
    assert set(flax_mask) == {"Dense_0", "Dense_1"}
    for i, name in enumerate(("Dense_0", "Dense_1")):
        assert flax_mask[name]["kernel"].dtype == jnp.uint8 and flax_mask[name]["bias"] is None  # biases unpruned
        np.testing.assert_array_equal(flax_mask[name]["kernel"], mask[i]["w"])
    # jaxpruner's application on the flax parameters = lawrob's masked network
    masked_flax = _jaxpruner_apply(nets.to_flax(params), flax_mask)
    expected = nets.apply_mask(params, mask)
    for i, name in enumerate(("Dense_0", "Dense_1")):
        np.testing.assert_array_equal(masked_flax[name]["kernel"], expected[i]["w"])
        np.testing.assert_array_equal(masked_flax[name]["bias"], expected[i]["b"])
    # and back: every lawrob function that takes a mask reads both forms
    for form in (flax_mask, nets.to_jaxpruner_mask(mask)):
        back = nets.as_mask(form, params)
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(mask)))
        np.testing.assert_array_equal(nets.apply_mask(params, form)[0]["w"], expected[0]["w"])
        assert nets.count_active(nets.to_jaxpruner_mask(mask), include_biases=True, model=model) == \
            nets.count_active(mask, include_biases=True)
        x = _x(4)
        np.testing.assert_allclose(model.apply(params, x, form), model.apply(params, x, mask), rtol=0, atol=0)
        assert lipschitz.upper(params, form, method="product").value == lipschitz.upper(params, mask, method="product").value
        np.testing.assert_array_equal(prune.magnitude(params, form)[0]["w"], prune.magnitude(params, mask)[0]["w"])


def test_jaxpruner_masks_in_training():
    model = nets.MLP((4, 8, 1))
    params = model.init(jax.random.key(8))
    mask = prune.mask_from_scores(prune.magnitude(params), 0.5, "global", jax.random.key(3))
    ds = data.make_dataset(jax.random.key(9), data.Gaussian(d=4), 32, target="zero", noise="rademacher")
    bool_mask = tuple({"w": layer["w"].astype(bool), "b": None} for layer in mask)
    a, _ = train.fit(params, mask, ds, model=model, steps=10, learning_rate=1e-2)
    b, _ = train.fit(params, bool_mask, ds, model=model, steps=10, learning_rate=1e-2)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert all(np.all(np.asarray(layer["w"])[np.asarray(m["w"]) == 0] == 0) for layer, m in zip(b, mask))
    with pytest.raises(TypeError, match="0/1 array"):
        nets.as_mask(({"w": np.full((4, 8), "a")}, {"w": None}), params)
    with pytest.raises(ValueError, match="only 0 and 1"):
        nets.check_mask(params, nets.as_mask(tuple({"w": 2 * layer["w"]} for layer in mask), params))
