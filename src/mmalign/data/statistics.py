"""Per-feature statistics of a modality over valid steps (for input standardisation)."""

from __future__ import annotations

import numpy as np

from mmalign.data.dataset import Split

__all__ = ["step_statistics"]


def step_statistics(
    split: Split, modality: str, rows: np.ndarray | None = None, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each feature over the valid steps of ``rows``.

    Parameters
    ----------
    split : Split
    modality : str
    rows : ndarray of int, optional
        Samples to use (default: all). A run passes the training samples that hold the
        modality, so no statistic comes from validation, test or absent data.
    valid : ndarray of bool, shape (N, L), optional
        The steps to use, for all ``N`` samples of the split (default: the steps inside each
        length). The random-missing protocol passes its readable steps: no statistic comes
        from an absent modality or a dropped step.

    Returns
    -------
    mean, std : ndarray, shape (D,)
        float32; ``std`` is 1 where a feature is constant (or no step is valid).

    Examples
    --------
    >>> x = np.array([[[1.0], [3.0], [0.0]]], np.float32)
    >>> s = Split({"a": x}, {"a": np.array([2])}, np.zeros(1, np.float32), np.array(["0"]))
    >>> [v.tolist() for v in step_statistics(s, "a")]
    [[2.0], [1.0]]
    """
    x = split.features[modality]  # (N, L, D)
    if valid is None:
        lengths = split.lengths[modality]  # (N,)
        valid = np.arange(x.shape[1])[None, :] < lengths[:, None]  # (N, L)
    if rows is not None:
        x, valid = x[rows], valid[rows]
    steps = x[valid].astype(np.float64)  # (S, D)
    if steps.shape[0] == 0:
        return np.zeros(x.shape[2], np.float32), np.ones(x.shape[2], np.float32)
    mean, std = steps.mean(0), steps.std(0)
    std = np.where(std > 1e-8 * np.maximum(np.abs(mean), 1.0), std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)
