"""Progress a person can follow: a tqdm bar on a terminal, plain ``logging`` lines with an ETA otherwise.

    with Progress(total=54, desc="sweep", unit="run") as bar:
        bar.phase("train")        # what the work is doing now (shown beside the bar / in the log line)
        bar.advance(3)            # three runs finished

Everything lawrob reports goes through the ``lawrob`` logger (``logging.getLogger("lawrob")``); the command line
sets its level with ``-q`` / ``-v``. A library user sees nothing unless they configure logging (or a terminal bar).
"""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["Progress", "configure_logging", "logger"]

logger = logging.getLogger("lawrob")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (a test's capture, a notebook's stream)."""

    _lawrob: bool  # set on lawrob's own handler (a marker, so configuring twice adds no second handler)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(verbosity: int = 0) -> None:
    """Send the ``lawrob`` logger to stderr: WARNING and above with ``verbosity < 0`` (``-q``), INFO at 0,
    DEBUG above (``-v``). Idempotent: a second call only changes the level.

    Parameters
    ----------
    verbosity : int
        -1 or less: WARNING; 0: INFO; 1 or more: DEBUG.
    """
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    logger.setLevel(level)
    if not any(getattr(h, "_lawrob", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._lawrob = True
        logger.addHandler(handler)


def _seconds(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Progress:
    """Count finished units of work out of ``total`` and say which phase is running.

    ``bar``: True for a tqdm bar, False for log lines, None (default) for a bar when stderr is a terminal and the
    logger would print INFO. Log lines (one per ``advance`` and per ``phase``) read
    ``sweep: 12/54 runs, phase upper bound, 1m03s elapsed, ETA 3m40s``; the ETA is the mean time per finished
    unit times the units left.

    Parameters
    ----------
    total : int
        The number of units of work.
    desc : str
        What is counted (the line's prefix).
    unit : str
        The unit's name.
    bar : bool, optional
        A tqdm bar, log lines, or (None) whichever suits stderr.
    """

    def __init__(self, total: int, desc: str, unit: str = "run", bar: bool | None = None):
        self.total, self.desc, self.unit = int(total), desc, unit
        self.done, self.current = 0, ""
        self.start = time.perf_counter()
        if bar is None:
            bar = sys.stderr.isatty() and logger.isEnabledFor(logging.INFO)
        self._bar = None
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def eta(self) -> float | None:
        if self.done == 0:
            return None
        return (time.perf_counter() - self.start) / self.done * (self.total - self.done)

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        eta = self.eta()
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit}s"]
        if self.current:
            parts.append(f"phase {self.current}")
        parts.append(f"{_seconds(elapsed)} elapsed")
        parts.append("ETA " + ("-" if eta is None else _seconds(eta)))
        return ", ".join(parts)

    def phase(self, name: str) -> None:
        self.current = name
        if self._bar is not None:
            self._bar.set_postfix_str(name)
        else:
            logger.info(self.line())

    def grow(self, count: int) -> None:
        """Add ``count`` units to ``total`` (work taken on while counting, e.g. a group claimed by this process)."""
        self.total += count
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
        else:
            logger.info(self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
