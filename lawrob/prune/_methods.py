"""The registry ``METHODS`` of pruning methods and one-shot pruning (``prune``, with the iterated schedule).
Import every name from ``lawrob.prune``."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax

from lawrob import _checks
from lawrob.data import Dataset, check_dataset
from lawrob.nets import MLP, Mask, Params, check_mask, check_params, dense_mask
from lawrob.prune._masking import (
    _SELECT_STATIC, COLLAPSE, SCOPES, _check_density, _check_no_regrowth, _counts, _report_collapse, _select)
from lawrob.prune._scores import SYNFLOW_ITERATIONS, Scores, grasp, invert, magnitude, random, snip, synflow
from lawrob.train import LOSSES


@dataclasses.dataclass(frozen=True)
class Method:
    """A pruning method of the registry ``METHODS``, which ``prune``, the sweep grid and its runs read.

    ``score``: ``f(params, mask, data, key, *, model, loss, **options) -> scores``, a pytree like params whose lowest
    entries are removed (one-shot methods, run by ``prune``). ``pipeline``: ``f(params, data, density, *, model,
    keys, rate, **fit_options) -> (masks, extra columns)``: a training-based method on stacked runs (IMP,
    MagAfter). A method has one of the two; "dense" has neither (the mask keeps everything). ``data_free``: the
    mask does not depend on the data, so I(m; D) = 0 in p_eff. ``options``: the score keywords ``prune``
    accepts. ``iterations``: the default number of pruning iterations (SynFlow: 100).

    Parameters
    ----------
    name : str
        The method's name.
    score : callable, optional
        The one-shot score function.
    pipeline : callable, optional
        The training-based pipeline on stacked runs.
    data_free : bool
        Whether the mask ignores the data.
    options : tuple of str
        The score keywords ``prune`` accepts.
    iterations : int
        The default number of pruning iterations.
    """

    name: str
    score: Callable[..., Scores] | None = None
    pipeline: Callable | None = None
    data_free: bool = False
    options: tuple[str, ...] = ()
    iterations: int = 1

    @property
    def trains(self) -> bool:
        return self.pipeline is not None


METHODS: dict[str, Method] = {}


def register_method(name: str, *, score: Callable | None = None, pipeline: Callable | None = None,
                    data_free: bool = False, options: Sequence[str] = (), iterations: int = 1,
                    replace: bool = False) -> Method:
    """Add a pruning method to ``METHODS`` (so ``prune``, sweep grids and their runs accept it) and return it.

    Give ``score`` (one-shot) or ``pipeline`` (training-based), see ``Method``. ``replace=True`` overwrites a
    method of the same name; otherwise a name already taken is an error.

    Parameters
    ----------
    name : str
        The method's name.
    score : callable, optional
        A one-shot score function.
    pipeline : callable, optional
        A training-based pipeline.
    data_free : bool
        Whether the mask ignores the data.
    options : sequence of str
        The score keywords ``prune`` accepts.
    iterations : int
        The default number of pruning iterations.
    replace : bool
        Allow replacing a registered method.

    Returns
    -------
    Method
        The registered method.

    Raises
    ------
    ValueError
        If ``name`` is taken (without ``replace``) or not exactly one of ``score`` and ``pipeline`` is given.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier-like string, got {name!r}")
    if name in METHODS and not replace:
        raise ValueError(f"name {name!r} is already a pruning method; pass replace=True to overwrite it")
    if (score is None) == (pipeline is None) and name != "dense":
        raise ValueError("give exactly one of score (a one-shot method) and pipeline (a training-based method)")
    for arg, fn in (("score", score), ("pipeline", pipeline)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{arg} must be callable, got {type(fn).__name__}")
    method = Method(name, score, pipeline, _checks.boolean("data_free", data_free), tuple(options),
                    _checks.positive_int("iterations", iterations))
    METHODS[name] = method
    return method


def one_shot_methods() -> list[str]:
    """Names of the registered methods ``prune`` runs (those with a score).

    Returns
    -------
    list of str
        The names.
    """
    return [name for name, m in METHODS.items() if m.score is not None]


register_method("dense", data_free=True)
register_method("random", score=lambda params, mask, data, key, *, model, loss: random(params, key), data_free=True)
register_method("magnitude", score=lambda params, mask, data, key, *, model, loss: magnitude(params, mask),
                data_free=True)
register_method("snip", score=lambda params, mask, data, key, *, model, loss: snip(params, data, model=model, loss=loss,
                                                                                    mask=mask))
register_method("grasp", score=lambda params, mask, data, key, *, model, loss, temperature=None: grasp(
    params, data, model=model, loss=loss, mask=mask, temperature=temperature), options=("temperature",))
register_method("synflow", score=lambda params, mask, data, key, *, model, loss, include_biases=True: synflow(
    params, mask, include_biases=include_biases), data_free=True, options=("include_biases",),
    iterations=SYNFLOW_ITERATIONS)


def schedule(density: float, iterations: int) -> list[float]:
    """The exponential schedule density^((k+1)/K), k = 0..K-1, of iterated pruning (Tanaka et al. 2020);
    ``density`` in (0, 1], ``iterations`` K >= 1.

    Parameters
    ----------
    density : float
        The final density, in (0, 1].
    iterations : int
        K >= 1.

    Returns
    -------
    list of float
        The K densities.

    Raises
    ------
    ValueError
        If an argument is out of range.

    References
    ----------
    Tanaka et al., SynFlow, NeurIPS 2020.
    """
    density, iterations = _check_density(density), _checks.positive_int("iterations", iterations)
    return [density ** ((k + 1) / iterations) for k in range(iterations)]


@functools.partial(jax.jit, static_argnames=("method", "model", "loss", "options", "invert_scores") + _SELECT_STATIC)
def _prune(params, mask, data, key, counts, *, method, model, loss, options, invert_scores, **static):
    score = functools.partial(METHODS[method].score, model=model, loss=loss, **dict(options))

    def step(mask, inputs):
        count, k = inputs
        key_score, key_ties = jax.random.split(k)
        scores = score(params, mask, data, key_score)
        return _select(invert(scores) if invert_scores else scores, mask, count, key_ties, **static), None

    mask, _ = jax.lax.scan(step, mask, (counts, jax.random.split(key, counts.shape[0])))
    return mask


def prune(method: str, params: Params, data: Dataset | None, density: float, key: jax.Array, *, model: MLP,
          scope: str = "global", loss: str = "mse", mask: Mask | None = None, iterations: int | None = None,
          prune_biases: bool = False, collapse: str = "warn", invert: bool = False, **options: Any) -> Mask:
    """One-shot pruning at ``density`` with a scored method of ``METHODS`` ("random", "magnitude", "snip", "grasp",
    "synflow", or one added with ``register_method``), scored on ``params`` (and ``data`` for the methods that
    are not data-free, with ``loss``).

    ``iterations`` K (default 100 for SynFlow, 1 otherwise): score the masked network and mask to
    density^((k+1)/K) for k = 0..K-1 (Synaptic-Flow's exponential schedule). ``mask``: start from this mask
    (its pruned entries stay pruned). ``invert``: remove the highest scores (ablation). ``options`` go to the
    score: ``temperature`` (grasp), ``include_biases`` (synflow). Scope, biases, ties and collapse are those
    of ``mask_from_scores``. Jitted inside; also works under ``jax.jit``/``jax.vmap`` of the caller.

    Parameters
    ----------
    method : str
        A scored method of ``METHODS``.
    params : Params
        The parameters scored.
    data : Dataset or None
        The data (None for data-free methods).
    density : float
        The fraction of prunable entries kept, in (0, 1].
    key : jax.Array
        A ``jax.random.key``.
    model : MLP
        The network.
    scope : {"global", "layer"}
        As in ``mask_from_scores``.
    loss : str
        The loss of the data-dependent scores.
    mask : Mask, optional
        A mask to start from.
    iterations : int, optional
        The number K of pruning iterations.
    prune_biases : bool
        Whether biases are prunable.
    collapse : str
        As in ``mask_from_scores``.
    invert : bool
        Remove the highest scores (ablation).
    **options
        Keywords of the score (``temperature``, ``include_biases``).

    Returns
    -------
    Mask
        The 0/1 mask.

    Raises
    ------
    ValueError
        If ``method`` is unknown or not one-shot, an option is not the method's, or ``data`` is missing.

    References
    ----------
    H. Tanaka, D. Kunin, D. L. K. Yamins and S. Ganguli, *Pruning neural networks without any data by iteratively
    conserving synaptic flow*, NeurIPS 2020.
    """
    _checks.one_of("method", method, one_shot_methods())
    entry = METHODS[method]
    density = _check_density(density)
    _checks.one_of("scope", scope, SCOPES)
    _checks.one_of("collapse", collapse, COLLAPSE)
    _checks.one_of("loss", loss, LOSSES)
    _checks.prng_key("key", key)
    unknown = set(options) - set(entry.options)
    if unknown:
        raise TypeError(f"unexpected option(s) {sorted(unknown)} for method={method!r}; its options are "
                        f"{list(entry.options)}")
    check_params(model, params)
    if mask is not None:
        check_mask(params, mask)
    if not entry.data_free:
        check_dataset(data, model.d, f"data (needed by method={method!r})")
    iterations = _checks.positive_int("iterations", entry.iterations if iterations is None else iterations)
    counts = _counts(params, schedule(density, iterations), scope, prune_biases, collapse == "keep_one")
    if mask is None:
        mask = dense_mask(params)
    elif not _checks.traced(mask):
        _check_no_regrowth(mask, counts, scope, prune_biases)
    dtype = jax.tree.leaves(mask)[0].dtype
    with jax.enable_x64(True):  # trace (and batch, under a caller's vmap) SynFlow's float64 ops in an x64 scope
        out = _prune(params, mask, None if entry.data_free else data, key, counts, method=method, model=model,
                     loss=loss, options=tuple(sorted(options.items())), invert_scores=invert, scope=scope,
                     prune_biases=prune_biases, keep_one=collapse == "keep_one", dtype=dtype)
    _report_collapse(out, collapse)
    return out
