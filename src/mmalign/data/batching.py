"""Batches of one (source, victim) pair, built from tensors prepared once per split.

:class:`PairData` holds one split's source and victim tensors for a pair, with the victim
features of samples that lack the victim overwritten by zeros at construction (so no later
code can read them). For unaligned data the victim either keeps its own time axis (methods
that align unequal lengths, such as MM-Align) or is resampled onto the source's time steps
(methods that need one shared axis). :meth:`PairData.batch` is an index gather plus a trim
to the longest sequences in the batch; :func:`iterate_batches` cuts an index array into such
batches. Nothing loops over samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor

from mmalign.data.dataset import Split, canonical_modality
from mmalign.validation import ConfigError, check_shape

__all__ = ["Batch", "PairData", "iterate_batches", "nearest_step_index"]


@dataclass
class Batch:
    """What every model consumes (see ``docs/architecture.md``).

    Attributes
    ----------
    source : Tensor, shape (B, L, D_s)
        float32 source features, valid steps first, zero padded.
    source_mask : Tensor, shape (B, L)
        bool, True on valid source steps.
    victim : Tensor, shape (B, M, D_v)
        float32 victim features, zero for samples without it. On the source's time axis
        (``M = L``) for aligned or resampled data; on its own axis otherwise.
    victim_mask : Tensor, shape (B, M)
        bool, True on valid victim steps; all False where ``has_victim`` is False.
    has_victim : Tensor, shape (B,)
        bool.
    labels : Tensor, shape (B,)
        float32 regression targets or int64 classes.
    index : Tensor, shape (B,)
        int64 row of each sample in its split.
    """

    source: Tensor
    source_mask: Tensor
    victim: Tensor
    victim_mask: Tensor
    has_victim: Tensor
    labels: Tensor
    index: Tensor

    def to(self, device: torch.device | str) -> "Batch":
        """Return a copy with every tensor on ``device``."""
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def __len__(self) -> int:
        return int(self.index.shape[0])


def nearest_step_index(
    source_lengths: np.ndarray, victim_lengths: np.ndarray, length: int
) -> np.ndarray:
    """Victim step read by each source step when resampling by nearest step.

    Target step ``j`` of a sample with source length ``Ls`` and victim length ``Lv`` reads
    victim step ``floor((j + 0.5) * Lv / Ls)`` (computed exactly in integers as
    ``((2j + 1) Lv) // (2 Ls)``), clipped to ``[0, Lv - 1]``; 0 where the step is padding
    or a length is 0.

    Parameters
    ----------
    source_lengths, victim_lengths : ndarray, shape (N,)
        int lengths.
    length : int
        Padded source length ``L``.

    Returns
    -------
    ndarray, shape (N, L)
        int64 victim step per source step.

    Examples
    --------
    >>> nearest_step_index(np.array([4, 3, 2]), np.array([2, 6, 0]), 4).tolist()
    [[0, 0, 1, 1], [1, 3, 5, 0], [0, 0, 0, 0]]
    """
    ls = np.asarray(source_lengths, dtype=np.int64)[:, None]  # (N, 1)
    lv = np.asarray(victim_lengths, dtype=np.int64)[:, None]  # (N, 1)
    steps = np.arange(length, dtype=np.int64)[None, :]  # (1, L)
    index = ((2 * steps + 1) * lv) // np.maximum(2 * ls, 1)  # (N, L)
    index = np.clip(index, 0, np.maximum(lv - 1, 0))  # (N, L)
    return np.where((steps < ls) & (lv > 0), index, 0)  # (N, L)


@dataclass
class PairData:
    """One split's tensors for one (source, victim) pair, built once.

    Use :meth:`from_split`. For aligned or resampled data the victim lives on the source's
    time axis: ``victim`` has the source's padded length ``L`` and a sample's victim length
    is its source length when the victim is present and non-empty, else 0. Otherwise the
    victim keeps its own padded length ``M`` and lengths.

    Attributes
    ----------
    source : Tensor, shape (N, L, D_s)
    source_lengths : Tensor, shape (N,)
        int64.
    victim : Tensor, shape (N, L or M, D_v)
        Zero for samples without the victim.
    victim_lengths : Tensor, shape (N,)
        int64, 0 where the victim is absent or empty.
    labels : Tensor, shape (N,)
    present : Tensor, shape (N,)
        bool, True where the victim is present.
    source_name, victim_name : str
    resampled : bool
        True when the victim was resampled onto the source's steps (unaligned data).
    own_axis : bool
        True when the victim keeps its own time axis (unaligned data, ``resample=False``).
    """

    source: Tensor
    source_lengths: Tensor
    victim: Tensor
    victim_lengths: Tensor
    labels: Tensor
    present: Tensor
    source_name: str
    victim_name: str
    resampled: bool
    own_axis: bool = False

    @classmethod
    def from_split(
        cls,
        split: Split,
        source: str,
        victim: str,
        present: np.ndarray | None = None,
        resample: bool = True,
    ) -> "PairData":
        """Prepare the pair's tensors of ``split`` (on the CPU; move them with :meth:`to`).

        Victim features of samples where ``present`` is False are replaced by zeros here,
        so no later code can read them. When source and victim differ in padded length or
        in any present sample's length (unaligned data), the victim is resampled onto the
        source's steps by nearest step (:func:`nearest_step_index`) if ``resample`` is True,
        and keeps its own time axis otherwise.

        Parameters
        ----------
        split : Split
        source, victim : str
            Modality names, full or short (``t``/``v``/``a``).
        present : ndarray of bool, shape (N,), optional
            True where the victim is present; default all True.
        resample : bool, default True
            Resample an unaligned victim onto the source's steps (for methods that need one
            shared time axis).

        Returns
        -------
        PairData
        """
        available = split.modalities
        source = canonical_modality(source, available)
        victim = canonical_modality(victim, available)
        if source == victim:
            raise ConfigError(f"`victim` must differ from the source {source!r}; got {victim!r}.")
        n = len(split)
        if present is None:
            present = np.ones(n, dtype=bool)
        present = np.asarray(present)
        check_shape("present", present.shape, (n,))
        if present.dtype != bool:
            raise ConfigError(f"`present` must be a bool array; got dtype {present.dtype}.")
        x_src = np.ascontiguousarray(split.features[source], dtype=np.float32)  # (N, L, D_s)
        len_src = np.asarray(split.lengths[source], dtype=np.int64)  # (N,)
        len_vic = np.where(present, np.asarray(split.lengths[victim], dtype=np.int64), 0)
        # zero the absent samples before anything else touches their victim features
        x_vic = np.where(present[:, None, None], split.features[victim], 0.0)  # (N, M, D_v)
        x_vic = x_vic.astype(np.float32, copy=False)
        length = x_src.shape[1]
        aligned = x_vic.shape[1] == length and np.array_equal(len_vic[present], len_src[present])
        if aligned:
            len_out = np.where(present, len_src, 0)  # (N,)
        elif not resample:
            len_out = len_vic  # (N,) the victim's own lengths, 0 where absent
        else:
            index = nearest_step_index(len_src, len_vic, length)  # (N, L)
            x_vic = np.take_along_axis(x_vic, index[:, :, None], axis=1)  # (N, L, D_v)
            len_out = np.where(len_vic > 0, len_src, 0)  # (N,)
            keep = np.arange(length)[None, :] < len_out[:, None]  # (N, L)
            x_vic = np.where(keep[:, :, None], x_vic, 0.0).astype(np.float32)  # (N, L, D_v)
        return cls(
            source=torch.from_numpy(x_src),
            source_lengths=torch.from_numpy(len_src.copy()),
            victim=torch.from_numpy(np.ascontiguousarray(x_vic)),
            victim_lengths=torch.from_numpy(len_out.astype(np.int64)),
            labels=torch.from_numpy(np.asarray(split.labels).copy()),
            present=torch.from_numpy(present.copy()),
            source_name=source,
            victim_name=victim,
            resampled=not aligned and resample,
            own_axis=not aligned and not resample,
        )

    @property
    def device(self) -> torch.device:
        """Device of the tensors."""
        return self.source.device

    def to(self, device: torch.device | str) -> "PairData":
        """Return a copy with every tensor on ``device`` (done once, not per batch)."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }
        return replace(self, **moved)

    def __len__(self) -> int:
        return int(self.source.shape[0])

    def batch(self, index: Tensor, has_victim: Tensor | None = None) -> Batch:
        """Gather the samples at ``index`` and trim to their longest sequences (>= 1 step).

        Parameters
        ----------
        index : Tensor, shape (B,)
            int64 rows on :attr:`device`.
        has_victim : Tensor, shape (B,), optional
            bool; defaults to ``present[index]``. It is combined with ``present[index]``
            by logical and: a batch never claims a victim the split does not hold, and
            False forces the victim out (zero features, empty mask).

        Returns
        -------
        Batch
        """
        index = index.to(device=self.device, dtype=torch.long)
        has = self.present[index]  # (B,)
        if has_victim is not None:
            has = has & has_victim.to(device=self.device, dtype=torch.bool)  # (B,)
        len_src = self.source_lengths[index]  # (B,)
        longest = int(len_src.max()) if index.numel() else 0
        trim = max(1, longest)
        steps = torch.arange(trim, device=self.device)
        source_mask = steps[None, :] < len_src[:, None]  # (B, L)
        source = self.source[index, :trim]  # (B, L, D_s)
        len_vic = torch.where(has, self.victim_lengths[index], 0)  # (B,)
        if self.own_axis:
            trim_vic = max(1, int(len_vic.max()) if index.numel() else 0)
            victim_mask = torch.arange(trim_vic, device=self.device) < len_vic[:, None]  # (B, M)
        else:
            trim_vic = trim
            victim_mask = source_mask & (len_vic > 0)[:, None]  # (B, L)
        victim = self.victim[index, :trim_vic]  # (B, M, D_v)
        victim = torch.where(
            has[:, None, None], victim, torch.zeros((), dtype=victim.dtype, device=self.device)
        )
        return Batch(
            source=source,
            source_mask=source_mask,
            victim=victim,
            victim_mask=victim_mask,
            has_victim=has,
            labels=self.labels[index],
            index=index,
        )


def iterate_batches(
    pair: PairData,
    indices: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    has_victim: bool | None = None,
) -> Iterator[Batch]:
    """Yield batches of the rows ``indices`` of ``pair``; the last one may be smaller.

    Parameters
    ----------
    pair : PairData
    indices : ndarray, shape (K,)
        Rows to visit (e.g. ``MissingSplit.train_complete``).
    batch_size : int
        Samples per batch (>= 1); a size above ``K`` gives one batch.
    shuffle : bool
        Visit the rows in a random order drawn from ``generator`` (a CPU generator).
    generator : torch.Generator, optional
        Source of the shuffle; the same seed gives the same batches.
    has_victim : bool, optional
        ``None`` uses the pair's ``present`` mask; ``False`` forces the victim out (batches
        of the missing split); ``True`` is the same as ``None`` (a victim the split does
        not hold is never claimed).

    Yields
    ------
    Batch
    """
    integer = isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
    if not integer or batch_size < 1:
        raise ConfigError(f"`batch_size` must be an integer >= 1; got {batch_size!r}.")
    rows = torch.tensor(np.asarray(indices), dtype=torch.long).reshape(
        -1
    )  # (K,) copy: split arrays are read-only
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= len(pair)):
        raise ConfigError(
            f"`indices` must lie in [0, {len(pair)}); got range "
            f"[{int(rows.min())}, {int(rows.max())}]."
        )
    if shuffle:
        rows = rows[torch.randperm(rows.numel(), generator=generator)]  # (K,)
    rows = rows.to(pair.device)
    for start in range(0, rows.numel(), int(batch_size)):  # loop over batches, not samples
        chunk = rows[start : start + int(batch_size)]  # (B,)
        flag = None
        if has_victim is not None:
            flag = torch.full((chunk.numel(),), bool(has_victim), device=pair.device)  # (B,)
        yield pair.batch(chunk, flag)
