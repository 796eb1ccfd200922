"""Running a grid: groups of equal shapes train in one batched call, each run is then measured and bounded.

The scheduler. For every group of runs with equal shapes: inputs (``inputs``: data, initialization) -> masks
(``masks``: the pruning method) -> training (batched over the group, sharded over the local devices) ->
the frontier search for runs whose objective is "robust" (``robust.frontier``) ->
information (``masks.information_bits``) -> Lipschitz bounds (batched) -> the rest of each run's measurement
(``measure``: bracket, p_eff, both papers' bounds, verdict) in threads. Each run's state is a ``RunState``; a
stage that fails for a run gives it its failure row and the later stages skip it. Finished groups (or batches of
a group, ``group_runs``) are appended atomically to the results store, so a sweep killed at any moment resumes without losing or duplicating a row.
With ``jax.distributed`` initialized, each process claims the costliest group left whenever it is free (an
atomic counter per group in the distributed runtime's key-value store), so the shares balance however unequal
the groups; every process writes its own part and process 0 merges them.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks, lipschitz, nets, prune, train
from lawrob.progress import Progress, logger
from lawrob.sweep import manifest, saved
from lawrob.sweep.config import Run
from lawrob.sweep.cost import group_seconds, plan
from lawrob.sweep.grid import Grid, grid_id, groups_of
from lawrob.sweep.inputs import dataset_of, model_of, train_options
from lawrob.sweep.masks import error_text, information_bits, make_masks
from lawrob.sweep.certificate import certificates
from lawrob.sweep.frontier import frontier_stage
from lawrob.sweep.measure import RunState, failure_row, measure_row, split_by
from lawrob.sweep.store import ResultStore


def _healthy(states: list[RunState]) -> list[RunState]:
    return [s for s in states if s.failure is None]


def _mask_stage(states: list[RunState], model: nets.MLP) -> None:
    masks, extras, failed = make_masks([s.run for s in states], model, [s.init for s in states],
                                       [s.dataset for s in states])
    for i, state in enumerate(states):
        state.mask, state.columns = masks[i], extras[i]
        if i in failed:
            state.fail("masks", failed[i])
        else:
            state.columns["collapsed"] = bool(np.any(np.asarray(prune.layer_collapse(state.mask))))


def _fit_batched(states: list[RunState], model: nets.MLP, devices):
    return train.fit_batched(
        train.stack([s.init for s in states]), train.stack([s.mask for s in states]),
        train.stack([s.dataset for s in states]), model=model, keys=jnp.stack([s.run.keys.train for s in states]),
        learning_rate=jnp.asarray([s.run.config.learning_rate for s in states]), devices=devices,
        **train_options(states[0].run.config))


def _finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(leaf)))) for leaf in jax.tree.leaves(tree))


def _train_stage(states: list[RunState], model: nets.MLP, devices) -> None:
    """One batched training call for the healthy runs; if it fails as a whole, each run alone (a failing run
    gets its reason). A run whose training diverges (non-finite parameters or loss) fails at this stage."""
    todo = _healthy(states)
    if not todo:
        return
    try:  # host copies: the measuring threads touch no array that lives on several devices
        batches = [(todo, jax.device_get(_fit_batched(todo, model, devices)))]
    except Exception:  # noqa: BLE001 - retried run by run below, where a failing run gets its reason
        batches = []
        for state in todo:
            try:
                batches.append(([state], jax.device_get(_fit_batched([state], model, devices))))
            except Exception as error:  # noqa: BLE001 - recorded in the run's row
                state.fail("train", error_text(error))
    for part, (trained, history) in batches:
        for b, state in enumerate(part):
            state.params = jax.tree.map(lambda a: a[b], trained)
            state.history = jax.tree.map(lambda a: a[b], history)
            if not _finite((state.params, state.history["loss"], state.history["mse"])):
                state.fail("train", "diverged: non-finite parameters or loss after training "
                           f"(learning_rate = {state.run.config.learning_rate:g})", diverged=True)


def _information_stage(states: list[RunState], model: nets.MLP) -> None:
    for state in _healthy(states):
        try:
            assert state.mask is not None, "the mask stage sets every healthy run's mask"
            state.information = information_bits(state.run, model, state.init, state.mask)
        except Exception as error:  # noqa: BLE001 - recorded in the run's row
            state.fail("information", error_text(error))


def _batched_bounds(states: list[RunState], model: nets.MLP, batch_lipschitz: bool | None,
                    progress: Progress) -> tuple[dict, dict]:
    """({run hash: lower Bound}, {run hash: upper Bound}) from one batched call per upper-bound method (and,
    only with ``batch_lipschitz``, by default on an accelerator, per lower-bound setting); a batch that fails
    leaves its runs to the measurement, which computes them one by one and records a failure in the run's row."""
    lowers: dict[str, Any]
    uppers: dict[str, Any]
    lowers, uppers = {}, {}
    progress.phase("upper bound")
    # One batched call before the threads: on CPU it costs what one call per run does, and the barrier
    # method's linear algebra already keeps every core busy (threads made it 1.3x slower).
    uppers |= {s.run.hash: s.upper_bound for s in states if s.upper_bound is not None}
    for part in split_by([s for s in states if s.upper_bound is None], lambda s: s.upper[0]):
        try:
            found = lipschitz.upper_batch(train.stack([s.params for s in part]), train.stack([s.mask for s in part]),
                                          model=model, method=part[0].upper[0])
            uppers |= {s.run.hash: bound for s, bound in zip(part, found)}
        except Exception:  # noqa: BLE001 - measured run by run
            pass
    if batch_lipschitz is None:  # the search, batched, was 1.07x slower on CPU and gains 1.3x from threads there
        batch_lipschitz = jax.default_backend() != "cpu"
    if batch_lipschitz:
        progress.phase("lower bound")
        for part in split_by(states, lambda s: (s.run.config.lower_method, s.run.config.lip_search_starts)):
            config = part[0].run.config
            try:
                found = lipschitz.lower_batch(train.stack([s.params for s in part]),
                                              train.stack([s.mask for s in part]), model=model,
                                              points=jnp.stack([s.dataset.x for s in part]),
                                              key=jnp.stack([s.run.keys.lipschitz for s in part]),
                                              method=config.lower_method, starts=config.lip_search_starts)
                lowers |= {s.run.hash: bound for s, bound in zip(part, found)}
            except Exception:  # noqa: BLE001 - measured run by run
                pass
    progress.phase("lower bound and measurement")
    return lowers, uppers


def _measure_stage(states: list[RunState], model: nets.MLP, workers: int | None, batch_lipschitz: bool | None,
                   progress: Progress) -> dict[str, dict]:
    """{run hash: measured row} of the healthy runs: batched Lipschitz bounds, then the rest in threads."""
    todo = _healthy(states)
    if not todo:
        return {}
    lowers, uppers = _batched_bounds(todo, model, batch_lipschitz, progress)

    def measure(state: RunState) -> dict:
        h = state.run.hash
        try:
            row = measure_row(state, model, lowers.get(h), uppers.get(h))
        except Exception as error:  # noqa: BLE001 - recorded in the run's row
            row = failure_row("measure", error_text(error))
        progress.advance()
        return row

    if workers is None:  # one per core; serial beside several local devices, whose collectives need XLA's threads
        workers = (os.cpu_count() or 1) if jax.local_device_count() == 1 else 1
    with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        return dict(zip([s.run.hash for s in todo], pool.map(measure, todo)))


def _history_record(history) -> dict:
    if history is None:
        return {"step": [], "noise_corr": [], "loss": []}
    return {name: np.asarray(history[name]).tolist() for name in ("step", "noise_corr", "loss")}


def run_group(runs: list[Run], devices=None, workers: int | None = None, batch_lipschitz: bool | None = None,
              progress: Progress | None = None, save_to: Path | None = None,
              upper: dict[str, tuple[str, str]] | None = None) -> tuple[list[dict], dict[str, dict]]:
    """Masks, one batched training call for the whole group, the Lipschitz upper bounds in one batched call (the
    lower bounds too when ``batch_lipschitz``, by default on an accelerator), then the rest of the per-run
    measurements in ``workers`` threads (default: one per CPU core; the LP solvers and XLA release the GIL, and
    each run's result depends on its own keys only, so the rows equal those of a serial evaluation). Everything
    that runs on several devices (the training, an information estimate's pruning pipelines) stays in this
    thread: concurrent multi-device executions from several threads can starve XLA's CPU collectives.

    A run whose pruning or training fails, whose training diverges (non-finite parameters or loss) or whose
    measurement raises is a row with its reason (``measure.failure_row``), never an abort of the group.
    ``save_to``: write the trained parameters and masks there (``saved.save_group``). ``upper``: {run hash:
    (upper-bound method, rule)} for the whole grid (``certificate.certificates``; default: of these runs).
    Returns (rows in the order of ``runs``, {run hash: training history})."""
    progress = progress or Progress(len(runs), "group", bar=False)
    model = model_of(runs[0].config)
    progress.phase("data and masks")
    upper = certificates(runs) if upper is None else upper
    states = [RunState(r, dataset_of(r.config, r.keys.data), model.init(r.keys.init), upper[r.hash]) for r in runs]
    _mask_stage(states, model)
    progress.phase("train")
    _train_stage(states, model, devices)
    if any(r.config.objective == "robust" for r in runs):
        progress.phase("frontier")
    frontier_stage(states, model, devices)
    if save_to is not None:  # the networks measured: the frontier's where the objective is "robust"
        saved.save_group(save_to, runs, [None if s.params is None else (s.params, None, s.mask) for s in states])
    progress.phase("information")
    _information_stage(states, model)
    if len(_healthy(states)) < len(states):
        progress.advance(len(states) - len(_healthy(states)))
    measured = _measure_stage(states, model, workers, batch_lipschitz, progress)
    rows = []
    for state in states:
        run = state.run
        result = state.failure if state.failure is not None else measured[run.hash]
        row = {**run.config.as_dict(), "diverged": False, "failed_stage": "", **result, **state.columns,
               "config_hash": run.hash}
        if row.get("bound_violation"):
            logger.warning(f"!!! BOUND VIOLATION in run {run.hash}: certified Lipschitz upper bound {row['lip_upper']:.6g} "
                           f"is below a rigorous theorem bound ({row['bound_bs_rigorous']}, {row['bound_nfp_rigorous']}): "
                           f"a counterexample to the theorem or a bug. Config: {run.config.as_dict()}")
        rows.append(row)
    return rows, {s.run.hash: _history_record(s.history) for s in states}


def _refuse_other_grids(out_dir: Path, this_grid: str, runs: list[Run], done: set[str], add: bool) -> None:
    """A folder holds the results of the grids recorded in its ``grids/``; rerunning one of them resumes it,
    anything else needs ``add``."""
    known = {p.stem for p in (out_dir / "grids").glob("*.json")}
    foreign = done - {r.hash for r in runs}
    if add or this_grid in known or (not known and not foreign):
        return
    held = f"grid(s) {sorted(known)}" if known else f"{len(foreign)} runs of another grid"
    raise ValueError(f"out_dir {out_dir} holds results of {held}, not of this grid ({this_grid}); choose another "
                     "--out, or add this grid's runs to the folder with add=True (--add), the report keeps the grids apart")


BARRIER_TIMEOUT_MS = 2**31 - 1  # about 24.8 days: the processes of a sweep may finish their shares hours apart
_SWEEPS = itertools.count()  # every process counts alike, so each sweep's names are new and the same in all


def _coordination_client():
    from jax._src import distributed

    client = distributed.global_state.client
    if client is None:
        raise RuntimeError("a sweep over several processes needs jax.distributed.initialize(...) first")
    return client


def wait_for_all_processes(name: str) -> None:
    """Block until every process of the ``jax.distributed`` job has called this with the same ``name``.

    A barrier of the distributed runtime's coordination service (as orbax's ``sync_global_processes``), not a
    device collective: XLA's CPU collectives give up when the processes arrive more than 30 s apart (measured with
    jax 0.10: "Gloo context initialization failed: DEADLINE_EXCEEDED"), and a sweep's processes finish their shares
    of the groups minutes to hours apart."""
    _coordination_client().wait_at_barrier(name, BARRIER_TIMEOUT_MS)


def claimed_groups(groups: list[tuple[str, list[Run]]], name: str):
    """Yield the groups (``(key, runs)`` pairs) this process claims, costliest first (``--dry-run``'s cost model).

    Every process walks the same list and asks for each group when it is free to run it; the first to ask gets it
    (``key_value_increment`` of a counter named after ``name`` and the group's key is atomic), the others skip it.
    This is list scheduling, costliest first: the shares balance however unequal the groups are, and no group is
    run twice, even by processes that read the finished runs at different times (the keys name whole groups of the
    grid, so they agree, and each finished group was claimed)."""
    client = _coordination_client()
    for key, group in sorted(groups, key=lambda item: -group_seconds([r.config for r in item[1]], 1)):
        if client.key_value_increment(f"{name}/{key}", 1) == 1:
            yield group


def _batches(groups: list[list[Run]], group_runs: int | None) -> list[list[Run]]:
    """Each shape group cut into consecutive batches of at most ``group_runs`` runs (None: whole groups)."""
    if group_runs is None:
        return groups
    return [g[i:i + group_runs] for g in groups for i in range(0, len(g), group_runs)]


def run(grid: Grid, out_dir: str | Path, *, add: bool = False, devices: Sequence | None = None,
        workers: int | None = None, batch_lipschitz: bool | None = None, progress: bool | None = None,
        group_runs: int | None = None) -> list[dict]:
    """Run every unfinished run of ``grid`` into ``out_dir`` and return the merged results table (list of rows).

    Rerunning the same grid resumes it: finished runs are not repeated. A folder that holds another grid's
    results is refused unless ``add`` (then both grids' runs share the table and the report keeps them apart).
    A second process writing into the same folder is refused (``store.FolderLocked``). With ``jax.distributed``
    initialized, the ``jax.process_count()`` processes share the groups (``claimed_groups``); ``devices``
    (default: the local devices) shard each group's run axis; ``workers`` threads measure the trained runs
    (default: one per core); ``batch_lipschitz``: compute a group's Lipschitz lower bounds in one batched call
    (default: on an accelerator; the rows are the same either way, up to float64 rounding). ``progress``: a tqdm
    bar (True), log lines (False) or a bar on a terminal (None). ``group_runs``: train and save a shape group in
    batches of at most this many runs (default: whole groups), so that a sweep stopped inside a long group keeps
    its finished batches; the rows are the same either way, up to float rounding. The folder gets
    ``manifest.json`` (versions, devices, commit, times, grids) and ``grids/<id>.json``.

    Parameters
    ----------
    grid : Grid
        The sweep.
    out_dir : str or pathlib.Path
        The results folder.
    add : bool
        Add to a folder holding another grid's results.
    devices : sequence, optional
        The devices to shard each group over.
    workers : int, optional
        Threads measuring the trained runs.
    batch_lipschitz : bool, optional
        Batch a group's Lipschitz lower bounds.
    progress : bool, optional
        A bar, log lines, or (None) a bar on a terminal.
    group_runs : int, optional
        The most runs trained in one batched call and saved together.

    Returns
    -------
    list of dict
        The merged results table.

    Raises
    ------
    ValueError
        If ``out_dir`` holds another grid's results and ``add`` is False.
    FolderLocked
        If another process writes into ``out_dir``.
    """
    out_dir = Path(out_dir)
    if workers is not None:
        workers = _checks.positive_int("workers", workers)
    if group_runs is not None:
        group_runs = _checks.positive_int("group_runs", group_runs)
    process, processes = jax.process_index(), jax.process_count()
    runs = grid.runs()  # listed once: the groups and the grid's id are computed from this list
    groups, this_grid, upper = groups_of(runs), grid_id(runs), certificates(runs)
    started = manifest.now()
    with ResultStore(out_dir, process=process, writer=True) as store:
        done = store.done()
        if process == 0:
            _refuse_other_grids(out_dir, this_grid, runs, done, add)
            manifest.record_grid(out_dir, grid, this_grid)
        todo = [(g[0].hash, left) for g in _batches(groups, group_runs)
                if (left := [r for r in g if r.hash not in done])]
        total = sum(len(g) for _, g in todo)
        logger.info(f"sweep: {len(runs)} runs in {len(groups)} groups; {total} to do"
                    + (f" over {processes} processes (this is process {process}; each takes the costliest group"
                       " left when it is free)" if processes > 1 else ""))
        if total:
            for warning in plan(grid)["warnings"]:
                logger.warning(f"sweep: warning: {warning}")
        name = f"lawrob-sweep-{this_grid}-{next(_SWEEPS)}"
        mine = claimed_groups(todo, f"{name}/claim") if processes > 1 else (g for _, g in todo)
        with Progress(total if processes == 1 else 0, "sweep", "run", bar=progress) as bar:
            for group in mine:
                if processes > 1:
                    bar.grow(len(group))
                    c = group[0].config
                    logger.info(f"sweep: process {process} takes the {len(group)} runs of d = {c.d}, n = {c.n}, "
                                f"width {c.width}, depth {c.depth}")
                save_to = out_dir / "params" / f"group-{group[0].hash}.npz" if grid.save_params else None
                rows, histories = run_group(group, devices, workers, batch_lipschitz, bar, save_to, upper)
                store.append(rows, histories)
        if processes > 1:
            wait_for_all_processes(f"{name}/done")
        if process == 0:
            store.write_table(order=[r.hash for r in runs])
            violations = [r for r in store.rows() if r.get("bound_violation")]
            if violations:
                logger.warning(f"!!! {len(violations)} run(s) with a certified upper bound below a rigorous theorem bound")
            manifest.record_session(out_dir, this_grid, started, ran=total)
        return store.rows()
