"""E6's guard on its sweep folder: a folder holding another grid's results is refused, never mixed or deleted."""

from __future__ import annotations

import csv
from pathlib import Path


class OtherGridResults(ValueError):
    """The sweep folder holds results of runs that are not E6's at these settings; nothing was changed."""


def other_grid_results(folder: Path, wanted) -> list[str]:
    """The configuration hashes in ``folder``'s results tables (``results.csv`` and the per-process parts under
    ``parts/``) that are not among ``wanted``: non-empty when the folder holds another grid's results (other
    seeds, scale or settings). Reads only; a missing folder or table holds nothing."""
    folder = Path(folder)
    found = set()
    for table in [folder / "results.csv", *sorted((folder / "parts").glob("results-p*.csv"))]:
        try:
            with open(table, newline="") as f:
                found |= {row.get("config_hash") or "" for row in csv.DictReader(f)}
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, csv.Error):
            continue  # unreadable: the sweep itself reports (and sets aside) damaged tables
    return sorted(h for h in found - set(wanted) if h)


def refuse_other_grid(folder: Path, wanted) -> None:
    """Raise ``OtherGridResults`` (naming the folder and what to do) if ``folder`` holds another grid's results:
    E6 never deletes results, and never mixes another grid's runs into its own."""
    other = other_grid_results(folder, wanted)
    if other:
        raise OtherGridResults(
            f"{folder} holds results of {len(other)} run(s) of another grid (other seeds, scale or settings than this "
            f"E6 run); refusing to mix them in or delete them: give another --out, or delete {folder} yourself")
