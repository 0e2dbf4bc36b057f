"""MM-Align for any missing pattern: every absent modality and every dropped step imputed.

Extends MM-Align (Han et al., EMNLP 2022, sections 3.3-3.5, Eq. 7-17; :mod:`mmalign.models.mm_align`)
from one (source, victim) pair to K modalities with any subset present and steps dropped
inside present ones. What we added (``docs/method.md``, "Random missing"):

* **Alignment per ordered pair.** Each ordered pair ``s -> v`` has its own alignment fitter
  (Eq. 12) and translator; the step space has one projection head per modality. A pair
  learns from the samples of a batch that hold both modalities: the OT plan between their
  readable steps gives the fitter its targets (Eq. 13), the step InfoNCE and the translation
  loss (as in the pair model), and the head tokens' InfoNCE (Eq. 16-17). The target
  modalities take turns: one training batch learns the K - 1 pairs into one target. With K
  = 3 and R = 0.3 each pair then learns from about 0.16 N samples per epoch, as many as the
  pair protocol's complete split at p = 0.16, at a third of the cost of all six pairs on
  every batch (``benchmarks/pattern_batch_cost.py``).
* **Imputation by fusion of sources.** Target ``v`` of a sample gets, on its own time axis,
  the mean over its present sources ``s`` of Eq. 14's reweighting of ``s``'s (translated)
  steps by the fitter of ``s -> v``. An absent modality is replaced whole (its length is the
  first present source's length times the training median ``L_v / L_s``, the head is the
  learned head token, Eq. 15); a present one gets its dropped steps filled, when another
  modality is present. The mean, not a choice of one source, because every present source
  carries evidence and the fitters are trained on every pair alike.
* **Denoising training in one pass.** Each batch mixes patterns: the task loss is computed
  on the imputed inputs of every sample, so the backbone learns on imputations (Algorithm 1's
  missing phase) while the pairs that are complete in the batch train the alignment (its
  complete phase). The fitter reads the encoders' steps detached and the imputation reads
  the fitter's weights detached, so the fitter is trained by the fit loss alone (line 11)
  and the task loss reaches the encoders through the reweighted steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mmalign.config import ADLConfig, TrainConfig
from mmalign.data.pattern_batching import PatternBatch
from mmalign.models.adl import AlignmentFitter, banded_impute, fit_loss, ot_fit_targets
from mmalign.models.emission import LinearEmission, emission_loss
from mmalign.models.method import Losses, Phase
from mmalign.models.mm_align import alignment_config, solve_band
from mmalign.models.pattern_backbone import PatternBackbone
from mmalign.models.pattern_method import PatternModel
from mmalign.models.step_space import ModalityStepSpace, step_contrastive_loss, translation_loss
from mmalign.ot.column_band import ColumnSinkhornResult, column_cosine_cost, diagonal_centres
from mmalign.ot.monotone import MonotoneAlignment
from mmalign.validation import ConfigError

__all__ = ["MMAlignPatterns", "Imputed", "PairAlignment"]


@dataclass
class Imputed:
    """What the fusion reads for one target modality after imputation.

    Attributes
    ----------
    z : Tensor, shape (B, 1+M, d)
        Real encoded steps where readable, imputed ones elsewhere; head first.
    mask : Tensor, shape (B, M)
        Steps the fusion may read.
    weights : dict[str, Tensor]
        Source -> fitter weights (B, M, W) of the pair ``source -> target`` (with gradient
        to the fitter, for the fit loss).
    centres : dict[str, Tensor]
        Source -> band centres (B, M) of that pair.
    """

    z: Tensor
    mask: Tensor
    weights: dict[str, Tensor]
    centres: dict[str, Tensor]


class MMAlignPatterns(PatternModel):
    """MM-Align over K modalities with any missing pattern (module docstring).

    Parameters
    ----------
    backbone : PatternBackbone
    task : str
    adl : ADLConfig, optional
    lambda_con, tau : float
    **options
        As for :class:`~mmalign.models.mm_align.MMAlign`. The emission space has one
        emission per ordered pair; the monotone path runs through dropped steps, where it
        reads no cost.
    """

    group_order = ("fitter", "backbone")

    def __init__(
        self,
        backbone: PatternBackbone,
        task: str,
        adl: ADLConfig | None = None,
        *,
        lambda_con: float = TrainConfig.lambda_con,
        tau: float = TrainConfig.tau,
        **options: Any,
    ) -> None:
        super().__init__(backbone, task)
        self.adl = adl = alignment_config(adl, options)
        self.lambda_con, self.tau = lambda_con, tau
        modalities = backbone.modalities
        self.pairs = tuple((s, v) for v in modalities for s in modalities if s != v)
        d = backbone.d_model
        self.fitters = nn.ModuleDict(
            {f"{s}>{v}": AlignmentFitter(d, adl.window) for s, v in self.pairs}
        )
        self.step_space = (
            None
            if adl.alignment_space == "encoder"
            else ModalityStepSpace(modalities, d, heads=adl.alignment_space == "projected")
        )
        widths = {m: backbone.encoders[m].input_shift.shape[0] for m in modalities}
        self.emissions = (
            nn.ModuleDict(
                {
                    f"{s}>{v}": LinearEmission(
                        widths[s], widths[v], adl.emission_update, adl.emission_covariance
                    )
                    for s, v in self.pairs
                }
            )
            if adl.alignment_space == "emission"
            else None
        )
        # target steps per source step of each ordered pair (set_victim_rates)
        self.register_buffer("victim_rates", torch.ones(len(self.pairs)))
        # every modality on one time axis with equal lengths (aligned data): faster paths
        self.shared_axis = False
        # training batches seen (kept in the state dict): one target's alignment per batch
        self.turn = 0

    # -- lengths -------------------------------------------------------------------------
    def set_victim_rates(
        self, rates: dict[tuple[str, str], float], shared_axis: bool = False
    ) -> None:
        """Set ``L_v / L_s`` per ordered pair (the run uses training medians; 1 when aligned).

        ``shared_axis``: every sample has one length for all its modalities (aligned data),
        so the band centres are the identity and the fitter and the imputation take their
        faster paths.
        """
        for (s, v), rate in rates.items():
            if not rate > 0:
                raise ConfigError(f"`rates[{s!r}, {v!r}]` must be > 0; got {rate!r}.")
            self.victim_rates[self.pairs.index((s, v))] = float(rate)
        self.shared_axis = bool(shared_axis) and bool((self.victim_rates == 1).all())

    def _rate(self, source: str, target: str) -> Tensor:
        return self.victim_rates[self.pairs.index((source, target))]

    def _target_lengths(self, batch: PatternBatch, target: str) -> Tensor:
        """(B,) steps of ``target``: its own length where present, else from the first source."""
        k = batch.modalities.index(target)
        own = batch.lengths[target]  # (B,)
        guess = torch.zeros_like(own)
        for s in batch.modalities:  # first present source wins; loops over modalities
            if s == target:
                continue
            n = batch.lengths[s]  # (B,)
            scaled = (n * self._rate(s, target)).round().long().clamp_min(1)
            guess = torch.where((guess == 0) & (n > 0), scaled, guess)
        return torch.where(batch.present[:, k], own, guess)

    # -- imputation ------------------------------------------------------------------------
    def _impute(self, z: dict[str, Tensor], batch: PatternBatch, target: str) -> Imputed:
        """Fill ``target``'s absent samples and dropped steps from the present other modalities."""
        k = batch.modalities.index(target)
        m = self._target_lengths(batch, target)  # (B,)
        real = z[target]  # (B, 1+L_v, d)
        width = max(real.shape[1] - 1, int(m.max()) if m.numel() else 0, 1)
        axis = torch.arange(width, device=m.device) < m[:, None]  # (B, M)
        total = real.new_zeros(real.shape[0], width, real.shape[-1])  # (B, M, d)
        count = m.new_zeros(m.shape, dtype=real.dtype)  # (B,)
        weights, centres = {}, {}
        for s in batch.modalities:  # loops over the K - 1 sources
            if s == target:
                continue
            j = batch.modalities.index(s)
            steps = z[s][:, 1:]  # (B, L_s, d)
            n = batch.lengths[s]  # (B,) in-length steps (dropped ones too)
            c = diagonal_centres(n, m, width)  # (B, M)
            fast = self.shared_axis and width == steps.shape[1]  # centres are the identity
            w = self.fitters[f"{s}>{target}"](
                steps.detach(), batch.steps[s], None if fast else c, axis,
                source_valid=batch.masks[s],
            )  # fmt: skip
            values = (
                steps if self.step_space is None else self.step_space.translate(s, target, steps)
            )
            part = banded_impute(w.detach(), values, self.adl.window, None if fast else c)
            has = batch.present[:, j] & batch.masks[s].any(1)  # (B,)
            total = total + torch.where(has[:, None, None], part, torch.zeros_like(part))
            count = count + has.to(count.dtype)
            weights[s], centres[s] = w, c
        imputed = total / count.clamp_min(1)[:, None, None]  # (B, M, d) mean over sources
        present = batch.present[:, k]  # (B,)
        readable = _pad(batch.masks[target], width)  # (B, M)
        in_length = _pad(batch.steps[target], width)  # (B, M)
        steps_real = nn.functional.pad(real[:, 1:], (0, 0, 0, width - real.shape[1] + 1))
        use_real = present[:, None] & readable  # (B, M)
        steps_out = torch.where(use_real[..., None], steps_real, imputed)  # (B, M, d)
        filled = (count > 0)[:, None]  # (B, 1) some source to impute from
        mask = torch.where(present[:, None], readable | (in_length & filled), axis & filled)
        head = torch.where(
            present[:, None], real[:, 0], self.backbone.head_token(target).expand_as(real[:, 0])
        )  # (B, d)
        return Imputed(torch.cat([head[:, None], steps_out], 1), mask, weights, centres)

    def complete(
        self, batch: PatternBatch, z: dict[str, Tensor] | None = None
    ) -> dict[str, Imputed]:
        """Impute every modality of ``batch`` (encoding it first unless ``z`` is given)."""
        z = self.backbone.encode(batch.features, batch.masks) if z is None else z
        return {v: self._impute(z, batch, v) for v in batch.modalities}

    def predict(self, batch: PatternBatch) -> Tensor:
        """Predict (B, C) from the real and imputed modalities."""
        filled = self.complete(batch)
        return self._fuse(filled, batch)

    def _fuse(self, filled: dict[str, Imputed], batch: PatternBatch) -> Tensor:
        z = {v: f.z for v, f in filled.items()}
        masks = {v: f.mask for v, f in filled.items()}
        present = torch.stack([masks[v].any(1) for v in batch.modalities], 1)  # (B, K)
        present = present | batch.present
        return self.backbone.predict_fused(z, masks, present)

    # -- training --------------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``fitter`` = every pair's GRU and projection (psi); ``backbone`` = the rest (theta)."""
        fitter = {id(p) for p in self.fitters.parameters()}
        return {
            "fitter": [p for p in self.fitters.parameters() if p.requires_grad],
            "backbone": [p for p in self.parameters() if p.requires_grad and id(p) not in fitter],
        }

    def epoch_summary(self, record: dict) -> str:
        """Show the main loss, fit and step losses, and the share of unconverged OT solves."""
        text = super().epoch_summary(record)
        if "mixed/fitter" in record:
            text += f"  fit {record['mixed/fitter']:.4f}"
        if "mixed/step" in record:
            text += f"  step {record['mixed/step']:.3f}"
        if record.get("mixed/ot_unconverged", 0.0) > 0:
            text += f"  OT unconverged {100 * record['mixed/ot_unconverged']:.0f}%"
        return text

    def compute_losses(self, batch: PatternBatch, phase: Phase) -> Losses:
        """Task loss on the imputed inputs, plus the alignment losses of this batch's target.

        The pairs into one target modality (:meth:`alignment_target`, in turn) learn their
        alignment on the samples that hold both modalities (module docstring).
        """
        z = self.backbone.encode(batch.features, batch.masks)
        filled = self.complete(batch, z)
        main = self.loss(self._fuse(filled, batch), batch)
        parts: dict[str, list[Tensor]] = {k: [] for k in ("fit", "con", "step", "trans", "ot")}
        target = self.alignment_target()
        pairs = [(s, v) for s, v in self.pairs if v == target]
        # steps in the space the OT cost compares, once per modality
        projected = {m: self.alignment_steps(m, z[m][:, 1:]) for m in batch.modalities}
        for s, v in pairs:
            self._pair_losses(z, projected, batch, s, v, filled[v], parts)
        if self.training:
            self.turn += 1
        mean = {k: torch.stack(x).mean() if x else main.new_zeros(()) for k, x in parts.items()}
        step = main + self.lambda_con * mean["con"]
        if self.step_space is not None:
            step = (
                step
                + self.adl.lambda_step * mean["step"]
                + self.adl.lambda_translate * mean["trans"]
            )
        logged = {"main": main.detach(), "con": mean["con"].detach()}
        logged["ot_unconverged"] = mean["ot"]
        if self.step_space is not None:
            logged.update(step=mean["step"].detach(), translate=mean["trans"].detach())
        losses = Losses({"backbone": step}, logged)
        if self.adl.train_fitter and parts["fit"]:
            losses.step["fitter"] = mean["fit"]
        return losses

    def alignment_target(self) -> str:
        """Return the modality whose alignment the next training batch learns (in turn)."""
        modalities = self.backbone.modalities
        return modalities[self.turn % len(modalities)]

    def get_extra_state(self) -> dict:
        """Keep the alignment turn in checkpoints, so a resumed run continues it."""
        return {"turn": self.turn}

    def set_extra_state(self, state: dict) -> None:
        """Restore the alignment turn of :meth:`get_extra_state`."""
        self.turn = int(state["turn"])

    def alignment_steps(self, modality: str, steps: Tensor) -> Tensor:
        """Return the steps (B, L, d) a cosine cost compares: projected (default) or as encoded."""
        if self.adl.alignment_space != "projected":
            return steps
        return self.step_space.project(modality, steps)

    def _emission_inputs(self, batch: PatternBatch, s: str, v: str) -> tuple[Tensor, Tensor]:
        """Return the ``s > v`` emission's standardised inputs, (B, L_s, D_s), (B, L_v, D_v)."""
        encoders = self.backbone.encoders
        return encoders[s].standardise(batch.features[s]), encoders[v].standardise(
            batch.features[v]
        )

    def _pair_alignment(
        self,
        projected: dict[str, Tensor],
        batch: PatternBatch,
        s: str,
        v: str,
        target: Imputed,
    ) -> PairAlignment:
        """Align ``s -> v`` on the samples of ``batch`` that hold both."""
        i, j = batch.modalities.index(s), batch.modalities.index(v)
        both = batch.present[:, i] & batch.present[:, j]  # (B,)
        source_mask = batch.masks[s] & both[:, None]  # (B, L_s) readable steps only
        length = batch.masks[v].shape[1]
        victim_mask = batch.masks[v] & both[:, None]  # (B, L_v)
        centres = target.centres[s][:, :length]  # on v's own axis where v is present
        # no gradient is needed through the paper's cost: nothing is trained on it
        with torch.set_grad_enabled(self.step_space is not None and torch.is_grad_enabled()):
            if self.emissions is not None:
                cost = self.emissions[f"{s}>{v}"].cost(
                    *self._emission_inputs(batch, s, v), source_mask, victim_mask, centres,
                    self.adl.window,
                )  # fmt: skip
            else:
                cost = column_cosine_cost(
                    projected[s], projected[v], source_mask, victim_mask, centres, self.adl.window
                )  # (B, L_v, W)
        ot = solve_band(
            cost, source_mask, victim_mask, centres, self.adl,
            path_masks=(batch.steps[s] & both[:, None], batch.steps[v] & both[:, None]),
            nats=self.emissions is not None,
        )  # fmt: skip
        masks = (source_mask, victim_mask, centres, self.adl.window)
        fit_target, valid = ot_fit_targets(ot.plan, *masks, self.adl.convention)
        column = (
            fit_target if self.adl.convention == "column" else ot_fit_targets(ot.plan, *masks)[0]
        )
        return PairAlignment(
            both, source_mask, victim_mask, centres, cost, ot, fit_target, valid, column
        )

    @torch.no_grad()
    def alignments(
        self, batch: PatternBatch, source: str, victim: str
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Predicted and OT column bands (B, M, W) of ``source -> victim`` and their centres (B, M).

        Rows of samples that lack either modality are zero (their masks are empty).
        """
        z = self.backbone.encode(batch.features, batch.masks)
        target = self._impute(z, batch, victim)
        projected = {m: self.alignment_steps(m, z[m][:, 1:]) for m in (source, victim)}
        pair = self._pair_alignment(projected, batch, source, victim, target)
        length = batch.masks[victim].shape[1]
        predicted = target.weights[source][:, :length] * pair.victim_mask[..., None]
        return predicted, pair.column, pair.centres

    def _pair_losses(
        self,
        z: dict[str, Tensor],
        projected: dict[str, Tensor],
        batch: PatternBatch,
        s: str,
        v: str,
        target: Imputed,
        parts: dict[str, list[Tensor]],
    ) -> None:
        """Append the alignment losses of ``s -> v`` on the samples that hold both."""
        pair = self._pair_alignment(projected, batch, s, v, target)
        length = batch.masks[v].shape[1]
        parts["ot"].append((~pair.ot.converged & pair.both).sum() / pair.both.sum().clamp_min(1))
        if self.adl.train_fitter:
            pred = target.weights[s][:, :length]  # (B, L_v, W)
            parts["fit"].append(
                fit_loss(pred, pair.fit_target, pair.valid, self.adl.fit_normalisation)
            )
        # the head tokens' InfoNCE (Eq. 16-17), over the rows with both
        parts["con"].append(_masked_info_nce(z[s][:, 0], z[v][:, 0], pair.both, self.tau))
        if self.step_space is not None:
            steps_s, steps_v = z[s][:, 1:], z[v][:, 1:]
            if self.emissions is not None:
                parts["step"].append(emission_loss(pair.cost, pair.column))
                emission = self.emissions[f"{s}>{v}"]
                if emission.update == "em" and self.training:
                    emission.em_step(
                        *self._emission_inputs(batch, s, v), pair.source_mask, pair.victim_mask,
                        pair.centres, self.adl.window, pair.column,
                    )  # fmt: skip
            else:
                parts["step"].append(
                    step_contrastive_loss(
                        pair.cost,
                        projected[s],
                        projected[v],
                        pair.source_mask,
                        pair.victim_mask,
                        pair.centres,
                        pair.column,
                        self.adl.window,
                        self.adl.step_tau,
                        lengths=(batch.lengths[s], batch.lengths[v]),
                    )  # fmt: skip
                )
            values = self.step_space.translate(s, v, steps_s)
            fast = self.shared_axis and steps_s.shape[1] == length
            imputed = banded_impute(
                pair.column, values, self.adl.window, None if fast else pair.centres
            )
            parts["trans"].append(translation_loss(imputed, steps_v, pair.victim_mask))


@dataclass
class PairAlignment:
    """The alignment of one ordered pair on one batch.

    Attributes
    ----------
    both : Tensor, shape (B,)
        Samples that hold both modalities.
    source_mask, victim_mask : Tensor, shapes (B, L_s) and (B, L_v)
        Readable steps of those samples (empty rows elsewhere).
    centres : Tensor, shape (B, L_v)
    cost : Tensor, shape (B, L_v, W)
        With its gradient in the projected and emission spaces.
    ot : ColumnSinkhornResult or MonotoneAlignment
    fit_target, valid : Tensor
        The fitter's targets in the model's convention and where they hold.
    column : Tensor, shape (B, L_v, W)
        The plan's columns renormalised (column targets whatever the convention).
    """

    both: Tensor
    source_mask: Tensor
    victim_mask: Tensor
    centres: Tensor
    cost: Tensor
    ot: ColumnSinkhornResult | MonotoneAlignment
    fit_target: Tensor
    valid: Tensor
    column: Tensor


def _pad(mask: Tensor, width: int) -> Tensor:
    """Pad a step mask (B, L) with False to (B, width)."""
    return nn.functional.pad(mask, (0, width - mask.shape[1]))


def _masked_info_nce(a: Tensor, b: Tensor, rows: Tensor, tau: float) -> Tensor:
    """Eq. 16-17 InfoNCE between ``a`` (B, d) and ``b`` (B, d) over the rows where ``rows``.

    Rows outside ``rows`` are neither anchors nor negatives (their logits are -inf); 0 when
    fewer than two rows remain (one row has no negative).
    """
    a = nn.functional.normalize(a, dim=-1)
    b = nn.functional.normalize(b, dim=-1)
    logits = (a @ b.T / tau).masked_fill(~rows[None, :], float("-inf"))  # (B, B)
    logits = torch.where(rows[:, None], logits, torch.zeros_like(logits))  # no NaN in unused rows
    loss = nn.functional.cross_entropy(
        logits, torch.arange(a.shape[0], device=a.device), reduction="none"
    )  # (B,)
    n = rows.sum()
    total = torch.where(rows, loss, torch.zeros_like(loss)).sum()
    return torch.where(n >= 2, total / n.clamp_min(1), torch.zeros_like(total))
