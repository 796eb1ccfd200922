"""One training run of ``lawrob.train``: the losses and metrics, ``TrainConfig`` (the settings that fix a run's
compiled shape) and the compiled loop over logged blocks of optimizer steps, which with a stop rule ends once the
run has stopped (import the public names from ``lawrob.train``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import optax

from lawrob import _checks
from lawrob.data import Dataset
from lawrob.nets import MLP, Mask, Params, apply_mask

LOSSES = ("mse", "logistic", "cross_entropy")
OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "adam": optax.adam, "sgd": optax.sgd, "adamw": optax.adamw, "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
}
MEMORIZED_LOSS = math.log(2) / 10  # NFP Fig. 1: a point is memorized when its loss is below (ln 2) / 10


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

    @property
    def stops(self) -> bool:
        """Whether a stop rule is set (the loop then ends at the stop: ``_blocks_until_stopped``)."""
        return any(rule is not None for rule in (self.stop_loss, self.stop_delta, self.stop_patience))

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
    first = first | {"step": jnp.asarray(0), "stopped": jnp.asarray(False)}
    log_every = cast(int, cfg.log_every)  # an int after __post_init__
    if cfg.stops:
        carry, history = _blocks_until_stopped(block, carry, cfg.steps // log_every, log_every)
    else:  # never stops early; a scan keeps the training differentiable (reverse mode cannot pass a while loop)
        carry, history = jax.lax.scan(block, carry, jnp.arange(cfg.steps // log_every))
    params, state, *_, stopped_at, diverged, _ = carry
    history = jax.tree.map(lambda a, h: jnp.concatenate([a[None], h]), first, history)
    return params, history | {"steps_run": stopped_at, "diverged": diverged}, state


def _blocks_until_stopped(block, carry, blocks: int, log_every: int):
    """``jax.lax.scan(block, carry, jnp.arange(blocks))``, ended once the run has stopped (``carry[2]``).

    A stopped run's parameters are frozen, so every later log would repeat the metrics of the block where it
    stopped: those entries are filled with them instead of being computed (under ``vmap``, the loop runs until
    every run of the batch has stopped). Returns (carry, history [blocks, ...]) as the scan would. Reverse-mode
    differentiation cannot pass the while loop, so ``_train`` takes this path only when a stop rule is set.
    """
    _, template = jax.eval_shape(block, carry, jnp.asarray(0))
    history = jax.tree.map(lambda m: jnp.zeros((blocks,) + m.shape, m.dtype), template)

    def body(state):
        b, carry, history = state
        carry, m = block(carry, b)
        return b + 1, carry, jax.tree.map(lambda h, v: h.at[b].set(v), history, m)

    end, carry, history = jax.lax.while_loop(lambda state: (state[0] < blocks) & ~state[1][2], body,
                                             (jnp.asarray(0), carry, history))
    after = jnp.arange(blocks) >= end
    last = jax.tree.map(lambda h: h[jnp.maximum(end - 1, 0)], history)
    history = jax.tree.map(lambda h, v: jnp.where(after.reshape((-1,) + (1,) * v.ndim), v, h), history, last)
    return carry, history | {"step": (jnp.arange(blocks) + 1) * log_every}


def _non_finite(params, loss) -> jax.Array:
    """True when the loss or any parameter is NaN/inf (checked at every log; NaN/inf never heal in training)."""
    return ~jnp.isfinite(loss) | ~jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))


_train_jit = jax.jit(_train, static_argnums=0)
