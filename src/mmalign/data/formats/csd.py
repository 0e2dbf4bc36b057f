"""Loader for CMU-MultimodalSDK computational sequences (``.csd`` HDF5 files).

Format: Zadeh et al., "Multimodal Language Analysis in the Wild: CMU-MOSEI and Dynamic
Fusion Graph", ACL 2018 (the CMU-MultimodalSDK). A ``.csd`` file holds one top-level group
with ``data/<video_id>/features (n, D)`` and ``data/<video_id>/intervals (n, 2)`` (seconds)
and ``metadata/``. The user points at a folder holding one ``.csd`` per modality plus a
labels ``.csd``; files are mapped to modalities by name (:data:`NAME_PATTERNS`).

What is built (word-aligned sequences per labelled segment, like the SDK's
``align(words, avg)`` followed by ``align(labels)``): for each labelled segment ``k`` of a
video, the text rows are the word vectors whose interval overlaps the segment; each word gets
the average of the audio / vision frames overlapping the word's interval (zeros when none).
All modalities share the segment's word count. Sample ids are ``"<video_id>[<k>]"``.
Labels: column 0 (sentiment) by default; a 7-column MOSEI labels file lets ``label_key`` name
another column of :data:`MOSEI_LABEL_COLUMNS` (regression in every case).

Folds: ``folds.json`` in the folder (``{"train": [ids], "valid": [ids], "test": [ids]}``,
``dev`` accepted for ``valid``) or, without it, a deterministic split by video id:
``zlib.crc32(video_id) % 10`` in 0..6 -> train, 7 -> valid, 8..9 -> test.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from mmalign.data.cleaning import clean_nonfinite
from mmalign.data.dataset import SPLIT_NAMES, MultimodalDataset, Split, TaskType
from mmalign.data.formats._common import (
    MOSEI_LABEL_COLUMNS,
    assemble,
    check_label_args,
    choose_labels,
    pad_ragged,
    to_str_ids,
)
from mmalign.validation import DataError

__all__ = ["load", "NAME_PATTERNS", "FOLDS_FILE", "modality_of", "hash_fold", "word_average"]

# role -> lower-case substrings of the file stem; checked in this order, first match wins.
NAME_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("labels", ("label",)),
    ("text", ("wordvector", "word_vector", "glove", "text")),
    ("audio", ("covarep", "opensmile", "audio", "acoustic")),
    ("vision", ("facet", "openface", "visual", "vision", "video")),
)
FOLDS_FILE = "folds.json"


def modality_of(file: Path) -> str | None:
    """Role of a ``.csd`` file from its name; ``None`` for the word-string CSD (ignored).

    >>> modality_of(Path("CMU_MOSI_COVAREP.csd"))
    'audio'
    >>> modality_of(Path("CMU_MOSI_TimestampedWords.csd")) is None
    True
    """
    stem = file.stem.lower()
    if stem.endswith("words") and "vector" not in stem:
        return None  # the word strings themselves: the vectors come from the word-vector CSD
    for role, patterns in NAME_PATTERNS:
        if any(p in stem for p in patterns):
            return role
    valid = {role: list(p) for role, p in NAME_PATTERNS}
    raise DataError(
        f"{file}: cannot tell the modality from the file name; the name must "
        f"contain one of {valid} (or end in 'Words' to be ignored)."
    )


def hash_fold(video_id: str) -> str:
    """Deterministic fold of a video id: crc32 % 10 -> 0..6 train, 7 valid, 8..9 test.

    >>> hash_fold("03bSnISJMiM") in ("train", "valid", "test")
    True
    """
    bucket = zlib.crc32(video_id.encode("utf-8")) % 10
    return "train" if bucket < 7 else "valid" if bucket == 7 else "test"


def _read_csd(file: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Video id -> (intervals (n, 2), features (n, D)) of one computational sequence."""
    import h5py

    try:
        handle = h5py.File(file, "r")
    except OSError as err:
        raise DataError(f"{file}: not a readable HDF5 computational sequence: {err}") from err
    with handle:
        if not len(handle.keys()):
            raise DataError(f"{file}: empty HDF5 file (no computational sequence group).")
        root = handle[next(iter(handle.keys()))]
        if "data" not in root:
            raise DataError(f"{file}: group {root.name!r} has no `data` group.")
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for video, group in root["data"].items():
            if "features" not in group or "intervals" not in group:
                raise DataError(f"{file}: video {video!r} lacks `features` or `intervals`.")
            features, intervals = group["features"][()], group["intervals"][()]
            if intervals.ndim != 2 or intervals.shape[1] != 2:
                raise DataError(
                    f"{file}: intervals of {video!r} must be (n, 2); got {intervals.shape}."
                )
            if features.shape[0] != intervals.shape[0]:
                raise DataError(
                    f"{file}: video {video!r} has {features.shape[0]} feature rows "
                    f"but {intervals.shape[0]} intervals."
                )
            if features.dtype.kind not in "fiu":
                raise DataError(f"{file}: features of {video!r} are {features.dtype}, not numbers.")
            flat = features.reshape(features.shape[0], -1)  # (n, D)
            out[video] = (intervals.astype(np.float64), flat)
    return out


def word_average(words: np.ndarray, frames: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Average the frames overlapping each word interval (zeros where none overlaps).

    Parameters
    ----------
    words : ndarray, shape (L, 2)
        Word intervals (seconds).
    frames : ndarray, shape (F, 2)
        Frame intervals, any order.
    values : ndarray, shape (F, D)
        Finite frame features.

    Returns
    -------
    ndarray, shape (L, D), float32

    >>> frames = np.array([[0, 1], [1, 2], [2, 3]], float)
    >>> word_average(np.array([[0.5, 1.5], [5, 6]]), frames, np.array([[1.0], [3.0], [9.0]]))
    array([[2.],
           [0.]], dtype=float32)
    """
    order = np.argsort(frames[:, 0], kind="stable")
    starts = frames[order, 0]
    ends = np.maximum.accumulate(frames[order, 1])  # monotone for searchsorted
    sums = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values[order], axis=0)])
    lo = np.searchsorted(ends, words[:, 0], side="right")  # first frame ending after the start
    hi = np.searchsorted(starts, words[:, 1], side="left")  # frames starting before the end
    count = np.maximum(hi - lo, 0)
    total = sums[np.maximum(hi, lo)] - sums[lo]  # (L, D)
    return (total / np.maximum(count, 1)[:, None]).astype(np.float32)  # (L, D)


def _folds(folder: Path, videos: list[str]) -> dict[str, str]:
    file = folder / FOLDS_FILE
    if not file.is_file():
        return {v: hash_fold(v) for v in videos}
    try:
        spec = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{file}: not valid JSON: {err}") from err
    if isinstance(spec, dict) and "dev" in spec and "valid" not in spec:
        spec["valid"] = spec.pop("dev")
    if not isinstance(spec, dict) or any(not isinstance(spec.get(s), list) for s in SPLIT_NAMES):
        raise DataError(f"{file}: must map 'train', 'valid' and 'test' to lists of video ids.")
    return {str(v): s for s in SPLIT_NAMES for v in spec[s]}


def load(
    path: str | Path,
    *,
    trusted: bool = False,
    task: TaskType | None = None,
    label_key: str | None = None,
) -> MultimodalDataset:
    """Load a folder of ``.csd`` files as word-aligned sequences per labelled segment.

    Parameters
    ----------
    path : str or Path
        Folder with one ``.csd`` per modality and one labels ``.csd`` (a path to one of its
        ``.csd`` files also works).
    trusted : bool
        Ignored (HDF5 holds no code).
    task : {None, "regression"}
        Every label column is a regression target; ``"classification"`` is a DataError.
    label_key : str, optional
        The label column: ``"sentiment"`` (default, column 0) or, with a 7-column MOSEI
        labels file, one of ``"happy"``, ``"sad"``, ``"anger"``, ``"surprise"``,
        ``"disgust"``, ``"fear"``.

    Returns
    -------
    MultimodalDataset
        Regression on the chosen label column (column 0: sentiment for MOSI and MOSEI).
    """
    given = Path(path)
    check_label_args(task, label_key)
    folder = given.parent if given.is_file() else given
    if not folder.is_dir():
        raise DataError(f"{given}: folder does not exist (point at a folder of .csd files).")
    by_role: dict[str, list[Path]] = {}
    for file in sorted(folder.glob("*.csd")):
        role = modality_of(file)
        if role is not None:
            by_role.setdefault(role, []).append(file)
    for role, files in by_role.items():
        if len(files) > 1:
            raise DataError(
                f"{folder}: several .csd files match {role!r}: "
                f"{[f.name for f in files]}; keep one per modality."
            )
    if "labels" not in by_role:
        raise DataError(f"{folder}: no labels .csd (a file whose name contains 'label').")
    modalities = [m for m in ("text", "vision", "audio") if m in by_role]
    if "text" not in modalities or len(modalities) < 2:
        raise DataError(
            f"{folder}: need a word-vector .csd for text and at least one other "
            f"modality; found {sorted(by_role)}."
        )
    seqs = {role: _read_csd(files[0]) for role, files in by_role.items()}
    widths = [np.shape(v)[1] if np.ndim(v) == 2 else 1 for _, v in seqs["labels"].values()]
    mosei = bool(widths) and min(widths) == len(MOSEI_LABEL_COLUMNS)  # all 7 columns everywhere
    names = MOSEI_LABEL_COLUMNS if mosei else MOSEI_LABEL_COLUMNS[:1]
    key, _ = choose_labels(
        {name: "regression" for name in names},
        str(by_role["labels"][0]),
        task=task,
        label_key=label_key,
    )
    column = MOSEI_LABEL_COLUMNS.index(key)
    counts = {m: 0 for m in modalities}
    for m in modalities:  # the rule is applied to raw frames, before word averaging
        for _, values in seqs[m].values():
            if values.dtype.kind == "f":
                counts[m] += clean_nonfinite(values)
    videos = sorted(set.intersection(*(set(seqs[r]) for r in ["labels", *modalities])))
    if not videos:
        raise DataError(f"{folder}: no video id is shared by every .csd file.")
    fold_of = _folds(folder, videos)
    rows: dict[str, dict[str, list[Any]]] = {
        s: {"ids": [], "labels": [], **{m: [] for m in modalities}} for s in SPLIT_NAMES
    }
    for video in videos:
        split = fold_of.get(video)
        if split is None:
            continue  # not in folds.json
        seg_intervals, seg_labels = seqs["labels"][video]
        word_intervals, word_vectors = seqs["text"][video]
        keep = (word_intervals[:, 1] - word_intervals[:, 0]) >= 1e-5  # the SDK skips these
        word_intervals, word_vectors = word_intervals[keep], word_vectors[keep]
        averaged = {
            m: word_average(word_intervals, *seqs[m][video]) for m in modalities if m != "text"
        }
        averaged["text"] = word_vectors.astype(np.float32)
        # word w lies in segment k when their intervals overlap
        inside = (word_intervals[None, :, 0] < seg_intervals[:, None, 1]) & (
            word_intervals[None, :, 1] > seg_intervals[:, None, 0]
        )  # (S, n_words)
        for k in range(seg_intervals.shape[0]):
            if not inside[k].any():
                continue  # a segment without words has nothing to align
            rows[split]["ids"].append(f"{video}[{k}]")
            rows[split]["labels"].append(float(seg_labels[k, column]))
            for m in modalities:
                rows[split][m].append(averaged[m][inside[k]])  # (L_k, D)
    splits: dict[str, Split] = {}
    for s in SPLIT_NAMES:
        if not rows[s]["ids"]:
            raise DataError(
                f"{folder}: the {s} split is empty (0 labelled segments); "
                f"give the folds in {FOLDS_FILE}."
            )
        features, lengths = {}, {}
        for m in modalities:
            width = seqs[m][videos[0]][1].shape[1]
            features[m], lengths[m] = pad_ragged(rows[s][m], width)
        labels = np.asarray(rows[s]["labels"], dtype=np.float32)
        if not np.isfinite(labels).all():
            raise DataError(f"{by_role['labels'][0]}: labels hold non-finite values.")
        splits[s] = Split(
            features=features, lengths=lengths, labels=labels, ids=to_str_ids(rows[s]["ids"])
        )
    return assemble(splits, task="regression", path=folder, name=folder.name, counts=counts)
