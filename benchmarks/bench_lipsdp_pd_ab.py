"""The primal-dual LipSDP solver of the checkout against the one of another commit, interleaved in one process.

    uv run python benchmarks/bench_lipsdp_pd_ab.py REV [--nets 784-256-10 784-512-512-1 ...] [--repeats 2]

REV's ``lawrob/lipschitz/_lipsdp_pd.py`` is read with ``git show`` and loaded as a module beside the current one;
both solve the same networks (``bench_lipsdp_scale.NETWORKS``, random init and "trained-like") through
``lipsdp_primal_dual_bounds``, one compile call each, then ``--repeats`` timed calls alternating old and new, so
that a load that comes and goes hits both. Prints per network the iterations, certified value and dual objective
of each, and their times. Only the ratio of the times means something on a shared machine.
"""

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402
from bench_lipsdp_scale import NETWORKS, network  # noqa: E402

from lawrob.lipschitz import _lipsdp_bound, _lipsdp_pd  # noqa: E402


def solver_at(rev: str):
    """``_lipsdp_pd`` as it was at ``rev``."""
    source = subprocess.run(["git", "show", f"{rev}:lawrob/lipschitz/_lipsdp_pd.py"], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).parent).stdout
    path = Path(tempfile.mkdtemp()) / "lipsdp_pd_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("lipsdp_pd_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solve(module, net, sizes):
    _lipsdp_bound._lipsdp_pd = module  # lipsdp_primal_dual_bounds looks the solver up at call time
    try:
        return _lipsdp_bound.lipsdp_primal_dual_bounds([net], sizes, chunk=1)[0]
    finally:
        _lipsdp_bound._lipsdp_pd = _lipsdp_pd


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rev", help="the commit to compare with (e.g. HEAD~1)")
    parser.add_argument("--nets", nargs="+", default=None, help="architectures like 784-256-10 (default: all)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    solvers = {"old": solver_at(args.rev), "new": _lipsdp_pd}
    rows = []
    for sizes, kind in NETWORKS:
        if args.nets and "-".join(map(str, sizes)) not in args.nets:
            continue
        net, hidden = network(sizes, kind), (sizes[0],) + tuple(sizes[1:-1])
        results = {name: solve(module, net, hidden) for name, module in solvers.items()}  # compile
        times: dict[str, list[float]] = {name: [] for name in solvers}
        for _ in range(args.repeats):
            for name, module in solvers.items():
                start = time.perf_counter()
                results[name] = solve(module, net, hidden)
                times[name].append(time.perf_counter() - start)
        rows.append({"network": "-".join(map(str, sizes)), "kind": kind, "times": times,
                     **{f"{name} (value, iterations, dual objective)": results[name] for name in solvers},
                     "relative value difference": (results["new"][0] - results["old"][0]) / results["old"][0]})
        print(rows[-1], flush=True)
    report("lipsdp_pd_ab", {"rev": args.rev, "rows": rows})


if __name__ == "__main__":
    main()
