"""Sweep throughput (issue 7): a 64-run grid in 2 shape groups, ``lawrob.sweep.run`` against a plain Python loop.

Grid: Gaussian data (d = 8, n = 96, random +-1 labels), ReLU MLPs 8 -> w -> w -> 1 with w in {32, 64} (the two
shape groups), methods random and SynFlow, densities 0.5 and 0.25, 8 seeds; 1000 Adam steps (lr 3e-3), then the
full per-run measurement (certified Lipschitz bracket, p_eff, both theorems in both variants).

The loop runs the same configurations one by one with the same library functions (``inputs.dataset_of``,
``MLP.init``, ``masks.make_masks``, ``train.fit``, ``measure.measure_row``) and writes nothing. Both are timed
cold (first call in the process: compilation included) and warm (median of ``--repeats`` further calls on
fresh output folders); compile time = cold - warm median. The loop's warm time is also split into training
and measurement.

    uv run python benchmarks/bench_sweep.py [--repeats 2] [--seeds 8] [--steps 1000]
    uv run python benchmarks/bench_sweep.py --measurement     # where a run's measurement time can go

``--measurement`` trains the 16 width-64 runs of the grid (2 seeds), then times the certified lower bound and
the upper bound over them three ways: one call per run serially, one call per run in a pool of 2 threads
(what ``sweep.run`` does on CPU), and one batched call (``lower_batch``/``upper_batch``, chunk 8: what it does
on an accelerator); warm medians of 3, with the process CPU time of the serial pass.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

from lawrob import lipschitz, sweep, train  # noqa: E402
from lawrob.sweep import certificate, inputs, measure  # noqa: E402
from lawrob.sweep import masks as mask_stage  # noqa: E402


def grid(seeds: int, steps: int) -> sweep.Grid:
    return sweep.Grid(axes={"width": [32, 64], "method": ["random", "synflow"], "density": [0.5, 0.25]},
                      fixed={"d": 8, "n": 96, "depth": 2, "steps": steps, "log_every": 100, "learning_rate": 3e-3,
                             "lip_search_starts": 32}, seeds=seeds)


def run_sweep(g: sweep.Grid) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        sweep.run(g, out, progress=False)
        return time.perf_counter() - start


def run_loop(g: sweep.Grid) -> tuple[float, float, float]:
    """(total, training, measurement) seconds of the one-by-one loop."""
    training = measuring = 0.0
    start = time.perf_counter()
    upper = certificate.certificates(g.runs())
    for r in g.runs():
        config = r.config
        model = inputs.model_of(config)
        dataset = inputs.dataset_of(config, r.keys.data)
        init = model.init(r.keys.init)
        (mask,), _, _ = mask_stage.make_masks([r], model, [init], [dataset])
        t0 = time.perf_counter()
        params, history = train.fit(init, mask, dataset, model=model, key=r.keys.train,
                                    learning_rate=config.learning_rate, **inputs.train_options(config))
        history = {k: v for k, v in history.items()}
        float(history["mse"][-1])
        t1 = time.perf_counter()
        state = measure.RunState(r, dataset, init, upper[r.hash], mask=mask, params=params, history=history,
                                 information=mask_stage.information_bits(r, model, init, mask))
        measure.measure_row(state, model)
        training += t1 - t0
        measuring += time.perf_counter() - t1
    return time.perf_counter() - start, training, measuring


def trained_runs(g: sweep.Grid, width: int):
    """(model, params, masks, datasets, keys) of the grid's runs of one width, trained one by one."""
    runs = [r for r in g.runs() if r.config.width == width]
    model = inputs.model_of(runs[0].config)
    params, masks, datasets, keys = [], [], [], []
    for r in runs:
        dataset = inputs.dataset_of(r.config, r.keys.data)
        init = model.init(r.keys.init)
        (mask,), _, _ = mask_stage.make_masks([r], model, [init], [dataset])
        trained, _ = train.fit(init, mask, dataset, model=model, key=r.keys.train,
                               learning_rate=r.config.learning_rate, **inputs.train_options(r.config))
        params.append(trained), masks.append(mask), datasets.append(dataset)
        keys.append(r.keys.lipschitz)
    return model, params, masks, datasets, keys


def measurement(g: sweep.Grid) -> dict:
    model, params, masks, datasets, keys = trained_runs(g, 64)
    starts = g.runs()[0].config.lip_search_starts
    stacked, stacked_masks = train.stack(params), train.stack(masks)
    points = jnp.stack([d.x for d in datasets])
    one = {"lower": lambda i: lipschitz.lower(params[i], masks[i], model=model, key=keys[i], points=datasets[i].x,
                                              starts=starts),
           "upper": lambda i: lipschitz.upper(params[i], masks[i], model=model)}
    batched = {"lower": lambda: lipschitz.lower_batch(stacked, stacked_masks, model=model, key=jnp.stack(keys),
                                                      points=points, starts=starts),
               "upper": lambda: lipschitz.upper_batch(stacked, stacked_masks, model=model)}
    out = {"runs": len(params)}
    for name in ("lower", "upper"):
        ways = {"serial": lambda: [one[name](i) for i in range(len(params))],
                "threads_2": lambda: list(ThreadPoolExecutor(2).map(one[name], range(len(params)))),
                "batched_chunk_8": batched[name]}
        for way, call in ways.items():
            call()  # compile
            times, cpu = [], []
            for _ in range(3):
                c0, t0 = os.times(), time.perf_counter()
                call()
                times.append(time.perf_counter() - t0)
                c1 = os.times()
                cpu.append(c1.user - c0.user + c1.system - c0.system)
            out[f"{name}_{way}_seconds"] = statistics.median(times)
            out[f"{name}_{way}_cores_used"] = statistics.median(cpu) / statistics.median(times)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--measurement", action="store_true")
    args = parser.parse_args()
    if args.measurement:
        report("sweep measurement", measurement(grid(2, args.steps)))
        return
    g = grid(args.seeds, args.steps)
    runs, groups = len(g.runs()), len(g.groups())

    sweep_cold = run_sweep(g)
    sweep_warm = [run_sweep(g) for _ in range(args.repeats)]
    loop_cold = run_loop(g)
    loop_warm = [run_loop(g) for _ in range(args.repeats)]
    sweep_median = statistics.median(sweep_warm)
    loop_median = statistics.median(t[0] for t in loop_warm)
    report("sweep", {
        "runs": runs, "groups": groups, "steps": args.steps, "repeats": args.repeats,
        "sweep_warm_seconds": sweep_median, "sweep_warm_all": sweep_warm, "sweep_compile_seconds": sweep_cold - sweep_median,
        "loop_warm_seconds": loop_median, "loop_warm_all": [t[0] for t in loop_warm],
        "loop_compile_seconds": loop_cold[0] - loop_median,
        "loop_training_seconds": statistics.median(t[1] for t in loop_warm),
        "loop_measurement_seconds": statistics.median(t[2] for t in loop_warm),
        "speedup_warm": loop_median / sweep_median, "speedup_cold": loop_cold[0] / sweep_cold,
    })


if __name__ == "__main__":
    main()
