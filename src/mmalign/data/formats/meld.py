"""Loader for MELD as distributed with MM-Align: ``train/dev/test.pkl`` and ``embedding.p``.

Dataset: Poria et al., "MELD: A Multimodal Multi-Party Dataset for Emotion Recognition in
Conversations", ACL 2019; file layout from declare-lab/MM-Align (Han et al., EMNLP 2022).
Each pickle is a list of dicts with ``token_ids`` ((L_t,) rows of ``embedding.p``),
``video_features`` ((L_v, D_v)), ``audio_features`` ((L_a, D_a)) and ``label`` (int 0..6).
``embedding.p`` is a pickled (V, 300) array. The modalities are unaligned: each keeps its
own length. Classification with 7 classes; the only label key is ``label`` (no choice).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmalign.data.dataset import MultimodalDataset, Split, TaskType
from mmalign.data.formats._common import (
    assemble,
    check_label_args,
    choose_labels,
    class_labels,
    stack_ragged,
    to_str_ids,
)
from mmalign.data.formats.misa import embed, missing_file, read_split_files
from mmalign.data.safe_pickle import load_pickle
from mmalign.validation import DataError

__all__ = ["load", "EMBEDDING_FILE", "N_CLASSES", "REQUIRED_KEYS", "LABEL_KEYS"]

EMBEDDING_FILE = "embedding.p"
N_CLASSES = 7
REQUIRED_KEYS = ("token_ids", "video_features", "audio_features", "label")
LABEL_KEYS: dict[str, TaskType] = {"label": "classification"}


def _split(items: Any, table: np.ndarray, where: str, split_name: str) -> Split:
    columns: dict[str, list[Any]] = {k: [] for k in REQUIRED_KEYS}
    ids: list[Any] = []
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            raise DataError(f"{where}: sample {k} must be a dict; got {type(item).__name__}.")
        missing = [key for key in REQUIRED_KEYS if key not in item]
        if missing:
            raise DataError(f"{where}: sample {k} lacks key(s) {missing}; has {sorted(item)}.")
        for key in REQUIRED_KEYS:
            columns[key].append(item[key])
        ids.append(item.get("id", f"{split_name}_{k}"))
    token_ids = [np.asarray(t).reshape(-1) for t in columns["token_ids"]]  # N arrays of (L_t,)
    token_ids = [t.astype(np.int64) if t.size == 0 else t for t in token_ids]
    text, text_len = embed(token_ids, table, where)
    vision, vision_len = stack_ragged(columns["video_features"], where, "video_features")
    audio, audio_len = stack_ragged(columns["audio_features"], where, "audio_features")
    bad = [
        k
        for k, y in enumerate(columns["label"])
        if not isinstance(y, (int, float, np.integer, np.floating)) or isinstance(y, bool)
    ]
    if bad:
        label = columns["label"][bad[0]]
        raise DataError(f"{where}: each `label` must be one int; sample {bad[0]} has {label!r}.")
    return Split(
        features={"text": text, "vision": vision, "audio": audio},
        lengths={"text": text_len, "vision": vision_len, "audio": audio_len},
        labels=class_labels(np.asarray(columns["label"]), len(items), where, "label"),
        ids=to_str_ids(ids),
    )


def load(
    path: str | Path,
    *,
    trusted: bool = False,
    task: TaskType | None = None,
    label_key: str | None = None,
) -> MultimodalDataset:
    """Load an MM-Align MELD folder.

    Parameters
    ----------
    path : str or Path
        The folder holding ``train.pkl``, ``dev.pkl``, ``test.pkl`` and ``embedding.p`` (a
        path to one of its files also works).
    trusted : bool
        Unpickle without restrictions.
    task : {None, "classification"}
        The labels are classes; ``"regression"`` is a DataError.
    label_key : {None, "label"}
        The only label key of the format; any other is a DataError.

    Returns
    -------
    MultimodalDataset
        7-class classification; ``text``, ``vision``, ``audio`` with their own lengths.
    """
    given = Path(path)
    folder = given.parent if given.is_file() else given
    if not folder.is_dir():
        raise DataError(f"{given}: folder does not exist.")
    check_label_args(task, label_key)
    choose_labels(LABEL_KEYS, str(given), task=task, label_key=label_key)
    needed = f"train.pkl, dev.pkl, test.pkl and {EMBEDDING_FILE}"
    emb_file = folder / EMBEDDING_FILE
    if not emb_file.is_file():
        raise missing_file(given, emb_file, needed)
    table = np.asarray(load_pickle(emb_file, trusted=trusted))
    if table.ndim != 2 or not np.issubdtype(table.dtype, np.number):
        raise DataError(
            f"{emb_file}: expected a numeric (V, D) array; got {table.dtype} {table.shape}."
        )
    table = table.astype(np.float32)
    files = read_split_files(folder, trusted, given, needed)
    splits = {s: _split(items, table, str(file), s) for s, (file, items) in files.items()}
    return assemble(
        splits, task="classification", n_classes=N_CLASSES, path=folder, name=folder.name
    )
