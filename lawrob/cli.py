"""The ``lawrob`` command. Each subcommand has a ``_add_<name>`` parser function and a ``_run_<name>`` handler."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path

from lawrob._io import atomic_write_text
from lawrob.progress import configure_logging, logger

_Subparsers = argparse._SubParsersAction  # what ``add_subparsers`` returns; the _add_<name> functions add to it


DEMO_GRID = """
# lawrob demo: the law of robustness with a bound that applies. Random +-1 labels (sigma2 = 1) on N(0, I/d),
# n = 2400 and eps = 0.9, delta = 0.5, where the rigorous No-Free-Prune bound is valid (its mixture condition
# needs n >= 2333), so a network fits below the noise level when its train MSE is <= 0.1. Dense two-hidden-layer
# ReLU MLPs of three widths, each trained plainly (objective "fit") and searched for the most robust network that
# still fits (objective "robust"); every network is certified by one upper-bound method for the whole grid.
seeds = 1

[fixed]
measure = "gaussian"
d = 16
n = 2400
depth = 2
steps = 1500
log_every = 50
learning_rate = 1e-2
stop_loss = 0.04
eps = 0.9
delta = 0.5
lip_search_starts = 16
robust_trials = 4

[axes]
width = [64, 96, 128]
objective = ["fit", "robust"]
"""


def _add_demo(sub: _Subparsers) -> None:
    parser = sub.add_parser("demo", help="run the embedded default sweep and write results, figures and a report")
    parser.add_argument("--out", type=Path, default=Path("lawrob-out"), help="output folder (default: ./lawrob-out)")
    parser.add_argument("--print-grid", action="store_true", help="print the embedded grid (TOML) and exit")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    """The embedded grid -> lawrob sweep -> lawrob report, into ./lawrob-out/."""
    if args.print_grid:
        print(DEMO_GRID.strip())
        return 0
    _writable_folder("--out", args.out)
    config = args.out / "demo.toml"
    atomic_write_text(config, DEMO_GRID.lstrip())
    return _sweep_and_report(config, args.out, add=False)


def _writable_folder(option: str, folder: Path) -> None:
    """Create ``folder`` if needed and prove it writable before any computation; a ValueError naming ``option``
    otherwise (a file in its place, no permission, a read-only or full disk)."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".lawrob-write-test-"):
            pass
    except OSError as error:
        raise ValueError(f"{option} {folder} is not writable: {error.strerror or error}") from None


def safe_folder_name(path: Path) -> str:
    """A folder name from a grid file's name: its stem with anything but letters, digits, '.', '_' and '-'
    replaced, no leading dots (``...toml`` would give ``..``); "grid" when nothing is left."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem).lstrip(".")
    return name or "grid"


def _sweep_and_report(config: Path, out: Path, add: bool, group_runs: int | None = None) -> int:
    import jax

    from lawrob import sweep

    grid = sweep.Grid.from_toml(config)
    start = time.perf_counter()
    rows = sweep.run(grid, out, add=add, group_runs=group_runs)
    if jax.process_index() != 0:  # process 0 merges the parts and writes the report
        return 0
    report = sweep.write_report(out)
    summary = json.loads((out / "verdicts.json").read_text())
    fitted = sum(bool(r.get("fits_below_noise")) for r in rows)
    failed = sum(bool(r.get("failed_stage")) for r in rows)
    print(f"{len(rows)} runs in {time.perf_counter() - start:.0f} s; {fitted} fit below the noise level"
          + (f"; {failed} could not be measured (see fit_reason)" if failed else ""))
    for check in summary["checks"]:
        print(f"  {check.get('grid', '') and check['grid'] + ': '}{check['check']}: {check['measured']}"
              + ("" if check["passed"] is None else f"  [{'PASS' if check['passed'] else 'FAIL'}]"))
    print(f"table:  {out / 'results.csv'}\nreport: {report}")
    return 0 if all(c["passed"] is not False for c in summary["checks"]) else 1


def _add_sweep(sub: _Subparsers) -> None:
    parser = sub.add_parser("sweep", help="run a grid from a TOML file (rerunning it resumes)")
    parser.add_argument("config", type=Path, help="grid TOML file with [axes] and [fixed] tables (see README)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: ./lawrob-out/<config name>)")
    parser.add_argument("--add", action="store_true",
                        help="add this grid's runs to a folder holding another grid's results (the report keeps them apart)")
    parser.add_argument("--resume", action="store_true",
                        help="accepted for old scripts: rerunning the same grid into its folder always resumes")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (runs, shape groups, cost; the wall time for --num-processes) and exit")
    parser.add_argument("--group-runs", type=int, metavar="K",
                        help="train and save each shape group in batches of at most K runs (a long sweep stopped "
                             "inside a group keeps its finished batches)")
    _add_scale_out(parser)
    parser.set_defaults(handler=_run_sweep)


def _add_scale_out(parser: argparse.ArgumentParser) -> None:
    scale_out = parser.add_argument_group("scale-out over several processes or hosts (jax.distributed)")
    scale_out.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0 (all processes give the same)")
    scale_out.add_argument("--num-processes", type=int, help="number of processes in all")
    scale_out.add_argument("--process-id", type=int, help="this process's index, 0 .. num-processes - 1")
    scale_out.add_argument("--distributed", action="store_true",
                           help="initialize jax.distributed from the cluster environment (SLURM, Cloud TPU, ...)")


def _distributed_options(args: argparse.Namespace) -> bool:
    """Check the scale-out options; True when ``jax.distributed`` is to be initialized."""
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in explicit):
        if any(v is None for v in explicit):
            raise ValueError("--coordinator, --num-processes and --process-id must be given together")
        if not 0 <= args.process_id < args.num_processes:
            raise ValueError(f"--process-id must be in [0, {args.num_processes}), got {args.process_id}")
        return True
    return args.distributed


def _initialize_distributed(args: argparse.Namespace) -> None:
    """``jax.distributed.initialize`` from the explicit options, or from the cluster's environment."""
    import jax

    jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                               process_id=args.process_id)


def _run_sweep(args: argparse.Namespace) -> int:
    from lawrob import sweep

    grid = sweep.Grid.from_toml(args.config)
    if args.dry_run:
        plan = sweep.plan(grid, processes=args.num_processes or 1)
        for warning in plan["warnings"]:
            logger.warning(f"lawrob sweep: warning: {warning}")
        print(json.dumps(plan, indent=2))
        return 0
    distributed = _distributed_options(args)
    out = args.out or Path("lawrob-out") / safe_folder_name(args.config)
    _writable_folder("--out", out)
    if distributed:
        _initialize_distributed(args)
    return _sweep_and_report(args.config, out, add=args.add, group_runs=args.group_runs)


def _add_report(sub: _Subparsers) -> None:
    parser = sub.add_parser("report", help="figures and a Markdown report for a sweep's results folder")
    parser.add_argument("dir", type=Path, help="a folder written by `lawrob sweep` or `lawrob demo`")
    parser.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from lawrob import sweep

    print(sweep.write_report(args.dir))
    return 0


def _add_check(sub: _Subparsers) -> None:
    parser = sub.add_parser("check", help="run the paper checks E1..E7 (smoke scale by default) and print a verdict table")
    parser.add_argument("experiments", nargs="*", metavar="E", help="experiments to run, e.g. E1 E5 (default: all)")
    parser.add_argument("--scale", choices=("smoke", "full"), default="smoke")
    parser.add_argument("--out", type=Path, default=None,
                        help="base output folder, one subfolder per experiment (default: ./lawrob-out/checks, in the "
                             "current directory)")
    parser.add_argument("--update-committed", action="store_true",
                        help="write into the source checkout's committed full-scale results "
                             "paper_checks/results/<eN> instead (needs --scale full; not with --out)")
    _add_scale_out(parser)  # for the checks whose work is a sweep: each process runs its share of the groups
    parser.set_defaults(handler=_run_check)


def paper_check_modules() -> dict[str, str]:
    """{"E1": "lawrob.checks.e1_memorization_gaussian", ...}: the importable module of every paper check."""
    from lawrob import checks

    return checks.module_names()


def _run_check(args: argparse.Namespace) -> int:
    """Run the paper checks into ``--out``/<eN> (default ./lawrob-out/checks/<eN>); only ``--update-committed``
    (full scale, from a source checkout) writes into the checkout's paper_checks/results/<eN>."""
    import importlib
    import logging

    from lawrob.checks._common import output_folder
    from lawrob.progress import configure_logging, logger

    modules = paper_check_modules()
    wanted = [e.upper() for e in args.experiments] or sorted(modules)
    unknown = [e for e in wanted if e not in modules]
    if unknown:
        raise ValueError(f"experiments must be among {sorted(modules)}, got {unknown}")
    distributed = _distributed_options(args)
    if distributed:
        splittable = _splittable_checks(modules)
        unsplittable = [e for e in wanted if e not in splittable]
        if unsplittable:
            raise ValueError(f"--num-processes and --distributed split a check's sweep over processes: only the checks "
                             f"whose work is a sweep, {splittable}, can be split; got {unsplittable}")
    # every folder (and every refusal of --update-committed) before anything runs
    outs = {name: output_folder(name, args.out, scale=args.scale, update_committed=args.update_committed, base=True)
            for name in wanted}
    process = 0
    if distributed:
        _initialize_distributed(args)
        import jax

        process = jax.process_index()
    helper = process != 0  # runs its share of each check's sweep; process 0 runs its share and concludes
    # the checks' progress and verdict lines go to the lawrob logger: to stderr, unless someone set it up already
    # (and only for this call: a caller of main() in the same process keeps its logging as it was)
    own_setup = not logger.handlers and logger.level == logging.NOTSET
    handlers, propagate = list(logger.handlers), logger.propagate
    if own_setup:
        configure_logging(0)
    verdicts = []
    try:
        for name in wanted:
            module = importlib.import_module(modules[name])
            out = outs[name]
            out.mkdir(parents=True, exist_ok=True)
            print(f"{name}: running at {args.scale} scale -> {out}", flush=True)
            if helper:
                module.sweep_part(args.scale, out)
                print(f"{name}: process {process}'s share is done; process 0 writes the verdict", flush=True)
            else:
                verdicts.append(module.run(args.scale, out))
    finally:
        if own_setup:
            for handler in [h for h in logger.handlers if h not in handlers]:
                logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)
            logger.propagate = propagate
    if helper:
        return 0
    print(f"\n{'check':<6} {'scale':<6} {'verdict':<8} {'seconds':>8}  claim")
    for v in verdicts:
        print(f"{v['experiment']:<6} {v['scale']:<6} {'PASS' if v['passed'] else 'FAIL':<8} {v['seconds']:>8}  {v['claim']}")
    return 0 if all(v["passed"] for v in verdicts) else 1


def _splittable_checks(modules: dict[str, str]) -> list[str]:
    import importlib

    return [e for e in sorted(modules) if hasattr(importlib.import_module(modules[e]), "sweep_part")]


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def _integer(text: str) -> int:
    """An integer >= 1, also written as 1e6; 2.5 is refused."""
    value = _number(text)
    if not value.is_integer() or value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return int(value)


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _nonnegative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _unit_interval(text: str) -> float:
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), got {text!r}")
    return value


def _add_bound(sub: _Subparsers) -> None:
    parser = sub.add_parser("bound", help="a Lipschitz lower bound (BS Thm 3 or NFP Thm 4) and its conditions")
    parser.add_argument("--theorem", choices=("bs", "nfp"), default="bs", help="bs: Bubeck-Sellke; nfp: No Free Prune")
    parser.add_argument("--variant", choices=("paper", "rigorous"), default="paper")
    parser.add_argument("--n", type=_integer, required=True, help="number of samples (an integer >= 1; 1e6 is fine)")
    parser.add_argument("--d", type=_integer, required=True, help="input dimension (an integer >= 1)")
    parser.add_argument("--p", type=_integer, help="number of parameters (bs; for nfp without --p-eff: active weights)")
    parser.add_argument("--p-eff", type=_positive, help="nfp: effective parameter count p_eff (in --units), > 0")
    parser.add_argument("--info", type=_nonnegative, default=0.0, help="nfp without --p-eff: I(m; D) in --units (default 0)")
    parser.add_argument("--eps", type=_unit_interval, required=True, help="margin below the noise level, in (0, 1)")
    parser.add_argument("--delta", type=_unit_interval, required=True, help="failure probability, in (0, 1)")
    parser.add_argument("--W", type=_positive, help="diameter of the parameter set, > 0")
    parser.add_argument("--J", type=_positive, help="sup-norm Lipschitz constant of w -> f_w, > 0")
    parser.add_argument("--c", type=_positive, default=1.0, help="isoperimetric constant (default 1), > 0")
    parser.add_argument("--k", type=_integer, default=1, help="mixture components (default 1), an integer >= 1")
    parser.add_argument("--units", choices=("bits", "nats"), default="bits", help="units of p_eff and info (nfp)")
    parser.set_defaults(handler=_run_bound)


def _run_bound(args: argparse.Namespace) -> int:
    """Print the bound, whether its theorem's conditions hold (and why not), and sqrt(n d / p) or sqrt(n d / p_eff);
    exit status 1 when they do not hold (the printed value is then no bound)."""
    from lawrob import bounds

    def need(*names: str) -> None:
        missing = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is None]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required for --theorem {args.theorem}")

    if args.theorem == "bs":
        need("p", "W", "J")
        result = bounds.bubeck_sellke(args.n, args.d, args.p, args.eps, args.delta, args.W, args.J, c=args.c,
                                      k=args.k, variant=args.variant)
        scaling = "sqrt(n d / p)"
    else:
        if args.p_eff is None:
            if None in (args.p, args.W, args.J):
                raise ValueError("--p-eff, or --p with --W and --J (p_eff = info + p log(1 + 60 W J/eps) in --units), "
                                 "is required for --theorem nfp")
            args.p_eff = float(bounds.p_eff(args.info, args.p, args.W, args.J, args.eps, units=args.units))
            print(f"p_eff = I + p log(1 + 60 W J / eps) = {args.p_eff:.6g} {args.units}")
        result = bounds.no_free_prune(args.n, args.d, args.p_eff, args.eps, args.delta, c=args.c, k=args.k,
                                      variant=args.variant, units=args.units)
        scaling = "sqrt(n d / p_eff)"
    print(f"{result.theorem} ({result.variant}): Lip(f) >= {result.value:.6g}")
    print(f"valid: {'yes' if result.valid else 'no: ' + result.reason}")
    print(f"constant-free scaling {scaling} = {result.scaling:.6g}")
    return 0 if result.valid else 1


def _add_constants(sub: _Subparsers) -> None:
    parser = sub.add_parser("constants", help="re-derive every constant of both papers with sympy and print the report")
    parser.set_defaults(handler=_run_constants)


def _run_constants(args: argparse.Namespace) -> int:
    """The lawrob.symbolic report; exit status 1 if a must-hold row fails."""
    from lawrob import symbolic

    rows = symbolic.verify_all()
    print(symbolic.format_table(rows))
    return 1 if symbolic.failed(rows) else 0


def build_parser() -> argparse.ArgumentParser:
    import lawrob

    parser = argparse.ArgumentParser(prog="lawrob", description="Put the sparse Law of Robustness to the test.")
    parser.add_argument("--version", action="version", version=f"lawrob {lawrob.__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log lines (-v: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_demo, _add_sweep, _add_report, _add_check, _add_bound, _add_constants):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(-1 if args.quiet else args.verbose)
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError) as error:  # user errors and the file system's: one line, no traceback
        print(f"lawrob {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
