"""Mask-information benchmark (issue 6): experiment E5 at full scale, target <= 10 minutes on 2 CPU cores.

Full scale: 32 000 sampled data sets x both losses (MSE p = 21, cross-entropy p = 20) x every number of pruned
parameters x IMP (one parameter per round: 20 or 19 trainings of 500 gradient-descent steps per data set),
MagAfter, SNIP, GraSP and SynFlow, then every entropy estimate. The per-data-set pipelines run batched
(``lawrob.info.sample_masks``: shard_map over the CPU devices, lax.map over chunks, vmap inside a chunk).

(1) chunk sweep: median seconds to sample the masks of ``--sweep-datasets`` MSE data sets (after a warm-up
    call that compiles), for each chunk size;
(2) the full E5 run (``python -m lawrob.checks.e5_mask_information --scale full``), wall time end to end,
    compile included, written to the checkout's committed results paper_checks/results/e5/.

    uv run python benchmarks/bench_info.py [--devices 2] [--chunks 512,2048,8192] [--skip-sweep] [--skip-full]
"""

import argparse
import os
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=os.cpu_count(), help="CPU devices (one per core)")
    parser.add_argument("--chunks", default="512,2048,8192")
    parser.add_argument("--sweep-datasets", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={args.devices}"
    import warnings

    import jax

    from _common import median_time, report  # benchmarks/_common.py

    from lawrob import info
    from lawrob.checks import e5_mask_information as e5
    from lawrob.checks._common import COMMITTED

    warnings.filterwarnings("ignore", message="Explicitly requested dtype float64")
    results = {"devices": len(jax.devices()), "load_average_start": os.getloadavg()}
    if not args.skip_sweep:
        pipeline, sample = e5.make_pipeline("mse", e5.SCALES["full"]["steps"]), e5.sample_data("mse")
        sweep = {}
        for chunk in args.chunks.split(","):
            chunk = None if chunk == "full" else int(chunk)

            def call():
                info.sample_masks(pipeline, sample, key=jax.random.key(1), datasets=args.sweep_datasets, chunk_size=chunk)

            call()
            median, times = median_time(call, repeats=args.repeats)
            sweep[str(chunk)] = {"median_s": round(median, 2), "times_s": [round(t, 2) for t in times],
                                 "datasets_per_s": round(args.sweep_datasets / median)}
            print(chunk, sweep[str(chunk)], flush=True)
        results["chunk_sweep_mse"] = {"datasets": args.sweep_datasets, **sweep}
    if not args.skip_full:
        start = time.perf_counter()
        out = COMMITTED / "e5"
        out.mkdir(parents=True, exist_ok=True)
        verdict = e5.run("full", out)
        results["e5_full"] = {"wall_s": round(time.perf_counter() - start, 1), "settings": verdict["settings"],
                              "chunk_size": info.default_chunk(), "passed": verdict["passed"],
                              "measured": verdict["measured"]}
    results["load_average_end"] = os.getloadavg()
    report("bench_info", results)


if __name__ == "__main__":
    main()
