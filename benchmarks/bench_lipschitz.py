"""Benchmarks of lawrob.lipschitz (issue 4); the recorded numbers are in benchmarks/RESULTS.md.

    cd /work/main && uv run python benchmarks/bench_lipschitz.py [exact] [lower-small] [lower-wide] [upper-trained]
                                                                  [lipsdp-solvers]

exact          median time of ``exact`` on random (torch-init) ReLU nets: d = 2 width 8 (also the scipy LP path
               and a brute-force loop with one LP per pattern), d = 4 width 16, d = 3 two hidden layers of 8.
lower-small    the search on 100 random small sparse nets vs ``exact``: fraction reaching 0.99 of exact, time.
lower-wide     the search vs random sampling with the same number of gradient evaluations, width-256 nets.
upper-trained  upper bounds on trained two-hidden-layer MLPs (random labels, memorised): method / product.
lipsdp-solvers LipSDP-Neuron on trained MLPs by the barrier method (warm median of 3) against cvxpy's SCS and
               Clarabel (Clarabel only while N <= 80): seconds and bound / barrier bound.
"""

from __future__ import annotations

import itertools
import math
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linprog

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

from lawrob import data, nets, train  # noqa: E402
from lawrob.lipschitz import SearchConfig, exact, lower, lower_batch, upper  # noqa: E402
from lawrob.lipschitz import _lower_search, _search_net  # noqa: E402
from lawrob.lipschitz._network import prepare  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def random_mask(params, density, seed):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda p: jnp.asarray(rng.random(p.shape) < density if p.ndim == 2 else np.ones(p.shape),
                                              p.dtype), params)


def all_patterns_exact(params):
    """The reference loop of the issue: one LP per activation pattern of a one-hidden-layer net."""
    net = prepare(params, None, None)
    w, b, v = net.weights[0], net.biases[0], net.weights[1]
    d, h = w.shape
    norms = np.linalg.norm(w, axis=0)
    best = 0.0
    for pattern in itertools.product([0.0, 1.0], repeat=h):
        sign = 2 * np.array(pattern) - 1
        res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.hstack([-(sign * w).T, norms[:, None]]), b_ub=sign * b,
                      bounds=[(None, None)] * d + [(None, 1.0)], method="highs")
        if res.status == 0 and -res.fun > 1e-9:
            best = max(best, np.linalg.norm((w * np.array(pattern)) @ v))
    return best


def bench_exact(nets_per_arch=5, repeats=3):
    out = {}
    for sizes, solvers in (((2, 8, 1), ("highspy", "scipy", "all-patterns")), ((4, 16, 1), ("highspy",)),
                           ((3, 8, 8, 1), ("highspy",))):
        model = nets.MLP(sizes)
        for solver in solvers:
            times, regions, lps = [], [], []
            for seed in range(nets_per_arch):
                params = model.init(jax.random.key(seed))
                for _ in range(repeats):
                    if solver == "all-patterns":
                        _, seconds = timed(lambda: all_patterns_exact(params))
                    else:
                        bound, seconds = timed(lambda: exact(params, None, solver=solver))
                        regions.append(bound.details["regions"])
                        lps.append(bound.details["lps"])
                    times.append(seconds)
            out[f"{sizes} {solver}"] = {"median_s": statistics.median(times), "max_s": max(times),
                                        "median_regions": statistics.median(regions) if regions else None,
                                        "median_lps": statistics.median(lps) if lps else None, "runs": len(times)}
    return out


SMALL_ARCHS = [(2, 8, 1), (3, 8, 1), (2, 6, 6, 1), (3, 8, 8, 1), (4, 12, 1), (2, 5, 5, 5, 1)]


def bench_lower_small(total=100):
    counts = [total // len(SMALL_ARCHS) + (i < total % len(SMALL_ARCHS)) for i in range(len(SMALL_ARCHS))]
    ratios, per_net, single, compile_s, exact_s = [], [], [], [], []
    for arch_index, (sizes, count) in enumerate(zip(SMALL_ARCHS, counts)):
        model = nets.MLP(sizes)
        params = [model.init(k) for k in jax.random.split(jax.random.key(arch_index), count)]
        masks = [random_mask(p, (1.0, 0.6, 0.35)[b % 3], 1000 * arch_index + b) for b, p in enumerate(params)]
        stacked = [jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees) for trees in (params, masks)]
        key = jax.random.key(100 + arch_index)
        _, first = timed(lambda: lower_batch(*stacked, key=key))
        bounds, seconds = timed(lambda: lower_batch(*stacked, key=key))
        compile_s.append(first - seconds)
        per_net.append(seconds / count)
        for b, (p, m) in enumerate(zip(params, masks)):
            reference, t_exact = timed(lambda: exact(p, m))
            exact_s.append(t_exact)
            ratios.append(bounds[b].value / reference.value if reference.value > 0 else 1.0)
            if b < 5:  # single calls, compiled once per architecture already
                lower(p, m, key=key)
                single.append(timed(lambda: lower(p, m, key=key))[1])
    ratios = np.array(ratios)
    return {"nets": len(ratios), "architectures": [str(s) for s in SMALL_ARCHS], "densities": [1.0, 0.6, 0.35],
            "fraction_at_least_0.99": float(np.mean(ratios >= 0.99)), "min_ratio": float(ratios.min()),
            "median_ratio": float(np.median(ratios)), "lower_batch_seconds_per_net_median": statistics.median(per_net),
            "lower_single_call_seconds_median": statistics.median(single),
            "compile_seconds_per_architecture_median": statistics.median(compile_s),
            "exact_seconds_median": statistics.median(exact_s), "config": repr(SearchConfig())}


def bench_lower_wide(d=16, width=256, seeds=3):
    """Search vs random sampling (same number of gradient evaluations) on d -> 256 -> 256 -> 1 ReLU nets."""
    model = nets.MLP((d, width, width, 1))
    cfg = SearchConfig()
    rows = []
    for seed in range(seeds):
        params = model.init(jax.random.key(seed))
        data_x = np.asarray(jax.random.normal(jax.random.key(50 + seed), (256, d)))
        lower(params, None, key=jax.random.key(seed), points=data_x)
        found, search_s = timed(lambda: lower(params, None, key=jax.random.key(seed), points=data_x))
        net = prepare(params, None, None)
        with jax.enable_x64(True):
            arrays = _lower_search._arrays(net)
            jnet = _search_net._JaxNet(*arrays, "relu", None)
            score = jax.jit(jnet.scores)
            grad_ascent = jax.jit(lambda x: jax.vmap(jax.grad(lambda y: jnet.jacobian_norm(y)))(x))
            probe = jnp.zeros((4096, d))
            jax.block_until_ready(score(probe))
            _, score_s = timed(lambda: jax.block_until_ready(score(probe)))
            jax.block_until_ready(grad_ascent(probe[:512]))
            _, second_s = timed(lambda: jax.block_until_ready(grad_ascent(probe[:512])))
            cost = max(2, math.ceil((second_s / 512) / (score_s / 4096)))  # a smoothed step, in gradient evaluations
            budget = found.details["evaluations"] + cost * found.details["smoothed_gradients"]
            gauss = jax.random.normal(jax.random.key(7 + seed), (budget, d))
            multiscale = jnet.random_points(jax.random.split(_search_net._fast_key(jax.random.key(9 + seed)), budget), 1.0,
                                            cfg)
            best_gauss, gauss_s = timed(lambda: float(jnp.max(score(gauss))))
            best_multiscale = float(jnp.max(score(multiscale)))
        rows.append({"seed": seed, "search": found.value, "random_gaussian": best_gauss,
                     "random_multiscale": best_multiscale, "search_over_gaussian": found.value / best_gauss,
                     "gradient_evaluations": budget, "smoothed_step_cost_in_evaluations": cost,
                     "search_seconds": search_s, "random_seconds": gauss_s,
                     "true_gradient_evaluations_per_second": 4096 / score_s,
                     "search_evaluations_per_second": budget / search_s,
                     "upper_eclipse_fast": upper(params, None, method="eclipse_fast").value})
    return {"architecture": str(model.sizes), "rows": rows}


def bench_upper_trained():
    rows = []
    for d, width, density in ((8, 32, 1.0), (8, 32, 0.5), (16, 64, 1.0), (16, 64, 0.3)):
        model = nets.MLP((d, width, width, 1))
        dataset = data.make_dataset(jax.random.key(d + width), data.Gaussian(d), n=256)  # random +-1 labels
        params = model.init(jax.random.key(1))
        mask = random_mask(params, density, 3) if density < 1 else nets.dense_mask(params)
        params, history = train.fit(params, mask, dataset, model=model, steps=3000, learning_rate=3e-3)
        product = upper(params, mask, method="product").value
        row = {"sizes": str(model.sizes), "density": density, "train_mse": float(history["mse"][-1]),
               "product": product}
        for method in ("eclipse_fast", "lipsdp", "best"):
            bound, seconds = timed(lambda: upper(params, mask, method=method))
            row[method] = {"value": bound.value, "over_product": bound.value / product, "seconds": seconds,
                           "chosen": bound.method}
        low = lower(params, mask, key=jax.random.key(0), points=dataset.x)
        row["lower_search"] = low.value
        row["best_over_lower"] = row["best"]["value"] / low.value
        rows.append(row)
    return rows


def bench_lipsdp_solvers():
    from lawrob.lipschitz._network import drop_unused_inputs, reduce
    from lawrob.lipschitz._lipsdp_bound import lipsdp_barrier_bounds, lipsdp_bound

    rows = []
    for sizes, density in (((8, 32, 32, 1), 1.0), ((8, 32, 32, 1), 0.5), ((8, 64, 64, 1), 0.5), ((8, 64, 64, 1), 0.25),
                           ((16, 64, 64, 1), 0.3), ((8, 32, 32, 32, 1), 0.5)):
        model = nets.MLP(sizes)
        dataset = data.make_dataset(jax.random.key(sum(sizes)), data.Gaussian(sizes[0]), n=256)
        params = model.init(jax.random.key(1))
        mask = random_mask(params, density, 3) if density < 1 else nets.dense_mask(params)
        params, _ = train.fit(params, mask, dataset, model=model, steps=3000, learning_rate=3e-3)
        net = drop_unused_inputs(reduce(prepare(params, mask, model)))[0]
        architecture = tuple(sizes[:-1])
        lipsdp_barrier_bounds([net], architecture)  # compile
        times = []
        for _ in range(3):
            ((value, steps),), seconds = timed(lambda: lipsdp_barrier_bounds([net], architecture))
            times.append(seconds)
        row = {"sizes": str(sizes), "density": density, "N": net.d + sum(net.widths), "barrier": value,
               "barrier_steps": steps, "barrier_seconds": statistics.median(times)}
        for solver in ("SCS", "CLARABEL"):
            if solver == "CLARABEL" and row["N"] > 80:
                continue
            other, seconds = timed(lambda: lipsdp_bound(net, solver))
            row[solver] = {"over_barrier": other / value, "seconds": seconds}
        rows.append(row)
    return rows


SECTIONS = {"exact": bench_exact, "lower-small": bench_lower_small, "lower-wide": bench_lower_wide,
            "upper-trained": bench_upper_trained, "lipsdp-solvers": bench_lipsdp_solvers}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(SECTIONS)
    for name in chosen:
        result, seconds = timed(SECTIONS[name])
        report(f"lipschitz {name}", {"result": result, "wall_seconds": seconds})
