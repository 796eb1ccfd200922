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
import optax

from lawrob import _batching, _checks
from lawrob._batching import stack, unstack
from lawrob.data import Dataset, check_dataset
from lawrob.nets import MLP, Mask, Params, apply_mask, as_mask, check_mask, check_params

__all__ = [
    "DEFAULT_CHUNK", "LOSSES", "MEMORIZED_LOSS", "OPTIMIZERS", "TrainConfig", "accuracy", "default_chunk", "fit",
    "fit_batched", "noise_correlation", "per_example_loss", "stack", "unstack",
]

LOSSES = ("mse", "logistic", "cross_entropy")
OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "adam": optax.adam, "sgd": optax.sgd, "adamw": optax.adamw, "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
}
MEMORIZED_LOSS = math.log(2) / 10  # NFP Fig. 1: a point is memorized when its loss is below (ln 2) / 10

# Runs per lax.map chunk in fit_batched, measured with benchmarks/bench_train.py (see benchmarks/RESULTS.md):
# on CPU small chunks beat a full vmap (cache pressure); on accelerators a full vmap (None) is fastest.
DEFAULT_CHUNK = _batching.DEFAULT_CHUNKS["train"]


def per_example_loss(loss: str, f: jax.Array, y: jax.Array) -> jax.Array:
    """The loss of each example: ``"mse"`` (f - y)^2 and ``"logistic"`` log(1 + exp(-y f)) for a scalar output f
    [n, 1] and labels y [n]; ``"cross_entropy"`` -log softmax(f)_y for logits f [n, C] and integer classes y.
    ``loss`` must be one of ``LOSSES``.

    Parameters
    ----------
    loss : str
        One of ``LOSSES``.
    f : jax.Array
        The outputs.
    y : jax.Array
        The labels.

    Returns
    -------
    jax.Array
        The losses, [n].

    Raises
    ------
    ValueError
        If ``loss`` is unknown.
    """
    _checks.one_of("loss", loss, LOSSES)
    if loss == "cross_entropy":
        return optax.softmax_cross_entropy_with_integer_labels(f, y)
    f = f[..., 0]
    if loss == "mse":
        return (f - y) ** 2
    return jax.nn.softplus(-y * f)


def accuracy(loss: str, f: jax.Array, y: jax.Array) -> jax.Array:
    """Fraction classified right: argmax for cross-entropy, the sign of f against the sign of y otherwise
    (``loss`` one of ``LOSSES``).

    Parameters
    ----------
    loss : str
        One of ``LOSSES``.
    f : jax.Array
        The outputs.
    y : jax.Array
        The labels.

    Returns
    -------
    jax.Array
        The fraction, a scalar.
    """
    _checks.one_of("loss", loss, LOSSES)
    if loss == "cross_entropy":
        return jnp.mean(jnp.argmax(f, axis=-1) == y)
    return jnp.mean(jnp.sign(f[..., 0]) == jnp.sign(y))


def noise_correlation(f: jax.Array, z: jax.Array, mean_f: jax.Array) -> jax.Array:
    """(1/n) sum_i (f(x_i) - E_mu f) z_i, the correlation of the network with the label noise (NFP Sec. 6.2, Fig. 2).

    ``f``: the outputs, [n] or a scalar-output network's [n, 1]; ``z``: the noise [n]; ``mean_f``: a scalar.
    Other shapes raise (a [n, 1] f against a [n] z would otherwise broadcast to [n, n]). Shape checks only: traceable.

    Parameters
    ----------
    f : jax.Array
        The outputs, [n] or [n, 1].
    z : jax.Array
        The label noise, [n].
    mean_f : jax.Array
        E_mu f, a scalar.

    Returns
    -------
    jax.Array
        The correlation, a scalar.

    Raises
    ------
    ValueError
        If the shapes do not match.

    References
    ----------
    NFP Section 6.2, Figure 2.
    """
    f, z, mean_f = jnp.asarray(f), jnp.asarray(z), jnp.asarray(mean_f)
    if f.ndim == 2 and f.shape[1] == 1:
        f = f[:, 0]
    if f.ndim != 1:
        raise ValueError(f"f must have shape [n] or [n, 1], got {f.shape}")
    if z.shape != f.shape:
        raise ValueError(f"z must have shape [n] = {f.shape} like f, got {z.shape}")
    if mean_f.ndim != 0:
        raise ValueError(f"mean_f must be a scalar, got shape {mean_f.shape}")
    return jnp.mean((f - mean_f) * z)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything about a run that fixes its compiled shape (hashable: a static argument of jit).

    ``constrained``: after every update, each weight matrix is scaled down to spectral norm at most
    max_lipschitz^(1/L) (``max_lipschitz`` is a per-run argument of ``fit``), so the product bound
    prod_k ||W_k||_2 >= Lip(f) stays at most max_lipschitz (every activation is 1-Lipschitz).
    ``noisy``: gradient noise is drawn at every step (``fit`` and ``fit_batched`` switch it on when a
    ``grad_noise`` is traced or > 0); off, no random numbers are drawn, which saves their cost at every step
    and leaves the result unchanged (noise of scale 0 adds exactly 0).

    ``optimizer``: a name in ``OPTIMIZERS``, an optax factory ``f(learning_rate) -> GradientTransformation``
    (``optax.adam``, ``functools.partial(optax.adam, b1=0.8)``, ...) or an ``optax.GradientTransformation`` (which
    then owns its learning rate: ``learning_rate`` and ``schedule`` are not used). ``schedule``: None (constant)
    or an optax schedule ``count -> factor`` (``optax.cosine_decay_schedule(1.0, steps)``, a ``lawrob.schedules``
    entry, any callable): the step size at update t is learning_rate * schedule(t), so the per-run learning rate
    still scales it (and can be vmapped or differentiated). Hashable schedules only recompile when they change.

    Parameters
    ----------
    model : MLP
        The network.
    steps : int
        The number of optimizer steps.
    loss : str
        One of ``LOSSES``.
    optimizer : str, callable or optax.GradientTransformation
        See above.
    batch_size : int, optional
        The minibatch size (None: full batch).
    log_every : int, optional
        Steps between logged metrics.
    stop_loss : float, optional
        Stop at a logged loss at most this.
    stop_delta : float, optional
        Stop when the logged loss changes by less.
    stop_patience : int, optional
        Stop after this many logs of unchanged accuracy.
    min_steps : int, optional
        Steps before the stop rules apply.
    constrained : bool
        Hold every weight matrix's spectral norm at max_lipschitz^(1/L).
    noisy : bool
        Draw gradient noise.
    schedule : callable, optional
        The learning-rate factor count -> factor.

    Raises
    ------
    ValueError
        If a field is out of range or ``loss``/``optimizer`` is unknown.
    """

    model: MLP
    steps: int
    loss: str = "mse"
    optimizer: Any = "adam"
    batch_size: int | None = None
    log_every: int | None = None
    stop_loss: float | None = None
    stop_delta: float | None = None
    stop_patience: int | None = None
    min_steps: int | None = None
    constrained: bool = False
    noisy: bool = False
    schedule: Callable | None = None

    def __post_init__(self):
        if not isinstance(self.model, MLP):
            raise TypeError(f"model must be a lawrob.nets.MLP, got {type(self.model).__name__}")
        _checks.positive_int("steps", self.steps)
        _checks.one_of("loss", self.loss, LOSSES)
        if isinstance(self.optimizer, str):
            _checks.one_of("optimizer", self.optimizer, OPTIMIZERS)
        elif not callable(self.optimizer) and not isinstance(self.optimizer, optax.GradientTransformation):
            raise TypeError(f"optimizer must be a name in {sorted(OPTIMIZERS)}, an optax factory f(learning_rate) or "
                            f"an optax.GradientTransformation, got {type(self.optimizer).__name__}")
        if self.schedule is not None:
            if not callable(self.schedule):
                raise TypeError(f"schedule must be None or an optax schedule (a callable count -> factor), got "
                                f"{type(self.schedule).__name__}")
            if isinstance(self.optimizer, optax.GradientTransformation):
                raise ValueError("schedule cannot be combined with an optax.GradientTransformation as optimizer (it "
                                 "has its own learning rate): pass a factory f(learning_rate) or put the schedule in it")
        if self.batch_size is not None:
            _checks.positive_int("batch_size", self.batch_size)
        log_every = self.steps if self.log_every is None else _checks.positive_int("log_every", self.log_every)
        if self.steps % log_every:
            raise ValueError(f"log_every must divide steps={self.steps}, got {log_every}")
        object.__setattr__(self, "log_every", log_every)
        if self.stop_loss is not None:
            _checks.real_in("stop_loss", self.stop_loss, 0.0, math.inf, high_open=True)
        if self.stop_delta is not None:
            _checks.real_in("stop_delta", self.stop_delta, 0.0, math.inf, low_open=True, high_open=True)
        if self.stop_patience is not None:
            _checks.positive_int("stop_patience", self.stop_patience)
        if self.min_steps is not None:
            _checks.positive_int("min_steps", self.min_steps)
            if self.min_steps > self.steps:
                raise ValueError(f"min_steps must be at most steps={self.steps}, got {self.min_steps}")
        if self.loss != "cross_entropy" and self.model.sizes[-1] != 1:
            raise ValueError(f"loss={self.loss!r} needs a scalar-output network, got output width {self.model.sizes[-1]}")

    def make_optimizer(self, learning_rate: float | jax.Array | optax.Schedule) -> optax.GradientTransformation:
        """The optax transformation of a run with step size ``learning_rate`` (times ``schedule`` when set)."""
        if isinstance(self.optimizer, optax.GradientTransformation):
            return self.optimizer
        factory = OPTIMIZERS[self.optimizer] if isinstance(self.optimizer, str) else self.optimizer
        if self.schedule is None:
            return factory(learning_rate)
        return factory(lambda count: learning_rate * self.schedule(count))


def _minibatch(cfg: TrainConfig, data: Dataset, key: jax.Array, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The examples of ``step``: full batch, or a slice of a fresh permutation per epoch (wrapping at its end)."""
    if cfg.batch_size is None or cfg.batch_size >= data.n:
        return data.x, data.y
    per_epoch = -(-data.n // cfg.batch_size)
    perm = jax.random.permutation(jax.random.fold_in(key, step // per_epoch), data.n)
    idx = jnp.take(perm, (step % per_epoch) * cfg.batch_size + jnp.arange(cfg.batch_size), mode="wrap")
    return data.x[idx], data.y[idx]


def _metrics(cfg: TrainConfig, params: Params, mask: Mask, data: Dataset, reference_x: jax.Array) -> dict:
    f = cfg.model.apply(params, data.x, mask)
    losses = per_example_loss(cfg.loss, f, data.y)
    out = {"loss": losses.mean(), "accuracy": accuracy(cfg.loss, f, data.y),
           "memorized": jnp.mean(losses < MEMORIZED_LOSS)}
    if cfg.loss != "cross_entropy":
        mean_f = cfg.model.apply(params, reference_x, mask)[:, 0].mean()
        out["mse"] = jnp.mean((f[:, 0] - data.y) ** 2)
        out["noise_corr"] = noise_correlation(f[:, 0], data.z, mean_f)
    return out


def _power_vectors(params) -> list[jax.Array]:
    """Start vectors of the power iterations of ``_project`` (one per layer, on its output side)."""
    return [jnp.ones(layer["w"].shape[1], layer["w"].dtype) / math.sqrt(layer["w"].shape[1]) for layer in params]


def _project(params, vectors, max_lipschitz):
    """Each W_k scaled by min(1, tau / sigma_k) with tau = max_lipschitz^(1/L) and sigma_k ~ ||W_k||_2 from two
    power iterations warm-started at the last step's vectors (Miyato et al. 2018's persistent estimate; a slight
    underestimate only leaves the product a little above the target: the bound reported is certified later).
    Scaling keeps the mask's zeros. Returns (params, vectors)."""
    tau = max_lipschitz ** (1.0 / len(params))
    out, new_vectors = [], []
    for layer, v in zip(params, vectors):
        w = layer["w"]
        for _ in range(2):
            u = w @ v
            u = u / (jnp.linalg.norm(u) + 1e-30)
            v = w.T @ u
            v = v / (jnp.linalg.norm(v) + 1e-30)
        sigma = jnp.linalg.norm(w @ v)
        out.append(layer | {"w": w * jnp.minimum(1.0, tau / jnp.maximum(sigma, 1e-30)).astype(w.dtype)})
        new_vectors.append(jax.lax.stop_gradient(v))
    return type(params)(out), new_vectors


def _train(cfg: TrainConfig, params, mask, data, key, learning_rate, grad_noise, reference_x, max_lipschitz,
           state=None):
    optimizer = cfg.make_optimizer(learning_rate)
    batch_key, noise_key = jax.random.split(key)

    def constrain(p, vectors):
        return _project(p, vectors, max_lipschitz) if cfg.constrained else (p, vectors)

    def loss_fn(p, x, y):
        return per_example_loss(cfg.loss, cfg.model.apply(p, x, mask), y).mean()

    def step(carry, t):
        params, state, done, vectors = carry
        x, y = _minibatch(cfg, data, batch_key, t)
        grads = jax.grad(loss_fn)(params, x, y)
        if cfg.noisy:
            leaves, tree = jax.tree.flatten(grads)
            noise_keys = jax.random.split(jax.random.fold_in(noise_key, t), len(leaves))
            grads = jax.tree.unflatten(tree, [g + grad_noise * jax.random.normal(k, g.shape, g.dtype)
                                              for g, k in zip(leaves, noise_keys)])
        grads = apply_mask(grads, mask)
        updates, new_state = optimizer.update(grads, state, params)
        new_params, vectors = constrain(apply_mask(optax.apply_updates(params, updates), mask), vectors)
        keep = lambda old, new: jnp.where(done, old, new)  # noqa: E731
        return (jax.tree.map(keep, params, new_params), jax.tree.map(keep, state, new_state), done, vectors), None

    def block(carry, b):
        params, state, done, last_loss, last_accuracy, stale, stopped_at, diverged, vectors = carry
        (params, state, _, vectors), _ = jax.lax.scan(step, (params, state, done, vectors),
                                                      b * cfg.log_every + jnp.arange(cfg.log_every))
        m = _metrics(cfg, params, mask, data, reference_x)
        diverged = diverged | _non_finite(params, m["loss"])
        stale = jnp.where(m["accuracy"] == last_accuracy, stale + 1, 0)
        stop = jnp.asarray(False)
        if cfg.stop_loss is not None:
            stop |= m["loss"] <= cfg.stop_loss
        if cfg.stop_delta is not None:
            stop |= jnp.abs(last_loss - m["loss"]) < cfg.stop_delta
        if cfg.stop_patience is not None:
            stop |= stale >= cfg.stop_patience
        if cfg.min_steps is not None:  # a fixed budget first: the rules apply from min_steps on
            stop &= (b + 1) * cfg.log_every >= cfg.min_steps
        stopped_at = jnp.where(done | ~stop, stopped_at, (b + 1) * cfg.log_every)
        m = m | {"step": (b + 1) * cfg.log_every, "stopped": done | stop}
        return (params, state, done | stop, m["loss"], m["accuracy"], stale, stopped_at, diverged, vectors), m

    params, vectors = constrain(apply_mask(params, mask), _power_vectors(params))
    first = _metrics(cfg, params, mask, data, reference_x)
    carry = (params, optimizer.init(params) if state is None else state, jnp.asarray(False), first["loss"],
             first["accuracy"], jnp.asarray(0), jnp.asarray(cfg.steps), _non_finite(params, first["loss"]), vectors)
    (params, state, *_, stopped_at, diverged, _), history = jax.lax.scan(block, carry, jnp.arange(cfg.steps // cfg.log_every))  # type: ignore[operator]  # log_every: an int after __post_init__
    first = first | {"step": jnp.asarray(0), "stopped": jnp.asarray(False)}
    history = jax.tree.map(lambda a, h: jnp.concatenate([a[None], h]), first, history)
    return params, history | {"steps_run": stopped_at, "diverged": diverged}, state


def _non_finite(params, loss) -> jax.Array:
    """True when the loss or any parameter is NaN/inf (checked at every log; NaN/inf never heal in training)."""
    return ~jnp.isfinite(loss) | ~jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))


_train_jit = jax.jit(_train, static_argnums=0)


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
    ``history["steps_run"]`` says when. The history's first entry is step 0. ``optimizer_state``: the optimizer's
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

