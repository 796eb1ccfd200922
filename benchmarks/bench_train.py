"""Training throughput (issue 2): 64 runs of a 32 -> 256 -> 1 ReLU MLP, n = 512, 500 full-batch Adam steps.

(a) fit_batched (chunked lax.map), (b) a Python loop over the jitted single-run fit, (c) PyTorch eager
(run benchmarks/bench_train_torch.py in its own venv), and the achieved GFLOP/s against a large matmul.

    uv run python benchmarks/bench_train.py [--runs 64] [--chunks 1,2,4,8,16,64,full]
"""

import argparse

import jax

from _common import median_time, report
from lawrob import data, nets, train

D, WIDTH, N, STEPS = 32, 256, 512, 500


def flops_per_run() -> float:
    """Forward 2 n (d h + h) multiply-adds, backward twice the forward (weights and inputs), per Adam step."""
    forward = 2 * N * (D * WIDTH + WIDTH * 1)
    return 3 * forward * STEPS


def matmul_gflops(size=2048) -> float:
    a = jax.random.normal(jax.random.key(0), (size, size))
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    t, _ = median_time(lambda: f(a).block_until_ready(), repeats=7)
    return 2 * size**3 / t / 1e9


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--chunks", default="2,4,8,16,full")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = nets.MLP((D, WIDTH, 1))
    keys = jax.random.split(jax.random.key(0), args.runs)
    params = train.stack([model.init(k) for k in keys])
    masks = train.stack([nets.dense_mask(model.init(keys[0]))] * args.runs)
    sets = train.stack([data.make_dataset(k, data.Gaussian(D), N) for k in keys])
    kw = dict(model=model, steps=STEPS, learning_rate=1e-3)
    results = {"runs": args.runs, "gflop_per_run": flops_per_run() / 1e9}

    def batched(chunk):
        return lambda: jax.block_until_ready(train.fit_batched(params, masks, sets, keys=keys, chunk_size=chunk, **kw))

    per_chunk = {}
    for chunk in args.chunks.split(","):
        chunk_size = None if chunk == "full" else int(chunk)
        batched(chunk_size)()  # compile
        t, _ = median_time(batched(chunk_size), repeats=args.repeats)
        per_chunk[chunk] = t / args.runs
    best = min(per_chunk, key=per_chunk.get)
    results["batched_seconds_per_run_by_chunk"] = per_chunk
    results["batched_best_chunk"] = best

    singles = [(train.unstack(params)[i], train.unstack(masks)[i], train.unstack(sets)[i]) for i in range(args.runs)]
    jax.block_until_ready(train.fit(*singles[0], **kw))  # compile
    t_loop, _ = median_time(lambda: [jax.block_until_ready(train.fit(*s, **kw)) for s in singles], repeats=args.repeats)
    results["loop_seconds_per_run"] = t_loop / args.runs
    results["speedup_batched_vs_loop"] = results["loop_seconds_per_run"] / per_chunk[best]
    results["batched_gflops"] = flops_per_run() / per_chunk[best] / 1e9
    results["matmul_gflops"] = matmul_gflops()
    results["fraction_of_matmul_rate"] = results["batched_gflops"] / results["matmul_gflops"]
    report("train", results)


if __name__ == "__main__":
    main()
