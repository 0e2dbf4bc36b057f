"""The non-finite feature rule: NaN, +inf and -inf become 0, counted per modality.

Real COVAREP audio holds ``-inf`` (log of zero energy) and some files hold NaN. Every loader
applies :func:`clean_nonfinite` to its feature arrays, adds the counts up over the splits
and calls :func:`warn_cleaning` once, so a load emits at most one warning; the counts are
stored in ``MultimodalDataset.cleaning``.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["CLEANING_RULE", "clean_nonfinite", "merge_counts", "warn_cleaning"]

CLEANING_RULE = "NaN, +inf and -inf feature values are replaced by 0"


def clean_nonfinite(x: np.ndarray) -> int:
    """Replace NaN and +-inf in ``x`` by 0 in place; return how many values were replaced.

    Parameters
    ----------
    x : ndarray, shape (N, L, D)
        Floating-point features (any shape works).

    Returns
    -------
    int
        Number of replaced values.

    >>> a = np.array([1.0, np.nan, -np.inf, np.inf], dtype=np.float32)
    >>> clean_nonfinite(a), a.tolist()
    (3, [1.0, 0.0, 0.0, 0.0])
    """
    bad = ~np.isfinite(x)
    count = int(bad.sum())
    if count:
        x[bad] = 0
    return count


def merge_counts(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    """Add ``more`` into ``total`` (in place) and return it.

    >>> merge_counts({"audio": 2}, {"audio": 1, "text": 0})
    {'audio': 3, 'text': 0}
    """
    for key, value in more.items():
        total[key] = total.get(key, 0) + int(value)
    return total


def warn_cleaning(counts: dict[str, int], where: str) -> None:
    """Issue one ``UserWarning`` summarising the replaced values, if there were any.

    Parameters
    ----------
    counts : dict[str, int]
        Replaced values per modality (summed over splits).
    where : str
        File or folder the data came from.
    """
    nonzero = {m: n for m, n in counts.items() if n}
    if nonzero:
        detail = ", ".join(f"{m}: {n}" for m, n in nonzero.items())
        warnings.warn(f"{where}: {CLEANING_RULE} ({detail}).", UserWarning, stacklevel=3)
