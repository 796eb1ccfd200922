"""Bound-vs-empirical sweeps: a grid -> batched, sharded, resumable execution -> a tidy results table.

    grid = Grid.from_toml("sweep.toml")        # or Grid(axes={...}, fixed={...}, seeds=3)
    rows = run(grid, "out/")                   # resumable: rerun to finish an interrupted sweep
    table = load("out/")                       # a pandas DataFrame with the declared column types
    write_report("out/")                       # figures + report.md with a verdict table
"""

from lawrob.sweep.columns import column_types
from lawrob.sweep.cost import plan
from lawrob.sweep.execute import run
from lawrob.sweep.saved import load_params
from lawrob.sweep.config import SCHEMA, SHAPE_KEYS, Run, RunConfig, config_hash
from lawrob.sweep.grid import Grid
from lawrob.sweep.report import scaling_fit, write_report
from lawrob.sweep.store import DamagedFile, FolderLocked, ResultStore, load, read_csv

__all__ = ["DamagedFile", "FolderLocked", "Grid", "Run", "RunConfig", "SCHEMA", "SHAPE_KEYS", "ResultStore", "column_types",
           "config_hash", "load", "load_params", "plan", "read_csv", "run", "scaling_fit", "write_report"]
