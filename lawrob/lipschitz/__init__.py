"""Certified lower bounds, sound upper bounds and exact values of the l2 Lipschitz constant of sparse MLPs.

One calling convention for every method (as in jax_verify): ``f(params, mask, *, model=None, ...) -> Bound``,
where ``params``/``mask`` are ``lawrob.nets`` pytrees (mask None: dense) and ``model`` is the ``nets.MLP``
that supplies the activation (None: ReLU, shapes taken from params). All constants are l2 -> l2,
Lip(f) = sup_x ||J_f(x)||_2, global over R^d unless a box ``domain`` is given; all values are float64.

- ``lower(params, mask, *, key, points=None, method="search")``: the Jacobian norm at a witness point, certified
  on the exact masked network ("points": best of the given points; "search": multi-scale sampling, hyperplane
  probes, secant segments, annealed smoothed ascent and region walking; "pattern": the search, then ascent over
  activation patterns from its best points and a linear program that realizes the best patterns, which also
  reports ``details["pattern_bound"]``, a lower bound on every slope-restricted upper bound such as LipSDP), for
  any number of outputs, its memory bounded by ``SearchConfig.memory_budget_bytes`` (``peak_bytes`` is the
  model's estimate). ``lower_batch`` does B networks in one compiled call.
- ``upper(params, mask, *, method="best")``: "product" of certified spectral norms, "eclipse_fast"
  (ECLipsE-Fast closed form), "lipsdp" (LipSDP-Neuron by a barrier method in JAX, ``solver="primal_dual"`` by a
  primal-dual interior-point method in JAX, or with cvxpy), "best" (the smallest affordable). ``upper_batch``
  does B networks in one compiled call.
- Registries: ``UPPER_METHODS`` (``register_upper``: a sound bound per ``Net``, which "best" then includes) and
  ``LOWER_METHODS`` (``register_lower``: a proposer of witness points, certified by ``lower``); sweep grids
  read both (``upper_method``, ``lower_method``).
- ``exact(params, mask)``: enumeration of the linear regions of a ReLU / leaky-ReLU / identity network with
  LPs (HiGHS), refusing networks whose region-count bound exceeds ``max_regions``.
- ``region_bound(params, mask)``: that region-count bound.
"""

from typing import Any

from lawrob import nets
from lawrob.lipschitz._exact import DEFAULT_MAX_REGIONS, EXACT_ACTIVATIONS, exact
from lawrob.lipschitz._lower import LOWER_METHODS, LowerMethod, lower, lower_batch, register_lower
from lawrob.lipschitz._lower_search import SearchConfig, peak_bytes
from lawrob.lipschitz._network import Bound, prepare, reduce
from lawrob.lipschitz._network import region_bound as _region_bound
from lawrob.lipschitz._network import Net
from lawrob.lipschitz._upper import (DEFAULT_SDP_MAX_DIM, UPPER_METHODS, UpperContext, UpperMethod, register_upper,
                                     uniform_method, upper, upper_batch, upper_methods)


def region_bound(params: Any, mask: Any = None, *, model: nets.MLP | None = None) -> int:
    """Upper bound on the number of linear regions (Serra et al. 2018) of the network without dead units.

    Parameters
    ----------
    params : Any
        The parameters.
    mask : Any, optional
        A 0/1 mask (None: dense).
    model : nets.MLP, optional
        The network.

    Returns
    -------
    int
        The bound.

    References
    ----------
    T. Serra, C. Tjandraatmadja and S. Ramalingam, *Bounding and counting linear regions of deep neural networks*,
    ICML 2018.
    """
    return _region_bound(reduce(prepare(params, mask, model)))


__all__ = [
    "Bound", "DEFAULT_MAX_REGIONS", "DEFAULT_SDP_MAX_DIM", "EXACT_ACTIVATIONS", "LOWER_METHODS", "LowerMethod", "Net",
    "SearchConfig", "UPPER_METHODS", "peak_bytes", "UpperContext", "UpperMethod", "exact", "lower", "lower_batch", "prepare",
    "reduce", "region_bound", "register_lower", "register_upper", "uniform_method", "upper", "upper_batch",
    "upper_methods",
]
