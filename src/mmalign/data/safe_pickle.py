"""Read pickled data files without running code from them.

Feature files are untrusted input: ``pickle.load`` on a crafted file runs arbitrary code.
:func:`load_pickle` uses a restricted unpickler that admits plain containers, numbers,
strings and numpy arrays / dtypes / scalars only; any other global is refused with a
:class:`~mmalign.validation.DataError` that names it (``module.name``) and the file.
``trusted=True`` (CLI ``--trust-pickle``) switches to the ordinary unpickler.

:func:`load_torch_tensors` reads a ``torch.save`` zip archive (the declare-lab
``embedding_and_mapping.pt``) with the same restricted unpickler plus a reader for tensor
storages, returning numpy arrays; see ``docs/data.md``.
"""

from __future__ import annotations

import io
import pickle
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmalign.validation import DataError

__all__ = [
    "SAFE_GLOBALS",
    "RestrictedUnpickler",
    "load_pickle",
    "loads_pickle",
    "load_torch_tensors",
]

# (module, name) pairs a data pickle may reference. numpy moved ``core`` to ``_core`` in 2.0,
# and files written by either version must load, so both spellings are listed.
_SAFE_BUILTINS = (
    "set",
    "frozenset",
    "bytearray",
    "bytes",
    "complex",
    "list",
    "dict",
    "tuple",
    "str",
    "int",
    "float",
    "bool",
)
SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    # protocol-2 pickles name builtins ``__builtin__`` (Python 2 spelling); find_class sees
    # the raw name, so both spellings are listed
    [(module, name) for module in ("builtins", "__builtin__") for name in _SAFE_BUILTINS]
    + [
        # protocol-2 pickles encode bytes as _codecs.encode(text, "latin1")
        ("_codecs", "encode"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
    ]
)

# declare-lab's word2id is a defaultdict whose default_factory is a module-level function
# ``return_unk`` (returning the <unk> id 0) in whatever module wrote it; it is replaced by a
# local stand-in with the same behaviour instead of importing the writer's module.
_FACTORY_STUBS: dict[str, Callable[[], int]] = {"return_unk": lambda: 0}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals of :data:`SAFE_GLOBALS`.

    Parameters
    ----------
    file : binary file object
        The pickle stream.
    where : str
        File name used in error messages.
    **kwargs
        Passed to :class:`pickle.Unpickler` (``encoding`` ...).
    """

    def __init__(self, file: Any, where: str, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.where = where

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        if name in _FACTORY_STUBS:
            return _FACTORY_STUBS[name]
        raise DataError(
            f"{self.where}: refused to unpickle global `{module}.{name}` (only containers, "
            "numbers, strings and numpy arrays are allowed; pass --trust-pickle / trusted=True "
            "if you trust this file)."
        )


def _unpickle(stream: Any, where: str, trusted: bool, encoding: str) -> Any:
    if trusted:
        return _unpickle_with(pickle.Unpickler(stream, encoding=encoding), where)
    return _unpickle_with(RestrictedUnpickler(stream, where, encoding=encoding), where)


def load_pickle(path: str | Path, *, trusted: bool = False, encoding: str = "latin1") -> Any:
    """Unpickle ``path``, admitting only plain containers and numpy objects unless trusted.

    Parameters
    ----------
    path : str or Path
        Pickle file.
    trusted : bool
        Use the unrestricted unpickler (runs whatever code the file names).
    encoding : str
        How Python 2 ``str`` objects are decoded; ``latin1`` also keeps numpy arrays from
        Python 2 pickles intact.

    Returns
    -------
    object
        The unpickled object.

    Raises
    ------
    DataError
        When the file is missing, truncated, not a pickle, or references a refused global.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file does not exist.")
    with open(path, "rb") as stream:
        return _unpickle(stream, str(path), trusted, encoding)


def loads_pickle(data: bytes, *, where: str = "<bytes>", trusted: bool = False) -> Any:
    """Unpickle bytes with the same rules as :func:`load_pickle`.

    >>> import pickle
    >>> loads_pickle(pickle.dumps({"a": [1, 2.5, "x"]}))
    {'a': [1, 2.5, 'x']}
    """
    return _unpickle(io.BytesIO(data), where, trusted, "latin1")


# torch storage class name -> numpy dtype of its raw little-endian bytes
_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


def _rebuild_tensor(
    storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_ignored: Any
) -> np.ndarray:
    """Numpy stand-in for ``torch._utils._rebuild_tensor_v2`` (a strided view, copied)."""
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride)
    )  # (*size)
    return np.array(view)


class _TorchZipUnpickler(RestrictedUnpickler):
    """Restricted unpickler for ``data.pkl`` of a torch zip archive; tensors become numpy."""

    def __init__(self, file: Any, where: str, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file, where, encoding="latin1")
        self.archive = archive
        self.prefix = prefix

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        # pid = ("storage", dtype from find_class, key, location, numel)
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise DataError(f"{self.where}: unsupported persistent id {pid!r}.")
        dtype, key = pid[1], pid[2]
        if not isinstance(dtype, str):
            raise DataError(f"{self.where}: unsupported tensor storage type {dtype!r}.")
        try:
            raw = self.archive.read(f"{self.prefix}/data/{key}")
        except KeyError as err:
            raise DataError(f"{self.where}: tensor storage {key!r} is missing.") from err
        return np.frombuffer(raw, dtype=dtype)


def load_torch_tensors(path: str | Path, *, trusted: bool = False) -> Any:
    """Load a ``torch.save`` file, returning its object with tensors as numpy arrays.

    Untrusted files must be in torch's zip format (``torch >= 1.6``); the pickle inside is
    read with :class:`RestrictedUnpickler`, tensors are rebuilt from their raw storages
    without importing torch, and a ``defaultdict`` whose factory is a module-level
    ``return_unk`` gets a local stand-in. ``trusted=True`` uses ``torch.load`` (any format).

    Parameters
    ----------
    path : str or Path
        The ``.pt`` file.
    trusted : bool
        Allow arbitrary code in the file.

    Returns
    -------
    object
        The saved object; tensors are numpy arrays (``trusted=True``: torch tensors).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file does not exist.")
    if trusted:
        return _torch_load_trusted(path)
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path}: not a torch zip archive (saved by torch < 1.6, or corrupt); re-save it "
            "with a recent torch or pass --trust-pickle / trusted=True if you trust it."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if not pkl:
                raise DataError(f"{path}: torch archive without data.pkl.")
            prefix = pkl[0].split("/", 1)[0]
            stream = io.BytesIO(archive.read(pkl[0]))
            unpickler = _TorchZipUnpickler(stream, str(path), archive, prefix)
            return _unpickle_with(unpickler, str(path))
    except zipfile.BadZipFile as err:
        raise DataError(f"{path}: corrupt torch archive: {err}") from err


def _unpickle_with(unpickler: pickle.Unpickler, where: str) -> Any:
    try:
        return unpickler.load()
    except DataError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        ImportError,
        UnicodeDecodeError,
        OverflowError,
    ) as err:
        # protocol violations surface as any of these, depending on where the bytes break
        raise DataError(
            f"{where}: not a readable pickle (truncated or corrupt?): {type(err).__name__}: {err}"
        ) from err


def _torch_load_trusted(path: Path) -> Any:
    import torch

    class _Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if name in _FACTORY_STUBS:
                try:
                    return super().find_class(module, name)
                except (ImportError, AttributeError):
                    return _FACTORY_STUBS[name]  # the writer's module is not importable here
            return super().find_class(module, name)

    shim = types.ModuleType("mmalign_pickle_shim")
    shim.Unpickler = _Unpickler  # type: ignore[attr-defined]
    shim.load = pickle.load  # type: ignore[attr-defined]
    shim.__name__ = "pickle"
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=shim)
    except Exception as err:  # torch raises many types for bad archives
        raise DataError(f"{path}: torch.load failed: {type(err).__name__}: {err}") from err
