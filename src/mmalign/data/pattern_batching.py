"""Batches of all modalities, each sample with its own missingness pattern.

:class:`PatternData` holds one split's tensors for every modality with the features of
absent modalities and dropped steps overwritten by zeros at construction (so no later code
can read them), and per sample the presence flags and the per-step validity masks of
:class:`~mmalign.data.missingness.SplitMissingness`. Every modality keeps its own time
axis. :meth:`PatternData.batch` is an index gather plus a trim per modality; nothing loops
over samples or patterns. It is the random-missing protocol's counterpart of
:class:`~mmalign.data.batching.PairData` and is iterated by the same
:func:`~mmalign.data.batching.iterate_batches`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor

from mmalign.data.dataset import Split
from mmalign.data.missingness import SplitMissingness
from mmalign.validation import DataError

__all__ = ["PatternBatch", "PatternData"]


@dataclass
class PatternBatch:
    """What every model of the random-missing protocol consumes.

    Attributes
    ----------
    modalities : tuple of str
        The modalities, in the dataset's order (the columns of ``present``).
    features : dict[str, Tensor]
        Modality -> (B, L_m, D_m) float32, zero where absent, dropped or padding.
    masks : dict[str, Tensor]
        Modality -> (B, L_m) bool, True on the steps a method may read (present, inside the
        length, not dropped).
    steps : dict[str, Tensor]
        Modality -> (B, L_m) bool, True inside the length of a present modality, dropped
        steps included (where an imputation of dropped steps goes).
    lengths : dict[str, Tensor]
        Modality -> (B,) int64, the length of a present modality (dropped steps counted), 0
        where it is absent: the row sums of ``steps``.
    present : Tensor, shape (B, K)
        bool.
    labels : Tensor, shape (B,)
    index : Tensor, shape (B,)
        int64 row of each sample in its split.
    """

    modalities: tuple[str, ...]
    features: dict[str, Tensor]
    masks: dict[str, Tensor]
    steps: dict[str, Tensor]
    lengths: dict[str, Tensor]
    present: Tensor
    labels: Tensor
    index: Tensor

    def to(self, device: torch.device | str) -> "PatternBatch":
        """Return a copy with every tensor on ``device``."""
        return replace(
            self,
            features={m: x.to(device) for m, x in self.features.items()},
            masks={m: x.to(device) for m, x in self.masks.items()},
            steps={m: x.to(device) for m, x in self.steps.items()},
            lengths={m: x.to(device) for m, x in self.lengths.items()},
            present=self.present.to(device),
            labels=self.labels.to(device),
            index=self.index.to(device),
        )

    def __len__(self) -> int:
        return int(self.index.shape[0])


@dataclass
class PatternData:
    """One split's tensors for every modality with its missingness, built once.

    Use :meth:`from_split`.

    Attributes
    ----------
    modalities : tuple of str
    features : dict[str, Tensor]
        Modality -> (N, L_m, D_m), zero where not readable.
    valid : dict[str, Tensor]
        Modality -> (N, L_m) bool, readable steps.
    lengths : dict[str, Tensor]
        Modality -> (N,) int64, the length of a present modality (dropped steps counted),
        0 where absent.
    present : Tensor, shape (N, K)
        bool.
    labels : Tensor, shape (N,)
    """

    modalities: tuple[str, ...]
    features: dict[str, Tensor]
    valid: dict[str, Tensor]
    lengths: dict[str, Tensor]
    present: Tensor
    labels: Tensor

    @classmethod
    def from_split(cls, split: Split, missingness: SplitMissingness) -> "PatternData":
        """Prepare the tensors of ``split`` under ``missingness`` (on the CPU; see :meth:`to`).

        Features of absent modalities and dropped steps become zeros here (by selection, so
        a NaN there is not read either).
        """
        modalities = missingness.modalities
        if tuple(split.modalities) != modalities or len(split) != len(missingness):
            raise DataError(
                f"the missingness ({len(missingness)} samples of {list(modalities)}) does not "
                f"match the split ({len(split)} samples of {list(split.modalities)})."
            )
        for m in modalities:
            if missingness.dropped[m].shape != split.features[m].shape[:2]:
                raise DataError(
                    f"the missingness of modality {m!r} was drawn for (N, L) = "
                    f"{missingness.dropped[m].shape}; the split has {split.features[m].shape[:2]}."
                )
        features, valid, lengths = {}, {}, {}
        for k, m in enumerate(modalities):
            keep = missingness.valid_steps(split, m)  # (N, L_m)
            x = np.where(keep[:, :, None], split.features[m], 0.0).astype(np.float32)
            features[m] = torch.from_numpy(np.ascontiguousarray(x))  # (N, L_m, D_m)
            valid[m] = torch.from_numpy(keep)
            n = np.where(missingness.present[:, k], np.asarray(split.lengths[m]), 0)
            lengths[m] = torch.from_numpy(n.astype(np.int64))
        return cls(
            modalities,
            features,
            valid,
            lengths,
            torch.from_numpy(missingness.present.copy()),
            torch.from_numpy(np.asarray(split.labels).copy()),
        )

    @property
    def device(self) -> torch.device:
        """Device of the tensors."""
        return self.present.device

    def to(self, device: torch.device | str) -> "PatternData":
        """Return a copy with every tensor on ``device`` (done once, not per batch)."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                moved[f.name] = value.to(device)
            elif isinstance(value, dict):
                moved[f.name] = {m: x.to(device) for m, x in value.items()}
        return replace(self, **moved)

    def __len__(self) -> int:
        return int(self.present.shape[0])

    def batch(self, index: Tensor, has_victim: Tensor | None = None) -> PatternBatch:
        """Gather the samples at ``index``, each modality trimmed to its longest (>= 1 step).

        Parameters
        ----------
        index : Tensor, shape (B,)
            int64 rows on :attr:`device`.
        has_victim : Tensor, optional
            Not used: every sample carries its own presence (the argument keeps one batch
            interface with :class:`~mmalign.data.batching.PairData` for the shared loop).

        Returns
        -------
        PatternBatch
        """
        index = index.to(device=self.device, dtype=torch.long)
        features, masks, steps, lengths = {}, {}, {}, {}
        for m in self.modalities:
            length = lengths[m] = self.lengths[m][index]  # (B,)
            trim = max(1, int(length.max()) if index.numel() else 0)
            features[m] = self.features[m][index, :trim]  # (B, L_m, D_m)
            masks[m] = self.valid[m][index, :trim]  # (B, L_m)
            steps[m] = torch.arange(trim, device=self.device) < length[:, None]  # (B, L_m)
        return PatternBatch(
            self.modalities,
            features,
            masks,
            steps,
            lengths,
            self.present[index],
            self.labels[index],
            index,
        )
