"""Fixtures shared by several test files."""

import logging

import chex
import jax
import pytest


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compilation caches after each test module. A pytest-xdist worker runs hundreds of modules and
    compiles thousands of programs; two full runs had a worker segfault inside XLA's compiler late in the run
    (in two different, individually passing tests), consistent with the process running out of memory mappings
    (vm.max_map_count = 65530 here) as compiled programs accumulate: each holds about 3 mappings, all released
    by ``jax.clear_caches()`` (measured on 300 small jitted functions)."""
    yield
    jax.clear_caches()


@pytest.fixture(autouse=True)
def _restore_lawrob_logger():
    """Leave the ``lawrob`` logger as each test found it: ``cli.main`` run in-process configures it (level INFO,
    a stderr handler), which made later tests' log assertions depend on the order the tests ran in."""
    logger = logging.getLogger("lawrob")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers
    logger.propagate = propagate


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
