"""Learning-rate schedules by name and parameters, for grids (``schedule``, ``schedule_warmup``, ``schedule_end``).

A ``Schedule`` is the factor count -> s(count) by which a run's learning rate is multiplied at update ``count``
(``train.TrainConfig.schedule``): a linear warm-up from 0 to 1 over ``warmup`` updates, then a decay from 1 to
``end`` over the remaining ``steps - warmup`` updates, built from optax's schedules (optax docs,
"Optimizer Schedules": ``linear_schedule``, ``cosine_decay_schedule``, ``exponential_decay``, ``join_schedules``).
It is a frozen dataclass, hashable and equal by value, so runs with the same schedule compile once.
Any other optax schedule (or callable) can be passed to ``train.fit`` directly.
"""

from __future__ import annotations

import dataclasses

import optax

from lawrob import _checks

__all__ = ["SCHEDULES", "Schedule"]

# name -> what the decay after the warm-up does
SCHEDULES = {
    "constant": "stays at 1 (end is not used)",
    "cosine": "half a cosine from 1 to end (optax.cosine_decay_schedule with alpha = end)",
    "linear": "a straight line from 1 to end (optax.linear_schedule)",
    "exponential": "geometric from 1 to end > 0 (optax.exponential_decay with decay_rate = end)",
}


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The learning-rate factor of a named schedule.

    Parameters
    ----------
    name : str
        one of ``SCHEDULES``.
    steps : int
        the number of optimizer updates of the run (>= 1).
    warmup : int
        updates of linear warm-up from 0 to 1 (0 <= warmup < steps).
    end : float
        the factor reached at the last update, in [0, 1] (> 0 for "exponential").

    Raises
    ------
    ValueError, TypeError
        a bad value, naming the argument and what is allowed.
    """

    name: str
    steps: int
    warmup: int = 0
    end: float = 0.0

    def __post_init__(self):
        _checks.one_of("schedule", self.name, SCHEDULES)
        steps = _checks.positive_int("steps", self.steps)
        warmup = _checks.positive_int("warmup", self.warmup, 0)
        if warmup >= steps:
            raise ValueError(f"warmup must be < steps = {steps} (updates of warm-up), got {warmup}")
        end = _checks.real_in("end", self.end, 0.0, 1.0)
        if self.name == "exponential" and end == 0:
            raise ValueError("end must be > 0 for schedule 'exponential' (a geometric decay never reaches 0)")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "warmup", warmup)
        object.__setattr__(self, "end", end)

    def optax(self) -> optax.Schedule:
        """The factor as an optax schedule."""
        decay_steps = self.steps - self.warmup
        if self.name == "constant":
            decay = optax.constant_schedule(1.0)
        elif self.name == "cosine":
            decay = optax.cosine_decay_schedule(1.0, decay_steps, alpha=self.end)
        elif self.name == "linear":
            decay = optax.linear_schedule(1.0, self.end, decay_steps)
        else:
            decay = optax.exponential_decay(1.0, decay_steps, self.end)
        if not self.warmup:
            return decay
        return optax.join_schedules([optax.linear_schedule(0.0, 1.0, self.warmup), decay], [self.warmup])

    def __call__(self, count):
        return self.optax()(count)
