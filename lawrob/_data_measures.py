"""The input measures of ``lawrob.data``: Gaussian, spheres, the Boolean cube and mixtures, each with its
isoperimetric constant c (the module docstring of ``lawrob.data`` states the convention; import every name from
``lawrob.data``)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lawrob import _checks


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
