"""Crash-safe result tables: one CSV part per process, replaced atomically after every group.

A part file is only ever replaced whole (write to a temporary file, fsync, ``os.replace``), so a sweep killed at
any moment leaves each part either before or after a group, never half-written. Rows are keyed by the run's
configuration hash; reading merges all parts and keeps one row per hash, so resuming never duplicates a row.
Cells are parsed by their declared column type (``lawrob.sweep.columns``), never guessed.

A writer holds an exclusive lock on its part (``parts/lock-p<process>``, ``fcntl.flock``), so a second sweep
into the same folder is refused while the first runs; the processes of one ``jax.distributed`` sweep write
distinct parts and do not block each other. A part or history file that cannot be read whole (truncated,
garbled) is moved to ``parts/damaged/`` with a warning that names it; its readable rows are kept and the runs of
the rest are computed again.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lawrob._io import atomic_path, atomic_write_text, remove_stale_temporaries
from lawrob.progress import logger
from lawrob.sweep.columns import column_types

if TYPE_CHECKING:
    import pandas as pd

HASH = re.compile(r"[0-9a-f]{16}")


class DamagedFile(ValueError):
    """A results file that cannot be read whole; ``path`` names it.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    reason : str
        What is wrong with it.
    """

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class FolderLocked(ValueError):
    """Another process writes into this results folder."""


def _cell(value) -> str:
    """CSV cell: empty for None (not computed / invalid), repr-exact floats, JSON for lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return json.dumps([float(v) for v in value])
    return str(value)


def parse_cell(text: str, kind: str):
    """Inverse of ``_cell`` for a column of type ``kind`` (see ``lawrob.sweep.columns``); raises ValueError on a
    cell that is not of that type."""
    if kind == "str":
        return text
    if text == "":
        return None
    if kind == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"not a bool: {text!r}")
        return text == "true"
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "floats":
        values = json.loads(text)
        if not isinstance(values, list):
            raise ValueError(f"not a list: {text!r}")
        return [float(v) for v in values]
    raise ValueError(f"unknown column type {kind!r}")


def to_csv(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def read_rows(path: Path) -> tuple[list[dict], list[str]]:
    """(rows that parse whole, one reason per row that does not) of a results CSV; raises ``DamagedFile`` when
    the header is unreadable. A row is rejected when it has too few or too many cells, a cell is not of its
    column's type, or its ``config_hash`` is not 16 hex digits. Undeclared columns are read as text."""
    types = column_types()
    try:
        with open(path, newline="") as f:
            records = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DamagedFile(path, f"unreadable ({error})") from error
    if not records or "config_hash" not in records[0]:
        raise DamagedFile(path, "no header with a config_hash column")
    header, rows, bad = records[0], [], []
    for line, cells in enumerate(records[1:], start=2):
        if len(cells) != len(header):
            bad.append(f"line {line}: {len(cells)} cells, the header has {len(header)}")
            continue
        try:
            row = {c: parse_cell(v, types.get(c, "str")) for c, v in zip(header, cells)}
        except (ValueError, json.JSONDecodeError) as error:
            bad.append(f"line {line}: {error}")
            continue
        if not HASH.fullmatch(row["config_hash"]):
            bad.append(f"line {line}: config_hash {row['config_hash']!r} is not 16 hex digits")
            continue
        rows.append(row)
    return rows, bad


def read_csv(path: str | Path) -> list[dict]:
    """The rows of a results CSV, typed by column; raises ``DamagedFile`` naming the file if any row is damaged.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file.

    Returns
    -------
    list of dict
        The typed rows.

    Raises
    ------
    DamagedFile
        If a row is damaged.
    """
    rows, bad = read_rows(Path(path))
    if bad:
        raise DamagedFile(Path(path), "; ".join(bad[:3]) + (f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""))
    return rows


def read_histories(path: Path) -> tuple[dict[str, dict], list[str]]:
    """(config hash -> history, one reason per unreadable line) of a ``histories-p*.jsonl`` file."""
    out, bad = {}, []
    for line, text in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        try:
            record = json.loads(text)
            h = record.pop("config_hash")
            if not isinstance(h, str) or not HASH.fullmatch(h):
                raise ValueError(f"config_hash {h!r} is not 16 hex digits")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            bad.append(f"line {line}: {error}")
            continue
        out[h] = record
    return out, bad


def _lock(path: Path):
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise FolderLocked(f"out_dir {path.parent.parent} is in use by {holder} (lock {path}); wait for it to "
                           "finish or choose another output folder") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    return handle


class ResultStore:
    """The results of one sweep folder: ``parts/results-p<process>.csv`` plus the merged ``results.csv``.

    ``writer=True`` takes this process's lock (released by ``close``, or when the process ends), removes this
    process's stale temporary files, and sets damaged files aside. Use as a context manager.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The results folder.
    process : int
        This process's index.
    writer : bool
        Take the lock and write.

    Raises
    ------
    FolderLocked
        If ``writer`` and another process holds the lock.
    """

    def __init__(self, out_dir: str | Path, process: int = 0, writer: bool = False):
        self.out_dir = Path(out_dir)
        self.parts = self.out_dir / "parts"
        self.process = process
        self.own = self.parts / f"results-p{process}.csv"
        self.histories = self.parts / f"histories-p{process}.jsonl"
        self._lock = None
        if writer:
            self.parts.mkdir(parents=True, exist_ok=True)
            self._lock = _lock(self.parts / f"lock-p{process}")
            remove_stale_temporaries(self.parts, (self.own.name, self.histories.name))
            if process == 0:
                remove_stale_temporaries(self.out_dir)
                remove_stale_temporaries(self.out_dir / "figures")
            self._set_aside_damaged()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _set_aside_damaged(self) -> None:
        """Move a damaged own part or history file to ``parts/damaged/`` and rewrite it from its readable rows."""
        for path, reader, writer in ((self.own, read_rows, self._write_part),
                                     (self.histories, read_histories, self._write_histories)):
            if not path.exists():
                continue
            try:
                good, bad = reader(path)
            except DamagedFile as error:
                good, bad = ([] if path == self.own else {}), [error.reason]
            if not bad:
                continue
            damaged = self.parts / "damaged"
            damaged.mkdir(exist_ok=True)
            target = damaged / f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
            os.replace(path, target)
            logger.warning(f"damaged results file {path} ({len(bad)} unreadable: {bad[0]}) moved to {target}; "
                           f"{len(good)} readable entries kept, the runs of the others will be computed again")
            writer(good)  # type: ignore[arg-type]  # each writer gets its own reader's type (rows / histories)

    def _write_part(self, rows: list[dict]) -> None:
        columns = list(dict.fromkeys(c for r in rows for c in r))
        atomic_write_text(self.own, to_csv(rows, columns or ["config_hash"]))

    def _write_histories(self, records: dict[str, dict]) -> None:
        atomic_write_text(self.histories, "".join(json.dumps({"config_hash": h, **v}) + "\n" for h, v in records.items()))

    def _part_rows(self, part: Path) -> list[dict]:
        rows, bad = read_rows(part)
        if bad:
            logger.warning(f"{part}: {len(bad)} damaged row(s) skipped ({bad[0]}); they are computed again on resume")
        return rows

    def rows(self) -> list[dict]:
        """All finished rows of every process, one per configuration hash."""
        merged: dict[str, dict] = {}
        for part in sorted(self.parts.glob("results-p*.csv")):
            for row in self._part_rows(part):
                merged.setdefault(row["config_hash"], row)
        return list(merged.values())

    def done(self) -> set[str]:
        """Hashes of finished runs: a row and its training history both stored."""
        return {row["config_hash"] for row in self.rows()} & set(self.history_records())

    def append(self, rows: list[dict], histories: dict[str, dict]) -> None:
        """Add finished rows and their training histories to this process's part, atomically (history first,
        so a row never exists without its history); a row with a known hash replaces the old one."""
        old = self.history_records(own_only=True)
        self._write_histories(old | histories)
        existing = self._part_rows(self.own) if self.own.exists() else []
        new = {r["config_hash"] for r in rows}
        self._write_part([r for r in existing if r["config_hash"] not in new] + rows)

    def history_records(self, own_only: bool = False) -> dict[str, dict]:
        files = [self.histories] if own_only else sorted(self.parts.glob("histories-p*.jsonl"))
        out: dict[str, dict] = {}
        for path in files:
            if path.exists():
                records, bad = read_histories(path)
                if bad:
                    logger.warning(f"{path}: {len(bad)} damaged line(s) skipped ({bad[0]})")
                out.update(records)
        return out

    def write_table(self, order: list[str] | None = None) -> Path:
        """Write the merged ``results.csv`` (and ``results.parquet`` when pyarrow is installed) atomically; rows
        follow ``order`` (the grid's run hashes) when given."""
        rows = self.rows()
        if order is not None:
            rank = {h: i for i, h in enumerate(order)}
            rows.sort(key=lambda r: rank.get(r["config_hash"], len(rank)))
        columns = list(dict.fromkeys(c for r in rows for c in r))
        path = self.out_dir / "results.csv"
        atomic_write_text(path, to_csv(rows, columns))
        write_parquet(rows, columns, self.out_dir / "results.parquet")
        return path


def _arrow_type(pa, kind: str):
    return {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
            "floats": pa.list_(pa.float64())}[kind]


def write_parquet(rows: list[dict], columns: list[str], path: Path) -> bool:
    """Write the rows to Parquet with a declared schema (every column typed, also an all-empty one), atomically;
    False when pyarrow is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    types = column_types()
    schema = pa.schema([(c, _arrow_type(pa, types.get(c, "str"))) for c in columns])
    values = {c: [r.get(c) for r in rows] for c in columns}
    table = pa.table(values, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return True



_PANDAS_DTYPES = {"str": "string", "int": "Int64", "float": "Float64", "bool": "boolean", "floats": "object"}


def load(out_dir: str | Path) -> pd.DataFrame:
    """The results table of a sweep folder as a pandas DataFrame, each column in its declared type: pandas'
    nullable dtypes (``string``, ``Int64``, ``Float64``, ``boolean``; lists as ``object``), so a value that was
    not computed is ``pd.NA``, never a NaN or a guessed type. Reads ``results.csv``; raises ``DamagedFile``
    naming the file if a row is damaged.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The results folder.

    Returns
    -------
    pandas.DataFrame
        The typed table.

    Raises
    ------
    DamagedFile
        If a row is damaged.
    """
    import pandas as pd

    path = Path(out_dir) / "results.csv"
    if not path.is_file():
        raise ValueError(f"out_dir {out_dir} holds no results.csv: run `lawrob sweep` there first")
    rows = read_csv(path)
    with open(path, newline="") as f:
        columns = next(csv.reader(f))
    types = column_types()
    frame = pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=_PANDAS_DTYPES[types.get(c, "str")])
                          for c in columns})
    return frame
