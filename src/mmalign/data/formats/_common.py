"""Helpers shared by the format loaders: padding side, ragged -> padded, ids, assembly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmalign.data.cleaning import clean_nonfinite, merge_counts, warn_cleaning
from mmalign.data.dataset import MultimodalDataset, Split, TaskType
from mmalign.validation import ConfigError, DataError, check_in

__all__ = [
    "TASKS",
    "MOSEI_LABEL_COLUMNS",
    "check_label_args",
    "choose_labels",
    "class_labels",
    "split_labels",
    "n_classes_of",
    "nonzero_span",
    "start_from_lengths",
    "move_valid_first",
    "pad_ragged",
    "to_str_ids",
    "float_array",
    "flat_labels",
    "clean_split",
    "assemble",
    "require_keys",
    "check_counts",
    "int_lengths",
    "ragged_matrix",
    "stack_ragged",
]


def nonzero_span(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First non-zero step and span length per sample (non-finite values count as non-zero).

    The span runs from the first to the last non-zero step, so left padding, right padding
    and both are recognised per sample; an all-zero sample has length 0.

    Parameters
    ----------
    x : ndarray, shape (N, L, D)

    Returns
    -------
    start, length : ndarray, shape (N,), int64

    >>> x = np.zeros((2, 4, 1)); x[0, 2:, 0] = 1; x[1, :1, 0] = 5
    >>> [a.tolist() for a in nonzero_span(x)]
    [[2, 0], [2, 1]]
    """
    n, steps = x.shape[:2]
    nonzero = np.any(x != 0, axis=tuple(range(2, x.ndim))) if x.ndim > 2 else x != 0  # (N, L)
    has_any = nonzero.any(axis=1)
    first = np.argmax(nonzero, axis=1)
    last = steps - 1 - np.argmax(nonzero[:, ::-1], axis=1)
    start = np.where(has_any, first, 0).astype(np.int64)
    length = np.where(has_any, last - first + 1, 0).astype(np.int64)
    return start, length


def start_from_lengths(x: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Where each sample's ``length`` valid steps start, inferred from its non-zero rows.

    A sample is taken as left-padded (start ``L - length``) when it holds a non-zero step
    at or after position ``length``; otherwise as right-padded (start 0).

    Parameters
    ----------
    x : ndarray, shape (N, L, D)
    length : ndarray, shape (N,)

    Returns
    -------
    ndarray, shape (N,), int64

    >>> x = np.zeros((2, 3, 1)); x[0, 1:, 0] = 1; x[1, :2, 0] = 1
    >>> start_from_lengths(x, np.array([2, 2])).tolist()
    [1, 0]
    """
    steps = x.shape[1]
    nonzero = np.any(x != 0, axis=2)  # (N, L)
    beyond = np.arange(steps)[None, :] >= length[:, None]  # (N, L)
    left = (nonzero & beyond).any(axis=1)
    return np.where(left, steps - length, 0).astype(np.int64)


def move_valid_first(x: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Shift each sample's steps ``start .. start+length-1`` to the front; zero the rest.

    Parameters
    ----------
    x : ndarray, shape (N, L, D)
    start, length : ndarray, shape (N,)

    Returns
    -------
    ndarray, shape (N, L, D), float32

    >>> x = np.arange(3, dtype=np.float32).reshape(1, 3, 1)
    >>> move_valid_first(x, np.array([1]), np.array([2]))[0, :, 0].tolist()
    [1.0, 2.0, 0.0]
    """
    steps = x.shape[1]
    if not np.any(start):
        out = np.array(x, dtype=np.float32, copy=True)
    else:
        index = np.arange(steps)[None, :] + start[:, None]  # (N, L)
        index = np.minimum(index, steps - 1)
        out = np.take_along_axis(x, index[:, :, None], axis=1).astype(np.float32)  # (N, L, D)
    out[np.arange(steps)[None, :] >= length[:, None]] = 0  # (N, L) mask over (N, L, D)
    return out


def pad_ragged(items: Sequence[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack variable-length ``(L_i, D)`` arrays into a zero-padded ``(N, L_max, D)`` array.

    Parameters
    ----------
    items : sequence of ndarray, each of shape (L_i, D)
    width : int
        Feature width ``D`` (used when every item is empty).

    Returns
    -------
    padded : ndarray, shape (N, L_max, D), float32
        Valid steps first.
    lengths : ndarray, shape (N,), int64

    >>> padded, lengths = pad_ragged([np.ones((2, 1)), np.ones((1, 1))], 1)
    >>> padded[:, :, 0].tolist(), lengths.tolist()
    ([[1.0, 1.0], [1.0, 0.0]], [2, 1])
    """
    lengths = np.array([len(item) for item in items], dtype=np.int64)
    n, steps = len(items), int(lengths.max()) if len(items) else 0
    padded = np.zeros((n, max(steps, 1), width), dtype=np.float32)
    total = int(lengths.sum())
    if total:
        flat = np.concatenate([np.asarray(i, dtype=np.float32) for i in items if len(i)])
        rows = np.repeat(np.arange(n), lengths)  # (total,)
        offsets = np.cumsum(lengths) - lengths  # (N,)
        cols = np.arange(total) - np.repeat(offsets, lengths)  # (total,)
        padded[rows, cols] = flat  # scatter (total, D) into (N, L, D)
    return padded, lengths


def ragged_matrix(value: Any, width: int, where: str, what: str) -> np.ndarray:
    """One sample's ``(L, D)`` float32 matrix; an empty 1-D array becomes ``(0, width)``.

    >>> ragged_matrix(np.zeros(0), 3, "f", "visual").shape
    (0, 3)
    """
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: `{what}` must be a numeric array; {err}.") from err
    if array.size == 0 and array.ndim < 2:
        return np.zeros((0, width), dtype=np.float32)
    if array.ndim != 2:
        raise DataError(f"{where}: `{what}` must be (L, D); got shape {array.shape}.")
    if array.shape[1] != width:
        raise DataError(f"{where}: `{what}` has width {array.shape[1]}, other samples {width}.")
    return array


def stack_ragged(values: Sequence[Any], where: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Pad per-sample ``(L_i, D)`` arrays (empty samples may be 1-D) to ``(N, L_max, D)``.

    Returns
    -------
    padded : ndarray, shape (N, L_max, D), float32
    lengths : ndarray, shape (N,), int64
    """
    widths = {np.shape(v)[1] for v in values if np.ndim(v) == 2}
    if len(widths) > 1:
        raise DataError(f"{where}: `{what}` rows have different widths {sorted(widths)}.")
    width = widths.pop() if widths else 0
    matrices = [ragged_matrix(v, width, f"{where}: sample {k}", what) for k, v in enumerate(values)]
    return pad_ragged(matrices, width)


def to_str_ids(values: Any) -> np.ndarray:
    """Turn ids (str, bytes, numbers) into an object array of ``str``.

    >>> to_str_ids(np.array([b"a_1", b"b_2"])).tolist()
    ['a_1', 'b_2']
    """
    flat = np.asarray(values, dtype=object).reshape(-1)  # (N,)
    out = np.empty(flat.shape[0], dtype=object)
    out[:] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat]
    return out


def float_array(value: Any, where: str, key: str, ndim: int) -> np.ndarray:
    """Cast ``value`` to float32 and check its number of axes; DataError otherwise."""
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: `{key}` must be a numeric array; {err}.") from err
    if array.ndim != ndim:
        raise DataError(f"{where}: `{key}` must have {ndim} axes; got shape {array.shape}.")
    return array


def _label_vector(value: Any, n: int, where: str, key: str) -> np.ndarray:
    """``value`` reshaped to ``(N,)`` when it is ``(N,)``, ``(N, 1)`` or ``(N, 1, 1)``."""
    array = np.asarray(value)
    if array.ndim == 0 or array.shape[0] != n or array.size != n:
        raise DataError(
            f"{where}: `{key}` must have shape ({n},), ({n}, 1) or ({n}, 1, 1); got {array.shape}."
        )
    return array.reshape(n)


def flat_labels(value: Any, n: int, where: str, key: str = "labels") -> np.ndarray:
    """Labels of shape ``(N,)``, ``(N, 1)`` or ``(N, 1, 1)`` as float32 ``(N,)``; else DataError.

    >>> flat_labels(np.zeros((2, 1, 1)), 2, "f").shape
    (2,)
    """
    vector = _label_vector(value, n, where, key)
    try:
        labels = vector.astype(np.float32)  # (N,)
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: `{key}` must be a numeric array; {err}.") from err
    if not np.isfinite(labels).all():
        bad = int((~np.isfinite(labels)).sum())
        raise DataError(f"{where}: `{key}` holds {bad} non-finite value(s).")
    return labels


TASKS: tuple[str, ...] = ("regression", "classification")
# names of the label columns of CMU-MOSEI (MISA/BBFN (1, 7) labels, the SDK's labels .csd)
MOSEI_LABEL_COLUMNS: tuple[str, ...] = (
    "sentiment",
    "happy",
    "sad",
    "anger",
    "surprise",
    "disgust",
    "fear",
)


def check_label_args(task: Any, label_key: Any) -> None:
    """Raise ``ConfigError`` unless ``task`` is None or in :data:`TASKS`, ``label_key`` None or str.

    >>> check_label_args("classification", None)
    """
    check_in("task", task, [None, *TASKS])
    if label_key is not None and (not isinstance(label_key, str) or not label_key):
        raise ConfigError(f"`label_key` must be a non-empty str or None; got {label_key!r}.")


def choose_labels(
    available: dict[str, TaskType],
    where: str,
    *,
    task: str | None = None,
    label_key: str | None = None,
) -> tuple[str, TaskType]:
    """Pick the label array of a file: by ``label_key``, else by ``task``, else the default.

    Parameters
    ----------
    available : dict of str to {"regression", "classification"}
        Each label key the file holds and the task it gives, in order of preference: the
        first is the default, the first of a kind is used for that ``task``.
    where : str
        The file, for messages.
    task : {None, "regression", "classification"}
    label_key : str, optional

    Returns
    -------
    key : str
    task : {"regression", "classification"}

    Raises
    ------
    ConfigError
        ``task`` or ``label_key`` of the wrong kind.
    DataError
        ``label_key`` not held by the file (the message lists the keys it holds), or a
        ``task`` that no label of the file gives (the message lists its labels).

    >>> both = {"regression_labels": "regression", "classification_labels": "classification"}
    >>> choose_labels(both, "f")
    ('regression_labels', 'regression')
    >>> choose_labels(both, "f", task="classification")
    ('classification_labels', 'classification')
    """
    check_label_args(task, label_key)
    if not available:
        raise DataError(f"{where}: holds no label array.")
    held = ", ".join(f"`{k}` ({kind})" for k, kind in available.items())
    if label_key is not None:
        if label_key not in available:
            raise DataError(
                f"{where}: `label_key` must be one of {list(available)} (the label keys of "
                f"this file); got {label_key!r}."
            )
        kind = available[label_key]
        if task is not None and task != kind:
            raise DataError(
                f"{where}: `task` must be {kind!r} with `label_key` {label_key!r} (labels of "
                f"this file: {held}); got {task!r}."
            )
        return label_key, kind
    if task is None:
        key = next(iter(available))
        return key, available[key]
    keys = [k for k, kind in available.items() if kind == task]
    if not keys:
        kinds = list(dict.fromkeys(available.values()))
        allowed = repr(kinds[0]) if len(kinds) == 1 else f"one of {kinds}"
        raise DataError(
            f"{where}: `task` must be {allowed} for this file (its labels: {held}); got {task!r}."
        )
    return keys[0], task  # type: ignore[return-value]


def class_labels(value: Any, n: int, where: str, key: str = "labels") -> np.ndarray:
    """Class labels of shape ``(N,)``, ``(N, 1)`` or ``(N, 1, 1)`` as int64 ``(N,)``.

    Integers, or floats that are whole numbers, ``>= 0``; anything else is a DataError.

    >>> class_labels(np.array([0.0, 2.0, 1.0]), 3, "f").tolist()
    [0, 2, 1]
    """
    array = _label_vector(value, n, where, key)
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        labels = array.astype(np.int64)
    else:
        try:
            values = array.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise DataError(
                f"{where}: `{key}` must be numeric class labels; got {array.dtype} values."
            ) from err
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"{where}: `{key}` must be whole-number class labels; got {float(values[i])!r} "
                f"at sample {i}."
            )
        labels = values.astype(np.int64)
    if n and labels.min() < 0:
        i = int(np.argmin(labels))
        raise DataError(
            f"{where}: `{key}` must be class labels >= 0; got {int(labels[i])} at sample {i}."
        )
    return labels


def split_labels(value: Any, n: int, where: str, key: str, task: TaskType) -> np.ndarray:
    """float32 regression targets or int64 class labels, ``(N,)``, by ``task``."""
    if task == "classification":
        return class_labels(value, n, where, key)
    return flat_labels(value, n, where, key)


def n_classes_of(splits: dict[str, Split]) -> int:
    """Count the classes from the labels: the largest label over all splits, plus 1.

    >>> y = np.array([0, 2])
    >>> n_classes_of({"train": Split(features={}, lengths={}, labels=y, ids=y)})
    3
    """
    return max((int(s.labels.max()) for s in splits.values() if len(s.labels)), default=-1) + 1


def require_keys(mapping: Any, keys: Sequence[str], where: str) -> None:
    """Raise DataError naming the missing keys of a dict-like ``mapping``."""
    if not isinstance(mapping, dict):
        raise DataError(f"{where}: expected a dict; got {type(mapping).__name__}.")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise DataError(f"{where}: missing key(s) {missing}; found {sorted(map(str, mapping))}.")


def int_lengths(value: Any, n: int, steps: int, where: str, key: str) -> np.ndarray:
    """Lengths as int64 ``(N,)`` within ``[0, steps]``; DataError naming the first bad sample.

    >>> int_lengths([3, 1], 2, 4, "f", "audio_lengths").tolist()
    [3, 1]
    """
    array = np.asarray(value)
    if array.shape != (n,):
        raise DataError(f"{where}: `{key}` must have shape ({n},); got {array.shape}.")
    length = array.astype(np.int64)
    bad = (length < 0) | (length > steps)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{where}: `{key}` of sample {i} is {int(length[i])} but the padded array holds "
            f"{steps} steps."
        )
    return length


def clean_split(features: dict[str, np.ndarray]) -> dict[str, int]:
    """Apply the non-finite rule to every modality of a split; return the counts."""
    return {m: clean_nonfinite(x) for m, x in features.items()}


def check_counts(features: dict[str, np.ndarray], n: int, where: str) -> None:
    """Raise DataError when a modality's sample count differs from the labels' ``n``."""
    for m, x in features.items():
        if x.shape[0] != n:
            raise DataError(f"{where}: modality {m!r} has {x.shape[0]} samples, labels have {n}.")


def assemble(
    splits: dict[str, Split],
    *,
    task: TaskType,
    path: Path,
    n_classes: int | None = None,
    name: str | None = None,
    counts: dict[str, int] | None = None,
) -> MultimodalDataset:
    """Clean non-finite values, warn once, build and validate the dataset.

    ``counts`` holds values already replaced by the loader itself (added to the record).
    """
    counts = dict(counts or {})
    for split in splits.values():
        merge_counts(counts, clean_split(split.features))
    dataset = MultimodalDataset(
        splits=splits,
        task=task,
        n_classes=n_classes,
        name=name or path.stem,
        source=str(path),
        cleaning=counts,
    )
    dataset.validate()
    warn_cleaning(counts, str(path))
    return dataset
