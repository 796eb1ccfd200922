"""A training that stops early costs its steps only (issue 16: E2 at 10 seeds): ``fit_batched`` on E2's full-scale
set-up with its stopping rules, against the same training run to the cap without rules, which is what the block
loop cost before it ended at the stop (it kept every stopped run frozen and computed all the blocks).

E2's full scale on the digits stand-in: 10 seeds (one ``fit_batched`` call), 64-200-200-10 ReLU MLP, 1797 images
with N(0, 3) input noise, Adam lr 1e-3, batch 64, cross-entropy, periods of 957 steps, a fixed budget of 5 periods,
then the paper's rules (loss changed < 0.01, accuracy unchanged for 3 periods), at most 20 periods. Masks: dense,
and random at E2's sparsest grid point 0.8^26. Each time is one call, its compilation (a few seconds) included:
a call takes minutes.

    uv run python benchmarks/bench_train_stop.py
"""

import argparse
import math
import time

import jax
import numpy as np

from _common import report
from bench_train import matmul_gflops
from lawrob import data, nets, train
from lawrob.checks import e2_memorization_images as e2
from lawrob.checks._common import prune_runs, seed_runs

SEEDS = 10


def main():
    argparse.ArgumentParser(description=__doc__).parse_args()
    images, labels, source = e2.load_images(None, jax.random.key(1))
    model = nets.MLP((images.shape[1], 200, 200, 10))

    def make(key):
        k_init, k_noise, k_train = jax.random.split(key, 3)
        noisy = images + math.sqrt(e2.NOISE_VARIANCE) * np.asarray(jax.random.normal(k_noise, images.shape))
        return model.init(k_init), data.from_arrays(noisy, labels, classes=10, description=source), k_train

    params, sets, keys = seed_runs(0, SEEDS, make)
    plan = e2.schedule(e2.SCALES["full"], math.ceil(len(images) / e2.BATCH))
    rules = {k: plan[k] for k in ("min_steps", "stop_delta", "stop_patience")}
    options = dict(model=model, keys=keys, loss="cross_entropy", learning_rate=1e-3, batch_size=e2.BATCH,
                   steps=plan["steps"], log_every=plan["log_every"])
    masks = {"dense": nets.dense_mask(params)}
    masks["random 0.8^26"] = prune_runs("random", params, sets, 0.8**26, keys, model=model, loss="cross_entropy")
    rows = {}
    for name, mask in masks.items():
        row = {}
        for label, extra in (("with the rules", rules), ("to the cap", {})):
            start = time.perf_counter()
            _, history = jax.block_until_ready(train.fit_batched(params, mask, sets, **options, **extra))
            row[label] = {"seconds": time.perf_counter() - start,
                          "periods_run": (np.asarray(history["steps_run"]) // plan["log_every"]).tolist()}
        row["speedup"] = row["to the cap"]["seconds"] / row["with the rules"]["seconds"]
        rows[name] = row
    report("train_stop", {"seeds": SEEDS, "period_steps": plan["log_every"], "cap_periods": plan["steps"] // plan["log_every"],
                          "matmul_gflops_float32": matmul_gflops(), "masks": rows})


if __name__ == "__main__":
    main()
