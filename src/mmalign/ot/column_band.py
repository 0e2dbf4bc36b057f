"""Windowed OT between sequences of unequal length, on a rescaled diagonal column band.

Sources: Han, Chen, Kan & Poria, "MM-Align: Learning Optimal Transport-based Alignment
Dynamics for Fast and Accurate Inference on Missing Modality Sequences", EMNLP 2022,
section 3.4, Eq. 7-11 (windowed cost, entropic OT, Sinkhorn updates); Peyré & Cuturi,
"Computational Optimal Transport", Foundations and Trends in Machine Learning, 2019,
section 4.4 (log-domain Sinkhorn); Sakoe & Chiba, "Dynamic programming algorithm optimization
for spoken word recognition", IEEE Trans. ASSP, 1978 (the band, or window, around the
diagonal).

What we changed: the paper's window ``abs(i - j) <= K`` assumes one shared time axis. Here
the window follows the *rescaled* diagonal of each sample, so ``n`` source steps can be
aligned with ``m != n`` victim steps (e.g. 30 words against 330 audio frames): victim step
``j`` may pair with source step ``i`` when ``abs(i - c_j) <= K``, with the centre

    ``c_j = floor((2j + 1) n / (2m))`` clipped to ``[0, n - 1]``

(the source step under the midpoint of victim step ``j`` when both sequences span the unit
interval). A plan ``A`` of shape ``(B, L, M)`` is stored as its *column band*
``band[b, j, k] = A[b, c[b, j] + k - K, j]`` of shape ``(B, M, W)``, ``W = 2K + 1``. When
``n == m`` the centre is ``c_j = j`` and this is the column band of :mod:`mmalign.ot.band`.

Every function works on the whole padded batch with index arithmetic (``gather``,
``scatter_add``, ``scatter_reduce``); memory is ``O(B * M * W)`` plus the inputs, never
``L x M``, except in :func:`column_band_to_dense`, whose output is dense by request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from mmalign.ot.band import _check_steps, _check_window
from mmalign.ot.sinkhorn import (
    SinkhornResult,
    _check_int,
    _log_uniform,
    _marginal_error,
    _warn_unconverged,
)
from mmalign.validation import ConfigError, check_positive

__all__ = [
    "diagonal_centres",
    "column_band_index",
    "column_band_valid_mask",
    "column_band_valid_from_index",
    "dense_to_column_band",
    "column_band_to_dense",
    "column_cosine_cost",
    "ColumnSinkhornResult",
    "sinkhorn_columns",
]


def _is_integer_tensor(value: object) -> bool:
    return (
        isinstance(value, Tensor)
        and not value.dtype.is_floating_point
        and not value.dtype.is_complex
        and value.dtype != torch.bool
    )


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)!r}"
    return repr(value)


def _check_centres(centres: object, n_batch: int | None = None, n_cols: int | None = None) -> None:
    ok = _is_integer_tensor(centres) and centres.dim() == 2
    if ok and n_batch is not None:
        ok = centres.shape[0] == n_batch
    if ok and n_cols is not None:
        ok = centres.shape[1] == n_cols
    if not ok:
        batch = "B" if n_batch is None else n_batch
        cols = "M" if n_cols is None else n_cols
        raise ConfigError(
            f"`centres` must be an integer tensor of shape ({batch}, {cols}); "
            f"got {_describe(centres)}."
        )


def _check_masks(source_mask: Tensor, victim_mask: Tensor, n_batch: int, n_cols: int) -> None:
    if not isinstance(source_mask, Tensor) or source_mask.dim() != 2:
        raise ConfigError(
            f"`source_mask` must have shape ({n_batch}, L); got {_describe(source_mask)}."
        )
    if source_mask.shape[0] != n_batch:
        raise ConfigError(
            f"`source_mask` must have shape ({n_batch}, L); got {tuple(source_mask.shape)!r}."
        )
    if not isinstance(victim_mask, Tensor) or tuple(victim_mask.shape) != (n_batch, n_cols):
        got = tuple(victim_mask.shape) if isinstance(victim_mask, Tensor) else victim_mask
        raise ConfigError(f"`victim_mask` must have shape ({n_batch}, {n_cols}); got {got!r}.")


def _gather_rows(values: Tensor, index: Tensor, out: Tensor | None = None) -> Tensor:
    """Read ``values[b, index[b, j, k]]``: a (B, L) tensor at a (B, M, W) index.

    ``out``, if given, is a contiguous (B, M, W) buffer that receives the result.
    """
    n_batch, n_cols, width = index.shape
    if values.shape[1] == 0:  # nothing to read; every index is out of range
        return values.new_zeros(n_batch, n_cols, width) if out is None else out.zero_()
    flat_index = index.reshape(n_batch, n_cols * width)  # (B, M * W)
    flat_out = None if out is None else out.view(n_batch, n_cols * width)  # (B, M * W)
    flat = torch.gather(values, 1, flat_index, out=flat_out)  # (B, M * W)
    return flat.view(n_batch, n_cols, width)  # (B, M, W)


def diagonal_centres(source_lengths: Tensor, victim_lengths: Tensor, n_victim: int) -> Tensor:
    """Source step at the centre of each victim step's window (the rescaled diagonal).

    Parameters
    ----------
    source_lengths : Tensor, shape (B,), integer
        Number of valid source steps ``n_b`` of each sample (valid steps first).
    victim_lengths : Tensor, shape (B,), integer
        Number of valid victim steps ``m_b`` of each sample, at most ``n_victim``.
    n_victim : int
        Padded victim length ``M``.

    Returns
    -------
    Tensor, shape (B, M), int64
        ``c[b, j] = floor((2j + 1) n_b / (2 m_b))`` clipped to ``[0, n_b - 1]``; 0 where
        ``j >= m_b`` or ``n_b == 0`` or ``m_b == 0``. Equals ``j`` on valid steps when
        ``n_b == m_b``.

    Examples
    --------
    >>> diagonal_centres(torch.tensor([2, 3, 4]), torch.tensor([4, 2, 4]), 4).tolist()
    [[0, 0, 1, 1], [0, 2, 0, 0], [0, 1, 2, 3]]
    """
    n_victim = _check_int("n_victim", n_victim, 0)
    for name, lengths in (("source_lengths", source_lengths), ("victim_lengths", victim_lengths)):
        if not _is_integer_tensor(lengths) or lengths.dim() != 1:
            raise ConfigError(
                f"`{name}` must be a 1-D integer tensor of shape (B,); got {_describe(lengths)}."
            )
        if bool((lengths < 0).any()):
            raise ConfigError(f"`{name}` must be >= 0; got {lengths.tolist()!r}.")
    if source_lengths.shape != victim_lengths.shape:
        raise ConfigError(
            "`source_lengths` and `victim_lengths` must have the same shape (B,); "
            f"got {tuple(source_lengths.shape)!r} and {tuple(victim_lengths.shape)!r}."
        )
    if bool((victim_lengths > n_victim).any()):
        raise ConfigError(
            f"`victim_lengths` must be <= n_victim={n_victim}; got max {int(victim_lengths.max())}."
        )
    n = source_lengths.to(torch.int64)[:, None]  # (B, 1)
    m = victim_lengths.to(torch.int64)[:, None]  # (B, 1)
    steps = torch.arange(n_victim, device=source_lengths.device)[None, :]  # (1, M)
    # integer arithmetic: floor((j + 1/2) n / m) with no float rounding at the midpoints
    centres = (2 * steps + 1) * n // (2 * m).clamp_min(1)  # (B, M)
    centres = torch.minimum(centres, (n - 1).clamp_min(0))  # (B, M)
    live = (steps < m) & (n > 0)  # (B, M)
    return torch.where(live, centres, 0)


def column_band_index(centres: Tensor, window: int, n_source: int) -> tuple[Tensor, Tensor]:
    """Source index and in-range flag of every column-band entry.

    Parameters
    ----------
    centres : Tensor, shape (B, M), integer
        Window centre ``c[b, j]`` of each victim step (e.g. :func:`diagonal_centres`).
    window : int
        Window radius ``K``.
    n_source : int
        Padded source length ``L``.

    Returns
    -------
    index : Tensor, shape (B, M, W), int64
        ``c[b, j] + k - K`` clamped into ``[0, max(L - 1, 0)]`` (safe for ``gather``).
    in_range : Tensor, shape (B, M, W), bool
        True where ``0 <= c[b, j] + k - K < L``.

    Examples
    --------
    >>> index, in_range = column_band_index(torch.tensor([[0, 2]]), 1, 3)
    >>> index.tolist(), in_range.tolist()
    ([[[0, 0, 1], [1, 2, 2]]], [[[False, True, True], [True, True, False]]])
    """
    window = _check_window(window)
    n_source = _check_int("n_source", n_source, 0)
    _check_centres(centres)
    offsets = torch.arange(-window, window + 1, device=centres.device)  # (W,)
    rows = centres.to(torch.int64)[:, :, None] + offsets  # (B, M, W)
    in_range = (rows >= 0) & (rows < n_source)
    return rows.clamp_(0, max(n_source - 1, 0)), in_range


def column_band_valid_from_index(
    source_mask: Tensor, victim_mask: Tensor, index: Tensor, in_range: Tensor
) -> Tensor:
    """:func:`column_band_valid_mask` from :func:`column_band_index`'s output, computed once.

    ``source_mask`` (B, L) and ``victim_mask`` (B, M) bool; ``index``, ``in_range`` (B, M, W).
    Returns (B, M, W) bool.
    """
    source_ok = _gather_rows(source_mask.bool(), index)  # (B, M, W)
    return source_ok.logical_and_(in_range).logical_and_(victim_mask.bool()[:, :, None])


def column_band_valid_mask(
    source_mask: Tensor, victim_mask: Tensor, centres: Tensor, window: int
) -> Tensor:
    """Which column-band entries pair a valid source step with a valid victim step.

    Parameters
    ----------
    source_mask : Tensor, shape (B, L), bool
        True on valid source steps.
    victim_mask : Tensor, shape (B, M), bool
        True on valid victim steps.
    centres : Tensor, shape (B, M), integer
        Window centres.
    window : int
        Window radius ``K``.

    Returns
    -------
    Tensor, shape (B, M, W), bool
        ``0 <= c + k - K < L`` and ``source_mask[b, c + k - K]`` and ``victim_mask[b, j]``.

    Examples
    --------
    >>> source_mask = torch.tensor([[True, True, False]])
    >>> victim_mask = torch.tensor([[True, True, True, False]])
    >>> centres = diagonal_centres(torch.tensor([2]), torch.tensor([3]), 4)
    >>> centres.tolist()
    [[0, 1, 1, 0]]
    >>> column_band_valid_mask(source_mask, victim_mask, centres, 1)[0].int().tolist()
    [[0, 1, 1], [1, 1, 0], [1, 1, 0], [0, 0, 0]]
    """
    window = _check_window(window)
    _check_centres(centres)
    n_batch, n_cols = centres.shape
    _check_masks(source_mask, victim_mask, n_batch, n_cols)
    index, in_range = column_band_index(centres, window, source_mask.shape[1])
    return column_band_valid_from_index(source_mask, victim_mask, index, in_range)  # (B, M, W)


def dense_to_column_band(dense: Tensor, centres: Tensor, window: int) -> Tensor:
    """Extract the column band of a dense matrix along the rescaled diagonal.

    Parameters
    ----------
    dense : Tensor, shape (B, L, M)
        ``dense[b, i, j]`` between source step ``i`` and victim step ``j``.
    centres : Tensor, shape (B, M), integer
        Window centres.
    window : int
        Window radius ``K``.

    Returns
    -------
    Tensor, shape (B, M, W)
        ``band[b, j, k] = dense[b, c[b, j] + k - K, j]``, 0 where that source index is outside
        ``[0, L)``.

    Examples
    --------
    >>> dense = torch.arange(8.0).reshape(1, 2, 4)
    >>> dense_to_column_band(dense, torch.tensor([[0, 0, 1, 1]]), 1)[0].tolist()
    [[0.0, 0.0, 4.0], [0.0, 1.0, 5.0], [2.0, 6.0, 0.0], [3.0, 7.0, 0.0]]
    """
    window = _check_window(window)
    if not isinstance(dense, Tensor) or dense.dim() != 3:
        raise ConfigError(f"`dense` must have shape (B, L, M); got {_describe(dense)}.")
    n_batch, n_rows, n_cols = dense.shape
    _check_centres(centres, n_batch, n_cols)
    index, in_range = column_band_index(centres, window, n_rows)
    if n_rows == 0:
        return dense.new_zeros(index.shape)
    band = dense.transpose(1, 2).gather(2, index)  # (B, M, W)
    return band.masked_fill(~in_range, 0)


def column_band_to_dense(band: Tensor, centres: Tensor, window: int, n_source: int) -> Tensor:
    """Expand a column band into a dense matrix with zeros outside the window.

    Parameters
    ----------
    band : Tensor, shape (B, M, W)
        Column band, ``W = 2K + 1``.
    centres : Tensor, shape (B, M), integer
        Window centres.
    window : int
        Window radius ``K``.
    n_source : int
        Number of source steps ``L`` of the dense result.

    Returns
    -------
    Tensor, shape (B, L, M)
        ``dense[b, c[b, j] + k - K, j] = band[b, j, k]`` where in range, 0 elsewhere. Band
        entries whose source index is out of range are dropped.

    Examples
    --------
    >>> band = torch.tensor([[[9.0, 1.0, 2.0], [3.0, 4.0, 9.0]]])
    >>> column_band_to_dense(band, torch.tensor([[0, 1]]), 1, 2)[0].tolist()
    [[1.0, 3.0], [2.0, 4.0]]
    """
    window = _check_window(window)
    n_source = _check_int("n_source", n_source, 0)
    width = 2 * window + 1
    if not isinstance(band, Tensor) or band.dim() != 3 or band.shape[2] != width:
        raise ConfigError(
            f"`band` must have shape (B, M, {width}) for window K={window}; got {_describe(band)}."
        )
    n_batch, n_cols, _ = band.shape
    _check_centres(centres, n_batch, n_cols)
    index, in_range = column_band_index(centres, window, n_source)
    dense = band.new_zeros(n_batch, n_source, n_cols)
    if n_source == 0:
        return dense
    # out-of-range entries are clamped onto a valid row, so add them as zeros
    values = band.masked_fill(~in_range, 0).transpose(1, 2)  # (B, W, M)
    return dense.scatter_add(1, index.transpose(1, 2), values)  # (B, L, M)


def _offset_rows(centres: Tensor, offset: int, n_rows: int, dim: int) -> Tensor:
    """Source rows ``clamp(c + offset, 0, L - 1)`` of one window offset, expanded to (B, M, D)."""
    rows = (centres + offset).clamp_(0, n_rows - 1)  # (B, M)
    return rows[:, :, None].expand(*rows.shape, dim)  # (B, M, D)


class _BandedDot(torch.autograd.Function):
    """``out[b, j, k] = <source[b, c[b, j] + k - K], victim[b, j]>`` with O(B*M*D) memory.

    Source rows are clamped into ``[0, L)``; callers mask the out-of-range entries. Plain
    autograd would keep one gathered (B, M, D) copy of the source per offset for the
    backward, ``W`` times the input; this keeps only the inputs and the (B, M) centres, and
    builds the index of one offset at a time (no (B, M, W) int64 index either).
    """

    @staticmethod
    def forward(ctx, source: Tensor, victim: Tensor, centres: Tensor, window: int) -> Tensor:
        ctx.save_for_backward(source, victim, centres)
        ctx.window = window
        n_batch, n_cols, dim = victim.shape
        width = 2 * window + 1
        out = victim.new_zeros(n_batch, n_cols, width)
        if source.shape[1] == 0 or n_cols == 0:
            return out
        # one gather buffer, reused for every offset: a fresh (B, M, D) temporary per offset
        # costs more than the multiply itself on CPU (page faults of new allocations)
        buffer = victim.new_empty(n_batch, n_cols, dim)
        for k in range(width):
            rows = _offset_rows(centres, k - window, source.shape[1], dim)  # (B, M, D)
            torch.gather(source, 1, rows, out=buffer)  # (B, M, D)
            out[:, :, k] = buffer.mul_(victim).sum(-1)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        source, victim, centres = ctx.saved_tensors
        window = ctx.window
        n_batch, n_cols, dim = victim.shape
        need_source, need_victim = ctx.needs_input_grad[:2]
        grad_source = torch.zeros_like(source) if need_source else None
        grad_victim = torch.zeros_like(victim) if need_victim else None
        if source.shape[1] == 0 or n_cols == 0:
            return grad_source, grad_victim, None, None
        for k in range(2 * window + 1):
            rows = _offset_rows(centres, k - window, source.shape[1], dim)  # (B, M, D)
            weight = grad_out[:, :, k, None]  # (B, M, 1)
            if grad_victim is not None:
                grad_victim.addcmul_(source.gather(1, rows), weight)  # (B, M, D)
            if grad_source is not None:
                grad_source.scatter_add_(1, rows, victim * weight)  # (B, L, D)
        return grad_source, grad_victim, None, None


def column_cosine_cost(
    z_source: Tensor,
    z_victim: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    centres: Tensor,
    window: int,
    *,
    eps: float = 1e-8,
) -> Tensor:
    """Cosine cost inside the rescaled-diagonal window, as a column band.

    MM-Align Eq. 7 with the window of this module: ``1 - cos(z_i, z_j)`` where
    ``abs(i - c_j) <= K``, ``+inf`` elsewhere.

    Parameters
    ----------
    z_source : Tensor, shape (B, L, D)
        Source representations.
    z_victim : Tensor, shape (B, M, D)
        Victim representations.
    source_mask : Tensor, shape (B, L), bool
        True on valid source steps.
    victim_mask : Tensor, shape (B, M), bool
        True on valid victim steps.
    centres : Tensor, shape (B, M), integer
        Window centres (e.g. :func:`diagonal_centres`).
    window : int
        Window radius ``K >= 0``.
    eps : float, default 1e-8
        Lower bound of a vector norm in the cosine, so a zero vector has cosine 0 (cost 1)
        with everything instead of NaN.

    Returns
    -------
    Tensor, shape (B, M, W)
        ``cost[b, j, k] = 1 - cos(z_source[b, c + k - K], z_victim[b, j])`` on the entries
        of :func:`column_band_valid_mask`, ``+inf`` elsewhere. Same dtype as ``z_victim``.

    Notes
    -----
    Differentiable with respect to both inputs (``+inf`` entries get zero gradient; no
    double backward). Loops over the ``W`` offsets, not over samples or steps: each offset is
    one gather and one batched dot product, and the backward recomputes the gathers instead
    of storing them, so memory is ``O(B * M * W + B * (L + M) * D)`` with or without autograd
    (one (B, M, D) gather buffer beyond the inputs).

    Examples
    --------
    >>> z_source = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    >>> z_victim = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]], dtype=torch.float64)
    >>> source_mask = torch.ones(1, 2, dtype=torch.bool)
    >>> victim_mask = torch.ones(1, 3, dtype=torch.bool)
    >>> centres = diagonal_centres(torch.tensor([2]), torch.tensor([3]), 3)
    >>> centres.tolist()
    [[0, 1, 1]]
    >>> cost = column_cosine_cost(z_source, z_victim, source_mask, victim_mask, centres, 1)
    >>> cost[0].round(decimals=4).tolist()
    [[inf, 0.0, 1.0], [0.2929, 0.2929, inf], [1.0, 0.0, inf]]
    """
    window = _check_window(window)
    eps = float(check_positive("eps", eps))
    n_batch, _, n_cols, _ = _check_steps(z_source, z_victim, source_mask, victim_mask)
    _check_centres(centres, n_batch, n_cols)
    _check_masks(source_mask, victim_mask, n_batch, n_cols)
    # the (B, M, W) int64 index lives only while the bool mask is built
    invalid = column_band_valid_mask(source_mask, victim_mask, centres, window).logical_not_()
    unit_source = z_source / z_source.norm(dim=-1, keepdim=True).clamp_min(eps)  # (B, L, D)
    # scale the victim side after the dot product: a (B, M) factor instead of a normalised
    # (B, M, D) copy of the victim
    inv_norm = 1 / z_victim.norm(dim=-1).clamp_min(eps)  # (B, M)
    dots = _BandedDot.apply(
        unit_source.to(z_victim.dtype), z_victim, centres.to(torch.int64), window
    )  # (B, M, W)
    if dots.requires_grad:
        return (1 - dots * inv_norm[:, :, None]).masked_fill(invalid, math.inf)  # (B, M, W)
    # no autograd: turn the band into the cost in place (one band instead of three)
    cost = dots.mul_(inv_norm[:, :, None]).neg_().add_(1)  # (B, M, W)
    return cost.masked_fill_(invalid, math.inf)


@dataclass(frozen=True)
class ColumnSinkhornResult(SinkhornResult):
    """Output of :func:`sinkhorn_columns`, with the fields of :class:`SinkhornResult`.

    But ``plan`` (B, M, W) is the *column* band ``plan[b, j, k] = A[b, c[b, j] + k - K, j]``
    (0 outside the window and on padded steps), ``log_u`` (B, L) the source scaling and
    ``log_v`` (B, M) the victim scaling; ``marginal_error`` adds the source error (the
    fixed-point residual when the source marginal is relaxed) and the victim error.
    """


def _check_reg(reg: float | Tensor, n_batch: int, like: Tensor, name: str = "reg") -> Tensor:
    """Return ``reg`` (or another per-sample weight ``name``) as a (B,) tensor like ``like``."""
    if not isinstance(reg, Tensor):
        value = float(check_positive(name, reg))
        return like.new_full((n_batch,), value)
    if not reg.dtype.is_floating_point or tuple(reg.shape) != (n_batch,):
        raise ConfigError(
            f"`{name}` must be a number > 0 or a float tensor of shape ({n_batch},); "
            f"got {_describe(reg)}."
        )
    if not bool(((reg > 0) & torch.isfinite(reg)).all()):
        raise ConfigError(f"`{name}` must be finite and > 0 in every sample; got {reg.tolist()!r}.")
    return reg.to(dtype=like.dtype, device=like.device)


def _log_of_sum(total: Tensor, shift: Tensor) -> Tensor:
    """``log(total) + shift``, ``-inf`` where ``total == 0``, with finite gradients."""
    positive = total > 0
    return torch.where(positive, torch.log(torch.where(positive, total, 1.0)) + shift, -math.inf)


def _band_logsumexp_(values: Tensor) -> Tensor:
    """Log-sum-exp over the last axis of a (B, M, W) band; ``-inf`` for an all ``-inf`` row.

    Overwrites ``values`` (a fresh intermediate or a work buffer): no band-sized temporary.
    """
    # the shift only guards exp against overflow: it needs no gradient
    peak = values.detach().amax(-1, keepdim=True)  # (B, M, 1)
    shift = torch.where(torch.isfinite(peak), peak, 0.0)  # (B, M, 1)
    total = values.sub_(shift).exp_().sum(-1)  # (B, M)
    return _log_of_sum(total, shift[:, :, 0])


def _segment_logsumexp_(
    values: Tensor, index: Tensor, n_rows: int, scratch: Tensor | None = None
) -> Tensor:
    """``out[b, i] = logsumexp(values[b, j, k] for all (j, k) with index[b, j, k] == i)``.

    A (B, M, W) band reduced onto (B, L) source steps: the maximum per source step with
    ``scatter_reduce("amax")``, then a ``scatter_add`` of the shifted exponentials, so memory
    stays ``O(B * M * W)``. Steps that receive nothing get ``-inf``. Overwrites ``values``;
    ``scratch`` is an optional (B, M, W) work buffer.
    """
    n_batch, n_cols, width = values.shape
    if n_rows == 0:
        return values.new_zeros(n_batch, 0)
    flat_index = index.reshape(n_batch, n_cols * width)  # (B, M * W)
    flat_values = values.detach().view(n_batch, n_cols * width)  # (B, M * W)
    peak = values.new_full((n_batch, n_rows), -math.inf).scatter_reduce(
        1, flat_index, flat_values, "amax"
    )  # (B, L)
    shift = torch.where(torch.isfinite(peak), peak, 0.0)  # (B, L)
    terms = values.sub_(_gather_rows(shift, index, out=scratch)).exp_()  # (B, M, W)
    flat_terms = terms.view(n_batch, n_cols * width)  # (B, M * W)
    total = values.new_zeros(n_batch, n_rows).scatter_add(1, flat_index, flat_terms)  # (B, L)
    return _log_of_sum(total, shift)


def _scaling(log_weight: Tensor, lse: Tensor) -> Tensor:
    # a step with no allowed entry has lse = -inf: keep its scaling at 0 (the kernel already
    # zeroes it) and let the marginal error report the infeasibility
    return torch.where(torch.isfinite(lse), log_weight - lse, 0.0)


def sinkhorn_columns(
    cost: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    centres: Tensor,
    *,
    window: int,
    reg: float | Tensor = 0.1,
    max_iter: int = 100,
    tol: float = 1e-6,
    check_every: int = 10,
    source_relaxation: float | Tensor | None = None,
) -> ColumnSinkhornResult:
    r"""Solve windowed entropic OT on a rescaled-diagonal column band, in the log domain.

    For each sample ``b`` with ``n`` valid source steps and ``m`` valid victim steps, solves
    (MM-Align Eq. 7-8, kernel ``exp(-M / reg)``, window of :func:`diagonal_centres`)

    .. math::

        \min_{A \ge 0} \sum_{ij} A_{ij} M_{ij} - \mathrm{reg}_b\, H(A), \quad
        H(A) = -\sum_{ij} A_{ij} (\log A_{ij} - 1),

        \text{s.t. } A \mathbf{1} = a,\; A^\top \mathbf{1} = b,\;
        a_i = 1/n,\; b_j = 1/m \text{ on valid steps},\;
        A_{ij} = 0 \text{ where } |i - c_j| > K \text{ or a step is padded.}

    The solution is ``A_ij = exp(log_u_i - M_ij / reg + log_v_j)``, with the log-domain
    Sinkhorn updates (Eq. 10-11; Peyré & Cuturi 2019, section 4.4): the source update
    ``log_u_i = log a_i - logsumexp(-M_ij / reg + log_v_j)`` over every band entry that maps to
    source step ``i`` (a segment log-sum-exp), then the victim update
    ``log_v_j = log b_j - logsumexp_k(-M / reg + log_u)`` over the ``W`` entries of column
    ``j``.

    Parameters
    ----------
    cost : Tensor, shape (B, M, W)
        Column band of the cost (e.g. :func:`column_cosine_cost`), ``W = 2K + 1``; ``+inf``
        marks forbidden entries. Entries outside :func:`column_band_valid_mask` are ignored.
        float32 or float64, on any device.
    source_mask : Tensor, shape (B, L), bool
        True on valid source steps.
    victim_mask : Tensor, shape (B, M), bool
        True on valid victim steps.
    centres : Tensor, shape (B, M), integer
        Window centres (e.g. :func:`diagonal_centres` of the masks' lengths).
    window : int
        Window radius ``K >= 0``.
    reg : float or Tensor of shape (B,), default 0.1
        Entropic regularisation ``mu > 0``, one value for the batch or one per sample (e.g.
        relative to each sample's cost spread).
    max_iter : int, default 100
        Maximum number of iterations.
    tol : float, default 1e-6
        Stop when every sample's marginal error (L1 source error + L1 victim error) is
        ``<= tol``.
    check_every : int, default 10
        Check the marginal error every ``check_every`` iterations (and at ``max_iter``).
    source_relaxation : float or Tensor of shape (B,), optional
        ``rho > 0`` (one value or one per sample, like ``reg``): replace the source
        constraint ``A 1 = a`` by the penalty ``rho * KL(A 1 | a)`` (semi-relaxed, unbalanced OT: Chizat, Peyré, Schmitzer &
        Vialard, Math. Comp. 2018; Frogner et al., NeurIPS 2015). Each victim step keeps
        mass ``1/m``, but a source step may receive more or less than ``1/n``: a word that
        lasts 19 frames can take all of them. The source update becomes
        ``log_u = rho / (rho + reg) * (log a - logsumexp(...))``; ``rho -> inf`` is the
        balanced problem. The reported error is then the source step's change under one more
        update (the fixed-point residual) plus the victim marginal error. Default None:
        balanced.

    Returns
    -------
    ColumnSinkhornResult
        ``plan (B, M, W)``, ``log_u (B, L)``, ``log_v (B, M)``, ``n_iter``,
        ``converged (B,)`` and ``marginal_error (B,)``.

    Warns
    -----
    ConvergenceWarning
        When some sample is still above ``tol`` after ``max_iter`` iterations. This also
        happens when the window cannot reach some valid source step (``m < n`` and ``K``
        small): the plan stays finite and ``converged`` is False for those samples.

    Notes
    -----
    Samples with no valid source step or no valid victim step get an all-zero plan and count
    as converged. Runs under the caller's grad mode (the updates are written to keep
    gradients finite), but the intended use is under ``torch.no_grad()``: autograd would
    keep every iteration. Memory is ``O(B * M * W + B * L)``, never ``L x M``.

    Examples
    --------
    Two source steps against four victim steps, zero cost: the plan spreads each victim
    step's mass ``1/4`` evenly over the source steps its window reaches.

    >>> source_mask = torch.ones(1, 2, dtype=torch.bool)
    >>> victim_mask = torch.ones(1, 4, dtype=torch.bool)
    >>> centres = diagonal_centres(torch.tensor([2]), torch.tensor([4]), 4)
    >>> result = sinkhorn_columns(
    ...     torch.zeros(1, 4, 3), source_mask, victim_mask, centres, window=1, reg=0.1
    ... )
    >>> column_band_to_dense(result.plan, centres, 1, 2)
    tensor([[[0.1250, 0.1250, 0.1250, 0.1250],
             [0.1250, 0.1250, 0.1250, 0.1250]]])
    >>> bool(result.converged.all())
    True
    """
    window = _check_window(window)
    max_iter = _check_int("max_iter", max_iter, 1)
    check_every = _check_int("check_every", check_every, 1)
    tol = float(check_positive("tol", tol))
    if not isinstance(cost, Tensor) or cost.dtype not in (torch.float32, torch.float64):
        got = cost.dtype if isinstance(cost, Tensor) else type(cost).__name__
        raise ConfigError(f"`cost` must be a float32 or float64 tensor; got {got!r}.")
    width = 2 * window + 1
    if cost.dim() != 3 or cost.shape[-1] != width:
        raise ConfigError(
            f"`cost` must have shape (B, M, {width}) for window K={window}; "
            f"got {tuple(cost.shape)!r}."
        )
    n_batch, n_cols, _ = cost.shape
    _check_masks(source_mask, victim_mask, n_batch, n_cols)
    _check_centres(centres, n_batch, n_cols)
    reg_batch = _check_reg(reg, n_batch, cost)
    exponent = None
    if source_relaxation is not None:
        rho = _check_reg(source_relaxation, n_batch, cost, name="source_relaxation")
        exponent = (rho / (rho + reg_batch))[:, None]  # (B, 1)
    plan, log_u, log_v, error, n_iter = _solve(
        cost, source_mask, victim_mask, centres, window, reg_batch, max_iter, tol, check_every,
        exponent,
    )  # fmt: skip
    converged = error <= tol
    _warn_unconverged(
        "sinkhorn_columns", converged, error, tol, max_iter, reg,
        "check that the window reaches every source step (K too small for m < n)",
    )  # fmt: skip
    return ColumnSinkhornResult(
        plan=plan,
        log_u=log_u,
        log_v=log_v,
        n_iter=n_iter,
        converged=converged,
        marginal_error=error,
    )


def _solve(
    cost: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    centres: Tensor,
    window: int,
    reg: Tensor,
    max_iter: int,
    tol: float,
    check_every: int,
    exponent: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    """Run the iterations in blocks of ``check_every``; arguments are already validated.

    ``exponent`` (B, 1): ``rho / (rho + reg)`` of a relaxed source marginal, None if balanced.

    Returns ``plan, log_u, log_v, marginal_error, n_iter``.
    """
    n_batch, n_cols, _ = cost.shape
    n_rows = source_mask.shape[1]
    dtype, device = cost.dtype, cost.device
    source_mask = source_mask.to(device=device, dtype=torch.bool)
    victim_mask = victim_mask.to(device=device, dtype=torch.bool)
    # a sample with nothing on one side transports nothing: zero both of its marginals, so
    # its plan is 0 and its marginal error 0
    both = source_mask.any(1) & victim_mask.any(1)  # (B,)
    source_mask = source_mask & both[:, None]  # (B, L)
    victim_mask = victim_mask & both[:, None]  # (B, M)
    index, in_range = column_band_index(centres.to(device), window, n_rows)  # (B, M, W)
    invalid = column_band_valid_from_index(source_mask, victim_mask, index, in_range).logical_not_()
    del in_range
    # zero the ignored entries before dividing so that an inf cost there cannot make a NaN
    # gradient with respect to `reg`
    log_kernel = (cost.masked_fill(invalid, 0) / -reg[:, None, None]).masked_fill_(
        invalid, -math.inf
    )  # (B, M, W)
    del invalid
    log_a = _log_uniform(source_mask, dtype)  # (B, L)
    log_b = _log_uniform(victim_mask, dtype)  # (B, M)
    # without autograd, every band-sized intermediate goes into two reused buffers; with it,
    # each iteration needs fresh tensors (autograd keeps them)
    keep_graph = torch.is_grad_enabled() and log_kernel.requires_grad
    work = None if keep_graph else torch.empty_like(log_kernel)  # (B, M, W)
    scratch = None if keep_graph else torch.empty_like(log_kernel)  # (B, M, W)

    log_u = torch.zeros(n_batch, n_rows, dtype=dtype, device=device)
    log_v = torch.zeros(n_batch, n_cols, dtype=dtype, device=device)
    values = torch.add(log_kernel, log_v[:, :, None], out=work)  # (B, M, W)
    lse_row = _segment_logsumexp_(values, index, n_rows, scratch)  # (B, L)
    lse_col = log_v.new_full(log_v.shape, -math.inf)
    error = torch.full((n_batch,), math.inf, dtype=dtype, device=device)
    n_iter = 0
    while n_iter < max_iter:
        # check only every `check_every` steps: the error is a full reduction and, on a GPU,
        # reading it back synchronises the device
        steps = min(check_every - n_iter % check_every, max_iter - n_iter)
        for _ in range(steps):
            log_u = _scaling(log_a, lse_row)
            if exponent is not None:
                log_u = log_u * exponent
            values = _gather_rows(log_u, index, out=work).add_(log_kernel)  # (B, M, W)
            lse_col = _band_logsumexp_(values)  # (B, M)
            log_v = _scaling(log_b, lse_col)
            values = torch.add(log_kernel, log_v[:, :, None], out=work)  # (B, M, W)
            lse_row = _segment_logsumexp_(values, index, n_rows, scratch)  # (B, L)
        n_iter += steps
        with torch.no_grad():  # a diagnostic: no gradient through the error
            target = log_a
            if exponent is not None:  # relaxed: where one more update would move the row
                target = torch.where(
                    torch.isfinite(lse_row), _scaling(log_a, lse_row) * exponent + lse_row, log_a
                )
            error = _marginal_error(log_u, lse_row, target) + _marginal_error(log_v, lse_col, log_b)
        if n_batch == 0 or float(error.max()) <= tol:
            break
    del scratch
    plan = _gather_rows(log_u, index, out=work).add_(log_kernel)  # (B, M, W)
    plan = plan.add_(log_v[:, :, None]).exp_()  # (B, M, W)
    return plan, log_u, log_v, error, n_iter
