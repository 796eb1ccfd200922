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
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks, bounds, data, info, lipschitz, nets, prune, train
from lawrob.sweep.grid import DATA_FREE_METHODS, Grid, Run
from lawrob.sweep.store import ResultStore

# Rough cost model for --dry-run (seconds on the 2-core development CPU; see benchmarks/RESULTS.md).
TRAIN_FLOPS_PER_SECOND = 1.0e11
EVAL_SECONDS_PER_RUN = 0.45  # a two-hidden-layer width-64 run: search 0.28 s, LipSDP 0.14 s


def model_of(config: dict) -> nets.MLP:
    return nets.MLP((config["d"], *([config["width"]] * config["depth"]), 1), activation=config["activation"])


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


def imp_schedule(density: float, rate: float) -> tuple[int, bool]:
    """(k, exact): the number k of full IMP rounds with (1 - rate)^k >= density, and whether (1 - rate)^k == density
    (otherwise one more magnitude pruning of round k's trained weights reaches the density exactly)."""
    k = math.floor(math.log(density) / math.log(1 - rate) + 1e-9)
    return k, math.isclose((1 - rate) ** k, density, rel_tol=1e-9)


def _batched_masks(method: str, runs: list[Run], model, inits, datasets) -> tuple[list, list[dict]]:
    """Masks of IMP or MagAfter runs that share a density, found with one batched pruning pipeline."""
    config = runs[0].config
    density = config["density"]
    keys = jnp.stack([run_keys(r.config)["mask"] for r in runs])
    fit_options = train_options(config) | {"learning_rate": jnp.asarray([r.config["learning_rate"] for r in runs])}
    params, data_ = train.stack(inits), train.stack(datasets)
    k, exact = imp_schedule(density, config["imp_rate"]) if method == "imp" else (0, False)
    if k == 0:
        result = prune.mag_after_batched(params, data_, density, model=model, keys=keys, **fit_options)
        return train.unstack(result.masks[0]), [{} for _ in runs]
    result = prune.imp_batched(params, data_, model=model, rounds=k, rate=config["imp_rate"], keys=keys, **fit_options)
    masks = train.unstack(result.masks[-1])
    if not exact:
        last = train.unstack(result.params[-1])
        masks = [prune.mask_from_scores(prune.magnitude(p, m), density, "global", jax.random.fold_in(run_keys(r.config)["mask"], k), mask=m)
                 for p, m, r in zip(last, masks, runs)]
    peaks = np.stack([np.max(np.asarray(h["noise_corr"]), axis=-1) for h in result.histories], axis=1)  # [runs, rounds]
    return masks, [{"imp_rounds": k + (not exact), "imp_round_noise_peaks": p.tolist()} for p in peaks]


def make_masks(runs: list[Run], model: nets.MLP, inits: list, datasets: list) -> tuple[list, list[dict]]:
    """Every run's mask (and extra columns): one-shot methods run by run, IMP and MagAfter batched per density."""
    masks, extras = [None] * len(runs), [{} for _ in runs]
    batched: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        method, density = run.config["method"], run.config["density"]
        if method == "dense" or density == 1.0:
            masks[i] = nets.dense_mask(inits[i])
        elif method in ("imp", "mag_after"):
            batched.setdefault((method, density, run.config["imp_rate"]), []).append(i)
        else:
            masks[i] = prune.prune(method, inits[i], datasets[i], density, run_keys(run.config)["mask"], model=model,
                                   loss=run.config["loss"])
    for (method, *_), idx in batched.items():
        found, extra = _batched_masks(method, [runs[i] for i in idx], model, [inits[i] for i in idx], [datasets[i] for i in idx])
        for i, m, e in zip(idx, found, extra):
            masks[i], extras[i] = m, e
    return masks, extras


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
    masks, _ = make_masks([run] * count, model, [init] * count, datasets)
    leaves = [jax.tree.leaves(m) for m in masks]
    flat = np.stack([np.concatenate([np.ravel(np.asarray(leaf)) for leaf in ls]) for ls in leaves])
    estimate = info.estimate_information(flat, groups=[leaf.size for leaf in leaves[0]])
    return estimate.upper, (f"{estimate.confidence:.0%} upper bound on H(m | init) >= I(m;D) from {count} data sets "
                            "(least of plug-in, Chow-Liu, marginal, ceiling)")


def information_bits(run: Run, model: nets.MLP, init, mask) -> tuple[float, str]:
    """The I(m; D) that goes into the run's p_eff, in bits, and what it is: 0 for a mask fixed without the data,
    else the ceiling log2 C(p, k) or, with ``info = "estimate"``, ``estimated_information``."""
    config = run.config
    if config["method"] in DATA_FREE_METHODS or config["density"] == 1.0:
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
                                starts=config["lip_search_starts"])
    if upper is None:
        upper = lipschitz.upper(params, mask, model=model, method=config["lip_upper"])
    start = time.perf_counter()
    hidden = sum(model.sizes[1:-1])
    exact = None
    if model.activation == "relu" and hidden <= config["lip_exact_max_hidden"]:
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


def run_group(runs: list[Run], devices=None, workers: int | None = None,
              batch_lipschitz: bool | None = None) -> tuple[list[dict], dict[str, dict]]:
    """Masks, one batched training call for the whole group, the Lipschitz upper bounds in one batched call (the
    lower bounds too when ``batch_lipschitz``, by default on an accelerator), then the rest of the per-run
    measurements in ``workers`` threads (default: one per CPU core; the LP solvers and XLA release the GIL, and
    each run's result depends on its own keys only, so the rows equal those of a serial evaluation). Everything that runs on several devices
    (the training, an information estimate's pruning pipelines) stays in this thread: concurrent multi-device
    executions from several threads can starve XLA's CPU collectives."""
    config0 = runs[0].config
    model = model_of(config0)
    datasets = [make_dataset(r.config) for r in runs]
    inits = [model.init(run_keys(r.config)["init"]) for r in runs]
    masks, extras = make_masks(runs, model, inits, datasets)
    trained, history = train.fit_batched(
        train.stack(inits), train.stack(masks), train.stack(datasets), model=model,
        keys=jnp.stack([run_keys(r.config)["train"] for r in runs]),
        learning_rate=jnp.asarray([r.config["learning_rate"] for r in runs]), devices=devices,
        **train_options(config0))
    # host copies: the threads below touch no array that lives on several devices
    trained, history, masks = jax.device_get((trained, history, masks))
    per_run = [(jax.tree.map(lambda a: a[i], trained), jax.tree.map(lambda a: a[i], history)) for i in range(len(runs))]
    information = [information_bits(run, model, init, mask) for run, init, mask in zip(runs, inits, masks)]

    # Upper bounds in one batched call here, before the threads: on CPU it costs what one call per run does, and
    # the barrier method's linear algebra already keeps every core busy (threads made it 1.3x slower).
    trained_masks = train.stack(masks)
    uppers = lipschitz.upper_batch(trained, trained_masks, model=model, method=config0["lip_upper"])
    if batch_lipschitz is None:  # the search, batched, was 1.07x slower on CPU and gains 1.3x from threads there
        batch_lipschitz = jax.default_backend() != "cpu"
    lowers = [None] * len(runs)
    if batch_lipschitz:
        lowers = lipschitz.lower_batch(trained, trained_masks, model=model, points=jnp.stack([d.x for d in datasets]),
                                       key=jnp.stack([run_keys(r.config)["lipschitz"] for r in runs]),
                                       starts=config0["lip_search_starts"])

    def measure(i):
        return evaluate(runs[i], model, datasets[i], masks[i], *per_run[i], information[i], lowers[i], uppers[i])

    if workers is None:  # one per core; serial beside several local devices, whose collectives need XLA's threads
        workers = (os.cpu_count() or 1) if jax.local_device_count() == 1 else 1
    workers = _checks.positive_int("workers", workers)
    with ThreadPoolExecutor(max_workers=min(workers, len(runs))) as pool:
        measured = list(pool.map(measure, range(len(runs))))
    rows, histories = [], {}
    for i, run in enumerate(runs):
        history_i = per_run[i][1]
        row = {**run.config, **measured[i], **extras[i], "config_hash": run.hash}
        if row["bound_violation"]:
            print(f"!!! BOUND VIOLATION in run {run.hash}: certified Lipschitz upper bound {row['lip_upper']:.6g} is "
                  f"below a rigorous theorem bound ({row['bound_bs_rigorous']}, {row['bound_nfp_rigorous']}): "
                  "a counterexample to the theorem or a bug. Config: " + str(run.config), file=sys.stderr)
        rows.append(row)
        histories[run.hash] = {"step": history_i["step"].tolist(), "noise_corr": history_i["noise_corr"].tolist(),
                               "loss": history_i["loss"].tolist()}
    return rows, histories


def plan(grid: Grid) -> dict:
    """What ``run`` would do: runs, shape groups and a rough cost estimate (no computation)."""
    groups = grid.groups()
    seconds = 0.0
    for group in groups:
        c = group[0].config
        training = 3 * 2 * c["n"] * model_of(c).num_params * c["steps"] / TRAIN_FLOPS_PER_SECOND  # fwd + bwd
        for r in group:
            trainings = 1
            if r.config["method"] in ("imp", "mag_after") and r.config["density"] < 1:
                rounds = imp_schedule(r.config["density"], r.config["imp_rate"])[0] if r.config["method"] == "imp" else 0
                pipeline = rounds + 1
                trainings += pipeline * (1 + (r.config["info_datasets"] if r.config["info"] == "estimate" else 0))
            seconds += trainings * training + EVAL_SECONDS_PER_RUN
    return {"runs": sum(len(g) for g in groups), "groups": len(groups),
            "group_sizes": [len(g) for g in groups], "estimated_seconds": round(seconds, 1),
            "shapes": [dict(zip(("d", "n", "width", "depth"), g[0].shape_key[:4])) for g in groups]}


def _progress(total: int, enabled: bool | None):
    enabled = sys.stderr.isatty() if enabled is None else enabled
    if enabled:
        from tqdm import tqdm

        return tqdm(total=total, unit="run", desc="sweep")
    return None


def run(grid: Grid, out_dir: str | Path, *, resume: bool = True, devices=None, workers: int | None = None,
        batch_lipschitz: bool | None = None, progress: bool | None = None, log=print) -> list[dict]:
    """Run every unfinished run of ``grid`` into ``out_dir`` and return the merged results table (list of rows).

    ``resume=False`` refuses a folder that already holds results of another grid. Groups are split over
    ``jax.process_count()`` processes when ``jax.distributed`` is initialized; ``devices`` (default: the local
    devices) shard each group's run axis; ``workers`` threads measure the trained runs (default: one per core);
    ``batch_lipschitz``: compute a group's Lipschitz lower bounds in one batched call (default: on an
    accelerator; the rows are the same either way, up to float64 rounding).
    """
    out_dir = Path(out_dir)
    process, processes = jax.process_index(), jax.process_count()
    store = ResultStore(out_dir, process=process)
    runs = grid.runs()
    done = store.done()
    if done and not resume and not done <= {r.hash for r in runs}:
        raise ValueError(f"out_dir {out_dir} holds results of another grid; pass resume=True (--resume) or another folder")
    groups = [g for i, g in enumerate(grid.groups()) if i % processes == process]
    todo = [[r for r in g if r.hash not in done] for g in groups]
    total = sum(len(g) for g in todo)
    bar = _progress(total, progress)
    log(f"sweep: {len(runs)} runs in {len(grid.groups())} groups; {len(runs) - len(done & {r.hash for r in runs})} to do"
        + (f" (process {process} of {processes}: {total})" if processes > 1 else ""))
    finished, start = 0, time.perf_counter()
    for group in todo:
        if not group:
            continue
        rows, histories = run_group(group, devices, workers, batch_lipschitz)
        store.append(rows, histories)
        finished += len(rows)
        if bar is not None:
            bar.update(len(rows))
        else:
            elapsed = time.perf_counter() - start
            log(f"sweep: {finished}/{total} runs done, {elapsed:.0f} s elapsed, "
                f"ETA {elapsed / finished * (total - finished):.0f} s")
    if bar is not None:
        bar.close()
    if processes > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("lawrob-sweep-done")
    if process == 0:
        store.write_table(order=[r.hash for r in runs])
        violations = [r for r in store.rows() if r.get("bound_violation")]
        if violations:
            log(f"!!! {len(violations)} run(s) with a certified upper bound below a rigorous theorem bound: see stderr")
    return [r for r in ResultStore(out_dir, process=process).rows()]
