"""lawrob.data: isoperimetric measures, exact noise levels, reproducibility, bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lawrob import data

N_MC = 40_000


def _tail_excess(values, d, c, lipschitz, ts):
    """max over t of empirical P(|f - E f| >= t) minus 2 exp(-d t^2 / (2 c L^2)) minus 4 standard errors."""
    dev = np.abs(values - values.mean())
    worst = -np.inf
    for t in ts:
        p_hat = np.mean(dev >= t)
        slack = 4 * math.sqrt(max(p_hat * (1 - p_hat), 1 / N_MC) / N_MC)
        worst = max(worst, p_hat - 2 * math.exp(-d * t**2 / (2 * c * lipschitz**2)) - slack)
    return worst


LIPSCHITZ_TESTS = {
    "coordinate": (lambda x: x[:, 0], 1.0),
    "norm": (lambda x: np.linalg.norm(x, axis=1), 1.0),
    "max_coordinate": (lambda x: x.max(axis=1), 1.0),
    "relu_sum": (lambda x: np.maximum(x, 0).sum(axis=1) / math.sqrt(x.shape[1]), 1.0),
}


@pytest.mark.parametrize("measure_cls", [data.Gaussian, data.Sphere])
@pytest.mark.parametrize("d", [4, 16, 64])
@pytest.mark.parametrize("name", sorted(LIPSCHITZ_TESTS))
def test_isoperimetric_tail_holds(measure_cls, d, name):
    measure = measure_cls(d)
    x = np.asarray(measure.sample(jax.random.key(d), N_MC), dtype=np.float64)
    f, lip = LIPSCHITZ_TESTS[name]
    ts = np.linspace(0.05, 3.0, 40) / math.sqrt(d)
    assert _tail_excess(f(x), d, measure.c, lip, ts) <= 0


@pytest.mark.parametrize("measure_cls", [data.Gaussian, data.Sphere])
def test_tail_check_detects_a_too_small_constant(measure_cls):
    """The same check rejects c/4: the tail test has teeth (a coordinate is nearly extremal)."""
    d = 16
    measure = measure_cls(d)
    x = np.asarray(measure.sample(jax.random.key(1), N_MC), dtype=np.float64)
    ts = np.linspace(0.05, 3.0, 40) / math.sqrt(d)
    assert _tail_excess(x[:, 0], d, measure.c / 4, 1.0, ts) > 0


def test_gaussian_second_moment_and_sphere_norm():
    d = 32
    x = np.asarray(data.Gaussian(d).sample(jax.random.key(0), N_MC), dtype=np.float64)
    sq = (x**2).sum(axis=1)
    assert abs(sq.mean() - 1.0) < 4 * sq.std() / math.sqrt(N_MC)
    s = np.asarray(data.Sphere(d).sample(jax.random.key(0), 1000))
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1.0, atol=1e-6)


def test_constants_documented_values():
    assert data.Gaussian(10).c == 1.0
    assert data.Gaussian(10, scale=2.0).c == 4.0
    assert data.Sphere(10).c == pytest.approx(10 / 9)
    assert data.EmbeddedSphere(20, 4).c == pytest.approx(5.0)
    assert data.BooleanCube(3).c is None
    mix = data.Mixture((data.Gaussian(5), data.Gaussian(5, scale=3.0)), (0.5, 0.5))
    assert mix.c == 9.0 and mix.k == 2
    assert data.Mixture((data.Gaussian(5), data.BooleanCube(5))).c is None


def test_embedded_sphere_lies_on_a_low_dimensional_sphere():
    measure = data.EmbeddedSphere(12, 3, seed=4)
    x = np.asarray(measure.sample(jax.random.key(2), 500), dtype=np.float64)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    singular = np.linalg.svd(x, compute_uv=False)
    assert np.sum(singular > 1e-4 * singular[0]) == 4  # spans exactly intrinsic_dim + 1 directions
    basis = measure.basis
    np.testing.assert_allclose(basis @ basis.T, np.eye(4), atol=1e-12)


def test_boolean_cube_values():
    x = np.asarray(data.BooleanCube(3).sample(jax.random.key(0), 1000))
    assert set(np.unique(x)) == {-1.0, 1.0}
    assert len({tuple(r) for r in x}) == 8


def test_mixture_component_frequencies_and_means():
    means = [(3.0, 0.0), (-3.0, 0.0), (0.0, 3.0)]
    weights = (0.2, 0.3, 0.5)
    mix = data.Mixture(tuple(data.Gaussian(2, mean=m) for m in means), weights)
    x, ell = mix.sample_with_components(jax.random.key(3), N_MC)
    x, ell = np.asarray(x), np.asarray(ell)
    freq = np.bincount(ell, minlength=3) / N_MC
    np.testing.assert_allclose(freq, weights, atol=4 * math.sqrt(0.25 / N_MC))
    for l, m in enumerate(means):
        np.testing.assert_allclose(x[ell == l].mean(axis=0), m, atol=0.05)


NOISE_CASES = [
    ("zero", "rademacher", {}, 1.0),
    ("linear", "rademacher", {"amplitude": 0.5}, 0.25),
    ("teacher", "uniform", {"amplitude": 0.6}, 0.36 / 3),
    ("linear", "flip", {"flip": 0.2}, 4 * 0.2 * 0.8),
    ("teacher", "flip", {"flip": 0.05}, 4 * 0.05 * 0.95),
    ("linear", "gaussian", {"amplitude": 0.7}, 0.49),
]


@pytest.mark.parametrize("target,noise,options,sigma2", NOISE_CASES)
def test_sigma2_matches_monte_carlo(target, noise, options, sigma2):
    ds = data.make_dataset(jax.random.key(7), data.Gaussian(8), 100_000, target, noise, **options)
    z = np.asarray(ds.z, dtype=np.float64)
    g = np.asarray(ds.g, dtype=np.float64)
    assert float(ds.sigma2) == pytest.approx(sigma2)
    se = (z**2).std() / math.sqrt(len(z))
    assert abs((z**2).mean() - sigma2) <= 4 * se + 1e-6
    # E[z | x] = 0: the noise is mean zero and uncorrelated with the target
    assert abs(z.mean()) <= 4 * z.std() / math.sqrt(len(z))
    assert abs(np.mean(z * g)) <= 4 * np.std(z * g) / math.sqrt(len(z)) + 1e-9
    if ds.bounded:
        assert np.all(np.abs(np.asarray(ds.y)) <= 1 + 1e-6)
    np.testing.assert_allclose(np.asarray(ds.y), g + z, atol=1e-6)


def test_pure_random_labels():
    ds = data.make_dataset(jax.random.key(0), data.Gaussian(4), 1000)
    assert set(np.unique(np.asarray(ds.y))) == {-1.0, 1.0}
    assert np.all(np.asarray(ds.g) == 0) and float(ds.sigma2) == 1.0


def test_callable_target_and_same_key_same_data():
    target = lambda x: jnp.sin(3 * x[:, 0])  # noqa: E731
    a = data.make_dataset(jax.random.key(5), data.Sphere(6), 50, target, "uniform", amplitude=0.3)
    b = data.make_dataset(jax.random.key(5), data.Sphere(6), 50, target, "uniform", amplitude=0.3)
    c = data.make_dataset(jax.random.key(6), data.Sphere(6), 50, target, "uniform", amplitude=0.3)
    for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(leaf_a, leaf_b)
    assert not np.array_equal(a.x, c.x)
    np.testing.assert_allclose(a.g, 0.7 * np.tanh(np.sin(3 * np.asarray(a.x[:, 0]))), rtol=1e-5, atol=1e-6)


def test_from_arrays():
    ds = data.from_arrays(np.zeros((3, 2)), [1, -1, 0.5], sigma2=0.5)
    assert ds.n == 3 and ds.d == 2 and float(ds.sigma2) == 0.5
    cls = data.from_arrays(np.zeros((3, 2)), [0, 2, 1], classes=3)
    assert cls.y.dtype == jnp.int32
    with pytest.raises(ValueError, match="y must lie in"):
        data.from_arrays(np.zeros((2, 2)), [1.5, 0])
    with pytest.raises(ValueError, match="class indices"):
        data.from_arrays(np.zeros((2, 2)), [0, 3], classes=3)
    with pytest.raises(ValueError, match="one label per row"):
        data.from_arrays(np.zeros((2, 2)), [0, 1, 1])
    with pytest.raises(ValueError, match="x must be finite"):
        data.from_arrays(np.array([[np.nan, 0.0]]), [0.0])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: data.Gaussian(0), "d must be an integer >= 1"),
        (lambda: data.Sphere(1), "d must be an integer >= 2"),
        (lambda: data.EmbeddedSphere(5, 5), "intrinsic_dim must be <= d - 1"),
        (lambda: data.Gaussian(3, mean=(0.0, 1.0)), "mean must have length"),
        (lambda: data.Mixture((data.Gaussian(2), data.Gaussian(3))), "same dimension"),
        (lambda: data.Mixture((data.Gaussian(2),), (0.5,)), "summing to 1"),
        (lambda: data.make_dataset(jax.random.key(0), data.Gaussian(2), 0), "n must be an integer >= 1"),
        (lambda: data.make_dataset(jax.random.key(0), data.Gaussian(2), 5, "linear", "flip", flip=0.7), "flip must lie in"),
        (lambda: data.make_dataset(jax.random.key(0), data.Gaussian(2), 5, amplitude=1.5), "amplitude must lie in"),
        (lambda: data.make_dataset(jax.random.key(0), data.Gaussian(2), 5, noise="cauchy"), "noise must be one of"),
        (lambda: data.make_dataset(jax.random.key(0), data.Gaussian(2), 5, target="quadratic"), "target must be one of"),
        (lambda: data.make_dataset(jax.random.key(0), data.Gaussian(2), 5, noise="flip"), "flips the sign"),
        (lambda: data.make_dataset(jax.random.key(0), data.Gaussian(2), 5, target=lambda x: x), "target callable"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def _write_idx(path, array, type_code):
    import gzip
    import struct

    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype).tobytes()
    (gzip.open if str(path).endswith(".gz") else open)(path, "wb").write(payload)


def test_read_idx_and_fashion_mnist_loader(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, 0x08)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels, 0x08)
    floats = rng.standard_normal((3, 2)).astype(np.float32)
    _write_idx(tmp_path / "f.idx", floats, 0x0D)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "f.idx"), floats)
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path))
    x, y = data.load_fashion_mnist()
    np.testing.assert_allclose(x, images.reshape(5, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        data.load_fashion_mnist(split="test")
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "bad.idx")


def test_load_digits():
    x, y = data.load_digits()
    assert x.shape == (1797, 64) and 0 <= x.min() and x.max() <= 1 and set(np.unique(y)) == set(range(10))
