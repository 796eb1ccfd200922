"""Trained networks kept for later: with ``save_params = true`` a sweep writes one compressed ``.npz`` per group
(``params/group-<first run's hash>.npz``), so a network can be measured again without retraining."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np

from lawrob._io import atomic_path
from lawrob.sweep.grid import Run


def save_group(path: Path, runs: list[Run], per_run: list) -> None:
    """One compressed ``.npz``: ``config_hash`` [B] and ``params/<layer>/<leaf>``, ``mask/<layer>/<leaf>`` with
    a leading run axis; runs without trained parameters are left out."""
    kept = [(r.hash, item) for r, item in zip(runs, per_run) if item is not None]
    if not kept:
        return
    arrays = {"config_hash": np.array([h for h, _ in kept])}
    for name, index in (("params", 0), ("mask", 2)):
        for layer in range(len(kept[0][1][index])):
            for leaf in kept[0][1][index][layer]:
                arrays[f"{name}/{layer}/{leaf}"] = np.stack([np.asarray(item[index][layer][leaf]) for _, item in kept])
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type, unused-ignore]  # numpy >= 2.1 stubs: **kwds are arrays too


def load_params(out_dir: str | Path, config_hash: str) -> tuple[list[dict], list[dict]]:
    """(params, mask) of a run of a sweep with ``save_params = true``, as ``nets.MLP`` pytrees (float32).

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The results folder.
    config_hash : str
        The run's hash.

    Returns
    -------
    tuple of (list of dict, list of dict)
        The parameters and the mask.

    Raises
    ------
    ValueError
        If the run's parameters were not saved.
    """
    folder = Path(out_dir) / "params"
    for path in sorted(folder.glob("group-*.npz")):
        with np.load(path) as saved:
            hashes = list(saved["config_hash"])
            if config_hash in hashes:
                i = hashes.index(config_hash)
                trees: dict[str, dict] = {"params": {}, "mask": {}}
                for name in saved.files:
                    if name != "config_hash":
                        tree, layer, leaf = name.split("/")
                        trees[tree].setdefault(int(layer), {})[leaf] = jnp.asarray(saved[name][i])
                return tuple([trees[t][k] for k in sorted(trees[t])] for t in ("params", "mask"))  # type: ignore[return-value]  # two lists
    raise ValueError(f"config_hash {config_hash!r}: no saved parameters under {folder} (run the grid with save_params = true)")
