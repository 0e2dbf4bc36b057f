"""Loader for declare-lab list pickles (MISA, BBFN, MM-Align): ``train/dev/test.pkl``.

Format written by declare-lab's ``create_dataset.py`` (Hazarika et al., "MISA", ACM MM 2020;
Han et al., "BBFN", ICMI 2021; Han et al., "MM-Align", EMNLP 2022): each pickle is a list
of ``((words, visual, acoustic, actual_words), label, segment)`` with word ids ``(L,)``,
word-aligned ``visual (L, D_v)`` and ``acoustic (L, D_a)``, ``label`` of shape (1, 1) (MOSI)
or (1, 7) (MOSEI: column 0 is sentiment) and ``segment`` ``"<video_id>[<k>]"``. Text vectors
come from ``embedding_and_mapping.pt`` (``torch.save((pretrained_emb, word2id))``): ids ->
rows of ``pretrained_emb (V, 300)``. All modalities share the word axis, so one length each.

Labels: column 0 (sentiment) by default; with MOSEI's (1, 7) labels ``label_key`` may name
another column of :data:`MOSEI_LABEL_COLUMNS` (the emotion intensities, also regression).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmalign.data.dataset import MultimodalDataset, Split, TaskType
from mmalign.data.formats._common import (
    MOSEI_LABEL_COLUMNS,
    assemble,
    check_label_args,
    choose_labels,
    pad_ragged,
    stack_ragged,
    to_str_ids,
)
from mmalign.data.safe_pickle import load_pickle, load_torch_tensors
from mmalign.validation import DataError

__all__ = [
    "load",
    "SPLIT_FILES",
    "EMBEDDING_FILE",
    "read_split_files",
    "embed",
    "label_columns",
    "missing_file",
]

# file stem -> canonical split name
SPLIT_FILES: dict[str, str] = {"train": "train", "dev": "valid", "test": "test"}
EMBEDDING_FILE = "embedding_and_mapping.pt"


def missing_file(given: Path, file: Path, needed: str) -> DataError:
    """Build the error for a missing file: names the path the user gave and what was looked for.

    >>> str(missing_file(Path("d"), Path("d/dev.pkl"), "train.pkl, dev.pkl, test.pkl"))
    'd: missing d/dev.pkl (looked for train.pkl, dev.pkl, test.pkl in d).'
    """
    return DataError(f"{given}: missing {file} (looked for {needed} in {file.parent}).")


def read_split_files(
    folder: Path, trusted: bool, given: Path | None = None, needed: str | None = None
) -> dict[str, tuple[Path, Any]]:
    """Unpickle ``train.pkl``, ``dev.pkl`` and ``test.pkl``; canonical split -> (file, list).

    A missing file is reported against ``given`` (the path the user gave; default ``folder``)
    with ``needed`` (what the format looks for; default the three pickles).
    """
    for stem in SPLIT_FILES:
        file = folder / f"{stem}.pkl"
        if not file.is_file():
            raise missing_file(given or folder, file, needed or "train.pkl, dev.pkl, test.pkl")
    out: dict[str, tuple[Path, Any]] = {}
    for stem, split in SPLIT_FILES.items():
        file = folder / f"{stem}.pkl"
        items = load_pickle(file, trusted=trusted)
        if not isinstance(items, (list, tuple)):
            raise DataError(f"{file}: expected a list of samples; got {type(items).__name__}.")
        if not items:
            raise DataError(f"{file}: the split is empty (0 samples).")
        out[split] = (file, items)
    return out


def embed(ids: list[np.ndarray], table: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Look word ids up in ``table (V, D)``; return padded ``(N, L, D)`` vectors and lengths."""
    lengths = np.array([np.size(i) for i in ids], dtype=np.int64)
    if not lengths.sum():
        return pad_ragged([np.zeros((0, table.shape[1]))] * len(ids), table.shape[1])
    # empty samples (all speech pauses) may be float arrays: leave them out of the dtype check
    flat = np.concatenate([np.asarray(i).reshape(-1) for i in ids if np.size(i)])  # (total,)
    if not np.issubdtype(flat.dtype, np.integer) or flat.min() < 0 or flat.max() >= table.shape[0]:
        raise DataError(
            f"{where}: word ids must be integers in [0, {table.shape[0]}) (the embedding rows); "
            f"got {flat.dtype} in [{flat.min()}, {flat.max()}]."
        )
    vectors = table[flat.astype(np.int64)]  # (total, D)
    pieces = np.split(vectors, np.cumsum(lengths)[:-1])  # N arrays of (L_i, D)
    return pad_ragged(pieces, table.shape[1])


def label_columns(items: Any) -> dict[str, TaskType]:
    """Label columns of a split (from its first sample): all of MOSEI's 7, else sentiment.

    >>> list(label_columns([(None, np.zeros((1, 1)), "v[0]")]))
    ['sentiment']
    """
    try:
        width = int(np.size(items[0][1]))
    except (TypeError, IndexError, KeyError, ValueError):
        width = 1
    names = MOSEI_LABEL_COLUMNS if width == len(MOSEI_LABEL_COLUMNS) else MOSEI_LABEL_COLUMNS[:1]
    return {name: "regression" for name in names}


def _labels(raw: list[Any], where: str, column: int = 0) -> np.ndarray:
    try:
        arrays = [np.asarray(label, dtype=np.float32) for label in raw]
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: labels must be numeric (1, 1) or (1, 7) arrays.") from err
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1 or not shapes <= {(1, 1), (1, 7), (1,), ()}:
        raise DataError(f"{where}: labels must be (1, 1) or (1, 7) arrays; got {sorted(shapes)}.")
    stacked = np.stack(arrays).reshape(len(arrays), -1)  # (N, 1) or (N, 7)
    if column >= stacked.shape[1]:
        raise DataError(
            f"{where}: `label_key` {MOSEI_LABEL_COLUMNS[column]!r} needs (1, 7) MOSEI labels; "
            f"got {sorted(shapes)}."
        )
    labels = stacked[:, column].astype(np.float32)  # MOSEI: column 0 is sentiment
    if not np.isfinite(labels).all():
        raise DataError(f"{where}: labels hold {(~np.isfinite(labels)).sum()} non-finite value(s).")
    return labels


def _split(items: Any, table: np.ndarray, where: str, column: int = 0) -> Split:
    words, visual, acoustic, raw_labels, segments = [], [], [], [], []
    for k, item in enumerate(items):
        try:
            feats, label, segment = item
            w, v, a = feats[0], feats[1], feats[2]
        except (TypeError, ValueError, IndexError, KeyError) as err:
            raise DataError(
                f"{where}: sample {k} is not ((words, visual, acoustic, actual_words), label, "
                f"segment)."
            ) from err
        if not isinstance(w, np.ndarray):
            raise DataError(
                f"{where}: sample {k} has no word-id array (words is {type(w).__name__}; the "
                "MMIM variant of this format carries no word ids and is not supported)."
            )
        words.append(w)
        visual.append(v)
        acoustic.append(a)
        raw_labels.append(label)
        segments.append(segment)
    text, length = embed(words, table, where)
    vision, vision_len = stack_ragged(visual, where, "visual")
    audio, audio_len = stack_ragged(acoustic, where, "acoustic")
    mismatch = (vision_len != length) | (audio_len != length)
    if mismatch.any():
        k = int(np.argmax(mismatch))
        raise DataError(
            f"{where}: sample {k} has {length[k]} words but {vision_len[k]} visual and "
            f"{audio_len[k]} acoustic steps (they must be word-aligned)."
        )
    return Split(
        features={"text": text, "vision": vision, "audio": audio},
        lengths={"text": length, "vision": vision_len, "audio": audio_len},
        labels=_labels(raw_labels, where, column),
        ids=to_str_ids(segments),
    )


def load_embedding(path: Path, trusted: bool) -> np.ndarray:
    """Read the ``(V, D)`` float32 embedding of ``embedding_and_mapping.pt`` (word2id is unused)."""
    obj = load_torch_tensors(path, trusted=trusted)
    table = obj[0] if isinstance(obj, (tuple, list)) and obj else obj
    if hasattr(table, "detach"):  # a torch tensor from the trusted path
        table = table.detach().cpu().numpy()
    table = np.asarray(table, dtype=np.float32)
    if table.ndim != 2:
        raise DataError(f"{path}: expected (embedding (V, D), word2id); got shape {table.shape}.")
    return table


def load(
    path: str | Path,
    *,
    trusted: bool = False,
    task: TaskType | None = None,
    label_key: str | None = None,
) -> MultimodalDataset:
    """Load a declare-lab folder (``train.pkl``, ``dev.pkl``, ``test.pkl``, embedding file).

    Parameters
    ----------
    path : str or Path
        The folder (a path to one of its files also works).
    trusted : bool
        Unpickle without restrictions.
    task : {None, "regression"}
        Every label column is a regression target; ``"classification"`` is a DataError.
    label_key : str, optional
        The label column: ``"sentiment"`` (default, column 0) or, with MOSEI's (1, 7)
        labels, one of ``"happy"``, ``"sad"``, ``"anger"``, ``"surprise"``, ``"disgust"``,
        ``"fear"`` (:data:`MOSEI_LABEL_COLUMNS`).

    Returns
    -------
    MultimodalDataset
        Regression on the chosen column; ``text`` (embedded word ids), ``vision``,
        ``audio``, all of one length per sample.
    """
    given = Path(path)
    check_label_args(task, label_key)
    folder = given.parent if given.is_file() else given
    if not folder.is_dir():
        raise DataError(f"{given}: folder does not exist.")
    needed = f"train.pkl, dev.pkl, test.pkl and {EMBEDDING_FILE}"
    emb_file = folder / EMBEDDING_FILE
    if not emb_file.is_file():
        raise missing_file(given, emb_file, needed)
    files = read_split_files(folder, trusted, given, needed)
    key, _ = choose_labels(
        label_columns(files["train"][1]), str(files["train"][0]), task=task, label_key=label_key
    )
    column = MOSEI_LABEL_COLUMNS.index(key)
    table = load_embedding(emb_file, trusted)
    splits = {s: _split(items, table, str(file), column) for s, (file, items) in files.items()}
    return assemble(splits, task="regression", path=folder, name=folder.name)
