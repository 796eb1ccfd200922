"""lawrob.prune: every score against an independent computation, exact mask counts, ties, layer collapse,
IMP / MagAfter with explicit rewinding, batching, the ablations, and bad input."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lawrob import data, nets, prune, train

# Any UserWarning fails a test (JAX's "float64 truncated to float32" among them); expected collapse warnings
# are caught with pytest.warns.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")
SMALL = nets.MLP((5, 7, 3, 1))  # 35 + 21 + 3 = 59 weights, 7 + 3 + 1 = 11 biases
NUMPY_ACTIVATIONS = {"relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
                     "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2)}


def to_numpy(tree):
    return jax.tree.map(lambda a: np.asarray(a, dtype=np.float64), tree)


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def take(tree, i):
    """Run i of a stacked pytree."""
    return jax.tree.map(lambda a: a[i], tree)


def weight_counts(mask):
    return [int(np.count_nonzero(np.asarray(layer["w"]))) for layer in mask]


# ------------------------------------------------------------------ NumPy references (float64, written by hand)


def numpy_loss(params, x, y, loss, temperature, activation):
    act = NUMPY_ACTIVATIONS[activation][0]
    h = x
    for i, layer in enumerate(params):
        h = h @ layer["w"] + layer["b"]
        if i < len(params) - 1:
            h = act(h)
    f = h[:, 0] / temperature
    return np.mean(np.logaddexp(0, -y * f)) if loss == "logistic" else np.mean((f - y) ** 2)


def numpy_grad(params, x, y, loss, temperature, activation):
    """Backpropagation by hand: d/d theta of the mean loss of f(x) / T."""
    act, dact = NUMPY_ACTIVATIONS[activation]
    zs, hs = [], [x]
    for i, layer in enumerate(params):
        z = hs[-1] @ layer["w"] + layer["b"]
        zs.append(z)
        hs.append(act(z) if i < len(params) - 1 else z)
    f = hs[-1][:, 0] / temperature
    n = len(y)
    dl_df = -y / (1 + np.exp(y * f)) / n if loss == "logistic" else 2 * (f - y) / n
    delta = (dl_df / temperature)[:, None]
    grads = [None] * len(params)
    for i in reversed(range(len(params))):
        grads[i] = {"w": hs[i].T @ delta, "b": delta.sum(0)}
        if i:
            delta = (delta @ params[i]["w"].T) * dact(zs[i - 1])
    return tuple(grads)


def float64_data(x, y):
    """A Dataset holding float64 arrays (call inside a jax.enable_x64 scope)."""
    zeros = jnp.zeros(len(y))
    return data.Dataset(x=jnp.asarray(x), y=jnp.asarray(y), g=zeros, z=zeros, ell=zeros.astype(int), sigma2=None)


def assert_close_trees(a, b, rtol=1e-6, atol=1e-9):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(u, v, rtol=rtol, atol=atol)


def masked(tree, mask):
    return jax.tree.map(lambda a, m: a * m, tree, mask)


def axpy(a, x, y):
    return jax.tree.map(lambda u, v: u + a * v, y, x)


def numpy_synflow(params, mask, include_biases):
    """|theta| a_i b_j with a the forward sums of the all-ones input through |W| (+|b|) and b the backward ones."""
    absolute = [{k: np.abs(v * mask[i][k]) for k, v in layer.items()} for i, layer in enumerate(params)]
    forward = [np.ones(absolute[0]["w"].shape[0])]
    for layer in absolute:
        forward.append(forward[-1] @ layer["w"] + (layer["b"] if include_biases and "b" in layer else 0))
    backward = [np.ones(absolute[-1]["w"].shape[1])]
    for layer in reversed(absolute[1:]):
        backward.insert(0, layer["w"] @ backward[0])
    scores = []
    for i, layer in enumerate(absolute):
        s = {"w": layer["w"] * np.outer(forward[i], backward[i])}
        if "b" in layer:
            s["b"] = layer["b"] * backward[i] if include_biases else np.zeros_like(layer["b"])
        scores.append(s)
    return tuple(scores)


@pytest.fixture(scope="module")
def small():
    params = SMALL.init(jax.random.key(0))
    ds = data.make_dataset(jax.random.key(1), data.Gaussian(5), 12)
    mask = tuple({**jax.tree.map(jnp.ones_like, l), "w": jax.random.bernoulli(k, 0.7, l["w"].shape).astype(jnp.float32)}
                 for l, k in zip(params, jax.random.split(jax.random.key(2), 3)))
    return params, ds, mask


# ----------------------------------------------------------------------------------------------- scores


def test_magnitude_is_absolute_value_of_masked_weights(small):
    params, _, mask = small
    for got, p, m in zip(jax.tree.leaves(prune.magnitude(params, mask)), jax.tree.leaves(params), jax.tree.leaves(mask)):
        np.testing.assert_array_equal(got, np.abs(np.asarray(p) * np.asarray(m)))


def test_random_scores_ignore_the_weights_and_prune_every_weight_equally_often(small):
    params, _, _ = small
    assert leaves_equal(prune.random(params, jax.random.key(3)), prune.random(jax.tree.map(lambda a: 5 * a, params), jax.random.key(3)))
    masks = [prune.prune("random", params, None, 0.5, k, model=SMALL, collapse="allow")
             for k in jax.random.split(jax.random.key(4), 200)]
    freq = np.mean([np.concatenate([np.ravel(layer["w"]) for layer in m]) for m in masks], axis=0)
    assert np.all(np.abs(freq - 30 / 59) < 5 * np.sqrt(0.25 / 200)), freq  # every weight kept ~30/59 of the time


@pytest.mark.parametrize("loss", ["logistic", "mse"])
def test_snip_equals_finite_differences_of_the_loss(small, loss):
    params, ds, mask = small
    p64, m64 = to_numpy(params), to_numpy(mask)
    x, y = np.asarray(ds.x, np.float64), np.asarray(ds.y, np.float64)
    leaves, tree = jax.tree.flatten(p64)
    reference = []
    for j, leaf in enumerate(leaves):  # central differences of theta -> L(theta * m), one parameter at a time
        g = np.zeros_like(leaf)
        for idx in np.ndindex(leaf.shape):
            bumped = []
            for sign in (1, -1):
                moved = [l.copy() for l in leaves]
                moved[j][idx] += sign * 1e-6
                bumped.append(numpy_loss(masked(jax.tree.unflatten(tree, moved), m64), x, y, loss, 1.0, "relu"))
            g[idx] = (bumped[0] - bumped[1]) / 2e-6
        reference.append(np.abs(leaf * jax.tree.leaves(m64)[j] * g))
    with jax.enable_x64(True):  # the score in float64, so the comparison can be tight
        got = jax.jit(lambda p, d, m: prune.snip(p, d, model=SMALL, loss=loss, mask=m))(p64, float64_data(x, y), m64)
        got = [np.asarray(a) for a in jax.tree.leaves(got)]
    for a, b in zip(got, reference):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    jitted = jax.jit(lambda p: prune.snip(p, ds, model=SMALL, loss=loss, mask=mask))(params)
    for a, b in zip(jax.tree.leaves(jitted), reference):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-6)
    if loss == "logistic":
        assert_close_trees(prune.snip(params, ds, model=SMALL, loss=loss, mask=mask), jitted)


@pytest.mark.parametrize("activation,loss,temperature", [("tanh", "logistic", None), ("relu", "logistic", None),
                                                         ("relu", "mse", 3.0)])
def test_grasp_equals_theta_times_finite_difference_hessian_gradient(activation, loss, temperature):
    """score = (theta m) * Hg with Hg = [G(theta + eps g) - G(theta - eps g)] / (2 eps), G the hand-written gradient
    of theta -> L(theta * m) on logits / T (T = 200 for logistic, 1 for mse unless given)."""
    model = nets.MLP((5, 7, 3, 1), activation=activation)
    params = model.init(jax.random.key(5))
    ds = data.make_dataset(jax.random.key(6), data.Gaussian(5), 12)
    mask = tuple({**jax.tree.map(jnp.ones_like, l), "w": jax.random.bernoulli(k, 0.7, l["w"].shape).astype(jnp.float32)}
                 for l, k in zip(params, jax.random.split(jax.random.key(7), 3)))
    T = prune.default_temperature(loss) if temperature is None else temperature
    p64, m64 = to_numpy(params), to_numpy(mask)
    x, y = np.asarray(ds.x, np.float64), np.asarray(ds.y, np.float64)

    def G(theta):
        return masked(numpy_grad(masked(theta, m64), x, y, loss, T, activation), m64)

    g = G(p64)
    eps = 1e-4 / max(np.abs(v).max() for v in jax.tree.leaves(g))
    hg = jax.tree.map(lambda a, b: (a - b) / (2 * eps), G(axpy(eps, g, p64)), G(axpy(-eps, g, p64)))
    reference = jax.tree.map(lambda p, m, h: p * m * h, p64, m64, hg)
    scale = max(np.abs(v).max() for v in jax.tree.leaves(reference))
    score = jax.jit(lambda p, d, m: prune.grasp(p, d, model=model, loss=loss, mask=m, temperature=temperature))
    with jax.enable_x64(True):
        got = [np.asarray(a) for a in jax.tree.leaves(score(p64, float64_data(x, y), m64))]
    for a, b in zip(got, jax.tree.leaves(reference)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7 * scale)
    jitted = score(params, ds, mask)  # float32
    assert_close_trees(jitted, reference, rtol=1e-2, atol=1e-3 * scale)
    if activation == "tanh":
        assert_close_trees(prune.grasp(params, ds, model=model, loss=loss, mask=mask, temperature=temperature), jitted,
                           rtol=1e-5, atol=1e-6 * scale)
    # Sign convention: GraSP removes the lowest theta * Hg (= the highest -theta * Hg of Wang et al.'s Algorithm 1).
    kept = prune.prune("grasp", params, ds, 0.5, jax.random.key(8), model=model, loss=loss, mask=mask,
                       collapse="allow", temperature=temperature)
    ref_w = np.concatenate([np.ravel(layer["w"]) for layer in reference])
    active = np.concatenate([np.ravel(layer["w"]) for layer in m64]) > 0
    keep = np.concatenate([np.ravel(layer["w"]) for layer in kept]) > 0
    assert keep.sum() == prune.kept_count(0.5, 59) and np.all(active[keep])
    assert ref_w[active & ~keep].max() <= ref_w[keep].min() + 1e-3 * scale


def test_grasp_temperature_defaults():
    assert [prune.default_temperature(loss) for loss in ("logistic", "cross_entropy", "mse")] == [200.0, 200.0, 1.0]


@pytest.mark.parametrize("include_biases", [True, False])
def test_synflow_equals_numpy_path_products(small, include_biases):
    params, _, mask = small
    got = jax.jit(lambda p: prune.synflow(p, mask, include_biases=include_biases))(params)
    assert all(leaf.dtype == np.float64 for leaf in jax.tree.leaves(got))
    reference = numpy_synflow(to_numpy(params), to_numpy(mask), include_biases)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(reference)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6)
    if include_biases:
        assert leaves_equal(prune.synflow(params, mask), got)


def test_synflow_float64_survives_a_deep_net_where_float32_underflows():
    deep = nets.MLP((6,) * 31, bias=False)
    params = jax.tree.map(lambda a: 0.02 * a, deep.init(jax.random.key(9)))
    reference = numpy_synflow(to_numpy(params), to_numpy(nets.dense_mask(params)), False)
    f32 = np.ones(6, np.float32)  # the same flow in float32 underflows to exactly zero
    for layer in params:
        f32 = f32 @ np.abs(np.asarray(layer["w"], np.float32))
    assert f32.sum() == 0.0 and 0 < min(v.min() for v in jax.tree.leaves(reference)) < 1e-45
    scores = jax.jit(prune.synflow)(params)
    for a, b in zip(jax.tree.leaves(scores), jax.tree.leaves(reference)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-9)
    mask = prune.mask_from_scores(scores, 0.1, "global", jax.random.key(0), collapse="allow")
    flat = np.concatenate([np.ravel(v) for v in jax.tree.leaves(reference)])
    top = np.zeros(flat.size, bool)
    top[np.argsort(flat)[-prune.kept_count(0.1, flat.size):]] = True
    np.testing.assert_array_equal(np.concatenate([np.ravel(v) for v in jax.tree.leaves(mask)]) > 0, top)
    inverted = prune.mask_from_scores(prune.invert(scores), 0.1, "global", jax.random.key(0), collapse="allow")
    bottom = np.zeros(flat.size, bool)
    bottom[np.argsort(flat)[:prune.kept_count(0.1, flat.size)]] = True
    np.testing.assert_array_equal(np.concatenate([np.ravel(v) for v in jax.tree.leaves(inverted)]) > 0, bottom)
    iterated = jax.jit(lambda p: prune.prune("synflow", p, None, 0.1, jax.random.key(0), model=deep, iterations=5))(params)
    assert nets.count_active(iterated) == 108 and all(c > 0 for c in weight_counts(iterated))  # 0.1 * 30 * 36
    assert not jax.config.jax_enable_x64  # the x64 scope never leaks


def test_synflow_is_data_free_and_snip_is_not(small):
    params, ds, _ = small
    other = data.make_dataset(jax.random.key(10), data.Gaussian(5), 12)
    kw = dict(model=SMALL, loss="logistic", collapse="allow")
    assert leaves_equal(prune.prune("synflow", params, ds, 0.2, jax.random.key(0), **kw),
                        prune.prune("synflow", params, other, 0.2, jax.random.key(0), **kw))
    assert not leaves_equal(prune.prune("snip", params, ds, 0.2, jax.random.key(0), **kw),
                            prune.prune("snip", params, other, 0.2, jax.random.key(0), **kw))


# ------------------------------------------------------------------------------------------- masking


@pytest.mark.parametrize("method,scope,expected", [(m, "global", [18]) for m in sorted(prune.one_shot_methods())]
                         + [("magnitude", "layer", [11, 6, 1])])
def test_every_method_keeps_exactly_the_rounded_count(small, method, scope, expected):
    params, ds, _ = small
    mask = prune.prune(method, params, ds, 0.3, jax.random.key(11), model=SMALL, loss="logistic", scope=scope,
                       collapse="allow", iterations=3)
    # global: 0.3 * 59 = 17.7 -> 18; layer: 10.5 -> 11 (half up), 6.3 -> 6, 0.9 -> 1
    assert (weight_counts(mask) if scope == "layer" else [nets.count_active(mask)]) == expected
    assert [int(np.count_nonzero(np.asarray(layer["b"]))) for layer in mask] == [7, 3, 1]  # biases untouched
    nets.check_mask(params, mask)


@pytest.mark.parametrize("density,prune_biases,expected", [
    (0.5, False, 30),   # 29.5 rounds half up
    (0.3, True, 21),    # 0.3 * (59 + 11)
    (1.0, False, 59),
    (0.01, False, 1),   # 0.59 -> 1
])
def test_mask_from_scores_count_rule(small, density, prune_biases, expected):
    params, _, _ = small
    mask = prune.mask_from_scores(prune.random(params, jax.random.key(1)), density, "global", jax.random.key(2),
                                  prune_biases=prune_biases, collapse="allow")
    assert nets.count_active(mask, include_biases=prune_biases) == expected == prune.kept_count(density, 70 if prune_biases else 59)
    if not prune_biases:
        assert all(np.all(np.asarray(layer["b"]) == 1) for layer in mask)


def test_ties_are_broken_at_random_by_the_key(small):
    params, _, _ = small
    flat = tuple({k: jnp.zeros_like(v) for k, v in layer.items()} for layer in params)  # all scores tie
    masks = [prune.mask_from_scores(flat, 0.5, "global", jax.random.key(i), collapse="allow") for i in range(200)]
    assert leaves_equal(masks[0], prune.mask_from_scores(flat, 0.5, "global", jax.random.key(0), collapse="allow"))
    assert not leaves_equal(masks[0], masks[1])
    freq = np.mean([np.concatenate([np.ravel(layer["w"]) for layer in m]) for m in masks], axis=0)
    assert np.all(np.abs(freq - 30 / 59) < 5 * np.sqrt(0.25 / 200))  # no index-order bias
    assert {nets.count_active(m) for m in masks} == {30}


def test_existing_mask_is_respected_and_never_regrows(small):
    params, _, mask = small
    scores = prune.random(params, jax.random.key(12))
    new = prune.mask_from_scores(scores, 0.4, "global", jax.random.key(0), mask=mask)
    assert nets.count_active(new) == prune.kept_count(0.4, 59)
    assert all(np.all(np.asarray(n) <= np.asarray(m)) for n, m in zip(jax.tree.leaves(new), jax.tree.leaves(mask)))
    with pytest.raises(ValueError, match="never regrow"):
        prune.mask_from_scores(scores, 0.95, "global", jax.random.key(0), mask=mask)


def test_layer_collapse_is_reported_forbidden_or_prevented(small):
    params, _, _ = small
    scores = tuple({"w": jnp.full_like(l["w"], 3.0 - i) + 0.01 * jax.random.uniform(jax.random.key(i), l["w"].shape),
                    "b": l["b"]} for i, l in enumerate(params))  # layer 0 outranks layer 1 outranks layer 2
    with pytest.warns(prune.LayerCollapseWarning, match=r"\[1, 2\]"):
        collapsed = prune.mask_from_scores(scores, 0.5, "global", jax.random.key(0))
    np.testing.assert_array_equal(prune.layer_collapse(collapsed), [False, True, True])
    with pytest.raises(ValueError, match="collapse"):
        prune.mask_from_scores(scores, 0.5, "global", jax.random.key(0), collapse="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prune.mask_from_scores(scores, 0.5, "global", jax.random.key(0), collapse="allow")
        kept = prune.mask_from_scores(scores, 0.5, "global", jax.random.key(0), collapse="keep_one")
    assert weight_counts(kept) == [28, 1, 1]  # exact total 30: the best weight of layers 1 and 2, then by rank
    for i in (1, 2):
        assert np.asarray(kept[i]["w"]).ravel()[np.argmax(np.asarray(scores[i]["w"]))] == 1
    layer = prune.mask_from_scores(scores, 0.01, "layer", jax.random.key(0), collapse="keep_one")
    assert weight_counts(layer) == [1, 1, 1]
    with pytest.warns(prune.LayerCollapseWarning):  # reported under jit too
        jax.block_until_ready(jax.jit(lambda s: prune.mask_from_scores(s, 0.5, "global", jax.random.key(0)))(scores))
        jax.effects_barrier()


def test_prune_jitted_and_vmapped_equal_eager(small):
    params, ds, _ = small
    keys = jax.random.split(jax.random.key(13), 3)
    stacked = train.stack([SMALL.init(k) for k in keys])
    for method in ("grasp", "synflow"):
        one = functools.partial(prune.prune, method, data=ds, density=0.3, model=SMALL, loss="logistic",
                                collapse="allow", iterations=3)
        assert leaves_equal(jax.jit(one)(params, key=keys[0]), one(params, key=keys[0]))
        batched = jax.vmap(lambda p, k: one(p, key=k))(stacked, keys)
        for i, p in enumerate(train.unstack(stacked)):
            assert leaves_equal(take(batched, i), one(p, key=keys[i]))


# ---------------------------------------------------------------------------------- IMP and MagAfter

TINY = nets.MLP((4, 16, 16, 1))  # 64 + 256 + 16 = 336 weights
FIT = dict(loss="logistic", learning_rate=1e-2, log_every=10)
STEPS = 40


@pytest.fixture(scope="module")
def tiny():
    return TINY.init(jax.random.key(20)), data.make_dataset(jax.random.key(21), data.Gaussian(4), 16)


@pytest.fixture(scope="module")
def imp_run(tiny):
    params, ds = tiny
    return prune.imp(params, ds, model=TINY, rounds=3, steps=STEPS, key=jax.random.key(22), **FIT)


def test_imp_round_r_keeps_0_8_to_the_r_plus_1(imp_run):
    # floor(0.8^(r+1) * 336 + 0.5): 268.8 -> 269, 215.04 -> 215, 172.03 -> 172
    assert [nets.count_active(m) for m in imp_run.masks] == [269, 215, 172]
    assert len(imp_run.params) == len(imp_run.histories) == 3
    assert "noise_corr" in imp_run.histories[0] and imp_run.histories[0]["loss"].shape == (STEPS // 10 + 1,)


def test_imp_prunes_lowest_magnitudes_nested_and_never_regrows(imp_run):
    trained = [imp_run.dense_params, *imp_run.params]
    previous = nets.dense_mask(imp_run.dense_params)
    for r, mask in enumerate(imp_run.masks):
        assert all(np.all(np.asarray(n) <= np.asarray(m)) for n, m in zip(jax.tree.leaves(mask), jax.tree.leaves(previous)))
        magnitude = np.concatenate([np.abs(np.ravel(layer["w"])) for layer in trained[r]])
        keep = np.concatenate([np.ravel(layer["w"]) for layer in mask]) > 0
        was = np.concatenate([np.ravel(layer["w"]) for layer in previous]) > 0
        assert magnitude[was & ~keep].max() <= magnitude[keep].min()
        for p, m in zip(jax.tree.leaves(imp_run.params[r]), jax.tree.leaves(mask)):  # pruned weights exactly zero
            assert np.all(np.asarray(p)[np.asarray(m) == 0] == 0)
        previous = mask


def test_imp_rewinds_to_the_saved_initialization_bit_for_bit(tiny, imp_run):
    params, ds = tiny
    assert leaves_equal(imp_run.rewind_params, params)
    for r, mask in enumerate(imp_run.masks):
        again, history = train.fit(params, mask, ds, model=TINY, steps=STEPS, **FIT)
        assert leaves_equal(again, imp_run.params[r]) and np.array_equal(history["loss"], imp_run.histories[r]["loss"])
    # Without the rewind (continuing from the trained weights, the old Synaptic-Flow bug) the result differs.
    not_rewound, _ = train.fit(imp_run.dense_params, imp_run.masks[0], ds, model=TINY, steps=STEPS, **FIT)
    assert not leaves_equal(not_rewound, imp_run.params[0])


def test_imp_rewinds_to_step_k(tiny):
    params, ds = tiny
    result = prune.imp(params, ds, model=TINY, rounds=2, steps=STEPS, rewind_step=10, key=jax.random.key(23), **FIT)
    saved, _ = train.fit(params, nets.dense_mask(params), ds, model=TINY, steps=10, **{**FIT, "log_every": None})
    assert leaves_equal(result.rewind_params, saved) and not leaves_equal(saved, params)
    for r, mask in enumerate(result.masks):
        again, _ = train.fit(saved, mask, ds, model=TINY, steps=STEPS - 10, **FIT)
        assert leaves_equal(again, result.params[r])
    assert [nets.count_active(m) for m in result.masks] == [269, 215]


def test_imp_and_mag_after_batched_equal_one_by_one():
    keys = jax.random.split(jax.random.key(24), 3)
    params = [TINY.init(k) for k in keys]
    sets = [data.make_dataset(k, data.Gaussian(4), 16) for k in keys]
    batched = prune.imp(train.stack(params), train.stack(sets), model=TINY, rounds=2, steps=STEPS, key=keys,
                        batched=True, **FIT)
    after = prune.mag_after(train.stack(params), train.stack(sets), 0.1, model=TINY, steps=STEPS, key=keys,
                            batched=True, **FIT)
    for i in range(3):
        single = prune.imp(params[i], sets[i], model=TINY, rounds=2, steps=STEPS, key=keys[i], **FIT)
        for r in range(2):
            assert leaves_equal(take(batched.masks[r], i), single.masks[r])
            for a, b in zip(jax.tree.leaves(batched.params[r]), jax.tree.leaves(single.params[r])):
                np.testing.assert_allclose(a[i], b, rtol=2e-4, atol=2e-5)
            np.testing.assert_allclose(batched.histories[r]["noise_corr"][i], single.histories[r]["noise_corr"], rtol=2e-4, atol=1e-5)
        one = prune.mag_after(params[i], sets[i], 0.1, model=TINY, steps=STEPS, key=keys[i], **FIT)
        assert leaves_equal(take(after.masks[0], i), one.masks[0])


def test_mag_after_prunes_the_trained_dense_network_once_and_retrains_from_init(tiny):
    params, ds = tiny
    result = prune.mag_after(params, ds, 0.1, model=TINY, steps=STEPS, key=jax.random.key(25), **FIT)
    (mask,) = result.masks
    assert nets.count_active(mask) == 34  # floor(33.6 + 0.5)
    expected = prune.mask_from_scores(prune.magnitude(result.dense_params), 0.1, "global", jax.random.key(0))
    assert leaves_equal(mask, expected)
    again, _ = train.fit(params, mask, ds, model=TINY, steps=STEPS, **FIT)
    assert leaves_equal(again, result.params[0])


# ------------------------------------------------------------------------------------------- ablations


def test_shuffle_within_layer_keeps_layer_densities(small):
    _, _, mask = small
    shuffled = prune.shuffle_within_layer(mask, jax.random.key(30))
    assert weight_counts(shuffled) == weight_counts(mask)
    assert not leaves_equal(shuffled, mask) and not leaves_equal(shuffled, prune.shuffle_within_layer(mask, jax.random.key(31)))
    assert all(np.array_equal(a["b"], b["b"]) for a, b in zip(shuffled, mask))
    sparse_biases = tuple({**layer, "b": layer["b"].at[0].set(0.0)} for layer in mask)
    with_biases = prune.shuffle_within_layer(sparse_biases, jax.random.key(30), prune_biases=True)
    assert [int(np.sum(np.asarray(l["b"]))) for l in with_biases] == [6, 2, 0]


def test_invert_prunes_the_highest_scores_at_the_same_density(small):
    params, ds, _ = small
    scores = prune.snip(params, ds, model=SMALL, loss="logistic")
    normal = prune.mask_from_scores(scores, 0.5, "global", jax.random.key(0), collapse="allow")
    inverted = prune.mask_from_scores(prune.invert(scores), 0.5, "global", jax.random.key(0), collapse="allow")
    assert nets.count_active(inverted) == nets.count_active(normal) == 30
    s = np.concatenate([np.ravel(l["w"]) for l in scores])
    keep = np.concatenate([np.ravel(l["w"]) for l in inverted]) > 0
    assert s[keep].max() <= s[~keep].min()
    flagged = prune.prune("snip", params, ds, 0.5, jax.random.key(0), model=SMALL, loss="logistic", invert=True, collapse="allow")
    assert leaves_equal(flagged, inverted)


def test_reinit_keeps_the_mask_and_draws_fresh_weights(small):
    _, _, mask = small
    fresh = prune.reinit(mask, jax.random.key(40), model=SMALL)
    assert leaves_equal(fresh, nets.apply_mask(SMALL.init(jax.random.key(40)), mask))
    assert not leaves_equal(fresh, nets.apply_mask(SMALL.init(jax.random.key(0)), mask))
    assert all(np.all(np.asarray(p)[np.asarray(m) == 0] == 0) for p, m in zip(jax.tree.leaves(fresh), jax.tree.leaves(mask)))


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5, float("nan")])
def test_density_outside_unit_interval_is_rejected(small, density):
    params, ds, _ = small
    with pytest.raises(ValueError, match="density"):
        prune.prune("magnitude", params, ds, density, jax.random.key(0), model=SMALL)
    with pytest.raises(ValueError, match="density"):
        prune.mask_from_scores(params, density, "global", jax.random.key(0))


def test_bad_arguments_name_themselves(small, tiny):
    params, ds, mask = small
    key = jax.random.key(0)
    cases = [
        (lambda: prune.prune("obd", params, ds, 0.5, key, model=SMALL), "method"),
        (lambda: prune.prune("magnitude", params, ds, 0.5, key, model=SMALL, scope="row"), "scope"),
        (lambda: prune.prune("magnitude", params, ds, 0.5, key, model=SMALL, collapse="never"), "collapse"),
        (lambda: prune.prune("magnitude", params, ds, 0.5, key, model=nets.MLP((5, 8, 1))), "params"),
        (lambda: prune.prune("magnitude", params, ds, 0.5, key, model=SMALL, mask=mask[:2]), "mask"),
        (lambda: prune.prune("magnitude", params, ds, 0.5, key, model=SMALL,
                             mask=tuple({**l, "w": l["w"].T} for l in mask)), "mask"),
        (lambda: prune.prune("snip", params, None, 0.5, key, model=SMALL), "data"),
        (lambda: prune.prune("magnitude", params, ds, 0.001, key, model=SMALL), "density"),
        (lambda: prune.mask_from_scores(params, 0.5, "global", key, mask=mask[1:]), "mask"),
        (lambda: prune.mask_from_scores(jax.tree.map(lambda a: a * jnp.nan, params), 0.5, "global", key), "NaN"),
        (lambda: prune.mask_from_scores(params, 0.5, "global", key, mask=jax.tree.map(lambda m: 2 * m, mask)), "0 and 1"),
        (lambda: prune.prune("magnitude", params, ds, 0.02, key, model=SMALL, collapse="keep_one"), "keep_one"),
        (lambda: prune.imp(*tiny, model=TINY, rounds=2, steps=STEPS, key=key, rate=1.0), "rate"),
        (lambda: prune.imp(*tiny, model=TINY, rounds=0, steps=STEPS, key=key), "rounds"),
        (lambda: prune.imp(*tiny, model=TINY, rounds=2, steps=STEPS, key=key, rewind_step=STEPS), "rewind_step"),
        (lambda: prune.imp(*tiny, model=TINY, rounds=2, steps=STEPS, key=None), "key"),
        (lambda: prune.imp(*tiny, model=TINY, rounds=2, steps=STEPS, key=key, batched=True), "key"),
        (lambda: prune.imp(*tiny, model=TINY, rounds=2, steps=STEPS, key=key, batched=1), "batched"),
        (lambda: prune.mag_after(*tiny, 1.2, model=TINY, steps=STEPS, key=key), "density"),
        (lambda: prune.grasp(params, ds, model=SMALL, loss="hinge"), "loss"),
    ]
    for call, name in cases:
        with pytest.raises((ValueError, TypeError), match=name):
            call()
