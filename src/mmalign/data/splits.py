"""Missing-modality splits: which samples keep the victim modality.

Follows the protocol of MM-Align (Han et al., EMNLP 2022, section 3.1 and 4.1) after
Ma et al. (SMIL, AAAI 2021): a share ``p`` (the survival rate) of the training samples keep
the victim modality (the *complete split*), the rest lose it (the *missing split*); in
validation and test the victim is missing for every sample (setting A) or kept with the
same rate ``p`` (setting B).

The draw depends only on the split seed, ``p`` and the split sizes: never on the method,
the source modality or the victim, so every method and every pair sees the same samples
(like the official ``resplit/group_<g>`` files). Each split is drawn from its own stream
(``SeedSequence([seed, k])``) as the first samples of one random permutation, so for one
seed the complete split at a smaller ``p`` is a subset of the one at a larger ``p``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmalign.config import check_option
from mmalign.data.dataset import SPLIT_NAMES, MultimodalDataset, canonical_modality
from mmalign.data.json_document import read_document, write_document
from mmalign.validation import ConfigError, DataError, check_in

__all__ = [
    "SETTINGS",
    "MissingSplit",
    "make_missing_split",
    "n_present",
]

SETTINGS: tuple[str, ...] = ("A", "B", "complete")
_FORMAT = "mmalign.missing_split"
_VERSION = 1


def n_present(p: float, n: int) -> int:
    """Return how many samples keep the victim: ``max(1, floor(p * n + 1e-9))``, at most ``n``.

    The ``1e-9`` keeps products such as ``0.1 * 1230`` that float arithmetic puts just
    below an integer on that integer.

    >>> n_present(0.1, 1284), n_present(0.5, 229), n_present(0.01, 5), n_present(1.0, 7)
    (128, 114, 1, 7)
    """
    return int(min(n, max(1, math.floor(p * n + 1e-9))))


def _first_of_permutation(seed: int, stream: int, n: int, k: int) -> np.ndarray:
    """Sorted int64 indices of the first ``k`` items of a seeded permutation of ``range(n)``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream]))
    return np.sort(rng.permutation(n)[:k]).astype(np.int64)


def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    x.setflags(write=False)
    return x


@dataclass(frozen=True, eq=False)
class MissingSplit:
    """Which samples of each split hold the victim modality.

    Build one with :func:`make_missing_split`; arrays are read-only.

    Attributes
    ----------
    victim : str
        Full modality name of the victim.
    p : float
        Survival rate in (0, 1].
    seed : int
        Split seed.
    n_train, n_valid, n_test : int
        Split sizes the split was drawn for.
    train_complete : ndarray, shape (n_complete,)
        Sorted int64 rows of training samples that keep the victim.
    train_missing : ndarray, shape (n_train - n_complete,)
        Sorted int64 rows of the other training samples.
    valid_present_b, test_present_b : ndarray, shape (N,)
        bool, True where the victim is present in setting B.
    """

    victim: str
    p: float
    seed: int
    n_train: int
    n_valid: int
    n_test: int
    train_complete: np.ndarray
    train_missing: np.ndarray
    valid_present_b: np.ndarray
    test_present_b: np.ndarray

    @property
    def n(self) -> dict[str, int]:
        """Split sizes, ``{"train": ..., "valid": ..., "test": ...}``."""
        return {"train": self.n_train, "valid": self.n_valid, "test": self.n_test}

    def present(self, split_name: str, setting: str = "A") -> np.ndarray:
        """Mask of the samples of ``split_name`` that hold the victim.

        Parameters
        ----------
        split_name : {"train", "valid", "test"}
        setting : {"A", "B", "complete"}
            ``"A"``: missing everywhere; ``"B"``: present with rate ``p``; ``"complete"``:
            present everywhere (the upper-bound baseline). Ignored for ``"train"``, which
            always returns the complete-split mask.

        Returns
        -------
        ndarray, shape (N,)
            bool, True where the victim is present (a fresh, writable array).
        """
        check_in("split_name", split_name, list(SPLIT_NAMES))
        check_in("setting", setting, list(SETTINGS))
        n = self.n[split_name]
        if split_name == "train":
            mask = np.zeros(n, dtype=bool)
            mask[self.train_complete] = True
            return mask
        if setting == "A":
            return np.zeros(n, dtype=bool)
        if setting == "complete":
            return np.ones(n, dtype=bool)
        return (self.valid_present_b if split_name == "valid" else self.test_present_b).copy()

    def check_matches(self, dataset: MultimodalDataset) -> "MissingSplit":
        """Raise :class:`DataError` unless ``dataset`` has this split's sizes and victim."""
        where = dataset.source or dataset.name
        sizes = {s: len(dataset.splits[s]) for s in SPLIT_NAMES}
        if sizes != self.n:
            raise DataError(
                f"{where}: the missing split was drawn for split sizes {self.n} but the "
                f"dataset has {sizes}."
            )
        if self.victim not in dataset.modalities:
            raise DataError(
                f"{where}: the missing split's victim {self.victim!r} is not a modality of "
                f"the dataset {list(dataset.modalities)}."
            )
        return self

    def to_dict(self) -> dict:
        """JSON-ready description (present samples stored as sorted row lists)."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "victim": self.victim,
            "p": self.p,
            "seed": self.seed,
            "n": self.n,
            "train_complete": self.train_complete.tolist(),
            "valid_present_b": np.flatnonzero(self.valid_present_b).tolist(),
            "test_present_b": np.flatnonzero(self.test_present_b).tolist(),
        }

    def save(self, path: str | Path) -> Path:
        """Write the split as JSON to ``path``; return the path."""
        return write_document(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: str | Path) -> "MissingSplit":
        """Read a split written by :meth:`save`; raise :class:`DataError` naming the file."""
        raw = read_document(path, _FORMAT, _VERSION, "missing split")
        try:
            n = {s: int(raw["n"][s]) for s in SPLIT_NAMES}
            rows = {
                k: np.asarray(raw[k], dtype=np.int64).reshape(-1)  # (K,)
                for k in ("train_complete", "valid_present_b", "test_present_b")
            }
            victim, p, seed = str(raw["victim"]), float(raw["p"]), int(raw["seed"])
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{path}: malformed missing split ({err!r}).") from None
        for key, split in (
            ("train_complete", "train"),
            ("valid_present_b", "valid"),
            ("test_present_b", "test"),
        ):
            r = rows[key]
            if r.size and (r.min() < 0 or r.max() >= n[split] or np.any(np.diff(r) <= 0)):
                raise DataError(
                    f"{path}: `{key}` must hold sorted distinct rows in [0, {n[split]}); "
                    f"got {r.tolist()[:10]}..."
                )
        return cls._build(
            victim,
            p,
            seed,
            n,
            rows["train_complete"],
            {s: rows[f"{s}_present_b"] for s in ("valid", "test")},
        )

    @classmethod
    def _build(
        cls,
        victim: str,
        p: float,
        seed: int,
        n: dict[str, int],
        train_complete: np.ndarray,
        present_rows: dict[str, np.ndarray],
    ) -> "MissingSplit":
        keep = np.zeros(n["train"], dtype=bool)
        keep[train_complete] = True
        masks = {}
        for s in ("valid", "test"):
            masks[s] = np.zeros(n[s], dtype=bool)
            masks[s][present_rows[s]] = True
        return cls(
            victim=victim,
            p=p,
            seed=seed,
            n_train=n["train"],
            n_valid=n["valid"],
            n_test=n["test"],
            train_complete=_readonly(np.flatnonzero(keep).astype(np.int64)),
            train_missing=_readonly(np.flatnonzero(~keep).astype(np.int64)),
            valid_present_b=_readonly(masks["valid"]),
            test_present_b=_readonly(masks["test"]),
        )


def make_missing_split(
    dataset: MultimodalDataset, victim: str, p: float, seed: int
) -> MissingSplit:
    """Draw which samples keep the victim modality, reproducibly.

    Counts: ``n_complete = max(1, floor(p * N_train + 1e-9))`` training samples keep the
    victim; in setting B, ``max(1, floor(p * N + 1e-9))`` of the ``N`` validation (test)
    samples keep it (see :func:`n_present`). Which ones depends only on ``seed``, ``p`` and
    the split sizes.

    Parameters
    ----------
    dataset : MultimodalDataset
    victim : str
        Victim modality, full or short name (``t``/``v``/``a``).
    p : float
        Survival rate in (0, 1].
    seed : int
        Split seed (>= 0).

    Returns
    -------
    MissingSplit

    Examples
    --------
    >>> from mmalign.data.synthetic import SyntheticConfig, make_synthetic
    >>> ds = make_synthetic(SyntheticConfig(n_train=10, n_valid=4, n_test=4))
    >>> s = make_missing_split(ds, "v", 0.3, seed=0)
    >>> s.victim, len(s.train_complete), len(s.train_missing), int(s.present("test", "B").sum())
    ('vision', 3, 7, 1)
    """
    full = canonical_modality(victim) if isinstance(victim, str) else victim
    check_in("victim", full, list(dataset.modalities))
    p = check_option("p", p)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"`seed` must be an integer >= 0; got {seed!r}.")
    seed = check_option("seed", int(seed))
    seed = int(seed)
    n = {s: len(dataset.splits[s]) for s in SPLIT_NAMES}
    # one independent stream per split: the train draw does not depend on the test size
    rows = {
        s: _first_of_permutation(seed, k, n[s], n_present(p, n[s]))
        for k, s in enumerate(SPLIT_NAMES)
    }
    return MissingSplit._build(
        full, p, seed, n, rows["train"], {s: rows[s] for s in ("valid", "test")}
    )
