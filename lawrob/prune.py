"""Pruning: scores, exact-count masks, one-shot pruning, IMP with rewinding, MagAfter and the mask ablations.

Conventions (those of the Synaptic-Flow code, ganguli-lab/Synaptic-Flow, that NFP used for its baselines):

- A score is a pytree like the parameters, one real number per parameter; **the lowest scores are removed**.
- Masks are **global** by default: one ranking over all prunable weights of the network (``scope="layer"``
  ranks each weight matrix on its own). **Biases are not pruned** unless ``prune_biases=True``.
- A mask keeps **exactly** ``kept = floor(density * P + 0.5)`` of the P prunable entries (round half up of
  the float64 product; per matrix with ``scope="layer"``). Ties are broken uniformly at random with the key,
  by a lexicographic sort on (score, a random permutation of the entries), never by index order.
- Entries already pruned in a given ``mask`` score -inf, so they stay pruned (no regrowth).
- Iterated pruning (SynFlow's schedule, any method may use it) prunes K times to the densities
  density^((k+1)/K), k = 0..K-1, rescoring the masked network in between.
- **Layer collapse** (a weight matrix with no weight left: the output no longer depends on the input) is
  detected and reported; ``collapse`` chooses what happens (see ``mask_from_scores``).

Score formulas and sources (w = theta * m, the masked parameters; L the mean loss over ``data``):

- ``random``: i.i.d. U(0, 1) (Synaptic-Flow draws N(0, 1); any continuous i.i.d. law gives the same
  uniformly random mask).
- ``magnitude``: |w| (Han et al. 2015; the criterion of IMP, Frankle & Carbin 2019).
- ``snip``: |w * dL/dw|, the connection sensitivity of Lee et al. 2019 (SNIP) on one batch (all of ``data``).
- ``grasp``: w * (H g) with g = dL/dtheta and H the Hessian of L, both in the subspace of the active
  weights, on logits divided by a temperature T (Wang et al. 2020, GraSP). Sign: GraSP's Algorithm 1 scores
  S(-theta) = -theta * Hg and removes the weights with the **highest** S (official code alecwangcq/GraSP,
  pruner/GraSP.py: ``-layer.weight.data * layer.weight.grad`` then ``torch.topk`` removes the top scores);
  Synaptic-Flow's Pruners/pruners.py stores ``p.grad * p.data`` = +theta * Hg and removes the **lowest**.
  Both remove the lowest theta * Hg, which is what this score does with lowest-removed masking. H g is the
  forward-over-reverse Hessian-vector product ``jvp(grad(L), theta, g)``, equal to the gradient of
  (stop_gradient(g) . grad L) that both PyTorch codes backpropagate. T = 200 for the classification losses
  ("logistic", "cross_entropy"; GraSP's and Synaptic-Flow's value, meant to soften the softmax at
  initialization) and T = 1 for "mse", where there is no softmax; ``temperature=`` overrides it. Both codes
  also divide the scores by |sum of scores| + 1e-10, which does not change the ranking and is omitted here;
  the official GraSP code also re-draws Linear layers from Xavier-normal before scoring, which is not done here.
- ``synflow``: |theta * dR/dtheta| with R = 1^T (prod_l |W_l|) 1, the synaptic flow of Tanaka et al. 2020,
  evaluated as the network with all parameters replaced by their absolute values, without activations, on an
  all-ones input (with ReLU and non-negative weights and input the activations are the identity). Biases
  enter R as |b_l| paths by default, as in the Synaptic-Flow code; ``include_biases=False`` gives the
  bias-free formula. Data-free, computed in float64. Default schedule: 100 iterations (Tanaka et al.).

Training-based pruning: ``imp`` (iterative magnitude pruning with rewinding: Frankle & Carbin 2019,
Frankle et al. 2020) and ``mag_after`` (magnitude pruning after training, one shot, then retraining from the
rewound weights). Rewinding is explicit: the saved weights are passed to every round's training, which
``tests/test_prune.py`` checks bit for bit (the Synaptic-Flow IMP rewind was a no-op for a long time).

Ablations (Frankle, Dziugaite, Roy & Carbin 2020, "Pruning neural networks at initialization: why are we
missing the mark?"): ``shuffle_within_layer``, ``invert`` (prune the highest scores instead of the lowest,
same density), ``reinit`` (same mask, fresh initial weights).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks
from lawrob.data import Dataset, check_dataset
from lawrob.nets import MLP, Mask, Params, apply_mask, check_layers, check_mask, check_params, dense_mask
from lawrob.progress import logger

__all__ = [
    "CLASSIFICATION_TEMPERATURE", "COLLAPSE", "METHODS", "SCOPES", "SYNFLOW_ITERATIONS", "ImpResult",
    "LayerCollapseWarning", "Method", "Scores", "default_temperature", "grasp", "imp", "imp_batched",
    "imp_schedule", "imp_to_density", "invert", "kept_count", "layer_collapse", "mag_after", "mag_after_batched",
    "mag_after_to_density", "magnitude", "mask_from_scores", "one_shot_methods", "prune", "random",
    "register_method", "reinit", "schedule", "shuffle_within_layer", "snip", "synflow",
]
from lawrob.train import LOSSES, fit, fit_batched, per_example_loss, unstack

Scores = Params

SCOPES = ("global", "layer")
COLLAPSE = ("warn", "raise", "keep_one", "allow")
CLASSIFICATION_TEMPERATURE = 200.0  # GraSP (Wang et al. 2020) and Synaptic-Flow: logits / 200
SYNFLOW_ITERATIONS = 100  # Tanaka et al. 2020, Sec. 6: 100 pruning iterations


class LayerCollapseWarning(UserWarning):
    """A mask left some weight matrix with no weight: the network's output no longer depends on its input."""


# ----------------------------------------------------------------------------------------------- scores


def random(params: Params, key: jax.Array) -> Scores:
    """i.i.d. U(0, 1) scores, independent of the parameters' values: random pruning (``key``: a jax.random key)."""
    check_layers("params", params)
    _checks.prng_key("key", key)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [jax.random.uniform(k, jnp.shape(p), jnp.result_type(p)) for p, k in zip(leaves, keys)])


def magnitude(params: Params, mask: Mask | None = None) -> Scores:
    """|theta * m|: magnitude pruning (Han et al. 2015), the criterion of IMP (Frankle & Carbin 2019)."""
    _check_scored("params", params, mask)
    return jax.tree.map(jnp.abs, params if mask is None else apply_mask(params, mask))


def _mean_loss(model: MLP, loss: str, data: Dataset, mask: Mask, temperature: float = 1.0):
    """theta -> (1/n) sum_i loss(f_{theta * m}(x_i) / T, y_i)."""
    return lambda params: per_example_loss(loss, model.apply(params, data.x, mask) / temperature, data.y).mean()


def snip(params: Params, data: Dataset, *, model: MLP, loss: str = "mse", mask: Mask | None = None) -> Scores:
    """|w * dL/dw| at w = theta * m: SNIP's connection sensitivity (Lee et al. 2019), all of ``data`` as the batch.

    The derivative is taken with respect to theta through the mask, dL/dtheta = m * dL/dw, so pruned entries
    score 0 (as the Synaptic-Flow code, which differentiates with respect to the mask).
    """
    _check_data_scored(params, data, model, loss, mask)
    mask = dense_mask(params) if mask is None else mask
    grads = jax.grad(_mean_loss(model, loss, data, mask))(params)
    return jax.tree.map(lambda p, m, g: jnp.abs(p * m * g), params, mask, grads)


def default_temperature(loss: str) -> float:
    """GraSP's logit temperature: 200 for the classification losses, 1 for "mse" (no softmax to soften)."""
    return 1.0 if loss == "mse" else CLASSIFICATION_TEMPERATURE


def grasp(params: Params, data: Dataset, *, model: MLP, loss: str = "mse", mask: Mask | None = None,
          temperature: float | None = None) -> Scores:
    """(theta * m) * (H g), the GraSP score (Wang et al. 2020) with the lowest scores removed.

    L(theta) = mean loss of f_{theta * m}(x) / T (T from ``default_temperature`` unless given), g = grad L(theta)
    and H its Hessian, both restricted to the active weights by the mask. Removing the lowest theta * Hg is
    GraSP's rule of removing the highest -theta * Hg (see the module docstring for the two reference codes).
    """
    _check_data_scored(params, data, model, loss, mask)
    mask = dense_mask(params) if mask is None else mask
    temperature = default_temperature(loss) if temperature is None else temperature
    if not _checks.traced(temperature):
        _checks.real_in("temperature", temperature, 0.0, math.inf, low_open=True, high_open=True)
    grad_fn = jax.grad(_mean_loss(model, loss, data, mask, temperature))
    g = grad_fn(params)
    hg = jax.jvp(grad_fn, (params,), (g,))[1]
    return jax.tree.map(lambda p, m, h: p * m * h, params, mask, hg)


def synflow(params: Params, mask: Mask | None = None, *, include_biases: bool = True) -> Scores:
    """|theta * dR/dtheta| with R = 1^T |W_D| ... |W_1| 1 (plus |b_l| paths): SynFlow (Tanaka et al. 2020).

    Evaluated in float64 (``jax.enable_x64`` in this function's scope only) so that products over many layers
    neither overflow nor underflow; the scores are float64 arrays. ``mask_from_scores`` ranks them in
    float64 too, but arithmetic on them outside an x64 scope truncates them to float32.
    """
    _check_scored("params", params, mask)
    with jax.enable_x64(True):
        mask = dense_mask(params) if mask is None else mask
        absolute = jax.tree.map(lambda p, m: jnp.abs((p * m).astype(jnp.float64)), params, mask)

        def flow(a):
            h = jnp.ones(a[0]["w"].shape[0], jnp.float64)
            for layer in a:
                h = h @ layer["w"] + (layer["b"] if include_biases and "b" in layer else 0.0)
            return h.sum()

        return jax.tree.map(jnp.multiply, absolute, jax.grad(flow)(absolute))


def invert(scores: Scores) -> Scores:
    """-scores: masking then removes the highest scores instead of the lowest, at the same density
    (the inversion ablation of Frankle et al. 2020). Safe for float64 SynFlow scores."""
    check_layers("scores", scores)
    with jax.enable_x64(True):
        return jax.tree.map(jnp.negative, scores)


@dataclasses.dataclass(frozen=True)
class Method:
    """A pruning method of the registry ``METHODS``, which ``prune``, the sweep grid and its runs read.

    ``score``: f(params, mask, data, key, *, model, loss, **options) -> scores, a pytree like params whose lowest
    entries are removed (one-shot methods, run by ``prune``). ``pipeline``: f(params, data, density, *, model,
    keys, rate, **fit_options) -> (masks, extra columns): a training-based method on stacked runs (IMP,
    MagAfter). A method has one of the two; "dense" has neither (the mask keeps everything). ``data_free``: the
    mask does not depend on the data, so I(m; D) = 0 in p_eff. ``options``: the score keywords ``prune``
    accepts. ``iterations``: the default number of pruning iterations (SynFlow: 100).
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
                    data_free: bool = False, options=(), iterations: int = 1, replace: bool = False) -> Method:
    """Add a pruning method to ``METHODS`` (so ``prune``, sweep grids and their runs accept it) and return it.

    Give ``score`` (one-shot) or ``pipeline`` (training-based), see ``Method``. ``replace=True`` overwrites a
    method of the same name; otherwise a name already taken is an error.
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
    """Names of the registered methods ``prune`` runs (those with a score)."""
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


def _check_scored(name: str, params, mask) -> None:
    """params-like ``params``, and ``mask`` (if given) of its structure and shapes (static checks: traceable)."""
    check_layers(name, params)
    if mask is not None:
        _checks.same_tree("mask", mask, params, name)


def _check_data_scored(params, data, model, loss, mask) -> None:
    """The arguments of a data-based score: a model, params of its shapes, a Dataset of its input width."""
    _checks.one_of("loss", loss, LOSSES)
    check_params(model, params)
    _check_scored("params", params, mask)
    check_dataset(data, model.d)


# ------------------------------------------------------------------------------------------- masking


def kept_count(density: float, size: int) -> int:
    """The number of entries a mask of ``density`` in (0, 1] keeps out of ``size`` >= 0: floor(density * size + 0.5)."""
    return math.floor(_check_density(density) * _checks.positive_int("size", size, minimum=0) + 0.5)


def _slots(tree, prune_biases: bool) -> list[tuple[int, str]]:
    """(layer, name) of the prunable leaves, in order: every "w", and every "b" when ``prune_biases``."""
    names = ("w", "b") if prune_biases else ("w",)
    return [(i, name) for i, layer in enumerate(tree) for name in names if name in layer]


def _rank(values: jax.Array, key: jax.Array) -> jax.Array:
    """Rank (0 = lowest) of each entry of a 1-d array, ties broken by a random permutation drawn from ``key``.

    Only the comparison sort runs under x64, so float64 scores compare exactly; the bookkeeping stays int32.
    """
    n = values.shape[0]
    positions = jnp.arange(n, dtype=jnp.int32)
    tiebreak = jax.random.permutation(key, n).astype(jnp.int32)
    with jax.enable_x64(True):
        _, _, order = jax.lax.sort((values, tiebreak, positions), num_keys=2)
    return jnp.zeros_like(positions).at[order].set(positions)


def _select(scores, mask, counts, key, *, scope, prune_biases, keep_one, dtype):
    """Keep the ``counts`` highest-scoring active prunable entries (one count, or one per slot for "layer").

    Pure and traceable (counts may be traced). The scores are only compared, under x64, so float64 SynFlow
    scores keep their precision.
    """
    slots = _slots(scores, prune_biases)
    with jax.enable_x64(True):
        flat = [jnp.ravel(scores[i][name]) if mask is None
                else jnp.where(jnp.ravel(mask[i][name]) > 0, jnp.ravel(scores[i][name]), -jnp.inf) for i, name in slots]
        if scope == "global":
            values = jnp.concatenate([f.astype(jnp.result_type(*flat)) for f in flat])
    if scope == "global":
        rank = _rank(values, key)
        offsets = np.cumsum([0] + [f.size for f in flat])
        if keep_one:  # lift the best entry of every weight matrix above all others, then rank again
            lift = jnp.zeros_like(rank)
            for j, (_, name) in enumerate(slots):
                if name == "w":
                    segment = rank[offsets[j]:offsets[j + 1]]
                    lift = lift.at[offsets[j]:offsets[j + 1]].set(jnp.where(segment == segment.max(), rank.size, 0))
            rank = jnp.argsort(jnp.argsort(rank + lift))
        keep = rank >= rank.size - counts[0]
        pieces = [keep[offsets[j]:offsets[j + 1]] for j in range(len(slots))]
    else:
        keys = jax.random.split(key, len(slots))
        pieces = [_rank(f, k) >= f.size - counts[j] for j, (f, k) in enumerate(zip(flat, keys))]
    kept = dict(zip(slots, pieces))
    return tuple(
        {name: kept[(i, name)].reshape(jnp.shape(s)).astype(dtype) if (i, name) in kept
         else (jnp.ones(jnp.shape(s), dtype) if mask is None else mask[i][name].astype(dtype))
         for name, s in layer.items()}
        for i, layer in enumerate(scores))


_SELECT_STATIC = ("scope", "prune_biases", "keep_one", "dtype")
_select_jit = jax.jit(_select, static_argnames=_SELECT_STATIC)


@functools.partial(jax.jit, static_argnames=_SELECT_STATIC)
def _select_runs(scores, mask, counts, keys, **static):
    """``_select`` for a leading run axis on scores, mask and keys (counts shared)."""
    return jax.vmap(lambda s, m, k: _select(s, m, counts, k, **static))(scores, mask, keys)


def layer_collapse(mask: Mask) -> jax.Array:
    """Boolean [D] (or [..., D] for stacked masks): True where layer l's weight matrix has no weight left."""
    check_layers("mask", mask)
    return jnp.stack([jnp.all(layer["w"] == 0, axis=(-2, -1)) for layer in mask], axis=-1)


def _warn_collapse(collapsed) -> None:
    layers = np.flatnonzero(np.any(np.reshape(np.asarray(collapsed), (-1, np.shape(collapsed)[-1])), axis=0))
    if layers.size:
        warnings.warn(f"layer collapse: weight matrices {layers.tolist()} have no weight left, so the network's output "
                      "no longer depends on its input; collapse='keep_one' keeps the best weight of every layer, "
                      "collapse='raise' forbids it, collapse='allow' silences this", LayerCollapseWarning, stacklevel=3)


def _report_collapse(mask: Mask, collapse: str) -> None:
    """Warn (works under jit/vmap through a debug callback) or raise on layer collapse."""
    if collapse == "warn":
        jax.debug.callback(_warn_collapse, layer_collapse(mask))
    elif collapse == "raise":
        if _checks.traced(mask):
            raise ValueError("collapse='raise' needs concrete masks; under jit or vmap use collapse='keep_one' "
                             "or test lawrob.prune.layer_collapse(mask) on the result")
        collapsed = np.asarray(layer_collapse(mask))
        if collapsed.any():
            layers = np.flatnonzero(np.reshape(collapsed, (-1, collapsed.shape[-1])).any(axis=0)).tolist()
            raise ValueError(f"layer collapse: weight matrices {layers} have no weight left (collapse='raise'); "
                             "raise the density, use scope='layer' or collapse='keep_one'")


def _check_density(density) -> float:
    return _checks.real_in("density", density, 0.0, 1.0, low_open=True)


def _counts(tree, density_list, scope: str, prune_biases: bool, keep_one: bool) -> np.ndarray:
    """[len(density_list), groups] int array of kept counts: one group ("global") or one per prunable leaf."""
    slots = _slots(tree, prune_biases)
    sizes = [int(np.size(tree[i][name])) for i, name in slots]
    rows = []
    for density in density_list:
        if scope == "global":
            row = [kept_count(density, sum(sizes))]
            if row[0] == 0:
                raise ValueError(f"density={density} keeps no weight of the {sum(sizes)} prunable ones; raise the density")
            weight_layers = sum(n == "w" for _, n in slots)
            if keep_one and row[0] < weight_layers:
                raise ValueError(f"collapse='keep_one' needs at least one weight per layer ({weight_layers}), but "
                                 f"density={density} keeps {row[0]}")
        else:
            row = [max(kept_count(density, s), 1 if keep_one and n == "w" else 0) for s, (_, n) in zip(sizes, slots)]
        rows.append(row)
    return np.asarray(rows, dtype=np.int32)


def _check_no_regrowth(mask, counts, scope: str, prune_biases: bool) -> None:
    active = [int(np.count_nonzero(np.asarray(mask[i][name]))) for i, name in _slots(mask, prune_biases)]
    need = [int(counts.max())] if scope == "global" else counts.max(axis=0).tolist()
    have = [sum(active)] if scope == "global" else active
    if any(n > h for n, h in zip(need, have)):
        raise ValueError(f"density keeps {need} weights but mask has only {have} active: pruned weights never regrow; "
                         "lower the density or pass a denser mask")


def _mask_dtype(scores, mask):
    return jax.tree.leaves(mask)[0].dtype if mask is not None else jax.dtypes.canonicalize_dtype(jax.tree.leaves(scores)[0].dtype)


def mask_from_scores(scores: Scores, density: float, scope: str, key: jax.Array, *, mask: Mask | None = None,
                     prune_biases: bool = False, collapse: str = "warn") -> Mask:
    """The 0/1 mask keeping exactly ``kept_count(density, P)`` highest-scoring prunable entries.

    scope: "global" ranks all P prunable entries together; "layer" keeps ``kept_count(density, size)`` of each
    prunable matrix (and bias vector, with ``prune_biases``) on its own. Ties are broken at random with ``key``.
    ``mask``: entries it prunes stay pruned (asking to keep more than it has active raises); without
    ``prune_biases`` the biases keep its values (ones without a mask). Works under jit and vmap.
    collapse: what to do when a weight matrix loses all its weights: "warn" (``LayerCollapseWarning``, also
    under jit/vmap), "raise" (ValueError; concrete inputs only), "keep_one" (the best-scored weight of every
    matrix is kept first, even if ``mask`` had already emptied that matrix, and the rest of the count filled
    by rank, so the global count stays exact; with scope "layer" each matrix keeps max(1, its count)), or
    "allow". ``layer_collapse(mask)`` tells which matrices are empty (traceable).
    The mask has the dtype of ``mask`` if given, else of the scores (float64 SynFlow scores give the default
    float dtype, float32 unless x64 is on).
    """
    density = _check_density(density)
    _checks.one_of("scope", scope, SCOPES)
    _checks.one_of("collapse", collapse, COLLAPSE)
    check_layers("scores", scores)
    _checks.prng_key("key", key)
    if mask is not None:
        _checks.same_tree("mask", mask, scores, "scores")
    counts = _counts(scores, [density], scope, prune_biases, collapse == "keep_one")[0]
    if not _checks.traced(scores):
        bad = [np.count_nonzero(np.isnan(np.asarray(leaf))) for leaf in jax.tree.leaves(scores)]
        if sum(bad):
            raise ValueError(f"scores must not be NaN; {sum(bad)} entries are")
    if mask is not None and not _checks.traced(mask):
        check_mask(scores, mask)
        _check_no_regrowth(mask, counts[None], scope, prune_biases)
    dtype = _mask_dtype(scores, mask)
    with jax.enable_x64(True):  # float64 scores (SynFlow) enter the jitted selection unconverted
        out = _select_jit(scores, mask, counts, key, scope=scope, prune_biases=prune_biases,
                          keep_one=collapse == "keep_one", dtype=dtype)
    _report_collapse(out, collapse)
    return out


# ------------------------------------------------------------------------------------ one-shot pruning


def schedule(density: float, iterations: int) -> list[float]:
    """The exponential schedule density^((k+1)/K), k = 0..K-1, of iterated pruning (Tanaka et al. 2020);
    ``density`` in (0, 1], ``iterations`` K >= 1."""
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
          prune_biases: bool = False, collapse: str = "warn", invert: bool = False, **options) -> Mask:
    """One-shot pruning at ``density`` with a scored method of ``METHODS`` ("random", "magnitude", "snip", "grasp",
    "synflow", or one added with ``register_method``), scored on ``params`` (and ``data`` for the methods that
    are not data-free, with ``loss``).

    ``iterations`` K (default 100 for SynFlow, 1 otherwise): score the masked network and mask to
    density^((k+1)/K) for k = 0..K-1 (Synaptic-Flow's exponential schedule). ``mask``: start from this mask
    (its pruned entries stay pruned). ``invert``: remove the highest scores (ablation). ``options`` go to the
    score: ``temperature`` (grasp), ``include_biases`` (synflow). Scope, biases, ties and collapse are those
    of ``mask_from_scores``. Jitted inside; also works under ``jax.jit``/``jax.vmap`` of the caller.
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


# --------------------------------------------------------------------------------- training-based pruning


class ImpResult(NamedTuple):
    """Iterative magnitude pruning, one entry per round r = 0..R-1 (leading run axis when batched).

    masks[r]: the mask after round r's pruning, keeping ``kept_count((1 - rate)^(r+1), P)`` weights.
    params[r], histories[r]: the network trained with masks[r] from the rewound weights, and its training
    history (``lawrob.train.fit``'s: loss, accuracy, memorized, noise_corr, ...).
    dense_params, dense_history: the dense training whose magnitudes round 0 prunes, run from
    ``rewind_params`` for steps - rewind_step steps (its "step" counts from the rewind point).
    rewind_params: the saved weights every round restarts from: the initialization, or the dense network
    after ``rewind_step`` steps.
    """

    masks: tuple
    params: tuple
    histories: tuple
    dense_params: Params
    dense_history: dict
    rewind_params: Params


def _split(keys: jax.Array, n: int) -> jax.Array:
    """n keys per run: [n] for one key, [B, n] for a batch of B keys."""
    return jax.random.split(keys, n) if keys.ndim == 0 else jax.vmap(lambda k: jax.random.split(k, n))(keys)


def _as_key(key, name: str = "key", ndim: int = 0) -> jax.Array:
    """A typed key (array) from a typed or legacy raw one, raising a TypeError naming ``name`` for anything else."""
    key = _checks.prng_key(name, key, ndim)
    return key if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else jax.random.wrap_key_data(jnp.asarray(key))


def _magnitude_rounds(params, data, densities, key, *, steps, rewind_step, scope, prune_biases, collapse, train, select):
    """Train dense, then per density: prune the trained weights by magnitude, rewind, retrain. One run or a batch."""
    n = len(densities)
    halves = _split(key, 2)
    key_train, key_prune = halves[..., 0], halves[..., 1]
    train_keys, prune_keys = _split(key_train, n + 2), _split(key_prune, n)
    one_run = params if key.ndim == 0 else jax.tree.map(lambda a: a[0], params)
    counts = _counts(one_run, densities, scope, prune_biases, collapse == "keep_one")
    dense = jax.tree.map(jnp.ones_like, params)
    rewind_params = params
    if rewind_step:
        rewind_params, _ = train(params, dense, train_keys[..., 0], rewind_step, pre_rewind=True)
    start = time.perf_counter()
    trained, dense_history = train(rewind_params, dense, train_keys[..., 1], steps - rewind_step)
    logger.info(f"pruning: dense network trained ({time.perf_counter() - start:.0f} s); {n} magnitude round(s) to go")
    mask, masks, outs, histories = dense, [], [], []
    dense_params = trained
    for r in range(n):
        mask = select(magnitude(trained, mask), mask, counts[r], prune_keys[..., r], scope=scope,
                      prune_biases=prune_biases, keep_one=collapse == "keep_one", dtype=jax.tree.leaves(params)[0].dtype)
        _report_collapse(mask, collapse)
        trained, history = train(rewind_params, mask, train_keys[..., r + 2], steps - rewind_step)
        logger.info(f"pruning: round {r + 1}/{n} trained at density {densities[r]:.4g} "
                    f"({time.perf_counter() - start:.0f} s elapsed)")
        masks.append(mask)
        outs.append(trained)
        histories.append(history)
    return ImpResult(tuple(masks), tuple(outs), tuple(histories), dense_params, dense_history, rewind_params)


def _check_training(steps, rewind_step, scope, collapse, model, params, data, batched=False) -> tuple[int, int]:
    """The shared arguments of the training-based pruners (params and data of run 0 when ``batched``)."""
    one = (lambda tree: jax.tree.map(lambda a: a[0], tree)) if batched else (lambda tree: tree)
    check_params(model, one(params))
    check_dataset(data, model.d, batched=batched)
    _checks.one_of("scope", scope, SCOPES)
    _checks.one_of("collapse", collapse, COLLAPSE)
    steps = _checks.positive_int("steps", steps)
    rewind_step = _checks.positive_int("rewind_step", rewind_step, minimum=0)
    if rewind_step >= steps:
        raise ValueError(f"rewind_step must lie in [0, steps={steps}), got {rewind_step}")
    return steps, rewind_step


def _imp_densities(rounds, rate) -> list[float]:
    rounds = _checks.positive_int("rounds", rounds)
    rate = _checks.real_in("rate", rate, 0.0, 1.0, low_open=True, high_open=True)
    return [(1 - rate) ** (r + 1) for r in range(rounds)]


def _run_keys(keys) -> jax.Array:
    """B keys (one per run), typed."""
    return _as_key(keys, "keys", ndim=1)


def _trainer(data, model, fit_options, batched: bool):
    """train(params, mask, key(s), steps, pre_rewind) with ``fit`` or ``fit_batched``; the segment before the
    rewind point logs once (its length need not be a multiple of log_every)."""
    def train(params, mask, keys, steps, pre_rewind=False):
        options = {**fit_options, "log_every": None} if pre_rewind else fit_options
        if batched:
            return fit_batched(params, mask, data, model=model, steps=steps, keys=keys, **options)
        return fit(params, mask, data, model=model, steps=steps, key=keys, **options)
    return train


def imp(params: Params, data: Dataset, *, model: MLP, rounds: int, steps: int, key: jax.Array, rate: float = 0.2,
        rewind_step: int = 0, scope: str = "global", prune_biases: bool = False, collapse: str = "warn",
        **fit_options) -> ImpResult:
    """Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; rewinding to step k: Frankle et al. 2020).

    Train the dense network (``steps`` steps of ``lawrob.train.fit`` with ``fit_options``), saving its weights
    at step ``rewind_step`` (0: the initialization). Then for r = 0..R-1: remove the lowest-magnitude weights
    of the last trained network (globally by default) so that ``kept_count((1 - rate)^(r+1), P)`` remain
    (about ``rate`` of the remaining ones; counting from P each round keeps the densities on the grid
    (1 - rate)^k instead of compounding rounding), set the rest back to the saved weights, and train
    steps - rewind_step steps. Every training starts a fresh optimizer state. ``key`` draws the training keys
    (minibatches, gradient noise) and the tie-breaks. Returns an ``ImpResult``.
    """
    steps, rewind_step = _check_training(steps, rewind_step, scope, collapse, model, params, data)
    return _magnitude_rounds(params, data, _imp_densities(rounds, rate), _as_key(key), steps=steps,
                             rewind_step=rewind_step, scope=scope, prune_biases=prune_biases, collapse=collapse,
                             train=_trainer(data, model, fit_options, batched=False), select=_select_jit)


def imp_batched(params: Params, data: Dataset, *, model: MLP, rounds: int, steps: int, keys: jax.Array,
                rate: float = 0.2, rewind_step: int = 0, scope: str = "global", prune_biases: bool = False,
                collapse: str = "warn", **fit_options) -> ImpResult:
    """``imp`` for B runs at once: ``params`` and ``data`` stacked (``lawrob.train.stack``), ``keys`` of shape [B].

    Each training is one ``lawrob.train.fit_batched`` call (``fit_options`` may include its ``chunk_size``),
    each pruning one vmapped selection; run i equals ``imp`` on run i with ``keys[i]`` (up to the float
    rounding differences between ``fit_batched`` and ``fit``). Every entry of the result has a leading run axis.
    """
    keys = _run_keys(keys)
    steps, rewind_step = _check_training(steps, rewind_step, scope, collapse, model, params, data, batched=True)
    return _magnitude_rounds(params, data, _imp_densities(rounds, rate), keys, steps=steps,
                             rewind_step=rewind_step, scope=scope, prune_biases=prune_biases, collapse=collapse,
                             train=_trainer(data, model, fit_options, batched=True), select=_select_runs)


def mag_after(params: Params, data: Dataset, density: float, *, model: MLP, steps: int, key: jax.Array,
              rewind_step: int = 0, scope: str = "global", prune_biases: bool = False, collapse: str = "warn",
              **fit_options) -> ImpResult:
    """Magnitude pruning after training ("MagAfter"): train dense, keep the ``kept_count(density, P)``
    largest-magnitude weights in one shot, retrain from the rewound weights. The ``ImpResult`` has one round."""
    steps, rewind_step = _check_training(steps, rewind_step, scope, collapse, model, params, data)
    return _magnitude_rounds(params, data, [_check_density(density)], _as_key(key), steps=steps,
                             rewind_step=rewind_step, scope=scope, prune_biases=prune_biases, collapse=collapse,
                             train=_trainer(data, model, fit_options, batched=False), select=_select_jit)


def mag_after_batched(params: Params, data: Dataset, density: float, *, model: MLP, steps: int, keys: jax.Array,
                      rewind_step: int = 0, scope: str = "global", prune_biases: bool = False, collapse: str = "warn",
                      **fit_options) -> ImpResult:
    """``mag_after`` for B stacked runs (see ``imp_batched``)."""
    keys = _run_keys(keys)
    steps, rewind_step = _check_training(steps, rewind_step, scope, collapse, model, params, data, batched=True)
    return _magnitude_rounds(params, data, [_check_density(density)], keys, steps=steps,
                             rewind_step=rewind_step, scope=scope, prune_biases=prune_biases, collapse=collapse,
                             train=_trainer(data, model, fit_options, batched=True), select=_select_runs)


def imp_schedule(density: float, rate: float) -> tuple[int, bool]:
    """(k, exact): the number k of full IMP rounds with (1 - rate)^k >= density, and whether (1 - rate)^k == density
    (otherwise one more magnitude pruning of round k's trained weights reaches the density exactly)."""
    k = math.floor(math.log(density) / math.log(1 - rate) + 1e-9)
    return k, math.isclose((1 - rate) ** k, density, rel_tol=1e-9)


def imp_to_density(params: Params, data: Dataset, density: float, *, model: MLP, keys: jax.Array, rate: float = 0.2,
                   **fit_options) -> tuple[list[Mask], list[dict]]:
    """The pipeline of the method "imp" on B stacked runs: the k full rounds of ``imp_batched`` with
    (1 - rate)^k >= density (``imp_schedule``), then, unless (1 - rate)^k == density, one magnitude pruning of
    round k's trained weights to exactly ``density`` (tie-breaks from ``fold_in(keys[b], k)``). Layer collapse is
    allowed (the caller reports it). Returns each run's mask and its extra columns ``imp_rounds`` and
    ``imp_round_noise_peaks`` (the largest noise correlation of each round's training)."""
    k, exact = imp_schedule(_check_density(density), rate)
    if k == 0:
        raise ValueError(f"imp at density {density:g} needs rate <= 1 - density (one full round), got rate = {rate:g}")
    result = imp_batched(params, data, model=model, rounds=k, rate=rate, keys=keys, collapse="allow", **fit_options)
    masks = unstack(result.masks[-1])
    if not exact:
        last = unstack(result.params[-1])
        keys = _run_keys(keys)
        masks = [mask_from_scores(magnitude(p, m), density, "global", jax.random.fold_in(keys[b], k), mask=m,
                                  collapse="allow") for b, (p, m) in enumerate(zip(last, masks))]
    peaks = np.stack([np.max(np.asarray(h["noise_corr"]), axis=-1) for h in result.histories], axis=1)  # [runs, rounds]
    return masks, [{"imp_rounds": k + (not exact), "imp_round_noise_peaks": p.tolist()} for p in peaks]


def mag_after_to_density(params: Params, data: Dataset, density: float, *, model: MLP, keys: jax.Array,
                         rate: float | None = None, **fit_options) -> tuple[list[Mask], list[dict]]:
    """The pipeline of the method "mag_after" on B stacked runs (``mag_after_batched``, layer collapse allowed;
    ``rate`` is not used): each run's mask and no extra columns."""
    masks = unstack(mag_after_batched(params, data, density, model=model, keys=keys, collapse="allow",
                                      **fit_options).masks[0])
    return masks, [{} for _ in masks]


register_method("imp", pipeline=imp_to_density)
register_method("mag_after", pipeline=mag_after_to_density)


# ------------------------------------------------------------------------------------------- ablations


def shuffle_within_layer(mask: Mask, key: jax.Array, *, prune_biases: bool = False) -> Mask:
    """Randomly permute the entries of every weight matrix's mask (and bias mask with ``prune_biases``):
    per-layer densities are kept, the per-weight choice is destroyed (Frankle et al. 2020's layerwise shuffle)."""
    check_layers("mask", mask)
    _checks.prng_key("key", key)
    slots = _slots(mask, prune_biases)
    keys = dict(zip(slots, jax.random.split(key, len(slots))))
    return tuple({name: jax.random.permutation(keys[(i, name)], jnp.ravel(m)).reshape(jnp.shape(m)) if (i, name) in keys else m
                  for name, m in layer.items()} for i, layer in enumerate(mask))


def reinit(mask: Mask, key: jax.Array, *, model: MLP) -> Params:
    """Fresh weights from ``model``'s initialization distribution under the same mask (Frankle et al. 2020)."""
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a lawrob.nets.MLP, got {type(model).__name__}")
    params = model.init(key)
    _checks.same_tree("mask", mask, params, "model.init(key)")
    return apply_mask(params, mask)

