"""Missingness as data: which modalities of a sample are present, and which of their steps.

The random-missing protocol (``mmalign run --missing-rate R``) draws, for every sample of
every split, whether each modality is present: each (sample, modality) is missing
independently with probability ``R`` and, when a draw leaves a sample with none, one
modality chosen uniformly is kept. A modality whose sequence has length 0 in the file is
missing already and is never drawn present (the kept one is then chosen among the others) (the rule of GCNet, Lian et al., TPAMI 2023, and of
MMIN's test conditions, Zhao et al., ACL 2021, drawn at random). The same rule holds in
train, valid and test.

With ``frame_drop F`` a present modality also loses a share ``F`` of its steps in bursts
(face-tracker dropouts, silent segments, ASR gaps): along the steps, a two-state Markov
chain whose stationary drop probability is ``F`` and whose bursts have mean length
``drop_burst`` steps (geometric). A present modality keeps at least one step: a sequence
dropped whole keeps its middle step.

Each split is drawn from its own random streams, so the draw depends only on the seed, the
options, the split sizes and lengths: never on the method. :class:`RandomMissingness` is
saved as JSON (``missingness.json`` in a run folder) like the pair protocol's split.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmalign.data.dataset import (
    MODALITY_ALIASES,
    SPLIT_NAMES,
    MultimodalDataset,
    Split,
    canonical_modality,
)
from mmalign.data.json_document import read_document, write_document
from mmalign.data.splits import MissingSplit
from mmalign.validation import ConfigError, DataError, check_fraction

__all__ = [
    "SplitMissingness",
    "RandomMissingness",
    "draw_missingness",
    "pair_missingness",
    "burst_drops",
    "pattern_names",
    "ordered_patterns",
    "short_name",
    "true_runs",
]

_FORMAT = "mmalign.random_missingness"
_VERSION = 1
_SHORT = {full: short for short, full in MODALITY_ALIASES.items()}


def short_name(modality: str) -> str:
    """Short name of a modality in pattern names: ``t``/``v``/``a``, else the name itself.

    >>> short_name("vision"), short_name("pose")
    ('v', 'pose')
    """
    return _SHORT.get(modality, modality)


def pattern_names(present: np.ndarray, modalities: tuple[str, ...]) -> np.ndarray:
    """Name each sample's present modalities: their short names in ``modalities`` order.

    Parameters
    ----------
    present : ndarray of bool, shape (N, K)
    modalities : tuple of str, length K

    Returns
    -------
    ndarray of str, shape (N,)
        E.g. ``"tv"``; ``"+"`` joins names longer than one letter (``"t+pose"``).

    >>> pattern_names(np.array([[1, 0, 1], [1, 1, 1]], bool), ("text", "vision", "audio")).tolist()
    ['ta', 'tva']
    """
    shorts = [short_name(m) for m in modalities]
    sep = "" if all(len(s) == 1 for s in shorts) else "+"
    codes = present.astype(np.int64) @ (1 << np.arange(len(modalities)))  # (N,) one per pattern
    names = {
        int(c): sep.join(s for k, s in enumerate(shorts) if c >> k & 1) for c in np.unique(codes)
    }
    return np.array([names[int(c)] for c in codes] if len(codes) else [], dtype=object)


def ordered_patterns(modalities: tuple[str, ...]) -> list[str]:
    """Return every pattern name, fewest modalities first, then in the modalities' order.

    >>> ordered_patterns(("text", "vision", "audio"))
    ['t', 'v', 'a', 'tv', 'ta', 'va', 'tva']
    """
    count = len(modalities)
    present = [
        np.isin(np.arange(count), subset)
        for size in range(1, count + 1)
        for subset in itertools.combinations(range(count), size)
    ]
    return pattern_names(np.array(present, dtype=bool).reshape(-1, count), modalities).tolist()


def burst_drops(
    rng: np.random.Generator, lengths: np.ndarray, width: int, share: float, burst: float
) -> np.ndarray:
    """Draw dropped steps in bursts: a two-state Markov chain along the steps of each sample.

    The chain starts in its stationary law (dropped with probability ``share``), leaves a
    burst with probability ``1 / burst`` (mean burst length ``burst``) and starts one with
    probability ``share / (burst (1 - share))``, so a share ``share`` of the steps is dropped
    on average. Steps past a sample's length are never dropped; a sample whose every step is
    dropped keeps its middle step.

    Parameters
    ----------
    rng : numpy.random.Generator
    lengths : ndarray of int, shape (N,)
    width : int
        Padded length ``L``.
    share : float
        ``F`` in [0, 1).
    burst : float
        Mean burst length in steps, >= 1.

    Returns
    -------
    ndarray of bool, shape (N, L)
        True on dropped steps.

    Raises
    ------
    ConfigError
        ``share`` is too large for ``burst``: the chain needs ``share <= burst / (burst + 1)``.
    """
    n = len(lengths)
    if share == 0 or n == 0 or width == 0:
        return np.zeros((n, width), dtype=bool)
    start = share / (burst * (1.0 - share))  # P(kept -> dropped)
    if start > 1:
        raise ConfigError(
            f"`frame_drop` must be <= drop_burst / (drop_burst + 1) = {burst / (burst + 1):.3f} "
            f"for bursts of mean length {burst:g}; got {share!r}."
        )
    stay = 1.0 - 1.0 / burst  # P(dropped -> dropped)
    u = rng.random((n, width))  # (N, L) one uniform per step
    dropped = np.empty((n, width), dtype=bool)
    dropped[:, 0] = u[:, 0] < share
    for j in range(1, width):  # along the steps; vectorised over samples
        dropped[:, j] = np.where(dropped[:, j - 1], u[:, j] < stay, u[:, j] < start)
    inside = np.arange(width)[None, :] < lengths[:, None]  # (N, L)
    dropped &= inside
    whole = (lengths > 0) & (dropped.sum(1) == lengths)  # (N,) every step dropped
    dropped[whole, lengths[whole] // 2] = False
    return dropped


@dataclass(frozen=True, eq=False)
class SplitMissingness:
    """Presence of the modalities and of their steps in one split.

    Attributes
    ----------
    modalities : tuple of str
        The dataset's modalities, in its order (the columns of ``present``).
    present : ndarray of bool, shape (N, K)
        True where the sample holds the modality.
    dropped : dict[str, ndarray]
        Modality -> (N, L_m) bool, True on dropped steps (only inside the length of a
        present modality).
    """

    modalities: tuple[str, ...]
    present: np.ndarray
    dropped: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.present.shape[0])

    def patterns(self) -> np.ndarray:
        """Each sample's pattern name (N,), e.g. ``"tv"`` (see :func:`pattern_names`)."""
        return pattern_names(self.present, self.modalities)

    def valid_steps(self, split: Split, modality: str) -> np.ndarray:
        """Return the steps of ``modality`` a method may read: present, inside the length, kept.

        Returns
        -------
        ndarray of bool, shape (N, L_m)
        """
        k = self.modalities.index(modality)
        lengths = np.asarray(split.lengths[modality])
        width = split.features[modality].shape[1]
        inside = np.arange(width)[None, :] < lengths[:, None]  # (N, L_m)
        return inside & self.present[:, k, None] & ~self.dropped[modality]

    @classmethod
    def observed(cls, split: Split) -> "SplitMissingness":
        """Return the missingness a split carries itself: a modality is absent where its length is 0.

        For new data, where absent modalities come as zero-length sequences; no step is
        dropped.
        """
        modalities = tuple(split.modalities)
        present = np.stack([np.asarray(split.lengths[m]) > 0 for m in modalities], axis=1)
        dropped = {m: np.zeros(split.features[m].shape[:2], dtype=bool) for m in modalities}
        return cls(modalities, present, dropped)

    @classmethod
    def complete(cls, split: Split) -> "SplitMissingness":
        """Every modality present, no step dropped (the upper bound's view of a split)."""
        n = len(split)
        modalities = tuple(split.modalities)
        dropped = {m: np.zeros(split.features[m].shape[:2], dtype=bool) for m in modalities}
        return cls(modalities, np.ones((n, len(modalities)), dtype=bool), dropped)


@dataclass(frozen=True, eq=False)
class RandomMissingness:
    """One draw of the random-missing protocol for every split of a dataset.

    Build one with :func:`draw_missingness`.

    Attributes
    ----------
    missing_rate, frame_drop, drop_burst : float
    seed : int
    splits : dict[str, SplitMissingness]
        ``"train"``, ``"valid"``, ``"test"``.
    """

    missing_rate: float
    frame_drop: float
    drop_burst: float
    seed: int
    splits: dict[str, SplitMissingness]

    @property
    def modalities(self) -> tuple[str, ...]:
        """The dataset's modalities, in order."""
        return self.splits["train"].modalities

    def to_dict(self) -> dict:
        """JSON-ready: presence as 0/1 rows, dropped steps as ``[sample, start, end)`` bursts."""
        out: dict = {
            "format": _FORMAT,
            "version": _VERSION,
            "missing_rate": self.missing_rate,
            "frame_drop": self.frame_drop,
            "drop_burst": self.drop_burst,
            "seed": self.seed,
            "modalities": list(self.modalities),
            "splits": {},
        }
        for name, s in self.splits.items():
            out["splits"][name] = {
                "present": s.present.astype(int).tolist(),
                "widths": {m: int(d.shape[1]) for m, d in s.dropped.items()},
                "dropped": {m: true_runs(d).tolist() for m, d in s.dropped.items()},
            }
        return out

    def save(self, path: str | Path) -> Path:
        """Write the draw as JSON to ``path``; return the path."""
        return write_document(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "RandomMissingness":
        """Read a draw written by :meth:`save`; raise :class:`DataError` naming the file."""
        path = Path(path)
        raw = read_document(path, _FORMAT, _VERSION, "missingness draw")
        try:
            modalities = tuple(str(m) for m in raw["modalities"])
            splits = {}
            for name in SPLIT_NAMES:
                s = raw["splits"][name]
                present = np.asarray(s["present"], dtype=bool).reshape(-1, len(modalities))
                dropped = {
                    m: _from_bursts(
                        np.asarray(s["dropped"][m], dtype=np.int64).reshape(-1, 3),
                        len(present),
                        int(s["widths"][m]),
                    )
                    for m in modalities
                }
                splits[name] = SplitMissingness(modalities, present, dropped)
            return cls(
                float(raw["missing_rate"]),
                float(raw["frame_drop"]),
                float(raw["drop_burst"]),
                int(raw["seed"]),
                splits,
            )
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise DataError(f"{path}: malformed missingness draw ({err!r}).") from None

    def check_matches(self, dataset: MultimodalDataset) -> "RandomMissingness":
        """Raise :class:`DataError` unless ``dataset`` has this draw's modalities and sizes."""
        where = dataset.source or dataset.name
        if tuple(dataset.modalities) != self.modalities:
            raise DataError(
                f"{where}: the missingness was drawn for modalities {list(self.modalities)}; "
                f"the dataset has {list(dataset.modalities)}."
            )
        for name, s in self.splits.items():
            split = dataset.splits[name]
            for m in self.modalities:
                drawn, has = s.dropped[m].shape, split.features[m].shape[:2]
                if drawn != has:
                    raise DataError(
                        f"{where}: the missingness of split {name!r}, modality {m!r} was drawn "
                        f"for (samples, steps) = {drawn}; the dataset has {has}."
                    )
        return self


def true_runs(mask: np.ndarray) -> np.ndarray:
    """Return the maximal runs of True along each row of ``mask`` (N, L) as rows ``[row, start, end)``.

    Returns
    -------
    ndarray of int64, shape (R, 3)
        Ordered by row, then position.

    >>> true_runs(np.array([[1, 1, 0, 1], [0, 0, 0, 0]], bool)).tolist()
    [[0, 0, 2], [0, 3, 4]]
    """
    padded = np.pad(mask.astype(np.int8), ((0, 0), (1, 1)))  # (N, L+2)
    edges = np.diff(padded, axis=1)  # (N, L+1): +1 at a start, -1 after an end
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # row-major order: the k-th end closes the k-th start
    return np.stack([rows, starts, ends], axis=1).astype(np.int64)  # (R, 3)


def _from_bursts(bursts: np.ndarray, n: int, width: int) -> np.ndarray:
    """Inverse of :func:`true_runs`: (R, 3) rows -> (N, L) bool; raise ValueError on a bad row."""
    sample, start, end = bursts.T if len(bursts) else (np.zeros(0, int),) * 3
    bad = (sample < 0) | (sample >= n) | (start < 0) | (start >= end) | (end > width)
    if bad.any():
        row = bursts[np.flatnonzero(bad)[0]].tolist()
        raise ValueError(f"burst {row} is not [sample < {n}, start < end <= {width})")
    marks = np.zeros((n, width + 1), dtype=np.int64)
    np.add.at(marks, (bursts[:, 0], bursts[:, 1]), 1)
    np.add.at(marks, (bursts[:, 0], bursts[:, 2]), -1)
    return np.cumsum(marks, axis=1)[:, :width] > 0


def pair_missingness(
    dataset: MultimodalDataset, split: MissingSplit, source: str, setting: str = "A"
) -> dict[str, SplitMissingness]:
    """Express the pair protocol's draw as masks: the source always, the victim where kept.

    The paper's protocol is one way to draw missingness: every other modality is absent and
    no step is dropped. Training rows follow the complete split; valid and test rows follow
    ``setting`` (``"A"``, ``"B"`` or ``"complete"``, see :meth:`MissingSplit.present`).

    Returns
    -------
    dict[str, SplitMissingness]
        Split name -> its masks.
    """
    source = canonical_modality(source, dataset.modalities)
    modalities = tuple(dataset.modalities)
    out = {}
    for name in SPLIT_NAMES:
        data = dataset.splits[name]
        present = np.zeros((len(data), len(modalities)), dtype=bool)
        present[:, modalities.index(source)] = True
        present[:, modalities.index(split.victim)] = split.present(name, setting)
        dropped = {m: np.zeros(data.features[m].shape[:2], dtype=bool) for m in modalities}
        out[name] = SplitMissingness(modalities, present, dropped)
    return out


def _draw_split(
    split: Split, k: int, rate: float, share: float, burst: float, seed: int
) -> SplitMissingness:
    modalities = tuple(split.modalities)
    n, count = len(split), len(modalities)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1000 + k]))
    # a modality of length 0 is missing in the file itself: never drawn present
    available = np.stack([np.asarray(split.lengths[m]) > 0 for m in modalities], axis=1)
    present = (rng.random((n, count)) >= rate) & available  # (N, K)
    keep = rng.integers(count, size=n)  # (N,) drawn for every sample: the stream stays fixed
    order = rng.random((n, count))  # (N, K) a random available one where ``keep`` is not
    rows = np.arange(n)
    keep = np.where(available[rows, keep], keep, np.argmax(order * available, axis=1))
    none = ~present.any(1) & available.any(1)
    present[none, keep[none]] = True
    dropped = {}
    for j, m in enumerate(modalities):  # per modality, vectorised over samples
        stream = np.random.default_rng(np.random.SeedSequence([seed, 1000 + k, 1 + j]))
        lengths = np.where(present[:, j], np.asarray(split.lengths[m], dtype=np.int64), 0)
        dropped[m] = burst_drops(stream, lengths, split.features[m].shape[1], share, burst)
    return SplitMissingness(modalities, present, dropped)


def draw_missingness(
    dataset: MultimodalDataset,
    missing_rate: float,
    frame_drop: float = 0.0,
    drop_burst: float = 3.0,
    seed: int = 0,
) -> RandomMissingness:
    """Draw the random-missing protocol for every split of ``dataset``, reproducibly.

    Parameters
    ----------
    dataset : MultimodalDataset
    missing_rate : float
        ``R`` in [0, 1): each (sample, modality) is missing with this probability; at least
        one modality is kept per sample.
    frame_drop : float
        ``F`` in [0, 1): share of dropped steps in every present modality.
    drop_burst : float
        Mean burst length of dropped steps (>= 1).
    seed : int
        Split seed (>= 0).

    Returns
    -------
    RandomMissingness

    Examples
    --------
    >>> from mmalign.data.synthetic import SyntheticConfig, make_synthetic
    >>> ds = make_synthetic(SyntheticConfig(n_train=40, n_valid=8, n_test=8))
    >>> draw = draw_missingness(ds, 0.3, frame_drop=0.2, seed=0)
    >>> bool(draw.splits["train"].present.any(1).all())
    True
    """
    rate = check_fraction("missing_rate", missing_rate)
    share = check_fraction("frame_drop", frame_drop)
    if isinstance(drop_burst, bool) or not isinstance(drop_burst, (int, float)) or drop_burst < 1:
        raise ConfigError(f"`drop_burst` must be a number >= 1; got {drop_burst!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"`seed` must be an integer >= 0; got {seed!r}.")
    splits = {
        name: _draw_split(dataset.splits[name], k, rate, share, float(drop_burst), int(seed))
        for k, name in enumerate(SPLIT_NAMES)
    }
    return RandomMissingness(rate, share, float(drop_burst), int(seed), splits)
