"""Row-band storage of windowed transport plans.

The windowed cost of MM-Align (Han et al., "MM-Align: Learning Optimal Transport-based
Alignment Dynamics for Fast and Accurate Inference on Missing Modality Sequences", EMNLP 2022,
Eq. 7) is infinite outside the window ``abs(i - j) <= K``, so the plan is exactly zero there
(Sakoe & Chiba, 1978 call such a window a band). We therefore store a plan ``A`` of shape
``(B, L, M)`` as its *row band* ``band[b, i, k] = A[b, i, i + k - K]`` of shape ``(B, L, W)``
with ``W = 2K + 1``; entries whose victim step ``j = i + k - K`` falls outside ``[0, M)`` are 0.

The *column band* is the same plan seen from the victim side:
``col[b, j, k] = A[b, j + k - K, j]`` of shape ``(B, M, W)``.

Every helper works with index arithmetic (``gather``, ``scatter_add``) over the whole batch;
memory stays ``O(B * L * W)`` except in :func:`band_to_dense`, whose output is dense by request.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.functional import pad

from mmalign.validation import ConfigError

__all__ = [
    "band_offsets",
    "dense_to_band",
    "band_to_dense",
    "band_transpose",
    "band_valid_mask",
]


def _check_window(window: int) -> int:
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise ConfigError(f"`window` must be an integer >= 0; got {window!r}.")
    return int(window)


def _check_steps(
    z_source: object, z_victim: object, source_mask: object, victim_mask: object
) -> tuple[int, int, int, int]:
    """Check step tensors (B, L, D), (B, M, D) and masks (B, L), (B, M); return B, L, M, D."""

    def shape(x: object) -> str:
        return repr(tuple(x.shape)) if isinstance(x, Tensor) else type(x).__name__

    if not (isinstance(z_source, Tensor) and isinstance(z_victim, Tensor)) or (
        z_source.dim() != 3 or z_victim.dim() != 3
    ):
        raise ConfigError(
            "`z_source` and `z_victim` must have shapes (B, L, D) and (B, M, D); "
            f"got {shape(z_source)} and {shape(z_victim)}."
        )
    n_batch, n_rows, dim = z_source.shape
    n_cols = z_victim.shape[1]
    if z_victim.shape[0] != n_batch or z_victim.shape[2] != dim:
        raise ConfigError(
            f"`z_victim` must have shape ({n_batch}, M, {dim}) to match `z_source`; "
            f"got {shape(z_victim)}."
        )
    for name, mask, size in (
        ("source_mask", source_mask, n_rows),
        ("victim_mask", victim_mask, n_cols),
    ):
        if not isinstance(mask, Tensor) or tuple(mask.shape) != (n_batch, size):
            raise ConfigError(f"`{name}` must have shape ({n_batch}, {size}); got {shape(mask)}.")
    return n_batch, n_rows, n_cols, dim


def _check_band(band: Tensor, window: int) -> None:
    width = 2 * window + 1
    if band.dim() != 3 or band.shape[-1] != width:
        raise ConfigError(
            f"`band` must have shape (B, L, {width}) for window K={window}; "
            f"got {tuple(band.shape)!r}."
        )


def band_offsets(n_rows: int, n_cols: int, window: int, device=None) -> tuple[Tensor, Tensor]:
    """Column index and in-range flag of every row-band entry.

    Parameters
    ----------
    n_rows : int
        Number of rows ``L`` (source steps).
    n_cols : int
        Number of columns ``M`` (victim steps).
    window : int
        Window radius ``K``.
    device : torch.device, optional
        Device of the returned tensors.

    Returns
    -------
    index : Tensor, shape (L, W), int64
        ``i + k - K`` clamped into ``[0, M - 1]`` (safe for ``gather``; 0 when ``M == 0``).
    in_range : Tensor, shape (L, W), bool
        True where ``0 <= i + k - K < M``.

    Examples
    --------
    >>> index, in_range = band_offsets(2, 3, 1)
    >>> index.tolist(), in_range.tolist()
    ([[0, 0, 1], [0, 1, 2]], [[False, True, True], [True, True, True]])
    """
    rows = torch.arange(n_rows, device=device)[:, None]  # (L, 1)
    offsets = torch.arange(-window, window + 1, device=device)[None, :]  # (1, W)
    cols = rows + offsets  # (L, W)
    in_range = (cols >= 0) & (cols < n_cols)
    index = cols.clamp(0, max(n_cols - 1, 0))
    return index, in_range


def dense_to_band(dense: Tensor, window: int) -> Tensor:
    """Extract the row band of a dense plan.

    Parameters
    ----------
    dense : Tensor, shape (B, L, M)
        Dense matrix, ``dense[b, i, j]`` between source step ``i`` and victim step ``j``.
    window : int
        Window radius ``K``.

    Returns
    -------
    Tensor, shape (B, L, W)
        ``band[b, i, k] = dense[b, i, i + k - K]``, 0 where ``i + k - K`` is out of range.

    Examples
    --------
    >>> dense = torch.arange(9.0).reshape(1, 3, 3)
    >>> dense_to_band(dense, 1)[0].tolist()
    [[0.0, 0.0, 1.0], [3.0, 4.0, 5.0], [7.0, 8.0, 0.0]]
    """
    window = _check_window(window)
    if dense.dim() != 3:
        raise ConfigError(f"`dense` must have shape (B, L, M); got {tuple(dense.shape)!r}.")
    n_batch, n_rows, n_cols = dense.shape
    width = 2 * window + 1
    if n_cols == 0:
        return dense.new_zeros(n_batch, n_rows, width)
    index, in_range = band_offsets(n_rows, n_cols, window, dense.device)
    band = dense.gather(2, index.expand(n_batch, n_rows, width))  # (B, L, W)
    return band.masked_fill(~in_range, 0)


def band_to_dense(band: Tensor, window: int, n_cols: int) -> Tensor:
    """Expand a row band into a dense matrix with zeros outside the window.

    Parameters
    ----------
    band : Tensor, shape (B, L, W)
        Row band with ``W = 2K + 1``.
    window : int
        Window radius ``K``.
    n_cols : int
        Number of victim steps ``M`` of the dense result.

    Returns
    -------
    Tensor, shape (B, L, M)
        ``dense[b, i, i + k - K] = band[b, i, k]`` where in range, 0 elsewhere. Band entries
        whose column is out of range are dropped.

    Examples
    --------
    >>> band = torch.tensor([[[9.0, 1.0, 2.0], [3.0, 4.0, 5.0]]])
    >>> band_to_dense(band, 1, 3)[0].tolist()
    [[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]]
    """
    window = _check_window(window)
    _check_band(band, window)
    n_batch, n_rows, width = band.shape
    dense = band.new_zeros(n_batch, n_rows, n_cols)
    if n_cols == 0:
        return dense
    index, in_range = band_offsets(n_rows, n_cols, window, band.device)
    # out-of-range entries are clamped onto a valid column, so add them as zeros
    values = band.masked_fill(~in_range, 0)
    return dense.scatter_add(2, index.expand(n_batch, n_rows, width), values)  # (B, L, M)


def band_transpose(band: Tensor, window: int, n_cols: int) -> Tensor:
    """Turn a row band into the column band of the same matrix.

    Parameters
    ----------
    band : Tensor, shape (B, L, W)
        Row band, ``band[b, i, k] = A[b, i, i + k - K]``.
    window : int
        Window radius ``K``.
    n_cols : int
        Number of victim steps ``M``.

    Returns
    -------
    Tensor, shape (B, M, W)
        Column band ``col[b, j, k] = A[b, j + k - K, j]``, 0 where ``j + k - K`` is outside
        ``[0, L)``. Entry ``A[i, j]`` sits at ``band[i, j - i + K]`` and at ``col[j, i - j + K]``,
        so ``col[b, j, k] = band[b, j + k - K, 2K - k]``.

    Examples
    --------
    >>> dense = torch.arange(9.0).reshape(1, 3, 3)
    >>> col = band_transpose(dense_to_band(dense, 1), 1, 3)
    >>> torch.equal(col, dense_to_band(dense.transpose(1, 2), 1))
    True
    """
    window = _check_window(window)
    _check_band(band, window)
    n_batch, n_rows, width = band.shape
    if n_rows == 0:
        return band.new_zeros(n_batch, n_cols, width)
    flipped = band.flip(-1)  # (B, L, W): flipped[b, i, k] = band[b, i, 2K - k]
    index, in_range = band_offsets(n_cols, n_rows, window, band.device)  # (M, W) rows j + k - K
    col = flipped.gather(1, index.expand(n_batch, n_cols, width))  # (B, M, W)
    return col.masked_fill(~in_range, 0)


def band_valid_mask(source_mask: Tensor, victim_mask: Tensor, window: int) -> Tensor:
    """Which row-band entries pair a valid source step with a valid victim step.

    Parameters
    ----------
    source_mask : Tensor, shape (B, L), bool
        True on valid source steps.
    victim_mask : Tensor, shape (B, M), bool
        True on valid victim steps.
    window : int
        Window radius ``K``.

    Returns
    -------
    Tensor, shape (B, L, W), bool
        ``source_mask[b, i] & victim_mask[b, i + k - K]``, False where ``i + k - K`` is out of
        range.

    Examples
    --------
    >>> source_mask = torch.tensor([[True, True, False]])
    >>> victim_mask = torch.tensor([[True, False, False]])
    >>> band_valid_mask(source_mask, victim_mask, 1)[0].int().tolist()
    [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    """
    window = _check_window(window)
    if (
        source_mask.dim() != 2
        or victim_mask.dim() != 2
        or (source_mask.shape[0] != victim_mask.shape[0])
    ):
        raise ConfigError(
            "`source_mask` and `victim_mask` must have shapes (B, L) and (B, M); "
            f"got {tuple(source_mask.shape)!r} and {tuple(victim_mask.shape)!r}."
        )
    n_batch, n_rows = source_mask.shape
    n_cols = victim_mask.shape[1]
    width = 2 * window + 1
    if n_cols == 0:
        return torch.zeros(n_batch, n_rows, width, dtype=torch.bool, device=source_mask.device)
    # zero-pad the victim mask so that row i, offset k reads padded step i + k: a strided
    # view instead of an index gather, and out-of-range offsets read False
    padded = pad(victim_mask.bool(), (window, window + max(0, n_rows - n_cols)))  # (B, M + 2K)
    victim_ok = padded.unfold(1, width, 1)[:, :n_rows]  # (B, L, W)
    return victim_ok & source_mask.bool()[:, :, None]  # (B, L, W)
