"""Newton steps and line-search trials of the block LipSDP barrier method under variants (issue 14, goal 1).

    cd /work/main && uv run python benchmarks/bench_lipsdp_variants.py --net 784-256-10 [--kind init]
        [--mu0 1e-4] [--mu-factor 20] [--first-trial F] [--quadratic] [--predictor] [--eclipse-start GROW]

Re-runs the loop of ``lawrob.lipschitz._lipsdp_blocks.solve`` step by step in Python, calling the library's own
jitted Newton system and reduced barrier, so that a variant of the path following can be counted without
changing the solver: the first mu (relative to the start's rho), the factor mu is divided by, the line search's
first trial (min(1, FIRST / lambda); 0: start at 1), quadratic interpolation instead of halving after a finite
rejected trial, a predictor step along the central path's tangent after each decrease of mu, and a start at
ECLipsE-Fast's per-layer multipliers (times GROW) instead of ``_lipsdp._start``'s. Prints the steps, the trials,
why trials were rejected, the steps per stage of mu, and the time model steps x (Newton system) + trials x
(reduced barrier), both timed warm in this process, each as a separate compiled call. Counts do not depend on
the machine's load; the times do, and the model is only a guide: the first-trial variant that it predicted 10 %
faster ran 7-22 % slower inside the compiled solver (benchmarks/RESULTS.md, "LipSDP at scale").
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import eigh

sys.path.insert(0, str(Path(__file__).parent))
from bench_lipsdp_scale import network  # noqa: E402

from lawrob.lipschitz import _lipsdp_blocks as blocks  # noqa: E402
from lawrob.lipschitz._lipsdp import _start  # noqa: E402
from lawrob.lipschitz._lipsdp_bound import _reduced, _unit_norm  # noqa: E402


def eclipse_multipliers(net, grow: float) -> tuple[float, list[float]]:
    """ECLipsE-Fast's rho = lambda and its LipSDP multipliers t_k = lambda l_k / 2 (x grow) per hidden layer."""
    m_sq = (net.slopes[1] / 2) ** 2
    x, per_layer = np.eye(net.d), []
    for w in net.weights[:-1]:
        k = w.T @ np.linalg.solve(x, w)
        step = 1.0 / (2 * m_sq * float(np.linalg.eigvalsh((k + k.T) / 2)[-1]))
        per_layer.append(step)
        x = step * np.eye(k.shape[0]) - step**2 * m_sq * k
    lam = float(eigh(net.weights[-1] @ net.weights[-1].T, x, eigvals_only=True)[-1])
    return lam, [lam * step / 2 * grow for step in per_layer]


def warm_ms(fn, repeats=5) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="784-256-10")
    parser.add_argument("--kind", default="init", choices=("init", "trained-like"))
    parser.add_argument("--mu0", type=float, default=blocks._MU0)
    parser.add_argument("--mu-factor", type=float, default=blocks._MU_FACTOR)
    parser.add_argument("--first-trial", type=float, default=0.0)
    parser.add_argument("--quadratic", action="store_true")
    parser.add_argument("--predictor", action="store_true")
    parser.add_argument("--eclipse-start", type=float, default=0.0, metavar="GROW")
    parser.add_argument("--rtol", type=float, default=1e-6)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)

    sizes = tuple(int(x) for x in args.net.split("-"))
    net = _reduced(_unit_norm(network(sizes, args.kind))[0])
    weights = tuple(jnp.asarray(w) for w in net.weights)
    inp, live = jnp.ones(net.d), jnp.ones(sum(net.widths))
    splits = np.cumsum(net.widths)[:-1].tolist()
    nu = float(net.d + 3 * sum(net.widths))
    rho0, t = _start(weights, tuple(jnp.ones(w) for w in net.widths), net.slopes)
    cap, mu = blocks._T_CAP * rho0, args.mu0 * rho0
    if args.eclipse_start:
        lam, per_layer = eclipse_multipliers(net, args.eclipse_start)
        t = jnp.concatenate([jnp.full(w, tk) for w, tk in zip(net.widths, per_layer)])
        mu = args.mu0 * lam
    system = jax.jit(lambda rho, t, mu: blocks._newton_system(rho, jnp.split(t, splits), mu, weights, inp, live,
                                                               net.slopes, cap))
    reduced = jax.jit(lambda t, mu: blocks._reduced_barrier(jnp.split(t, splits), mu, weights, inp, live,
                                                             net.slopes, cap))

    value, rho = reduced(t, mu)
    steps = trials = stage = 0
    rejected, per_stage = collections.Counter(), collections.Counter()
    while steps < 500:
        grad, hess, _ = system(rho, t, mu)
        schur = hess[1:, 1:] - jnp.outer(hess[1:, 0], hess[0, 1:]) / hess[0, 0]
        step = -jnp.linalg.solve(schur, grad[1:])
        slope = float(grad[1:] @ step)
        lam = np.sqrt(max(-slope, 0.0))
        shrinking, growing = step < 0, step > 0
        room = min(float(jnp.min(jnp.where(shrinking, -t / jnp.where(shrinking, step, -1.0), jnp.inf))),
                   float(jnp.min(jnp.where(growing, (cap - t) / jnp.where(growing, step, 1.0), jnp.inf))))
        size = min(1.0, blocks._BOUNDARY * room, args.first_trial / lam if args.first_trial else 1.0)
        while True:
            new, new_rho = reduced(t + size * step, mu)
            trials += 1
            finite = bool(np.isfinite(float(new)))
            if float(new) <= float(value) + blocks._ARMIJO * size * slope or (lam <= blocks._FULL_STEP and finite):
                break
            rejected["finite" if finite else "infeasible"] += 1
            if args.quadratic and finite:
                guess = -slope * size**2 / (2 * (float(new) - float(value) - slope * size))
                size = max(0.1 * size, min(0.5 * size, guess))
            else:
                size *= blocks._BACKTRACK
        t, rho, value = t + size * step, new_rho, new
        steps += 1
        per_stage[stage] += 1
        if lam**2 / 2 > blocks._CENTRED:
            continue
        if nu * mu <= args.rtol * abs(float(rho)):
            break
        tangent = jnp.linalg.solve(schur, hess[1:, 0]) / (hess[0, 0] * mu)  # dt/dmu = -S^-1 c / (h_rr mu^2)
        mu, stage = mu / args.mu_factor, stage + 1
        if args.predictor:
            shift = (1 - 1 / args.mu_factor) * tangent  # (mu_new - mu) dt/dmu
            for halving in range(10):
                trials += 1
                if np.isfinite(float(reduced(t + 0.5**halving * shift, mu)[0])):
                    t = t + 0.5**halving * shift
                    break
        value, rho = reduced(t, mu)

    newton_ms = warm_ms(lambda: system(rho, t, mu))
    trial_ms = warm_ms(lambda: reduced(t, mu))
    print(json.dumps({**vars(args), "N_reduced": net.d + sum(net.widths), "steps": steps, "trials": trials,
                      "rejected": dict(rejected), "steps_per_stage": dict(per_stage), "rho": float(rho),
                      "newton_system_ms": round(newton_ms, 1), "trial_ms": round(trial_ms, 1),
                      "model_s": round((steps * newton_ms + trials * trial_ms) / 1e3, 2)}))


if __name__ == "__main__":
    main()
