"""Shared helpers for the benchmark scripts: medians, machine and version facts."""

import json
import os
import platform
import statistics
import subprocess
import time


def median_time(fn, repeats=5):
    """Median wall time of fn() over ``repeats`` calls (fn must block until its result is ready)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def machine() -> dict:
    import jax
    import numpy

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
            "numpy": numpy.__version__, "backend": jax.default_backend(), "devices": str(jax.devices()), "commit": commit}


def report(name: str, results: dict) -> None:
    print(json.dumps({"benchmark": name, "machine": machine(), **results}, indent=2))
