"""mmalign's native format: a folder with ``train.npz``, ``valid.npz`` and ``test.npz``.

Also read: ``dev.npz`` for ``valid.npz``, and the per-split layout ``<name>_train.npz``,
``<name>_valid.npz`` (or ``<name>_dev.npz``) and ``<name>_test.npz``, given as the folder
(when it holds one such dataset), any one of the files, or the prefix ``<folder>/<name>``.

Each file holds, for every modality ``m`` (any name; ``t``/``v``/``a`` mean text / vision /
audio), ``x_<m>`` float (N, L_m, D_m) with valid steps first and ``len_<m>`` int (N,); plus
``labels`` (N,) (float for regression, int for classification), ``ids`` (N,) str and the
0-d ``task`` (``"regression"`` or ``"classification"``); classification also stores 0-d
``n_classes``. Optionally, ``span_<a>_<b>`` int (N, L_a, 2): ground-truth alignment
spans of modality ``a`` onto ``b`` (:attr:`~mmalign.data.dataset.Split.spans`; ``a`` and
``b`` as in the ``x_`` keys or their full names), read into ``Split.spans["<a>_<b>"]`` with
full names. Arrays are read with ``allow_pickle=False``: nothing in the file can run code.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import cast

import numpy as np

from mmalign.data.dataset import (
    SPLIT_NAMES,
    MultimodalDataset,
    Split,
    TaskType,
    canonical_modality,
    check_span,
    span_pair,
)
from mmalign.data.formats._common import (
    assemble,
    check_label_args,
    choose_labels,
    class_labels,
    int_lengths,
    to_str_ids,
)
from mmalign.validation import DataError

__all__ = ["load", "save_native", "NATIVE_KEYS", "SPLIT_STEMS", "find_layout", "split_files"]

# keys other than x_<m> / len_<m> / span_<a>_<b> that a native file may hold
NATIVE_KEYS: tuple[str, ...] = ("labels", "ids", "task", "n_classes")
_MODALITY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# canonical split -> file stems tried in this order (after the optional "<name>_" prefix)
SPLIT_STEMS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "valid": ("valid", "dev"),
    "test": ("test",),
}
_PREFIXED = re.compile(r"^(?P<name>.+)_(?P<split>train|valid|dev|test)\.npz$")
_LOOKED_FOR = (
    "train.npz, valid.npz (or dev.npz), test.npz, or <name>_train.npz, <name>_valid.npz "
    "(or <name>_dev.npz), <name>_test.npz"
)


def find_layout(path: Path) -> tuple[Path, str] | None:
    """Folder and file-name prefix of the native dataset that ``path`` points at.

    Parameters
    ----------
    path : Path
        A folder (holding ``train.npz``, or ``<name>_train.npz`` for exactly one ``name``),
        a split file (``train.npz``, ``<name>_dev.npz``, ...) or the prefix
        ``<folder>/<name>`` (``<folder>/<name>_`` also works) of ``<name>_train.npz``.

    Returns
    -------
    (folder, prefix) or None
        ``prefix`` is ``""`` or ``"<name>_"``; ``None`` when ``path`` shows no native layout.

    Raises
    ------
    DataError
        A folder holding several ``<name>_train.npz`` datasets (the message lists them).
    """
    if path.is_dir():
        if (path / "train.npz").is_file():
            return path, ""
        names = sorted(
            {m["name"] for f in path.glob("*_train.npz") if (m := _PREFIXED.match(f.name))}
        )
        if len(names) > 1:
            raise DataError(
                f"{path}: holds several native datasets "
                f"({', '.join(n + '_train.npz' for n in names)}); pass one of their files or "
                f"its prefix, e.g. {path / names[0]}."
            )
        return (path, names[0] + "_") if names else None
    if path.suffix.lower() == ".npz":
        if path.stem in ("train", "valid", "dev", "test"):
            return path.parent, ""
        match = _PREFIXED.match(path.name)
        return (path.parent, match["name"] + "_") if match else None
    name = path.name.rstrip("_")
    if name and (path.parent / f"{name}_train.npz").is_file():
        return path.parent, name + "_"
    return None


def split_files(path: str | Path) -> dict[str, Path]:
    """Find the ``train`` / ``valid`` / ``test`` files of the native dataset ``path`` points at.

    Parameters
    ----------
    path : str or Path
        As in :func:`find_layout`.

    Returns
    -------
    dict of str to Path

    Raises
    ------
    DataError
        Naming ``path`` and what was looked for: no native layout, or a split file missing.
    """
    given = Path(path)
    layout = find_layout(given)
    if layout is None:
        state = "" if given.exists() else "path does not exist; "
        raise DataError(f"{given}: not a native dataset: {state}looked for {_LOOKED_FOR}.")
    folder, prefix = layout
    files: dict[str, Path] = {}
    missing: list[str] = []
    for split, stems in SPLIT_STEMS.items():
        candidates = [folder / f"{prefix}{stem}.npz" for stem in stems]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            missing.append(" or ".join(c.name for c in candidates))
        else:
            files[split] = found
    if missing:
        needed = ", ".join(
            " or ".join(f"{prefix}{s}.npz" for s in st) for st in SPLIT_STEMS.values()
        )
        raise DataError(
            f"{given}: missing native split file(s) {'; '.join(missing)} in {folder} "
            f"(looked for {needed})."
        )
    return files


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
        for key, span in split.spans.items():
            arrays[f"span_{key}"] = span.astype(np.int64)
        arrays["labels"] = split.labels
        arrays["ids"] = np.asarray([str(i) for i in split.ids], dtype=str)
        arrays["task"] = np.asarray(dataset.task)
        if dataset.task == "classification":
            arrays["n_classes"] = np.asarray(int(dataset.n_classes or 0), dtype=np.int64)
        np.savez(folder / f"{name}.npz", **arrays)
    return folder


def _read(file: Path) -> tuple[Split, str, int | None]:
    where = str(file)
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
    prefixes = ("x_", "len_", "span_")
    unknown = [k for k in arrays if k not in NATIVE_KEYS and not k.startswith(prefixes)]
    if unknown:
        raise DataError(
            f"{where}: unknown key(s) {unknown}; expected x_<modality>, "
            f"len_<modality>, span_<a>_<b> and {list(NATIVE_KEYS)}."
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
    else:  # integers, or floats that are whole numbers
        labels = class_labels(labels, n, where, "labels")
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
        spans=_read_spans(arrays, names, features, where),
    )
    return split, task, n_classes


def _read_spans(
    arrays: dict[str, np.ndarray],
    names: list[str],
    features: dict[str, np.ndarray],
    where: str,
) -> dict[str, np.ndarray]:
    """Check the ``span_<a>_<b>`` arrays of a file; return them keyed ``"<a>_<b>"`` (full names).

    Parameters
    ----------
    arrays : dict of str to ndarray
        Every array of the file.
    names : list of str
        Modality names as stored (``x_<name>``).
    features : dict of str to ndarray
        Full modality name -> features ``(N, L_m, D_m)``, already checked.
    where : str
        The file, for messages.

    Returns
    -------
    dict of str to ndarray
        int64 arrays of shape ``(N, L_a, 2)``.
    """
    # a span may name modalities as stored (x_t -> span_t_a) or by their full names
    spelled = list(dict.fromkeys([*names, *features]))
    spans: dict[str, np.ndarray] = {}
    for key in (k for k in arrays if k.startswith("span_")):
        a, b = span_pair(key[5:], spelled, f"{where}: `{key}`")
        a, b = canonical_modality(a), canonical_modality(b)
        if a == b:  # a short and a full name of one modality, e.g. span_t_text
            raise DataError(f"{where}: `{key}` names modality {a!r} twice; need two different.")
        if f"{a}_{b}" in spans:
            raise DataError(f"{where}: spans of {a!r} onto {b!r} are stored twice (`{key}`).")
        span = arrays[key]
        n, steps_a = features[a].shape[:2]
        check_span(span, (n, steps_a), features[b].shape[1], where, key)
        spans[f"{a}_{b}"] = span.astype(np.int64)
    return spans


def load(
    path: str | Path,
    *,
    trusted: bool = False,
    task: TaskType | None = None,
    label_key: str | None = None,
) -> MultimodalDataset:
    """Load a native dataset (``trusted`` is accepted for symmetry; npz never runs code).

    Parameters
    ----------
    path : str or Path
        The folder, one of its ``.npz`` files, or the prefix ``<folder>/<name>`` of
        ``<name>_train.npz`` / ``<name>_valid.npz`` (or ``_dev``) / ``<name>_test.npz``.
    trusted : bool
        Ignored.
    task : {None, "regression", "classification"}
        The task is stored in the files; a different one is a DataError.
    label_key : {None, "labels"}
        The only label key of the format; any other is a DataError.

    Returns
    -------
    MultimodalDataset
        Named after the folder (``train.npz`` layout) or ``<name>``.

    Raises
    ------
    DataError
        A missing or malformed file (naming ``path`` and what was looked for), or ``task`` /
        ``label_key`` that the files contradict.
    """
    given = Path(path)
    check_label_args(task, label_key)
    files = split_files(given)
    read = {s: _read(file) for s, file in files.items()}
    stored, n_classes = cast(TaskType, read["train"][1]), read["train"][2]
    for s, (_, other_task, _) in read.items():
        if other_task != stored:
            raise DataError(f"{files[s]}: task {other_task!r} differs from train's {stored!r}.")
    choose_labels({"labels": stored}, str(files["train"]), task=task, label_key=label_key)
    folder, prefix = files["train"].parent, files["train"].name[: -len("train.npz")]
    name = prefix[:-1] if prefix else folder.name
    splits = {s: r[0] for s, r in read.items()}
    return assemble(
        splits,
        task=stored,
        n_classes=n_classes,
        path=folder / name if prefix else folder,
        name=name,
    )
