"""A shared step space in which the OT cost between source and victim steps carries signal.

Why: MM-Align (Han et al., EMNLP 2022, Eq. 7) computes the OT cost ``1 - cos`` on the raw
encoder outputs, and only the head tokens are tied across modalities (Eq. 16-17). Measured
on our synthetic data, encoded source and victim steps are then nearly orthogonal, the cost
is flat and the plan is noise around uniform (``docs/method.md``, "Alignment").

What: two projection heads map each modality's encoded steps into one space of width
``d``; the OT cost is ``1 - cos`` there. On complete batches the heads and encoders are
trained by a step-level InfoNCE whose positives are the OT plan's own soft assignments:

* for victim step ``j``, the candidates are the ``W`` source steps of its band (the
  positives, weighted by the plan's column ``j`` renormalised, detached) and the same band
  positions in ``n_negatives`` other samples of the batch (the negatives);
* the loss is the cross-entropy between that soft target and the softmax of
  ``cos / tau`` over all candidates.

Cross-sample negatives at the same positions make position codes useless and force content;
the plan-weighted positives sharpen within the window (self-labelling with Sinkhorn
assignments, as in SwAV, Caron et al., NeurIPS 2020; step-level InfoNCE after van den Oord et
al., 2018, and the word-region OT alignment of UNITER, Chen et al., ECCV 2020).

The imputed victim must live where the fusion expects victim-encoder outputs. The paper
feeds a reweighting of *source*-encoder outputs there. Here a translator maps each source
step into the victim encoder's space before the reweighting, trained on complete batches to
reproduce the victim encoder's steps under the OT plan (a step-level version of the
cross-modal translation of MCTN, Pham et al., AAAI 2019), and end to end by the task loss on
missing batches.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmalign.ot.column_band import column_cosine_cost, diagonal_centres

__all__ = ["StepSpace", "ModalityStepSpace", "step_contrastive_loss", "translation_loss"]


def _head(d_model: int) -> nn.Module:
    """Build a projection head into the step space: ``Linear -> GELU -> Linear``, width ``d``."""
    return nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, d_model))


class StepSpace(nn.Module):
    """Projection heads into the shared step space and the source-to-victim translator.

    Parameters
    ----------
    d_model : int
        Width ``d`` of the encoded steps (and of the step space).
    heads : bool
        Build the projection heads; without them only the translator is kept (for a cost
        computed elsewhere, e.g. :class:`~mmalign.models.emission.LinearEmission`).
    """

    def __init__(self, d_model: int, heads: bool = True) -> None:
        super().__init__()
        if heads:
            self.source_head = _head(d_model)
            self.victim_head = _head(d_model)
        self.translator = nn.Linear(d_model, d_model)
        with torch.no_grad():  # start as the paper's choice: the source steps themselves
            self.translator.weight.copy_(torch.eye(d_model))
            self.translator.bias.zero_()

    def project(self, z_source: Tensor, z_victim: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L, d), (B, M, d) encoded steps -> the same shapes in the step space."""
        return self.source_head(z_source), self.victim_head(z_victim)

    def translate(self, z_source: Tensor) -> Tensor:
        """(B, L, d) source steps -> (B, L, d) in the victim encoder's space."""
        return self.translator(z_source)


class ModalityStepSpace(nn.Module):
    """One step space for K modalities: a projection head per modality, a translator per pair.

    The K-modality form of :class:`StepSpace` for the random-missing protocol: every ordered
    pair ``(source, victim)`` compares steps in the same space, so a modality's head is
    trained by every pair it takes part in.

    Parameters
    ----------
    modalities : tuple of str
    d_model : int
    heads : bool
        Build the projection heads (as for :class:`StepSpace`).
    """

    def __init__(self, modalities: tuple[str, ...], d_model: int, heads: bool = True) -> None:
        super().__init__()
        if heads:
            self.heads = nn.ModuleDict({m: _head(d_model) for m in modalities})
        self.translators = nn.ModuleDict()
        for s in modalities:
            for v in modalities:
                if s != v:
                    layer = nn.Linear(d_model, d_model)
                    with torch.no_grad():  # start as the paper's choice: the source steps
                        layer.weight.copy_(torch.eye(d_model))
                        layer.bias.zero_()
                    self.translators[f"{s}>{v}"] = layer

    def project(self, modality: str, z: Tensor) -> Tensor:
        """(B, L, d) encoded steps of ``modality`` -> (B, L, d) in the step space."""
        return self.heads[modality](z)

    def translate(self, source: str, victim: str, z_source: Tensor) -> Tensor:
        """(B, L, d) source steps -> (B, L, d) in the victim encoder's space."""
        return self.translators[f"{source}>{victim}"](z_source)


def step_contrastive_loss(
    cost: Tensor,
    p_source: Tensor,
    p_victim: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    centres: Tensor,
    target: Tensor,
    window: int,
    tau: float,
    n_negatives: int = 2,
    lengths: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Step-level InfoNCE with the OT plan as soft positives (module docstring).

    Parameters
    ----------
    cost : Tensor, shape (B, M, W)
        Cosine cost between ``p_source`` and ``p_victim`` on the band (the one the OT plan was
        solved on, with its gradient): the positives' logits are ``(1 - cost) / tau``.
    p_source : Tensor, shape (B, L, d)
        Projected source steps (the negatives come from other samples' bands).
    p_victim : Tensor, shape (B, M, d)
        Projected victim steps.
    source_mask : Tensor, shape (B, L)
    victim_mask : Tensor, shape (B, M)
    centres : Tensor, shape (B, M)
        Band centres of the victim steps.
    target : Tensor, shape (B, M, W)
        Soft positives: each valid row sums to 1 (the fitter's OT targets), no gradient.
    window : int
        ``K``.
    tau : float
        Temperature of the cosine logits.
    n_negatives : int
        Other samples whose band serves as negatives (capped at ``B - 1``).
    lengths : (Tensor, Tensor), optional
        Source and victim lengths (B,) that set the band centres of the negatives; default
        the masks' sums. Pass them when masks have holes (dropped steps).

    Returns
    -------
    Tensor
        Scalar: mean over victim steps whose target row has mass; 0 if there is none.
    """
    n_batch = p_source.shape[0]
    logits = [(1 - cost) / tau]  # (B, M, W); +inf cost -> -inf logit
    n_source, n_victim = lengths or (source_mask.sum(1), victim_mask.sum(1))  # (B,) each
    for shift in range(1, min(n_negatives, n_batch - 1) + 1):
        other_mask = source_mask.roll(shift, 0)
        other_centres = diagonal_centres(n_source.roll(shift, 0), n_victim, p_victim.shape[1])
        cost = column_cosine_cost(
            p_source.roll(shift, 0), p_victim, other_mask, victim_mask, other_centres, window
        )
        logits.append((1 - cost) / tau)  # (B, M, W); +inf cost -> -inf logit
    scores = torch.cat(logits, -1)  # (B, M, W * (1 + negatives))
    rows = target.sum(-1) > 0  # (B, M)
    scores = scores.masked_fill(~rows[..., None], 0.0)  # rows without positives: no NaN
    log_prob = scores.log_softmax(-1)[..., : target.shape[-1]]  # (B, M, W)
    picked = torch.where(target > 0, target * log_prob, torch.zeros_like(log_prob))
    return -(picked.sum(-1) * rows).sum() / rows.sum().clamp_min(1)


def translation_loss(imputed: Tensor, z_victim: Tensor, victim_mask: Tensor) -> Tensor:
    """Mean squared error over valid victim steps between (B, M, d) imputed and real steps."""
    sq = (imputed - z_victim.detach()).square().mean(-1)  # (B, M)
    return (sq * victim_mask).sum() / victim_mask.sum().clamp_min(1)
