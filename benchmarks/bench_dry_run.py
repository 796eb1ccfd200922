"""Dry-run plans (issue 12): how long ``sweep.plan`` takes on huge grids, and its cost estimate against the
measured wall time of the same sweep.

Estimate vs actual: each grid runs in a fresh Python process (``lawrob sweep GRID --out TMP``, compilation
included, as a user runs it), timed from the start of the sweep to its end (``manifest.json``'s session) and
as the process's whole wall time; ``--grids`` picks among "demo" (the embedded demo grid) and "bench" (the
64-run grid of ``bench_sweep.py`` at 4 seeds: 32 runs). Plan time: the median of 3 ``plan`` calls on grids of
120 000 and 1 200 000 runs (before this issue the first took 108 s and the second did not finish).
Reference: the float32 matmul rate of this process (2048 x 2048), to compare machines.

    uv run python benchmarks/bench_dry_run.py [--grids demo bench]
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).parent))
from _common import median_time, report  # noqa: E402

from lawrob import sweep  # noqa: E402
from lawrob.cli import DEMO_GRID  # noqa: E402

BENCH_GRID = """seeds = 4
[fixed]
d = 8
n = 96
depth = 2
steps = 1000
log_every = 100
learning_rate = 3e-3
lip_search_starts = 32
[axes]
width = [32, 64]
method = ["random", "synflow"]
density = [0.5, 0.25]
"""
GRIDS = {"demo": DEMO_GRID, "bench": BENCH_GRID}


def matmul_gflops() -> float:
    a = jnp.ones((2048, 2048), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    seconds, _ = median_time(lambda: f(a).block_until_ready(), repeats=5)
    return 2 * 2048**3 / seconds / 1e9


def huge(runs_per_seed: int, seeds: int) -> sweep.Grid:
    return sweep.Grid(axes={"learning_rate": [1e-4 * (1 + i) for i in range(runs_per_seed // 40)],
                            "eps": [0.01 * (1 + i) for i in range(40)]}, seeds=seeds)


def estimate_vs_actual(name: str, text: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.toml"
        path.write_text(text)
        estimate = sweep.plan(sweep.Grid.from_toml(path))
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "lawrob.cli", "-q", "sweep", str(path), "--out", str(Path(tmp) / "out")],
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode not in (0, 1):
            raise RuntimeError(done.stderr[-2000:])
        session = json.loads((Path(tmp) / "out" / "manifest.json").read_text())["sessions"][-1]
        parse = datetime.datetime.fromisoformat
        sweep_seconds = (parse(session["finished"]) - parse(session["started"])).total_seconds()
    return {"runs": estimate["runs"], "groups": estimate["groups"], "estimated_seconds": estimate["estimated_seconds"],
            "estimated_compile_seconds": estimate["estimated_compile_seconds"], "sweep_seconds": sweep_seconds,
            "process_wall_seconds": round(wall, 1), "actual_over_estimate": round(sweep_seconds / estimate["estimated_seconds"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", nargs="*", default=list(GRIDS), choices=list(GRIDS))
    args = parser.parse_args()
    results = {"matmul_gflops_f32_2048": round(matmul_gflops(), 1), "plan_seconds": {}}
    for runs in (120_000, 1_200_000):
        grid = huge(runs // 30, 30)
        seconds, _ = median_time(lambda: sweep.plan(grid), repeats=3)
        results["plan_seconds"][str(sweep.plan(grid)["runs"])] = round(seconds, 5)
    results["estimate_vs_actual"] = {name: estimate_vs_actual(name, GRIDS[name]) for name in args.grids}
    report("dry_run", results)


if __name__ == "__main__":
    main()
