"""Running a grid: groups of equal shapes train in one batched call, each run is then measured and bounded.

For every run: data -> initialization -> mask (pruning method) -> training (batched over the group, sharded over
the local devices) -> Lipschitz bracket (certified lower and upper bounds, exact when small) -> p_eff -> the BS
and NFP bounds in both variants -> verdicts. Finished groups are appended atomically to the results store, so a
sweep killed at any moment resumes without losing or duplicating a row. With ``jax.distributed`` initialized,
process i takes the groups i, i + P, i + 2P, ...; every process writes its own part and process 0 merges them.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks, bounds, data, info, lipschitz, nets, prune, train
from lawrob.progress import Progress, logger
from lawrob.sweep import manifest, saved
from lawrob.sweep.cost import plan
from lawrob.sweep.grid import Grid, Run, model_of
from lawrob.sweep.store import ResultStore

def measure_of(config: dict):
    name = config["measure"]
    if name == "embedded_sphere":
        return data.EmbeddedSphere(config["d"], config["intrinsic_dim"])
    return data.MEASURES[name](config["d"])


def run_keys(config: dict) -> dict[str, jax.Array]:
    """Keys derived from the seed alone, so runs that differ only in method or density share data and init."""
    base = jax.random.key(config["seed"])
    return {name: jax.random.fold_in(base, i) for i, name in enumerate(("data", "init", "mask", "train", "lipschitz", "info"))}


def make_dataset(config: dict, key: jax.Array | None = None) -> data.Dataset:
    """The run's data set (``key``: another draw from the same generator, for the information estimate)."""
    key = run_keys(config)["data"] if key is None else key
    return data.make_dataset(key, measure_of(config), config["n"], config["target"], config["noise"],
                             amplitude=config["amplitude"], flip=config["flip"])


def train_options(config: dict) -> dict:
    return dict(steps=config["steps"], loss=config["loss"], optimizer=config["optimizer"],
                batch_size=config["batch_size"] or None, log_every=config["log_every"],
                stop_loss=config["stop_loss"] or None)


def _batched_masks(method: str, runs: list[Run], model, inits, datasets) -> tuple[list, list[dict]]:
    """Masks of runs of a training-based method (``prune.METHODS[method].pipeline``) that share a density,
    found with one batched pruning pipeline."""
    config = runs[0].config
    keys = jnp.stack([run_keys(r.config)["mask"] for r in runs])
    fit_options = train_options(config) | {"learning_rate": jnp.asarray([r.config["learning_rate"] for r in runs])}
    return prune.METHODS[method].pipeline(train.stack(inits), train.stack(datasets), config["density"], model=model,
                                          keys=keys, rate=config["imp_rate"], **fit_options)


def _failure(error: Exception) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0][:500]


def make_masks(runs: list[Run], model: nets.MLP, inits: list, datasets: list) -> tuple[list, list[dict], dict[int, str]]:
    """Every run's mask and extra columns, and {run index: why its pruning failed}: one-shot methods run by run,
    IMP and MagAfter batched per density (a batch that fails is retried run by run, so one failing run does not
    take the others with it). A failed run's mask is None."""
    masks, extras, failed = [None] * len(runs), [{} for _ in runs], {}
    batched: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        method, density = run.config["method"], run.config["density"]
        if method == "dense" or density == 1.0:
            masks[i] = nets.dense_mask(inits[i])
        elif prune.METHODS[method].trains:
            batched.setdefault((method, density, run.config["imp_rate"]), []).append(i)
        else:
            try:
                masks[i] = prune.prune(method, inits[i], datasets[i], density, run_keys(run.config)["mask"], model=model,
                                       loss=run.config["loss"], collapse="allow")
            except Exception as error:  # noqa: BLE001 - recorded in the run's row
                failed[i] = _failure(error)
    for (method, *_), idx in batched.items():
        tries = [idx]
        while tries:
            part = tries.pop()
            try:
                found, extra = _batched_masks(method, [runs[i] for i in part], model, [inits[i] for i in part],
                                              [datasets[i] for i in part])
            except Exception as error:  # noqa: BLE001 - retried run by run, then recorded in the run's row
                if len(part) > 1:
                    tries += [[i] for i in part]
                else:
                    failed[part[0]] = _failure(error)
                continue
            for i, m, e in zip(part, found, extra):
                masks[i], extras[i] = m, e
    return masks, extras, failed


def _float(x) -> float:
    return float(np.asarray(x))


def estimated_information(run: Run, model: nets.MLP, init) -> tuple[float, str]:
    """An upper bound on I(m; D) for the run's pruning pipeline, in bits, and a note saying what it is.

    The pipeline (``make_masks``: same initialization, same mask key) runs on ``info_datasets`` fresh data sets
    from the run's generator; for a pipeline deterministic given (init, D), I(m; D) <= H(m | init) (NFP Sec. 1.4),
    bounded above by ``lawrob.info.estimate_information``'s ``upper``: the least 95 % upper confidence bound
    among the plug-in, Chow-Liu and marginal estimators and the count ceiling.
    """
    config = run.config
    count = config["info_datasets"]
    datasets = [make_dataset(config, key) for key in jax.random.split(run_keys(config)["info"], count)]
    masks, _, failed = make_masks([run] * count, model, [init] * count, datasets)
    if failed:
        raise ValueError(f"the pruning pipeline failed on {len(failed)} of {count} fresh data sets: {next(iter(failed.values()))}")
    leaves = [jax.tree.leaves(m) for m in masks]
    flat = np.stack([np.concatenate([np.ravel(np.asarray(leaf)) for leaf in ls]) for ls in leaves])
    estimate = info.estimate_information(flat, groups=[leaf.size for leaf in leaves[0]])
    return estimate.upper, (f"{estimate.confidence:.0%} upper bound on H(m | init) >= I(m;D) from {count} data sets "
                            "(least of plug-in, Chow-Liu, marginal, ceiling)")


def information_bits(run: Run, model: nets.MLP, init, mask) -> tuple[float, str]:
    """The I(m; D) that goes into the run's p_eff, in bits, and what it is: 0 for a mask fixed without the data,
    else the ceiling log2 C(p, k) or, with ``info = "estimate"``, ``estimated_information``."""
    config = run.config
    if prune.METHODS[config["method"]].data_free or config["density"] == 1.0:
        return 0.0, "mask fixed without the data (data-free method or dense): I(m;D) = 0"
    if config["info"] == "estimate":
        return estimated_information(run, model, init)
    return float(bounds.log2_binomial(model.num_weights, nets.count_active(mask))), "ceiling log2 C(p, k) >= H(m) >= I(m;D)"


def evaluate(run: Run, model, dataset, mask, params, history: dict, information: tuple[float, str],
             lower: lipschitz.Bound | None = None, upper: lipschitz.Bound | None = None) -> dict:
    """Measure one trained run and evaluate both papers' bounds on it; returns its table row (without axes).

    ``information``: (bits, source) from ``information_bits``, the I(m; D) term of p_eff. ``lower``, ``upper``:
    the run's Lipschitz bounds when already computed (by ``run_group``'s batched calls), else computed here."""
    config = run.config
    keys = run_keys(config)
    eps, delta = config["eps"], config["delta"]
    sigma2 = _float(dataset.sigma2)
    mse = _float(history["mse"][-1])
    fits = mse <= sigma2 - eps
    row = {"sigma2": sigma2, "train_mse": mse, "fits_below_noise": bool(fits),
           "fit_reason": "" if fits else f"train MSE {mse:.4g} > sigma2 - eps = {sigma2 - eps:.4g} after {int(history['steps_run'])} steps",
           "train_accuracy": _float(history["accuracy"][-1]), "memorized": _float(history["memorized"][-1]),
           "noise_corr": _float(history["noise_corr"][-1]), "steps_run": int(history["steps_run"])}

    if lower is None:
        lower = lipschitz.lower(params, mask, model=model, key=keys["lipschitz"], points=dataset.x,
                                method=config["lower_method"], starts=config["lip_search_starts"])
    if upper is None:
        upper = lipschitz.upper(params, mask, model=model, method=config["upper_method"])
    start = time.perf_counter()
    hidden = sum(model.sizes[1:-1])
    exact = None
    if model.activation in lipschitz.EXACT_ACTIVATIONS and hidden <= config["lip_exact_max_hidden"]:
        exact = lipschitz.exact(params, mask, model=model)
    row |= {"lip_lower": lower.value, "lip_upper": upper.value, "lip_exact": None if exact is None else exact.value,
            "lip_lower_method": lower.method, "lip_upper_method": upper.method,
            "lip_seconds": round(lower.seconds + upper.seconds + time.perf_counter() - start, 3)}

    active = nets.count_active(mask, include_biases=True)
    radius = float(jnp.max(jnp.linalg.norm(dataset.x, axis=1)))
    box = config["param_box"] or None  # None: max(1, max |w|) of the trained weights, a class read off after training
    largest = max(float(jnp.max(jnp.abs(leaf))) for leaf in jax.tree.leaves(params))
    outside = box is not None and largest > box
    consts = nets.parametrization_constants(model, params, mask, radius=radius, box=box)
    dense_consts = nets.parametrization_constants(model, params, radius=radius, box=box)
    info_bits, info_source = information
    peff = bounds.p_eff(info_bits, active, consts.W, consts.J, eps, units="bits")
    measure = measure_of(config)
    c, k = measure.c, measure.k
    row |= {"active": active, "p": model.num_params, "W": consts.W, "J": consts.J, "radius": radius, "max_abs_weight": largest,
            "info_bits": info_bits, "info_source": info_source, "p_eff": float(peff), "c": c, "k": k,
            "scaling_sqrt_nd_over_peff": math.sqrt(config["n"] * config["d"] / float(peff))}
    for variant in ("paper", "rigorous"):
        if c is None or not dataset.bounded or outside:
            row[f"bound_bs_{variant}"] = row[f"bound_nfp_{variant}"] = None
            row[f"bound_reason_{variant}"] = ("measure not c-isoperimetric" if c is None else "labels unbounded" if
                                              not dataset.bounded else f"weights leave the box: max |w| = {largest:.4g} > param_box = {box:g}")
            continue
        bs = bounds.bubeck_sellke(config["n"], config["d"], model.num_params, eps, delta, dense_consts.W, dense_consts.J,
                                  c=c, k=k, variant=variant)
        nfp = bounds.no_free_prune(config["n"], config["d"], float(peff), eps, delta, c=c, k=k, variant=variant)
        row[f"bound_bs_{variant}"] = float(bs.value) if bool(bs.valid) else None
        row[f"bound_nfp_{variant}"] = float(nfp.value) if bool(nfp.valid) else None
        row[f"bound_reason_{variant}"] = "; ".join(r for r in (str(bs.reason), str(nfp.reason)) if r)
    rigorous = [row[k_] for k_ in ("bound_bs_rigorous", "bound_nfp_rigorous") if row[k_] is not None]
    row["bound_violation"] = bool(fits and rigorous and upper.value < max(rigorous))
    return row


def _finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(leaf)))) for leaf in jax.tree.leaves(tree))


def failure_row(run: Run, stage: str, reason: str, **columns) -> dict:
    """The row of a run that could not be measured: it does not fit, ``fit_reason`` says why, ``failed_stage``
    names the stage (masks, train, information, lipschitz, measure); the other measured columns stay empty."""
    return {"fits_below_noise": False, "fit_reason": f"{stage}: {reason}", "failed_stage": stage,
            "diverged": False, **columns}


def _train_group(runs, model, inits, masks, datasets, devices):
    """One batched training call; if it fails as a whole, each run alone (a failing run gets its reason)."""
    def fit(idx):
        return train.fit_batched(
            train.stack([inits[i] for i in idx]), train.stack([masks[i] for i in idx]),
            train.stack([datasets[i] for i in idx]), model=model,
            keys=jnp.stack([run_keys(runs[i].config)["train"] for i in idx]),
            learning_rate=jnp.asarray([runs[i].config["learning_rate"] for i in idx]), devices=devices,
            **train_options(runs[0].config))

    idx = list(range(len(runs)))
    try:  # host copies: the measuring threads touch no array that lives on several devices
        trained, history = jax.device_get(fit(idx))
        return [(jax.tree.map(lambda a: a[i], trained), jax.tree.map(lambda a: a[i], history)) for i in idx], {}
    except Exception:  # noqa: BLE001 - retried run by run below, where a failing run gets its reason
        pass
    results, failed = [], {}
    for i in idx:
        try:
            trained, history = jax.device_get(fit([i]))
            results.append((jax.tree.map(lambda a: a[0], trained), jax.tree.map(lambda a: a[0], history)))
        except Exception as error:  # noqa: BLE001 - recorded in the run's row
            results.append(None)
            failed[i] = _failure(error)
    return results, failed


def _history_record(history) -> dict:
    if history is None:
        return {"step": [], "noise_corr": [], "loss": []}
    return {name: np.asarray(history[name]).tolist() for name in ("step", "noise_corr", "loss")}


def _train_stage(runs, model, inits, masks, datasets, devices, rows: dict[int, dict]) -> list:
    """(params, history) per run after one batched training of the runs without a row yet (None for the
    others); a run whose training fails or diverges gets its failure row in ``rows``."""
    healthy = [i for i in range(len(runs)) if i not in rows]
    per_run = [None] * len(runs)
    if not healthy:
        return per_run
    results, failed = _train_group([runs[i] for i in healthy], model, [inits[i] for i in healthy],
                                   [masks[i] for i in healthy], [datasets[i] for i in healthy], devices)
    for j, i in enumerate(healthy):
        if j in failed:
            rows[i] = failure_row(runs[i], "train", failed[j])
        elif not _finite((results[j][0], results[j][1]["loss"], results[j][1]["mse"])):
            rows[i] = failure_row(runs[i], "train", f"diverged: non-finite parameters or loss after training "
                                  f"(learning_rate = {runs[i].config['learning_rate']:g})", diverged=True)
        else:
            per_run[i] = results[j]
    return per_run


def _batched_bounds(runs, healthy, model, per_run, masks, datasets, batch_lipschitz, progress) -> tuple[dict, dict]:
    """({run index: lower Bound}, {run index: upper Bound}) from one batched call each (the lower bounds only
    with ``batch_lipschitz``, by default on an accelerator); a batch that fails leaves its runs to
    ``evaluate``, which computes them one by one and records a failure in the run's row."""
    lowers, uppers = {}, {}
    if not healthy:
        return lowers, uppers
    config0 = runs[0].config
    progress.phase("upper bound")
    trained = train.stack([per_run[i][0] for i in healthy])
    trained_masks = train.stack([masks[i] for i in healthy])
    # One batched call before the threads: on CPU it costs what one call per run does, and the barrier
    # method's linear algebra already keeps every core busy (threads made it 1.3x slower).
    try:
        uppers = dict(zip(healthy, lipschitz.upper_batch(trained, trained_masks, model=model,
                                                         method=config0["upper_method"])))
    except Exception:  # noqa: BLE001 - measured run by run in evaluate
        uppers = {}
    if batch_lipschitz is None:  # the search, batched, was 1.07x slower on CPU and gains 1.3x from threads there
        batch_lipschitz = jax.default_backend() != "cpu"
    if batch_lipschitz:
        progress.phase("lower bound")
        try:
            lowers = dict(zip(healthy, lipschitz.lower_batch(
                trained, trained_masks, model=model, points=jnp.stack([datasets[i].x for i in healthy]),
                key=jnp.stack([run_keys(runs[i].config)["lipschitz"] for i in healthy]),
                method=config0["lower_method"], starts=config0["lip_search_starts"])))
        except Exception:  # noqa: BLE001 - measured run by run in evaluate
            lowers = {}
    progress.phase("lower bound and measurement")
    return lowers, uppers


def run_group(runs: list[Run], devices=None, workers: int | None = None, batch_lipschitz: bool | None = None,
              progress: Progress | None = None, save_to: Path | None = None) -> tuple[list[dict], dict[str, dict]]:
    """Masks, one batched training call for the whole group, the Lipschitz upper bounds in one batched call (the
    lower bounds too when ``batch_lipschitz``, by default on an accelerator), then the rest of the per-run
    measurements in ``workers`` threads (default: one per CPU core; the LP solvers and XLA release the GIL, and
    each run's result depends on its own keys only, so the rows equal those of a serial evaluation). Everything
    that runs on several devices (the training, an information estimate's pruning pipelines) stays in this
    thread: concurrent multi-device executions from several threads can starve XLA's CPU collectives.

    A run whose pruning or training fails, whose training diverges (non-finite parameters or loss) or whose
    measurement raises is a row with its reason (``failure_row``), never an abort of the group. ``save_to``:
    write the trained parameters and masks there (``saved.save_group``)."""
    progress = progress or Progress(len(runs), "group", bar=False)
    model = model_of(runs[0].config)
    progress.phase("data and masks")
    datasets = [make_dataset(r.config) for r in runs]
    inits = [model.init(run_keys(r.config)["init"]) for r in runs]
    masks, extras, failed = make_masks(runs, model, inits, datasets)
    rows: dict[int, dict] = {i: failure_row(runs[i], "masks", why) for i, why in failed.items()}
    for i, mask in enumerate(masks):
        if mask is not None:
            extras[i]["collapsed"] = bool(np.any(np.asarray(prune.layer_collapse(mask))))

    progress.phase("train")
    per_run = _train_stage(runs, model, inits, masks, datasets, devices, rows)
    if save_to is not None:
        saved.save_group(save_to, runs, [None if p is None else (p[0], None, masks[i]) for i, p in enumerate(per_run)])

    progress.phase("information")
    information = {}
    for i in [i for i in range(len(runs)) if i not in rows]:
        try:
            information[i] = information_bits(runs[i], model, inits[i], masks[i])
        except Exception as error:  # noqa: BLE001 - recorded in the run's row
            rows[i] = failure_row(runs[i], "information", _failure(error))
    healthy = [i for i in range(len(runs)) if i not in rows]
    if rows:
        progress.advance(len(rows))

    lowers, uppers = _batched_bounds(runs, healthy, model, per_run, masks, datasets, batch_lipschitz, progress)

    def measure(i):
        try:
            row = evaluate(runs[i], model, datasets[i], masks[i], *per_run[i], information[i], lowers.get(i), uppers.get(i))
        except Exception as error:  # noqa: BLE001 - recorded in the run's row
            row = failure_row(runs[i], "measure", _failure(error))
        progress.advance()
        return row

    if workers is None:  # one per core; serial beside several local devices, whose collectives need XLA's threads
        workers = (os.cpu_count() or 1) if jax.local_device_count() == 1 else 1
    if healthy:
        with ThreadPoolExecutor(max_workers=min(workers, len(healthy))) as pool:
            rows |= dict(zip(healthy, pool.map(measure, healthy)))
    out, histories = [], {}
    for i, run in enumerate(runs):
        row = {**run.config, "diverged": False, "failed_stage": "", **rows[i], **extras[i], "config_hash": run.hash}
        if row.get("bound_violation"):
            logger.warning(f"!!! BOUND VIOLATION in run {run.hash}: certified Lipschitz upper bound {row['lip_upper']:.6g} "
                           f"is below a rigorous theorem bound ({row['bound_bs_rigorous']}, {row['bound_nfp_rigorous']}): "
                           "a counterexample to the theorem or a bug. Config: " + str(run.config))
        out.append(row)
        histories[run.hash] = _history_record(None if per_run[i] is None else per_run[i][1])
    return out, histories


def _refuse_other_grids(out_dir: Path, grid: Grid, runs: list[Run], done: set[str], add: bool) -> None:
    """A folder holds the results of the grids recorded in its ``grids/``; rerunning one of them resumes it,
    anything else needs ``add``."""
    known = {p.stem for p in (out_dir / "grids").glob("*.json")}
    foreign = done - {r.hash for r in runs}
    if add or grid.id in known or (not known and not foreign):
        return
    held = f"grid(s) {sorted(known)}" if known else f"{len(foreign)} runs of another grid"
    raise ValueError(f"out_dir {out_dir} holds results of {held}, not of this grid ({grid.id}); choose another "
                     "--out, or add this grid's runs to the folder with add=True (--add), the report keeps the grids apart")


def run(grid: Grid, out_dir: str | Path, *, add: bool = False, devices=None, workers: int | None = None,
        batch_lipschitz: bool | None = None, progress: bool | None = None) -> list[dict]:
    """Run every unfinished run of ``grid`` into ``out_dir`` and return the merged results table (list of rows).

    Rerunning the same grid resumes it: finished runs are not repeated. A folder that holds another grid's
    results is refused unless ``add`` (then both grids' runs share the table and the report keeps them apart).
    A second process writing into the same folder is refused (``store.FolderLocked``). Groups are split over
    ``jax.process_count()`` processes when ``jax.distributed`` is initialized; ``devices`` (default: the local
    devices) shard each group's run axis; ``workers`` threads measure the trained runs (default: one per core);
    ``batch_lipschitz``: compute a group's Lipschitz lower bounds in one batched call (default: on an
    accelerator; the rows are the same either way, up to float64 rounding). ``progress``: a tqdm bar (True), log
    lines (False) or a bar on a terminal (None). The folder gets ``manifest.json`` (versions, devices, commit,
    times, grids) and ``grids/<id>.json``.
    """
    out_dir = Path(out_dir)
    if workers is not None:
        workers = _checks.positive_int("workers", workers)
    process, processes = jax.process_index(), jax.process_count()
    runs = grid.runs()
    started = manifest.now()
    with ResultStore(out_dir, process=process, writer=True) as store:
        done = store.done()
        if process == 0:
            _refuse_other_grids(out_dir, grid, runs, done, add)
            manifest.record_grid(out_dir, grid)
        groups = [g for i, g in enumerate(grid.groups()) if i % processes == process]
        todo = [[r for r in g if r.hash not in done] for g in groups]
        total = sum(len(g) for g in todo)
        logger.info(f"sweep: {len(runs)} runs in {len(grid.groups())} groups; {total} to do"
                    + (f" (process {process} of {processes})" if processes > 1 else ""))
        if total:
            for warning in plan(grid)["warnings"]:
                logger.warning(f"sweep: warning: {warning}")
        with Progress(total, "sweep", "run", bar=progress) as bar:
            for group in todo:
                if group:
                    save_to = out_dir / "params" / f"group-{group[0].hash}.npz" if grid.save_params else None
                    rows, histories = run_group(group, devices, workers, batch_lipschitz, bar, save_to)
                    store.append(rows, histories)
        if processes > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("lawrob-sweep-done")
        if process == 0:
            store.write_table(order=[r.hash for r in runs])
            violations = [r for r in store.rows() if r.get("bound_violation")]
            if violations:
                logger.warning(f"!!! {len(violations)} run(s) with a certified upper bound below a rigorous theorem bound")
            manifest.record_session(out_dir, grid, started, ran=total)
        return store.rows()
