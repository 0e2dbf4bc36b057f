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

With ``states > 1``, the time spent on one source step is no longer geometric. Under the law
above, a source step holds ``D = 1 / (1 - P(0))`` victim steps on average (about ``m / n``),
and a geometric duration makes one or two victim steps its likeliest length however long
``D`` is. Speech recognisers give each unit several left-to-right states for this reason
(Rabiner 1989, section IV; here each victim step moves to the next state with probability
``q``). A source step gets ``S = clamp(floor(D / 2), 1, states)`` sub-states, each held a
geometric number of victim steps with mean ``D / S >= 2``: the path stays in its sub-state
with probability ``1 - q``, ``q = S (1 - P(0))``, moves to the next with ``q``, and from the
last sub-state advances ``a >= 1`` source steps with ``q P(a) / (1 - P(0))``, landing in the
first sub-state. The mean time per source step stays ``D``, and its variance falls from
``D (D - 1)`` to ``D (D / S - 1)``. With ``S = 1`` this is the model above. The path ends in
the last sub-state of the last source step, softly (``edge_weight`` again otherwise).

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
    states: int = 1,
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
    states : int
        Most sub-states per source step (module doc); 1 gives geometric durations. A sample
        whose source steps hold ``D`` victim steps on average gets
        ``clamp(floor(D / 2), 1, states)``.

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
    if isinstance(states, bool) or not isinstance(states, int) or states < 1:
        raise ConfigError(f"`states` must be an integer >= 1; got {states!r}.")
    with torch.no_grad():
        return _posterior(
            log_emission.detach().float(), source_mask.bool(), victim_mask.bool(),
            centres.long(), window, math.log(edge_weight), states,
        )  # fmt: skip


def _posterior(
    log_emission: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    centres: Tensor,
    window: int,
    log_edge: float,
    states: int,
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

    if states > 1:
        joint, log_likelihood = _sub_state_passes(
            emit,
            victim_mask,
            step,
            advance,
            log_advance,
            log_move,
            start,
            end,
            last,
            log_edge,
            states,
        )
        return _result(joint, band_ok, m, log_likelihood)
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
    return _result(alpha + beta, band_ok, m, log_likelihood)


def _result(joint: Tensor, band_ok: Tensor, m: Tensor, log_likelihood: Tensor) -> MonotoneAlignment:
    """Return the plan from the log joint ``alpha + beta`` (B, M, W); rows sum to ``1 / m``."""
    posterior = (joint - torch.logsumexp(joint, dim=-1, keepdim=True)).exp()  # (B, M, W)
    posterior = torch.where(band_ok, posterior.nan_to_num(0.0), 0.0)
    plan = posterior / m.clamp_min(1)[:, None, None].to(posterior.dtype)
    return MonotoneAlignment(plan, log_likelihood, torch.ones_like(m, dtype=torch.bool))


def _shifts(step: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """Gather index and validity (B, M, W) that re-index band entries by ``step`` (B, M).

    The same source step sits at band entry ``k`` for victim step ``j`` and at ``k + step``
    for ``j - 1`` (``step = c_j - c_{j-1}``); a negative ``step`` maps the other way.
    """
    source = torch.arange(width, device=step.device) + step[..., None]  # (B, M, W)
    return source.clamp(0, width - 1), (source >= 0) & (source < width)


def _shifted(x: Tensor, index: Tensor, inside: Tensor) -> Tensor:
    """``x`` (B, W, S) gathered along the band by one step's ``_shifts`` (B, W); -inf off it."""
    moved = torch.gather(x, 1, index[..., None].expand_as(x))
    return torch.where(inside[..., None], moved, -math.inf)


def _sub_state_passes(
    emit: Tensor,
    victim_mask: Tensor,
    step: Tensor,
    advance: Tensor,
    log_advance: Tensor,
    log_move: Tensor,
    start: Tensor,
    end: Tensor,
    last: Tensor,
    log_edge: float,
    states: int,
) -> tuple[Tensor, Tensor]:
    """Forward-backward with sub-states per source step (module doc).

    Shapes: ``emit`` (B, M, W), ``step`` (B, M), ``advance`` and ``log_move`` (B, M, W, W)
    (each transition's advance and its log-probability), ``log_advance`` (B, G),
    ``start``/``end`` (B, W), ``last`` (B,). Sample ``b`` uses the last ``S_b`` of the
    ``states`` sub-states, so that every sample's path leaves a source step from sub-state
    ``states - 1``. Returns the log joint (B, M, W), summed over sub-states,
    and the log-likelihood (B,).
    """
    n_batch, n_victim, width = emit.shape
    device = emit.device
    stay_first = log_advance[:, 0].exp()  # (B,) P(0)
    mean_time = 1.0 / (1.0 - stay_first).clamp_min(1e-6)  # (B,) D
    used = torch.floor(mean_time / 2).clamp(1, states)  # (B,) S_b
    q = (used * (1.0 - stay_first)).clamp(max=1.0)  # (B,) move to the next sub-state
    log_q = q.log()[:, None, None]  # (B, 1, 1)
    log_keep = torch.log1p(-q).clamp_min(torch.finfo(emit.dtype).min)[:, None, None]
    # leaving the last sub-state for a >= 1 steps: q P(a) / (1 - P(0)) = S_b P(a)
    # advance 0 belongs to the sub-state chain; log_move is -inf past the law's largest advance
    log_leave = torch.where(advance >= 1, log_move + used.log()[:, None, None, None], -math.inf)
    sub = torch.arange(states, device=device)
    entry = (sub[None, :] == (states - used.long())[:, None])[:, None, :]  # (B, 1, S)
    exit_ = sub == states - 1  # (S,)
    pad = torch.full((n_batch, width, 1), -math.inf, device=device)
    ahead_index, ahead_inside = _shifts(step, width)  # from step j - 1's band to j's
    back_index, back_inside = _shifts(-step, width)  # from step j's band to j - 1's

    alpha = torch.full((n_batch, n_victim, width, states), -math.inf, device=device)
    alpha[:, 0] = torch.where(entry, (emit[:, 0] + start)[..., None], -math.inf)
    for j in range(1, n_victim):  # loop over victim steps, vectorised over batch, band, states
        prev = alpha[:, j - 1]  # (B, W, S)
        same = _shifted(prev, ahead_index[:, j], ahead_inside[:, j])  # same source step
        chain = torch.logaddexp(same + log_keep, torch.cat([pad, same[..., :-1]], -1) + log_q)
        leave = torch.logsumexp(prev[:, None, :, states - 1] + log_leave[:, j], dim=-1)  # (B, W)
        chain = torch.where(entry, torch.logaddexp(chain, leave[..., None]), chain)
        alpha[:, j] = torch.where(victim_mask[:, j, None, None], chain + emit[:, j, :, None], prev)
    beta = torch.full((n_batch, n_victim, width, states), -math.inf, device=device)
    beta[:, n_victim - 1] = end[..., None] + torch.where(exit_, 0.0, log_edge)
    for j in range(n_victim - 2, -1, -1):  # loop over victim steps, vectorised
        ahead = beta[:, j + 1] + emit[:, j + 1, :, None]  # (B, W k, S)
        chain = torch.logaddexp(ahead + log_keep, torch.cat([ahead[..., 1:], pad], -1) + log_q)
        same = _shifted(chain, back_index[:, j + 1], back_inside[:, j + 1])  # to j's band
        into = torch.logsumexp(torch.where(entry, ahead, -math.inf), dim=-1)  # (B, W k)
        leave = torch.logsumexp(log_leave[:, j + 1] + into[:, :, None], dim=1)  # (B, W k')
        same = torch.where(exit_, torch.logaddexp(same, leave[..., None]), same)
        beta[:, j] = torch.where(victim_mask[:, j + 1, None, None], same, beta[:, j + 1])
    final = torch.gather(alpha, 1, last[:, None, None, None].expand(-1, 1, width, states))[:, 0]
    log_likelihood = torch.logsumexp((final + beta[:, n_victim - 1]).flatten(1), dim=-1)
    return torch.logsumexp(alpha + beta, dim=-1), log_likelihood
