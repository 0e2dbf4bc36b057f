"""MFM baseline: factorised multimodal representations with generated victim sequences.

Follows Tsai, Liang, Zadeh, Morency and Salakhutdinov, "Learning Factorized Multimodal
Representations", ICLR 2019 (section 2, Fig. 1): a shared *discriminative* factor and one
*generative* factor per modality; a decoder rebuilds each modality from the shared factor
and its own factor, and a missing modality is generated from factors inferred from the
modalities that are present (their section 3.2 "surrogate inference"), as in MM-Align
(Han et al., EMNLP 2022) section 4.2.

What we simplified, and how it sits on the shared backbone:

- The factors are computed from the backbone's *encoded* steps (not raw features), and the
  decoders rebuild those encoded representation sequences, whose targets are **detached**
  (stop-gradient): the reconstruction shapes the encoders through the factor networks'
  inputs but cannot shrink the targets to make itself easy.
- The shared factor is a sequence ``(B, L, f)`` computed from the source alone by a
  bidirectional GRU (the only modality present at test time); modality-specific factors
  are vectors ``(B, f)`` (masked mean of a per-step MLP). The victim-specific factor is
  *predicted from the source* by an MLP for the generated victim.
- Each decoder is a bidirectional GRU over ``[shared_t, specific]`` (a sequence decoder).
- Plain MSE reconstruction: no Gaussian prior, no Wasserstein/MMD term on the factors.
- The prediction goes through the shared backbone's fusion and head (not MFM's own
  discriminative head): complete batches fuse the real victim, missing batches the
  generated one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmalign.config import TrainConfig
from mmalign.data.batching import Batch
from mmalign.models.backbone import Backbone
from mmalign.models.bigru import BiGRU
from mmalign.models.method import Losses, MissingModalityModel, Phase
from mmalign.validation import check_non_negative, check_positive

__all__ = ["MFM", "masked_mse", "masked_mean"]


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the valid steps only.

    Parameters
    ----------
    pred, target : Tensor, shape (B, L, d)
    mask : Tensor, shape (B, L)
        True on the steps that count; if none does, the loss is 0 (and keeps the graph).

    Returns
    -------
    Tensor, shape ()
        ``sum_{b,t valid} ||pred - target||^2 / (n_valid * d)``.

    >>> p = torch.ones(1, 2, 2); t = torch.zeros(1, 2, 2)
    >>> float(masked_mse(p, t, torch.tensor([[True, False]])))
    1.0
    """
    err = (pred - target).pow(2).mean(-1)  # (B, L)
    # where, not a product: a non-finite value on an unscored step must not leak in
    total = torch.where(mask, err, torch.zeros_like(err)).sum()
    return total / mask.sum().clamp(min=1).to(err.dtype)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` (B, L, d) over the valid steps of ``mask`` (B, L) -> (B, d); 0 if none.

    >>> masked_mean(torch.tensor([[[1.0], [3.0]]]), torch.tensor([[True, False]])).tolist()
    [[1.0]]
    """
    weight = mask.to(x.dtype)[..., None]  # (B, L, 1)
    return (x * weight).sum(1) / weight.sum(1).clamp(min=1.0)  # (B, d)


class SpecificEncoder(nn.Module):
    """Modality-specific (generative) factor: masked mean of a per-step MLP, (B, L, d) -> (B, f)."""

    def __init__(self, d_model: int, factor_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, factor_dim), nn.Tanh(), nn.Linear(factor_dim, factor_dim)
        )

    def forward(self, steps: Tensor, mask: Tensor) -> Tensor:
        """Pool ``steps`` (B, L, d) over the valid steps of ``mask`` (B, L) -> factor (B, f)."""
        return masked_mean(self.net(steps), mask)


class SequenceDecoder(nn.Module):
    """Rebuild a representation sequence from the shared factor sequence and one specific factor.

    Input at step ``t`` is ``[shared_t, specific]``; a bidirectional GRU and a linear map
    give the reconstructed step of width ``d``.
    """

    def __init__(self, factor_dim: int, d_model: int) -> None:
        super().__init__()
        self.gru = BiGRU(2 * factor_dim, d_model)
        self.out = nn.Linear(2 * d_model, d_model)

    def forward(self, shared: Tensor, specific: Tensor, mask: Tensor) -> Tensor:
        """``shared`` (B, L, f), ``specific`` (B, f), ``mask`` (B, L) -> steps (B, L, d)."""
        tiled = specific[:, None, :].expand(-1, shared.shape[1], -1)  # (B, L, f)
        hidden = self.gru(torch.cat([shared, tiled], dim=-1), mask)  # (B, L, 2d)
        return self.out(hidden)


class MFM(MissingModalityModel):
    """Backbone + factorised generative model standing in for the victim (see module docstring).

    Parameters
    ----------
    backbone : Backbone
    task : str
        ``"regression"`` or ``"classification"``.
    factor_dim : int, optional
        Width ``f`` of every factor (default: the backbone width ``d``).
    recon_weight : float
        Weight of the reconstruction losses added to the main loss on complete batches.
    lambda_imputed, victim_stream_dropout : float
        The imputing methods' shared training options, documented once in
        :class:`~mmalign.models.method.MissingModalityModel`.
    """

    def __init__(
        self,
        backbone: Backbone,
        task: str,
        factor_dim: int | None = None,
        recon_weight: float = 1.0,
        lambda_imputed: float = TrainConfig.lambda_imputed,
        victim_stream_dropout: float = TrainConfig.victim_stream_dropout,
    ) -> None:
        super().__init__(backbone, task, lambda_imputed, victim_stream_dropout)
        d = backbone.d_model
        factor_dim = d if factor_dim is None else factor_dim
        check_positive("factor_dim", factor_dim)
        check_non_negative("recon_weight", recon_weight)
        self.recon_weight = float(recon_weight)
        self.shared_gru = BiGRU(d, factor_dim)
        self.shared_proj = nn.Linear(2 * factor_dim, factor_dim)
        self.source_specific = SpecificEncoder(d, factor_dim)
        self.victim_specific = SpecificEncoder(d, factor_dim)
        # surrogate inference: the victim's generative factor guessed from the source's factors
        self.victim_specific_from_source = nn.Sequential(
            nn.Linear(2 * factor_dim, factor_dim), nn.Tanh(), nn.Linear(factor_dim, factor_dim)
        )
        self.source_decoder = SequenceDecoder(factor_dim, d)
        self.victim_decoder = SequenceDecoder(factor_dim, d)

    def shared_factor(self, source_steps: Tensor, source_mask: Tensor) -> Tensor:
        """Discriminative factor sequence from the encoded source steps: (B, L, d) -> (B, L, f)."""
        return self.shared_proj(self.shared_gru(source_steps, source_mask))

    def source_factors(
        self, source_steps: Tensor, source_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Factors inferred from the encoded source steps alone.

        Parameters
        ----------
        source_steps : Tensor, shape (B, L, d)
            Encoded source steps (head token removed).
        source_mask : Tensor, shape (B, L)

        Returns
        -------
        shared : Tensor, shape (B, L, f)
            Discriminative factor sequence.
        source_factor : Tensor, shape (B, f)
            The source's generative factor.
        victim_guess : Tensor, shape (B, f)
            The victim's generative factor predicted from the two above.
        """
        shared = self.shared_factor(source_steps, source_mask)
        source_factor = self.source_specific(source_steps, source_mask)
        pooled_shared = masked_mean(shared, source_mask)  # (B, f)
        both = torch.cat([pooled_shared, source_factor], dim=-1)  # (B, 2f)
        victim_guess = self.victim_specific_from_source(both)
        return shared, source_factor, victim_guess

    def impute_victim(self, z_source: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Generate the victim steps; victim head token at position 0; mask = source mask."""
        shared, _, victim_guess = self.source_factors(z_source[:, 1:], batch.source_mask)
        generated = self.victim_decoder(shared, victim_guess, batch.source_mask)  # (B, L, d)
        head = self.backbone.victim_head_token().expand(generated.shape[0], 1, -1)  # (B, 1, d)
        return torch.cat([head, generated], dim=1), batch.source_mask  # (B, 1+L, d)

    def compute_losses(self, batch: Batch, phase: Phase) -> Losses:
        """Missing batches: main loss with the generated victim. Otherwise main + reconstruction.

        The reconstruction (on rows with the victim only) is the mean of three masked MSEs:
        source rebuilt from (shared, source factor), victim rebuilt from (shared, victim
        factor), and victim generated from the source's factors alone.
        """
        if phase == "missing":
            z_source = self.backbone.encode_source(batch.source, batch.source_mask)
            z_gen, gen_mask = self.impute_victim(z_source, batch)
            out = self.fuse(z_source, batch.source_mask, z_gen, gen_mask)
            return Losses({"backbone": self.loss(out, batch)})
        z_source, z_victim, victim_mask = self.encode_pair_or_impute(batch)
        out = self.fuse(z_source, batch.source_mask, z_victim, victim_mask)
        main = self.loss(out, batch)
        source_steps = z_source[:, 1:]  # (B, L, d)
        victim_steps = z_victim[:, 1:]  # (B, L, d)
        shared, source_factor, victim_guess = self.source_factors(source_steps, batch.source_mask)
        rows = batch.has_victim[:, None]  # (B, 1)
        victim_valid = batch.victim_mask & rows  # (B, L)
        victim_factor = self.victim_specific(victim_steps, victim_valid)
        rebuilt_source = self.source_decoder(shared, source_factor, batch.source_mask)
        # one decoder call for the victim rebuilt from its own factor and generated from the guess
        n = shared.shape[0]
        decoded = self.victim_decoder(
            shared.repeat(2, 1, 1),  # (2B, L, f)
            torch.cat([victim_factor, victim_guess]),  # (2B, f)
            batch.source_mask.repeat(2, 1),  # (2B, L)
        )  # (2B, L, d)
        rebuilt_victim, generated = decoded[:n], decoded[n:]  # (B, L, d) each
        # the victim is rebuilt on the source's time axis; it is scored where both are valid
        both = victim_valid & batch.source_mask  # (B, L)
        target_victim = victim_steps.detach()
        recon = (
            masked_mse(rebuilt_source, source_steps.detach(), batch.source_mask & rows)
            + masked_mse(rebuilt_victim, target_victim, both)
            + masked_mse(generated, target_victim, both)
        ) / 3.0
        total = main + self.recon_weight * recon
        losses = Losses({"backbone": total}, {"main": main.detach(), "recon": recon.detach()})
        return self.with_imputed_loss(losses, z_source, batch, phase)
