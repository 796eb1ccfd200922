"""The frontier search (lawrob.robust.frontier): its cost against a plain fit, and how close it gets.

(1) cost: wall time of the search (``trials`` constrained trainings, batched over runs) against the plain fit of
    the same networks, warm (compiled once before timing), median of repeats;
(2) closeness, on networks small enough for exact Lipschitz constants (``lipschitz.exact``): the exact constant of
    the network found from seed 0 against the least over >= 20 independent restarts (other initializations and
    training keys, each a full plain fit + search), and on a linear (identity-activation) network against the
    exact minimum, min-norm ridge regression meeting the same MSE;
(3) restarts (the grid key ``robust_restarts``): the 20 restarts split into disjoint groups of R, each group keeping
    its fitting restart of least LipSDP certificate (the sweep's rule), and the kept network's exact constant over
    the best of all 20, median (and worst) over the groups, for R = 1, 2, 4, 5, 10.

    uv run python benchmarks/bench_frontier.py [--restarts 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report  # noqa: E402

from lawrob import data, lipschitz, nets, robust, train  # noqa: E402

N, D, EPS = 48, 3, 0.3
OPTS = dict(steps=600, learning_rate=1e-2, log_every=100)


def batch(model, seeds):
    keys = jax.random.split(jax.random.key(0), seeds)
    dataset = data.make_dataset(jax.random.key(123), data.Gaussian(D), N)  # one data set, several restarts
    stacked = train.stack([dataset] * seeds)
    params = train.stack([model.init(k) for k in keys])
    return keys, dataset, stacked, params, jax.tree.map(jnp.ones_like, params)


def search(model, seeds, trials):
    keys, dataset, stacked, params, mask = batch(model, seeds)
    t0 = time.perf_counter()
    plain, history = jax.block_until_ready(train.fit_batched(params, mask, stacked, model=model, keys=keys, **OPTS))
    t1 = time.perf_counter()
    found = robust.frontier(plain, history, mask, stacked, model=model, keys=keys, eps=EPS, trials=trials, **OPTS)
    t2 = time.perf_counter()
    return dataset, plain, found, mask, t1 - t0, t2 - t1


def exact_constants(model, tree, mask, count):
    return [lipschitz.exact(jax.tree.map(lambda a: a[b], tree), jax.tree.map(lambda a: a[b], mask), model=model).value
            for b in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = nets.MLP((D, 8, 1))
    search(model, args.restarts, args.trials)  # compile
    times = [search(model, args.restarts, args.trials)[4:] for _ in range(args.repeats)]
    dataset, plain, found, mask, _, _ = search(model, args.restarts, args.trials)
    fits = np.asarray(found.history["mse"][:, -1]) <= float(dataset.sigma2) - EPS
    exact = np.array(exact_constants(model, found.params, mask, args.restarts))
    exact_plain = np.array(exact_constants(model, plain, mask, args.restarts))
    best = float(exact[fits].min())
    certified = np.array([lipschitz.upper(jax.tree.map(lambda a: a[b], found.params), jax.tree.map(lambda a: a[b], mask),
                                          model=model, method="lipsdp").value for b in range(args.restarts)])
    rows = {
        "setup": f"d={D}, n={N}, {model.sizes}, eps={EPS}, {OPTS}, trials={args.trials}, restarts={args.restarts}",
        "plain fit seconds (batch of restarts, median)": statistics.median(t for t, _ in times),
        "frontier seconds (same batch, median)": statistics.median(s for _, s in times),
        "frontier / plain time": statistics.median(s / t for t, s in times),
        "restarts that fit": int(fits.sum()),
        "exact Lip, plain fit (seed 0)": float(exact_plain[0]),
        "exact Lip, frontier (seed 0)": float(exact[0]),
        "exact Lip, best of restarts": best,
        "seed 0 / best of restarts": float(exact[0] / best),
        "median over restarts / best": float(np.median(exact[fits]) / best),
    }
    for size in (1, 2, 4, 5, 10):
        kept = [_kept(exact, certified, fits, group) for group in np.arange(args.restarts).reshape(-1, size)]
        ratios = [k / best for k in kept if k is not None]
        rows[f"robust_restarts = {size}: kept / best of {args.restarts}, median (worst) over {len(ratios)} groups"] = (
            f"{np.median(ratios):.3f} ({max(ratios):.3f})")
    linear = nets.MLP((D, 4, 1), activation="identity")
    keys, dataset, stacked, params, lmask = batch(linear, 1)
    lplain, lhistory = train.fit_batched(params, lmask, stacked, model=linear, keys=keys, **OPTS)
    target = float(np.mean((np.asarray(dataset.y) - np.asarray(dataset.y).mean()) ** 2)) * 0.97
    eps = float(dataset.sigma2) - target
    lfound = robust.frontier(lplain, lhistory, lmask, stacked, model=linear, keys=keys, eps=eps, trials=10, **OPTS)
    slope = float(np.linalg.norm(np.asarray(lfound.params[0]["w"][0] @ lfound.params[1]["w"][0])))
    x, y = np.asarray(dataset.x, float), np.asarray(dataset.y, float)
    xc, yc = x - x.mean(0), y - y.mean()
    lo, hi = 1e-12, 1e12
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        w = np.linalg.solve(xc.T @ xc + mid * np.eye(D), xc.T @ yc)
        lo, hi = (mid, hi) if np.mean((xc @ w - yc) ** 2) <= target else (lo, mid)
    optimum = float(np.linalg.norm(np.linalg.solve(xc.T @ xc + lo * np.eye(D), xc.T @ yc)))
    rows |= {"linear: frontier ||W1 W2||": slope, "linear: exact minimum (min-norm ridge)": optimum,
             "linear: frontier / minimum": slope / optimum}
    a = jnp.ones((2048, 2048), jnp.float32)
    jax.block_until_ready(a @ a)
    seconds = statistics.median(_timed(lambda: jax.block_until_ready(a @ a)) for _ in range(5))
    rows["same-process reference: 2048^2 float32 matmul GFLOP/s"] = 2 * 2048**3 / seconds / 1e9
    report("frontier", rows)


def _kept(exact, certified, fits, group):
    """The exact constant of the restart the sweep keeps in ``group``: the fitting one of least certificate."""
    fitting = [i for i in group if fits[i]]
    return float(exact[min(fitting, key=lambda i: certified[i])]) if fitting else None


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
