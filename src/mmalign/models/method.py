"""The hook interface that every method (MM-Align and each baseline) implements.

The one training loop (:mod:`mmalign.train.loop`) calls only these hooks, so methods differ
in a small class rather than in a copied loop (house style rule 9). Interface introduced for
this toolkit (2026); the split into a complete and a missing phase follows Algorithm 1 of
MM-Align (Han et al., EMNLP 2022).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import Tensor, nn

from mmalign.data.batching import Batch
from mmalign.models.backbone import Backbone
from mmalign.models.losses import task_loss
from mmalign.validation import check_fraction, check_non_negative

__all__ = ["Phase", "Pass", "Losses", "PairDims", "MissingModalityModel"]

# warmup: complete batches before Algorithm 1's main loop; complete / missing: the two splits;
# mixed: the random-missing protocol's batches, each sample with its own pattern
Phase = Literal["warmup", "complete", "missing", "mixed"]


@dataclass(frozen=True)
class Pass:
    """One pass over a training split within an epoch.

    Attributes
    ----------
    phase : {"warmup", "complete", "missing", "mixed"}
        Which split the pass iterates (``warmup`` and ``complete`` use the complete split,
        ``mixed`` every training row of the random-missing protocol).
    groups : tuple of str, optional
        Optimiser groups stepped in this pass (``None``: every group that has a loss).
    """

    phase: Phase
    groups: tuple[str, ...] | None = None


@dataclass
class Losses:
    """The losses of one batch.

    Attributes
    ----------
    step : dict[str, Tensor]
        Optimiser group (a key of :meth:`MissingModalityModel.parameter_groups`) -> the scalar
        loss that group minimises on this batch.
    logged : dict[str, Tensor]
        Detached scalars that are only logged (loss parts, solver diagnostics).
    """

    step: dict[str, Tensor]
    logged: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class PairDims:
    """Sizes a method needs to build itself."""

    source_dim: int
    victim_dim: int
    output_dim: int
    task: str


class MissingModalityModel(nn.Module):
    """Base class: a backbone plus whatever the method uses to stand in for the victim.

    Subclasses implement :meth:`compute_losses` and :meth:`impute_victim`; the default
    :meth:`predict` fuses the source with the real victim where present and the imputation
    elsewhere.

    Parameters
    ----------
    backbone : Backbone
    task : str
        ``"regression"`` or ``"classification"``.
    lambda_imputed : float
        Methods that impute: weight of :meth:`imputed_loss` on complete batches
        (:meth:`with_imputed_loss`); 0 trains the imputed path on missing batches only, as
        Algorithm 1 does. Methods that never impute leave it at 0.
    victim_stream_dropout : float
        Methods that impute: the share of training samples whose victim stream is replaced
        by their source stream in the fusion (:meth:`fuse`); 0 = off.
    """

    #: order in which the loop steps the optimiser groups on one batch
    group_order: tuple[str, ...] = ("backbone",)

    def __init__(
        self,
        backbone: Backbone,
        task: str,
        lambda_imputed: float = 0.0,
        victim_stream_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_non_negative("lambda_imputed", lambda_imputed)
        self.backbone = backbone
        self.task = task
        self.lambda_imputed = float(lambda_imputed)
        self.victim_stream_dropout = check_fraction("victim_stream_dropout", victim_stream_dropout)

    # -- hooks -------------------------------------------------------------------------
    def compute_losses(self, batch: Batch, phase: Phase) -> Losses:
        """Return the losses of one training batch of ``phase``."""
        raise NotImplementedError

    def epoch_passes(self, warmup: bool) -> tuple[Pass, ...]:
        """Return the passes of one epoch: Algorithm 1 visits complete, then missing batches."""
        if warmup:
            return (Pass("warmup"),)
        return (Pass("complete"), Pass("missing"))

    def epoch_summary(self, record: dict) -> str:
        """Return the method's part of the epoch log line, from the epoch's mean losses.

        ``record`` maps ``"<phase>/<name>"`` to the epoch mean of each stepped and logged loss.
        With ``lambda_imputed > 0`` it also shows the imputed path's loss on complete batches.
        """
        for key in ("complete/main", "warmup/main", "complete/backbone", "warmup/backbone"):
            if key in record:
                text = f"loss {record[key]:.4f}"
                if "complete/imputed" in record:
                    text += f"  imputed {record['complete/imputed']:.4f}"
                return text
        return ""

    def impute_victim(self, z_source: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Stand-in for the encoded victim: returns ``(z_victim (B, 1+L, d), mask (B, L))``."""
        raise NotImplementedError

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters per optimiser group; default: everything in ``backbone``."""
        return {"backbone": [p for p in self.parameters() if p.requires_grad]}

    def set_victim_rate(self, rate: float) -> None:
        """Take the training median ``Lv / Ls`` (unaligned data); default: not needed, ignored.

        Methods that impute the victim on its own time axis override it (MM-Align).
        """

    # -- shared helpers ------------------------------------------------------------------
    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        """Task loss of ``output`` (B, C) against the batch labels."""
        return task_loss(output, batch.labels, self.task)

    def fuse(
        self, z_source: Tensor, source_mask: Tensor, z_victim: Tensor, victim_mask: Tensor
    ) -> Tensor:
        """Fuse and predict (B, C) with the backbone; victim-stream dropout in training.

        Training losses call this; predictions call the backbone directly. In training, each
        sample's victim stream (B, 1+M, d) with ``victim_mask`` (B, M) is replaced, with
        probability ``victim_stream_dropout``, by its source stream ``z_source`` (B, 1+L, d)
        and ``source_mask`` (B, L): the fusion then computes for that sample what LB
        computes. Modality dropout (Neverova et al., "ModDrop", TPAMI 2016): the source
        stream must predict on its own, and the fusion cannot lean on the victim stream alone.
        """
        if self.training and self.victim_stream_dropout > 0:
            n = z_source.shape[0]
            dropped = torch.rand(n, device=z_source.device) < self.victim_stream_dropout  # (B,)
            length = max(z_source.shape[1], z_victim.shape[1]) - 1  # steps, no head
            z_src, src_mask = _pad_steps(z_source, source_mask, length)
            z_vic, vic_mask = _pad_steps(z_victim, victim_mask, length)
            z_victim = z_src.where(dropped[:, None, None], z_vic)  # (B, 1+M', d)
            victim_mask = src_mask.where(dropped[:, None], vic_mask)  # (B, M')
        return self.backbone.predict_fused(z_source, source_mask, z_victim, victim_mask)

    def imputed_loss(self, z_source: Tensor, batch: Batch) -> Tensor:
        """Task loss of the imputed path: the source (B, 1+L, d), the victim imputed from it."""
        z_victim, mask = self.impute_victim(z_source, batch)
        return self.loss(self.fuse(z_source, batch.source_mask, z_victim, mask), batch)

    def with_imputed_loss(
        self, losses: Losses, z_source: Tensor, batch: Batch, phase: Phase
    ) -> Losses:
        """On complete batches add ``lambda_imputed`` times :meth:`imputed_loss` to the backbone's.

        Setting A tests the imputed path; without this only missing batches train it, so at
        ``p = 0.5`` it learns from half the samples a source-only model learns from
        (docs/method.md, "Training"). Logged as ``imputed``. Other phases: ``losses`` as given.
        """
        if phase != "complete" or self.lambda_imputed == 0:
            return losses
        imputed = self.imputed_loss(z_source, batch)
        losses.step["backbone"] = losses.step["backbone"] + self.lambda_imputed * imputed
        losses.logged["imputed"] = imputed.detach()
        return losses

    def encode_pair_or_impute(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """Encode the source; encode the victim where present and impute it elsewhere.

        Returns
        -------
        z_source : Tensor, shape (B, 1+L, d)
        z_victim : Tensor, shape (B, 1+M, d)
        victim_mask : Tensor, shape (B, M)
        """
        z_source, victims = self._encode_settings(batch, {"": batch.has_victim})
        return (z_source, *victims[""])

    def _encode_settings(
        self, batch: Batch, has: Mapping[str, Tensor]
    ) -> tuple[Tensor, dict[str, tuple[Tensor, Tensor]]]:
        """Encode the source and the real victim once, impute once, mix per presence pattern.

        ``has`` maps a name to a (B,) bool pattern (combined with ``batch.has_victim``).
        Returns ``z_source`` and, per name, ``(z_victim (B, 1+M, d), mask (B, M))``.
        """
        z_source = self.backbone.encode_source(batch.source, batch.source_mask)
        patterns = {name: h & batch.has_victim for name, h in has.items()}
        real = imputed = None
        if any(bool(h.any()) for h in patterns.values()):
            real = (self.backbone.encode_victim(batch.victim, batch.victim_mask), batch.victim_mask)
        if any(not bool(h.all()) for h in patterns.values()):
            imputed = self.impute_victim(z_source, batch)
        out = {}
        for name, h in patterns.items():
            if imputed is None or (real is not None and bool(h.all())):
                out[name] = real
            elif real is None or not bool(h.any()):
                out[name] = imputed
            else:
                # an imputation on the victim's own axis may be longer or shorter than the
                # real victim: pad both to one length before mixing them row by row
                length = max(real[0].shape[1], imputed[0].shape[1]) - 1  # steps, no head
                z_real, real_mask = _pad_steps(*real, length)
                z_imp, imp_mask = _pad_steps(*imputed, length)
                z_victim = z_real.where(h[:, None, None], z_imp)  # (B, 1+M, d)
                out[name] = (z_victim, real_mask.where(h[:, None], imp_mask))  # (B, M)
        return z_source, out

    def predict(self, batch: Batch) -> Tensor:
        """Predict (B, C): the real victim where ``has_victim``, the imputation elsewhere."""
        z_source, z_victim, victim_mask = self.encode_pair_or_impute(batch)
        return self.backbone.predict_fused(z_source, batch.source_mask, z_victim, victim_mask)

    def predict_settings(self, batch: Batch, has: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Predict (B, C) under several victim-presence patterns, encoding and imputing once.

        Validation scores settings A and B on the same batches: the source, the real victim
        and the imputation (for Modal-Trans, an autoregressive decode) are computed once and
        only the fusion runs per pattern. Gives what :meth:`predict` gives for each pattern.

        Parameters
        ----------
        batch : Batch
            Holds the victim wherever any pattern has it.
        has : dict[str, Tensor]
            Name -> (B,) bool: where the victim counts as present.
        """
        z_source, victims = self._encode_settings(batch, has)
        return {
            name: self.backbone.predict_fused(z_source, batch.source_mask, *victim)
            for name, victim in victims.items()
        }


def _pad_steps(z: Tensor, mask: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """Zero-pad encoded steps (B, 1+M, d) and their mask (B, M) to ``1 + length`` steps."""
    extra = length + 1 - z.shape[1]
    if extra <= 0:
        return z, mask
    return F.pad(z, (0, 0, 0, extra)), F.pad(mask, (0, extra))
