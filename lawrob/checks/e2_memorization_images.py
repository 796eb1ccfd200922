"""E2 (NFP Fig. 1b): on images with heavy input noise, the training accuracy (memorization) of IMP and MagAfter
stays far above that of pruning at initialization at extreme sparsity.

Memorization capacity on noisy images (docs/checks.md, E2): FashionMNIST training images (pixels in [0, 1]) with
additive Gaussian input noise of variance 3 drawn once per seed, labels kept; a ReLU MLP with two hidden layers of
width 200, cross-entropy, Adam at lr 1e-3, batch 64; methods IMP (rewinding to initialization), MagAfter, SNIP,
GraSP, SynFlow and random pruning at sparsities 1 - 0.8^k from 97.2 % to 99.7 %; 10 seeds.

FashionMNIST is read from the IDX files in ``--data PATH`` or ``$LAWROB_FASHION_MNIST``; nothing is downloaded.
Without them the check says so and runs on scikit-learn's bundled digits (1797 images of 8 x 8) with the same
noise variance and protocol, and without scikit-learn on a synthetic stand-in of the digits' shape; the verdict
names the data it used.

Stopping (full scale): the paper stops when the loss changes by less than 0.01 in an epoch or the training
accuracy is unchanged for 3 epochs. An epoch of FashionMNIST is 938 steps; one of the digits only 29, and very
sparse networks barely move in 29 steps at lr 1e-3, so the rule would stop them at initialization. The rules are
therefore applied per "period" of whole epochs making up at least 938 optimizer steps (exactly one epoch on
FashionMNIST), with a cap of ``max_periods``. The smoke scale trains a fixed number of steps instead.
MagAfter prunes the dense network that IMP trains first (the same dense training), then retrains from the
initialization, as ``lawrob.prune.mag_after`` does.

    uv run python -m lawrob.checks.e2_memorization_images --scale smoke|full [--seeds N] [--data PATH]
        [--out DIR | --update-committed]

Output: --out DIR (default ./lawrob-out/checks/e2, in the current directory); --update-committed (with
--scale full only) rewrites the committed results in paper_checks/results/e2 instead.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lawrob import data, nets, train
from lawrob.checks._common import (
    batched_imp, label_axes, mean_se, paired_greater, parse_args, print_verdict, prune_runs, pyplot, save_figure, script,
    seed_runs, seeds_option, write_verdict)
from lawrob.progress import Progress, logger

PAI = ("synflow", "snip", "grasp", "random")  # pruning at initialization
AFTER = ("imp", "magafter")  # pruning after training
NOISE_VARIANCE = 3.0
BATCH = 64
PERIOD_STEPS = 938  # one FashionMNIST epoch: ceil(60000 / 64)
SCALES: dict[str, dict[str, Any]] = {
    "full": dict(images=None, width=200, seeds=10, exponents=(16, 18, 20, 22, 24, 26), max_periods=20,
                 synflow_iterations=100),
    "smoke": dict(images=512, width=100, seeds=4, exponents=(16, 18), steps=300, synflow_iterations=100),
}


def load_images(path, key) -> tuple[np.ndarray, np.ndarray, str]:
    """FashionMNIST from ``path`` or the environment; else the digits; else a synthetic stand-in (named so)."""
    try:
        x, y = data.load_fashion_mnist(path, "train")
        return x, y, "FashionMNIST training images (local IDX files)"
    except FileNotFoundError as error:
        missing = str(error)
    logger.warning(f"E2: FashionMNIST not found ({missing}); using a stand-in")
    try:
        x, y = data.load_digits()
        return x, y, f"scikit-learn digits, 1797 images of 8 x 8 (FashionMNIST not found: {missing})"
    except ImportError:
        centers = np.asarray(jax.random.uniform(key, (10, 64)))
        y = np.arange(1797) % 10
        x = np.clip(centers[y] + 0.1 * np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (1797, 64))), 0, 1)
        return x.astype(np.float32), y, ("synthetic stand-in of the digits' shape: 10 random 64-pixel class prototypes "
                                         "plus N(0, 0.01) noise (neither FashionMNIST nor scikit-learn found)")


def run(scale: str, out: Path, seed: int = 0, seeds: int | None = None, data_path=None) -> dict:
    start = time.perf_counter()
    s = SCALES[scale] | ({"seeds": seeds} if seeds else {})
    images, labels, source = load_images(data_path, jax.random.key(seed + 20_000))
    n = len(images) if s["images"] is None else min(s["images"], len(images))
    classes = int(labels.max()) + 1
    model = nets.MLP((images.shape[1], s["width"], s["width"], classes))
    per_epoch = math.ceil(n / BATCH)
    if "max_periods" in s:
        period = per_epoch * math.ceil(PERIOD_STEPS / per_epoch)
        schedule = dict(steps=period * s["max_periods"], log_every=period, stop_delta=0.01, stop_patience=3)
    else:
        schedule = dict(steps=s["steps"], log_every=None)
    fit_options: dict[str, Any] = dict(loss="cross_entropy", learning_rate=1e-3, batch_size=BATCH, log_every=schedule["log_every"],
                       stop_delta=schedule.get("stop_delta"), stop_patience=schedule.get("stop_patience"))

    def make(key):  # one seed: n images with fresh input noise, a fresh network, and the chance level of its labels
        key_data, key_noise, key_init, key_train, key_prune = jax.random.split(key, 5)
        rows = np.sort(np.asarray(jax.random.permutation(key_data, len(images))[:n]))
        noise = np.asarray(jax.random.normal(key_noise, (n, images.shape[1])))
        noisy = images[rows] + math.sqrt(NOISE_VARIANCE) * noise
        dataset = data.from_arrays(noisy, labels[rows], classes=classes, description=source)
        chance = np.bincount(labels[rows], minlength=classes).max() / n
        return model.init(key_init), dataset, key_train, key_prune, chance

    params, sets, train_keys, prune_keys, chance = seed_runs(seed, s["seeds"], make)
    sparsity = np.array([1 - 0.8**k for k in s["exponents"]])

    # progress in trainings (each on all seeds at once): IMP's dense one and its rounds, then one per method and
    # sparsity
    rounds_imp = max(s["exponents"])
    progress = Progress(rounds_imp + 1 + (1 + len(PAI)) * len(s["exponents"]), f"E2 {scale}", unit="training")
    imp = batched_imp(progress, params, sets, model=model, rounds=rounds_imp, steps=schedule["steps"], key=train_keys,
                      **fit_options)
    accuracy: dict[str, Any] = {"imp": np.stack([np.asarray(imp.histories[k - 1]["accuracy"][:, -1]) for k in s["exponents"]], 1)}
    epochs: dict[str, Any] = {"imp": np.stack([np.asarray(imp.histories[k - 1]["steps_run"]) / per_epoch for k in s["exponents"]], 1)}
    for method in ("magafter", *PAI):  # one training call per sparsity, shaped like IMP's: training compiles once
        score, scored = ("magnitude", imp.dense_params) if method == "magafter" else (method, params)
        options = {"iterations": s["synflow_iterations"]} if method == "synflow" else {}
        accuracy[method], epochs[method] = [], []
        for k in s["exponents"]:
            progress.phase(f"{method} at sparsity {1 - 0.8**k:.4f}")
            mask = prune_runs(score, scored, sets, 0.8**k, prune_keys, model=model, loss="cross_entropy",
                              **options)
            history = train.fit_batched(params, mask, sets, model=model, steps=schedule["steps"], keys=train_keys,
                                        **fit_options)[1]
            accuracy[method].append(np.asarray(history["accuracy"][:, -1]))
            epochs[method].append(np.asarray(history["steps_run"]) / per_epoch)
            progress.advance()
        accuracy[method] = np.stack(accuracy[method], 1)  # [seeds, sparsities]
        epochs[method] = np.stack(epochs[method], 1)
    progress.close()

    per_seed = {m: v.mean(axis=1) for m, v in accuracy.items()}  # mean training accuracy over the grid
    primary = {f"{a} > {b}": paired_greater(per_seed[a], per_seed[b]) for a in AFTER for b in PAI}
    passed = all(t["p_value"] < 0.01 for t in primary.values())
    chance_level = float(np.mean(chance))

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, method in enumerate(accuracy):
        mean, se = mean_se(accuracy[method])
        ax.errorbar(sparsity, mean, yerr=se, marker="o", ms=3, capsize=2, color=f"C{i}", label=method)
    ax.axhline(chance_level, color="gray", ls=":", lw=1, label="chance (largest class)")
    label_axes(ax, "sparsity (fraction of weights pruned)", "training accuracy (memorization)",
               f"E2: noisy images, input noise variance {NOISE_VARIANCE:g} (NFP Fig. 1b)", fontsize=10)
    save_figure(fig, out / "e2.png")

    return write_verdict(
        out, "E2", scale=scale, start=start,
        claim="At extreme sparsity (97 % to 99.7 %) the training accuracy of IMP and MagAfter subnetworks on noisy "
              "images stays far above that of the pruning-at-initialization methods (SynFlow, SNIP, GraSP, random).",
        measured={"data": source, "images": n, "chance": chance_level, "sparsity": sparsity,
                  "dense_accuracy": float(np.asarray(imp.dense_history["accuracy"][:, -1]).mean()),
                  "accuracy_by_method": {m: {"mean": mean_se(v)[0], "se": mean_se(v)[1]} for m, v in accuracy.items()},
                  "mean_epochs_trained_by_method": {m: v.mean(0) for m, v in epochs.items()},
                  "mean_accuracy_over_grid": {m: float(v.mean()) for m, v in per_seed.items()},
                  "after_vs_initialization": primary},
        criterion="Per seed, the training accuracy averaged over the sparsity grid; each of IMP and MagAfter > each of "
                  "SynFlow, SNIP, GraSP and random by a one-sided paired t-test over seeds at p < 0.01 (8 tests). "
                  "The accuracies at the highest sparsity and the chance level are reported beside it.",
        passed=passed, parts={k: t["p_value"] < 0.01 for k, t in primary.items()},
        setup=s | {"exponents": list(s["exponents"]), "data": source, "noise_variance": NOISE_VARIANCE,
                   "batch_size": BATCH, "learning_rate": 1e-3, "optimizer": "adam", "loss": "cross_entropy",
                   "steps_per_epoch": per_epoch, "schedule": schedule, "figure": "e2.png"})


def main(argv=None) -> int:
    def options(parser):
        seeds_option(parser)
        parser.add_argument("--data", type=Path, default=None,
                            help=f"folder of the FashionMNIST IDX files (default: ${data.FASHION_MNIST_ENV})")

    args = parse_args("E2", argv, extra=options)
    verdict = run(args.scale, args.out, args.seed, args.seeds, args.data)
    print_verdict(verdict, verdict["parts"], args.out)
    return 0


if __name__ == "__main__":
    script(main)
