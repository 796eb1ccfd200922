"""Training of masked MLPs with optax: one run at a time (``fit``) or many in one compiled call (``fit_batched``).

A training run is a pure function of (params, mask, data, key, hyperparameters). The mask is applied to the
gradient and re-applied after every optimizer update, so a pruned weight is exactly zero at every step.
Stopping rules never branch on per-run values: a run that has stopped keeps its parameters through
``jnp.where`` while the batch goes on, so the same code runs one run or a chunked batch of runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from lawrob import _batching, _checks
from lawrob._batching import stack, unstack
from lawrob._train_run import (
    LOSSES, MEMORIZED_LOSS, OPTIMIZERS, TrainConfig, _train, _train_jit, accuracy, noise_correlation, per_example_loss)
from lawrob.data import Dataset, check_dataset
from lawrob.nets import MLP, Mask, Params, as_mask, check_mask, check_params

__all__ = [
    "DEFAULT_CHUNK", "LOSSES", "MEMORIZED_LOSS", "OPTIMIZERS", "TrainConfig", "accuracy", "default_chunk", "fit",
    "fit_batched", "noise_correlation", "per_example_loss", "stack", "unstack",
]

# Runs per lax.map chunk in fit_batched, measured with benchmarks/bench_train.py (see benchmarks/RESULTS.md):
# on CPU small chunks beat a full vmap (cache pressure); on accelerators a full vmap (None) is fastest.
DEFAULT_CHUNK = _batching.DEFAULT_CHUNKS["train"]


def _check_run_inputs(model: MLP, params, mask, data, reference_x, batched: bool = False) -> None:
    """Check one run's inputs (every run's values with ``batched``; shapes of run 0). Values only when concrete."""
    one = (lambda tree: jax.tree.map(lambda a: a[0], tree)) if batched else (lambda tree: tree)
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a lawrob.nets.MLP, got {type(model).__name__}")
    check_params(model, one(params))
    if batched:
        _checks.finite_tree("params", params)
    _checks.float_dtypes("params", params)
    check_mask(params, mask)
    check_dataset(data, model.d, batched=batched)
    if reference_x is not None:
        if np.ndim(reference_x) != 2 or np.shape(reference_x)[1] != model.d:
            raise ValueError(f"reference_x must have shape [m, {model.d}] for this model, got {np.shape(reference_x)}")
        _checks.finite_tree("reference_x", reference_x)


def _config(where: str, config: TrainConfig | None, options: dict) -> TrainConfig:
    """The run's ``TrainConfig``: ``config`` as given, or one built from its fields passed as keywords."""
    unknown = sorted(set(options) - set(_CONFIG_FIELDS))
    if unknown:
        raise TypeError(f"{where} got unexpected keyword(s) {', '.join(unknown)}")
    if config is None:
        missing = [name for name in ("model", "steps") if name not in options]
        if missing:
            raise TypeError(f"{where} needs config=TrainConfig(...) or the keyword(s) {', '.join(missing)}")
        return TrainConfig(**options)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a lawrob.train.TrainConfig, got {type(config).__name__}")
    if options:
        raise TypeError(f"{where} got config and its field(s) {', '.join(options)}: give each setting once "
                        f"(dataclasses.replace(config, {next(iter(options))}=...) changes one)")
    return config


def _switched(config: TrainConfig, constrained: bool, noisy: bool) -> TrainConfig:
    """The configuration with the Lipschitz constraint and the gradient noise switched on where asked."""
    return dataclasses.replace(config, constrained=config.constrained or constrained, noisy=config.noisy or noisy)


_CONFIG_FIELDS = tuple(field.name for field in dataclasses.fields(TrainConfig))


@overload
def fit(params: Params, mask: Mask, data: Dataset, *, config: TrainConfig | None = ..., learning_rate: float = ...,
        key: jax.Array | None = ..., grad_noise: float = ..., reference_x: jax.Array | None = ...,
        max_lipschitz: float | None = ..., optimizer_state: Any = ..., return_state: Literal[False] = ...,
        **options: Any) -> tuple[Params, dict[str, jax.Array]]: ...


@overload
def fit(params: Params, mask: Mask, data: Dataset, *, config: TrainConfig | None = ..., learning_rate: float = ...,
        key: jax.Array | None = ..., grad_noise: float = ..., reference_x: jax.Array | None = ...,
        max_lipschitz: float | None = ..., optimizer_state: Any = ..., return_state: Literal[True],
        **options: Any) -> tuple[Params, dict[str, jax.Array], Any]: ...


def fit(
    params: Params, mask: Mask, data: Dataset, *, config: TrainConfig | None = None, learning_rate: float = 1e-3,
    key: jax.Array | None = None, grad_noise: float = 0.0, reference_x: jax.Array | None = None,
    max_lipschitz: float | None = None, optimizer_state: Any = None, return_state: bool = False, **options: Any,
) -> tuple[Params, dict[str, jax.Array]] | tuple[Params, dict[str, jax.Array], Any]:
    """Train one masked network for ``steps`` optimizer steps; returns (params, history).

    The run's settings are a ``TrainConfig``: pass ``config=TrainConfig(model=..., steps=..., ...)``, or its
    fields as keywords (``model``, ``steps``, ``loss="mse"``, ``optimizer="adam"``, ``batch_size``,
    ``log_every``, ``stop_loss``, ``stop_delta``, ``stop_patience``), not both: a field given next to ``config``
    raises a TypeError naming it. The per-run values ``learning_rate``, ``key``, ``grad_noise`` and
    ``reference_x`` are arguments of their own; the result is the same either way.

    ``optimizer`` is a name in ``OPTIMIZERS``, an optax factory called with ``learning_rate`` or an
    ``optax.GradientTransformation`` (see ``TrainConfig``); ``learning_rate`` is a number or an optax schedule
    (a callable count -> step size, e.g. ``optax.cosine_decay_schedule(1e-2, steps)``; it becomes the config's
    ``schedule`` with learning rate 1). ``fit`` works under ``jax.jit``, ``jax.vmap`` and ``jax.grad`` in its
    numeric arguments (values are validated only when concrete): ``jax.grad`` of the final loss with respect to
    ``learning_rate`` is finite with "sgd"/"momentum" or an adam with ``eps_root > 0`` (e.g.
    ``optimizer=lambda lr: optax.adam(lr, eps_root=1e-16)``); plain adam's sqrt(v) has an infinite derivative
    where a gradient entry is exactly zero (every pruned weight, every dead unit), which makes it NaN. Minibatches
    (``batch_size``) and Gaussian gradient noise of scale ``grad_noise`` (added before masking; NFP Fig. 2c) are
    drawn from ``key`` (required when either is used). Every ``log_every`` steps the full-data metrics are
    recorded: loss, accuracy, memorized (fraction with loss < ln2/10) and, for a scalar output, the mse and the
    noise correlation (1/n) sum (f(x_i) - E f) z_i with E f averaged over ``reference_x`` (fresh samples from
    mu; the training inputs when None). Training stops (parameters frozen) at the first log where the loss is
    <= ``stop_loss``, changed by less than ``stop_delta``, or the accuracy was unchanged for ``stop_patience``
    logs, from step ``min_steps`` on (a fixed budget before the rules apply; None: from the first log);
    ``history["steps_run"]`` says when; the later logs repeat the metrics of that one, and the loop ends there
    (in ``fit_batched``, once every run of a chunk has stopped), so a run that stops early costs its steps only;
    ``jax.grad`` through a training (above) needs one without stop rules: reverse mode cannot pass that loop.
    The history's first entry is step 0. ``optimizer_state``: the optimizer's
    state to start from (default a fresh ``init(params)``; e.g. the state a previous ``fit`` of the same optimizer
    returned, to continue its training: Adam's moments and step count carry over); ``return_state=True`` returns
    (params, history, final optimizer state). ``max_lipschitz`` (> 0):
    Lipschitz-constrained training, every weight matrix held at spectral norm <= max_lipschitz^(1/L) after every
    update (``TrainConfig.constrained``), so prod_k ||W_k||_2 <= max_lipschitz up to the power iteration's
    estimate; the result's Lipschitz constant is to be certified afterwards (``lipschitz.upper``).

    Inputs: ``params`` finite float32/float64 arrays of ``model``'s shapes, ``mask`` 0/1 of their structure,
    ``learning_rate`` > 0 and ``grad_noise`` >= 0 finite, ``key`` a ``jax.random.key``; a bad one raises a
    ValueError/TypeError naming it (values are checked only when concrete, so ``fit`` can be traced). A training
    that diverges does not raise: ``history["diverged"]`` (a bool scalar) is True when the loss or a parameter
    became NaN/inf at some log, and the final loss is then non-finite.

    Parameters
    ----------
    params : Params
        The initial parameters.
    mask : Mask
        A 0/1 mask (pruned weights stay zero).
    data : Dataset
        The training data.
    config : TrainConfig, optional
        The run's settings (else given as keywords).
    learning_rate : float or callable
        The step size, or an optax schedule.
    key : jax.Array, optional
        A ``jax.random.key`` for minibatches and gradient noise.
    grad_noise : float
        The scale of Gaussian gradient noise.
    reference_x : jax.Array, optional
        Fresh samples of mu for E f.
    max_lipschitz : float, optional
        The Lipschitz constraint (None: none).
    optimizer_state : Any, optional
        An optimizer state to continue from.
    return_state : bool
        Also return the final optimizer state.
    **options
        ``TrainConfig`` fields, when ``config`` is not given.

    Returns
    -------
    tuple
        (params, history), and the final optimizer state with ``return_state``.

    Raises
    ------
    TypeError
        If a ``TrainConfig`` field is given next to ``config``, or an argument has the wrong type.
    ValueError
        If a concrete argument is out of range.

    References
    ----------
    NFP Figure 2c (gradient noise), Section 6.2 (noise correlation).
    """
    cfg = _with_schedule(_config("fit", config, options), learning_rate)
    if callable(learning_rate):
        learning_rate = 1.0
    mask = as_mask(mask, params)
    _check_run_inputs(cfg.model, params, mask, data, reference_x)
    constrained = max_lipschitz is not None
    if max_lipschitz is None:
        max_lipschitz = math.inf
    else:
        max_lipschitz = _checks.scalar_in("max_lipschitz", max_lipschitz, 0.0, math.inf, low_open=True, high_open=True)
    grad_noise = _checks.scalar_in("grad_noise", grad_noise, 0.0, math.inf, high_open=True)
    learning_rate = _checks.scalar_in("learning_rate", learning_rate, 0.0, math.inf, low_open=True, high_open=True)
    if key is None:
        if cfg.batch_size is not None or _checks.traced(grad_noise) or grad_noise > 0:
            raise ValueError("key is required when batch_size or grad_noise is used (or grad_noise is traced)")
        key = jax.random.key(0)
    _checks.prng_key("key", key)
    cfg = _switched(cfg, constrained, _checks.traced(grad_noise) or bool(grad_noise > 0))
    reference_x = data.x if reference_x is None else jnp.asarray(reference_x, data.x.dtype)
    params, history, state = _train_jit(cfg, params, mask, data, key, learning_rate, grad_noise, reference_x,
                                        max_lipschitz, optimizer_state)
    return (params, history, state) if return_state else (params, history)


def default_chunk(backend: str | None = None) -> int | None:
    """Runs per chunk for ``fit_batched`` on ``backend`` (default: JAX's); None means one full vmap.

    Parameters
    ----------
    backend : str, optional
        A JAX platform name.

    Returns
    -------
    int or None
        The chunk size.
    """
    return _batching.default_chunk(DEFAULT_CHUNK, backend)


def _train_many(cfg: TrainConfig, chunk: int | None, devices: tuple, args: tuple):
    """``_train`` over the leading run axis of ``args`` (the body of the compiled ``_train_batched``)."""
    return _batching.map_chunked(lambda run: _train(cfg, *run), args, chunk=chunk, devices=devices)


# one compilation per (config, chunk, devices) and argument shapes
_train_batched = jax.jit(_train_many, static_argnums=(0, 1, 2))


@overload
def fit_batched(params: Params, mask: Mask, data: Dataset, *, keys: jax.Array, config: TrainConfig | None = ...,
                learning_rate: Any = ..., grad_noise: ArrayLike = ..., reference_x: jax.Array | None = ...,
                chunk_size: int | None | str = ..., devices: Sequence | None = ..., max_lipschitz: ArrayLike | None = ...,
                optimizer_state: Any = ..., return_state: Literal[False] = ...,
                **options: Any) -> tuple[Params, dict[str, jax.Array]]: ...


@overload
def fit_batched(params: Params, mask: Mask, data: Dataset, *, keys: jax.Array, config: TrainConfig | None = ...,
                learning_rate: Any = ..., grad_noise: ArrayLike = ..., reference_x: jax.Array | None = ...,
                chunk_size: int | None | str = ..., devices: Sequence | None = ..., max_lipschitz: ArrayLike | None = ...,
                optimizer_state: Any = ..., return_state: Literal[True],
                **options: Any) -> tuple[Params, dict[str, jax.Array], Any]: ...


def fit_batched(
    params: Params, mask: Mask, data: Dataset, *, keys: jax.Array, config: TrainConfig | None = None,
    learning_rate: Any = 1e-3, grad_noise: ArrayLike = 0.0, reference_x: jax.Array | None = None,
    chunk_size: int | None | str = "auto", devices: Sequence | None = None, max_lipschitz: ArrayLike | None = None,
    optimizer_state: Any = None, return_state: bool = False, **options: Any,
) -> tuple[Params, dict[str, jax.Array]] | tuple[Params, dict[str, jax.Array], Any]:
    """Train B independent runs in one compiled call; every argument carries a leading run axis of size B.

    ``params``, ``mask`` and ``data`` are stacked pytrees (see ``stack``), ``keys`` has B keys, and
    ``learning_rate``/``grad_noise``/``max_lipschitz`` (None: unconstrained) are scalars or [B] arrays (per-run
    hyperparameters); ``reference_x`` is shared by all runs. The settings shared by all runs are a
    ``TrainConfig``, given as ``config`` or as its fields in keywords (``model=``, ``steps=``, ...; not both), as
    in ``fit``. The run axis is split over ``devices`` (default: this process's JAX devices) with
    ``jax.shard_map``, padding it to a multiple of their number; on each device runs go in chunks of
    ``chunk_size`` through ``jax.lax.map(batch_size=...)`` (a vmap inside each chunk): ``"auto"`` takes the
    measured per-backend default and None one full vmap (see ``lawrob._batching.map_chunked``). Results equal
    ``fit`` run by run.

    Inputs are checked as in ``fit``, every run's values included. One run that diverges does not stop the
    others: ``history["diverged"]`` is a bool array [B], True for each run whose loss or parameters became NaN/inf.
    ``optimizer_state`` (stacked, a leading run axis on every leaf) and ``return_state`` as in ``fit``.

    Parameters
    ----------
    params : Params
        Stacked initial parameters.
    mask : Mask
        Stacked masks.
    data : Dataset
        Stacked data.
    keys : jax.Array
        B keys.
    config : TrainConfig, optional
        The settings shared by all runs.
    learning_rate : float, array_like or callable
        A scalar, [B] values or a schedule.
    grad_noise : array_like
        A scalar or [B] values.
    reference_x : jax.Array, optional
        Fresh samples of mu, shared.
    chunk_size : int, None or "auto"
        Runs per vmap.
    devices : sequence, optional
        The devices to split the runs over.
    max_lipschitz : array_like, optional
        A scalar or [B] values (None: unconstrained).
    optimizer_state : Any, optional
        Stacked optimizer states to continue from.
    return_state : bool
        Also return the final optimizer states.
    **options
        ``TrainConfig`` fields, when ``config`` is not given.

    Returns
    -------
    tuple
        The stacked (params, history), and the final optimizer states with ``return_state``.

    Raises
    ------
    TypeError
        As ``fit``.
    ValueError
        As ``fit``, or if the leading axes differ.
    """
    cfg = _with_schedule(_switched(_config("fit_batched", config, options), max_lipschitz is not None, False),
                         learning_rate)
    if callable(learning_rate):
        learning_rate = 1.0
    keys = _checks.prng_key("keys", keys, ndim=1)
    batch = int(keys.shape[0])
    for name, tree in (("params", params), ("mask", mask), ("data", data)):
        size = _batching.leading_size(tree, name, "leading run")
        if size != batch:
            raise ValueError(f"{name} must have a leading run axis of size {batch} (len(keys)) on every leaf, got {size}")
    mask = as_mask(mask, params)
    _check_run_inputs(cfg.model, params, mask, data, reference_x, batched=True)
    learning_rate = _per_run("learning_rate", learning_rate, batch, lambda a: a > 0, "> 0")
    grad_noise = _per_run("grad_noise", grad_noise, batch, lambda a: a >= 0, ">= 0")
    cfg = _switched(cfg, False, _checks.traced(grad_noise) or bool(jnp.any(grad_noise > 0)))
    max_lipschitz = jnp.full((batch,), jnp.inf) if max_lipschitz is None else _per_run(
        "max_lipschitz", max_lipschitz, batch, lambda a: a > 0, "> 0")
    devices = tuple(jax.local_devices() if devices is None else devices)
    reference_x = data.x if reference_x is None else jnp.broadcast_to(jnp.asarray(reference_x), (batch, *np.shape(reference_x)))
    if chunk_size == "auto":
        chunk_size = default_chunk(devices[0].platform)
    if chunk_size is not None:
        chunk_size = _checks.positive_int("chunk_size", chunk_size)
    if optimizer_state is not None:
        size = _batching.leading_size(optimizer_state, "optimizer_state", "leading run")
        if size != batch:
            raise ValueError(f"optimizer_state must have a leading run axis of size {batch} (len(keys)) on every "
                             f"leaf, got {size}")
    args = (params, mask, data, keys, learning_rate, grad_noise, reference_x, max_lipschitz, optimizer_state)
    params, history, state = _train_batched(cfg, chunk_size, devices, args)
    return (params, history, state) if return_state else (params, history)


def _per_run(name: str, value, batch: int, valid: Callable, rule: str) -> jax.Array:
    """A scalar or [B] array (one value per run) as a float32 [B] array; finite and ``valid`` (described by
    ``rule``) for every run when concrete (a traced value, under jit/vmap/grad, has only its shape checked)."""
    if _checks.traced(value):
        shape = np.shape(value)
    else:
        value = _checks.finite_array(name, value)
        shape = value.shape
        if not np.all(valid(value)):
            raise ValueError(f"{name} must be {rule} for every run, got {value.tolist()}")
    if shape not in ((), (1,), (batch,)):
        raise ValueError(f"{name} must be a scalar or have shape [{batch}] (one per run), got {shape}")
    return jnp.broadcast_to(jnp.asarray(value, jnp.float32), (batch,))


def _with_schedule(config: TrainConfig, learning_rate) -> TrainConfig:
    """The configuration with ``learning_rate`` as its schedule when it is one (a callable count -> step size)."""
    if not callable(learning_rate):
        return config
    if config.schedule is not None:
        raise ValueError("learning_rate is a schedule and config.schedule is set too: give the schedule once")
    return dataclasses.replace(config, schedule=learning_rate)

