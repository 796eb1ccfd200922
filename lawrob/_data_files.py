"""Local image data for ``lawrob.data`` (experiment E2): IDX files, FashionMNIST and scikit-learn's digits.
Nothing is downloaded: files are read from a path the user gives (import every name from ``lawrob.data``)."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from lawrob import _checks

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
