"""Bound-vs-empirical sweeps: a grid -> batched, sharded, resumable execution -> a tidy results table.

    grid = Grid.from_toml("sweep.toml")        # or Grid(axes={...}, fixed={...}, seeds=3)
    rows = run(grid, "out/")                   # resumable: rerun to finish an interrupted sweep
    write_report("out/")                       # figures + report.md with a verdict table
"""

from lawrob.sweep.execute import plan, run
from lawrob.sweep.grid import SCHEMA, SHAPE_KEYS, Grid, Run, config_hash
from lawrob.sweep.report import write_report
from lawrob.sweep.store import ResultStore, read_csv

__all__ = ["Grid", "Run", "SCHEMA", "SHAPE_KEYS", "ResultStore", "config_hash", "plan", "read_csv", "run", "write_report"]
