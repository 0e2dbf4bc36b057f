"""Where a run executes: its device and its number of CPU threads."""

from __future__ import annotations

import os

import torch

from mmalign.validation import ConfigError

__all__ = ["resolve_device", "resolve_threads", "apply_threads", "available_cores"]


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where known).

    >>> available_cores() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as given (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"`device` must be available on this machine; got {name!r} but CUDA is not."
        )
    return torch.device(name)


def resolve_threads(threads: int) -> int:
    """Torch CPU threads for a run: ``threads`` when > 0, else the automatic rule.

    The automatic rule is one thread. The models are small (width 32, batches of 32,
    sequences of 10-50 steps), so each operator call is short and a second thread mostly
    adds synchronisation. ``benchmarks/threads.py`` measured it on 2 cores: 2 threads were at
    best 1.2x faster on an idle machine, and 5-11x slower as soon as another process wanted
    the CPU, with bit-identical results. More threads paid only from width 128 and batch 128
    on a quiet machine (1.4-1.5x), so ``--threads N`` is left to users who know their model
    is large and their machine their own. The load average is not used: it lags by a minute
    and a run outlasts it.
    """
    return threads if threads > 0 else 1


def apply_threads(threads: int) -> int:
    """Set torch's intra-op threads by :func:`resolve_threads` (inter-op to 1); return the count."""
    n = resolve_threads(threads)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)  # the step makes no inter-op calls
    except RuntimeError:  # may be set only once per process, before parallel work
        pass
    return n
