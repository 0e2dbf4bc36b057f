"""MM-Align: OT-based alignment dynamics learning with denoising training.

Han, Wei; Chen, Hui; Kan, Min-Yen; Poria, Soujanya. "MM-Align: Learning Optimal
Transport-based Alignment Dynamics for Fast and Accurate Inference on Missing Modality
Sequences", EMNLP 2022, sections 3.3-3.5 (Eq. 1-17, Algorithm 1). Our corrections are in
``docs/method.md``: a real log-domain Sinkhorn solved to a tolerance (Eq. 9's kernel is
``exp(-M / mu)``), column-convention targets, no gradient through the solver.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from mmalign.config import ADLConfig, TrainConfig
from mmalign.data.batching import Batch
from mmalign.models.adl import AlignmentFitter, Convention, banded_impute, fit_loss, ot_fit_targets
from mmalign.models.backbone import Backbone
from mmalign.models.losses import info_nce
from mmalign.models.method import Losses, MissingModalityModel, Pass, Phase
from mmalign.ot.cost import windowed_cosine_cost
from mmalign.ot.sinkhorn import SinkhornResult, sinkhorn_banded
from mmalign.validation import ConvergenceWarning

__all__ = ["MMAlign"]


class MMAlign(MissingModalityModel):
    """Backbone + alignment dynamics learner trained by denoising training (Algorithm 1).

    Parameters
    ----------
    backbone : Backbone
    task : str
        ``"regression"`` or ``"classification"``.
    window : int
        ``K``: alignment only where ``abs(i - j) <= K``.
    reg : float
        Entropic regularisation ``mu`` of the OT problem (Eq. 8).
    max_iter, tol : int, float
        Sinkhorn stopping rule.
    lambda_con, tau : float
        Weight and temperature of the InfoNCE regulariser (Eq. 16-17).
    convention : {"column", "row"}
        Which plan slices the fitter learns (see :func:`ot_fit_targets`).
    fit_normalisation : {"mse", "eq13"}
    train_fitter : bool
        False gives the "w/o fit loss" ablation (the fitter keeps its random weights).
    single_iteration : bool
        True (Algorithm 1): one pass over each complete batch steps the fitter, then the
        backbone. False gives the "w/o SI" ablation: a fitter pass, then a backbone pass.
    """

    group_order = ("fitter", "backbone")

    def __init__(
        self,
        backbone: Backbone,
        task: str,
        window: int = ADLConfig.window,
        reg: float = ADLConfig.reg,
        max_iter: int = ADLConfig.max_iter,
        tol: float = ADLConfig.tol,
        lambda_con: float = TrainConfig.lambda_con,
        tau: float = TrainConfig.tau,
        convention: Convention = ADLConfig.convention,  # type: ignore[assignment]
        fit_normalisation: str = ADLConfig.fit_normalisation,
        train_fitter: bool = ADLConfig.train_fitter,
        single_iteration: bool = TrainConfig.single_iteration,
    ) -> None:
        super().__init__(backbone, task)
        self.fitter = AlignmentFitter(backbone.d_model, window)
        self.window = window
        self.reg, self.max_iter, self.tol = reg, max_iter, tol
        self.lambda_con, self.tau = lambda_con, tau
        self.convention = convention
        self.fit_normalisation = fit_normalisation
        self.train_fitter = train_fitter
        self.single_iteration = single_iteration

    def epoch_passes(self, warmup: bool) -> tuple[Pass, ...]:
        """Algorithm 1, or with ``single_iteration=False`` separate fitter and backbone passes."""
        if warmup or self.single_iteration:
            return super().epoch_passes(warmup)
        return (Pass("complete", ("fitter",)), Pass("complete", ("backbone",)), Pass("missing"))

    def epoch_summary(self, record: dict) -> str:
        """Show the main loss, fit loss and the share of samples whose Sinkhorn did not converge."""
        text = super().epoch_summary(record)
        if "complete/fitter" in record:
            text += f"  fit {record['complete/fitter']:.4f}"
        if record.get("complete/ot_unconverged", 0.0) > 0:
            text += f"  OT unconverged {100 * record['complete/ot_unconverged']:.0f}%"
        return text

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``fitter`` = the ADL's GRU and projection (psi); ``backbone`` = everything else (theta)."""
        fitter = {id(p) for p in self.fitter.parameters()}
        return {
            "fitter": [p for p in self.fitter.parameters() if p.requires_grad],
            "backbone": [p for p in self.parameters() if p.requires_grad and id(p) not in fitter],
        }

    def solve_alignment(self, z_source: Tensor, z_victim: Tensor, batch: Batch) -> SinkhornResult:
        """OT plan (row band, (B, L, W)) between encoded source and victim steps, no gradient.

        Non-convergence is not warned per batch: the share of unconverged samples is
        reported as the ``ot_unconverged`` entry of :meth:`compute_losses` and logged per epoch.
        """
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cost = windowed_cosine_cost(
                z_source, z_victim, batch.source_mask, batch.victim_mask, window=self.window
            )  # (B, L, W)
            return sinkhorn_banded(
                cost,
                batch.source_mask,
                batch.victim_mask,
                window=self.window,
                reg=self.reg,
                max_iter=self.max_iter,
                tol=self.tol,
            )

    def impute_victim(self, z_source: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Eq. 14-15: fitter weights times source steps; the head gets the initial head token."""
        steps = z_source[:, 1:]  # (B, L, d)
        weights = self.fitter(steps, batch.source_mask)  # (B, L, W)
        imputed = banded_impute(weights, steps, self.window)  # (B, L, d)
        head = self.backbone.victim_head_token().expand(steps.shape[0], 1, -1)  # (B, 1, d)
        return torch.cat([head, imputed], dim=1), batch.source_mask  # (B, 1+L, d)

    def compute_losses(self, batch: Batch, phase: Phase) -> Losses:
        """Algorithm 1: warm-up and complete batches (lines 2-4, 8-13), missing batches (15-17)."""
        z_source = self.backbone.encode_source(batch.source, batch.source_mask)
        if phase == "missing":
            z_victim, mask = self.impute_victim(z_source, batch)
            out = self.backbone.predict_fused(z_source, batch.source_mask, z_victim, mask)
            return Losses({"backbone": self.loss(out, batch)})
        z_victim = self.backbone.encode_victim(batch.victim, batch.victim_mask)
        out = self.backbone.predict_fused(z_source, batch.source_mask, z_victim, batch.victim_mask)
        main = self.loss(out, batch)
        con = info_nce(z_source[:, 0], z_victim[:, 0], self.tau)
        losses = Losses(
            {"backbone": main + self.lambda_con * con}, {"main": main.detach(), "con": con.detach()}
        )
        if phase == "complete" and self.train_fitter:
            ot = self.solve_alignment(z_source[:, 1:], z_victim[:, 1:], batch)
            target, valid = ot_fit_targets(
                ot.plan, batch.source_mask, batch.victim_mask, self.window, self.convention
            )
            # the fitter step updates psi only (line 11): its input is detached from theta
            pred = self.fitter(z_source[:, 1:].detach(), batch.source_mask)  # (B, L, W)
            losses.step["fitter"] = fit_loss(pred, target, valid, self.fit_normalisation)
            losses.logged["ot_unconverged"] = (~ot.converged).float().mean()
        return losses

    @torch.no_grad()
    def alignments(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Predicted and OT column bands for a complete batch, both (B, L, W) (for Fig. 5)."""
        z_source = self.backbone.encode_source(batch.source, batch.source_mask)
        z_victim = self.backbone.encode_victim(batch.victim, batch.victim_mask)
        ot = self.solve_alignment(z_source[:, 1:], z_victim[:, 1:], batch)
        target, _ = ot_fit_targets(
            ot.plan, batch.source_mask, batch.victim_mask, self.window, self.convention
        )
        return self.fitter(z_source[:, 1:], batch.source_mask), target
