"""Loader for MMSA pickles (``aligned_50.pkl``, ``unaligned_50.pkl``, SIMS ``unaligned_39.pkl``).

Format from thuiar/MMSA (Yu et al., "CH-SIMS", ACL 2020; MMSA-FET, 2022): one pickle holding
``{"train", "valid", "test"}``, each a dict of numpy arrays: ``text`` (BERT features,
(N, L_t, 768)), ``text_bert`` ((N, 3, L_t): ids, attention mask, segment ids), ``audio``,
``vision``, ``regression_labels`` (N,) and/or ``classification_labels`` (N,), ``id`` and, in
unaligned files only, ``audio_lengths`` / ``vision_lengths``. See ``docs/data.md`` and
``FORMATS.md`` section 1.

Labels: ``regression_labels`` (regression) by default, ``classification_labels``
(classification, ``n_classes`` = largest label + 1) when it is the only one or when asked for
with ``task="classification"``; ``label_key`` picks any of :data:`LABEL_KEYS` (SIMS
``regression_labels_T/A/V`` included).

Text length is the BERT attention mask (``text_bert[:, 1]``); the text features of padded
positions are not zero, so non-zero rows cannot be used for text here. Aligned files (no
``*_lengths`` keys) give every modality the text length; unaligned files use the stored
lengths and infer the padding side per sample from the non-zero rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmalign.data.dataset import SPLIT_NAMES, MultimodalDataset, Split, TaskType
from mmalign.data.formats._common import (
    assemble,
    check_counts,
    choose_labels,
    float_array,
    int_lengths,
    move_valid_first,
    n_classes_of,
    nonzero_span,
    require_keys,
    split_labels,
    start_from_lengths,
    to_str_ids,
)
from mmalign.data.safe_pickle import load_pickle
from mmalign.validation import DataError

__all__ = ["load", "from_object", "looks_like_mmsa", "label_keys", "LABEL_KEYS"]

_MODALITIES = ("text", "audio", "vision")
# every label array an MMSA split may hold -> the task it gives, in order of preference
LABEL_KEYS: dict[str, TaskType] = {
    "regression_labels": "regression",
    "classification_labels": "classification",
    "regression_labels_T": "regression",
    "regression_labels_A": "regression",
    "regression_labels_V": "regression",
}
_MAIN_LABELS = ("regression_labels", "classification_labels")


def label_keys(split: Any) -> dict[str, TaskType]:
    """Map the label keys of :data:`LABEL_KEYS` held by the split dict ``split`` to their task.

    >>> label_keys({"classification_labels": [], "text": []})
    {'classification_labels': 'classification'}
    """
    if not isinstance(split, dict):
        return {}
    return {k: kind for k, kind in LABEL_KEYS.items() if k in split}


def looks_like_mmsa(obj: Any) -> bool:
    """Tell whether ``obj`` is a split dict whose splits carry regression or classification labels.

    >>> looks_like_mmsa({"train": {"regression_labels": []}})
    True
    >>> looks_like_mmsa({"train": {"classification_labels": []}})
    True
    """
    split = obj.get("train") if isinstance(obj, dict) else None
    return isinstance(split, dict) and any(k in split for k in _MAIN_LABELS)


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


def _split(raw: Any, where: str, split_name: str, key: str, task: TaskType) -> Split:
    require_keys(raw, ["text", "audio", "vision", key], where)
    n = int(np.shape(raw[key])[0]) if np.ndim(raw[key]) else 0
    labels = split_labels(raw[key], n, where, key, task)
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


def from_object(
    obj: Any,
    path: Path,
    *,
    task: TaskType | None = None,
    label_key: str | None = None,
) -> MultimodalDataset:
    """Build the dataset from an already unpickled MMSA object read from ``path``.

    ``task`` and ``label_key`` are as in :func:`load`.
    """
    require_keys(obj, list(SPLIT_NAMES), str(path))
    require_keys(obj["train"], [], f"{path} [train]")
    available = label_keys(obj["train"])
    if not available:
        raise DataError(
            f"{path} [train]: no label array: expected `regression_labels` or "
            f"`classification_labels`; found {sorted(map(str, obj['train']))}."
        )
    key, kind = choose_labels(available, str(path), task=task, label_key=label_key)
    splits = {s: _split(obj[s], f"{path} [{s}]", s, key, kind) for s in SPLIT_NAMES}
    n_classes = n_classes_of(splits) if kind == "classification" else None
    return assemble(splits, task=kind, n_classes=n_classes, path=path)


def load(
    path: str | Path,
    *,
    trusted: bool = False,
    task: TaskType | None = None,
    label_key: str | None = None,
) -> MultimodalDataset:
    """Load an MMSA pickle.

    Parameters
    ----------
    path : str or Path
        The ``.pkl`` file.
    trusted : bool
        Unpickle without restrictions.
    task : {None, "regression", "classification"}
        ``None``: ``regression_labels`` when the file has them, else ``classification_labels``.
        ``"regression"`` / ``"classification"``: the labels of that kind.
    label_key : str, optional
        One of :data:`LABEL_KEYS` held by the file (e.g. ``"classification_labels"``, SIMS
        ``"regression_labels_T"``); overrides the choice by ``task``.

    Returns
    -------
    MultimodalDataset
        Regression (float32 labels) or classification (int64 labels, ``n_classes`` = the
        largest label + 1); modalities ``text``, ``audio``, ``vision``.

    Raises
    ------
    DataError
        A ``label_key`` the file lacks (the message lists the ones it has), a ``task`` none
        of its labels gives, non-integer class labels, or a malformed file.
    """
    path = Path(path)
    return from_object(load_pickle(path, trusted=trusted), path, task=task, label_key=label_key)
