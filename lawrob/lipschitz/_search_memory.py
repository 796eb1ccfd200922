"""The memory model of the lower-bound search: bytes per candidate of each phase, and the chunks that fit a budget.

The search (``_search_net``) makes and scores candidates ``chunk`` at a time, so its temporary memory is about

    peak ~ fixed + max over phases of chunk_phase x bytes_phase,

where ``fixed`` holds what lives through the whole search (the pool of best points, the chosen segments, the
network's outputs at the given points, a few copies of the weights) and ``bytes_phase`` what one candidate of a
phase holds while it is made and scored. The byte counts below are float64 element counts of the arrays each
step builds, times ``SAFETY`` for XLA's temporaries; ``tests/test_lipschitz_multi.py`` checks them against the
compiled search's own memory analysis (``temp_size_in_bytes``), from a 784-256-10 MLP down to small nets.
"""

from __future__ import annotations

import dataclasses

F64 = 8  # bytes
SAFETY = 2  # XLA's copies and fusion temporaries (the compiled search measured 3-10x below the model: see the test)
_SHARE = 0.75  # of the budget left over after the fixed part that one phase's chunks may take


@dataclasses.dataclass(frozen=True)
class Shape:
    """What the memory depends on: input dimension d, hidden widths, outputs C, number of given points n."""

    d: int
    widths: tuple[int, ...]
    out: int
    points: int = 0

    @property
    def hidden(self) -> int:
        return sum(self.widths)

    @property
    def tangents(self) -> int:
        """Passes of one Jacobian: C reverse passes when C <= d, else d forward passes."""
        return min(self.out, self.d)

    @property
    def weights(self) -> int:
        sizes = (self.d, *self.widths, self.out)
        return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


@dataclasses.dataclass(frozen=True)
class Chunks:
    """Candidates per chunk of each phase: Jacobian norms of given or random points (score), first-layer probes
    (probe), segment points (segment), ascent starts (climb), walkers whose local planes are held at once
    (walker) and local probes of that group of walkers at once (local)."""

    score: int
    probe: int
    segment: int
    climb: int
    walker: int
    local: int


def evaluation(shape: Shape) -> int:
    """Bytes of one Jacobian norm: the forward pass (pre-activations and masks), the k = min(C, d) tangents
    through every layer, the [k, d] Jacobian and its [k, k] Gram matrix."""
    k, layers = shape.tangents, shape.d + 2 * shape.hidden + shape.out
    return F64 * SAFETY * (2 * layers + 2 * k * layers + k * k + 2 * shape.d)


def probe(shape: Shape) -> int:
    """Bytes of making one hyperplane probe: up to s = min(d, 8) rows, their orthonormal basis and the
    Gram-Schmidt loop's copies, the random draws."""
    s = min(shape.d, 8)
    return F64 * SAFETY * ((2 * s + 2) * s * shape.d + 8 * shape.d + 2 * s + 4)


def climb(shape: Shape, steps: int) -> int:
    """Bytes of one ascent start: reverse mode over the smoothed Jacobian (its residuals, about four Jacobian
    evaluations) and the scan's carry; ``steps`` only sets the (tiny) schedule."""
    return 4 * evaluation(shape) + F64 * (4 * shape.d + steps)


def walker(shape: Shape) -> int:
    """Bytes of one walker's local hyperplanes: forward mode with d tangents through the hidden layers, the
    [H, d] gradients and their normalised copy, offsets and weights."""
    h, d = max(shape.hidden, 1), shape.d
    return F64 * SAFETY * (d * (d + 2 * h) + 3 * h * d + 6 * h)


def fixed(shape: Shape, keep: int, segments: int, pairs: int) -> int:
    """Bytes alive through the search: the pool (keep points, twice while merging), the first layer's planes
    [H_1, d], the outputs at the given points [n, C] with pairs' indices and slopes, the chosen segments."""
    h1 = shape.widths[0] if shape.widths else 0
    return F64 * SAFETY * (4 * keep * shape.d + 2 * h1 * shape.d + shape.points * shape.out + 3 * pairs
                           + 2 * segments * shape.d + shape.weights)


def chunks(shape: Shape, cfg, keep: int) -> Chunks:
    """The chunks of every phase for ``cfg.memory_budget_bytes``; a ValueError naming memory_budget_bytes when
    even chunks of one candidate do not fit."""
    pairs = 8 * cfg.segments
    base = fixed(shape, keep, cfg.segments, pairs)
    room = cfg.memory_budget_bytes - base
    one = {"score": evaluation(shape), "probe": probe(shape) + evaluation(shape),
           "segment": evaluation(shape) + F64 * shape.d, "climb": climb(shape, cfg.steps),
           "walker": walker(shape) + F64 * keep * shape.d * 2}
    need = max(max(one.values()), one["walker"] + one["probe"])  # one walker's planes and one local probe
    if room < need / _SHARE:
        raise ValueError(f"memory_budget_bytes = {cfg.memory_budget_bytes} is too small for this network "
                         f"(d = {shape.d}, hidden widths {shape.widths}, {shape.out} outputs): the search needs at "
                         f"least {int(base + need / _SHARE)} bytes")
    share = room * _SHARE

    def fit(per, at_most):
        return int(max(1, min(at_most, share // per)))

    walkers = int(max(1, min(max(cfg.walkers, 1), share // (2 * one["walker"]))))  # half for the group's planes
    local = int(max(1, min(walkers * max(cfg.local_probes, 1), (share - walkers * one["walker"]) // one["probe"])))
    return Chunks(score=fit(one["score"], max(cfg.samples, cfg.probes, shape.points, 1)),
                  probe=fit(one["probe"], max(cfg.probes, 1)),
                  segment=fit(one["segment"], max(cfg.segments * cfg.segment_points, 1)),
                  climb=fit(one["climb"], max(cfg.starts, 1)), walker=walkers, local=local)


def peak_bytes(shape: Shape, cfg, keep: int) -> int:
    """The model's estimate of the search's peak temporary bytes with the chunks ``chunks`` chooses."""
    c = chunks(shape, cfg, keep)
    base = fixed(shape, keep, cfg.segments, 8 * cfg.segments)
    phases = [c.score * evaluation(shape), c.probe * (probe(shape) + evaluation(shape)),
              c.segment * (evaluation(shape) + F64 * shape.d), c.climb * climb(shape, cfg.steps),
              c.walker * (walker(shape) + F64 * keep * shape.d * 2) + c.local * (probe(shape) + evaluation(shape))]
    return int(base + max(phases))
