"""Checkpoints: atomic writes, weights-only loads.

A checkpoint holds plain tensors, numbers and strings only, so it loads with
``torch.load(weights_only=True)`` and never runs code from the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from mmalign.validation import DataError

__all__ = ["atomic_write_bytes", "save_checkpoint", "load_checkpoint"]


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it into place.

    A crash leaves either the old file or the new one, never a partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    path: Path, states: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any]
) -> None:
    """Save best states per setting plus JSON-like metadata, atomically."""
    atomic_write_bytes(Path(path), lambda f: torch.save({"states": states, "meta": meta}, f))


def load_checkpoint(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint` (weights only, on CPU)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint file does not exist.")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupted, truncated or not a weights-only file
        raise DataError(
            f"{path}: not a readable mmalign checkpoint ({type(err).__name__}: {err})."
        ) from None
    if not isinstance(blob, dict) or "states" not in blob:
        raise DataError(f"{path}: not an mmalign checkpoint (no 'states' entry).")
    return blob["states"], blob.get("meta", {})
