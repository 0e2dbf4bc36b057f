"""Loader for MulT / CMU ``processed_data`` pickles (``mosi_data.pkl``, ``*_noalign.pkl``).

Format from yaohungt/Multimodal-Transformer (Tsai et al., "Multimodal Transformer for
Unaligned Multimodal Language Sequences", ACL 2019): one pickle holding
``{"train", "valid", "test"}``, each a dict with ``text`` (GloVe, (N, L_t, 300)), ``audio``,
``vision``, ``labels`` ((N, 1, 1)) and usually ``id`` ((N, 3) bytes or str). Sequences are
**left** zero-padded; we find each sample's valid steps from its non-zero rows (per sample,
never assuming the side) and move them first.

Aligned files (every modality padded to the same length and no ``noalign`` in the file name)
give all modalities the text span, so pairs sit on one time axis. The IEMOCAP file's
multi-label ``labels`` (N, 4, 2) are refused: multi-label emotion is out of scope. The only
label array is ``labels`` (sentiment, regression): there is no label choice.
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
    flat_labels,
    float_array,
    move_valid_first,
    nonzero_span,
    require_keys,
    to_str_ids,
)
from mmalign.data.safe_pickle import load_pickle
from mmalign.validation import DataError

__all__ = ["load", "from_object", "looks_like_mult", "mult_ids", "LABEL_KEYS"]

_MODALITIES = ("text", "audio", "vision")
LABEL_KEYS: dict[str, TaskType] = {"labels": "regression"}


def looks_like_mult(obj: Any) -> bool:
    """Tell whether ``obj`` is a split dict whose splits carry ``labels`` and ``text``.

    >>> looks_like_mult({"train": {"labels": [], "text": []}})
    True
    """
    split = obj.get("train") if isinstance(obj, dict) else None
    return isinstance(split, dict) and "labels" in split and "text" in split


def mult_ids(raw_ids: Any, n: int, where: str) -> np.ndarray:
    """Ids from MulT's ``(N, 3)`` rows: column 0 when unique, else the three joined by ``|``.

    >>> mult_ids(np.array([[b"v_1", b"0", b"1"], [b"v_2", b"0", b"2"]]), 2, "f").tolist()
    ['v_1', 'v_2']
    >>> mult_ids(np.array([["v", "0.0", "1.5"], ["v", "1.5", "3.0"]]), 2, "f").tolist()
    ['v|0.0|1.5', 'v|1.5|3.0']
    """
    array = np.asarray(raw_ids)
    if array.ndim == 1 and array.shape == (n,):
        return to_str_ids(array)
    if array.ndim != 2 or array.shape[0] != n:
        raise DataError(f"{where}: `id` must have shape ({n}, 3) or ({n},); got {array.shape}.")
    columns = [to_str_ids(array[:, j]) for j in range(array.shape[1])]
    if len(set(columns[0])) == n:
        return columns[0]
    joined = np.empty(n, dtype=object)
    joined[:] = ["|".join(parts) for parts in zip(*columns)]
    return joined


def _split(raw: Any, where: str, split_name: str, aligned_name: bool) -> Split:
    require_keys(raw, ["text", "audio", "vision", "labels"], where)
    raw_labels = np.asarray(raw["labels"])
    if raw_labels.ndim == 3 and raw_labels.shape[1:] == (4, 2):
        raise DataError(
            f"{where}: `labels` of shape {raw_labels.shape} are IEMOCAP multi-label emotions, "
            "which mmalign does not support (single-label regression or classification only)."
        )
    n = int(raw_labels.shape[0]) if raw_labels.ndim else 0
    labels = flat_labels(raw_labels, n, where, "labels")
    arrays = {m: float_array(raw[m], where, m, 3) for m in _MODALITIES}
    check_counts(arrays, n, where)
    aligned = aligned_name and len({x.shape[1] for x in arrays.values()}) == 1
    features: dict[str, np.ndarray] = {}
    lengths: dict[str, np.ndarray] = {}
    text_start, text_len = nonzero_span(arrays["text"])
    for m, x in arrays.items():
        start, length = (text_start, text_len) if aligned else nonzero_span(x)
        features[m] = move_valid_first(x, start, length)
        lengths[m] = length.copy()
    if "id" in raw:
        ids = mult_ids(raw["id"], n, where)
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
    """Build the dataset from an already unpickled MulT object read from ``path``.

    ``task`` and ``label_key`` are as in :func:`load`.
    """
    choose_labels(LABEL_KEYS, str(path), task=task, label_key=label_key)
    require_keys(obj, list(SPLIT_NAMES), str(path))
    aligned_name = "noalign" not in path.name.lower()
    splits = {s: _split(obj[s], f"{path} [{s}]", s, aligned_name) for s in SPLIT_NAMES}
    return assemble(splits, task="regression", path=path)


def load(
    path: str | Path,
    *,
    trusted: bool = False,
    task: TaskType | None = None,
    label_key: str | None = None,
) -> MultimodalDataset:
    """Load a MulT pickle.

    Parameters
    ----------
    path : str or Path
        ``<data>_data.pkl`` (aligned) or ``<data>_data_noalign.pkl``.
    trusted : bool
        Unpickle without restrictions.
    task : {None, "regression"}
        The file holds regression labels only; ``"classification"`` is a DataError.
    label_key : {None, "labels"}
        The only label key of the format; any other is a DataError.

    Returns
    -------
    MultimodalDataset
        Regression on ``labels``; modalities ``text``, ``audio``, ``vision``.
    """
    path = Path(path)
    choose_labels(LABEL_KEYS, str(path), task=task, label_key=label_key)  # before unpickling
    return from_object(load_pickle(path, trusted=trusted), path, task=task, label_key=label_key)
