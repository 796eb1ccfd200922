"""The most robust interpolator (lawrob.robust and the grid objective "robust"): the search never returns a
network that does not fit, gets near a known minimum, and its rows are certified like every other run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lawrob import data, lipschitz, nets, robust, train
from lawrob.sweep import Grid, load, load_params, plan, run

OPTS = dict(steps=1000, learning_rate=1e-2, log_every=250)


def _batch(model, n, d, seeds):
    keys = jax.random.split(jax.random.key(0), seeds)
    sets = [data.make_dataset(jax.random.fold_in(k, 1), data.Gaussian(d), n) for k in keys]
    params = train.stack([model.init(k) for k in keys])
    return keys, sets, params, jax.tree.map(jnp.ones_like, params)


def min_norm_linear(x, y, mse_max):
    """min ||w|| over affine maps x.w + b with mean squared error <= mse_max: ridge regression with an unpenalised
    bias, its penalty bisected (on a log scale) to the largest one whose fit still meets mse_max."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    xc, yc = x - x.mean(0), y - y.mean()
    solve = lambda lam: np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ yc)  # noqa: E731
    mse = lambda w: np.mean((xc @ w - yc) ** 2)  # noqa: E731
    lo, hi = 1e-12, 1e12
    assert mse(solve(lo)) <= mse_max < mse(solve(hi))
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if mse(solve(mid)) <= mse_max else (lo, mid)
    return float(np.linalg.norm(solve(lo)))


def test_constrained_training_holds_the_spectral_product_at_the_target():
    model = nets.MLP((4, 8, 8, 1))
    keys, sets, params, mask = _batch(model, 32, 4, 2)
    trained, _ = train.fit_batched(params, mask, train.stack(sets), model=model, keys=keys,
                                   max_lipschitz=jnp.asarray([2.0, 0.5]), **OPTS)
    exact = [np.prod([np.linalg.norm(np.asarray(layer["w"][b]), 2) for layer in trained]) for b in range(2)]
    assert exact == pytest.approx([2.0, 0.5], rel=1e-3)
    assert np.asarray(robust.spectral_product(trained)) == pytest.approx(exact, rel=1e-5)
    free, _ = train.fit(jax.tree.map(lambda a: a[0], params), jax.tree.map(lambda a: a[0], mask), sets[0],
                        model=model, **OPTS)
    assert float(robust.spectral_product(free)) > 2.0  # the constraint is active
    with pytest.raises(ValueError, match="max_lipschitz must lie in"):
        train.fit(free, nets.dense_mask(free), sets[0], model=model, max_lipschitz=0.0, **OPTS)


def test_the_frontier_of_a_linear_network_is_near_the_minimum_norm_fit():
    # an identity-activation network computes x.(W1 W2) + b with Lipschitz constant ||W1 W2||: the most robust
    # fit with MSE <= sigma2 - eps is min-norm ridge regression (computed exactly above)
    model, eps = nets.MLP((6, 4, 1), activation="identity"), 0.05
    keys, sets, params, mask = _batch(model, 64, 6, 2)
    stacked = train.stack(sets)
    plain, history = train.fit_batched(params, mask, stacked, model=model, keys=keys, **OPTS)
    found = robust.frontier(plain, history, mask, stacked, model=model, keys=keys, eps=eps, trials=10, **OPTS)
    for b, dataset in enumerate(sets):
        one = jax.tree.map(lambda a: a[b], found.params)
        slope = float(np.linalg.norm(np.asarray(one[0]["w"] @ one[1]["w"])))
        best = min_norm_linear(dataset.x, dataset.y, float(dataset.sigma2) - eps)
        assert float(found.history["mse"][b, -1]) <= float(dataset.sigma2) - eps  # it fits
        assert best * (1 - 1e-4) <= slope <= 1.3 * best  # never below the minimum, and near it (found: 1.12-1.19)
        assert found.trials_fit[b] >= 1 and slope <= found.target[b] * (1 + 1e-3)
        assert found.steps[b] == 11 * OPTS["steps"]


def test_a_run_that_does_not_fit_keeps_its_plain_fit():
    model = nets.MLP((6, 2, 1), activation="identity")  # cannot fit random labels below 1 - 0.5
    keys, sets, params, mask = _batch(model, 64, 6, 1)
    stacked = train.stack(sets)
    plain, history = train.fit_batched(params, mask, stacked, model=model, keys=keys, **OPTS)
    found = robust.frontier(plain, history, mask, stacked, model=model, keys=keys, eps=0.5, trials=2, **OPTS)
    assert found.target[0] == np.inf and found.trials_fit[0] == 0
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(found.params), jax.tree.leaves(plain)))


def test_the_grid_objective_robust_is_certified_resumed_and_validated(tmp_path, caplog):
    grid = Grid(fixed={"d": 3, "n": 32, "width": 8, "depth": 1, "steps": 300, "log_every": 100, "learning_rate": 1e-2,
                       "lip_search_starts": 8, "robust_trials": 4, "lip_exact_max_hidden": 8},
                axes={"objective": ["fit", "robust"]}, seeds=1, save_params=True)
    rows = {r["objective"]: r for r in run(grid, tmp_path, progress=False)}
    fit, frontier = rows["fit"], rows["robust"]
    assert fit["fits_below_noise"] and frontier["fits_below_noise"]  # the search never reports a non-fit
    assert frontier["train_mse"] <= frontier["sigma2"] - frontier["eps"]
    assert frontier["lip_upper"] < fit["lip_upper"] and frontier["robust_target"] is not None
    assert frontier["train_steps_total"] == 5 * 300 and fit["train_steps_total"] == 300
    assert frontier["lip_lower"] <= frontier["lip_exact"] <= frontier["lip_upper"] * (1 + 1e-9)
    params, mask = load_params(tmp_path, frontier["config_hash"])  # the bracket recomputed from the saved network
    model = nets.MLP((3, 8, 1))
    assert lipschitz.upper(params, mask, model=model, method=frontier["lip_upper_method"]).value == pytest.approx(
        frontier["lip_upper"], rel=1e-6)
    assert lipschitz.exact(params, mask, model=model).value == pytest.approx(frontier["lip_exact"], rel=1e-9)
    assert frontier["upper_over_scaling"] == pytest.approx(frontier["lip_upper"] / np.sqrt(32 * 3 / frontier["active"]))
    caplog.clear()  # only the rerun's messages
    with caplog.at_level("INFO", logger="lawrob"):
        again = run(grid, tmp_path, progress=False)
    assert "0 to do" in caplog.messages[0] and len(again) == 2
    with pytest.raises(ValueError, match="grid key 'objective' must be one of"):
        Grid(fixed={"objective": "robustest"})
    with pytest.raises(ValueError, match="grid key 'robust_spread' must lie in"):
        Grid(fixed={"robust_spread": 1.0})


def test_restarts_keep_the_restart_with_the_smallest_certified_upper_bound(tmp_path):
    """The row of a run with robust_restarts = 3 against the search redone here from the documented restart keys:
    restart r starts from init key fold_in(init key, r) with training key fold_in(training key, r); the row keeps
    the fitting restart whose certificate by the grid's method is smallest."""
    fixed = {"d": 3, "n": 32, "width": 8, "depth": 1, "steps": 300, "log_every": 100, "learning_rate": 1e-2,
             "lip_search_starts": 8, "robust_trials": 3, "lip_exact_max_hidden": 8, "objective": "robust",
             "upper_method": "lipsdp", "robust_restarts": 3}
    grid = Grid(fixed=fixed, seeds=1, save_params=True)
    row, = run(grid, tmp_path, progress=False)
    config, keys = grid.runs()[0].config, grid.runs()[0].keys
    model = nets.MLP((3, 8, 1))
    dataset = data.make_dataset(keys.data, data.Gaussian(3), 32)
    init_keys = [keys.init] + [jax.random.fold_in(keys.init, r) for r in (1, 2)]
    train_keys = jnp.stack([keys.train] + [jax.random.fold_in(keys.train, r) for r in (1, 2)])
    mask = jax.tree.map(jnp.ones_like, model.init(keys.init))
    opts = dict(steps=300, log_every=100, learning_rate=1e-2)
    own = train.fit_batched(train.stack([model.init(keys.init)]), train.stack([mask]), train.stack([dataset]),
                            model=model, keys=train_keys[:1], **opts)
    more = train.fit_batched(train.stack([model.init(k) for k in init_keys[1:]]), train.stack([mask] * 2),
                             train.stack([dataset] * 2), model=model, keys=train_keys[1:], **opts)
    plain, history = (jax.tree.map(lambda a, b: np.concatenate([a, b]), x, y) for x, y in zip(own, more))
    found = robust.frontier(plain, history, train.stack([mask] * 3), train.stack([dataset] * 3), model=model,
                            keys=train_keys, eps=config.eps, trials=3, **opts)
    mse = np.asarray(found.history["mse"][:, -1])
    fitted = [r for r in range(3) if mse[r] <= float(dataset.sigma2) - config.eps]
    uppers = {r: lipschitz.upper(jax.tree.map(lambda a: a[r], found.params), mask, model=model, method="lipsdp").value
              for r in fitted}
    best = min(uppers, key=uppers.get)
    assert row["fits_below_noise"] and row["robust_restarts_fit"] == len(fitted) >= 2
    assert row["robust_restart"] == best and row["lip_upper"] == pytest.approx(uppers[best], rel=1e-6)
    assert row["robust_restart_spread"] == pytest.approx(max(uppers.values()) / min(uppers.values()), rel=1e-6)
    assert row["train_steps_total"] == int(found.steps.sum())
    saved, _ = load_params(tmp_path, row["config_hash"])
    for got, want in zip(jax.tree.leaves(saved), jax.tree.leaves(jax.tree.map(lambda a: a[best], found.params))):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    frame = load(tmp_path)  # the new columns read back with their declared types
    assert str(frame["robust_restart"].dtype) == "Int64" and str(frame["robust_restart_spread"].dtype) == "Float64"
    one = plan(Grid(fixed=fixed | {"robust_restarts": 1}))["estimated_seconds"]
    assert plan(grid)["estimated_seconds"] > one  # the plan counts the restarts' fits, searches and certificates
    with pytest.raises(ValueError, match="'robust_restarts' .* needs objective = 'robust'"):
        Grid(fixed={"robust_restarts": 2}).runs()
    with pytest.raises(ValueError, match="grid key 'robust_restarts'"):
        Grid(fixed={"objective": "robust", "robust_restarts": 0})
