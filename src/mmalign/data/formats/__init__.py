"""On-disk formats: one loader module per format, the registry, detection and one entry point.

Every loader has the signature
``load(path, *, trusted=False, task=None, label_key=None) -> MultimodalDataset`` and returns a
validated dataset in the canonical layout (``docs/data.md``). ``task`` / ``label_key`` choose
the labels where a file holds several (MMSA; the MOSEI label columns of MISA and CSD) and are
checked against the file's labels elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmalign.data.dataset import MultimodalDataset, TaskType
from mmalign.data.formats import csd, meld, misa, mmsa, mult, native
from mmalign.data.formats._common import check_label_args
from mmalign.data.formats.native import save_native
from mmalign.data.safe_pickle import load_pickle
from mmalign.validation import DataError, check_in

__all__ = ["FORMATS", "detect_format", "load_dataset", "save_native"]

Loader = Callable[..., MultimodalDataset]

FORMATS: dict[str, Loader] = {
    "native": native.load,
    "mmsa": mmsa.load,
    "mult": mult.load,
    "misa": misa.load,
    "meld": meld.load,
    "csd": csd.load,
}

_MMSA_NAME = re.compile(r"^(un)?aligned_\d+\.pkl$", re.IGNORECASE)
_MULT_NAME = re.compile(r"_data(_noalign)?\.pkl$", re.IGNORECASE)
_FOLDER_LOOKED_FOR = (
    f"train.npz or <name>_train.npz (native), *.csd files, or train/dev/test.pkl with "
    f"{misa.EMBEDDING_FILE} (misa) or {meld.EMBEDDING_FILE} (meld)"
)


def _detect_folder(folder: Path, given: Path) -> str:
    """Format of ``folder``; errors name ``given`` (the path the user gave) and what was sought."""
    where = str(given) if given == folder else f"{given} (folder {folder})"
    if native.find_layout(folder) is not None:
        return "native"
    if any(folder.glob("*.csd")):
        return "csd"
    if (folder / misa.EMBEDDING_FILE).is_file():
        return "misa"
    if (folder / meld.EMBEDDING_FILE).is_file():
        return "meld"
    if (folder / "train.pkl").is_file():
        raise DataError(
            f"{where}: has train.pkl but neither {misa.EMBEDDING_FILE} (MISA/BBFN/MM-Align) "
            f"nor {meld.EMBEDDING_FILE} (MELD) next to it."
        )
    raise DataError(
        f"{where}: cannot tell the format (looked for {_FOLDER_LOOKED_FOR}); pass --format."
    )


def _missing(path: Path) -> DataError:
    hint = "" if path.suffix else f" (nor is it the prefix of a native {path.name}_train.npz)"
    return DataError(f"{path}: path does not exist{hint}.")


def _detect(path: Path, trusted: bool) -> tuple[str, Any]:
    """Format name and, when the file had to be unpickled to tell, the unpickled object."""
    if not path.exists():
        if native.find_layout(path) is not None:  # the prefix <folder>/<name>
            return "native", None
        raise _missing(path)
    if path.is_dir():
        return _detect_folder(path, path), None
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "native", None
    if suffix == ".csd":
        return "csd", None
    if suffix == ".pt":
        return "misa", None
    if path.name in ("train.pkl", "dev.pkl", "test.pkl", "embedding.p"):
        return _detect_folder(path.parent, path), None
    if _MMSA_NAME.match(path.name):
        return "mmsa", None
    if _MULT_NAME.search(path.name):
        return "mult", None
    obj = load_pickle(path, trusted=trusted)  # unknown name: look inside
    if mmsa.looks_like_mmsa(obj):
        return "mmsa", obj
    if mult.looks_like_mult(obj):
        return "mult", obj
    raise DataError(
        f"{path}: cannot tell the format: not an MMSA pickle (splits with "
        "`regression_labels` or `classification_labels`) nor a MulT pickle (splits with "
        "`labels` and `text`); pass --format."
    )


def detect_format(path: str | Path, *, trusted: bool = False) -> str:
    """Tell the format of ``path`` (a file, folder or prefix) from names and, if needed, contents.

    Folders: ``train.npz`` or ``<name>_train.npz`` -> native; ``*.csd`` -> csd;
    ``embedding_and_mapping.pt`` -> misa; ``embedding.p`` -> meld. Files: ``.npz`` -> native,
    ``.csd`` -> csd, ``(un)aligned_<n>.pkl`` -> mmsa, ``*_data[_noalign].pkl`` -> mult; other
    pickles are unpickled (restricted unless ``trusted``) and recognised by their keys. A path
    ``<folder>/<name>`` that does not exist is native when ``<folder>/<name>_train.npz`` does.

    Raises
    ------
    DataError
        When the path does not exist or the format cannot be told (the message names ``path``
        and what was looked for).
    """
    return _detect(Path(path), trusted)[0]


def load_dataset(
    path: str | Path,
    format: str | None = None,  # noqa: A002
    trusted: bool = False,
    *,
    task: TaskType | None = None,
    label_key: str | None = None,
) -> MultimodalDataset:
    """Load any supported format into the canonical :class:`MultimodalDataset`.

    Parameters
    ----------
    path : str or Path
        File, folder or (native ``<name>_train.npz`` layout) prefix.
    format : str, optional
        One of :data:`FORMATS`; detected from ``path`` when omitted.
    trusted : bool
        Unpickle without restrictions (only for files you trust).
    task : {None, "regression", "classification"}
        Which labels to use when the file holds both kinds (MMSA ``regression_labels`` and
        ``classification_labels``). ``None``: the format's default (regression when present).
        A task that no label of the file gives is a ``DataError``.
    label_key : str, optional
        The label array to use, by the name the format keeps it under: MMSA
        ``"regression_labels"``, ``"classification_labels"``, ``"regression_labels_T/A/V"``;
        MulT and native ``"labels"``; MELD ``"label"``; MISA and CSD ``"sentiment"`` or, for
        MOSEI's 7 columns, ``"happy"``, ``"sad"``, ``"anger"``, ``"surprise"``,
        ``"disgust"``, ``"fear"``. A key the file lacks is a ``DataError`` listing its keys.

    Returns
    -------
    MultimodalDataset
        Validated; non-finite features replaced by 0 (counts in ``cleaning``).

    Raises
    ------
    ConfigError
        Unknown ``format`` (the message lists the valid names), ``task`` not one of the
        three values, ``label_key`` not a str.
    DataError
        Missing, unsafe or inconsistent data, or labels that contradict ``task`` /
        ``label_key`` (the message names the file).
    """
    path = Path(path)
    check_label_args(task, label_key)
    labels = {"task": task, "label_key": label_key}
    if format is not None:
        check_in("format", format, sorted(FORMATS))
        if not path.exists() and not (format == "native" and native.find_layout(path)):
            raise _missing(path)
        return FORMATS[format](path, trusted=trusted, **labels)
    name, obj = _detect(path, trusted)
    if obj is not None:
        module = mmsa if name == "mmsa" else mult
        return module.from_object(obj, path, **labels)
    return FORMATS[name](path, trusted=trusted, **labels)
