"""Where a run executes: its device and its number of CPU threads."""

from __future__ import annotations

import os

import torch

from mmalign.validation import ConfigError

__all__ = ["resolve_device", "resolve_threads", "available_cores"]


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
    adds synchronisation; on a busy machine torch's default (one thread per core) made runs
    10-12 times slower than one thread, with identical results. Measured in
    ``benchmarks/threads.py`` (see benchmarks/README.md); pass ``--threads N`` for larger
    models on an idle machine.
    """
    return threads if threads > 0 else 1
