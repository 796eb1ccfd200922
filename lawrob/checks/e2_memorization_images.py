"""E2 (NFP Fig. 1b): on images with heavy input noise, the training accuracy (memorization) of IMP and MagAfter
stays far above that of pruning at initialization at extreme sparsity.

Memorization capacity on noisy images (docs/checks.md, E2): FashionMNIST training images (pixels in [0, 1]) with
additive Gaussian input noise of variance 3 drawn once per seed, labels kept; a ReLU MLP with two hidden layers of
width 200, cross-entropy, Adam at lr 1e-3, batch 64; sparsities 1 - 0.8^k from 97.2 % to 99.7 %; 10 seeds. Methods:
IMP (rewinding to initialization), MagAfter in two variants, SNIP, GraSP, SynFlow and random pruning.

MagAfter. "magafter_keep" is the Synaptic-Flow code's post-training pruning, which NFP used: train the dense
network, keep the largest-magnitude weights, and fine-tune the pruned network from its trained weights with the
optimizer state of the dense training (Adam's moments and step count). "magafter" (lawrob.prune.mag_after) prunes
the dense network IMP trains first and retrains from the initialization (rewinding).

FashionMNIST is read from the IDX files in ``--data PATH`` or ``$LAWROB_FASHION_MNIST``; nothing is downloaded.
Without them the check says so and runs on scikit-learn's bundled digits (1797 images of 8 x 8) with the same
noise variance and protocol, and without scikit-learn on a synthetic stand-in of the digits' shape; the verdict
names the data it used and measures how much class signal survives the noise (``class_signal``).

Stopping (full scale): a fixed budget, then the paper's rule. The paper stops when the loss changes by less than
0.01 in an epoch or the training accuracy is unchanged for 3 epochs; applied alone, the loss rule stops plateaued
sparse networks after a single period. The rules are applied per "period" of whole epochs making up at least 938
optimizer steps (exactly one epoch on FashionMNIST; 33 epochs of the digits), and only after ``min_periods``
periods of training (``lawrob.train.TrainConfig.min_steps``), with a cap of ``max_periods``. The smoke scale uses
the same scheme in short periods.

Criteria (fixed before the full-scale run): at every grid sparsity, each of IMP and the Synaptic-Flow MagAfter
exceeds each pruning-at-initialization method by more than ``MARGIN`` = 0.05 in training accuracy (one-sided
paired t-tests over seeds of H0: mean difference <= 0.05, Holm-adjusted over all methods x sparsities, every
adjusted p < 0.05), and at the highest sparsity IMP's accuracy exceeds the chance level (largest class) by more
than 0.05 (same test). Effect sizes are reported with 95 % t intervals; the rewinding MagAfter is tested the same
way and reported beside, not part of pass/fail.

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
    batched_imp, holm_tests, label_axes, mean_se, paired_effect, parse_args, print_verdict, prune_runs, pyplot,
    save_figure, script, seed_runs, seeds_option, write_per_seed, write_verdict)
from lawrob.progress import Progress, logger

PAI = ("synflow", "snip", "grasp", "random")  # pruning at initialization
AFTER = ("imp", "magafter_keep")  # pruning after training, as in the paper (pass/fail)
REWOUND = "magafter"  # lawrob.prune.mag_after, rewinding to the initialization (reported beside)
METHODS = (*AFTER, REWOUND, *PAI)
MARGIN = 0.05  # "far above": at least 5 points of training accuracy
ALPHA = 0.05
NOISE_VARIANCE = 3.0
BATCH = 64
PERIOD_STEPS = 938  # one FashionMNIST epoch: ceil(60000 / 64)
SCALES: dict[str, dict[str, Any]] = {
    "full": dict(images=None, width=200, seeds=10, exponents=(16, 18, 20, 22, 24, 26), period_steps=PERIOD_STEPS,
                 min_periods=5, max_periods=20, synflow_iterations=100),
    "smoke": dict(images=512, width=100, seeds=4, exponents=(16, 18), period_steps=64, min_periods=2,
                  max_periods=5, synflow_iterations=100),
}


def load_images(path, key) -> tuple[np.ndarray, np.ndarray, str]:
    """The images of E2: FashionMNIST from ``path`` or the environment; else the digits; else a synthetic stand-in.

    Parameters
    ----------
    path : path or None
        Folder of the FashionMNIST IDX files (None: ``$LAWROB_FASHION_MNIST``).
    key : jax.Array
        PRNG key of the synthetic stand-in.

    Returns
    -------
    tuple
        (images [n, d] in [0, 1], labels [n], a sentence naming the data and why it was chosen).
    """
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


def schedule(s: dict, per_epoch: int) -> dict:
    """The training schedule of a scale: periods of whole epochs making up at least ``s["period_steps"]`` steps,
    a fixed budget of ``min_periods`` periods, then the paper's stop rules per period, at most ``max_periods``.

    Returns
    -------
    dict
        ``steps`` (the cap), ``log_every`` (one period), ``min_steps``, ``stop_delta`` (0.01) and ``stop_patience``
        (3): keyword arguments of ``lawrob.train.fit``.
    """
    period = per_epoch * math.ceil(s["period_steps"] / per_epoch)
    return dict(steps=period * s["max_periods"], log_every=period, min_steps=period * s["min_periods"],
                stop_delta=0.01, stop_patience=3)


def class_signal(images: np.ndarray, labels: np.ndarray, key: jax.Array, ridge: float = 1.0) -> dict:
    """How much class signal the input noise leaves: held-out accuracy of a linear classifier, clean and noisy.

    A ridge-regression classifier (one-hot targets, W = (X'X + ridge I)^-1 X'Y on [x, 1], predicted class argmax
    x W) is fitted on a random half of the images and scored on the other half, once on the clean images and once
    with N(0, ``NOISE_VARIANCE``) input noise (drawn from ``key``).

    Parameters
    ----------
    images : ndarray [n, d]
        Pixels in [0, 1].
    labels : ndarray [n]
        Integer classes.
    key : jax.Array
        PRNG key of the split and the noise.
    ridge : float
        The ridge penalty, > 0.

    Returns
    -------
    dict
        ``clean`` and ``noisy`` held-out accuracies, and ``chance`` (the largest class's share of the held-out half).

    References
    ----------
    A. E. Hoerl and R. W. Kennard, "Ridge regression", Technometrics 12 (1970) 55-67.
    """
    n = len(images)
    order = np.asarray(jax.random.permutation(jax.random.fold_in(key, 0), n))
    fit_rows, test_rows = order[: n // 2], order[n // 2:]
    noisy = images + math.sqrt(NOISE_VARIANCE) * np.asarray(jax.random.normal(jax.random.fold_in(key, 1), images.shape))
    classes = int(labels.max()) + 1

    def held_out(x):
        x = np.hstack([np.asarray(x, float), np.ones((n, 1))])
        a, y = x[fit_rows], np.eye(classes)[labels[fit_rows]]
        w = np.linalg.solve(a.T @ a + ridge * np.eye(x.shape[1]), a.T @ y)
        return float(np.mean(np.argmax(x[test_rows] @ w, 1) == labels[test_rows]))

    chance = float(np.bincount(labels[test_rows], minlength=classes).max() / len(test_rows))
    return {"clean": held_out(images), "noisy": held_out(noisy), "chance": chance}


def structure(mask) -> dict:
    """Per-layer density and live hidden units of stacked masks (a leading run axis), averaged over the runs.

    A hidden unit j of layer l is live when the mask keeps at least one weight into it (column j of W_l) and at
    least one weight out of it (row j of W_{l+1}); biases are not pruned, so a unit without either carries no
    input signal forward.

    Parameters
    ----------
    mask : list of dict
        Stacked masks (``w`` of shape [runs, fan_in, fan_out] per layer).

    Returns
    -------
    dict
        ``layer_density``: mean kept fraction of each weight matrix; ``live_units``: mean number of live units of
        each hidden layer.
    """
    weights = [np.asarray(layer["w"]) != 0 for layer in mask]
    live = [(w_in.any(axis=1) & w_out.any(axis=2)).sum(-1).mean() for w_in, w_out in zip(weights, weights[1:])]
    return {"layer_density": [float(w.mean()) for w in weights], "live_units": [float(v) for v in live]}


def contrasts(accuracy: dict, sparsity, chance, *, margin: float = MARGIN, alpha: float = ALPHA) -> dict:
    """The criteria on training accuracies [seeds, S] per method (see the module's docstring).

    Parameters
    ----------
    accuracy : dict
        Method -> array [seeds, S] of final training accuracies (every method of ``METHODS``).
    sparsity : array_like
        The S grid sparsities.
    chance : array_like
        Each seed's chance level (its largest class's share), [seeds].
    margin, alpha : float
        The effect size to exceed and the family-wise level.

    Returns
    -------
    dict
        ``after_vs_initialization``: "a > b at s" -> test (``holm_tests``, the pass/fail family over ``AFTER`` x
        ``PAI`` x sparsities); ``rewound_vs_initialization``: the same for ``REWOUND`` (its own family, reported);
        ``imp_above_chance``: IMP at the highest sparsity minus chance, against ``margin``; ``best_pai``: per
        method of ``AFTER`` and ``REWOUND`` and sparsity, the method minus the best PaI method with its 95 % t
        interval; ``holds``.
    """
    sparsity = np.asarray(sparsity)

    def family(methods):
        return holm_tests({f"{a} > {b} at {x:.4f}": (accuracy[a][:, j], accuracy[b][:, j]) for a in methods
                           for b in PAI for j, x in enumerate(sparsity)}, margin=margin, alpha=alpha)

    after, rewound = family(AFTER), family((REWOUND,))
    top = paired_effect(accuracy["imp"][:, -1], np.asarray(chance, float), margin=margin)
    top["holds"] = top["p_value"] < alpha
    best = {}
    for a in (*AFTER, REWOUND):
        for j, x in enumerate(sparsity):
            b = max(PAI, key=lambda m: float(accuracy[m][:, j].mean()))
            best[f"{a} at {x:.4f}"] = paired_effect(accuracy[a][:, j], accuracy[b][:, j]) | {"best": b}
    return {"after_vs_initialization": after, "rewound_vs_initialization": rewound, "imp_above_chance": top,
            "best_pai": best, "holds": all(t["holds"] for t in after.values()) and top["holds"]}


def measure(s: dict, seed: int, images: np.ndarray, labels: np.ndarray, source: str, label: str) -> dict:
    """Train every method of ``METHODS`` at every grid sparsity on ``s["seeds"]`` seeds.

    Parameters
    ----------
    s : dict
        A ``SCALES`` entry (with ``seeds`` possibly overridden).
    seed : int
        Base PRNG seed.
    images, labels, source : as from ``load_images``.
    label : str
        Name of the progress lines.

    Returns
    -------
    dict
        ``accuracy`` and ``epochs``: method -> [seeds, S]; ``structure``: method -> list over sparsities of
        ``structure(mask)``; ``sparsity``, ``chance`` [seeds], ``dense_accuracy``, ``images``, ``steps_per_epoch``,
        ``schedule``, ``layer_sizes``.
    """
    n = len(images) if s["images"] is None else min(s["images"], len(images))
    classes = int(labels.max()) + 1
    model = nets.MLP((images.shape[1], s["width"], s["width"], classes))
    per_epoch = math.ceil(n / BATCH)
    plan = schedule(s, per_epoch)
    fit_options: dict[str, Any] = dict(loss="cross_entropy", learning_rate=1e-3, batch_size=BATCH) | plan

    def make(key):  # one seed: n images with fresh input noise, a fresh network, and the chance level of its labels
        key_data, key_noise, key_init, key_train, key_prune = jax.random.split(key, 5)
        rows = np.sort(np.asarray(jax.random.permutation(key_data, len(images))[:n]))
        noise = np.asarray(jax.random.normal(key_noise, (n, images.shape[1])))
        noisy = images[rows] + math.sqrt(NOISE_VARIANCE) * noise
        dataset = data.from_arrays(noisy, labels[rows], classes=classes, description=source)
        chance = np.bincount(labels[rows], minlength=classes).max() / n
        return model.init(key_init), dataset, key_train, key_prune, chance

    params, sets, train_keys, prune_keys, chance = seed_runs(seed, s["seeds"], make)
    rounds_imp = max(s["exponents"])
    progress = Progress(rounds_imp + 2 + (2 + len(PAI)) * len(s["exponents"]), label, unit="training")
    imp = batched_imp(progress, params, sets, model=model, rounds=rounds_imp, key=train_keys, **fit_options)
    progress.phase("dense training of the Synaptic-Flow MagAfter (its optimizer state kept)")
    dense, _, state = train.fit_batched(params, nets.dense_mask(params), sets, model=model, keys=train_keys,
                                        return_state=True, **fit_options)
    progress.advance()
    at = {k: imp.masks[k - 1] for k in s["exponents"]}
    accuracy: dict[str, Any] = {"imp": np.stack([np.asarray(imp.histories[k - 1]["accuracy"][:, -1])
                                                 for k in s["exponents"]], 1)}
    epochs: dict[str, Any] = {"imp": np.stack([np.asarray(imp.histories[k - 1]["steps_run"]) / per_epoch
                                               for k in s["exponents"]], 1)}
    shape = {"imp": [structure(at[k]) for k in s["exponents"]]}
    starts = {"magafter_keep": (dense, state, "magnitude", dense), REWOUND: (params, None, "magnitude", imp.dense_params)}
    starts |= {m: (params, None, m, params) for m in PAI}
    for method in METHODS[1:]:  # one training call per sparsity, shaped like IMP's: training compiles once
        start, opt_state, score, scored = starts[method]
        options = {"iterations": s["synflow_iterations"]} if method == "synflow" else {}
        acc, ep, shape[method] = [], [], []
        for k in s["exponents"]:
            progress.phase(f"{method} at sparsity {1 - 0.8**k:.4f}")
            mask = prune_runs(score, scored, sets, 0.8**k, prune_keys, model=model, loss="cross_entropy", **options)
            history = train.fit_batched(start, mask, sets, model=model, keys=train_keys, optimizer_state=opt_state,
                                        **fit_options)[1]
            acc.append(np.asarray(history["accuracy"][:, -1]))
            ep.append(np.asarray(history["steps_run"]) / per_epoch)
            shape[method].append(structure(mask))
            progress.advance()
        accuracy[method], epochs[method] = np.stack(acc, 1), np.stack(ep, 1)  # [seeds, sparsities]
    progress.close()
    return {"accuracy": accuracy, "epochs": epochs, "structure": shape, "chance": np.asarray(chance, float),
            "sparsity": np.array([1 - 0.8**k for k in s["exponents"]]), "images": n, "steps_per_epoch": per_epoch,
            "schedule": plan, "layer_sizes": list(model.sizes), "dense_accuracy": float(np.asarray(imp.dense_history["accuracy"][:, -1]).mean())}


def figure(result: dict, path: Path, title: str) -> None:
    """Draw E2's figure into ``path`` (PNG, and a PDF beside it).

    Left: mean training accuracy (+- standard error over seeds) against sparsity per method, with the chance
    level. Right: live hidden units of each hidden layer per method at the highest sparsity.

    Parameters
    ----------
    result : dict
        ``measure``'s result.
    path : Path
        The PNG to write.
    title : str
        Title of the left panel.
    """
    plt = pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=(3, 2))
    sparsity = result["sparsity"]
    for i, method in enumerate(METHODS):
        mean, se = mean_se(result["accuracy"][method])
        ax.errorbar(sparsity, mean, yerr=se, marker="o", ms=3, capsize=2, color=f"C{i}", label=method)
    ax.axhline(float(np.mean(result["chance"])), color="gray", ls=":", lw=1, label="chance (largest class)")
    label_axes(ax, "sparsity (fraction of weights pruned)", "training accuracy (memorization)", title, fontsize=10)
    live = np.array([result["structure"][m][-1]["live_units"] for m in METHODS])  # [methods, hidden layers]
    x = np.arange(len(METHODS))
    for layer in range(live.shape[1]):
        ax2.bar(x + 0.4 * layer - 0.2, live[:, layer], width=0.4, label=f"hidden layer {layer + 1}")
    ax2.set_xticks(x, METHODS, rotation=30, ha="right", fontsize=8)
    label_axes(ax2, "", "live hidden units (in and out weight kept)",
               f"live units at sparsity {sparsity[-1]:.1%}", fontsize=10)
    save_figure(fig, path)


def run(scale: str, out: Path, seed: int = 0, seeds: int | None = None, data_path=None) -> dict:
    """Run E2 at ``scale`` and write its verdict and figure into ``out``.

    Parameters
    ----------
    scale : {"smoke", "full"}
        The setting of ``SCALES``.
    out : Path
        Output folder (``verdict.json``, ``e2.png``, ``e2.pdf``).
    seed : int
        Base PRNG seed.
    seeds : int, optional
        Number of seeds instead of the scale's.
    data_path : path, optional
        Folder of the FashionMNIST IDX files (default: ``$LAWROB_FASHION_MNIST``; a stand-in without them).

    Returns
    -------
    dict
        The verdict, as written to ``verdict.json``.

    Raises
    ------
    ValueError
        If ``scale`` is unknown or ``seeds`` < 2.
    """
    start = time.perf_counter()
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    if seeds is not None and (not isinstance(seeds, int) or seeds < 2):
        raise ValueError(f"seeds must be an integer >= 2, got {seeds!r}")
    s = SCALES[scale] | ({"seeds": seeds} if seeds else {})
    images, labels, source = load_images(data_path, jax.random.key(seed + 20_000))
    result = measure(s, seed, images, labels, source, f"E2 {scale}")
    tests = contrasts(result["accuracy"], result["sparsity"], result["chance"])
    signal = class_signal(images, labels, jax.random.key(seed + 30_000))
    figure(result, out / "e2.png", f"E2: noisy images, input noise variance {NOISE_VARIANCE:g}, {s['seeds']} seeds "
                                   "(NFP Fig. 1b)")
    write_per_seed(out / "per_seed.csv", result["accuracy"] | {"chance": result["chance"][:, None]
                                                                * np.ones(len(result["sparsity"]))}, result["sparsity"])
    stand_in = not source.startswith("FashionMNIST")
    scope = ("The stand-in can test whether masks found after training (IMP, MagAfter) let a small network memorize "
             "more of a noisy labelled image set than masks found at initialization, at the paper's sparsities, noise "
             f"variance and optimizer. It cannot test the paper's FashionMNIST numbers: here {result['images']} images "
             f"of {images.shape[1]} pixels, whose class signal the noise almost removes (held-out linear accuracy "
             f"{signal['noisy']:.2f} noisy vs {signal['clean']:.2f} clean, chance {signal['chance']:.2f}), so the run "
             "measures the memorization of nearly pure noise by a network of a quarter of the paper's weights; "
             "FashionMNIST (60000 images of 784 pixels) keeps more signal and needs its IDX files."
             if stand_in else "FashionMNIST, as in the paper.")
    parts = {"imp and magafter_keep > every PaI method by > 0.05 at every sparsity":
             all(t["holds"] for t in tests["after_vs_initialization"].values()),
             "imp > chance by > 0.05 at the highest sparsity": tests["imp_above_chance"]["holds"]}
    return write_verdict(
        out, "E2", scale=scale, start=start,
        claim="At extreme sparsity (97 % to 99.7 %) the training accuracy of IMP and MagAfter subnetworks on noisy "
              "images stays far above that of the pruning-at-initialization methods (SynFlow, SNIP, GraSP, random).",
        measured={"data": source, "what_the_data_can_test": scope, "class_signal": signal, "images": result["images"],
                  "layer_sizes": result["layer_sizes"],
                  "chance": float(np.mean(result["chance"])), "sparsity": result["sparsity"],
                  "dense_accuracy": result["dense_accuracy"],
                  "accuracy_by_method": {m: {"mean": mean_se(v)[0], "se": mean_se(v)[1]}
                                         for m, v in result["accuracy"].items()},
                  "mean_epochs_trained_by_method": {m: v.mean(0) for m, v in result["epochs"].items()},
                  "structure_by_method": result["structure"], **tests},
        criterion=f"Fixed before the full run: at every grid sparsity, each of IMP and the Synaptic-Flow MagAfter "
                  f"(magafter_keep: pruned after dense training, fine-tuned from the trained weights with the "
                  f"optimizer state kept) exceeds each of SynFlow, SNIP, GraSP and random by more than {MARGIN:g} "
                  f"in training accuracy (one-sided paired t-tests of H0: mean difference <= {MARGIN:g}, "
                  f"Holm-adjusted over methods x sparsities, every adjusted p < {ALPHA:g}), and IMP at the highest "
                  f"sparsity exceeds the chance level (largest class) by more than {MARGIN:g} (same test). Reported "
                  f"beside: the same tests for the rewinding MagAfter, each method minus the best PaI method with "
                  f"95 % t intervals, per-layer density and live hidden units per method.",
        passed=all(parts.values()), parts=parts,
        setup=s | {"exponents": list(s["exponents"]), "data": source, "noise_variance": NOISE_VARIANCE,
                   "batch_size": BATCH, "learning_rate": 1e-3, "optimizer": "adam", "loss": "cross_entropy",
                   "steps_per_epoch": result["steps_per_epoch"], "schedule": result["schedule"], "figure": "e2.png",
                   "per_seed": "per_seed.csv"})


def main(argv=None) -> int:
    """``python -m lawrob.checks.e2_memorization_images``: run the check.

    Parameters
    ----------
    argv : list of str, optional
        The command line (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0.
    """
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
