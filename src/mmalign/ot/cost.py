"""Windowed cosine cost of MM-Align, stored as a row band.

Source: Han, Chen, Kan & Poria, "MM-Align: Learning Optimal Transport-based Alignment Dynamics
for Fast and Accurate Inference on Missing Modality Sequences", EMNLP 2022, section 3.4, Eq. 7:
``M_ij = 1 - cos(z_i, z_j)`` when ``abs(i - j) <= K`` and ``+inf`` otherwise (a barrier in the
sense of Nesterov, 2018). Only the ``W = 2K + 1`` diagonals inside the window are computed and
stored, so memory is ``O(B * L * W)`` (plus the normalised inputs, ``O(B * L * D)``), never
``L x M``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmalign.ot.band import _check_steps, _check_window, band_valid_mask

__all__ = ["windowed_cosine_cost"]


def windowed_cosine_cost(
    z_source: Tensor,
    z_victim: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    window: int,
    *,
    eps: float = 1e-8,
) -> Tensor:
    """Cosine cost between source and victim steps inside the window, as a row band.

    Parameters
    ----------
    z_source : Tensor, shape (B, L, D)
        Source representations ``z^1``.
    z_victim : Tensor, shape (B, M, D)
        Victim representations ``z^2``.
    source_mask : Tensor, shape (B, L), bool
        True on valid source steps.
    victim_mask : Tensor, shape (B, M), bool
        True on valid victim steps.
    window : int
        Window radius ``K >= 0``.
    eps : float, default 1e-8
        Lower bound of a vector norm in the cosine, so a zero vector has cosine 0 (cost 1)
        with everything instead of NaN.

    Returns
    -------
    Tensor, shape (B, L, W)
        ``cost[b, i, k] = 1 - cos(z_source[b, i], z_victim[b, i + k - K])`` on valid pairs
        inside the window, ``+inf`` elsewhere (victim step out of range, padded source or
        victim step). Same dtype as ``z_source``.

    Notes
    -----
    The function is differentiable (``+inf`` entries get zero gradient), but
    :func:`mmalign.ot.sinkhorn_banded` runs without gradients, so callers that only need the
    transport plan can compute the cost under ``torch.no_grad()`` to save memory.
    Loops over the ``W`` window offsets (not over samples or steps): each offset is one
    batched dot product of two ``(B, L, D)`` views, which keeps memory linear in ``L``.

    Examples
    --------
    >>> z = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> mask = torch.tensor([[True, True]])
    >>> windowed_cosine_cost(z, z, mask, mask, 1)[0].tolist()
    [[inf, 0.0, 1.0], [1.0, 0.0, inf]]
    """
    window = _check_window(window)
    n_batch, n_rows, n_cols, dim = _check_steps(z_source, z_victim, source_mask, victim_mask)
    width = 2 * window + 1
    unit_source = z_source / z_source.norm(dim=-1, keepdim=True).clamp_min(eps)  # (B, L, D)
    unit_victim = z_victim / z_victim.norm(dim=-1, keepdim=True).clamp_min(eps)  # (B, M, D)
    # pad the victim so that row i, offset k reads padded step i + k: one slice per offset
    n_keep = min(n_cols, n_rows + window)
    padded = unit_victim.new_zeros(n_batch, n_rows + 2 * window, dim)  # (B, L + 2K, D)
    padded[:, window : window + n_keep] = unit_victim[:, :n_keep]  # (B, L + 2K, D)
    if torch.is_grad_enabled() and (z_source.requires_grad or z_victim.requires_grad):
        cosine = torch.stack(
            [(unit_source * padded[:, k : k + n_rows]).sum(-1) for k in range(width)], dim=-1
        )  # (B, L, W)
    else:
        # without autograd, multiply into one reused buffer: a fresh (B, L, D) temporary per
        # offset costs more than the multiply itself on CPU (page faults of new allocations)
        buffer = torch.empty_like(unit_source)  # (B, L, D)
        cosine = torch.stack(
            [
                torch.mul(unit_source, padded[:, k : k + n_rows], out=buffer).sum(-1)
                for k in range(width)
            ],
            dim=-1,
        )  # (B, L, W)
    valid = band_valid_mask(source_mask, victim_mask, window)  # (B, L, W)
    return (1 - cosine).masked_fill(~valid, float("inf"))
