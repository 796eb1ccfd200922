"""The ``lawrob`` command. Each subcommand has a ``_add_<name>`` parser function and a ``_run_<name>`` handler."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _add_demo(sub) -> None:
    parser = sub.add_parser("demo", help="run the embedded default job and write results under ./lawrob-out/")
    parser.add_argument("--out", type=Path, default=Path("lawrob-out"), help="output folder (default: ./lawrob-out)")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args) -> int:
    """Gaussian data with random +-1 labels -> randomly pruned MLP -> training below the noise level -> summary."""
    import jax

    from lawrob import data, nets, train

    n, d, width, density, eps = 256, 16, 256, 0.5, 0.1
    key_data, key_init, key_mask = jax.random.split(jax.random.key(args.seed), 3)
    dataset = data.make_dataset(key_data, data.Gaussian(d), n)
    model = nets.MLP((d, width, width, 1))
    params = model.init(key_init)
    mask = jax.tree.map(lambda p: p, nets.dense_mask(params))
    mask = tuple(
        {**layer, "w": jax.random.bernoulli(k, density, layer["w"].shape).astype(layer["w"].dtype)}
        for layer, k in zip(mask, jax.random.split(key_mask, model.depth))
    )
    start = time.perf_counter()
    params, history = train.fit(params, mask, dataset, model=model, steps=2000, learning_rate=1e-3, log_every=100,
                                stop_loss=1e-3)
    seconds = time.perf_counter() - start
    sigma2 = float(dataset.sigma2)
    mse = float(history["mse"][-1])
    summary = {
        "data": dataset.description, "n": n, "d": d, "sigma2": sigma2, "eps": eps,
        "model": f"MLP{model.sizes}", "density": density,
        "active_weights": nets.count_active(mask), "weights": model.num_weights,
        "train_mse": mse, "fits_below_noise": mse <= sigma2 - eps,
        "noise_correlation": float(history["noise_corr"][-1]), "steps_run": int(history["steps_run"]),
        "train_seconds": round(seconds, 2),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "demo.json").write_text(json.dumps(summary, indent=2))
    width_key = max(len(k) for k in summary)
    for k, v in summary.items():
        print(f"{k:<{width_key}}  {v}")
    print(f"wrote {args.out / 'demo.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lawrob", description="Put the sparse Law of Robustness to the test.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_demo,):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
