"""Atomic file output: a file is written to a temporary name beside it, flushed to disk and renamed over the
target (``os.replace``), so a reader, or a process killed mid-write, sees the old file or the new one, never a
part of one. Temporary names are ``.<name>.tmp-<pid>``; ``remove_stale_temporaries`` clears those a killed
process left."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path to write ``path``'s new content to; on success it replaces ``path`` (after an
    fsync), on an exception it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            f.write(text)


def atomic_savefig(fig, path: str | Path, **options) -> Path:
    """``fig.savefig`` to ``path`` atomically (the format from the suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), **options)
    return path


def remove_stale_temporaries(folder: Path, names: tuple[str, ...] | None = None) -> list[Path]:
    """Remove the temporary files in ``folder`` left by killed writers (of the files ``names`` only, when given;
    of this process's own pid never, since it may be writing them)."""
    if not folder.is_dir():
        return []
    removed = []
    for tmp in folder.glob(".*.tmp-*"):
        target, _, pid = tmp.name[1:].rpartition(".tmp-")
        if (names is None or target in names) and pid != str(os.getpid()):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
