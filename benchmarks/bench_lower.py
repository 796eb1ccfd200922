"""The bracket upper / lower on trained networks, and the lower-bound search against its anchors (issue 14, goal 3).

    uv run python benchmarks/bench_lower.py [--widths 64 128 256] [--depths 2 3] [--d 16] [--n 1000]
                                            [--steps 2000] [--cache DIR] [--upper lipsdp]
    uv run python benchmarks/bench_lower.py --free-patterns [--widths ...] [--depths ...] [--d 16]
    uv run python benchmarks/bench_lower.py --facets [--widths ...] [--depths ...] [--d 16]
    uv run python benchmarks/bench_lower.py --small-exact [--architectures 4-16-1 4-8-8-1] [--seeds-exact 3]
                                            [--n-exact 100]

Networks: d (default 16) Gaussian inputs, n random +-1 labels (sigma2 = 1, as the sweeps' "zero" target), dense ReLU
MLPs (``depth`` hidden layers of ``width``) trained by ``train.fit`` (Adam, lr 3e-3, full batch) until the train
MSE is <= 0.05 or ``steps``; trained parameters are cached in ``--cache`` (npz, keyed by the shape and seed).
Upper bound: LipSDP-Neuron (``upper(method="lipsdp")``, solver "auto") where N = d + hidden <= 5000,
else ECLipsE-Fast (the table says which). Lower bounds, all certified by ``lower`` on the exact network (the
float64 Jacobian norm at a point strictly inside a linear region), at equal numbers of Jacobian evaluations E
where the method can use them:

- training points (Khromov & Singh): max ||J(x_i)||_2 over the n training inputs (n evaluations);
- random sampling: E points from the data distribution N(0, I_d);
- projected gradient ascent on ||J(x)||_2 (autodiff) from E / T starts (training points, then fresh N(0, I)),
  T = 32 steps of length 0.05 sqrt(d), projected onto the ball of radius max_i ||x_i||; for a ReLU network the
  autodiff gradient of ||J|| is zero almost everywhere, so its iterates stay at their starts;
- the search (``lower`` default), scoring the training points;
- pattern ascent (``lower(method="pattern")``): the search, then ascent over activation patterns from its best
  points and a linear program that realizes the best patterns; its ``pattern_bound`` (the largest ||J(S)|| over
  the patterns it reached, realizable or not) is a lower bound on LipSDP, so upper / pattern_bound is LipSDP's
  slack over the patterns and pattern_bound / lower the gap between all patterns and the realized ones.

``--free-patterns``: on the same (cached) networks, LipSDP against the pattern ascent from starts that need no
input: the all-active pattern (which ``pattern_bound`` counts) and 40 random patterns (each unit active with
probability p = 0.1, 0.3, 0.5, 0.7, 0.9, 8 of each), so upper / best free pattern says how much of
upper / pattern_bound is LipSDP's own slack and how much the ascent's starts.

``--facets``: on the same (cached) networks, LipSDP against ``lower(method="pattern")`` without facet ascent
(``facet_programs=0``, what the tables before the seventeenth session measured), with the default budget
(``facet_programs=None``: 256 linear programs on these sizes) and with 1024, all from the same key and the
training points; warm (one untimed call first compiles the search).

E = the search's true-Jacobian evaluations + 2 x its smoothed-ascent gradients (a gradient of a Jacobian norm
costs about two Jacobian evaluations). Prints one JSON report (``_common.report``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

from lawrob import data, nets, train  # noqa: E402
from lawrob.lipschitz import lower, prepare, reduce, upper  # noqa: E402
from lawrob.lipschitz._lower_pattern import ascend  # noqa: E402

PGA_STEPS = 32
NAMES = ("training_points", "random_sampling", "projected_gradient_ascent", "search", "pattern")


def matmul_gflops(size=2048) -> float:
    a = jnp.asarray(np.random.default_rng(0).random((size, size)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        f(a).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def trained(d: int, width: int, depth: int, n: int, steps: int, seed: int, cache: Path):
    """(model, params, dataset, train mse): a dense ReLU MLP fitted to n random +-1 labels, cached."""
    model = nets.MLP((d, *([width] * depth), 1))
    dataset = data.make_dataset(jax.random.key(1000 + seed), data.Gaussian(d), n=n)
    path = cache / f"d{d}-w{width}-L{depth}-n{n}-s{steps}-seed{seed}.npz"
    if path.exists():
        saved = np.load(path)
        params = tuple({"w": jnp.asarray(saved[f"w{k}"]), "b": jnp.asarray(saved[f"b{k}"])} for k in range(depth + 1))
        return model, params, dataset, float(saved["mse"])
    params = model.init(jax.random.key(seed))
    params, history = train.fit(params, nets.dense_mask(params), dataset, model=model, steps=steps,
                                learning_rate=3e-3, stop_loss=0.05, log_every=100)
    mse = float(history["mse"][-1])
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, mse=mse, **{f"w{k}": np.asarray(layer["w"]) for k, layer in enumerate(params)},
             **{f"b{k}": np.asarray(layer["b"]) for k, layer in enumerate(params)})
    return model, params, dataset, mse


def pga_points(params, model, x, starts: int, key) -> np.ndarray:
    """Every iterate of projected gradient ascent on ||J(x)||_2 (autodiff), [starts x (T + 1), d]."""
    radius, d = float(jnp.max(jnp.linalg.norm(x, axis=1))), x.shape[1]
    fresh = jax.random.normal(key, (max(starts - x.shape[0], 0), d))

    def norm(y, p64):
        return jnp.sqrt(jnp.sum(jax.jacrev(lambda z: model.apply(p64, z))(y) ** 2) + 1e-300)

    @jax.jit
    def run(x0, p64):
        def step(x, _):
            g = jnp.nan_to_num(jax.vmap(jax.grad(norm), in_axes=(0, None))(x, p64))
            g = g / jnp.maximum(jnp.linalg.norm(g, axis=1, keepdims=True), 1e-300)
            x = x + 0.05 * math.sqrt(d) * g
            scale = jnp.maximum(jnp.linalg.norm(x, axis=1, keepdims=True) / radius, 1.0)
            return x / scale, x / scale
        _, path = jax.lax.scan(step, x0, None, length=PGA_STEPS)
        return jnp.concatenate([x0[None], path]).reshape(-1, d)

    with jax.enable_x64(True):
        x0 = jnp.concatenate([x[:starts], fresh]).astype(jnp.float64)
        return np.asarray(run(x0, jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)))


def measure(model, params, dataset, key, upper_choice: str) -> dict:
    x = np.asarray(dataset.x, np.float64)
    d = model.sizes[0]
    row = {"sizes": list(model.sizes), "N": d + sum(model.sizes[1:-1])}
    start = time.perf_counter()
    method = upper_choice if (upper_choice != "lipsdp" or row["N"] <= 5000) else "eclipse_fast"
    high = upper(params, model=model, method=method)
    row.update(upper_method=high.method, upper=high.value, upper_seconds=round(time.perf_counter() - start, 2))
    print(f"{row['sizes']}: upper {high.value:.4g} ({high.method}) in {row['upper_seconds']} s", file=sys.stderr,
          flush=True)
    lows = {}
    lower(params, model=model, key=key, points=x)  # compile the search
    for name in ("search", "pattern"):
        start = time.perf_counter()
        lows[name] = lower(params, model=model, key=key, points=x, method=name)
        lows[name + "_seconds"] = time.perf_counter() - start
        print(f"{row['sizes']}: {name} {lows[name].value:.4g} in {lows[name + '_seconds']:.0f} s", file=sys.stderr,
              flush=True)
    found = lows["search"]
    budget = found.details["evaluations"] + 2 * found.details["smoothed_gradients"]
    row["evaluations"] = budget
    lows["training_points"] = lower(params, model=model, key=key, points=x, method="points")
    gauss = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (budget, d)), np.float64)
    lows["random_sampling"] = lower(params, model=model, key=key, points=gauss, method="points")
    pga = pga_points(params, model, jnp.asarray(x), max(1, budget // (PGA_STEPS + 1)), jax.random.fold_in(key, 2))
    lows["projected_gradient_ascent"] = lower(params, model=model, key=key, points=pga, method="points")
    for name in NAMES:
        row[name] = lows[name].value
        row[f"ratio_{name}"] = high.value / lows[name].value if lows[name].value > 0 else math.inf
    row["pattern_bound"] = lows["pattern"].details["pattern_bound"]
    row["upper_over_pattern_bound"] = high.value / row["pattern_bound"]
    row["pattern_bound_over_pattern"] = row["pattern_bound"] / lows["pattern"].value
    row["search_seconds"] = round(lows["search_seconds"], 2)
    row["pattern_seconds"] = round(lows["pattern_seconds"], 2)
    return row


def free_patterns(model, params, seed: int) -> dict:
    """LipSDP, and the pattern ascent from the all-active pattern and from 40 random patterns (module docstring)."""
    net = reduce(prepare(params, None, model))
    row = {"sizes": list(model.sizes), "N": model.sizes[0] + sum(model.sizes[1:-1])}
    start = time.perf_counter()
    row["upper"] = upper(params, model=model, method="lipsdp").value
    row["upper_seconds"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    row["all_active"] = ascend(net, [np.ones(w) for w in net.widths])[1]
    row["all_active_seconds"] = round(time.perf_counter() - start, 2)
    rng = np.random.default_rng(seed)
    randoms = [ascend(net, [(rng.random(w) < p).astype(float) for w in net.widths])[1]
               for p in (0.1, 0.3, 0.5, 0.7, 0.9) for _ in range(8)]
    row.update(random_best=max(randoms), random_median=statistics.median(randoms),
               upper_over_best_free=row["upper"] / max(row["all_active"], *randoms),
               random_best_over_all_active=max(randoms) / row["all_active"])
    return row


def facets(model, params, dataset, seed: int) -> dict:
    """LipSDP, and pattern ascent without facet ascent, with its default budget and with 1024 programs."""
    row = {"sizes": list(model.sizes), "N": model.sizes[0] + sum(model.sizes[1:-1])}
    start = time.perf_counter()
    row["upper"] = upper(params, model=model, method="lipsdp").value
    row["upper_seconds"] = round(time.perf_counter() - start, 2)
    x, key = np.asarray(dataset.x, np.float64), jax.random.key(seed)
    lower(params, model=model, key=key, points=x, method="pattern", facet_programs=0)  # compile the search
    for name, budget in (("no_facets", 0), ("default", None), ("facets_1024", 1024)):
        start = time.perf_counter()
        found = lower(params, model=model, key=key, points=x, method="pattern", facet_programs=budget)
        row[name] = found.value
        row[f"{name}_seconds"] = round(time.perf_counter() - start, 2)
        row[f"{name}_steps_lps"] = [found.details["facet_steps"], found.details["facet_lps"]]
        row[f"ratio_{name}"] = row["upper"] / found.value
    row["pattern_bound"] = found.details["pattern_bound"]
    return row


def small_exact(architectures: list[tuple[int, ...]], seeds: int = 3, n: int = 100) -> list[dict]:
    """Where the bracket's gap sits: nets small enough for ``exact``, fitted to n random labels (lr 1e-2, 2000
    steps), with the search, pattern ascent and LipSDP each divided by the exact constant."""
    from lawrob.lipschitz import exact
    rows = []
    for sizes in architectures:
        model = nets.MLP(sizes)
        for seed in range(seeds):
            dataset = data.make_dataset(jax.random.key(2000 + seed), data.Gaussian(sizes[0]), n=n)
            params = model.init(jax.random.key(seed))
            params, history = train.fit(params, nets.dense_mask(params), dataset, model=model, steps=2000,
                                        learning_rate=1e-2, stop_loss=0.05, log_every=100)
            start = time.perf_counter()
            ex = exact(params, model=model, max_regions=10**9)
            exact_s = time.perf_counter() - start
            x, key = np.asarray(dataset.x), jax.random.key(seed)
            low = lower(params, model=model, key=key, points=x).value
            pattern = lower(params, model=model, key=key, points=x, method="pattern")
            high = upper(params, model=model, method="lipsdp").value
            rows.append({"sizes": list(sizes), "seed": seed, "train_mse": float(history["mse"][-1]),
                         "exact": ex.value, "regions": ex.details.get("regions"), "exact_seconds": round(exact_s, 1),
                         "search_over_exact": low / ex.value, "pattern_over_exact": pattern.value / ex.value,
                         "pattern_bound_over_exact": pattern.details["pattern_bound"] / ex.value,
                         "lipsdp_over_exact": high / ex.value})
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--small-exact", action="store_true", help="only small nets against exact constants")
    parser.add_argument("--architectures", nargs="+", default=["4-16-1", "4-8-8-1"],
                        help="with --small-exact: layer sizes joined by '-'")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lawrob-bench-lower"))
    parser.add_argument("--upper", default="lipsdp")
    parser.add_argument("--free-patterns", action="store_true",
                        help="LipSDP vs the pattern ascent from the all-active and random patterns")
    parser.add_argument("--facets", action="store_true",
                        help="LipSDP vs pattern ascent without and with facet ascent")
    parser.add_argument("--seeds-exact", type=int, default=3)
    parser.add_argument("--n-exact", type=int, default=100)
    args = parser.parse_args()
    if args.small_exact:
        architectures = [tuple(int(v) for v in a.split("-")) for a in args.architectures]
        rows = small_exact(architectures, args.seeds_exact, args.n_exact)
        report("search, pattern ascent and LipSDP vs exact on small trained nets",
               {"command": " ".join(sys.argv), "rows": rows})
        return
    reference_start = matmul_gflops()
    rows = []
    for width in args.widths:
        for depth in args.depths:
            for seed in range(args.seeds):
                start = time.perf_counter()
                model, params, dataset, mse = trained(args.d, width, depth, args.n, args.steps, seed, args.cache)
                train_s = time.perf_counter() - start
                if args.free_patterns:
                    row = free_patterns(model, params, seed)
                elif args.facets:
                    row = facets(model, params, dataset, seed)
                else:
                    row = measure(model, params, dataset, jax.random.key(seed), args.upper)
                row.update(seed=seed, train_mse=mse, train_seconds=round(train_s, 1))
                rows.append(row)
                print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, file=sys.stderr,
                      flush=True)
    if args.free_patterns:
        report("LipSDP vs the pattern ascent from the all-active and random patterns", {
            "command": " ".join(sys.argv), "d": args.d, "rows": rows,
            "matmul_gflops_float32_start_end": [round(reference_start, 1), round(matmul_gflops(), 1)]})
        return
    if args.facets:
        report("LipSDP vs pattern ascent without and with facet ascent", {
            "command": " ".join(sys.argv), "d": args.d, "rows": rows,
            "matmul_gflops_float32_start_end": [round(reference_start, 1), round(matmul_gflops(), 1)]})
        return
    summary = {name: {"median_ratio": statistics.median(r[f"ratio_{name}"] for r in rows),
                      "worst_ratio": max(r[f"ratio_{name}"] for r in rows)} for name in NAMES}
    report("lower bounds vs LipSDP on trained nets", {
        "command": " ".join(sys.argv), "n": args.n, "d": args.d, "rows": rows, "summary": summary,
        "matmul_gflops_float32_start_end": [round(reference_start, 1), round(matmul_gflops(), 1)]})


if __name__ == "__main__":
    main()
