"""The declared type of every column of a sweep table: grid keys (from ``config.SCHEMA``) and measured columns.

Tables are read by these types, never by guessing from a cell's text, so a configuration hash made of digits
(``60e5958100166644``) stays a string and an integer column stays an integer. Types:

- ``str``: text; an empty cell reads as ``""`` (string columns are never missing)
- ``int``, ``float``, ``bool``: an empty cell reads as ``None`` (not computed, or the theorem's conditions fail)
- ``floats``: a list of floats (JSON in CSV, ``list<double>`` in Parquet); empty reads as ``None``

A test runs a sweep and checks that every column it writes is declared here.
"""

from __future__ import annotations

from lawrob.sweep.config import SCHEMA

TYPES = ("str", "int", "float", "bool", "floats")

# Columns a sweep measures, in the order they are described in the README.
MEASURED: dict[str, str] = {
    "sigma2": "float", "train_mse": "float", "fits_below_noise": "bool", "fit_reason": "str",
    "diverged": "bool", "collapsed": "bool", "failed_stage": "str",
    "train_accuracy": "float", "memorized": "float", "noise_corr": "float", "steps_run": "int",
    "train_steps_total": "int", "robust_target": "float", "robust_trials_fit": "int",
    "robust_restart": "int", "robust_restarts_fit": "int", "robust_restart_spread": "float",
    "lip_lower": "float", "lip_upper": "float", "lip_exact": "float",
    "lip_lower_method": "str", "lip_upper_method": "str", "lip_upper_rule": "str", "lip_seconds": "float",
    "active": "int", "p": "int", "W": "float", "J": "float", "radius": "float", "max_abs_weight": "float",
    "info_bits": "float", "info_source": "str", "p_eff": "float", "c": "float", "k": "int",
    "scaling_sqrt_nd_over_peff": "float",
    "bound_bs_paper": "float", "bound_nfp_paper": "float", "bound_reason_paper": "str",
    "bound_bs_rigorous": "float", "bound_nfp_rigorous": "float", "bound_reason_rigorous": "str",
    "upper_over_bound": "float", "upper_over_scaling": "float", "bound_violation": "bool",
    "imp_rounds": "int", "imp_round_noise_peaks": "floats",
    "config_hash": "str",
}

def _schema_type(default) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str"}[type(default)]


def column_types() -> dict[str, str]:
    """Every declared column -> its type: the grid keys (typed by their defaults) and the measured columns.

    Returns
    -------
    dict
        Column name -> "int", "float", "bool", "str" or "list".
    """
    types = {key: _schema_type(default) for key, (default, _) in SCHEMA.items()}
    clash = set(types) & set(MEASURED)
    if clash:  # a grid key and a result column with one name would lose the setting in the table
        raise AssertionError(f"grid keys {sorted(clash)} collide with measured columns")
    return types | MEASURED
