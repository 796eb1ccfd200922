"""The most robust interpolator: the smallest Lipschitz constant at which a masked network still fits the data.

The law of robustness (Bubeck & Sellke 2021, Thm 3; No Free Prune, Thm 4) bounds from below the Lipschitz
constant of *every* network of a class that fits noisy data below the noise level, train MSE <= sigma2 - eps.
Whatever a plain fit finds sits above that minimum, often far above; the law's scaling is about the minimum
L*(n, d, mask). ``frontier`` searches for it by Lipschitz-constrained training (``train.fit_batched(...,
max_lipschitz=L)``: every weight matrix held at spectral norm <= L^(1/L_layers), so prod_k ||W_k||_2 <= L),
a continuation on L and then a bisection on log L::

    hi = prod_k ||W_k||_2 of the plain fit (it fits), lo unknown, floor = hi / spread;
    for each trial: L = max(hi / 2, floor) while no trial has failed, else L = sqrt(lo hi);
                    train from the best network found so far under the constraint L;
                    if train MSE <= sigma2 - eps: hi = L and keep the network, else lo = L.

Halving first (rather than bisecting [floor, hi] at once) keeps every trial near a network that fits, which
matters where fitting is hard (near interpolation); a run that fits at the floor stops there.

Each trial warm-starts from the last network that fit (projected onto the smaller constraint at step 0). The
network returned is the one that fit at the smallest L; its Lipschitz constant is at most L (up to the power
iteration's estimate) and is to be certified afterwards (``lipschitz.upper``): the bisection's L is never
reported as a bound. All runs of a batch bisect in lock-step, one batched training call per trial.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks, train
from lawrob.data import Dataset
from lawrob.nets import MLP, Mask, Params
from lawrob.progress import logger

__all__ = ["Frontier", "fits_below_noise", "frontier", "spectral_product"]


def spectral_product(params: Params) -> jax.Array:
    """prod_k ||W_k||_2, from the exact singular values: an upper bound on Lip(f) for 1-Lipschitz activations
    (every ``nets.ACTIVATIONS``).

    Parameters
    ----------
    params : Params
        One network, or a stacked batch of B networks (a leading axis on every leaf).

    Returns
    -------
    jax.Array
        A scalar, or an array [B] for a batch.
    """
    norms = [jnp.linalg.norm(layer["w"], ord=2, axis=(-2, -1)) for layer in params]
    return jnp.prod(jnp.stack(norms), axis=0)


@dataclasses.dataclass(frozen=True)
class Frontier:
    """The result of ``frontier`` for B runs.

    Parameters
    ----------
    params : Params
        The most robust network that fit, per run (stacked).
    history : dict
        Its training history (stacked, as ``train.fit_batched`` returns it).
    target : numpy.ndarray
        The constraint [B] each network fit under; inf where no trial fit (the plain fit is kept).
    trials_fit : numpy.ndarray
        How many trials fit, per run [B].
    steps : numpy.ndarray
        Optimizer steps spent per run [B], the plain fit included.
    """

    params: Params
    history: dict
    target: np.ndarray
    trials_fit: np.ndarray
    steps: np.ndarray


def fits_below_noise(history: dict, sigma2: np.ndarray, eps: float) -> np.ndarray:
    """Which runs of a stacked training ``history`` fit below the noise level: final train MSE <= sigma2 - eps
    (the hypothesis of Bubeck & Sellke 2021, Thm 3, and No Free Prune, Thm 4).

    Parameters
    ----------
    history : dict
        A ``train.fit_batched`` history; ``history["mse"]`` has shape [B, logs].
    sigma2 : numpy.ndarray
        The noise variance of each run's data set, shape [B].
    eps : float
        The margin below the noise level.

    Returns
    -------
    numpy.ndarray
        Booleans, shape [B].

    References
    ----------
    S. Bubeck and M. Sellke, NeurIPS 2021, Thm 3; T. Kumar, K. Luo and M. Sellke, ICML 2024, Thm 4
    (docs/theory.md).
    """
    return np.asarray(history["mse"][:, -1]) <= sigma2 - eps


def frontier(params: Params, history: dict, mask: Mask, data: Dataset, *, model: MLP, keys: jax.Array, eps: float,
             trials: int = 8, spread: float = 1000.0, learning_rate: Any = 1e-3, **options: Any) -> Frontier:
    """Bisect on the Lipschitz constraint for B runs that already fit (see the module docstring).

    Parameters
    ----------
    params, history : Params, dict
        The stacked plain fits and their training histories (``train.fit_batched``); the spectral product of
        each is its run's first ``hi``.
    mask, data : Mask, Dataset
        Stacked as in ``train.fit_batched``.
    model : nets.MLP
        The architecture.
    keys : jax.Array
        Training keys [B]; trial t uses fold_in(key, t).
    eps : float
        The fit criterion train MSE <= sigma2 - eps (sigma2 of each data set), > 0.
    trials : int
        Steps of the continuation and bisection, >= 1.
    spread : float
        The search never goes below hi / ``spread``; > 1.
    learning_rate : float or array_like
        Scalar or [B].
    **options
        Those of ``train.fit_batched`` (steps, loss, ...), used for every trial.

    Returns
    -------
    Frontier
        A run whose plain fit does not fit keeps it (``target`` inf, ``trials_fit`` 0).

    Raises
    ------
    ValueError
        If ``trials``, ``spread``, ``eps`` or ``keys`` are out of range.

    References
    ----------
    S. Bubeck and M. Sellke, "A universal law of robustness via isoperimetry", NeurIPS 2021, Thm 3; T. Kumar,
    K. Luo and M. Sellke, "No free prune", ICML 2024, Thm 4 (the fit hypothesis; docs/theory.md).
    """
    trials = _checks.positive_int("trials", trials)
    spread = _checks.real_in("spread", spread, 1.0, np.inf, low_open=True, high_open=True)
    eps = _checks.real_in("eps", eps, 0.0, np.inf, low_open=True, high_open=True)
    keys = _checks.prng_key("keys", keys, ndim=1)
    sigma2 = np.asarray(data.sigma2, np.float64).reshape(-1)
    train_kwargs = dict(model=model, learning_rate=learning_rate, **options)
    best = params
    eligible = fits_below_noise(history, sigma2, eps) & ~np.asarray(history["diverged"])
    hi = np.asarray(spectral_product(params), np.float64)
    floor = hi / spread
    lo = np.full(hi.shape, np.nan)  # the largest L that failed, once one did
    target = np.full(hi.shape, np.inf)
    trials_fit = np.zeros(hi.shape, int)
    steps = np.asarray(history["steps_run"]).astype(int)
    start = time.perf_counter()
    for t in range(trials):
        level = np.where(np.isnan(lo), np.maximum(hi / 2, floor), np.sqrt(lo * hi))
        level = np.where(hi <= floor, hi, level)  # fitted at the floor: the search has ended
        trained, trial_history = jax.device_get(train.fit_batched(
            best, mask, data, keys=jax.vmap(lambda k: jax.random.fold_in(k, t))(keys),
            max_lipschitz=jnp.asarray(level, jnp.float32), **train_kwargs))
        steps += np.asarray(trial_history["steps_run"])
        ok = eligible & fits_below_noise(trial_history, sigma2, eps) & ~np.asarray(trial_history["diverged"])
        pick = lambda new, old: np.where(ok.reshape((-1,) + (1,) * (np.ndim(new) - 1)), new, old)  # noqa: E731
        best = jax.tree.map(pick, trained, best)
        history = jax.tree.map(pick, trial_history, history)
        hi, lo = np.where(ok, level, hi), np.where(ok, lo, level)
        target = np.where(ok, level, target)
        trials_fit += ok
        logger.info(f"frontier: trial {t + 1}/{trials}, {int(ok.sum())} of {len(ok)} runs fit under their constraint "
                    f"({time.perf_counter() - start:.0f} s elapsed)")
    return Frontier(best, history, target, trials_fit, steps)
