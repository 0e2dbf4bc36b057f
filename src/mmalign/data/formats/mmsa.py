"""Loader for MMSA pickles (``aligned_50.pkl``, ``unaligned_50.pkl``, SIMS ``unaligned_39.pkl``).

Format from thuiar/MMSA (Yu et al., "CH-SIMS", ACL 2020; MMSA-FET, 2022): one pickle holding
``{"train", "valid", "test"}``, each a dict of numpy arrays: ``text`` (BERT features,
(N, L_t, 768)), ``text_bert`` ((N, 3, L_t): ids, attention mask, segment ids), ``audio``,
``vision``, ``regression_labels`` (N,), ``id`` and, in unaligned files only,
``audio_lengths`` / ``vision_lengths``. See ``docs/data.md`` and ``FORMATS.md`` section 1.

Text length is the BERT attention mask (``text_bert[:, 1]``); the text features of padded
positions are not zero, so non-zero rows cannot be used for text here. Aligned files (no
``*_lengths`` keys) give every modality the text length; unaligned files use the stored
lengths and infer the padding side per sample from the non-zero rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmalign.data.dataset import SPLIT_NAMES, MultimodalDataset, Split
from mmalign.data.formats._common import (
    assemble,
    check_counts,
    flat_labels,
    float_array,
    int_lengths,
    move_valid_first,
    nonzero_span,
    require_keys,
    start_from_lengths,
    to_str_ids,
)
from mmalign.data.safe_pickle import load_pickle
from mmalign.validation import DataError

__all__ = ["load", "from_object", "looks_like_mmsa"]

_MODALITIES = ("text", "audio", "vision")


def looks_like_mmsa(obj: Any) -> bool:
    """Tell whether ``obj`` is a split dict whose splits carry ``regression_labels``.

    >>> looks_like_mmsa({"train": {"regression_labels": []}})
    True
    """
    split = obj.get("train") if isinstance(obj, dict) else None
    return isinstance(split, dict) and "regression_labels" in split


def _text_span(raw: dict, text: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    if "text_bert" not in raw:
        return nonzero_span(text)
    bert = np.asarray(raw["text_bert"])
    n, steps = text.shape[:2]
    if bert.shape != (n, 3, steps):
        raise DataError(
            f"{where}: `text_bert` must have shape ({n}, 3, {steps}); got {bert.shape}."
        )
    mask = bert[:, 1, :] != 0  # (N, L_t) BERT attention mask
    start = np.where(mask.any(axis=1), np.argmax(mask, axis=1), 0).astype(np.int64)
    return start, mask.sum(axis=1).astype(np.int64)


def _split(raw: Any, where: str, split_name: str) -> Split:
    require_keys(raw, ["text", "audio", "vision", "regression_labels"], where)
    n = int(np.shape(raw["regression_labels"])[0]) if np.ndim(raw["regression_labels"]) else 0
    labels = flat_labels(raw["regression_labels"], n, where, "regression_labels")
    arrays = {m: float_array(raw[m], where, m, 3) for m in _MODALITIES}
    check_counts(arrays, n, where)
    text_start, text_len = _text_span(raw, arrays["text"], where)
    has_lengths = [k for k in ("audio_lengths", "vision_lengths") if k in raw]
    features: dict[str, np.ndarray] = {}
    lengths: dict[str, np.ndarray] = {}
    if not has_lengths:
        steps = {m: x.shape[1] for m, x in arrays.items()}
        if len(set(steps.values())) != 1:
            raise DataError(
                f"{where}: no `audio_lengths`/`vision_lengths` (an aligned file) but the padded "
                f"lengths differ: {steps}."
            )
        for m, x in arrays.items():  # aligned: one time axis, the text's
            features[m] = move_valid_first(x, text_start, text_len)
            lengths[m] = text_len.copy()
    else:
        require_keys(raw, ["audio_lengths", "vision_lengths"], where)
        features["text"] = move_valid_first(arrays["text"], text_start, text_len)
        lengths["text"] = text_len
        for m in ("audio", "vision"):
            x = arrays[m]
            length = int_lengths(raw[f"{m}_lengths"], n, x.shape[1], where, f"{m}_lengths")
            features[m] = move_valid_first(x, start_from_lengths(x, length), length)
            lengths[m] = length
    if "id" in raw:
        ids = to_str_ids(raw["id"])
        if ids.shape != (n,):
            raise DataError(f"{where}: `id` must have shape ({n},); got {np.shape(raw['id'])}.")
    else:
        ids = to_str_ids([f"{split_name}_{i}" for i in range(n)])
    return Split(features=features, lengths=lengths, labels=labels, ids=ids)


def from_object(obj: Any, path: Path) -> MultimodalDataset:
    """Build the dataset from an already unpickled MMSA object read from ``path``."""
    require_keys(obj, list(SPLIT_NAMES), str(path))
    splits = {s: _split(obj[s], f"{path} [{s}]", s) for s in SPLIT_NAMES}
    return assemble(splits, task="regression", path=path)


def load(path: str | Path, *, trusted: bool = False) -> MultimodalDataset:
    """Load an MMSA pickle.

    Parameters
    ----------
    path : str or Path
        The ``.pkl`` file.
    trusted : bool
        Unpickle without restrictions.

    Returns
    -------
    MultimodalDataset
        Regression on ``regression_labels``; modalities ``text``, ``audio``, ``vision``.
    """
    path = Path(path)
    return from_object(load_pickle(path, trusted=trusted), path)
