"""Crash-safe result tables: one CSV part per process, replaced atomically after every group.

A part file is only ever replaced whole (write to a temporary file, fsync, ``os.replace``), so a sweep killed at
any moment leaves each part either before or after a group, never half-written. Rows are keyed by the run's
configuration hash; reading merges all parts and keeps one row per hash, so resuming never duplicates a row.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _cell(value) -> str:
    """CSV cell: empty for None (not computed / invalid), repr-exact floats, JSON for lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def parse_cell(text: str):
    """Inverse of ``_cell`` for the value types a sweep writes."""
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text


def to_csv(rows: list[dict], columns: list[str]) -> str:
    lines = []

    class _Sink:
        def write(self, s):
            lines.append(s)

    writer = csv.writer(_Sink(), lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return "".join(lines)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


class ResultStore:
    """The results of one sweep folder: ``parts/results-p<process>.csv`` plus the merged ``results.csv``."""

    def __init__(self, out_dir: str | Path, process: int = 0):
        self.out_dir = Path(out_dir)
        self.parts = self.out_dir / "parts"
        self.parts.mkdir(parents=True, exist_ok=True)
        self.own = self.parts / f"results-p{process}.csv"
        self.histories = self.parts / f"histories-p{process}.jsonl"

    def rows(self) -> list[dict]:
        """All finished rows of every process, one per configuration hash."""
        merged: dict[str, dict] = {}
        for part in sorted(self.parts.glob("results-p*.csv")):
            for row in read_csv(part):
                merged.setdefault(row["config_hash"], row)
        return list(merged.values())

    def done(self) -> set[str]:
        return {row["config_hash"] for row in self.rows()}

    def append(self, rows: list[dict], histories: dict[str, dict] | None = None) -> None:
        """Add finished rows (and their training histories) to this process's part, atomically."""
        if histories:
            old = self.history_records(own_only=True)
            old.update(histories)
            _atomic_write(self.histories, "".join(json.dumps({"config_hash": h, **v}) + "\n" for h, v in old.items()))
        existing = read_csv(self.own) if self.own.exists() else []
        known = {r["config_hash"] for r in existing}
        combined = existing + [r for r in rows if r["config_hash"] not in known]
        columns = list(dict.fromkeys(c for r in combined for c in r))
        _atomic_write(self.own, to_csv(combined, columns))

    def history_records(self, own_only: bool = False) -> dict[str, dict]:
        files = [self.histories] if own_only else sorted(self.parts.glob("histories-p*.jsonl"))
        out: dict[str, dict] = {}
        for path in files:
            if path.exists():
                for line in path.read_text().splitlines():
                    record = json.loads(line)
                    out[record.pop("config_hash")] = record
        return out

    def write_table(self, order: list[str] | None = None) -> Path:
        """Write the merged ``results.csv`` (and ``results.parquet`` when pyarrow is installed); rows follow ``order``
        (the grid's run hashes) when given."""
        rows = self.rows()
        if order is not None:
            rank = {h: i for i, h in enumerate(order)}
            rows.sort(key=lambda r: rank.get(r["config_hash"], len(rank)))
        columns = list(dict.fromkeys(c for r in rows for c in r))
        path = self.out_dir / "results.csv"
        _atomic_write(path, to_csv(rows, columns))
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            return path
        table = pa.table({c: [r.get(c) for r in rows] for c in columns})
        pq.write_table(table, self.out_dir / "results.parquet")
        return path
