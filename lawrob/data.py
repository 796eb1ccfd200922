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
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from lawrob import _checks
from lawrob._data_files import FASHION_MNIST_ENV, load_digits, load_fashion_mnist, read_idx
from lawrob._data_measures import MEASURES, BooleanCube, EmbeddedSphere, Gaussian, Mixture, Sphere, check_measure
from lawrob.nets import MLP

__all__ = [
    "FASHION_MNIST_ENV", "MEASURES", "NOISES", "TARGETS", "BooleanCube", "Dataset", "EmbeddedSphere", "Gaussian",
    "Mixture", "Sphere", "check_dataset", "check_measure", "from_arrays", "load_digits", "load_fashion_mnist",
    "make_dataset", "read_idx", "teacher",
]


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
