"""MM-Align: OT-based alignment dynamics learning with denoising training.

Han, Wei; Chen, Hui; Kan, Min-Yen; Poria, Soujanya. "MM-Align: Learning Optimal
Transport-based Alignment Dynamics for Fast and Accurate Inference on Missing Modality
Sequences", EMNLP 2022, sections 3.3-3.5 (Eq. 1-17, Algorithm 1). Our corrections are in
``docs/method.md``: a real log-domain Sinkhorn solved to a tolerance (Eq. 9's kernel is
``exp(-M / mu)``), column-convention targets, no gradient through the solver.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from mmalign.config import ADLConfig, TrainConfig
from mmalign.data.batching import Batch
from mmalign.models.adl import AlignmentFitter, banded_impute, fit_loss, ot_fit_targets
from mmalign.models.backbone import Backbone
from mmalign.models.emission import LinearEmission, emission_loss
from mmalign.models.losses import info_nce
from mmalign.models.method import Losses, MissingModalityModel, Pass, Phase
from mmalign.models.step_space import StepSpace, step_contrastive_loss, translation_loss
from mmalign.options import validate_fields
from mmalign.ot.column_band import (
    ColumnSinkhornResult,
    column_cosine_cost,
    diagonal_centres,
    sinkhorn_columns,
)
from mmalign.ot.monotone import MonotoneAlignment, monotone_band_posterior
from mmalign.validation import ConfigError, ConvergenceWarning

__all__ = ["MMAlign", "alignment_config", "solve_band", "cost_spread"]


class MMAlign(MissingModalityModel):
    """Backbone + alignment dynamics learner trained by denoising training (Algorithm 1).

    Parameters
    ----------
    backbone : Backbone
    task : str
        ``"regression"`` or ``"classification"``.
    adl : ADLConfig, optional
        The alignment options; default the option table's defaults. Each field's meaning is
        its help in :class:`~mmalign.config.ADLConfig` (``mmalign run --help``), with the
        method in docs/method.md. In short: ``window`` is ``K``, victim step ``j`` aligns
        only with source steps ``i`` where ``abs(i - c_j) <= K`` (``c_j`` the rescaled
        diagonal); ``alignment_space`` is where the cost compares steps (a learned step space
        with a translator, :mod:`mmalign.models.step_space`; the raw encoder outputs, as in
        the paper; or a linear-Gaussian emission, :mod:`mmalign.models.emission`, whose cost
        is in nats so ``reg`` is then 1); ``alignment_solver`` is how the cost becomes an
        alignment (an entropic OT plan, :func:`solve_band`, or a monotone path's posterior,
        :mod:`mmalign.ot.monotone`); ``train_fitter=False`` is the "w/o fit loss" ablation.
    lambda_con, tau : float
        Weight and temperature of the InfoNCE regulariser (Eq. 16-17).
    single_iteration : bool
        True (Algorithm 1): one pass over each complete batch steps the fitter, then the
        backbone. False gives the "w/o SI" ablation: a fitter pass, then a backbone pass.
    lambda_imputed, victim_stream_dropout : float
        The imputing methods' shared training options, documented once in
        :class:`~mmalign.models.method.MissingModalityModel`.
    **options
        Fields of ``adl`` to replace, e.g. ``window=4`` (checked like the option table).

    Raises
    ------
    ConfigError
        An unknown option or a value the option table does not allow.
    """

    group_order = ("fitter", "backbone")

    def __init__(
        self,
        backbone: Backbone,
        task: str,
        adl: ADLConfig | None = None,
        *,
        lambda_con: float = TrainConfig.lambda_con,
        tau: float = TrainConfig.tau,
        single_iteration: bool = TrainConfig.single_iteration,
        lambda_imputed: float = TrainConfig.lambda_imputed,
        victim_stream_dropout: float = TrainConfig.victim_stream_dropout,
        **options: Any,
    ) -> None:
        super().__init__(backbone, task, lambda_imputed, victim_stream_dropout)
        self.adl = alignment_config(adl, options)
        self.fitter = AlignmentFitter(backbone.d_model, self.adl.window)
        self.lambda_con, self.tau = lambda_con, tau
        self.single_iteration = single_iteration
        self.step_space = (
            None
            if self.adl.alignment_space == "encoder"
            else StepSpace(backbone.d_model, heads=self.adl.alignment_space == "projected")
        )
        self.emission = (
            LinearEmission(
                backbone.source_encoder.input_shift.shape[0],
                backbone.victim_encoder.input_shift.shape[0],
                self.adl.emission_update,
                self.adl.emission_covariance,
            )
            if self.adl.alignment_space == "emission"
            else None
        )
        # victim steps per source step, for the length of an imputed victim (set_victim_rate)
        self.register_buffer("victim_rate", torch.ones(()))

    def set_victim_rate(self, rate: float) -> None:
        """Set the victim steps per source step that an imputed victim gets (see docs/method.md).

        The run sets it to the median ratio ``Lv / Ls`` over the complete training samples;
        it is 1 for aligned data, where the imputation has the source's length.
        """
        if not rate > 0:
            raise ConfigError(f"`rate` must be > 0; got {rate!r}.")
        self.victim_rate.fill_(float(rate))

    def epoch_passes(self, warmup: bool) -> tuple[Pass, ...]:
        """Algorithm 1, or with ``single_iteration=False`` separate fitter and backbone passes."""
        if warmup or self.single_iteration:
            return super().epoch_passes(warmup)
        return (Pass("complete", ("fitter",)), Pass("complete", ("backbone",)), Pass("missing"))

    def epoch_summary(self, record: dict) -> str:
        """Show the main loss, fit and step losses, and the share of unconverged OT solves."""
        text = super().epoch_summary(record)
        if "complete/fitter" in record:
            text += f"  fit {record['complete/fitter']:.4f}"
        if "complete/step" in record:
            text += f"  step {record['complete/step']:.3f}"
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

    def alignment_steps(self, z_source: Tensor, z_victim: Tensor) -> tuple[Tensor, Tensor]:
        """Return the steps a cosine cost compares: projected (default) or the encoder outputs."""
        if self.adl.alignment_space != "projected":
            return z_source, z_victim
        return self.step_space.project(z_source, z_victim)

    def alignment_cost(
        self, p_source: Tensor, p_victim: Tensor, batch: Batch, centres: Tensor
    ) -> Tensor:
        """Cost (column band, (B, M, W)) between the batch's source and victim steps.

        Cosine between compared steps ``p_*`` (:meth:`alignment_steps`), or in the emission
        space the emission's negative log-likelihood of the victim's standardised features
        (``p_*`` unused). In the projected and emission spaces the cost keeps its gradient:
        their own loss is built on it, and the solver reads it detached, so it is computed
        once per complete batch.
        """
        if self.emission is not None:
            return self.emission.cost(
                *self._emission_inputs(batch), batch.source_mask, batch.victim_mask, centres,
                self.adl.window,
            )  # fmt: skip
        return column_cosine_cost(
            p_source, p_victim, batch.source_mask, batch.victim_mask, centres, self.adl.window
        )

    def _emission_inputs(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Return the standardised inputs the emission reads, (B, L, D_s) and (B, M, D_v)."""
        return (
            self.backbone.source_encoder.standardise(batch.source),
            self.backbone.victim_encoder.standardise(batch.victim),
        )

    def solve_alignment(
        self, cost: Tensor, batch: Batch, centres: Tensor
    ) -> ColumnSinkhornResult | MonotoneAlignment:
        """Alignment plan (column band, (B, M, W)) for a band of costs, no gradient.

        See :func:`solve_band`; an emission cost is in nats and enters with ``reg = 1``.
        Non-convergence of the OT solver is not warned per batch: the share of unconverged
        samples is the ``ot_unconverged`` entry of :meth:`compute_losses`, logged per epoch.
        """
        return solve_band(
            cost, batch.source_mask, batch.victim_mask, centres, self.adl,
            nats=self.emission is not None,
        )  # fmt: skip

    def _impute_steps(self, steps: Tensor, weights: Tensor, centres: Tensor | None) -> Tensor:
        """Eq. 14 on source steps (translated into the victim space when there is a translator)."""
        if self.step_space is not None:
            steps = self.step_space.translate(steps)
        return banded_impute(weights, steps, self.adl.window, centres)

    def imputed_length(self, source_mask: Tensor) -> tuple[Tensor, Tensor | None]:
        """Victim mask (B, M) and band centres (B, M) of an imputed victim.

        Length ``max(1, round(Ls * victim_rate))`` for a non-empty source, 0 otherwise. For
        aligned data (rate 1) the victim is on the source's own axis and the centres are
        None (centre ``j``): the fitter and the imputation then take their faster paths.
        """
        n = source_mask.sum(1)  # (B,)
        if float(self.victim_rate) == 1.0:
            return source_mask, None
        m = torch.where(n > 0, (n * self.victim_rate).round().long().clamp_min(1), 0)  # (B,)
        length = max(1, int(m.max()))
        mask = torch.arange(length, device=n.device) < m[:, None]  # (B, M)
        return mask, diagonal_centres(n, m, length)

    def impute_victim(self, z_source: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Eq. 14-15: fitter weights times source steps; the head gets the initial head token."""
        steps = z_source[:, 1:]  # (B, L, d)
        mask, centres = self.imputed_length(batch.source_mask)
        # the fitter's own parameters take no gradient here: only its fit loss steps them
        # (Algorithm 1). train_step already asks for each group's gradients only; this keeps
        # a plain .backward() of the task loss from computing the fitter's weight gradients
        frozen = {name: p.detach() for name, p in self.fitter.named_parameters()}
        weights = functional_call(
            self.fitter, frozen, (steps, batch.source_mask, centres, mask)
        )  # (B, M, W)
        imputed = self._impute_steps(steps, weights, centres)  # (B, M, d)
        head = self.backbone.victim_head_token().expand(steps.shape[0], 1, -1)  # (B, 1, d)
        return torch.cat([head, imputed], dim=1), mask  # (B, 1+M, d)

    def compute_losses(self, batch: Batch, phase: Phase) -> Losses:
        """Algorithm 1: warm-up and complete batches (lines 2-4, 8-13), missing batches (15-17).

        On complete batches the projected (emission) space adds the step-level InfoNCE (the
        posterior-weighted emission likelihood), weight ``lambda_step``, and the translation
        loss (``lambda_translate``) to the backbone's loss; both use the alignment that gives
        the fitter its targets. With ``lambda_imputed > 0`` complete batches also train the
        imputed path, the one a missing batch trains.
        """
        z_source = self.backbone.encode_source(batch.source, batch.source_mask)
        if phase == "missing":
            return Losses({"backbone": self.imputed_loss(z_source, batch)})
        z_victim = self.backbone.encode_victim(batch.victim, batch.victim_mask)
        out = self.fuse(z_source, batch.source_mask, z_victim, batch.victim_mask)
        main = self.loss(out, batch)
        con = info_nce(z_source[:, 0], z_victim[:, 0], self.tau)
        step = main + self.lambda_con * con
        logged = {"main": main.detach(), "con": con.detach()}
        # complete batches: + the imputed path's loss (logged in `logged`), before the OT
        # part so that the dropout stream stays that of the runs in docs/results.md
        paired = self.with_imputed_loss(Losses({"backbone": step}, logged), z_source, batch, phase)
        step = paired.step["backbone"]
        if phase == "complete" and (self.adl.train_fitter or self.step_space is not None):
            steps_s, steps_v = z_source[:, 1:], z_victim[:, 1:]
            centres = batch_centres(batch)
            # no gradient is needed through the paper's cost: nothing is trained on it
            with torch.set_grad_enabled(self.step_space is not None and torch.is_grad_enabled()):
                p_source, p_victim = self.alignment_steps(steps_s, steps_v)
                cost = self.alignment_cost(p_source, p_victim, batch, centres)  # (B, M, W)
            ot = self.solve_alignment(cost, batch, centres)
            masks = (batch.source_mask, batch.victim_mask, centres, self.adl.window)
            target, valid = ot_fit_targets(ot.plan, *masks, self.adl.convention)
            logged["ot_unconverged"] = (~ot.converged).float().mean()
            losses = Losses({"backbone": step}, logged)
            if self.step_space is not None:
                col = (
                    target
                    if self.adl.convention == "column"
                    else ot_fit_targets(ot.plan, *masks)[0]
                )
                if self.emission is not None:
                    own = emission_loss(cost, col)  # no gradient with update="em"
                    if self.emission.update == "em" and self.training:
                        inputs = self._emission_inputs(batch)
                        self.emission.em_step(*inputs, *masks, col)
                else:
                    own = step_contrastive_loss(
                        cost, p_source, p_victim, batch.source_mask, batch.victim_mask, centres,
                        col, self.adl.window, self.adl.step_tau,
                    )  # fmt: skip
                imputed = self._impute_steps(steps_s, col, centres)  # (B, M, d)
                trans = translation_loss(imputed, steps_v, batch.victim_mask)
                losses.step["backbone"] = (
                    step + self.adl.lambda_step * own + self.adl.lambda_translate * trans
                )
                logged.update(step=own.detach(), translate=trans.detach())
            if self.adl.train_fitter:
                # the fitter step updates psi only (line 11): its input is detached from theta
                pred = self.fitter(steps_s.detach(), batch.source_mask, centres, batch.victim_mask)
                losses.step["fitter"] = fit_loss(pred, target, valid, self.adl.fit_normalisation)
            return losses
        return Losses({"backbone": step}, logged)

    @torch.no_grad()
    def alignments(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """Predicted and OT column bands (B, M, W) and their centres (B, M), complete batch."""
        z_source = self.backbone.encode_source(batch.source, batch.source_mask)
        z_victim = self.backbone.encode_victim(batch.victim, batch.victim_mask)
        centres = batch_centres(batch)
        p_source, p_victim = self.alignment_steps(z_source[:, 1:], z_victim[:, 1:])
        cost = self.alignment_cost(p_source, p_victim, batch, centres)
        ot = self.solve_alignment(cost, batch, centres)
        target, _ = ot_fit_targets(
            ot.plan,
            batch.source_mask,
            batch.victim_mask,
            centres,
            self.adl.window,
            self.adl.convention,
        )
        predicted = self.fitter(z_source[:, 1:], batch.source_mask, centres, batch.victim_mask)
        return predicted, target, centres


def batch_centres(batch: Batch) -> Tensor:
    """Band centres (B, M) of a batch's victim steps on the rescaled diagonal."""
    return diagonal_centres(
        batch.source_mask.sum(1), batch.victim_mask.sum(1), batch.victim_mask.shape[1]
    )


def alignment_config(adl: ADLConfig | None, options: Mapping[str, Any]) -> ADLConfig:
    """Return ``adl`` (default: the option table's defaults) with ``options`` replaced, checked.

    Raises
    ------
    ConfigError
        An option that is not a field of :class:`~mmalign.config.ADLConfig`, or a value its
        field does not allow.
    """
    names = {f.name for f in fields(ADLConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ConfigError(
            f"unknown alignment option(s) {unknown}; the options are {sorted(names)}."
        )
    adl = replace(adl or ADLConfig(), **options)
    validate_fields(adl)
    return adl


def solve_band(
    cost: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    centres: Tensor,
    adl: ADLConfig,
    *,
    path_masks: tuple[Tensor, Tensor] | None = None,
    nats: bool = False,
) -> ColumnSinkhornResult | MonotoneAlignment:
    """Alignment plan (B, M, W) of a cost band, no gradient, per-batch warnings silenced.

    ``adl`` gives the window, the solver and its options. With ``adl.reg_relative`` the
    regularisation of sample ``b`` is ``reg`` times :func:`cost_spread` (the standard
    deviation of its in-window costs), so the plan's sharpness does not depend on the scale
    of the cost. ``alignment_solver="sinkhorn"``: the entropic OT plan, with
    ``source_relaxation`` (in reg's units; 0 = balanced) relaxing the source marginal.
    ``alignment_solver="monotone"``: the monotone path's posterior
    (:func:`~mmalign.ot.monotone.monotone_band_posterior`) under the weights
    ``exp(-cost / reg)``, with ``alignment_states`` sub-states per source step at most;
    ``path_masks`` (source, victim in-length masks, default the given masks) let the path
    run through steps whose cost is unknown (``inf``): there the log weight is the mean of
    the victim step's known ones, which favours no source step.
    ``nats``: the cost is a negative log-likelihood (the emission space), so ``reg`` is 1
    and not relative whatever ``adl`` says.
    """
    reg, reg_relative, window = adl.reg, adl.reg_relative, adl.window
    if nats:
        reg, reg_relative = 1.0, False
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cost = cost.detach()
        scale: float | Tensor = cost_spread(cost) if reg_relative else 1.0  # (B,)
        if adl.alignment_solver == "monotone":
            temperature = reg * scale[:, None, None] if reg_relative else reg
            known = torch.isfinite(cost)  # (B, M, W)
            log_weight = torch.where(known, -cost / temperature, 0.0)
            neutral = log_weight.sum(-1, keepdim=True) / known.sum(-1, keepdim=True).clamp_min(1)
            log_weight = torch.where(known, log_weight, neutral)  # (B, M, W)
            path_source, path_victim = path_masks or (source_mask, victim_mask)
            return monotone_band_posterior(
                log_weight, path_source, path_victim, centres, window, states=adl.alignment_states
            )
        relaxation = None
        if adl.source_relaxation > 0:  # in reg's units: rho / (rho + reg) is scale-free
            relaxation = adl.source_relaxation * scale
        return sinkhorn_columns(
            cost, source_mask, victim_mask, centres, window=window, reg=reg * scale,
            max_iter=adl.max_iter, tol=adl.tol, source_relaxation=relaxation,
        )  # fmt: skip


def cost_spread(cost: Tensor) -> Tensor:
    """Return the standard deviation (B,) of each sample's finite band costs, at least 1e-2."""
    finite = torch.isfinite(cost)
    count = finite.sum((1, 2)).clamp_min(1)
    values = torch.where(finite, cost, 0.0)
    mean = values.sum((1, 2)) / count
    var = torch.where(finite, (cost - mean[:, None, None]).square(), 0.0).sum((1, 2)) / count
    return var.sqrt().clamp_min(1e-2)
