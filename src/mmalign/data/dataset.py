"""The one in-memory dataset that every loader produces and every method consumes.

Layout (documented in ``docs/data.md``): per split, per modality, a padded float32 array
``(N, L_m, D_m)`` whose valid steps come *first* (zeros after them) and an int64 length
vector ``(N,)``; labels ``(N,)`` (float32 regression scores or int64 class indices); ids
``(N,)`` (str). Loaders move left-padded files to this layout, so nothing downstream
has to guess the padding side. A split may also carry ground-truth alignment *spans*
between two modalities (:attr:`Split.spans`), when the data knows them (the synthetic
benchmark does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from mmalign.validation import ConfigError, DataError

__all__ = [
    "TaskType",
    "SPLIT_NAMES",
    "MODALITY_ALIASES",
    "Split",
    "MultimodalDataset",
    "canonical_modality",
    "check_span",
    "span_pair",
]

TaskType = Literal["regression", "classification"]
SPLIT_NAMES: tuple[str, ...] = ("train", "valid", "test")
MODALITY_ALIASES: dict[str, str] = {"t": "text", "v": "vision", "a": "audio"}


def canonical_modality(name: str, available: tuple[str, ...] | list[str] | None = None) -> str:
    """Map a short modality name (``t``/``v``/``a``) to its full name and check it exists.

    >>> canonical_modality("t")
    'text'
    >>> canonical_modality("audio", ["text", "audio"])
    'audio'
    """
    full = MODALITY_ALIASES.get(name, name)
    if available is not None and full not in available:
        raise ConfigError(f"`modality` must be one of {sorted(available)}; got {name!r}.")
    return full


def span_pair(key: str, modalities: tuple[str, ...] | list[str], where: str) -> tuple[str, str]:
    """Return the ordered modality pair ``(a, b)`` that a span key ``"<a>_<b>"`` names.

    Parameters
    ----------
    key : str
        E.g. ``"audio_text"``.
    modalities : sequence of str
        The modality names the key may use.
    where : str
        The file or split, for messages.

    Returns
    -------
    (str, str)

    Raises
    ------
    DataError
        No pair of two different modalities spells ``key``, or several do (names with ``_``).

    >>> span_pair("audio_text", ["text", "audio"], "f")
    ('audio', 'text')
    """
    pairs = [(a, b) for a in modalities for b in modalities if a != b and f"{a}_{b}" == key]
    if len(pairs) != 1:
        state = "no" if not pairs else "more than one"
        raise DataError(
            f"{where}: span key {key!r} must be '<a>_<b>' for two different modalities a, b "
            f"of {list(modalities)}; {state} pair spells it."
        )
    return pairs[0]


def check_span(
    span: np.ndarray, shape: tuple[int, int], steps_b: int, where: str, key: str
) -> None:
    """Raise :class:`DataError` unless ``span`` is a valid span array of modality a onto b.

    A valid array is integer of shape ``(N, L_a, 2)``; each entry is a half-open range
    ``[start, end)`` with ``0 <= start < end <= L_b``, or ``(-1, -1)`` (past the length, or
    unknown).

    Parameters
    ----------
    span : ndarray, shape (N, L_a, 2)
    shape : (int, int)
        The expected ``(N, L_a)``.
    steps_b : int
        Padded length ``L_b`` of modality b.
    where : str
        The file or split, for messages.
    key : str
        The array's name, for messages (e.g. ``span_audio_text``).

    >>> check_span(np.array([[[0, 2], [-1, -1]]]), (1, 2), 2, "f", "span_a_b")
    >>> check_span(np.array([[[1, 1]]]), (1, 1), 2, "f", "span_a_b")
    Traceback (most recent call last):
        ...
    mmalign.validation.DataError: f: `span_a_b` must hold start < end on known entries; got [1, 1] at sample 0, step 0.
    """
    need = (*shape, 2)
    if span.shape != need:
        raise DataError(f"{where}: `{key}` must have shape (N, L_a, 2) = {need}; got {span.shape}.")
    if not np.issubdtype(span.dtype, np.integer):
        raise DataError(f"{where}: `{key}` must be an integer array; got {span.dtype}.")
    if span.size == 0:
        return
    start, end = span[..., 0], span[..., 1]  # (N, L_a) each
    low, high = int(span.min()), int(span.max())
    if low < -1 or high > steps_b:
        raise DataError(
            f"{where}: `{key}` values must lie in [-1, L_b={steps_b}]; got range [{low}, {high}]."
        )
    unknown = start == -1  # (N, L_a)
    checks = (
        (unknown != (end == -1), "-1 in both start and end or in neither"),
        (~unknown & (start >= end), "start < end on known entries"),
    )
    for bad, rule in checks:
        if bad.any():
            i, t = np.argwhere(bad)[0]
            raise DataError(
                f"{where}: `{key}` must hold {rule}; got {span[i, t].tolist()} at sample {i}, "
                f"step {t}."
            )


@dataclass
class Split:
    """One split (train, valid or test) of a multimodal dataset.

    Attributes
    ----------
    features : dict[str, ndarray]
        Modality name -> float32 array of shape ``(N, L_m, D_m)``; valid steps first.
    lengths : dict[str, ndarray]
        Modality name -> int64 array of shape ``(N,)`` with ``0 <= length <= L_m``.
    labels : ndarray, shape (N,)
        float32 regression targets or int64 class indices.
    ids : ndarray, shape (N,)
        Sample identifiers (str, object dtype).
    spans : dict[str, ndarray]
        Ground-truth alignment, when known (empty otherwise). ``spans["<a>_<b>"]`` (full
        modality names, e.g. ``"audio_text"``) is int64 of shape ``(N, L_a, 2)``: for each
        step of modality ``a``, the half-open range ``[start, end)`` of the steps of ``b``
        it truly corresponds to; ``(-1, -1)`` past ``a``'s length or where unknown.
    """

    features: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]
    labels: np.ndarray
    ids: np.ndarray
    spans: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names in insertion order."""
        return tuple(self.features)

    def subset(self, index: np.ndarray) -> "Split":
        """Return the samples at ``index`` (int indices or a boolean mask of shape ``(N,)``).

        Every array is cut, the ground-truth ``spans`` included.
        """
        return Split(
            features={m: x[index] for m, x in self.features.items()},
            lengths={m: n[index] for m, n in self.lengths.items()},
            labels=self.labels[index],
            ids=self.ids[index],
            spans={k: span[index] for k, span in self.spans.items()},
        )

    def validate(self, where: str, task: TaskType) -> None:
        """Raise :class:`DataError` naming ``where`` when the split is inconsistent."""
        n = len(self)
        if n == 0:
            raise DataError(f"{where}: the split is empty (0 samples).")
        if self.labels.ndim != 1:
            raise DataError(f"{where}: labels must have shape (N,); got {self.labels.shape}.")
        if self.ids.shape != (n,):
            raise DataError(f"{where}: ids have shape {self.ids.shape}, labels have N={n}.")
        if set(self.features) != set(self.lengths):
            raise DataError(f"{where}: features and lengths name different modalities.")
        for m, x in self.features.items():
            length = self.lengths[m]
            if x.ndim != 3:
                raise DataError(f"{where}: modality {m!r} must be (N, L, D); got {x.shape}.")
            if x.shape[0] != n:
                raise DataError(
                    f"{where}: modality {m!r} has {x.shape[0]} samples but labels have {n}."
                )
            if length.shape != (n,):
                raise DataError(
                    f"{where}: lengths of {m!r} have shape {length.shape}; need ({n},)."
                )
            if n and (length.min() < 0 or length.max() > x.shape[1]):
                bad = int(np.argmax((length < 0) | (length > x.shape[1])))
                raise DataError(
                    f"{where}: sample {bad} of modality {m!r} has length {int(length[bad])} "
                    f"but the padded array holds {x.shape[1]} steps."
                )
            if x.dtype != np.float32:
                raise DataError(f"{where}: modality {m!r} must be float32; got {x.dtype}.")
        for key, span in self.spans.items():
            a, b = span_pair(key, self.modalities, where)
            shape = (n, self.features[a].shape[1])
            check_span(span, shape, self.features[b].shape[1], where, f"spans[{key!r}]")
            if span.dtype != np.int64:
                raise DataError(f"{where}: `spans[{key!r}]` must be int64; got {span.dtype}.")
        if task == "regression" and self.labels.dtype != np.float32:
            raise DataError(f"{where}: regression labels must be float32; got {self.labels.dtype}.")
        if task == "classification" and self.labels.dtype != np.int64:
            raise DataError(f"{where}: class labels must be int64; got {self.labels.dtype}.")


@dataclass
class MultimodalDataset:
    """A dataset with ``train``, ``valid`` and ``test`` splits over the same modalities.

    Attributes
    ----------
    splits : dict[str, Split]
        Keys ``"train"``, ``"valid"``, ``"test"``.
    task : {"regression", "classification"}
    n_classes : int or None
        Number of classes for classification, ``None`` for regression.
    name : str
        Human-readable name (file stem or ``"synthetic"``).
    source : str
        Where it was loaded from (path or a description).
    cleaning : dict[str, int]
        Non-finite feature values replaced at load time, per modality.
    """

    splits: dict[str, Split]
    task: TaskType
    n_classes: int | None = None
    name: str = "dataset"
    source: str = ""
    cleaning: dict[str, int] = field(default_factory=dict)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names shared by all splits."""
        return self.splits["train"].modalities

    @property
    def feature_dims(self) -> dict[str, int]:
        """Feature width ``D_m`` per modality."""
        return {m: int(x.shape[2]) for m, x in self.splits["train"].features.items()}

    @property
    def output_dim(self) -> int:
        """1 for regression, ``n_classes`` for classification."""
        return 1 if self.task == "regression" else int(self.n_classes or 0)

    def validate(self) -> "MultimodalDataset":
        """Check every split and the cross-split invariants; return ``self``."""
        where = self.source or self.name
        missing = [s for s in SPLIT_NAMES if s not in self.splits]
        if missing:
            raise DataError(f"{where}: missing split(s) {missing}; need {list(SPLIT_NAMES)}.")
        if self.task not in ("regression", "classification"):
            raise DataError(
                f"{where}: task must be regression or classification; got {self.task!r}."
            )
        dims = self.feature_dims
        for s in SPLIT_NAMES:
            split = self.splits[s]
            split.validate(f"{where} [{s}]", self.task)
            other = {m: int(x.shape[2]) for m, x in split.features.items()}
            if other != dims:
                raise DataError(f"{where} [{s}]: feature widths {other} differ from train {dims}.")
        if self.task == "classification":
            if not self.n_classes or self.n_classes < 2:
                raise DataError(
                    f"{where}: classification needs n_classes >= 2; got {self.n_classes}."
                )
            for s in SPLIT_NAMES:
                y = self.splits[s].labels
                if y.min() < 0 or y.max() >= self.n_classes:
                    raise DataError(
                        f"{where} [{s}]: class labels must lie in [0, {self.n_classes}); "
                        f"got range [{y.min()}, {y.max()}]."
                    )
        return self
