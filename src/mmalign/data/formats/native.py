"""mmalign's native format: a folder with ``train.npz``, ``valid.npz`` and ``test.npz``.

Each file holds, for every modality ``m`` (any name; ``t``/``v``/``a`` mean text / vision /
audio), ``x_<m>`` float (N, L_m, D_m) with valid steps first and ``len_<m>`` int (N,); plus
``labels`` (N,) (float for regression, int for classification), ``ids`` (N,) str and the
0-d ``task`` (``"regression"`` or ``"classification"``); classification also stores 0-d
``n_classes``. Arrays are read with ``allow_pickle=False``: nothing in the file can run code.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from mmalign.data.dataset import SPLIT_NAMES, MultimodalDataset, Split, canonical_modality
from mmalign.data.formats._common import assemble, int_lengths, to_str_ids
from mmalign.validation import DataError

__all__ = ["load", "save_native", "NATIVE_KEYS"]

# keys other than x_<m> / len_<m> that a native file may hold
NATIVE_KEYS: tuple[str, ...] = ("labels", "ids", "task", "n_classes")
_MODALITY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def save_native(dataset: MultimodalDataset, path: str | Path) -> Path:
    """Write ``dataset`` as a native folder (created if needed); return the folder.

    Parameters
    ----------
    dataset : MultimodalDataset
        Validated before writing.
    path : str or Path
        Target folder; existing ``train/valid/test.npz`` are overwritten.

    Returns
    -------
    Path
    """
    dataset.validate()
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for name in SPLIT_NAMES:
        split = dataset.splits[name]
        arrays: dict[str, np.ndarray] = {}
        for m, x in split.features.items():
            arrays[f"x_{m}"] = x.astype(np.float32)
            arrays[f"len_{m}"] = split.lengths[m].astype(np.int64)
        arrays["labels"] = split.labels
        arrays["ids"] = np.asarray([str(i) for i in split.ids], dtype=str)
        arrays["task"] = np.asarray(dataset.task)
        if dataset.task == "classification":
            arrays["n_classes"] = np.asarray(int(dataset.n_classes or 0), dtype=np.int64)
        np.savez(folder / f"{name}.npz", **arrays)
    return folder


def _read(file: Path) -> tuple[Split, str, int | None]:
    where = str(file)
    if not file.is_file():
        raise DataError(
            f"{where}: file does not exist (a native folder needs "
            f"{[s + '.npz' for s in SPLIT_NAMES]})."
        )
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as err:  # object arrays need pickle: refused
        raise DataError(f"{where}: unreadable npz (object arrays are not allowed): {err}") from err
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{where}: not a readable .npz file: {err}") from err
    for key in ("labels", "ids", "task"):
        if key not in arrays:
            raise DataError(f"{where}: missing key `{key}`; found {sorted(arrays)}.")
    unknown = [k for k in arrays if k not in NATIVE_KEYS and not k.startswith(("x_", "len_"))]
    if unknown:
        raise DataError(
            f"{where}: unknown key(s) {unknown}; expected x_<modality>, "
            f"len_<modality> and {list(NATIVE_KEYS)}."
        )
    task = str(arrays["task"])
    if task not in ("regression", "classification"):
        raise DataError(
            f"{where}: `task` must be one of ['regression', 'classification']; got {task!r}."
        )
    n_classes = int(arrays["n_classes"]) if "n_classes" in arrays else None
    labels = arrays["labels"]
    if labels.ndim != 1:
        raise DataError(f"{where}: `labels` must have shape (N,); got {labels.shape}.")
    n = labels.shape[0]
    if task == "regression":
        labels = labels.astype(np.float32)
        if not np.isfinite(labels).all():
            raise DataError(f"{where}: `labels` hold non-finite values.")
    elif not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: classification `labels` must be integers; got {labels.dtype}.")
    names = [k[2:] for k in arrays if k.startswith("x_")]
    orphans = [k[4:] for k in arrays if k.startswith("len_") and k[4:] not in names]
    if orphans:
        raise DataError(
            f"{where}: unknown modality {orphans[0]!r} in `len_{orphans[0]}`; "
            f"features hold {names}."
        )
    if not names:
        raise DataError(f"{where}: no modality (`x_<name>` arrays) found.")
    features: dict[str, np.ndarray] = {}
    lengths: dict[str, np.ndarray] = {}
    for m in names:
        if not _MODALITY_NAME.match(m):
            raise DataError(f"{where}: modality name {m!r} must be letters, digits and _.")
        if f"len_{m}" not in arrays:
            raise DataError(f"{where}: modality {m!r} has `x_{m}` but no `len_{m}`.")
        x = arrays[f"x_{m}"]
        if x.ndim != 3 or not np.issubdtype(x.dtype, np.number):
            raise DataError(f"{where}: `x_{m}` must be numeric (N, L, D); got {x.dtype} {x.shape}.")
        if x.shape[0] != n:
            raise DataError(f"{where}: modality {m!r} has {x.shape[0]} samples, labels have {n}.")
        full = canonical_modality(m)
        if full in features:
            raise DataError(f"{where}: modality {full!r} is stored twice (`x_{m}` and another).")
        features[full] = x.astype(np.float32)
        lengths[full] = int_lengths(arrays[f"len_{m}"], n, x.shape[1], where, f"len_{m}")
    ids = to_str_ids(arrays["ids"])
    if ids.shape != (n,):
        raise DataError(f"{where}: `ids` must have shape ({n},); got {arrays['ids'].shape}.")
    split = Split(
        features=features,
        lengths=lengths,
        labels=labels.astype(np.float32 if task == "regression" else np.int64),
        ids=ids,
    )
    return split, task, n_classes


def load(path: str | Path, *, trusted: bool = False) -> MultimodalDataset:
    """Load a native folder (``trusted`` is accepted for symmetry; npz never runs code).

    Parameters
    ----------
    path : str or Path
        The folder (or one of its ``.npz`` files).
    trusted : bool
        Ignored.

    Returns
    -------
    MultimodalDataset
    """
    folder = Path(path)
    folder = folder.parent if folder.suffix == ".npz" else folder
    if not folder.is_dir():
        raise DataError(f"{folder}: folder does not exist.")
    read = {s: _read(folder / f"{s}.npz") for s in SPLIT_NAMES}
    task, n_classes = read["train"][1], read["train"][2]
    for s, (_, other_task, _) in read.items():
        if other_task != task:
            raise DataError(
                f"{folder / (s + '.npz')}: task {other_task!r} differs from train's {task!r}."
            )
    splits = {s: r[0] for s, r in read.items()}
    return assemble(
        splits,
        task=task,
        n_classes=n_classes,
        path=folder,  # type: ignore[arg-type]
        name=folder.name,
    )
