"""Small shared timing helper: fixed thread count, min and median of repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Timing", "set_threads", "time_call", "format_table"]


@dataclass(frozen=True)
class Timing:
    """Seconds per call over `repeats` timed calls (after `warmup` untimed ones)."""

    min_s: float
    median_s: float
    repeats: int


def set_threads(threads: int) -> int:
    """Fix torch's intra-op thread count (timings are only comparable at one count)."""
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], *, repeats: int = 20, warmup: int = 3) -> Timing:
    """Time `fn()`; CUDA work is synchronised before each clock read."""
    for _ in range(warmup):
        fn()
    _sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync()
        samples.append(time.perf_counter() - start)
    return Timing(min(samples), statistics.median(samples), repeats)


def format_table(header: list[str], rows: list[list[object]]) -> str:
    """Render rows as a plain Markdown table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
