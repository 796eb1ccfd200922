"""E4 (NFP Figs. 2b, 2c): a larger learning rate acquires correlation with the label noise sooner; gradient noise
suppresses it.

Student-teacher regression on Gaussian inputs (docs/checks.md, E4): teacher = ReLU MLP with 3 hidden layers of
width 50, student = ReLU MLP with 5 hidden layers of width 100, n = 1000, d = 50, Gaussian label noise of
variance 1, Adam, no pruning. Tracked: (1/n) sum (f(x_i) - E f) z_i, with E f averaged over fresh inputs.

    uv run python -m lawrob.checks.e4_learning_rate_and_gradient_noise --scale smoke|full
        [--out DIR | --update-committed]

Output: --out DIR (default ./lawrob-out/checks/e4, in the current directory); --update-committed (with
--scale full only) rewrites the committed results in paper_checks/results/e4 instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import data, nets, train
from lawrob.checks._common import (
    label_axes, paired_greater, pyplot, save_figure, script, spearman, standard_main, write_verdict)
from lawrob.progress import Progress

LEARNING_RATES = (1e-4, 2.5e-4, 5e-4, 7.5e-4, 1e-3)
GRAD_NOISES = (0.0, 0.1, 0.2, 0.3, 0.5)
SCALES: dict[str, dict[str, Any]] = {
    "full": dict(d=50, n=1000, teacher=(50, 50, 50), student=(100,) * 5, seeds=25, steps=1000, batch=100, log_every=50),
    "smoke": dict(d=20, n=200, teacher=(20, 20, 20), student=(64,) * 3, seeds=8, steps=400, batch=50, log_every=20),
}


def run(scale: str, out: Path, seed: int = 0) -> dict:
    start = time.perf_counter()
    s = SCALES[scale]
    model = nets.MLP((s["d"], *s["student"], 1))
    settings = [(lr, 0.0) for lr in LEARNING_RATES] + [(1e-3, g) for g in GRAD_NOISES]
    params, masks, sets, keys, lrs, noises = [], [], [], [], [], []
    for k in range(s["seeds"]):
        key_data, key_init, key_train = jax.random.split(jax.random.fold_in(jax.random.key(seed), k), 3)
        ds = data.make_dataset(key_data, data.Gaussian(s["d"]), s["n"], "teacher", "gaussian", amplitude=1.0,
                               teacher_hidden=s["teacher"])
        init = model.init(key_init)
        for lr, noise in settings:
            params.append(init)
            masks.append(nets.dense_mask(init))
            sets.append(ds)
            keys.append(key_train)
            lrs.append(lr)
            noises.append(noise)
    reference = data.Gaussian(s["d"]).sample(jax.random.key(seed + 10_000), 4096)
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
    steps = np.asarray(history["step"][0])
    lr_curves, noise_curves = corr[:, : len(LEARNING_RATES)], corr[:, len(LEARNING_RATES):]
    lr_auc = lr_curves.mean(axis=2)  # [seeds, lrs]: the mean correlation over training (area under the curve)
    noise_final = noise_curves[:, :, -1]  # [seeds, noises]
    lr_test = paired_greater(lr_auc[:, -1], lr_auc[:, 0])
    noise_test = paired_greater(noise_final[:, 0], noise_final[:, -1])
    rho_lr = spearman(LEARNING_RATES, lr_auc.mean(axis=0))
    rho_noise = spearman(GRAD_NOISES, noise_final.mean(axis=0))
    passed_lr = rho_lr >= 0.9 and lr_test["p_value"] < 0.01
    passed_noise = rho_noise <= -0.9 and noise_test["p_value"] < 0.01

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, lr in enumerate(LEARNING_RATES):
        axes[0].plot(steps, lr_curves[:, i].mean(axis=0), label=f"lr {lr:g}")
    for i, g in enumerate(GRAD_NOISES):
        axes[1].plot(steps, noise_curves[:, i].mean(axis=0), label=f"grad noise {g:g}")
    for ax, title in zip(axes, ("learning rate (NFP Fig. 2b)", "gradient noise at lr 1e-3 (NFP Fig. 2c)")):
        label_axes(ax, "step", "noise correlation", title, legend=7)
    save_figure(fig, out / "e4.png")
    return write_verdict(
        out, "E4", scale=scale, start=start,
        claim="A higher learning rate reaches high correlation with the label noise sooner, and more gradient noise "
              "leaves less correlation at the end of training.",
        measured={"mean_correlation_over_training_by_lr": dict(zip(map(str, LEARNING_RATES), lr_auc.mean(axis=0))),
                  "final_correlation_by_grad_noise": dict(zip(map(str, GRAD_NOISES), noise_final.mean(axis=0))),
                  "spearman_lr": rho_lr, "spearman_grad_noise": rho_noise,
                  "lr_max_vs_min": lr_test, "noise_0_vs_max": noise_test},
        criterion="Spearman(lr, mean correlation) >= 0.9 and paired t-test lr 1e-3 > 1e-4 at p < 0.01; "
                  "Spearman(grad noise, final correlation) <= -0.9 and paired t-test noise 0 > 0.5 at p < 0.01",
        passed=passed_lr and passed_noise, parts={"learning_rate": passed_lr, "gradient_noise": passed_noise},
        setup=s | {"figure": "e4.png"})


main = standard_main("E4", run, seeds=False)

if __name__ == "__main__":
    script(main)
