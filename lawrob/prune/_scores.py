"""The pruning scores (lowest removed): random, magnitude, SNIP, GraSP, SynFlow, and the inversion ablation.

Formulas and sources are in the docstring of ``lawrob.prune``; import every name from there.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lawrob import _checks
from lawrob.data import Dataset, check_dataset
from lawrob.nets import MLP, Mask, Params, apply_mask, as_mask, check_layers, check_params, dense_mask
from lawrob.train import LOSSES, per_example_loss

Scores = Params

CLASSIFICATION_TEMPERATURE = 200.0  # GraSP (Wang et al. 2020) and Synaptic-Flow: logits / 200
SYNFLOW_ITERATIONS = 100  # Tanaka et al. 2020, Sec. 6: 100 pruning iterations


def random(params: Params, key: jax.Array) -> Scores:
    """i.i.d. U(0, 1) scores, independent of the parameters' values: random pruning (``key``: a jax.random key).

    Parameters
    ----------
    params : Params
        The parameters (only their shapes are read).
    key : jax.Array
        A ``jax.random.key``.

    Returns
    -------
    Scores
        U(0, 1) scores.
    """
    check_layers("params", params)
    _checks.prng_key("key", key)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [jax.random.uniform(k, jnp.shape(p), jnp.result_type(p)) for p, k in zip(leaves, keys)])


def magnitude(params: Params, mask: Mask | None = None) -> Scores:
    """|theta * m|: magnitude pruning (Han et al. 2015), the criterion of IMP (Frankle & Carbin 2019).

    Parameters
    ----------
    params : Params
        The parameters.
    mask : Mask, optional
        A 0/1 mask (None: dense).

    Returns
    -------
    Scores
        |theta * m|.

    References
    ----------
    S. Han, J. Pool, J. Tran and W. Dally, *Learning both weights and connections for efficient neural networks*,
    NeurIPS 2015; J. Frankle and M. Carbin, *The lottery ticket hypothesis*, ICLR 2019.
    """
    mask = _check_scored("params", params, mask)
    return jax.tree.map(jnp.abs, params if mask is None else apply_mask(params, mask))


def _mean_loss(model: MLP, loss: str, data: Dataset, mask: Mask, temperature: float = 1.0):
    """theta -> (1/n) sum_i loss(f_{theta * m}(x_i) / T, y_i)."""
    return lambda params: per_example_loss(loss, model.apply(params, data.x, mask) / temperature, data.y).mean()


def snip(params: Params, data: Dataset, *, model: MLP, loss: str = "mse", mask: Mask | None = None) -> Scores:
    """|w * dL/dw| at w = theta * m: SNIP's connection sensitivity (Lee et al. 2019), all of ``data`` as the batch.

    The derivative is taken with respect to theta through the mask, dL/dtheta = m * dL/dw, so pruned entries
    score 0 (as the Synaptic-Flow code, which differentiates with respect to the mask).

    Parameters
    ----------
    params : Params
        The parameters.
    data : Dataset
        The batch.
    model : MLP
        The network.
    loss : str
        The loss.
    mask : Mask, optional
        A 0/1 mask (None: dense).

    Returns
    -------
    Scores
        |w * dL/dw|.

    References
    ----------
    N. Lee, T. Ajanthan and P. H. S. Torr, *SNIP: single-shot network pruning based on connection sensitivity*,
    ICLR 2019.
    """
    mask = _check_data_scored(params, data, model, loss, mask)
    mask = dense_mask(params) if mask is None else mask
    grads = jax.grad(_mean_loss(model, loss, data, mask))(params)
    return jax.tree.map(lambda p, m, g: jnp.abs(p * m * g), params, mask, grads)


def default_temperature(loss: str) -> float:
    """GraSP's logit temperature: 200 for the classification losses, 1 for "mse" (no softmax to soften).

    Parameters
    ----------
    loss : str
        The loss name.

    Returns
    -------
    float
        The temperature T.
    """
    return 1.0 if loss == "mse" else CLASSIFICATION_TEMPERATURE


def grasp(params: Params, data: Dataset, *, model: MLP, loss: str = "mse", mask: Mask | None = None,
          temperature: float | None = None) -> Scores:
    """(theta * m) * (H g), the GraSP score (Wang et al. 2020) with the lowest scores removed.

    L(theta) = mean loss of f_{theta * m}(x) / T (T from ``default_temperature`` unless given), g = grad L(theta)
    and H its Hessian, both restricted to the active weights by the mask. Removing the lowest theta * Hg is
    GraSP's rule of removing the highest -theta * Hg (see the module docstring for the two reference codes).

    Parameters
    ----------
    params : Params
        The parameters.
    data : Dataset
        The batch.
    model : MLP
        The network.
    loss : str
        The loss.
    mask : Mask, optional
        A 0/1 mask (None: dense).
    temperature : float, optional
        T (default: ``default_temperature(loss)``).

    Returns
    -------
    Scores
        The scores, a pytree like params.

    References
    ----------
    C. Wang, G. Zhang and R. Grosse, *Picking winning tickets before training by preserving gradient flow*,
    ICLR 2020.
    """
    mask = _check_data_scored(params, data, model, loss, mask)
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

    Parameters
    ----------
    params : Params
        The parameters.
    mask : Mask, optional
        A 0/1 mask (None: dense).
    include_biases : bool
        Add the |b_l| paths to R.

    Returns
    -------
    Scores
        float64 scores.

    References
    ----------
    Tanaka et al., SynFlow, NeurIPS 2020.
    """
    mask = _check_scored("params", params, mask)
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
    (the inversion ablation of Frankle et al. 2020). Safe for float64 SynFlow scores.

    Parameters
    ----------
    scores : Scores
        The scores.

    Returns
    -------
    Scores
        Their negation.

    References
    ----------
    Frankle et al., *Pruning neural networks at initialization: why are we missing the mark?*, ICLR 2021.
    """
    check_layers("scores", scores)
    with jax.enable_x64(True):
        return jax.tree.map(jnp.negative, scores)



def _check_scored(name: str, params, mask):
    """params-like ``params``, and ``mask`` (if given; jaxpruner's format is read by ``nets.as_mask``) of its
    structure and shapes (static checks: traceable). Returns the mask as a lawrob mask, or None."""
    check_layers(name, params)
    if mask is not None:
        mask = as_mask(mask, params)
        _checks.same_tree("mask", mask, params, name)
    return mask


def _check_data_scored(params, data, model, loss, mask):
    """The arguments of a data-based score: a model, params of its shapes, a Dataset of its input width.
    Returns the mask as ``_check_scored`` does."""
    _checks.one_of("loss", loss, LOSSES)
    check_params(model, params)
    mask = _check_scored("params", params, mask)
    check_dataset(data, model.d)
    return mask
