"""Loader for MELD as distributed with MM-Align: ``train/dev/test.pkl`` and ``embedding.p``.

Dataset: Poria et al., "MELD: A Multimodal Multi-Party Dataset for Emotion Recognition in
Conversations", ACL 2019; file layout from declare-lab/MM-Align (Han et al., EMNLP 2022).
Each pickle is a list of dicts with ``token_ids`` ((L_t,) rows of ``embedding.p``),
``video_features`` ((L_v, D_v)), ``audio_features`` ((L_a, D_a)) and ``label`` (int 0..6).
``embedding.p`` is a pickled (V, 300) array. The modalities are unaligned: each keeps its
own length. Classification with 7 classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.data.formats._common import assemble, stack_ragged, to_str_ids
from mmalign.data.formats.misa import embed, read_split_files
from mmalign.data.safe_pickle import load_pickle
from mmalign.validation import DataError

__all__ = ["load", "EMBEDDING_FILE", "N_CLASSES", "REQUIRED_KEYS"]

EMBEDDING_FILE = "embedding.p"
N_CLASSES = 7
REQUIRED_KEYS = ("token_ids", "video_features", "audio_features", "label")


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
        if not isinstance(y, (int, np.integer)) or isinstance(y, bool)
    ]
    if bad:
        label = columns["label"][bad[0]]
        raise DataError(f"{where}: each `label` must be one int; sample {bad[0]} has {label!r}.")
    raw = np.asarray(columns["label"], dtype=np.int64)
    return Split(
        features={"text": text, "vision": vision, "audio": audio},
        lengths={"text": text_len, "vision": vision_len, "audio": audio_len},
        labels=raw.astype(np.int64),
        ids=to_str_ids(ids),
    )


def load(path: str | Path, *, trusted: bool = False) -> MultimodalDataset:
    """Load an MM-Align MELD folder.

    Parameters
    ----------
    path : str or Path
        The folder holding ``train.pkl``, ``dev.pkl``, ``test.pkl`` and ``embedding.p``.
    trusted : bool
        Unpickle without restrictions.

    Returns
    -------
    MultimodalDataset
        7-class classification; ``text``, ``vision``, ``audio`` with their own lengths.
    """
    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    if not folder.is_dir():
        raise DataError(f"{folder}: folder does not exist.")
    emb_file = folder / EMBEDDING_FILE
    table = np.asarray(load_pickle(emb_file, trusted=trusted))
    if table.ndim != 2 or not np.issubdtype(table.dtype, np.number):
        raise DataError(
            f"{emb_file}: expected a numeric (V, D) array; got {table.dtype} {table.shape}."
        )
    table = table.astype(np.float32)
    files = read_split_files(folder, trusted)
    splits = {s: _split(items, table, str(file), s) for s, (file, items) in files.items()}
    return assemble(
        splits, task="classification", n_classes=N_CLASSES, path=folder, name=folder.name
    )
