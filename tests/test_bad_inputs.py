"""Bad inputs to every public function of data, nets, train, prune, lipschitz, info and bounds: 150 cases.

Each case is (a call, the exception type it must raise, a regex its message must match); every regex names the
argument at fault. The cases cover wrong types, NaN/inf, empty arrays, mismatched shapes and batch sizes,
out-of-range values, unknown names and bad PRNG keys. The inputs that used to give silent bad results (an [n, 1]
noise correlation broadcast to [n, n], overflowed weights, diverged training, reused masks of a batch) also have
value tests below, checked against independent plain-Python/NumPy computations. Everything is tiny: no call in
the table compiles a training or a search.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lawrob import bounds, data, info, lipschitz, nets, prune, train
from lawrob.lipschitz._psd import spectral_norm_upper

# the overflowing inputs warn in NumPy on their way to the error under test
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")

K = jax.random.key(0)
M = nets.MLP((2, 3, 1))
P = M.init(K)
MK = nets.dense_mask(P)
DS = data.make_dataset(K, data.Gaussian(2), 8)
G2 = data.Gaussian(2)
MISSING = MK[:1]  # a mask with a layer missing
TRANSPOSED = ({"w": jnp.ones((3, 2)), "b": jnp.ones(3)}, MK[1])  # a mask with another leaf shape
NANP = ({"w": P[0]["w"].at[0, 0].set(jnp.nan), "b": P[0]["b"]}, P[1])
HUGE = jax.tree.map(lambda a: np.asarray(a, np.float64) * 1e160, P)  # ||W||_F^2 overflows float64
PB, MB, DB = train.stack([P, P]), train.stack([MK, MK]), train.stack([DS, DS])
MB3 = train.stack([MK] * 3)
KEYS = jax.random.split(K, 2)
PTS = np.ones((2, 2))
X = jnp.ones((1, 2))


def fit(params=P, mask=MK, data=DS, **kw):
    return train.fit(params, mask, data, **{"model": M, "steps": 2, **kw})


def fit_batched(params=PB, mask=MB, data=DB, **kw):
    return train.fit_batched(params, mask, data, **{"model": M, "steps": 2, "keys": KEYS, **kw})


def pipeline(key, ds):
    return MK


def case(name, call, error, regex):
    return pytest.param(call, error, regex, id=name)


DATA = [
    case("Gaussian-d-bool", lambda: data.Gaussian(True), TypeError, r"^d must be an integer"),
    case("Gaussian-scale-nan", lambda: data.Gaussian(2, scale=math.nan), ValueError, r"^scale must lie in"),
    case("Gaussian-mean-inf", lambda: data.Gaussian(2, mean=[0.0, math.inf]), ValueError, r"^mean must be finite"),
    case("Gaussian.sample-key-int", lambda: G2.sample(0, 3),
         TypeError, r"^key must be a JAX PRNG key.*jax\.random\.key"),
    case("Sphere-d-bool", lambda: data.Sphere(True), TypeError, r"^d must be an integer"),
    case("Sphere.sample-key-None", lambda: data.Sphere(3).sample(None, 2), TypeError, r"^key must be a JAX PRNG key"),
    case("EmbeddedSphere-dim-bool", lambda: data.EmbeddedSphere(4, True), TypeError, r"^intrinsic_dim must be"),
    case("EmbeddedSphere-seed-negative", lambda: data.EmbeddedSphere(3, 1, seed=-1), ValueError, r"^seed must be"),
    case("EmbeddedSphere-seed-float", lambda: data.EmbeddedSphere(3, 1, seed=1.5), TypeError, r"^seed must be"),
    case("EmbeddedSphere.sample-key-float", lambda: data.EmbeddedSphere(3, 1).sample(jnp.zeros(2), 2), TypeError,
         r"^key must be a JAX PRNG key.*float32"),
    case("BooleanCube-d-bool", lambda: data.BooleanCube(True), TypeError, r"^d must be an integer"),
    case("Mixture-None", lambda: data.Mixture(None), TypeError, r"^components must be a sequence"),
    case("Mixture-not-a-measure", lambda: data.Mixture(("gaussian",)),
         TypeError, r"^components\[0\] must be a measure"),
    case("Mixture-weights-nan", lambda: data.Mixture((G2,), weights=(math.nan,)),
         ValueError, r"^weights must be finite"),
    case("Mixture.sample-key-int", lambda: data.Mixture((G2,)).sample(0, 2), TypeError, r"^key must be"),
    case("make_dataset-key-int", lambda: data.make_dataset(0, G2, 4), TypeError, r"^key must be a JAX PRNG key"),
    case("make_dataset-measure-str", lambda: data.make_dataset(K, "gaussian", 4),
         TypeError, r"^measure must be a measure"),
    case("make_dataset-measure-None", lambda: data.make_dataset(K, None, 4), TypeError, r"^measure must be a measure"),
    case("make_dataset-n-bool", lambda: data.make_dataset(K, G2, True), TypeError, r"^n must be an integer"),
    case("make_dataset-target-unknown", lambda: data.make_dataset(K, G2, 4, target="cubic"), ValueError,
         r"^target must be one of \['linear', 'teacher', 'zero'\]"),
    case("make_dataset-amplitude-zero", lambda: data.make_dataset(K, G2, 4, amplitude=0.0), ValueError,
         r"^amplitude must lie in \(0\.0, 1\.0\]"),
    case("make_dataset-teacher_hidden-zero", lambda: data.make_dataset(K, G2, 4, "teacher", teacher_hidden=(0,)),
         ValueError, r"^teacher_hidden\[i\] must be an integer >= 1"),
    case("make_dataset-target-shape", lambda: data.make_dataset(K, G2, 4, target=lambda x: x), ValueError,
         r"^target callable must return"),
    case("from_arrays-x-None", lambda: data.from_arrays(None, [0.0]), TypeError, r"^x must be a numeric array"),
    case("from_arrays-x-empty", lambda: data.from_arrays(np.zeros((0, 2)), np.zeros(0)), ValueError,
         r"^x must not be empty"),
    case("from_arrays-y-nan", lambda: data.from_arrays(np.zeros((2, 2)), [0.0, math.nan]), ValueError,
         r"^y must be finite"),
    case("teacher-key-int", lambda: data.teacher(0, 2), TypeError, r"^key must be a JAX PRNG key"),
    case("teacher-hidden-zero", lambda: data.teacher(K, 2, hidden=(3, 0)), ValueError, r"^hidden\[i\] must be"),
    case("load_fashion_mnist-split", lambda: data.load_fashion_mnist("/nonexistent", split="val"), ValueError,
         r"^split must be one of \['test', 'train'\]"),
]

NETS = [
    case("MLP-bias-str", lambda: nets.MLP((2, 3, 1), bias="no"), TypeError, r"^bias must be True or False, got 'no'"),
    case("MLP-bias-int", lambda: nets.MLP((2, 3, 1), bias=1), TypeError, r"^bias must be True or False"),
    case("MLP-sizes-int", lambda: nets.MLP(5), TypeError, r"^sizes must be a sequence"),
    case("MLP.init-key-int", lambda: M.init(0), TypeError, r"^key must be a JAX PRNG key.*got 0"),
    case("MLP.init-dtype-float16", lambda: M.init(K, dtype=jnp.float16),
         TypeError, r"^dtype must be float32 or float64"),
    case("MLP.apply-params-None", lambda: M.apply(None, X), TypeError, r"^params must be a params-like pytree"),
    case("MLP.apply-x-width", lambda: M.apply(P, jnp.ones((1, 5))), ValueError, r"^x must have shape \[\.\.\., 2\]"),
    case("MLP.apply-x-str", lambda: M.apply(P, "abc"), TypeError, r"^x must be a numeric array"),
    case("MLP.apply-mask-missing-layer", lambda: M.apply(P, X, MISSING),
         ValueError, r"^mask must have the pytree structure"),
    case("apply_mask-leaf-shape", lambda: nets.apply_mask(P, TRANSPOSED),
         ValueError, r"^mask\[0\]\['w'\] has shape \(3, 2\)"),
    case("dense_mask-None", lambda: nets.dense_mask(None), TypeError, r"^params must be a params-like pytree"),
    case("weight_leaves-str", lambda: nets.weight_leaves("abc"), TypeError, r"^tree must be a params-like pytree"),
    case("count_active-missing-layer", lambda: nets.count_active(MISSING, model=M), ValueError,
         r"^mask must have the pytree structure"),
    case("count_active-leaf-shapes", lambda: nets.count_active(TRANSPOSED),
         ValueError, r"^mask\[0\]\['b'\] must have shape \[2\]"),
    case("count_active-None", lambda: nets.count_active(None), TypeError, r"^mask must be a params-like pytree"),
    case("count_active-not-binary", lambda: nets.count_active(jax.tree.map(lambda m: 0.5 * m, MK)), ValueError,
         r"^mask\[0\]\['b'\] must hold only 0 and 1"),
    case("check_params-nan", lambda: nets.check_params(M, NANP), ValueError, r"^params\[0\]\['w'\] must be finite"),
    case("parametrization_constants-model-None", lambda: nets.parametrization_constants(None), TypeError,
         r"^model must be a lawrob\.nets\.MLP"),
    case("parametrization_constants-params-nan", lambda: nets.parametrization_constants(M, NANP), ValueError,
         r"^params\[0\]\['w'\] must be finite"),
    case("parametrization_constants-mask-missing", lambda: nets.parametrization_constants(M, P, MISSING), ValueError,
         r"^mask must have the pytree structure"),
]

TRAIN = [
    case("per_example_loss-unknown", lambda: train.per_example_loss("bogus", jnp.ones((3, 1)), jnp.ones(3)), ValueError,
         r"^loss must be one of \['cross_entropy', 'logistic', 'mse'\], got 'bogus'"),
    case("noise_correlation-f-two-columns", lambda: train.noise_correlation(jnp.ones((8, 2)), jnp.ones(8), 0.0),
         ValueError, r"^f must have shape \[n\] or \[n, 1\]"),
    case("noise_correlation-z-length", lambda: train.noise_correlation(jnp.arange(8.0), jnp.arange(7.0), 0.0),
         ValueError, r"^z must have shape \[n\]"),
    case("noise_correlation-mean_f-vector", lambda: train.noise_correlation(jnp.ones(8), jnp.ones(8), jnp.ones(2)),
         ValueError, r"^mean_f must be a scalar"),
    case("fit-key-int", lambda: fit(key=0, batch_size=2), TypeError, r"^key must be a JAX PRNG key"),
    case("fit-mask-missing-layer", lambda: fit(mask=MISSING), ValueError, r"^mask must have the pytree structure"),
    case("fit-mask-leaf-shape", lambda: fit(mask=TRANSPOSED), ValueError, r"^mask\[0\]\['w'\] has shape"),
    case("fit-params-None", lambda: fit(params=None), TypeError, r"^params must be a sequence of 2 layer dicts"),
    case("fit-params-nan", lambda: fit(params=NANP), ValueError, r"^params\[0\]\['w'\] must be finite"),
    case("fit-params-float16", lambda: fit(params=jax.tree.map(lambda a: a.astype(jnp.float16), P)), TypeError,
         r"^params\[0\]\['b'\] must be float32 or float64.*float16"),
    case("fit-learning_rate-nan", lambda: fit(learning_rate=math.nan),
         ValueError, r"^learning_rate must lie in \(0\.0, inf\)"),
    case("fit-learning_rate-str", lambda: fit(learning_rate="big"), TypeError, r"^learning_rate must be a real"),
    case("fit-model-None", lambda: fit(model=None), TypeError, r"^model must be a lawrob\.nets\.MLP"),
    case("fit-data-tuple", lambda: fit(data=(DS.x, DS.y)), TypeError, r"^data must be a lawrob\.data\.Dataset"),
    case("fit-reference_x-width", lambda: fit(reference_x=jnp.ones((3, 5))),
         ValueError, r"^reference_x must have shape \[m, 2\]"),
    case("fit-reference_x-nan", lambda: fit(reference_x=jnp.full((3, 2), jnp.nan)),
         ValueError, r"^reference_x must be finite"),
    case("fit_batched-keys-one-key", lambda: fit_batched(keys=K), TypeError, r"^keys must be a JAX PRNG key \(a batch"),
    case("fit_batched-keys-ints", lambda: fit_batched(keys=jnp.array([0, 1])),
         TypeError, r"^keys must be a JAX PRNG key"),
    case("fit_batched-mask-batch", lambda: fit_batched(mask=MB3),
         ValueError, r"^mask must have a leading run axis of size 2"),
    case("fit_batched-params-one-run-nan", lambda: fit_batched(params=train.stack([P, NANP])), ValueError,
         r"^params\[0\]\['w'\] must be finite"),
    case("fit_batched-params-float16", lambda: fit_batched(params=jax.tree.map(lambda a: a.astype(jnp.float16), PB)),
         TypeError, r"^params.* must be float32 or float64"),
    case("fit_batched-learning_rate-negative", lambda: fit_batched(learning_rate=jnp.array([1e-3, -1.0])), ValueError,
         r"^learning_rate must be > 0 for every run"),
    case("fit_batched-learning_rate-batch", lambda: fit_batched(learning_rate=jnp.ones(3)), ValueError,
         r"^learning_rate must be a scalar or have shape \[2\]"),
    case("stack-empty", lambda: train.stack([]), ValueError, r"^trees must be a non-empty list"),
    case("stack-structures-differ", lambda: train.stack([P, MISSING]), ValueError, r"^trees\[1\] must have the pytree"),
    case("unstack-None", lambda: train.unstack(None), ValueError, r"^tree must be a pytree whose leaves"),
]

PRUNE = [
    case("random-key-int", lambda: prune.random(P, 0), TypeError, r"^key must be a JAX PRNG key"),
    case("random-params-None", lambda: prune.random(None, K), TypeError, r"^params must be a params-like pytree"),
    case("magnitude-mask-missing", lambda: prune.magnitude(P, MISSING),
         ValueError, r"^mask must have the pytree structure"),
    case("snip-data-None", lambda: prune.snip(P, None, model=M), TypeError, r"^data must be a lawrob\.data\.Dataset"),
    case("grasp-temperature-zero", lambda: prune.grasp(P, DS, model=M, temperature=0.0), ValueError,
         r"^temperature must lie in \(0\.0, inf\)"),
    case("synflow-params-None", lambda: prune.synflow(None), TypeError, r"^params must be a params-like pytree"),
    case("invert-str", lambda: prune.invert("abc"), TypeError, r"^scores must be a params-like pytree"),
    case("kept_count-density-negative", lambda: prune.kept_count(-0.5, 10),
         ValueError, r"^density must lie in \(0\.0, 1\.0\]"),
    case("layer_collapse-None", lambda: prune.layer_collapse(None), TypeError, r"^mask must be a params-like pytree"),
    case("mask_from_scores-key-int", lambda: prune.mask_from_scores(P, 0.5, "global", 0),
         TypeError, r"^key must be a JAX PRNG"),
    case("mask_from_scores-scope", lambda: prune.mask_from_scores(P, 0.5, "local", K), ValueError,
         r"^scope must be one of \['global', 'layer'\]"),
    case("mask_from_scores-scores-nan", lambda: prune.mask_from_scores(NANP, 0.5, "global", K), ValueError,
         r"^scores must not be NaN"),
    case("mask_from_scores-mask-missing", lambda: prune.mask_from_scores(P, 0.5, "global", K, mask=MISSING), ValueError,
         r"^mask must have the pytree structure"),
    case("schedule-iterations-zero", lambda: prune.schedule(0.5, 0),
         ValueError, r"^iterations must be an integer >= 1"),
    case("prune-key-int", lambda: prune.prune("random", P, None, 0.5, 0, model=M),
         TypeError, r"^key must be a JAX PRNG"),
    case("prune-method-unknown", lambda: prune.prune("optimal", P, None, 0.5, K, model=M), ValueError,
         r"^method must be one of \['grasp', 'magnitude', 'random', 'snip', 'synflow'\]"),
    case("prune-mask-missing", lambda: prune.prune("random", P, None, 0.5, K, model=M, mask=MISSING), ValueError,
         r"^mask must have the pytree structure"),
    case("prune-params-nan", lambda: prune.prune("magnitude", NANP, None, 0.5, K, model=M), ValueError,
         r"^params\[0\]\['w'\] must be finite"),
    case("prune-option-unknown", lambda: prune.prune("random", P, None, 0.5, K, model=M, temperature=2.0), TypeError,
         r"^unexpected option\(s\) \['temperature'\] for method='random'"),
    case("prune-snip-data-None", lambda: prune.prune("snip", P, None, 0.5, K, model=M),
         TypeError, r"^data \(needed by"),
    case("imp-key-int", lambda: prune.imp(P, DS, model=M, rounds=1, steps=2, key=0),
         TypeError, r"^key must be a JAX PRNG"),
    case("imp-params-None", lambda: prune.imp(None, DS, model=M, rounds=1, steps=2, key=K), TypeError,
         r"^params must be a sequence"),
    case("imp-rate-one", lambda: prune.imp(P, DS, model=M, rounds=1, steps=2, key=K, rate=1.0), ValueError,
         r"^rate must lie in \(0\.0, 1\.0\)"),
    case("imp-batched-key-int", lambda: prune.imp(PB, DB, model=M, rounds=1, steps=2, key=0, batched=True), TypeError,
         r"^key must be a JAX PRNG key \(a batch of keys"),
    case("mag_after-batched-key-one", lambda: prune.mag_after(PB, DB, 0.5, model=M, steps=2, key=K, batched=True),
         TypeError, r"^key must be a JAX PRNG key \(a batch of keys"),
    case("shuffle_within_layer-key-int", lambda: prune.shuffle_within_layer(MK, 0),
         TypeError, r"^key must be a JAX PRNG"),
    case("reinit-key-int", lambda: prune.reinit(MK, 0, model=M), TypeError, r"^key must be a JAX PRNG key"),
    case("reinit-mask-missing", lambda: prune.reinit(MISSING, K, model=M), ValueError, r"^mask must have the pytree"),
]

LIPSCHITZ = [
    case("upper-overflow", lambda: lipschitz.upper(HUGE, method="product"),
         ValueError, r"^params are too large for float64"),
    case("upper-params-None", lambda: lipschitz.upper(None), TypeError, r"^params must be a non-empty sequence"),
    case("upper-mask-missing", lambda: lipschitz.upper(P, MISSING),
         ValueError, r"^mask must have the pytree structure"),
    case("upper-mask-leaf-shape", lambda: lipschitz.upper(P, TRANSPOSED), ValueError, r"^mask\[0\]\['w'\] has shape"),
    case("upper-params-nan", lambda: lipschitz.upper(NANP), ValueError, r"^params\[0\]\['w'\] must be finite"),
    case("upper-model-str", lambda: lipschitz.upper(P, model="relu"), TypeError, r"^model must be a lawrob\.nets\.MLP"),
    case("upper_batch-mask-batch", lambda: lipschitz.upper_batch(PB, MB3, method="product"), ValueError,
         r"^mask must carry the batch axis of params: got 3 masks for 2 networks"),
    case("upper_batch-params-unbatched", lambda: lipschitz.upper_batch(P),
         ValueError, r"^params must carry one leading"),
    case("upper_batch-overflow", lambda: lipschitz.upper_batch(jax.tree.map(lambda a: np.stack([a, a]), HUGE)), ValueError,
         r"^params are too large"),
    case("lower-key-int", lambda: lipschitz.lower(P, key=0, method="points", points=PTS),
         TypeError, r"^key must be a JAX"),
    case("lower-key-float", lambda: lipschitz.lower(P, key=jnp.zeros(2), method="points", points=PTS), TypeError,
         r"^key must be a JAX PRNG key"),
    case("lower-mask-missing", lambda: lipschitz.lower(P, MISSING, key=K), ValueError, r"^mask must have the pytree"),
    case("lower-points-nan", lambda: lipschitz.lower(P, key=K, method="points", points=np.full((2, 2), np.nan)),
         ValueError, r"^points must be finite"),
    case("lower-points-empty", lambda: lipschitz.lower(P, key=K, method="points", points=np.zeros((0, 2))), ValueError,
         r"^points must have shape \[n, 2\] with n >= 1"),
    case("lower-overflow", lambda: lipschitz.lower(HUGE, key=K, method="points", points=PTS), ValueError,
         r"^params are too large"),
    case("lower_batch-mask-batch", lambda: lipschitz.lower_batch(PB, MB3, key=K, method="points", points=PTS), ValueError,
         r"^mask must carry the batch axis of params: got 3 masks for 2 networks"),
    case("lower_batch-keys-batch", lambda: lipschitz.lower_batch(PB, key=jax.random.split(K, 3), method="points",
                                                                 points=PTS), ValueError, r"^key must be one key or B = 2"),
    case("lower_batch-points-batch", lambda: lipschitz.lower_batch(PB, key=K, method="points", points=np.ones((3, 2, 2))),
         ValueError, r"^points must be \[n, d\] or \[B, n, d\] with B = 2"),
    case("lower_batch-key-int", lambda: lipschitz.lower_batch(PB, key=0, method="points", points=PTS), TypeError,
         r"^key must be a JAX PRNG key"),
    case("exact-mask-missing", lambda: lipschitz.exact(P, MISSING),
         ValueError, r"^mask must have the pytree structure"),
    case("exact-activation-smooth", lambda: lipschitz.exact(P, model=nets.MLP((2, 3, 1), activation="tanh")),
         ValueError, r"piecewise-linear activation.*'tanh'"),
    case("exact-overflow", lambda: lipschitz.exact(HUGE), ValueError, r"^params are too large"),
    case("region_bound-mask-leaf-shape", lambda: lipschitz.region_bound(P, TRANSPOSED),
         ValueError, r"^mask\[0\]\['w'\]"),
    case("reduce-None", lambda: lipschitz.reduce(None), TypeError, r"^net must be a lawrob\.lipschitz\.Net"),
]

INFO = [
    case("plugin_entropy-None", lambda: info.plugin_entropy(None),
         ValueError, r"^masks must be a \[samples, p\] array"),
    case("plugin_entropy-not-binary", lambda: info.plugin_entropy([[0, 2]]),
         ValueError, r"^masks must hold only 0 and 1"),
    case("plugin_entropy-empty", lambda: info.plugin_entropy(np.zeros((0, 3))),
         ValueError, r"^masks must be a \[samples"),
    case("miller_madow_entropy-nan", lambda: info.miller_madow_entropy([[0, np.nan]]),
         ValueError, r"^masks must hold only"),
    case("mask_ceiling-k-above-p", lambda: info.mask_ceiling(2, 3), ValueError, r"^k must lie in \[0, p\]"),
    case("mask_ceiling-p-bool", lambda: info.mask_ceiling(True, 1), TypeError, r"^p must be an integer"),
    case("sample_masks-key-int", lambda: info.sample_masks(pipeline, lambda k: DS, key=0, datasets=2), TypeError,
         r"^key must be a JAX PRNG key"),
    case("sample_masks-pipeline-None", lambda: info.sample_masks(None, lambda k: DS, key=K, datasets=2), TypeError,
         r"^pipeline and sample_data must be callables"),
    case("estimate_information-estimators-str", lambda: info.estimate_information(np.zeros((2, 3)), estimators="plugin"),
         TypeError, r"^estimators must be None or a non-empty sequence"),
    case("estimate_information-groups", lambda: info.estimate_information(np.zeros((2, 3)), groups=(1, 1)), ValueError,
         r"^groups must add up"),
    case("mask_information-key-int", lambda: info.mask_information(pipeline, lambda k: DS, key=0, datasets=2), TypeError,
         r"^key must be a JAX PRNG key"),
    case("p_eff-info-str", lambda: bounds.p_eff("abc", 1, 1.0, 1.0, 0.1), TypeError, r"^info must be a real number"),
    case("information_from_correlations-empty", lambda: info.information_from_correlations([], n=2, d=2, L=1.0),
         ValueError, r"^correlations must hold"),
]

BOUNDS = [
    case("bubeck_sellke-n-str", lambda: bounds.bubeck_sellke("many", 2, 3, 0.1, 0.1, 1, 1),
         TypeError, r"^n must be a real"),
    case("bubeck_sellke-n-empty", lambda: bounds.bubeck_sellke(np.array([]), 2, 3, 0.1, 0.1, 1, 1), ValueError,
         r"^n must not be empty"),
    case("bubeck_sellke-shapes", lambda: bounds.bubeck_sellke(np.ones(2), np.ones(3), 3, 0.1, 0.1, 1, 1), ValueError,
         r"^d has shape \(3,\), which does not broadcast"),
    case("bubeck_sellke-variant", lambda: bounds.bubeck_sellke(10, 2, 3, 0.1, 0.1, 1, 1, variant="tight"), ValueError,
         r"^variant must be one of"),
    case("bubeck_sellke_inverse-solve_for", lambda: bounds.bubeck_sellke_inverse(1.0, "d", d=2, delta=0.1, W=1, J=1),
         ValueError, r"^solve_for must be one of"),
    case("no_free_prune-delta-nan", lambda: bounds.no_free_prune(10, 2, 3, 0.1, math.nan),
         ValueError, r"^delta must be finite"),
    case("log2_binomial-k-above-p", lambda: bounds.log2_binomial(2, 3), ValueError, r"^k must lie in \[0, p\]"),
    case("bs_finite_class-n-bool", lambda: bounds.bs_finite_class(True, 2, 3, 0.1, 1), TypeError, r"^n must be a real"),
    case("p_eff-active-negative", lambda: bounds.p_eff(1.0, -1, 1, 1, 0.1), ValueError, r"^active must be >= 0"),
    case("lemma1_information-C-zero", lambda: bounds.lemma1_information(1.0, 0.1, 0.0), ValueError, r"^C must be > 0"),
]

CASES = DATA + NETS + TRAIN + PRUNE + LIPSCHITZ + INFO + BOUNDS


def test_the_docstring_states_the_number_of_cases():
    stated = int(re.search(r"(\d+) cases", __doc__).group(1))
    assert len(CASES) == stated
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("call, error, regex", CASES)
def test_bad_input_raises_naming_the_argument(call, error, regex):
    with pytest.raises(error, match=regex):
        call()


# ------------------------------------------------------------------ silent results that are now right


def test_noise_correlation_takes_n_and_n1_outputs_alike():
    f, z = list(range(8)), list(range(8))
    for mean_f in (0.0, 1.5):
        expected = sum((fi - mean_f) * zi for fi, zi in zip(f, z)) / len(f)  # 17.5 for mean_f = 0
        for shaped in (jnp.asarray(f, jnp.float32), jnp.asarray(f, jnp.float32)[:, None]):
            assert float(train.noise_correlation(shaped, jnp.asarray(z, jnp.float32), mean_f)) == pytest.approx(expected)
    assert sum(i * i for i in range(8)) / 8 == 17.5


def test_per_example_loss_names_match_their_formulas():
    f, y = [0.3, -1.2], [1.0, -1.0]
    got = {name: train.per_example_loss(name, jnp.asarray(f)[:, None], jnp.asarray(y)) for name in ("mse", "logistic")}
    np.testing.assert_allclose(got["mse"], [(a - b) ** 2 for a, b in zip(f, y)], rtol=1e-6)
    np.testing.assert_allclose(got["logistic"], [math.log1p(math.exp(-b * a)) for a, b in zip(f, y)], rtol=1e-6)


def test_integer_like_and_bool_arguments():
    assert data.Gaussian(np.int64(3)).d == 3 and data.Gaussian(3.0).d == 3
    assert nets.MLP((2, 3, 1), bias=np.bool_(False)).num_params == 2 * 3 + 3 * 1
    assert nets.count_active(MK, model=M) == 2 * 3 + 3 * 1


def test_diverged_training_is_flagged_not_raised():
    _, good = fit(steps=4)
    _, bad = fit(steps=4, learning_rate=1e30, optimizer="sgd")
    assert good["diverged"].shape == () and good["diverged"].dtype == jnp.bool_
    assert not bool(good["diverged"]) and np.isfinite(float(good["loss"][-1]))
    assert bool(bad["diverged"]) and not np.isfinite(float(bad["loss"][-1]))


def test_one_diverged_run_of_a_batch_leaves_the_others_alone():
    _, mixed = fit_batched(steps=4, learning_rate=jnp.array([1e-3, 1e30]), optimizer="sgd")
    _, calm = fit_batched(steps=4, learning_rate=jnp.array([1e-3, 1e-3]), optimizer="sgd")
    assert mixed["diverged"].shape == (2,) and mixed["diverged"].tolist() == [False, True]
    assert not np.isfinite(float(mixed["loss"][1, -1]))
    np.testing.assert_array_equal(mixed["loss"][0], calm["loss"][0])


def test_keys_typed_legacy_and_traced_are_accepted():
    typed = G2.sample(jax.random.key(3), 4)
    np.testing.assert_array_equal(G2.sample(jax.random.PRNGKey(3), 4), typed)
    np.testing.assert_allclose(jax.jit(lambda k: G2.sample(k, 4))(jax.random.key(3)), typed, rtol=1e-6)
    batched = jax.vmap(lambda k: G2.sample(k, 4))(jax.random.split(jax.random.key(3), 2))
    assert batched.shape == (2, 4, 2)


def test_upper_batch_uses_each_network_its_own_mask():
    other = ({"w": MK[0]["w"].at[0, 0].set(0.0), "b": MK[0]["b"]}, MK[1])  # no unit or input dies
    bounds_ = lipschitz.upper_batch(PB, train.stack([MK, other]), method="product")
    for b, mask in enumerate((MK, other)):
        masked = [np.asarray(p["w"] * m["w"], np.float64) for p, m in zip(P, mask)]
        independent = math.prod(np.linalg.norm(w, 2) for w in masked)
        assert bounds_[b].value == pytest.approx(independent, rel=1e-6)
    assert bounds_[0].value != bounds_[1].value


def test_large_finite_weights_still_bound_and_overflow_cannot_hang():
    scaled = jax.tree.map(lambda a: np.asarray(a, np.float64) * 1e100, P)
    independent = math.prod(np.linalg.norm(np.asarray(layer["w"]), 2) for layer in scaled)
    assert lipschitz.upper(scaled, method="product").value == pytest.approx(independent, rel=1e-6)
    with pytest.raises(FloatingPointError, match="spectral_norm_upper"):
        spectral_norm_upper(np.full((2, 2), 1e200))
