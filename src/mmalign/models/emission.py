"""A linear-Gaussian emission of victim steps from source steps: an alignment cost in nats.

Why: the cosine costs of :mod:`mmalign.models.step_space` compare learned encodings whose
step-level content the task never asks for. Forced alignment in speech compares the frame
itself with what the word predicts for it: a Gaussian emission whose mean depends on the
state (Rabiner, Proc. IEEE 1989). Here the state is a source step and the mean a linear map
of its features:

``-log p(y_j | x_i) = 1/2 sum_d ((y_jd - (A x_i + b)_d)^2 / s_d^2 + log s_d^2)`` (+ const),

with ``x`` and ``y`` the raw input features, each centred on its sample's mean over valid
steps (a sample's level carries no position, and on the synthetic data it is half of each
step's variance). Trained on complete batches by the posterior-weighted negative
log-likelihood, this is the M-step of EM (Baum-Welch) on the alignment's posterior: from
``A = 0`` the first posteriors follow the diagonal only, and each step sharpens them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmalign.ot.column_band import column_band_index, column_band_valid_from_index

__all__ = ["LinearEmission", "centred", "emission_loss"]


def centred(x: Tensor, mask: Tensor) -> Tensor:
    """(B, L, D) steps minus each sample's mean over its valid steps; 0 on invalid steps."""
    keep = mask.bool()[:, :, None]  # (B, L, 1)
    x = torch.where(keep, x, 0.0)  # selection, so a NaN on an invalid step is never read
    mean = x.sum(1, keepdim=True) / keep.sum(1, keepdim=True).clamp_min(1)  # (B, 1, D)
    return torch.where(keep, x - mean, 0.0)  # (B, L, D)


class LinearEmission(nn.Module):
    """Gaussian emission ``y ~ N(A x + b, diag(s^2))`` of centred victim from source steps.

    Parameters
    ----------
    d_source, d_victim : int
        Raw feature widths of the source and the victim.

    ``A`` and ``b`` start at 0 and ``s`` at 1: the first alignments use position only.
    """

    def __init__(self, d_source: int, d_victim: int) -> None:
        super().__init__()
        self.mean = nn.Linear(d_source, d_victim)
        nn.init.zeros_(self.mean.weight)
        nn.init.zeros_(self.mean.bias)
        self.log_var = nn.Parameter(torch.zeros(d_victim))

    def cost(
        self,
        source: Tensor,
        victim: Tensor,
        source_mask: Tensor,
        victim_mask: Tensor,
        centres: Tensor,
        window: int,
    ) -> Tensor:
        """Negative log-likelihood of each victim step at each source step of its band.

        Parameters
        ----------
        source : Tensor, shape (B, L, D_s)
        victim : Tensor, shape (B, M, D_v)
        source_mask : Tensor, shape (B, L), bool
        victim_mask : Tensor, shape (B, M), bool
        centres : Tensor, shape (B, M), int64
            Band centres of the victim steps.
        window : int
            ``K``.

        Returns
        -------
        Tensor, shape (B, M, W)
            Nats, with gradient to the emission's parameters; ``inf`` off the valid band.
        """
        x = centred(source, source_mask)  # (B, L, D_s)
        y = centred(victim, victim_mask)  # (B, M, D_v)
        predicted = self.mean(x)  # (B, L, D_v)
        index, in_range = column_band_index(centres, window, source.shape[1])  # (B, M, W)
        n_batch, n_victim, width = index.shape
        rows = index.reshape(n_batch, -1, 1).expand(-1, -1, predicted.shape[-1])
        band = torch.gather(predicted, 1, rows).view(n_batch, n_victim, width, -1)  # (B,M,W,Dv)
        precision = torch.exp(-self.log_var)  # (D_v,)
        sq = ((y[:, :, None] - band).square() * precision).sum(-1)  # (B, M, W)
        nll = 0.5 * (sq + self.log_var.sum() + y.shape[-1] * math.log(2 * math.pi))
        valid = column_band_valid_from_index(source_mask, victim_mask, index, in_range)
        return nll.masked_fill(~valid, math.inf)  # (B, M, W)


def emission_loss(cost: Tensor, target: Tensor) -> Tensor:
    """Posterior-weighted negative log-likelihood, mean over victim steps with a target.

    Parameters
    ----------
    cost : Tensor, shape (B, M, W)
        :meth:`LinearEmission.cost`, with gradient.
    target : Tensor, shape (B, M, W)
        Posterior of each victim step (rows sum to 1 or 0), no gradient.
    """
    rows = target.sum(-1) > 0  # (B, M)
    weighted = torch.where(target > 0, target * cost, torch.zeros_like(cost))  # (B, M, W)
    return weighted.sum() / rows.sum().clamp_min(1)
