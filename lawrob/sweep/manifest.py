"""What a results folder says about itself: ``manifest.json`` (who computed it, with what, when) and
``grids/<id>.json`` (every grid whose runs it holds).

The manifest has one entry per ``sweep.run`` session: lawrob, Python, jax, jaxlib, numpy and optax versions,
the JAX backend and devices, the process count, the git commit of the lawrob source when it runs from a
checkout (with ``dirty`` when it has uncommitted changes), start and end time, the grid's id and how many runs
the session computed.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path

from lawrob._io import atomic_write_text


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> dict | None:
    """{"commit", "dirty"} of the checkout lawrob runs from, or None (an installed wheel, no git)."""
    source = Path(__file__).resolve().parents[2]
    if not (source / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Versions, backend and devices of this process."""
    import jax

    import lawrob

    return {"lawrob": lawrob.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "processor": cpu_model(),
            **{p: _version(p) for p in ("jax", "jaxlib", "numpy", "optax", "scipy")},
            "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "process_count": jax.process_count(), "git": git_commit()}


def record_grid(out_dir: Path, grid, grid_id: str) -> Path:
    """Write ``grids/<grid_id>.json`` (the grid's ``spec``) unless it is there."""
    path = Path(out_dir) / "grids" / f"{grid_id}.json"
    if not path.exists():
        atomic_write_text(path, json.dumps(grid.spec(), indent=2, sort_keys=True) + "\n")
    return path


def grids(out_dir: Path) -> dict[str, dict]:
    """{grid id: spec} of every grid recorded in ``out_dir``."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((Path(out_dir) / "grids").glob("*.json"))}


def read(out_dir: Path) -> dict:
    path = Path(out_dir) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {"sessions": []}


def record_session(out_dir: Path, grid_id: str, started: str, ran: int) -> dict:
    """Append this session to ``manifest.json`` (atomically) and return the manifest."""
    data = read(out_dir)
    data["sessions"].append({"grid": grid_id, "started": started, "finished": now(), "runs_computed": ran,
                             **environment()})
    atomic_write_text(Path(out_dir) / "manifest.json", json.dumps(data, indent=2) + "\n")
    return data
