"""The mask-information check E5 (lawrob/checks/e5_mask_information.py): the toy's pipelines, and its smoke-scale
run."""

import json
import math

import jax
import numpy as np
import pytest
from scipy import stats

from lawrob import nets

# prune.synflow computes in a float64 scope; traced in the float32 pipeline JAX warns and uses float32
pytestmark = pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64")


@pytest.fixture(scope="module")
def e5():
    from lawrob.checks import e5_mask_information

    return e5_mask_information


def test_toy_parameter_counts(e5):
    assert e5.SETUPS["mse"][0].num_params == 3 * 4 + 4 + 4 * 1 + 1 == 21
    assert e5.SETUPS["cross_entropy"][0].num_params == 3 * 3 + 3 + 3 * 2 + 2 == 20
    assert nets.MLP((3, 3, 1)).num_params == 16  # no width-3 classifier on 3 inputs has the paper's 21


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_scalar_forward_equals_mlp_apply(e5, loss):
    model = e5.SETUPS[loss][0]
    params = model.init(jax.random.key(1))
    x = e5.sample_data(loss)(jax.random.key(2)).x
    np.testing.assert_allclose(e5.forward(params, x), model.apply(params, x), rtol=1e-6, atol=1e-6)


def test_pipeline_masks_are_nested_exact_count_and_deterministic(e5):
    pipeline, sample = e5.make_pipeline("mse", 200), e5.sample_data("mse")
    ds = sample(jax.random.key(5))
    masks = np.asarray(jax.jit(pipeline)(jax.random.key(0), ds))
    p = 21
    assert masks.shape == (len(e5.METHODS), p + 1, p)
    np.testing.assert_array_equal(masks.sum(axis=2), np.broadcast_to(p - np.arange(p + 1), (len(e5.METHODS), p + 1)))
    assert np.all(masks[:, 1:] <= masks[:, :-1])  # nested: a parameter once pruned stays pruned
    np.testing.assert_array_equal(masks, np.asarray(jax.jit(pipeline)(jax.random.key(0), ds)))
    # IMP's first pruning and MagAfter's are the same: both remove the smallest weight of the dense training
    np.testing.assert_array_equal(masks[0, 1], masks[1, 1])
    other = np.asarray(jax.jit(pipeline)(jax.random.key(0), sample(jax.random.key(6))))
    np.testing.assert_array_equal(masks[4], other[4])  # SynFlow never reads the data


def test_nested_masks_remove_the_lowest_scores_with_random_tie_breaks(e5):
    scores = jax.numpy.array([0.3, 0.0, 0.0, 0.9, 0.1])
    a = np.asarray(e5._nested_masks(e5._ranks(scores, jax.numpy.array([0, 1, 2, 3, 4]))))
    b = np.asarray(e5._nested_masks(e5._ranks(scores, jax.numpy.array([0, 2, 1, 3, 4]))))
    np.testing.assert_array_equal(a[1], [1, 0, 1, 1, 1])
    np.testing.assert_array_equal(b[1], [1, 1, 0, 1, 1])
    np.testing.assert_array_equal(a[3], [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(a[5], 0)


def test_smoke_scale_runs_and_post_training_carries_more_information(e5, tmp_path):
    verdict = e5.run("smoke", tmp_path)
    saved = json.loads((tmp_path / "verdict.json").read_text())
    assert (tmp_path / "e5.png").stat().st_size > 5000 and (tmp_path / "e5.pdf").stat().st_size > 0
    assert saved["claim"] and saved["criterion"] and saved["passed"] == all(saved["parts"].values())
    assert saved["parts"]["sanity_synflow_zero_bits"]
    for loss, summary in verdict["measured"].items():
        curves = saved["curves"][loss]
        n, p, inits = curves["datasets"], curves["p"], curves["inits"]
        assert inits == e5.SCALES["smoke"]["inits"] >= 2
        # the per-initialization gaps at matched sparsity, recomputed from the raw per-init estimates
        per = {m: np.array(curves["per_init"][m]) for m in e5.METHODS}
        assert all(v.shape == (inits, p + 1) for v in per.values())
        gap = (np.minimum(per["imp"], per["mag_after"]) - np.maximum(per["snip"], per["grasp"]))[:, 1:p]
        g = gap.mean(axis=1)
        np.testing.assert_allclose(summary["per_init_mean_gap_bits"], g)
        assert [summary["min"], summary["median"], summary["max"]] == pytest.approx([g.min(), np.median(g), g.max()])
        low, high = stats.t.interval(0.95, inits - 1, loc=g.mean(), scale=stats.sem(g))
        assert summary["ci95"] == pytest.approx([low, high], rel=1e-9)
        assert summary["inits_positive_at_every_k"] == int(np.sum(np.all(gap > 0, axis=1)))
        # the claim's direction holds at smoke scale: the interval lies above 0, the mean gap is positive at every k
        assert summary["passed"] == (low > 0 and bool(np.all(gap.mean(axis=0) > 0))) and summary["passed"]
        assert summary["synflow_max_bits"] == 0.0
        for method in e5.METHODS:
            c = curves["curves"][method]
            np.testing.assert_allclose(c["plugin"], per[method].mean(axis=0))  # the curve is the mean over inits
            assert np.all(per[method][:, 0] == 0) and np.all(per[method][:, -1] == 0)  # the dense and empty masks
            assert per[method].max() <= math.log2(n) + 1e-9
            assert all(lo <= v <= hi for lo, v, hi in zip(c["plugin_low"], c["plugin"], c["plugin_high"]))
            assert np.all(per[method] <= np.array(curves["ceiling"]) + 1e-9)


def test_gap_judge_fails_on_the_wrong_sign_and_on_a_sparsity_where_the_order_flips(e5):
    rng = np.random.default_rng(0)
    positive = 1.5 + 0.3 * rng.standard_normal((8, 20))
    assert e5.judge_gaps(positive)["passed"]
    assert not e5.judge_gaps(-positive)["passed"]
    flipped = positive.copy()
    flipped[:, 7] = -0.5  # the mean over initializations is below 0 at one matched sparsity
    verdict = e5.judge_gaps(flipped)
    assert verdict["ci95"][0] > 0 and verdict["min_mean_gap_over_k"] < 0 and not verdict["passed"]
    spread = np.concatenate([positive[:4], -positive[4:] + 0.5])  # half the initializations reverse the order
    assert not e5.judge_gaps(spread)["passed"]
    with pytest.raises(ValueError, match="gap must be"):
        e5.judge_gaps(positive[:1])
