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

``update="em"`` fits it in closed form instead: stepwise EM (Cappé & Moulines, JRSS-B 2009;
Liang & Klein, NAACL 2009). Each complete training batch gives the posterior-weighted
sufficient statistics of the regression (``sum w x x^T``, ``sum w x y^T``, ``sum w y^2`` and
``sum w``, with ``x`` the source step's features and a 1); running averages take them in with
step size ``(t + 2) ** -0.7`` at the ``t``-th update, and ``A``, ``b`` and ``s^2`` are the
weighted least-squares solution of the averages. Gradient steps at the backbone's learning
rate take many epochs to reach what one closed-form step gives (``docs/method.md``).

``covariance="full"`` replaces ``diag(s^2)`` by a full noise covariance ``C C^T`` (``C`` lower
triangular): the features of one frame share noise (on the synthetic data, the modality's
unique sequence is read out into every feature), which a diagonal model counts as
independent evidence.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmalign.ot.column_band import column_band_index, column_band_valid_from_index
from mmalign.validation import ConfigError, check_in

__all__ = [
    "EMISSION_COVARIANCES",
    "EMISSION_UPDATES",
    "LinearEmission",
    "centred",
    "emission_loss",
]

#: How an emission is fitted to the alignment's posteriors (module docstring).
EMISSION_UPDATES: tuple[str, ...] = ("gradient", "em")
#: The emission's noise covariance: per feature, or full (the features' noise correlates).
EMISSION_COVARIANCES: tuple[str, ...] = ("diagonal", "full")
_STEP_POWER = 0.7  # stepwise EM's step size (t + 2) ** -0.7, Liang & Klein's choice
_RIDGE = 1e-4  # relative to the mean diagonal of the weighted Gram matrix


def centred(x: Tensor, mask: Tensor) -> Tensor:
    """(B, L, D) steps minus each sample's mean over its valid steps; 0 on invalid steps."""
    keep = mask.bool()[:, :, None]  # (B, L, 1)
    x = torch.where(keep, x, 0.0)  # selection, so a NaN on an invalid step is never read
    mean = x.sum(1, keepdim=True) / keep.sum(1, keepdim=True).clamp_min(1)  # (B, 1, D)
    return torch.where(keep, x - mean, 0.0)  # (B, L, D)


class LinearEmission(nn.Module):
    """Gaussian emission ``y ~ N(A x + b, C C^T)`` of centred victim from source steps.

    Parameters
    ----------
    d_source, d_victim : int
        Raw feature widths of the source and the victim.
    update : {"gradient", "em"}
        ``"gradient"``: the parameters are trained with the model through
        :func:`emission_loss`. ``"em"``: they take no gradient and :meth:`em_step` sets them
        (module docstring); the running statistics are buffers, so checkpoints keep them.
    covariance : {"diagonal", "full"}
        The noise covariance's Cholesky factor ``C``: ``diag(s)`` (``log_var`` holds
        ``log s^2``), or lower triangular with that diagonal and the strict lower part
        ``tril`` besides.

    ``A`` and ``b`` start at 0 and ``C`` at the identity: the first alignments use position
    only.
    """

    def __init__(
        self, d_source: int, d_victim: int, update: str = "gradient", covariance: str = "diagonal"
    ) -> None:
        super().__init__()
        check_in("emission_update", update, list(EMISSION_UPDATES))
        check_in("emission_covariance", covariance, list(EMISSION_COVARIANCES))
        self.update, self.covariance = update, covariance
        self.mean = nn.Linear(d_source, d_victim)
        nn.init.zeros_(self.mean.weight)
        nn.init.zeros_(self.mean.bias)
        self.log_var = nn.Parameter(torch.zeros(d_victim))
        if covariance == "full":
            self.tril = nn.Parameter(torch.zeros(d_victim, d_victim))
        if update == "em":
            self.requires_grad_(False)
            square = (d_victim, d_victim) if covariance == "full" else (d_victim,)
            self.register_buffer("stat_gram", torch.zeros(d_source + 1, d_source + 1))
            self.register_buffer("stat_cross", torch.zeros(d_source + 1, d_victim))
            self.register_buffer("stat_square", torch.zeros(square))
            self.register_buffer("stat_mass", torch.zeros(()))
            self.register_buffer("stat_updates", torch.zeros((), dtype=torch.long))

    def cholesky(self) -> Tensor:
        """Return the noise covariance's Cholesky factor ``C`` (D_v, D_v), lower triangular."""
        diagonal = torch.diag(torch.exp(0.5 * self.log_var))
        if self.covariance == "full":
            return diagonal + torch.tril(self.tril, diagonal=-1)
        return diagonal

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
        residual = y[:, :, None] - band  # (B, M, W, D_v)
        if self.covariance == "full":  # whiten by the Cholesky factor: z = C^-1 r
            flat = residual.reshape(-1, residual.shape[-1]).T  # (D_v, B*M*W)
            white = torch.linalg.solve_triangular(self.cholesky(), flat, upper=False)
            sq = white.square().sum(0).view(residual.shape[:-1])  # (B, M, W)
        else:
            sq = (residual.square() * torch.exp(-self.log_var)).sum(-1)  # (B, M, W)
        # log det C C^T = sum log s^2: C's diagonal is exp(log_var / 2) in both forms
        nll = 0.5 * (sq + self.log_var.sum() + y.shape[-1] * math.log(2 * math.pi))
        valid = column_band_valid_from_index(source_mask, victim_mask, index, in_range)
        return nll.masked_fill(~valid, math.inf)  # (B, M, W)

    @torch.no_grad()
    def em_step(
        self,
        source: Tensor,
        victim: Tensor,
        source_mask: Tensor,
        victim_mask: Tensor,
        centres: Tensor,
        window: int,
        posterior: Tensor,
    ) -> None:
        """One stepwise-EM update from a batch's posteriors (``update="em"`` only).

        Parameters
        ----------
        source, victim, source_mask, victim_mask, centres, window
            As for :meth:`cost`.
        posterior : Tensor, shape (B, M, W)
            Each victim step's posterior over its band (rows sum to 1 or 0; 0 off the valid
            band), e.g. the alignment that gave the fitter its targets.
        """
        if self.update != "em":
            raise ConfigError("`em_step` needs an emission built with update='em'.")
        x = centred(source, source_mask)  # (B, L, D_s)
        y = centred(victim, victim_mask)  # (B, M, D_v)
        x1 = torch.cat([x, source_mask[..., None].to(x.dtype)], -1)  # (B, L, D_s + 1)
        index, _ = column_band_index(centres, window, source.shape[1])  # (B, M, W)
        n_batch, n_victim, width = index.shape
        weight = torch.where(posterior > 0, posterior, 0.0).to(x.dtype)  # (B, M, W)
        # per source step: its posterior mass, and the posterior-weighted sum of victim steps
        flat = index.reshape(n_batch, -1)  # (B, M*W)
        mass = x.new_zeros(x.shape[:2]).scatter_add_(1, flat, weight.reshape(n_batch, -1))
        spread = (weight[..., None] * y[:, :, None]).reshape(n_batch, -1, y.shape[-1])
        y_sum = x.new_zeros(*x.shape[:2], y.shape[-1])  # (B, L, D_v)
        y_sum.scatter_add_(1, flat[..., None].expand(-1, -1, y.shape[-1]), spread)
        total = weight.sum()
        if float(total) <= 0:  # one host sync per complete batch, with update="em" only
            return  # no posterior mass in this batch: nothing to learn from
        batch_stats = (
            torch.einsum("bl,bld,ble->de", mass, x1, x1) / total,  # (D_s+1, D_s+1)
            torch.einsum("bld,blv->dv", x1, y_sum) / total,  # (D_s+1, D_v)
            self._square(weight.sum(-1), y) / total,  # (D_v,) or (D_v, D_v)
        )
        step = float(self.stat_updates + 2) ** -_STEP_POWER
        for stat, new in zip((self.stat_gram, self.stat_cross, self.stat_square), batch_stats):
            stat.mul_(1 - step).add_(step * new)
        self.stat_mass.mul_(1 - step).add_(step)
        self.stat_updates += 1
        self._solve()

    def _square(self, weight: Tensor, y: Tensor) -> Tensor:
        """Weighted ``sum w y^2`` per feature, or ``sum w y y^T`` (full); ``weight`` (B, M)."""
        if self.covariance == "full":
            return torch.einsum("bm,bmv,bmu->vu", weight, y, y)
        return torch.einsum("bm,bmv->v", weight, y.square())

    def _solve(self) -> None:
        """Set ``A``, ``b`` and the noise covariance to the averages' weighted least squares."""
        gram = self.stat_gram.double() / self.stat_mass.double()
        cross = self.stat_cross.double() / self.stat_mass.double()
        ridge = _RIDGE * gram.diagonal().mean().clamp_min(1e-12)
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        coef = torch.linalg.solve(gram + ridge * eye, cross)  # (D_s + 1, D_v)
        square = self.stat_square.double() / self.stat_mass.double()  # (D_v,) or (D_v, D_v)
        self.mean.weight.copy_(coef[:-1].T.to(self.mean.weight.dtype))
        self.mean.bias.copy_(coef[-1].to(self.mean.bias.dtype))
        # E[w (y - coef^T x)(y - coef^T x)^T] from the averages
        fitted = coef.T @ cross  # (D_v, D_v), = coef^T gram coef at the solution but for the ridge
        residual = coef.T @ gram @ coef - fitted - fitted.T
        if self.covariance == "diagonal":
            var = (square + residual.diagonal()).clamp_min(1e-4)
            self.log_var.copy_(var.log().to(self.log_var.dtype))
            return
        covariance = square + residual
        covariance = 0.5 * (covariance + covariance.T) + 1e-4 * torch.eye(
            covariance.shape[0], dtype=covariance.dtype, device=covariance.device
        )
        factor = torch.linalg.cholesky(covariance)  # (D_v, D_v) lower
        self.log_var.copy_((2 * factor.diagonal().log()).to(self.log_var.dtype))
        self.tril.copy_(torch.tril(factor, diagonal=-1).to(self.tril.dtype))


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
