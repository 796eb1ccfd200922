"""LipSDP-Neuron at scale (issue 14, goal 1); the recorded numbers are in benchmarks/RESULTS.md.

    cd /work/main && uv run python benchmarks/bench_lipsdp_scale.py [--old-max N] [--clarabel-max N]
                                                                     [--big barrier|primal_dual] [--batch B]
                                                                     [--figure PATH]

Per network (random init, ``nets.MLP.init``; "trained-like": the same with each layer's columns rescaled by
lognormal factors, sigma = 1, and 30% of the weights pruned), N = d + hidden units: the warm median (compile
excluded: one untimed call first) of ``lipsdp_barrier_bounds`` with the block solver (``_lipsdp_blocks``,
"after"); of ``lipsdp_primal_dual_bounds`` (``_lipsdp_pd``: its certified value, iterations and dual objective,
a lower estimate of LipSDP's optimum, so "after_over_optimum_at_most" bounds how far the barrier's value sits
above the optimum); of the first, dense solver (``_dense=True``, "before"; while N <= --old-max, default 1040);
and of cvxpy/Clarabel (while N <= --clarabel-max, default 110: Clarabel's PSD cone is dense in the N(N+1)/2 svec
space, 18 s at N = 110, out of memory at N = 220); the values and the Newton steps. Also, measured in the same
process, the matmul rate of a 2048^2 float32 and float64 product (other jobs share the 2 cores: compare runs by
it), the CPU model and the JAX version. A log-log figure of time against N with the fitted exponents goes to
--figure (default benchmarks/lipsdp_time_vs_n.png).

--big SOLVER instead times 784-1024-1024-1024-10 with one solver (one cold call). --batch B instead times B
networks of one architecture in one call at chunk B against chunk 1.

--constrained instead trains 8-w-w-1 ReLU nets (w = 16, 32, 64) on n = 250 random +-1 labels (1500 Adam steps),
then again under ``max_lipschitz`` = L0 / 2, L0 / 4, L0 / 10 (L0: the plain fit's spectral product), as the
frontier search does, and reports for each whether the barrier LipSDP certificate verifies and its value against
Clarabel's (the E7 failures of the multiplier blow-up).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

from lawrob import data, nets, train  # noqa: E402
from lawrob.robust import spectral_product  # noqa: E402
from lawrob.lipschitz import prepare, reduce  # noqa: E402
from lawrob.lipschitz._network import drop_unused_inputs  # noqa: E402
from lawrob.lipschitz._lipsdp_bound import lipsdp_barrier_bounds, lipsdp_bound, lipsdp_primal_dual_bounds  # noqa: E402

NETWORKS = [((40, 16, 16, 1), "init"), ((40, 16, 16, 1), "trained-like"), ((60, 30, 20, 1), "trained-like"),
            ((100, 100, 100, 1), "init"), ((200, 100, 1), "trained-like"), ((784, 256, 10), "init"),
            ((784, 256, 10), "trained-like"), ((784, 256, 1), "init"), ((784, 512, 512, 1), "init")]
BIG = ((784, 1024, 1024, 1024, 10), "init")


def network(sizes, kind, seed=0):
    model = nets.MLP(sizes)
    params = model.init(jax.random.key(seed))
    if kind == "trained-like":
        rng = np.random.default_rng(seed)
        params = tuple({"w": layer["w"] * jnp.asarray(rng.lognormal(0.0, 1.0, layer["w"].shape[1]), jnp.float32)
                                  * jnp.asarray(rng.random(layer["w"].shape) > 0.3, jnp.float32),
                        "b": layer["b"]} for layer in params)
    return drop_unused_inputs(reduce(prepare(params, None, model)))[0]


def warm(fn, repeats):
    fn()  # compile
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, out


def matmul_rates() -> dict:
    rates = {}
    for dtype in ("float32", "float64"):
        with jax.enable_x64(dtype == "float64"):
            a = jnp.asarray(np.random.default_rng(0).random((2048, 2048)), dtype)
            f = jax.jit(lambda x: x @ x)
            seconds, _, _ = warm(lambda: f(a).block_until_ready(), 5)
        rates[dtype] = round(2 * 2048**3 / seconds / 1e9, 1)
    return rates


def batch_rows(count: int) -> list[dict]:
    """``count`` trained-like 16-64-64-1 networks (an E7-sized architecture) in one call, chunk ``count`` (one
    vmap) against chunk 1 (``jax.lax.map`` without a vmap), both solvers: warm medians of 3."""
    sizes = (16, 64, 64, 1)
    nets_ = [network(sizes, "trained-like", seed=s) for s in range(count)]
    rows = []
    for solver in ("barrier", "primal_dual"):
        for chunk in (count, 1):
            seconds, times, out = warm(lambda: lipsdp_barrier_bounds(nets_, sizes[:-1], chunk=chunk,
                                                                     primal_dual=solver == "primal_dual"), 3)
            rows.append({"solver": solver, "networks": count, "chunk": chunk, "seconds": round(seconds, 3),
                         "times": [round(t, 3) for t in times], "values": [v for v, _ in out]})
            print(rows[-1], flush=True)
    return rows


def big_row(solver: str) -> dict:
    """784-1024-1024-1024-10 by one solver: one cold call, the compilation included (a second call would double
    a run of many minutes)."""
    sizes, kind = BIG
    net = network(sizes, kind)
    start = time.perf_counter()
    if solver == "barrier":
        ((value, steps),), below = lipsdp_barrier_bounds([net], sizes[:-1]), None
    else:
        ((value, steps, below),) = lipsdp_primal_dual_bounds([net], sizes[:-1])
    return {"sizes": "-".join(map(str, sizes)), "kind": kind, "N": net.d + sum(net.widths), "solver": solver,
            "cold_s": round(time.perf_counter() - start, 1), "value": value, "steps": steps, "dual_objective": below}


def constrained_rows() -> list[dict]:
    d, n = 8, 250
    dataset = data.make_dataset(jax.random.key(0), data.Gaussian(d), n)
    rows = []
    for width in (16, 32, 64):
        model = nets.MLP((d, width, width, 1))
        init = model.init(jax.random.key(1))
        mask = nets.dense_mask(init)
        plain, _ = train.fit(init, mask, dataset, model=model, steps=1500, learning_rate=3e-3)
        l0 = float(spectral_product(plain))
        for fraction in (0.5, 0.25, 0.1):
            params, history = train.fit(plain, mask, dataset, model=model, steps=1500, learning_rate=3e-3,
                                        max_lipschitz=l0 * fraction)
            net = drop_unused_inputs(reduce(prepare(params, mask, model)))[0]
            (value, steps), = lipsdp_barrier_bounds([net], (d, width, width))
            clarabel = lipsdp_bound(net, "CLARABEL")
            rows.append({"width": width, "fraction": fraction, "train_mse": float(history["mse"][-1]),
                         "barrier": value, "steps": steps, "clarabel": clarabel,
                         "barrier_vs_clarabel": None if value is None or clarabel is None else (value - clarabel) / clarabel})
            print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--constrained", action="store_true")
    parser.add_argument("--old-max", type=int, default=1040)
    parser.add_argument("--clarabel-max", type=int, default=110)
    parser.add_argument("--big", choices=("barrier", "primal_dual"), default=None)
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--figure", default=str(Path(__file__).parent / "lipsdp_time_vs_n.png"))
    args = parser.parse_args()
    if args.constrained:
        report("lipsdp-constrained", {"rows": constrained_rows()})
        return
    if args.batch:
        report("lipsdp-batch", {"rows": batch_rows(args.batch), "reference": {"matmul_gflops": matmul_rates()}})
        return
    if args.big:
        report("lipsdp-big", {"row": big_row(args.big), "reference": {"matmul_gflops": matmul_rates()}})
        return
    rows = []
    reference = {"matmul_gflops_before": matmul_rates()}
    for sizes, kind in NETWORKS:
        net = network(sizes, kind)
        n = net.d + sum(net.widths)
        repeats = 3 if n <= 1100 else 1
        row = {"sizes": "-".join(map(str, sizes)), "kind": kind, "N": n}
        seconds, times, ((value, steps),) = warm(lambda: lipsdp_barrier_bounds([net], sizes[:-1]), repeats)
        row.update(after_s=round(seconds, 3), after_times=[round(t, 3) for t in times], after=value,
                   after_steps=steps)
        seconds, times, ((value, steps, below),) = warm(lambda: lipsdp_primal_dual_bounds([net], sizes[:-1]),
                                                        repeats)
        row.update(pd_s=round(seconds, 3), pd_times=[round(t, 3) for t in times], pd=value, pd_iterations=steps,
                   pd_dual_objective=below, pd_gap=(value - below) / value,
                   after_over_optimum_at_most=(row["after"] - below) / below)
        if n <= args.old_max:
            seconds, times, ((value, steps),) = warm(lambda: lipsdp_barrier_bounds([net], sizes[:-1], _dense=True),
                                                    1 if n > 300 else repeats)
            row.update(before_s=round(seconds, 3), before=value, before_steps=steps,
                       after_vs_before=(row["after"] - value) / value)
        if n <= args.clarabel_max:
            start = time.perf_counter()
            value = lipsdp_bound(net, "CLARABEL")
            row.update(clarabel_s=round(time.perf_counter() - start, 3), clarabel=value,
                       after_vs_clarabel=(row["after"] - value) / value)
        print(row, flush=True)
        rows.append(row)
    reference["matmul_gflops_after"] = matmul_rates()
    reference["cpu_model"] = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True,
                                            text=True).stdout.strip()
    fits = figure(rows, args.figure)
    report("lipsdp-scale", {"rows": rows, "reference": reference, "fitted_exponents": fits})


def figure(rows, path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fits = {}
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for key, label, marker in (("after_s", "block barrier", "o"), ("pd_s", "primal-dual (HKM)", "D"),
                               ("before_s", "dense barrier (first)", "s"), ("clarabel_s", "cvxpy / Clarabel", "^")):
        points = sorted((r["N"], r[key]) for r in rows if key in r)
        if not points:
            continue
        ns, ts = np.array(points, float).T
        fit = ""
        if len(set(ns)) >= 2:
            slope, intercept = np.polyfit(np.log(ns), np.log(ts), 1)
            fits[key] = round(float(slope), 2)
            fit = f" (time ~ N^{slope:.2f})"
            grid = np.geomspace(ns.min(), ns.max(), 50)
            ax.plot(grid, np.exp(intercept) * grid**slope, lw=0.8, color="grey", ls=":")
        ax.plot(ns, ts, marker, label=label + fit)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N = d + hidden units")
    ax.set_ylabel("warm seconds (2 shared CPU cores)")
    ax.set_title("LipSDP-Neuron: time against N")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return fits


if __name__ == "__main__":
    main()
