"""IMP throughput (issue 5) on the E1 setting: 32 seeds of 10 IMP rounds, batched vs a Python loop of single runs.

E1 (NFP Fig. 1a): n = d = 30, x ~ N(0, I/d), uniform random +-1 labels, ReLU MLP 30 -> 100 -> 100 -> 1,
logistic loss, full-batch Adam at lr 1e-2; here a fixed 300 steps per round, rewinding to initialization.
Each seed trains 11 times (dense + 10 pruned rounds). Reported: wall time per seed (median over repeats) for
(a) ``prune.imp(..., batched=True)`` (one ``fit_batched`` call per round for all seeds) at several chunk sizes and
(b) a Python loop of ``prune.imp`` over the seeds, the compile time of each (first call minus the median), and
the mean fraction of points memorized per round as a sanity check of E1's trend.

    cd benchmarks && uv run python bench_prune.py [--seeds 32] [--rounds 10] [--steps 300] [--chunks 4,8,full]
"""

import argparse
import time

import jax
import numpy as np

from _common import median_time, report
from lawrob import data, nets, prune, train

D, N, WIDTH = 30, 30, 100


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--chunks", default="4,8,full")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = nets.MLP((D, WIDTH, WIDTH, 1))
    keys = jax.random.split(jax.random.key(0), args.seeds)
    params = [model.init(jax.random.fold_in(k, 0)) for k in keys]
    sets = [data.make_dataset(jax.random.fold_in(k, 1), data.Gaussian(D), N) for k in keys]
    fit_options = dict(model=model, rounds=args.rounds, steps=args.steps, loss="logistic", learning_rate=1e-2)
    results = {"seeds": args.seeds, "rounds": args.rounds, "steps_per_round": args.steps, "trainings_per_seed": args.rounds + 1,
               "model": str(model.sizes), "weights": model.num_weights}

    def batched(chunk):
        return lambda: jax.block_until_ready(prune.imp(train.stack(params), train.stack(sets), key=keys, batched=True,
                                                       chunk_size=chunk, **fit_options))

    def loop():
        return [jax.block_until_ready(prune.imp(p, s, key=k, **fit_options)) for p, s, k in zip(params, sets, keys)]

    per_chunk, compile_chunk = {}, {}
    for chunk in args.chunks.split(","):
        run = batched(None if chunk == "full" else int(chunk))
        start = time.perf_counter()
        out = run()
        first = time.perf_counter() - start
        t, _ = median_time(run, repeats=args.repeats)
        per_chunk[chunk], compile_chunk[chunk] = t / args.seeds, first - t
    best = min(per_chunk, key=per_chunk.get)
    results["batched_seconds_per_seed_by_chunk"] = per_chunk
    results["batched_compile_seconds_by_chunk"] = compile_chunk
    results["batched_best_chunk"] = best

    start = time.perf_counter()
    jax.block_until_ready(prune.imp(params[0], sets[0], key=keys[0], **fit_options))
    first_single = time.perf_counter() - start
    t_loop, _ = median_time(loop, repeats=args.repeats)
    results["loop_seconds_per_seed"] = t_loop / args.seeds
    results["loop_compile_seconds"] = first_single - t_loop / args.seeds
    results["speedup_batched_vs_loop"] = results["loop_seconds_per_seed"] / per_chunk[best]

    results["density_per_round"] = [nets.count_active(jax.tree.map(lambda a: a[0], m)) / model.num_weights for m in out.masks]
    results["memorized_dense"] = float(np.mean(out.dense_history["memorized"][:, -1]))
    results["memorized_per_round"] = [round(float(np.mean(h["memorized"][:, -1])), 3) for h in out.histories]
    report("prune_imp", results)


if __name__ == "__main__":
    main()
