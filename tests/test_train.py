"""lawrob.train: losses, masks stay exact, batched == one by one, reproducibility, stopping, fitting below noise."""


import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lawrob import _train_run, data, nets, train

MODEL = nets.MLP((8, 32, 32, 1))


def random_mask(params, key, density=0.5):
    keys = jax.random.split(key, len(params))
    return tuple({**jax.tree.map(jnp.ones_like, l), "w": jax.random.bernoulli(k, density, l["w"].shape).astype(l["w"].dtype)}
                 for l, k in zip(params, keys))


@pytest.fixture(scope="module")
def run_inputs():
    params = MODEL.init(jax.random.key(0))
    mask = random_mask(params, jax.random.key(1))
    ds = data.make_dataset(jax.random.key(2), data.Gaussian(8), 64)
    return params, mask, ds


def test_per_example_losses_match_numpy():
    f = jnp.array([[0.3], [-1.2], [2.0]])
    y = jnp.array([1.0, 1.0, -1.0])
    np.testing.assert_allclose(train.per_example_loss("mse", f, y), (np.array([0.3, -1.2, 2.0]) - [1, 1, -1]) ** 2, rtol=1e-6)
    np.testing.assert_allclose(train.per_example_loss("logistic", f, y),
                               np.log1p(np.exp(-np.array([0.3, -1.2, -2.0]))), rtol=1e-6)
    logits = jnp.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    classes = jnp.array([1, 0])
    expected = [-(2.0 - np.log(np.exp([1, 2, 0.5]).sum())), -(0.0 - np.log(np.exp([0, -1, 3.0]).sum()))]
    np.testing.assert_allclose(train.per_example_loss("cross_entropy", logits, classes), expected, rtol=1e-6)
    np.testing.assert_allclose(train.accuracy("cross_entropy", logits, classes), 0.5)
    np.testing.assert_allclose(train.noise_correlation(jnp.array([1.0, 3.0]), jnp.array([0.5, -1.0]), 2.0),
                               ((1 - 2) * 0.5 + (3 - 2) * -1.0) / 2)


def test_masked_weights_stay_exactly_zero(run_inputs):
    params, mask, ds = run_inputs
    out, _ = train.fit(params, mask, ds, model=MODEL, steps=50, learning_rate=1e-2, grad_noise=0.1, key=jax.random.key(3))
    for p, m in zip(jax.tree.leaves(out), jax.tree.leaves(mask)):
        assert np.all(np.asarray(p)[np.asarray(m) == 0] == 0.0)
        assert np.count_nonzero(np.asarray(p)[np.asarray(m) == 1]) > 0.9 * np.asarray(m).sum()


def test_same_key_same_result_and_key_matters(run_inputs):
    params, mask, ds = run_inputs
    kw = dict(model=MODEL, steps=40, batch_size=16, log_every=10)
    a, ha = train.fit(params, mask, ds, key=jax.random.key(9), **kw)
    b, hb = train.fit(params, mask, ds, key=jax.random.key(9), **kw)
    c, _ = train.fit(params, mask, ds, key=jax.random.key(10), **kw)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(ha["loss"], hb["loss"])
    assert not np.array_equal(a[0]["w"], c[0]["w"])


def test_minibatches_cover_each_epoch():
    cfg = train.TrainConfig(model=MODEL, steps=8, batch_size=4)
    ds = data.make_dataset(jax.random.key(0), data.Gaussian(8), 16)
    seen = np.concatenate([np.asarray(_train_run._minibatch(cfg, ds, jax.random.key(1), jnp.asarray(t))[0]) for t in range(4)])
    assert sorted(map(tuple, seen.round(6))) == sorted(map(tuple, np.asarray(ds.x).round(6)))


@pytest.mark.parametrize("chunk_size", [None, 2, "auto"])
def test_batched_equals_one_by_one(chunk_size):
    keys = jax.random.split(jax.random.key(4), 4)
    params = [MODEL.init(k) for k in keys]
    masks = [random_mask(p, k) for p, k in zip(params, keys)]
    sets = [data.make_dataset(k, data.Gaussian(8), 32, "linear", "uniform", amplitude=0.5) for k in keys]
    lrs = jnp.array([1e-3, 3e-3, 1e-2, 2e-3])
    kw = dict(model=MODEL, steps=30, log_every=10, batch_size=8)
    out_b, hist_b = train.fit_batched(train.stack(params), train.stack(masks), train.stack(sets), keys=keys,
                                      learning_rate=lrs, chunk_size=chunk_size, **kw)
    for i, out_i in enumerate(train.unstack(out_b)):
        single, hist = train.fit(params[i], masks[i], sets[i], key=keys[i], learning_rate=float(lrs[i]), **kw)
        for x, y in zip(jax.tree.leaves(out_i), jax.tree.leaves(single)):
            np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(hist_b["loss"][i], hist["loss"], rtol=2e-4, atol=1e-5)


def test_stop_loss_freezes_the_run(run_inputs):
    params, mask, ds = run_inputs
    stopped, hist = train.fit(params, mask, ds, model=MODEL, steps=100, log_every=20, stop_loss=100.0)
    short, _ = train.fit(params, mask, ds, model=MODEL, steps=20)
    full, _ = train.fit(params, mask, ds, model=MODEL, steps=100, log_every=20)
    assert int(hist["steps_run"]) == 20 and bool(hist["stopped"][-1]) and not bool(hist["stopped"][0])
    # two compiled programs (one loop trip against five) may round differently in the last float32 bit, so equal
    # up to 1e-6 relative; the 80 steps a frozen run skips move the weights by far more than that
    for x, y, z in zip(jax.tree.leaves(stopped), jax.tree.leaves(short), jax.tree.leaves(full)):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
        assert np.max(np.abs(np.asarray(z) - np.asarray(y))) > 1e-3
    assert list(np.asarray(hist["step"])) == [0, 20, 40, 60, 80, 100]


def test_stop_delta_and_patience(run_inputs):
    params, mask, ds = run_inputs
    _, hist = train.fit(params, mask, ds, model=MODEL, steps=400, log_every=20, learning_rate=1e-2, stop_delta=1e-2)
    loss = np.asarray(hist["loss"])
    k = int(hist["steps_run"]) // 20
    assert k < 20 and abs(loss[k - 1] - loss[k]) < 1e-2 and np.all(np.abs(np.diff(loss[:k])) >= 1e-2)
    _, hist = train.fit(params, mask, ds, model=MODEL, steps=400, log_every=20, learning_rate=1e-2, stop_patience=3)
    acc = np.asarray(hist["accuracy"])
    k = int(hist["steps_run"]) // 20
    assert k < 20 and acc[k] == acc[k - 1] == acc[k - 2] == acc[k - 3]


def test_min_steps_is_a_fixed_budget_before_the_stop_rules(run_inputs):
    params, mask, ds = run_inputs
    # stop_loss 100 stops every run at its first log; with min_steps 60 the rule waits until step 60
    _, hist = train.fit(params, mask, ds, model=MODEL, steps=100, log_every=20, stop_loss=100.0, min_steps=60)
    assert int(hist["steps_run"]) == 60 and list(np.asarray(hist["stopped"])) == [False, False, False, True, True, True]
    _, hist = train.fit(params, mask, ds, model=MODEL, steps=100, log_every=20, stop_loss=1e-9, min_steps=60)
    assert int(hist["steps_run"]) == 100  # the rule never fires: the cap
    with pytest.raises(ValueError, match="min_steps must be at most steps=100"):
        train.fit(params, mask, ds, model=MODEL, steps=100, min_steps=120)
    with pytest.raises(ValueError, match="min_steps"):
        train.fit(params, mask, ds, model=MODEL, steps=100, min_steps=0)


def test_the_block_loop_ends_at_the_stop_and_repeats_its_logs():
    def block(carry, b):  # counts the blocks it runs; the run stops in block 2 (a frozen run's logs repeat)
        count, blocks_run, done = carry  # done at carry[2], as in _train's carry
        count = jnp.where(done, count, count + 1)
        done = done | (b == 2)
        return (count, blocks_run + 1, done), {"loss": count * 1.0, "step": (b + 1) * 5, "stopped": done}

    start = (jnp.asarray(0), jnp.asarray(0), jnp.asarray(False))
    (count, blocks_run, done), history = _train_run._blocks_until_stopped(block, start, 6, 5)
    assert int(count) == 3 and int(blocks_run) == 3 and bool(done)  # blocks 3, 4 and 5 were not run
    _, scanned = jax.lax.scan(block, start, jnp.arange(6))  # every block run
    for name in ("loss", "step", "stopped"):
        np.testing.assert_array_equal(history[name], scanned[name])
        assert history[name].dtype == scanned[name].dtype
    assert list(np.asarray(history["loss"])) == [1, 2, 3, 3, 3, 3]


def test_batched_runs_stop_each_at_its_own_log():
    keys = jax.random.split(jax.random.key(5), 3)
    params = [MODEL.init(k) for k in keys]
    sets = [data.make_dataset(k, data.Gaussian(8), 32, "linear", "uniform", amplitude=0.5) for k in keys]
    masks = [nets.dense_mask(p) for p in params]
    lrs = jnp.array([3e-2, 3e-3, 1e-4])
    kw = dict(model=MODEL, steps=200, log_every=10, stop_delta=2e-3)
    out_b, hist_b = train.fit_batched(train.stack(params), train.stack(masks), train.stack(sets), keys=keys,
                                      learning_rate=lrs, **kw)
    stops = np.asarray(hist_b["steps_run"])
    assert len(set(stops.tolist())) > 1 and stops.min() < 200  # the runs stop at different logs
    for i, out_i in enumerate(train.unstack(out_b)):
        single, hist = train.fit(params[i], masks[i], sets[i], key=keys[i], learning_rate=float(lrs[i]), **kw)
        assert int(hist["steps_run"]) == stops[i]
        for x, y in zip(jax.tree.leaves(out_i), jax.tree.leaves(single)):
            np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5)
        k = stops[i] // 10
        loss = np.asarray(hist_b["loss"][i])
        np.testing.assert_allclose(loss, hist["loss"], rtol=2e-4, atol=1e-5)
        assert np.all(loss[k:] == loss[k]) and np.all(np.asarray(hist_b["stopped"][i])[k:])
        np.testing.assert_array_equal(hist_b["step"][i], np.arange(21) * 10)


def test_optimizer_state_continues_a_training(run_inputs):
    params, mask, ds = run_inputs
    options = dict(model=MODEL, learning_rate=1e-2)
    whole, _ = train.fit(params, mask, ds, steps=60, **options)
    half, _, state = train.fit(params, mask, ds, steps=30, return_state=True, **options)
    assert int(state[0].count) == 30  # Adam's step count
    continued, _ = train.fit(half, mask, ds, steps=30, optimizer_state=state, **options)
    restarted, _ = train.fit(half, mask, ds, steps=30, **options)  # a fresh state: another trajectory
    for x, y, z in zip(jax.tree.leaves(whole), jax.tree.leaves(continued), jax.tree.leaves(restarted)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    assert max(float(np.max(np.abs(np.asarray(x) - np.asarray(z))))
               for x, z in zip(jax.tree.leaves(whole), jax.tree.leaves(restarted))) > 1e-3
    # batched: one state per run, the same continuation run by run
    stacked = train.stack([params, params])
    masks, sets, keys = train.stack([mask, mask]), train.stack([ds, ds]), jax.random.split(jax.random.key(3), 2)
    whole_b, _ = train.fit_batched(stacked, masks, sets, keys=keys, steps=60, **options)
    half_b, _, state_b = train.fit_batched(stacked, masks, sets, keys=keys, steps=30, return_state=True, **options)
    continued_b, _ = train.fit_batched(half_b, masks, sets, keys=keys, steps=30, optimizer_state=state_b, **options)
    for x, y in zip(jax.tree.leaves(whole_b), jax.tree.leaves(continued_b)):
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="optimizer_state must .*leading run axis"):
        train.fit_batched(stacked, masks, sets, keys=keys, steps=30, optimizer_state=state, **options)


def test_fits_random_labels_below_the_noise_level():
    """An overparametrized MLP memorizes pure +-1 labels: train MSE < sigma2 - eps with eps = 0.5."""
    ds = data.make_dataset(jax.random.key(5), data.Gaussian(16), 128)
    model = nets.MLP((16, 256, 256, 1))
    params = model.init(jax.random.key(6))
    _, hist = train.fit(params, nets.dense_mask(params), ds, model=model, steps=600, learning_rate=3e-3, log_every=100)
    assert float(hist["mse"][-1]) < float(ds.sigma2) - 0.5
    assert float(hist["noise_corr"][-1]) > 0.5  # fitting below the noise forces correlation with it (BS Lemma 2.1)


def test_classification_with_cross_entropy():
    x = jax.random.normal(jax.random.key(0), (60, 5))
    y = np.asarray(jnp.argmax(x[:, :3], axis=1))
    ds = data.from_arrays(np.asarray(x), y, classes=3)
    model = nets.MLP((5, 32, 3))
    params = model.init(jax.random.key(1))
    _, hist = train.fit(params, nets.dense_mask(params), ds, model=model, steps=300, learning_rate=1e-2, loss="cross_entropy",
                        optimizer=optax.adam)
    assert float(hist["accuracy"][-1]) > 0.9 and "noise_corr" not in hist


def test_grad_noise_changes_training(run_inputs):
    params, mask, ds = run_inputs
    a, _ = train.fit(params, mask, ds, model=MODEL, steps=10, key=jax.random.key(0))
    b, _ = train.fit(params, mask, ds, model=MODEL, steps=10, key=jax.random.key(0), grad_noise=0.5)
    assert not np.allclose(a[0]["w"], b[0]["w"])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"steps": 10, "log_every": 3}, "log_every must divide"),
        ({"steps": 10, "loss": "hinge"}, "loss must be one of"),
        ({"steps": 10, "optimizer": "lbfgs"}, "optimizer must be one of"),
        ({"steps": 10, "learning_rate": 0.0}, "learning_rate must lie in"),
        ({"steps": 10, "batch_size": 4}, "key is required"),
        ({"steps": 10, "grad_noise": -1.0}, "grad_noise must lie in"),
    ],
)
def test_fit_bad_options(run_inputs, kwargs, match):
    params, mask, ds = run_inputs
    with pytest.raises((ValueError, TypeError), match=match):
        train.fit(params, mask, ds, model=MODEL, **kwargs)


def test_fit_bad_structures(run_inputs):
    params, mask, ds = run_inputs
    with pytest.raises(ValueError, match="mask"):
        train.fit(params, mask[:1], ds, model=MODEL, steps=5)
    other = data.make_dataset(jax.random.key(0), data.Gaussian(3), 10)
    with pytest.raises(ValueError, match=r"data.x must have shape \[n, 8\]"):
        train.fit(params, mask, other, model=MODEL, steps=5)
    with pytest.raises(TypeError, match="Dataset"):
        train.fit(params, mask, (ds.x, ds.y), model=MODEL, steps=5)
    with pytest.raises(ValueError, match="leading run axis"):
        train.fit_batched(train.stack([params] * 2), train.stack([mask] * 3), train.stack([ds] * 2), model=MODEL, steps=5,
                          keys=jax.random.split(jax.random.key(0), 2))


def test_sharded_over_forced_cpu_devices_equals_one_device():
    """The run axis split over 4 forced CPU devices (with padding: 6 runs) gives the single-device results."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
        import jax, numpy as np
        from lawrob import data, nets, train
        m = nets.MLP((8, 16, 1))
        keys = jax.random.split(jax.random.key(0), 6)
        P = train.stack([m.init(k) for k in keys])
        M = train.stack([nets.dense_mask(m.init(keys[0]))] * 6)
        D = train.stack([data.make_dataset(k, data.Gaussian(8), 20) for k in keys])
        assert len(jax.devices()) == 4
        a, ha = train.fit_batched(P, M, D, model=m, steps=20, keys=keys)
        b, hb = train.fit_batched(P, M, D, model=m, steps=20, keys=keys, devices=jax.devices()[:1])
        assert ha["loss"].shape == (6, 2)
        np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-6)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
        print("OK")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-2000:]


def test_config_equals_keywords_exactly(run_inputs):
    """fit/fit_batched with config=TrainConfig(...) give bit for bit what the same settings as keywords give."""
    params, mask, ds = run_inputs
    settings = dict(model=MODEL, steps=20, loss="logistic", optimizer="sgd", batch_size=16, log_every=5, stop_patience=50)
    cfg = train.TrainConfig(**settings)
    per_run = dict(learning_rate=3e-3, grad_noise=0.01, key=jax.random.key(7))
    by_config = train.fit(params, mask, ds, config=cfg, **per_run)
    by_keywords = train.fit(params, mask, ds, **settings, **per_run)
    chex.assert_trees_all_equal(by_config, by_keywords)
    keys = jax.random.split(jax.random.key(8), 3)
    batch = train.stack([params] * 3), train.stack([mask] * 3), train.stack([ds] * 3)
    by_config = train.fit_batched(*batch, config=cfg, keys=keys, learning_rate=jnp.array([1e-3, 2e-3, 3e-3]))
    by_keywords = train.fit_batched(*batch, **settings, keys=keys, learning_rate=jnp.array([1e-3, 2e-3, 3e-3]))
    chex.assert_trees_all_equal(by_config, by_keywords)


def test_config_and_its_fields_conflict(run_inputs):
    params, mask, ds = run_inputs
    cfg = train.TrainConfig(model=MODEL, steps=5)
    with pytest.raises(TypeError, match=r"^fit got config and its field\(s\) steps"):
        train.fit(params, mask, ds, config=cfg, steps=5)
    with pytest.raises(TypeError, match=r"^fit got config and its field\(s\) model, batch_size"):
        train.fit(params, mask, ds, config=cfg, model=MODEL, batch_size=None)
    with pytest.raises(TypeError, match=r"^fit_batched got config and its field\(s\) loss"):
        train.fit_batched(train.stack([params]), train.stack([mask]), train.stack([ds]), config=cfg, loss="mse",
                          keys=jax.random.split(jax.random.key(0), 1))
    with pytest.raises(TypeError, match=r"^fit got unexpected keyword\(s\) chunk_size"):
        train.fit(params, mask, ds, config=cfg, chunk_size=2)
    with pytest.raises(TypeError, match=r"^config must be a lawrob\.train\.TrainConfig"):
        train.fit(params, mask, ds, config={"model": MODEL, "steps": 5})
    with pytest.raises(TypeError, match=r"^fit needs config=TrainConfig\(\.\.\.\) or the keyword\(s\) steps"):
        train.fit(params, mask, ds, model=MODEL)


def test_fit_batched_compiles_once_per_shape(batched_training_traces):
    """Repeated fit_batched calls with the same shapes and settings trace the batched training once."""
    m = nets.MLP((4, 8, 1))
    keys = jax.random.split(jax.random.key(0), 3)
    P = train.stack([m.init(k) for k in keys])
    M = train.stack([nets.dense_mask(m.init(keys[0]))] * 3)
    for seed in range(3):  # other values, same shapes
        D = train.stack([data.make_dataset(k, data.Gaussian(4), 10) for k in jax.random.split(jax.random.key(seed), 3)])
        jax.block_until_ready(train.fit_batched(P, M, D, model=m, steps=4, keys=keys, learning_rate=1e-3 * (seed + 1)))
    assert len(batched_training_traces) == 1
