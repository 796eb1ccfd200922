"""lawrob._batching: map_chunked equals a Python loop (chunks, padding, shared values, devices), compiles once per
shape, and the chunk tables, stack/unstack/leading_size."""

import functools
import subprocess
import sys
import textwrap
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lawrob import _batching, info, train
from lawrob._batching import leading_size, map_chunked

SIZE = 7  # needs padding for chunk 3 (and for 4 devices)


def element(x, *shared):
    """A per-element function with a pytree in and out, an integer output and (optionally) shared values."""
    w, b = shared if shared else (jnp.eye(3), 0.0)
    h = jnp.tanh(x["u"] @ w + b) * x["s"]
    return {"h": h, "top": jnp.argmax(h), "total": jnp.sum(h) + x["s"]}


def inputs(size=SIZE):
    u = jax.random.normal(jax.random.key(0), (size, 3))
    return {"u": u, "s": jnp.arange(1.0, size + 1.0)}


def loop(args, *shared):
    """The reference: element by element in Python, stacked."""
    outs = [element(jax.tree.map(lambda a: a[i], args), *shared) for i in range(leading_size(args))]
    return jax.tree.map(lambda *leaves: np.stack(leaves), *outs)


@functools.partial(jax.jit, static_argnames=("chunk", "whole_chunks"))
def mapped(args, shared=(), *, chunk, whole_chunks=False):
    return map_chunked(element, args, chunk=chunk, shared=shared, whole_chunks=whole_chunks)


def assert_same(out, ref):
    assert jax.tree.structure(out) == jax.tree.structure(ref)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("whole_chunks", [False, True])
@pytest.mark.parametrize("chunk", [None, 1, 3, 50])
def test_equals_a_python_loop(chunk, whole_chunks):
    args = inputs()
    assert_same(mapped(args, chunk=chunk, whole_chunks=whole_chunks), loop(args))


@pytest.mark.parametrize("chunk", [None, 3])
def test_shared_values_reach_every_element(chunk):
    args = inputs()
    shared = (jax.random.normal(jax.random.key(1), (3, 3)), jnp.asarray(0.5))
    assert_same(mapped(args, shared, chunk=chunk), loop(args, *shared))
    # None is an empty pytree: allowed as a shared value
    out = jax.jit(lambda a: map_chunked(lambda x, nothing: x["s"] * 2, a, chunk=2, shared=(None,)))(args)
    np.testing.assert_array_equal(out, 2 * np.asarray(args["s"]))


def test_one_device_is_no_split():
    args = inputs()
    out = jax.jit(lambda a: map_chunked(element, a, chunk=3, devices=tuple(jax.devices()[:1])))(args)
    assert_same(out, loop(args))


def test_compiles_once_per_shape():
    chex.clear_trace_counter()
    traced = []

    @functools.partial(jax.jit, static_argnums=0)
    @chex.assert_max_traces(n=2)
    def run(chunk, args):
        traced.append(args["u"].shape)
        return map_chunked(element, args, chunk=chunk)

    jax.block_until_ready(run(3, inputs()))
    jax.block_until_ready(run(3, jax.tree.map(lambda a: a + 1, inputs())))  # same shapes, other values
    assert traced == [(SIZE, 3)]
    jax.block_until_ready(run(3, inputs(5)))  # a new shape traces again
    assert traced == [(SIZE, 3), (5, 3)]
    with pytest.raises(AssertionError, match="traced > 2 times"):
        run(3, inputs(4))


def test_bad_arguments_raise_naming_them():
    with pytest.raises(ValueError, match=r"^args must be a pytree whose leaves all carry one leading axis"):
        map_chunked(element, {"u": jnp.ones((3, 3)), "s": jnp.ones(4)}, chunk=2)
    with pytest.raises(ValueError, match=r"^args must be a pytree whose leaves all carry one leading axis"):
        map_chunked(element, {"u": jnp.ones((3, 3)), "s": jnp.asarray(1.0)}, chunk=2)
    with pytest.raises(ValueError, match=r"^args must be .*got sizes set\(\)"):
        map_chunked(element, (), chunk=2)
    with pytest.raises(ValueError, match=r"^chunk must be"):
        map_chunked(element, inputs(), chunk=0)
    with pytest.raises(ValueError, match=r"^params must be a pytree whose leaves all carry one leading run axis"):
        leading_size({"a": np.ones(2), "b": np.ones(3)}, "params", "leading run")
    assert leading_size({"a": np.ones((2, 5)), "b": [np.ones(2)]}) == 2
    with pytest.raises(ValueError, match=r"^trees must be a non-empty list"):
        _batching.stack([])
    with pytest.raises(ValueError, match=r"^tree must be a pytree whose leaves all carry one leading run axis"):
        _batching.unstack(None)


def test_stack_unstack_round_trip_and_public_names():
    trees = [{"w": jnp.full((2, 2), float(i)), "b": (jnp.asarray(i),)} for i in range(3)]
    stacked = _batching.stack(trees)
    assert leading_size(stacked) == 3
    for a, b in zip(_batching.unstack(stacked), trees):
        chex.assert_trees_all_equal(a, b)
    assert train.stack is _batching.stack and train.unstack is _batching.unstack
    assert {"stack", "unstack", "default_chunk", "DEFAULT_CHUNK"} <= set(train.__all__)


def test_chunk_tables_in_one_place():
    assert _batching.DEFAULT_CHUNKS == {"train": {"cpu": 4}, "masks": {"cpu": 2048},
                                        "lipsdp": {"cpu": 1, "gpu": 8, "tpu": 8}}
    assert train.DEFAULT_CHUNK is _batching.DEFAULT_CHUNKS["train"] and train.DEFAULT_CHUNK == {"cpu": 4}
    assert info.DEFAULT_CHUNK is _batching.DEFAULT_CHUNKS["masks"] and info.DEFAULT_CHUNK == {"cpu": 2048}
    assert train.default_chunk("cpu") == 4 and train.default_chunk("gpu") is None
    assert info.default_chunk("cpu") == 2048 and info.default_chunk("tpu") is None
    assert _batching.default_chunk({"cpu": 5}, "cpu") == 5 and _batching.default_chunk({}, "cpu") is None
    assert _batching.default_chunk({jax.default_backend(): 7}) == 7


def test_four_forced_cpu_devices_equal_one_device():
    """Split over 4 forced CPU devices (7 elements: padded to 8, 2 per device): the one-device results, and the
    elements really ran on 4 devices (jax.lax.axis_index of the mesh axis)."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        os.environ["XLA_FLAGS"] = ("--xla_force_host_platform_device_count=4"
                                   " --xla_cpu_collective_call_terminate_timeout_seconds=600")
        import jax, jax.numpy as jnp, numpy as np
        from lawrob import _batching, info
        from test_batching import SIZE, element, inputs, loop
        assert len(jax.devices()) == 4
        args = inputs()
        shared = (jax.random.normal(jax.random.key(1), (3, 3)), jnp.asarray(0.5))
        ref = loop(args, *shared)
        for devices in (tuple(jax.devices()), tuple(jax.devices()[:1])):
            for chunk in (None, 1, 3):
                for whole in (False, True):
                    run = jax.jit(lambda a, s: _batching.map_chunked(element, a, chunk=chunk, devices=devices, shared=s,
                                                                     whole_chunks=whole))
                    out = run(args, shared)
                    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref)):
                        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        where = jax.jit(lambda a: _batching.map_chunked(lambda x: jax.lax.axis_index(_batching.AXIS), a, chunk=1,
                                                        devices=tuple(jax.devices())))(args)
        assert np.asarray(where).tolist() == [0, 0, 1, 1, 2, 2, 3], where
        pipeline = lambda key, d: {{"m": (jax.random.uniform(key, (6,)) < d[0]).astype(jnp.uint8)}}
        sample = lambda key: jax.random.uniform(key, (1,))
        a = info.sample_masks(pipeline, sample, key=jax.random.key(2), datasets=SIZE, inits=2, chunk_size=3)
        b = info.sample_masks(pipeline, sample, key=jax.random.key(2), datasets=SIZE, inits=2, chunk_size=3,
                              devices=jax.devices()[:1])
        assert a.shape == (2, SIZE, 6)
        np.testing.assert_array_equal(a, b)
        print("OK")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


def test_lower_batch_shared_points_equal_the_same_points_per_network():
    """lower_batch passes shared [n, d] points to every network unmapped (before map_chunked, its lax.map also
    mapped them and failed unless n equalled the number of chunks)."""
    from lawrob import lipschitz, nets

    m = nets.MLP((3, 6, 1))
    params = train.stack([m.init(k) for k in jax.random.split(jax.random.key(0), 3)])
    points = jax.random.normal(jax.random.key(1), (4, 3))
    budget = dict(samples=8, probes=8, starts=2, steps=4, rounds=1, walkers=2, local_probes=4)
    shared = lipschitz.lower_batch(params, key=jax.random.key(2), model=m, points=points, chunk=2, **budget)
    each = lipschitz.lower_batch(params, key=jax.random.key(2), model=m, points=jnp.broadcast_to(points, (3, 4, 3)),
                                 chunk=2, **budget)
    assert [b.value for b in shared] == pytest.approx([b.value for b in each], rel=1e-12)
    assert all(b.value > 0 for b in shared)
