"""Monotone alignment on a column band: the forward-backward posterior of a left-to-right path.

Why: an OT plan (:mod:`mmalign.ot.column_band`) places every victim step on its own; only the
marginals tie the steps together. When one victim step says little about its source step
(a 5-d audio frame against its word), such a plan cannot localise it, however the cost is
learned: on the unaligned synthetic data even a *supervised* linear emission gives per-step
posteriors with 0.17 of their mass on the true word, while the same emission under a
monotone path gives 0.59 (``docs/method.md``, "Alignment"). Speech recognisers align
words to frames this way: a left-to-right hidden Markov model whose state is the current
word, decoded by forward-backward (Rabiner, Proc. IEEE 1989; the monotonic alignment search
of Glow-TTS, Kim et al., NeurIPS 2020, is its Viterbi form).

Model, per sample with ``n`` source and ``m`` victim steps:

* victim step ``j`` sits at one source step ``s_j``, on the band ``s_j = c_j + k - K``;
* ``s_0 = 0`` and ``s_{m-1} = n - 1``, softly: other source steps start (end) the path with
  weight ``edge_weight``;
* the path advances ``a = s_j - s_{j-1}`` steps with probability ``proportional to x**a``
  for ``a = 0 .. A`` and ``A = max(2, 2 * ceil(n / m))`` (at most ``2K + 2``): the maximum
  entropy law with mean ``n / m``, the advance of the rescaled diagonal;
* step ``j`` at ``s`` is emitted with weight ``exp(log_emission[j, k])``.

The posterior ``P(s_j = c_j + k - K | all steps)`` is a column band like an OT plan. It is
returned divided by ``m``, so that, like a plan with uniform victim marginal, every valid
victim step carries mass ``1 / m``. The loops run over victim steps, vectorised over the
batch and the band; the transition between two steps is a ``(W, W)`` band block.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from mmalign.ot.column_band import column_band_index, column_band_valid_from_index
from mmalign.validation import ConfigError

__all__ = ["MonotoneAlignment", "advance_log_probs", "monotone_band_posterior"]

# bisection steps for the advance law's parameter: the bracket [-30, 30] shrinks to 1e-16
_BISECTION_STEPS = 60


class MonotoneAlignment(NamedTuple):
    """Output of :func:`monotone_band_posterior`.

    Attributes
    ----------
    plan : Tensor, shape (B, M, W)
        Posterior of each valid victim step's source step, divided by the victim length
        (each valid row sums to ``1 / m``); 0 off the band's valid entries and on padding.
    log_likelihood : Tensor, shape (B,)
        Log of the total weight of all paths (``-inf`` never occurs: the diagonal path is
        always allowed).
    converged : Tensor, shape (B,), bool
        Always True (forward-backward is exact); the field an OT result has too.
    """

    plan: Tensor
    log_likelihood: Tensor
    converged: Tensor


def advance_log_probs(rate: Tensor, max_advance: Tensor, n_grid: int) -> Tensor:
    """Log-probabilities of the path's advance: ``P(a) ~ x**a`` on ``0..A`` with mean ``rate``.

    Parameters
    ----------
    rate : Tensor, shape (B,)
        Mean advance ``n / m`` per sample, > 0.
    max_advance : Tensor, shape (B,), int64
        Largest advance ``A`` per sample, ``1 <= A < n_grid``. A rate beyond ``A`` puts
        (nearly) all mass on ``A``.
    n_grid : int
        Advances ``0 .. n_grid - 1`` are returned.

    Returns
    -------
    Tensor, shape (B, n_grid)
        ``log P(a)``; ``-inf`` for ``a > A``.

    Examples
    --------
    >>> p = advance_log_probs(torch.tensor([1.0]), torch.tensor([2]), 4).exp()
    >>> [round(v, 4) for v in p[0].tolist()]
    [0.3333, 0.3333, 0.3333, 0.0]
    """
    grid = torch.arange(n_grid, device=rate.device, dtype=rate.dtype)  # (G,)
    allowed = grid[None, :] <= max_advance[:, None]  # (B, G)
    target = torch.minimum(rate, max_advance.to(rate.dtype))  # (B,)
    low = torch.full_like(rate, -30.0)  # (B,) bracket of t = log x
    high = torch.full_like(rate, 30.0)
    for _ in range(_BISECTION_STEPS):  # loop over bisection steps, vectorised over samples
        t = (low + high) / 2
        logits = torch.where(allowed, t[:, None] * grid, -math.inf)  # (B, G)
        mean = (logits.softmax(-1) * grid).sum(-1)  # (B,), increasing in t
        too_high = mean > target
        high = torch.where(too_high, t, high)
        low = torch.where(too_high, low, t)
    t = (low + high) / 2
    return torch.where(allowed, t[:, None] * grid, -math.inf).log_softmax(-1)  # (B, G)


def monotone_band_posterior(
    log_emission: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    centres: Tensor,
    window: int,
    edge_weight: float = 1e-3,
) -> MonotoneAlignment:
    """Forward-backward posterior of a monotone source path under the victim steps (module doc).

    Parameters
    ----------
    log_emission : Tensor, shape (B, M, W)
        Log weight of victim step ``j`` at source step ``c_j + k - K`` (e.g. minus a cost over
        a temperature). Entries off the valid band are ignored; they may be ``inf``.
    source_mask : Tensor, shape (B, L), bool
        Valid source steps, first ``n`` of each row.
    victim_mask : Tensor, shape (B, M), bool
        Valid victim steps, first ``m`` of each row.
    centres : Tensor, shape (B, M), int64
        Band centres on the rescaled diagonal
        (:func:`~mmalign.ot.column_band.diagonal_centres`).
    window : int
        ``K``; the band has ``W = 2K + 1`` entries.
    edge_weight : float
        Weight, in ``(0, 1]``, of starting (ending) the path elsewhere than at the first (last)
        source step.

    Returns
    -------
    MonotoneAlignment
        No gradient flows: the posterior is a target, as the OT plan is.
    """
    n_batch, n_victim, width = log_emission.shape
    if width != 2 * window + 1:
        raise ConfigError(
            f"`log_emission` must have {2 * window + 1} band entries for K={window}; got {width}."
        )
    if not 0 < edge_weight <= 1:
        raise ConfigError(f"`edge_weight` must be in (0, 1]; got {edge_weight!r}.")
    with torch.no_grad():
        return _posterior(
            log_emission.detach().float(), source_mask.bool(), victim_mask.bool(),
            centres.long(), window, math.log(edge_weight),
        )  # fmt: skip


def _posterior(
    log_emission: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    centres: Tensor,
    window: int,
    log_edge: float,
) -> MonotoneAlignment:
    n_batch, n_victim, width = log_emission.shape
    device = log_emission.device
    index, in_range = column_band_index(centres, window, source_mask.shape[1])  # (B, M, W)
    band_ok = column_band_valid_from_index(source_mask, victim_mask, index, in_range)
    emit = torch.where(band_ok, log_emission, -math.inf)  # (B, M, W)
    n = source_mask.sum(1)  # (B,)
    m = victim_mask.sum(1)  # (B,)
    last = (m - 1).clamp_min(0)  # (B,) last valid victim step

    # advance law and the (W, W) transition block between steps j-1 (k') and j (k)
    n_grid = 2 * window + 3
    rate = n.float() / m.clamp_min(1).float()  # (B,)
    max_advance = (2 * rate.ceil()).clamp(2, n_grid - 1).long()  # (B,)
    log_advance = advance_log_probs(rate, max_advance, n_grid)  # (B, G)
    step = torch.diff(centres, dim=1, prepend=centres[:, :1])  # (B, M) c_j - c_{j-1}
    offsets = torch.arange(width, device=device)
    advance = step[:, :, None, None] + offsets[:, None] - offsets  # (B, M, W k, W k')
    usable = (advance >= 0) & (advance < n_grid)
    log_move = torch.gather(
        log_advance[:, None, :].expand(-1, n_victim, -1), 2,
        advance.clamp(0, n_grid - 1).flatten(2),
    ).view_as(advance)  # fmt: skip
    log_move = torch.where(usable, log_move, -math.inf)  # (B, M, W, W)

    # soft start at source step 0 and end at source step n - 1
    start = torch.where(index[:, 0] == 0, 0.0, log_edge)  # (B, W)
    end_index = torch.gather(index, 1, last[:, None, None].expand(-1, 1, width))[:, 0]  # (B, W)
    end = torch.where(end_index == (n - 1)[:, None], 0.0, log_edge)  # (B, W)

    valid = victim_mask[:, :, None]  # (B, M, 1)
    alpha = torch.empty_like(emit)  # (B, M, W)
    alpha[:, 0] = emit[:, 0] + start
    for j in range(1, n_victim):  # loop over victim steps, vectorised over batch and band
        moved = torch.logsumexp(alpha[:, j - 1, None, :] + log_move[:, j], dim=-1)  # (B, W)
        alpha[:, j] = torch.where(valid[:, j], emit[:, j] + moved, alpha[:, j - 1])
    beta = torch.empty_like(emit)  # (B, M, W)
    beta[:, n_victim - 1] = end  # padded steps pass the end weight back to step m - 1
    for j in range(n_victim - 2, -1, -1):  # loop over victim steps, vectorised
        ahead = beta[:, j + 1] + emit[:, j + 1]  # (B, W) over k
        moved = torch.logsumexp(log_move[:, j + 1] + ahead[:, :, None], dim=1)  # (B, W) over k'
        beta[:, j] = torch.where(valid[:, j + 1], moved, beta[:, j + 1])
    final = torch.gather(alpha, 1, last[:, None, None].expand(-1, 1, width))[:, 0]  # (B, W)
    log_likelihood = torch.logsumexp(final + end, dim=-1)  # (B,)
    joint = alpha + beta  # (B, M, W)
    posterior = (joint - torch.logsumexp(joint, dim=-1, keepdim=True)).exp()  # (B, M, W)
    posterior = torch.where(band_ok, posterior.nan_to_num(0.0), 0.0)
    plan = posterior / m.clamp_min(1)[:, None, None].to(posterior.dtype)
    return MonotoneAlignment(plan, log_likelihood, torch.ones_like(m, dtype=torch.bool))
