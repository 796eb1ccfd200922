"""lawrob.bounds and lawrob.symbolic (issue 3): vectorized bound evaluation over a grid, and verify_all().

Times (median over repeats, float64 NumPy on the CPU):
- ``bubeck_sellke`` and ``no_free_prune`` (both variants) over a grid of ``--points`` points (100 x 100 x 100 by
  default: n x p (or p_eff) x eps, broadcast from three axes), with every condition, the validity mask and the
  reason string; beside it the bare formula in one NumPy expression, to show the cost of the checks;
- ``p_eff`` and ``mixture_condition`` on the same grid;
- the closed-form inverses (smallest p, n) on the grid and the brentq inverse (eps) on ``--solves`` points;
- ``symbolic.verify_all()`` (cold: first call in a fresh process, then warm medians) and the import time of sympy.

    uv run python benchmarks/bench_bounds.py [--points 1000000] [--solves 1000] [--repeats 5]
"""

import argparse
import subprocess
import sys
import time

import numpy as np

from _common import median_time, report
from lawrob import bounds


def grid(points: int):
    side = round(points ** (1 / 3))
    n = np.logspace(6, 10, side).reshape(-1, 1, 1)
    p = np.logspace(2, 7, side).reshape(1, -1, 1)
    eps = np.linspace(0.01, 0.99, side).reshape(1, 1, -1)
    return n, p, eps, side**3


def bare_bs(n, d, p, eps, delta, W, J):
    return eps / 512 * np.sqrt(n * d / (p * np.log(60 * W * J / eps) + np.log(4 / delta)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--solves", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, p, eps, size = grid(args.points)
    d, delta, W, J = 100, 0.01, 10.0, 10.0
    results = {"grid_points": size, "command": "uv run python benchmarks/bench_bounds.py " + " ".join(sys.argv[1:])}

    def timed(name, fn):
        points = np.size(fn())
        seconds, _ = median_time(fn, args.repeats)
        results[name] = {"points": points, "median_s": round(seconds, 4), "ns_per_point": round(seconds / points * 1e9, 1)}

    timed("bare BS formula (one NumPy expression, no checks)", lambda: bare_bs(n, d, p, eps, delta, W, J))
    for variant in bounds.VARIANTS:
        timed(f"bubeck_sellke {variant}", lambda v=variant: bounds.bubeck_sellke(n, d, p, eps, delta, W, J, variant=v))
        timed(f"no_free_prune {variant}", lambda v=variant: bounds.no_free_prune(n, d, p, eps, delta, variant=v))
    info, k, L = n / 1e4, p / 1e2, n / 1e12  # third axes, so that every call covers the full grid
    timed("p_eff", lambda: bounds.p_eff(info, p, W, J, eps))
    timed("mixture_condition", lambda: bounds.mixture_condition(n, eps, delta, k=k))
    timed("bubeck_sellke_inverse p (closed form)",
          lambda: bounds.bubeck_sellke_inverse(p / 1e10, "p", n=n, d=d, eps=eps, delta=delta, W=W, J=J))
    timed("no_free_prune_inverse n (closed form)",
          lambda: bounds.no_free_prune_inverse(L, "n", d=d, p_eff=p, eps=eps, delta=delta))

    targets = np.logspace(-5, -2, args.solves)
    seconds, _ = median_time(lambda: bounds.bubeck_sellke_inverse(targets, "eps", n=1e9, d=d, p=1e5, delta=delta, W=W, J=J),
                             max(1, args.repeats // 2))
    results[f"bubeck_sellke_inverse eps (brentq, {args.solves} points)"] = {
        "median_s": round(seconds, 4), "us_per_point": round(seconds / args.solves * 1e6, 1)}

    script = ("import time; t = time.perf_counter(); import sympy; u = time.perf_counter(); "
              "from lawrob import symbolic; symbolic.verify_all(); print(u - t, time.perf_counter() - u)")
    cold = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    import_s, cold_s = map(float, cold.stdout.split())
    from lawrob import symbolic

    warm, _ = median_time(symbolic.verify_all, args.repeats)
    rows = symbolic.verify_all()
    results["symbolic.verify_all"] = {"rows": len(rows), "must_hold_failures": len(symbolic.failed(rows)),
                                      "import_sympy_s": round(import_s, 3), "cold_s (import lawrob.symbolic + first call)":
                                      round(cold_s, 3), "warm_median_s": round(warm, 3)}
    report("bounds", results)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.1f} s", file=sys.stderr)
