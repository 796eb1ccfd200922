"""The batched paths after the one-helper refactor (issue 13): fit_batched and sample_masks, medians of repeats.

A smaller bench_train problem (16 runs of a 32 -> 256 -> 1 ReLU MLP, n = 512, 100 full-batch Adam steps; chunk 4,
and 7 runs with chunk 3, which pads) and a sample_masks call (a random-threshold pipeline, 4096 data sets).
Compile time is excluded (one call first). Uses only public API, so it runs against older checkouts too:

    uv run python benchmarks/bench_batching.py [--repeats 7]
"""

import argparse

import jax
import jax.numpy as jnp

from _common import median_time, report
from lawrob import data, info, nets, train

D, WIDTH, N, STEPS = 32, 256, 512, 100


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    model = nets.MLP((D, WIDTH, 1))
    results = {}
    for runs, chunk in ((16, 4), (7, 3)):
        keys = jax.random.split(jax.random.key(0), runs)
        params = train.stack([model.init(k) for k in keys])
        masks = train.stack([nets.dense_mask(model.init(keys[0]))] * runs)
        sets = train.stack([data.make_dataset(k, data.Gaussian(D), N) for k in keys])

        def call():
            return jax.block_until_ready(train.fit_batched(params, masks, sets, model=model, steps=STEPS, keys=keys,
                                                           chunk_size=chunk, learning_rate=1e-3))

        call()  # compile
        t, times = median_time(call, repeats=args.repeats)
        results[f"fit_batched_{runs}_runs_chunk_{chunk}_seconds"] = t
        results[f"fit_batched_{runs}_runs_chunk_{chunk}_all"] = times

    def pipeline(key, ds):
        return {"w": (jax.random.uniform(key, (64,)) < jnp.mean(ds.x)).astype(jnp.uint8)}

    def sample(key):
        return data.make_dataset(key, data.Gaussian(8), 32)

    def masks_call():
        return info.sample_masks(pipeline, sample, key=jax.random.key(1), datasets=4096, inits=2)

    masks_call()  # compile
    t, times = median_time(masks_call, repeats=args.repeats)
    results["sample_masks_4096x2_seconds"], results["sample_masks_4096x2_all"] = t, times
    report("batching", results)


if __name__ == "__main__":
    main()
