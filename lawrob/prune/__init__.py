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
rewound weights), each on one run or, with ``batched=True``, on B stacked runs (``key`` then holds B keys).
Rewinding is explicit: the saved weights are passed to every round's training, which ``tests/test_prune.py``
checks bit for bit (the Synaptic-Flow IMP rewind was a no-op for a long time).

Ablations (Frankle, Dziugaite, Roy & Carbin 2020, "Pruning neural networks at initialization: why are we
missing the mark?"): ``shuffle_within_layer``, ``invert`` (prune the highest scores instead of the lowest,
same density), ``reinit`` (same mask, fresh initial weights).

Layout (private modules; import every name from ``lawrob.prune``): ``_scores`` (the scores), ``_masking``
(exact-count masks, layer collapse, the shuffle and reinit ablations), ``_methods`` (the registry ``METHODS`` and
one-shot ``prune``) and ``_training`` (``imp``, ``mag_after`` and their registry pipelines).
"""

from lawrob.prune._masking import (
    COLLAPSE, SCOPES, LayerCollapseWarning, kept_count, layer_collapse, mask_from_scores, reinit, shuffle_within_layer)
from lawrob.prune._methods import METHODS, Method, one_shot_methods, prune, register_method, schedule
from lawrob.prune._scores import (
    CLASSIFICATION_TEMPERATURE, SYNFLOW_ITERATIONS, Scores, default_temperature, grasp, invert, magnitude, random, snip,
    synflow)
from lawrob.prune._training import ImpResult, imp, imp_schedule, imp_to_density, mag_after, mag_after_to_density

__all__ = [
    "CLASSIFICATION_TEMPERATURE", "COLLAPSE", "METHODS", "SCOPES", "SYNFLOW_ITERATIONS", "ImpResult",
    "LayerCollapseWarning", "Method", "Scores", "default_temperature", "grasp", "imp", "imp_schedule",
    "imp_to_density", "invert", "kept_count", "layer_collapse", "mag_after", "mag_after_to_density", "magnitude",
    "mask_from_scores", "one_shot_methods", "prune", "random", "register_method", "reinit", "schedule",
    "shuffle_within_layer", "snip", "synflow",
]
