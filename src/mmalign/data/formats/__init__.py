"""On-disk formats: one loader module per format, the registry, detection and one entry point.

Every loader has the signature ``load(path, *, trusted=False) -> MultimodalDataset`` and
returns a validated dataset in the canonical layout (``docs/data.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmalign.data.dataset import MultimodalDataset
from mmalign.data.formats import csd, meld, misa, mmsa, mult, native
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


def _detect_folder(folder: Path) -> str:
    if (folder / "train.npz").is_file():
        return "native"
    if any(folder.glob("*.csd")):
        return "csd"
    if (folder / misa.EMBEDDING_FILE).is_file():
        return "misa"
    if (folder / meld.EMBEDDING_FILE).is_file():
        return "meld"
    if (folder / "train.pkl").is_file():
        raise DataError(
            f"{folder}: has train.pkl but neither {misa.EMBEDDING_FILE} (MISA/BBFN/MM-Align) "
            f"nor {meld.EMBEDDING_FILE} (MELD) next to it."
        )
    raise DataError(
        f"{folder}: cannot tell the format (expected train.npz, *.csd files, or train/dev/"
        f"test.pkl with {misa.EMBEDDING_FILE} or {meld.EMBEDDING_FILE}); pass --format."
    )


def _detect(path: Path, trusted: bool) -> tuple[str, Any]:
    """Format name and, when the file had to be unpickled to tell, the unpickled object."""
    if not path.exists():
        raise DataError(f"{path}: path does not exist.")
    if path.is_dir():
        return _detect_folder(path), None
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "native", None
    if suffix == ".csd":
        return "csd", None
    if suffix == ".pt":
        return "misa", None
    if path.name in ("train.pkl", "dev.pkl", "test.pkl", "embedding.p"):
        return _detect_folder(path.parent), None
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
        "`regression_labels`) nor a MulT pickle (splits with `labels`); pass --format."
    )


def detect_format(path: str | Path, *, trusted: bool = False) -> str:
    """Name of the format of ``path`` (a file or folder), from names and, if needed, contents.

    Folders: ``train.npz`` -> native; ``*.csd`` -> csd; ``embedding_and_mapping.pt`` -> misa;
    ``embedding.p`` -> meld. Files: ``.npz`` -> native, ``.csd`` -> csd,
    ``(un)aligned_<n>.pkl`` -> mmsa, ``*_data[_noalign].pkl`` -> mult; other pickles are
    unpickled (restricted unless ``trusted``) and recognised by their keys.

    Raises
    ------
    DataError
        When the path does not exist or the format cannot be told.
    """
    return _detect(Path(path), trusted)[0]


def load_dataset(
    path: str | Path,
    format: str | None = None,
    trusted: bool = False,  # noqa: A002
) -> MultimodalDataset:
    """Load any supported format into the canonical :class:`MultimodalDataset`.

    Parameters
    ----------
    path : str or Path
        File or folder.
    format : str, optional
        One of :data:`FORMATS`; detected from ``path`` when omitted.
    trusted : bool
        Unpickle without restrictions (only for files you trust).

    Returns
    -------
    MultimodalDataset
        Validated; non-finite features replaced by 0 (counts in ``cleaning``).

    Raises
    ------
    ConfigError
        Unknown ``format`` (the message lists the valid names).
    DataError
        Missing, unsafe or inconsistent data (the message names the file).
    """
    path = Path(path)
    if format is not None:
        check_in("format", format, sorted(FORMATS))
        if not path.exists():
            raise DataError(f"{path}: path does not exist.")
        return FORMATS[format](path, trusted=trusted)
    name, obj = _detect(path, trusted)
    if obj is not None:
        module = mmsa if name == "mmsa" else mult
        return module.from_object(obj, path)
    return FORMATS[name](path, trusted=trusted)
