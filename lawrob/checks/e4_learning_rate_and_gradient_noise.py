"""E4 (NFP Figs. 2b, 2c): a larger learning rate acquires correlation with the label noise sooner; gradient noise
suppresses it.

Student-teacher regression on Gaussian inputs (docs/checks.md, E4): teacher = ReLU MLP with 3 hidden layers of
width 50, student = ReLU MLP with 5 hidden layers of width 100, n = 1000, d = 50, Gaussian label noise of
variance 1, Adam, no pruning, batch 100 (10 steps per epoch), 1000 steps = 100 epochs (the epochs of E3's rounds).
Tracked: (1/n) sum (f(x_i) - E f) z_i, with E f averaged over fresh inputs.

Gradient noise is stated relative to the gradient's size at initialization: for each seed, g_rms = the root mean
square over all P coordinates of the full-data mean-loss gradient at the initialization, and a run at relative
level r adds r * g_rms * N(0, 1) to every coordinate of every minibatch gradient (before Adam). The grid is
log-spaced from well below g_rms to well above it.

    uv run python -m lawrob.checks.e4_learning_rate_and_gradient_noise --scale smoke|full
        [--out DIR | --update-committed]

Output: --out DIR (default ./lawrob-out/checks/e4, in the current directory); --update-committed (with
--scale full only) rewrites the committed results in paper_checks/results/e4 instead.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from lawrob import data, nets, train
from lawrob.checks._common import (
    label_axes, mean_ci, pyplot, save_figure, script, spearman, standard_main, write_verdict)
from lawrob.progress import Progress

LEARNING_RATES = (1e-4, 2.5e-4, 5e-4, 7.5e-4, 1e-3)
NOISE_LR = 1e-3  # the gradient-noise sweep's learning rate (its noise-free run is the lr sweep's last)
HALF = 0.5  # the fall's midpoint: final correlation at half its noise-free value
BAND = (0.1, 0.9)  # the fall: grid levels whose mean final correlation lies strictly within these fractions
MIN_BAND_POINTS = 2  # a graded fall spans at least this many grid levels; a cliff spans none
BOOTSTRAP = 2000
SCALES: dict[str, dict[str, Any]] = {
    # levels: the relative noise grid r = noise std / g_rms (log-spaced, 1/3 decade apart at full scale, 1/2 at
    # smoke); reference: fresh inputs averaged for E f
    "full": dict(d=50, n=1000, teacher=(50, 50, 50), student=(100,) * 5, seeds=25, steps=1000, batch=100, log_every=50,
                 levels=tuple(float(r) for r in np.logspace(-2, 1, 10)), reference=4096),
    "smoke": dict(d=20, n=200, teacher=(20, 20, 20), student=(64,) * 3, seeds=8, steps=400, batch=50, log_every=20,
                  levels=tuple(float(r) for r in np.logspace(-2, 1, 7)), reference=1024),
}
CRITERION = (
    "Fixed before the full run. Learning rate: the mean correlation over training (area under the curve) increases "
    "strictly with the rate (means over seeds), and the 95 % t-interval over seeds of the paired difference "
    "lr 1e-3 - lr 1e-4 lies above 0. Gradient noise (a graded fall, not a cliff): with R(r) = mean final "
    "correlation at relative noise r / mean noise-free final correlation, (a) the level r_half where R first falls "
    f"to {HALF} (log-linear interpolation between grid levels) and its 95 % bootstrap interval over seeds "
    f"({BOOTSTRAP} resamples, percentile) lie strictly inside the grid's range; (b) at least {MIN_BAND_POINTS} grid "
    f"levels have {BAND[0]} < R(r) < {BAND[1]}, so the fall spans grid points.")


def make_seed(key: jax.Array, s: dict, model: nets.MLP) -> tuple:
    """One seed's teacher data set, student initialization and training key.

    Parameters
    ----------
    key : jax.Array
        The seed's PRNG key; split into (data, initialization, training) keys.
    s : dict
        An entry of ``SCALES``.
    model : lawrob.nets.MLP
        The student.

    Returns
    -------
    init, dataset, key_train
        The student's initial parameters, the ``lawrob.data.Dataset`` (teacher targets plus Gaussian label noise
        of variance 1) and the key of its minibatches and gradient noise.
    """
    key_data, key_init, key_train = jax.random.split(key, 3)
    dataset = data.make_dataset(key_data, data.Gaussian(s["d"]), s["n"], "teacher", "gaussian", amplitude=1.0,
                                teacher_hidden=s["teacher"])
    return model.init(key_init), dataset, key_train


def gradient_rms(model: nets.MLP, params, dataset: data.Dataset) -> float:
    """Root mean square of the full-data MSE gradient over all parameters, in float64.

    Parameters
    ----------
    model : lawrob.nets.MLP
    params
        The network's parameters (a dense network).
    dataset : lawrob.data.Dataset

    Returns
    -------
    float
        g_rms = sqrt((1/P) sum_j (dL/dtheta_j)^2) with L(theta) = (1/n) sum_i (f_theta(x_i) - y_i)^2, the loss
        whose minibatch version ``lawrob.train.fit`` descends, and P the number of parameters.
    """
    with jax.enable_x64(True):
        wide = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        x, y = jnp.asarray(dataset.x, jnp.float64), jnp.asarray(dataset.y, jnp.float64)
        loss = lambda p: train.per_example_loss("mse", model.apply(p, x), y).mean()  # noqa: E731
        flat = ravel_pytree(jax.grad(loss)(wide))[0]
        return float(jnp.sqrt(jnp.mean(flat ** 2)))


def half_level(levels, ratio) -> float:
    """The first level at which ``ratio`` falls to ``HALF``, interpolated linearly in log10(level).

    Parameters
    ----------
    levels : array_like
        Increasing positive noise levels.
    ratio : array_like
        R at each level (final correlation / noise-free final correlation).

    Returns
    -------
    float
        The crossing level; ``levels[0]`` when R starts at or below ``HALF`` and ``levels[-1]`` when it never
        falls to it (both outside the interior, so a criterion asking for the interior fails on them).
    """
    levels, ratio = np.log10(np.asarray(levels, float)), np.asarray(ratio, float)
    below = np.flatnonzero(ratio <= HALF)
    if below.size == 0:
        return float(10 ** levels[-1])
    i = int(below[0])
    if i == 0:
        return float(10 ** levels[0])
    t = (ratio[i - 1] - HALF) / (ratio[i - 1] - ratio[i])
    return float(10 ** (levels[i - 1] + t * (levels[i] - levels[i - 1])))


def judge_noise(levels, noise_free, final, seed: int = 0) -> dict:
    """Apply the gradient-noise half of ``CRITERION``.

    Parameters
    ----------
    levels : array_like
        The L increasing positive relative noise levels.
    noise_free : array_like
        [seeds] final correlation without gradient noise.
    final : array_like
        [seeds, L] final correlation at each level.
    seed : int
        Seed of the bootstrap's NumPy generator.

    Returns
    -------
    dict
        ``ratio`` R per level, ``half_level`` r_half with its bootstrap ``half_level_ci``, ``band_points`` (levels
        with R in the open ``BAND``), ``interior`` and ``graded`` (criteria a and b) and ``passed``.

    Raises
    ------
    ValueError
        If the shapes disagree or the mean noise-free correlation is not positive.
    """
    levels, noise_free, final = np.asarray(levels, float), np.asarray(noise_free, float), np.asarray(final, float)
    if final.ndim != 2 or final.shape != (noise_free.size, levels.size):
        raise ValueError(f"judge_noise: final must be [seeds={noise_free.size}, levels={levels.size}], got "
                         f"{final.shape}")
    if noise_free.mean() <= 0:
        raise ValueError(f"judge_noise: the mean noise-free correlation must be positive, got {noise_free.mean()}")
    ratio = final.mean(axis=0) / noise_free.mean()
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, noise_free.size, (BOOTSTRAP, noise_free.size))
    boot = [half_level(levels, final[i].mean(axis=0) / noise_free[i].mean()) for i in draws]
    ci = [float(v) for v in np.percentile(boot, [2.5, 97.5])]
    r_half = half_level(levels, ratio)
    band = int(np.sum((ratio > BAND[0]) & (ratio < BAND[1])))
    interior = bool(levels[0] < ci[0] and ci[1] < levels[-1] and levels[0] < r_half < levels[-1])
    graded = band >= MIN_BAND_POINTS
    return {"ratio": ratio, "half_level": r_half, "half_level_ci": ci, "band_points": band, "interior": interior,
            "graded": graded, "passed": interior and graded}


def judge_learning_rate(auc) -> dict:
    """Apply the learning-rate half of ``CRITERION`` to the [seeds, len(LEARNING_RATES)] areas under the curve.

    Returns
    -------
    dict
        ``mean`` per rate, ``max_minus_min`` (mean and 95 % t-interval of the paired difference lr 1e-3 - 1e-4),
        ``increasing``, ``spearman`` (reported only) and ``passed``.
    """
    auc = np.asarray(auc, float)
    mean = auc.mean(axis=0)
    diff, low, high = mean_ci(auc[:, -1] - auc[:, 0])
    increasing = bool(np.all(np.diff(mean) > 0))
    return {"mean": mean, "max_minus_min": {"mean": float(diff), "ci95": [float(low), float(high)]},
            "increasing": increasing, "spearman": spearman(LEARNING_RATES, mean),
            "passed": increasing and bool(low > 0)}


def _band(ax, x, values, label, color) -> None:
    mean, low, high = mean_ci(values)
    ax.plot(x, mean, color=color, label=label)
    ax.fill_between(x, low, high, color=color, alpha=0.25, linewidth=0)


def plot(epochs, lr_curves, noise_curves, noise_free, levels, noise, path: Path) -> None:
    """Three panels: correlation over epochs by learning rate and by relative gradient noise (every other level),
    and the final correlation against the relative noise (log x); bands: 95 % t-intervals over seeds."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for i, lr in enumerate(LEARNING_RATES):
        _band(axes[0], epochs, lr_curves[:, i], f"lr {lr:g}", f"C{i}")
    _band(axes[1], epochs, lr_curves[:, -1], "no noise", "k")
    for j in range(0, len(levels), 2):
        _band(axes[1], epochs, noise_curves[:, j], f"r = {levels[j]:.3g}", f"C{j // 2}")
    label_axes(axes[0], "epoch", "noise correlation", "learning rate, no gradient noise (NFP Fig. 2b)", legend=7)
    label_axes(axes[1], "epoch", "noise correlation", f"gradient noise r x g_rms at lr {NOISE_LR:g} (NFP Fig. 2c)",
               legend=7)
    mean, low, high = mean_ci(noise_curves[:, :, -1])
    axes[2].plot(levels, mean, "o-", color="C0", label="final correlation")
    axes[2].fill_between(levels, low, high, color="C0", alpha=0.25, linewidth=0)
    axes[2].axhline(noise_free.mean(), color="k", ls=":", lw=1, label="no gradient noise")
    axes[2].axhline(HALF * noise_free.mean(), color="gray", ls="--", lw=1, label="half of it")
    axes[2].axvspan(*noise["half_level_ci"], color="C3", alpha=0.2, label="r_half, 95 % bootstrap CI")
    axes[2].axvline(noise["half_level"], color="C3", lw=1)
    axes[2].set_xscale("log")
    label_axes(axes[2], "relative gradient noise r (noise std / g_rms at init)", "final noise correlation",
               "final correlation against gradient noise", legend=7)
    save_figure(fig, path)


def run(scale: str, out: Path, seed: int = 0) -> dict:
    """Run E4 at ``scale`` and write ``e4.png`` (+ PDF) and ``verdict.json`` into ``out``.

    Parameters
    ----------
    scale : {"smoke", "full"}
    out : pathlib.Path
        Output folder (must exist).
    seed : int
        Base PRNG seed; seed k of the run uses ``fold_in(key(seed), k)``.

    Returns
    -------
    dict
        The verdict (as written), with the raw curves ``corr[seed, setting, log]`` under ``raw``.
    """
    start = time.perf_counter()
    s = SCALES[scale]
    model = nets.MLP((s["d"], *s["student"], 1))
    levels = np.asarray(s["levels"])
    settings = [(lr, 0.0) for lr in LEARNING_RATES] + [(NOISE_LR, r) for r in levels]
    params, masks, sets, keys, lrs, noises, rms_by_seed = [], [], [], [], [], [], []
    for k in range(s["seeds"]):
        init, ds, key_train = make_seed(jax.random.fold_in(jax.random.key(seed), k), s, model)
        rms_by_seed.append(gradient_rms(model, init, ds))
        for lr, relative in settings:
            params.append(init)
            masks.append(nets.dense_mask(init))
            sets.append(ds)
            keys.append(key_train)
            lrs.append(lr)
            noises.append(relative * rms_by_seed[-1])
    reference = data.Gaussian(s["d"]).sample(jax.random.key(seed + 10_000), s["reference"])
    # progress in runs (seeds x settings), all trained in one batched call: the count moves once, at its end
    progress = Progress(len(params), f"E4 {scale}", unit="run")
    progress.phase(f"training {len(settings)} settings x {s['seeds']} seeds in one batched call")
    _, history = train.fit_batched(train.stack(params), train.stack(masks), train.stack(sets), model=model,
                                   steps=s["steps"], keys=jnp.stack(keys), learning_rate=jnp.asarray(lrs),
                                   grad_noise=jnp.asarray(noises), reference_x=reference, batch_size=s["batch"],
                                   log_every=s["log_every"])
    corr = np.asarray(history["noise_corr"]).reshape(s["seeds"], len(settings), -1)
    progress.advance(len(params))
    progress.close()
    steps_per_epoch = math.ceil(s["n"] / s["batch"])
    epochs = np.asarray(history["step"][0]) / steps_per_epoch
    lr_curves, noise_curves = corr[:, : len(LEARNING_RATES)], corr[:, len(LEARNING_RATES):]
    lr_part = judge_learning_rate(lr_curves.mean(axis=2))
    noise_free = lr_curves[:, -1, -1]  # lr 1e-3 without noise, the noise sweep's reference
    noise_part = judge_noise(levels, noise_free, noise_curves[:, :, -1], seed=seed)
    plot(epochs, lr_curves, noise_curves, noise_free, levels, noise_part, out / "e4.png")
    final_mean, final_low, final_high = mean_ci(noise_curves[:, :, -1])
    rms = np.asarray(rms_by_seed)
    passed = {"learning_rate": lr_part["passed"], "gradient_noise": noise_part["passed"]}
    return write_verdict(
        out, "E4", scale=scale, start=start,
        claim="A higher learning rate reaches high correlation with the label noise sooner, and more gradient noise "
              "leaves less correlation at the end of training, falling gradually with the noise level.",
        measured={"mean_correlation_over_training_by_lr": dict(zip(map(str, LEARNING_RATES), lr_part["mean"])),
                  "learning_rate": lr_part,
                  "gradient_rms_at_init": {"per_seed": rms, "min": rms.min(), "median": float(np.median(rms)),
                                           "max": rms.max()},
                  "relative_noise_levels": levels,
                  "noise_free_final_correlation": float(noise_free.mean()),
                  "final_correlation_by_relative_noise": {"mean": final_mean, "ci95_low": final_low,
                                                          "ci95_high": final_high},
                  "gradient_noise": noise_part,
                  "spearman_grad_noise": spearman(levels, final_mean)},
        criterion=CRITERION, passed=all(passed.values()), parts=passed,
        setup=s | {"figure": "e4.png", "steps_per_epoch": steps_per_epoch, "epochs": s["steps"] / steps_per_epoch,
                   "optimizer": "adam", "noise_learning_rate": NOISE_LR,
                   "gradient_noise": "r * g_rms(seed) * N(0, 1) per coordinate of each minibatch gradient, before "
                                     "Adam; g_rms: RMS over all parameters of the full-data MSE gradient at the "
                                     "seed's initialization"},
        raw={"corr": corr, "epochs": epochs})


main = standard_main("E4", run, seeds=False)

if __name__ == "__main__":
    script(main)
