"""Isoperimetric input measures and label models with an exactly known noise level.

Every measure is a frozen dataclass with ``d``, ``c`` (its isoperimetric constant in the sense of
Bubeck & Sellke eq. (1.1): P(|f - E f| >= t) <= 2 exp(-d t^2 / (2 c L^2)) for every L-Lipschitz f, or
``None`` when the measure is not isoperimetric in that sense), ``k`` (number of mixture components) and
``sample(key, n) -> [n, d]``. Labels follow docs/theory.md, section 2.2: y = g(x) + z with |y| <= 1, E[z | x] = 0 and
sigma2 = E[Var(y | x)] known in closed form for each noise model.

Arguments are checked, each error naming its argument: dimensions and counts (d >= 1, d >= 2 for the spheres,
intrinsic_dim, n, seed >= 0) are integers, never bools; ``key`` is a JAX PRNG key (``jax.random.key(seed)``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any
import os

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from lawrob import _checks
from lawrob.nets import MLP

__all__ = [
    "FASHION_MNIST_ENV", "MEASURES", "NOISES", "TARGETS", "BooleanCube", "Dataset", "EmbeddedSphere", "Gaussian",
    "Mixture", "Sphere", "check_dataset", "check_measure", "from_arrays", "load_digits", "load_fashion_mnist",
    "make_dataset", "read_idx", "teacher",
]


@dataclasses.dataclass(frozen=True)
class Gaussian:
    """N(mean, scale^2 I_d / d): the high-dimensional Gaussian of Bubeck & Sellke, E||x - mean||^2 = scale^2.

    c = scale^2: an L-Lipschitz f of x = mean + (scale / sqrt(d)) g, g ~ N(0, I_d), is (L scale / sqrt(d))-Lipschitz
    in g, and Gaussian concentration (Tsirelson-Ibragimov-Sudakov) gives P(|f - E f| >= t) <= 2 exp(-d t^2 / (2 scale^2 L^2)).

    Parameters
    ----------
    d : int
        The dimension.
    scale : float
        The scale, > 0 (E||x - mean||^2 = scale^2).
    mean : tuple of float, optional
        The mean, of length d (default: 0).

    Raises
    ------
    ValueError
        If ``d`` is not a positive integer, ``scale`` is not positive and finite, or ``mean`` has the wrong length.

    References
    ----------
    Bubeck & Sellke, Section 1 (the high-dimensional Gaussian). docs/theory.md, section 2.1.
    """

    d: int
    scale: float = 1.0
    mean: tuple[float, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "d", _checks.positive_int("d", self.d))
        object.__setattr__(self, "scale", _checks.real_in("scale", self.scale, 0.0, math.inf, low_open=True, high_open=True))
        if self.mean is not None:
            mean = tuple(float(v) for v in np.ravel(_checks.finite_array("mean", self.mean, ndim=1)))
            if len(mean) != self.d:
                raise ValueError(f"mean must have length d={self.d}, got {len(mean)}")
            object.__setattr__(self, "mean", mean)

    @property
    def c(self) -> float:
        """The isoperimetry constant c of BS eq. (1.1)."""
        return self.scale**2

    @property
    def k(self) -> int:
        """The number k of mixture components (1 for a single measure)."""
        return 1

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        key, n = _checks.prng_key("key", key), _checks.positive_int("n", n)
        x = self.scale / math.sqrt(self.d) * jax.random.normal(key, (n, self.d))
        return x if self.mean is None else x + jnp.asarray(self.mean, x.dtype)


@dataclasses.dataclass(frozen=True)
class Sphere:
    """Uniform measure on the unit sphere S^{d-1} in R^d (d >= 2).

    c = d / (d - 1): the sphere S^{d-1} has log-Sobolev constant d - 1 (Mueller & Weissler 1982; equivalently
    Bakry-Emery's CD(d-2, d-1) criterion), and Herbst's argument then gives P(|f - E f| >= t) <= 2 exp(-(d-1) t^2 / (2 L^2))
    for L-Lipschitz f; matching BS eq. (1.1) gives d / c = d - 1. The looser d / (d - 2) is sometimes quoted (docs/theory.md, section 2.1).

    Parameters
    ----------
    d : int
        The dimension of the ambient space, >= 2.

    Raises
    ------
    ValueError
        If ``d`` is not an integer >= 2.

    References
    ----------
    C. E. Mueller and F. B. Weissler, *Hypercontractivity for the heat semigroup for ultraspherical polynomials and on
    the n-sphere*, J. Funct. Anal., 1982. docs/theory.md, section 2.1.
    """

    d: int

    def __post_init__(self):
        object.__setattr__(self, "d", _checks.positive_int("d", self.d, minimum=2))

    @property
    def c(self) -> float:
        """The isoperimetry constant c of BS eq. (1.1)."""
        return self.d / (self.d - 1)

    @property
    def k(self) -> int:
        """The number k of mixture components (1 for a single measure)."""
        return 1

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        g = jax.random.normal(_checks.prng_key("key", key), (_checks.positive_int("n", n), self.d))
        return g / jnp.linalg.norm(g, axis=1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class EmbeddedSphere:
    """A low-dimensional manifold: the unit sphere S^{m-1} (m = ``intrinsic_dim`` + 1) isometrically embedded in R^d
    by a random orthonormal map fixed by ``seed``.

    An L-Lipschitz f on R^d restricts to an L-Lipschitz function on S^{m-1}, which concentrates as
    2 exp(-(m-1) t^2 / (2 L^2)) (see ``Sphere``); matching BS eq. (1.1) gives c = d / (m - 1) = d / intrinsic_dim.
    c grows as the manifold gets thinner: the law then only sees the intrinsic dimension.

    Parameters
    ----------
    d : int
        The ambient dimension.
    intrinsic_dim : int
        The sphere's dimension m - 1, 1 <= intrinsic_dim < d.
    seed : int
        The seed of the random orthonormal embedding.

    Raises
    ------
    ValueError
        If the dimensions are not integers with 1 <= intrinsic_dim < d, or ``seed`` is negative.

    References
    ----------
    BS eq. (1.1). docs/theory.md, section 2.1.
    """

    d: int
    intrinsic_dim: int
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "d", _checks.positive_int("d", self.d, minimum=2))
        m = _checks.positive_int("intrinsic_dim", self.intrinsic_dim)
        if m + 1 > self.d:
            raise ValueError(f"intrinsic_dim must be <= d - 1 = {self.d - 1}, got {m}")
        object.__setattr__(self, "intrinsic_dim", m)
        object.__setattr__(self, "seed", _checks.positive_int("seed", self.seed, minimum=0))

    @property
    def c(self) -> float:
        """The isoperimetry constant c of BS eq. (1.1)."""
        return self.d / self.intrinsic_dim

    @property
    def k(self) -> int:
        """The number k of mixture components (1 for a single measure)."""
        return 1

    @property
    def basis(self) -> np.ndarray:
        """[m, d] orthonormal rows spanning the embedding."""
        gaussian = np.random.default_rng(self.seed).standard_normal((self.d, self.intrinsic_dim + 1))
        q, r = np.linalg.qr(gaussian)
        return (q * np.sign(np.diag(r))).T

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        u = Sphere(self.intrinsic_dim + 1).sample(key, n)
        return u @ jnp.asarray(self.basis, u.dtype)


@dataclasses.dataclass(frozen=True)
class BooleanCube:
    """Uniform on {-1, +1}^d (the toy data of NFP App. C.2 / experiment E5). Not isoperimetric in the sense of
    BS eq. (1.1) at the scale used there (||x|| = sqrt(d)), so c = None.

    Parameters
    ----------
    d : int
        The dimension, >= 1.

    Raises
    ------
    ValueError
        If ``d`` is not a positive integer.

    References
    ----------
    NFP Appendix C.2; BS eq. (1.1).
    """

    d: int

    def __post_init__(self):
        object.__setattr__(self, "d", _checks.positive_int("d", self.d))

    @property
    def c(self) -> float | None:
        """The isoperimetry constant c of BS eq. (1.1) (``None``: no such c at this scale)."""
        return None

    @property
    def k(self) -> int:
        """The number k of mixture components (1 for a single measure)."""
        return 1

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        return jax.random.rademacher(_checks.prng_key("key", key), (_checks.positive_int("n", n), self.d), dtype=jnp.float32)


@dataclasses.dataclass(frozen=True)
class Mixture:
    """mu = sum_l alpha_l mu_l (NFP assumption A1): k components on the same R^d, c = max of the components' c
    (None if any is None). ``sample_with_components`` also returns each point's component l_i.

    Parameters
    ----------
    components : tuple
        The k measures mu_l, all on the same R^d.
    weights : tuple of float, optional
        The mixture weights alpha_l (default: uniform); they are normalized.

    Raises
    ------
    TypeError
        If ``components`` is not a sequence of measures.
    ValueError
        If there are no components, their dimensions differ or a weight is negative.

    References
    ----------
    NFP assumption A1. docs/theory.md, section 2.1.
    """

    components: tuple[Any, ...]
    weights: tuple[float, ...] | None = None

    def __post_init__(self):
        if isinstance(self.components, (str, bytes)) or not hasattr(self.components, "__iter__"):
            raise TypeError(f"components must be a sequence of measures, got {self.components!r}")
        components = tuple(self.components)
        if not components:
            raise ValueError("components must hold at least one measure")
        for i, m in enumerate(components):
            check_measure(f"components[{i}]", m)
        dims = {m.d for m in components}
        if len(dims) != 1:
            raise ValueError(f"components must all have the same dimension d, got {sorted(dims)}")
        weights = self.weights if self.weights is not None else [1.0 / len(components)] * len(components)
        weights = _checks.finite_array("weights", weights, ndim=1)
        if weights.shape != (len(components),) or np.any(weights < 0) or not math.isclose(weights.sum(), 1.0, abs_tol=1e-9):
            raise ValueError(f"weights must be {len(components)} non-negative numbers summing to 1, got {weights.tolist()}")
        object.__setattr__(self, "components", components)
        object.__setattr__(self, "weights", tuple(float(w) for w in weights))

    @property
    def d(self) -> int:
        """The dimension d of the ambient space R^d."""
        return self.components[0].d

    @property
    def k(self) -> int:
        """The number k of mixture components (1 for a single measure)."""
        return len(self.components)

    @property
    def c(self) -> float | None:
        """The largest of the components' c (``None`` if one has none)."""
        cs = [m.c for m in self.components]
        return None if any(c is None for c in cs) else max(cs)

    def sample_with_components(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        key, n = _checks.prng_key("key", key), _checks.positive_int("n", n)
        key_l, *keys = jax.random.split(key, self.k + 1)
        ell = jax.random.choice(key_l, self.k, (n,), p=jnp.asarray(self.weights))
        draws = jnp.stack([m.sample(k_, n) for m, k_ in zip(self.components, keys)])
        return draws[ell, jnp.arange(n)], ell

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        return self.sample_with_components(key, n)[0]


MEASURES = {"gaussian": Gaussian, "sphere": Sphere, "embedded_sphere": EmbeddedSphere, "cube": BooleanCube}


def check_measure(name: str, measure: Any) -> None:
    """Raise a TypeError unless ``measure`` is a measure: a ``MEASURES`` class instance, a ``Mixture`` or any
    object with an integer ``d`` and a ``sample(key, n)`` method.

    Parameters
    ----------
    name : str
        The argument's name in error messages.
    measure : Any
        The value to check.

    Raises
    ------
    TypeError
        If ``measure`` is not a measure.
    """
    d = getattr(measure, "d", None)
    if not callable(getattr(measure, "sample", None)) or isinstance(d, bool) or not isinstance(d, numbers.Integral):
        raise TypeError(f"{name} must be a measure (Gaussian, Sphere, EmbeddedSphere, BooleanCube, Mixture or an object "
                        f"with an integer d and sample(key, n)), got {measure!r:.80}")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Dataset:
    """A labelled sample: y = g(x) + z with E[z | x] = 0 and E z^2 = sigma2 (docs/theory.md, section 2.2).

    x: [n, d] inputs; y: [n] labels; g: [n] clean target E[y | x]; z: [n] noise y - g; ell: [n] mixture component;
    sigma2: the exact noise level E[Var(y | x)] (a scalar array, so datasets of different noise levels stack); bounded: whether |y| <= 1 holds by construction
    (False only for Gaussian noise, which lies outside both theorems' assumptions).
    A Dataset is a pytree (arrays are leaves), so batches of datasets can be stacked and vmapped.

    Parameters
    ----------
    x : jax.Array
        The inputs, [n, d].
    y : jax.Array
        The labels, [n].
    g : jax.Array
        The clean target E[y | x], [n].
    z : jax.Array
        The noise y - g, [n].
    ell : jax.Array
        The mixture component of each point, [n].
    sigma2 : jax.Array or None
        The exact noise level E[Var(y | x)] (None: unknown).
    bounded : bool
        Whether |y| <= 1 holds by construction.
    description : str
        How the data were made.

    References
    ----------
    docs/theory.md, section 2.2.
    """

    x: jax.Array
    y: jax.Array
    g: jax.Array
    z: jax.Array
    ell: jax.Array
    sigma2: jax.Array | None
    bounded: bool = dataclasses.field(default=True, metadata=dict(static=True))
    description: str = dataclasses.field(default="", metadata=dict(static=True))

    @property
    def n(self) -> int:
        return self.x.shape[-2]

    @property
    def d(self) -> int:
        return self.x.shape[-1]


def check_dataset(data: Any, d: int, name: str = "data", batched: bool = False) -> None:
    """Raise unless ``data`` is a Dataset with inputs [n, d] ([B, n, d] with ``batched``) and finite x and y
    (values checked only when concrete, so this also works under jit/vmap).

    Parameters
    ----------
    data : Any
        The value to check.
    d : int
        The input dimension it must have.
    name : str
        The argument's name in error messages.
    batched : bool
        Whether a leading batch axis is expected.

    Raises
    ------
    TypeError
        If ``data`` is not a Dataset.
    ValueError
        If the shapes are wrong or a concrete x or y is not finite.
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"{name} must be a lawrob.data.Dataset, got {type(data).__name__}")
    if np.ndim(data.x) != 2 + batched or np.shape(data.x)[-1] != d:
        raise ValueError(f"{name}.x must have shape [{'B, ' * batched}n, {d}] for this model, got {np.shape(data.x)}")
    _checks.finite_tree(name, {"x": data.x, "y": data.y})


def from_arrays(x: ArrayLike, y: ArrayLike, *, g: ArrayLike | None = None, sigma2: float | None = None,
                classes: int | None = None, description: str = "user data") -> Dataset:
    """Wrap user arrays as a Dataset, checking shapes, finiteness and the label range.

    Real labels must lie in [-1, 1] (both theorems assume bounded labels). Without ``g`` the clean target is
    taken as 0 (so z = y), right for pure-noise labels; ``sigma2=None`` records that the noise level is
    unknown (no bound can then be evaluated on this data). With ``classes=C`` the labels are class indices
    in {0, ..., C-1} for the cross-entropy loss (g and z are then zero).

    Parameters
    ----------
    x : array_like
        The inputs, [n, d].
    y : array_like
        The labels, [n].
    g : array_like, optional
        The clean target, [n] (default: 0).
    sigma2 : float, optional
        The noise level (None: unknown).
    classes : int, optional
        The number of classes of integer labels.
    description : str
        How the data were made.

    Returns
    -------
    Dataset
        The wrapped data.

    Raises
    ------
    ValueError
        If the shapes disagree, a value is not finite, or a label is outside [-1, 1] (or not a class index).
    """
    x = _checks.finite_array("x", x, ndim=2, nonempty=True)
    y = _checks.finite_array("y", y, ndim=1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have one label per row of x ({x.shape[0]}), got {y.shape[0]}")
    if classes is not None:
        classes = _checks.positive_int("classes", classes, minimum=2)
        if np.any((y != np.round(y)) | (y < 0) | (y >= classes)):
            raise ValueError(f"y must hold class indices in {{0, ..., {classes - 1}}} when classes={classes}")
        zeros = jnp.zeros(len(y), jnp.float32)
        return Dataset(x=jnp.asarray(x, jnp.float32), y=jnp.asarray(y, jnp.int32), g=zeros, z=zeros,
                       ell=jnp.zeros(len(y), jnp.int32), sigma2=None, description=description)
    if np.any(np.abs(y) > 1):
        raise ValueError("y must lie in [-1, 1] (both theorems assume bounded labels); rescale the labels")
    g = np.zeros_like(y) if g is None else _checks.finite_array("g", g, ndim=1)
    if g.shape != y.shape:
        raise ValueError(f"g must have the shape of y {y.shape}, got {g.shape}")
    if sigma2 is not None:
        sigma2 = _checks.real_in("sigma2", sigma2, 0.0, 4.0)
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    return Dataset(x=f32(x), y=f32(y), g=f32(g), z=f32(y - g), ell=jnp.zeros(len(y), jnp.int32),
                   sigma2=None if sigma2 is None else f32(sigma2), description=description)


TARGETS = ("zero", "linear", "teacher")
NOISES = ("rademacher", "flip", "uniform", "gaussian")


def teacher(key: jax.Array, d: int, hidden: Sequence[int] = (50, 50, 50)) -> Callable[[jax.Array], jax.Array]:
    """A random ReLU MLP teacher t: R^d -> R (E3: three hidden layers of width 50), He-initialized so that
    t(x) = O(1) for ||x|| = O(1) inputs scaled by sqrt(d). ``d`` and the ``hidden`` widths are integers >= 1.

    Parameters
    ----------
    key : jax.Array
        A ``jax.random.key`` fixing the weights.
    d : int
        The input dimension.
    hidden : sequence of int
        The hidden widths.

    Returns
    -------
    callable
        t: [n, d] -> [n].

    Raises
    ------
    ValueError
        If a width is not a positive integer.
    """
    key, d = _checks.prng_key("key", key), _checks.positive_int("d", d)
    model = MLP((d, *_checks.positive_ints("hidden", hidden), 1), init_scheme="he_normal")
    params = model.init(key)
    return lambda x: model.scalar(params, math.sqrt(d) * x)


def make_dataset(
    key: jax.Array, measure: Any, n: int, target: str | Callable = "zero", noise: str = "rademacher", *,
    amplitude: float = 1.0, flip: float = 0.1, teacher_hidden: Sequence[int] = (50, 50, 50),
) -> Dataset:
    """Draw n points from ``measure`` and label them.

    The target gives a raw score t(x): ``"zero"`` (t = 0), ``"linear"`` (t = sqrt(d) <w, x> with a unit w drawn
    from the key), ``"teacher"`` (a random ReLU MLP, see ``teacher``) or a callable [n, d] -> [n].
    The noise model then fixes g = E[y|x] and sigma2 = E[Var(y|x)] exactly:

    - ``"rademacher"``: y = g + a eps, eps = +-1 fair, g = (1 - a) tanh(t), sigma2 = a^2.
      With target "zero" and a = 1 these are pure random +-1 labels (g = 0, sigma2 = 1).
    - ``"uniform"``: y = g + U[-a, a], g = (1 - a) tanh(t), sigma2 = a^2 / 3.
    - ``"flip"``: y = s(x) * (-1 with probability q), s = sign(t) (sign(0) = +1), g = (1 - 2q) s, sigma2 = 4 q (1 - q).
    - ``"gaussian"``: y = t + a N(0, 1), g = t, sigma2 = a^2; labels unbounded (outside both theorems; E3/E4 only).

    ``amplitude`` is a in (0, 1] (any a > 0 for Gaussian noise) and ``flip`` is q in [0, 1/2].
    For a ``Mixture`` the component of each point is recorded in ``ell``. ``key``: a ``jax.random.key``;
    ``measure``: see ``check_measure``; ``n`` and the ``teacher_hidden`` widths: integers >= 1 (not bools).

    Parameters
    ----------
    key : jax.Array
        A ``jax.random.key``.
    measure : Any
        The input distribution (see ``check_measure``).
    n : int
        The number of points.
    target : str or callable
        "zero", "linear", "teacher" or a callable [n, d] -> [n].
    noise : str
        One of ``NOISES``: "rademacher", "uniform", "flip" or "gaussian".
    amplitude : float
        The noise amplitude a.
    flip : float
        The flip probability q of ``noise="flip"``.
    teacher_hidden : sequence of int
        The hidden widths of the ``"teacher"`` target.

    Returns
    -------
    Dataset
        The labelled sample with its exact g and sigma2.

    Raises
    ------
    TypeError
        If ``measure`` is not a measure or ``key`` is not a key.
    ValueError
        If ``target``/``noise`` is unknown or a number is out of its range.

    References
    ----------
    docs/theory.md, section 2.2.
    """
    key, n = _checks.prng_key("key", key), _checks.positive_int("n", n)
    check_measure("measure", measure)
    _checks.one_of("noise", noise, NOISES)
    teacher_hidden = _checks.positive_ints("teacher_hidden", teacher_hidden)
    if not callable(target):
        _checks.one_of("target", target, TARGETS)
    a = _checks.real_in("amplitude", amplitude, 0.0, math.inf if noise == "gaussian" else 1.0, low_open=True, high_open=noise == "gaussian")
    q = _checks.real_in("flip", flip, 0.0, 0.5)
    if noise == "flip" and target == "zero":
        raise ValueError("noise='flip' flips the sign of a target: give target='linear', 'teacher' or a callable")
    key_x, key_t, key_noise = jax.random.split(key, 3)
    if isinstance(measure, Mixture):
        x, ell = measure.sample_with_components(key_x, n)
    else:
        x, ell = measure.sample(key_x, n), jnp.zeros(n, jnp.int32)
    d = x.shape[1]
    if callable(target):
        t = jnp.asarray(target(x), jnp.float32)
        if t.shape != (n,) or not bool(jnp.all(jnp.isfinite(t))):
            raise ValueError(f"target callable must return {n} finite values (shape ({n},)), got shape {t.shape}")
        name = getattr(target, "__name__", "callable")
    elif target == "zero":
        t, name = jnp.zeros(n), "zero"
    elif target == "linear":
        w = jax.random.normal(key_t, (d,))
        t, name = math.sqrt(d) * x @ (w / jnp.linalg.norm(w)), "linear"
    else:
        t, name = teacher(key_t, d, teacher_hidden)(x), "teacher"
    if noise == "flip":
        s = jnp.where(t >= 0, 1.0, -1.0)
        g = (1 - 2 * q) * s
        y = s * jnp.where(jax.random.bernoulli(key_noise, q, (n,)), -1.0, 1.0)
        sigma2 = 4 * q * (1 - q)
    elif noise == "gaussian":
        g, y, sigma2 = t, t + a * jax.random.normal(key_noise, (n,)), a**2
    else:
        g = (1 - a) * jnp.tanh(t)
        if noise == "rademacher":
            y, sigma2 = g + a * jax.random.rademacher(key_noise, (n,), dtype=jnp.float32), a**2
        else:
            y, sigma2 = g + jax.random.uniform(key_noise, (n,), minval=-a, maxval=a), a**2 / 3
    y = y.astype(jnp.float32)
    g = g.astype(jnp.float32)
    return Dataset(x=x.astype(jnp.float32), y=y, g=g, z=y - g, ell=ell.astype(jnp.int32), sigma2=jnp.asarray(sigma2, jnp.float32),
                   bounded=noise != "gaussian",
                   description=f"{type(measure).__name__}(d={d}), target={name}, noise={noise}")


# ---------------------------------------------------------------------------------------------------------------
# Local image data (experiment E2). Nothing is downloaded: files are read from a path the user gives.

FASHION_MNIST_ENV = "LAWROB_FASHION_MNIST"
_IDX_TYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST / FashionMNIST format, optionally gzipped): magic 0x00 0x00 <type> <ndim>,
    then ndim big-endian uint32 sizes, then the data in row-major order.

    Parameters
    ----------
    path : str or os.PathLike
        The IDX file (``.gz`` read compressed).

    Returns
    -------
    numpy.ndarray
        The array, in the file's dtype and shape.

    Raises
    ------
    ValueError
        If the magic number or the size is wrong.
    """
    import gzip
    from pathlib import Path

    path = Path(path)
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"path {path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    body = raw[4 + 4 * ndim:]
    if len(body) != dtype.itemsize * math.prod(shape):
        raise ValueError(f"path {path}: header says shape {shape} but the file holds {len(body)} data bytes")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def load_fashion_mnist(path: str | os.PathLike | None = None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """FashionMNIST from the standard IDX files in folder ``path`` (default: the ``LAWROB_FASHION_MNIST``
    environment variable): ``{train,t10k}-images-idx3-ubyte[.gz]`` and ``...-labels-idx1-ubyte[.gz]``.
    Returns x [N, 784] in [0, 1] (float32) and integer labels [N]. Raises FileNotFoundError naming what is missing.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The folder of the IDX files (default: ``$LAWROB_FASHION_MNIST``).
    split : {"train", "test"}
        Which files to read.

    Returns
    -------
    tuple of numpy.ndarray
        x [N, 784] in [0, 1] (float32) and the integer labels [N].

    Raises
    ------
    FileNotFoundError
        Naming the files that are missing (or the unset variable).
    ValueError
        If ``split`` is unknown or the files disagree.
    """
    import os
    from pathlib import Path

    _checks.one_of("split", split, ("train", "test"))
    folder = path or os.environ.get(FASHION_MNIST_ENV)
    if not folder:
        raise FileNotFoundError(f"no FashionMNIST folder: pass path or set {FASHION_MNIST_ENV}")
    prefix = "train" if split == "train" else "t10k"

    def find(kind):
        for name in (f"{prefix}-{kind}", f"{prefix}-{kind}.gz"):
            if (Path(folder) / name).exists():
                return Path(folder) / name
        raise FileNotFoundError(f"{Path(folder) / (prefix + '-' + kind)}[.gz] not found")

    images = read_idx(find("images-idx3-ubyte"))
    labels = read_idx(find("labels-idx1-ubyte"))
    if images.ndim != 3 or labels.shape != (images.shape[0],):
        raise ValueError(f"FashionMNIST files in {folder} have shapes {images.shape} and {labels.shape}")
    return images.reshape(len(images), -1).astype(np.float32) / 255.0, labels.astype(np.int64)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits (1797 images of 8 x 8, 10 classes; the ``digits`` extra):
    x [1797, 64] in [0, 1] and integer labels.

    Returns
    -------
    tuple of numpy.ndarray
        x [1797, 64] in [0, 1] and the integer labels [1797].

    Raises
    ------
    ImportError
        If scikit-learn (the ``digits`` extra) is not installed.
    """
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as error:
        raise ImportError("load_digits needs scikit-learn: pip install 'lawrob[digits]'") from error
    bunch = _load()
    return (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)
