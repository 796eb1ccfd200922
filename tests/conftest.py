"""Fixtures shared by several test files."""

import chex
import jax
import pytest


@pytest.fixture
def batched_training_traces(monkeypatch):
    """A list that gets one entry each time ``train.fit_batched``'s compiled training is traced (so compiled);
    chex fails the test outright on a second trace of the same shapes and settings."""
    from lawrob import train

    chex.clear_trace_counter()
    traced = []

    def counted(*args):
        traced.append(1)
        return train._train_many(*args)

    monkeypatch.setattr(train, "_train_batched", jax.jit(chex.assert_max_traces(counted, n=1), static_argnums=(0, 1, 2)))
    return traced
