"""Alignment dynamics learner (ADL): fitter network, OT fit targets, fit loss, banded imputation.

Follows MM-Align (Han et al., EMNLP 2022), section 3.4: the fitter of Eq. 12 (GRU + linear +
softmax over the ``W = 2K+1`` window offsets), the fit loss of Eq. 13 and the imputation of
Eq. 14-15. Corrections (see ``docs/method.md``): the target for victim step ``j`` is the OT
plan's *column* ``j`` renormalised over the valid source steps (the barycentric projection
that Eq. 14 sums over); the official code's *row* convention is offered as an option. The
GRU is bidirectional because the window looks both ways.

All band tensors here are *column bands* on the shared time axis: ``w[b, j, k]`` weighs
source step ``j + k - K`` for victim step ``j``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from mmalign.models.bigru import bidirectional_gru, split_packed_gru_keys
from mmalign.ot.band import band_transpose, band_valid_mask
from mmalign.ot.column_band import column_band_index, column_band_valid_mask
from mmalign.validation import ConfigError, check_in

__all__ = ["AlignmentFitter", "ot_fit_targets", "fit_loss", "banded_impute", "Convention"]

Convention = Literal["column", "row"]


class AlignmentFitter(nn.Module):
    """Predict banded alignment weights from the source sequence alone (Eq. 12).

    Parameters
    ----------
    d_model : int
        Width ``d`` of the encoded source steps.
    window : int
        Window radius ``K``; the output has ``W = 2K+1`` offsets.
    hidden : int, optional
        GRU hidden width per direction (default ``d``).
    bidirectional : bool
        Run the GRU both ways (default True: the window looks both ways).
    """

    def __init__(
        self, d_model: int, window: int, hidden: int | None = None, bidirectional: bool = True
    ) -> None:
        super().__init__()
        hidden = hidden or d_model
        self.window = window
        # the two directions as two GRUs, run together over the padded batch
        # (:func:`~mmalign.models.bigru.bidirectional_gru`): the parameters, initialisation
        # and outputs of one packed bidirectional GRU, without packing or a host sync
        self.gru = nn.GRU(d_model, hidden, batch_first=True)
        self.gru_reverse = nn.GRU(d_model, hidden, batch_first=True) if bidirectional else None
        self.register_load_state_dict_pre_hook(_split_bidirectional_gru)
        # + 2 inputs: the victim step's phase and log rate on the rescaled diagonal
        self.proj = nn.Linear(hidden * (2 if bidirectional else 1) + 2, 2 * window + 1)

    def encode(self, z_source: Tensor, source_mask: Tensor) -> Tensor:
        """GRU states of the valid source steps, both directions: (B, L, d), (B, L) -> (B, L, h).

        Steps must be valid first (``source_mask`` contiguous); padded steps give zeros.
        """
        if self.gru_reverse is None:
            out, _ = self.gru(z_source)  # (B, L, h): padding comes after the valid steps
            return out * source_mask[..., None].to(out.dtype)
        return bidirectional_gru(self.gru, self.gru_reverse, z_source, source_mask)

    def forward(
        self,
        z_source: Tensor,
        source_mask: Tensor,
        centres: Tensor | None = None,
        victim_mask: Tensor | None = None,
        source_valid: Tensor | None = None,
    ) -> Tensor:
        """Return weights of shape (B, M, W); each valid row sums to 1 over valid offsets.

        Parameters
        ----------
        z_source : Tensor, shape (B, L, d)
            Encoded source steps (without the head token).
        source_mask : Tensor, shape (B, L)
            True on valid steps.
        centres : Tensor, shape (B, M), optional
            Band centre of each victim step (:func:`mmalign.ot.diagonal_centres`); default
            the shared time axis (``M = L``, centre ``j``).
        victim_mask : Tensor, shape (B, M), optional
            Valid victim steps; default ``source_mask``. Required with ``centres``.
        source_valid : Tensor, shape (B, L), optional
            Source steps a weight may fall on, when some steps inside the length are
            dropped (default ``source_mask``). ``source_mask`` must then be the contiguous
            in-length mask: it sets the GRU's lengths and the diagonal.

        Notes
        -----
        Victim step ``j`` reads the GRU state at its centre ``c_j`` plus two numbers that
        place it on the rescaled diagonal: its phase ``(j + 1/2) * n / m - c_j - 1/2`` (in
        ``[-1/2, 1/2)``, so the steps inside one source step can be told apart) and
        ``log(m / n)``. Both are 0 for equal lengths, where this is the paper's Eq. 12.
        """
        seq_len = z_source.shape[1]
        out = self.encode(z_source, source_mask)  # (B, L, h)
        if centres is None:
            centres = torch.arange(seq_len, device=z_source.device).expand(z_source.shape[0], -1)
            victim_mask = source_mask
        elif victim_mask is None:
            raise ConfigError("`victim_mask` is required with `centres`.")
        n = source_mask.sum(1, keepdim=True).to(out.dtype)  # (B, 1)
        m = victim_mask.sum(1, keepdim=True).to(out.dtype)  # (B, 1)
        steps = torch.arange(centres.shape[1], device=out.device, dtype=out.dtype)  # (M,)
        ratio = n / m.clamp_min(1)  # (B, 1)
        phase = (steps + 0.5) * ratio - centres.to(out.dtype) - 0.5  # (B, M)
        phase = phase.where(victim_mask, 0.0)
        log_rate = torch.log(m.clamp_min(1) / n.clamp_min(1)).expand_as(phase)  # (B, M)
        state = out.gather(1, centres[..., None].expand(-1, -1, out.shape[-1]))  # (B, M, h)
        logits = self.proj(torch.cat([state, phase[..., None], log_rate[..., None]], -1))
        reach = source_mask if source_valid is None else source_valid
        valid = column_band_valid_mask(reach, victim_mask, centres, self.window)
        logits = logits.masked_fill(~valid, float("-inf"))  # (B, M, W)
        weights = torch.softmax(logits, dim=-1)
        return torch.where(valid, weights, torch.zeros_like(weights))  # padded rows: 0, not NaN


def _split_bidirectional_gru(module, state_dict, prefix, *args) -> None:
    """Load a fitter saved with one bidirectional GRU: its ``*_reverse`` weights are the reverse GRU's."""
    split_packed_gru_keys(state_dict, f"{prefix}gru.", f"{prefix}gru.", f"{prefix}gru_reverse.")


def ot_fit_targets(
    plan: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    centres: Tensor,
    window: int,
    convention: Convention = "column",
) -> tuple[Tensor, Tensor]:
    """Turn an OT plan (column band) into fitter targets and their validity mask.

    Parameters
    ----------
    plan : Tensor, shape (B, M, W)
        Column band from :func:`mmalign.ot.sinkhorn_columns` (victim ``j``, source
        ``centres[j] + k - K``).
    source_mask : Tensor, shape (B, L)
    victim_mask : Tensor, shape (B, M)
    centres : Tensor, shape (B, M)
        int64 band centres.
    window : int
        ``K``.
    convention : {"column", "row"}
        ``"column"`` (default): target for victim step ``j`` is plan column ``j`` renormalised
        over source steps. ``"row"``: plan row ``i`` renormalised (the official code's
        choice); only defined on one shared time axis (equal lengths, centre ``j``).

    Returns
    -------
    target : Tensor, shape (B, M, W)
        Each valid row sums to 1 (rows without mass are 0).
    valid : Tensor, shape (B, M, W), bool
        Entries that take part in the fit loss.
    """
    check_in("convention", convention, ["column", "row"])
    if convention == "column":
        band = plan
        valid = column_band_valid_mask(source_mask, victim_mask, centres, window)  # (B, M, W)
    else:
        identity = torch.arange(centres.shape[1], device=centres.device)
        on_axis = (centres == identity) | ~victim_mask  # padded steps have centre 0
        if source_mask.shape != victim_mask.shape or not bool(on_axis.all()):
            raise ConfigError(
                "`convention='row'` needs source and victim on one time axis (aligned data); "
                "use convention='column' for unaligned data."
            )
        band = band_transpose(plan, window, source_mask.shape[1])  # (B, L, W) row band
        valid = band_valid_mask(source_mask, victim_mask, window)  # (B, L, W)
    band = band * valid
    total = band.sum(-1, keepdim=True)  # (B, M, 1)
    target = torch.where(total > 0, band / total.clamp(min=torch.finfo(band.dtype).tiny), 0.0)
    return target, valid


def fit_loss(pred: Tensor, target: Tensor, valid: Tensor, normalisation: str = "mse") -> Tensor:
    """Masked fit loss between predicted and target bands, both (B, L, W).

    ``"mse"`` (default): mean squared error over valid entries. ``"eq13"``: the paper's
    Eq. 13 per sample, ``sqrt(sum (A - T)^2) / (W * l)``, averaged over samples with ``l > 0``.

    >>> p = torch.zeros(1, 2, 3); t = torch.ones(1, 2, 3); v = torch.ones(1, 2, 3, dtype=torch.bool)
    >>> float(fit_loss(p, t, v))
    1.0
    """
    check_in("fit_normalisation", normalisation, ["mse", "eq13"])
    sq = (pred - target).square() * valid
    if normalisation == "mse":
        return sq.sum() / valid.sum().clamp(min=1)
    lengths = valid.any(-1).sum(-1)  # (B,)
    per_sample = sq.sum((1, 2)).clamp(min=1e-12).sqrt() / (pred.shape[-1] * lengths.clamp(min=1))
    keep = lengths > 0
    return (per_sample * keep).sum() / keep.sum().clamp(min=1)


def banded_impute(
    weights: Tensor, z_source: Tensor, window: int, centres: Tensor | None = None
) -> Tensor:
    """Eq. 14: ``zhat_j = sum_k w[j, k] * z_source[c_j + k - K]`` without L x M matrices.

    Parameters
    ----------
    weights : Tensor, shape (B, M, W)
        Column band (zero on invalid offsets).
    z_source : Tensor, shape (B, L, d)
    window : int
        ``K``.
    centres : Tensor, shape (B, M), optional
        int64 band centres ``c_j`` (unequal lengths); default ``c_j = j`` (one time axis),
        which takes a faster path.

    Returns
    -------
    Tensor, shape (B, M, d)

    Notes
    -----
    Differentiable in ``weights`` and ``z_source`` through a hand-written backward: autograd
    on the per-offset slices would allocate a zero ``(B, L + 2K, d)`` gradient per offset
    (``slice_backward``), which made the backward pass several times the forward's cost.

    >>> w = torch.zeros(1, 3, 3); w[:, :, 1] = 1.0  # identity alignment
    >>> z = torch.arange(6.0).reshape(1, 3, 2)
    >>> torch.equal(banded_impute(w, z, 1), z)
    True
    """
    if centres is None:
        return _BandedImpute.apply(weights, z_source, window)
    index, _ = column_band_index(centres, window, z_source.shape[1])  # (B, M, W)
    width = z_source.shape[-1]
    out = None
    for k in range(2 * window + 1):  # loops over the W offsets, not samples
        rows = z_source.gather(1, index[:, :, k, None].expand(-1, -1, width))  # (B, M, d)
        term = weights[:, :, k, None] * rows
        out = term if out is None else out + term
    return out  # (B, M, d); invalid offsets carry zero weight


def _pad_source(z_source: Tensor, n_out: int, window: int) -> Tensor:
    """Zero-pad the time axis so that output step ``j``, offset ``k`` reads padded step ``j + k``."""
    extra = max(0, n_out - z_source.shape[1])
    return nn.functional.pad(z_source, (0, 0, window, window + extra))  # (B, L+2K+extra, d)


class _BandedImpute(torch.autograd.Function):
    """Autograd function of :func:`banded_impute` (loops over the ``W`` offsets, not samples)."""

    @staticmethod
    def forward(ctx, weights: Tensor, z_source: Tensor, window: int) -> Tensor:  # noqa: D102
        m = weights.shape[1]
        z_pad = _pad_source(z_source, m, window)  # (B, L+2K+extra, d)
        out = weights[:, :, 0, None] * z_pad[:, 0:m]  # (B, M, d)
        for offset in range(1, 2 * window + 1):
            out.addcmul_(weights[:, :, offset, None], z_pad[:, offset : offset + m])  # (B, M, d)
        ctx.save_for_backward(weights, z_pad)
        ctx.window, ctx.n_source = window, z_source.shape[1]
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # noqa: D102
        weights, z_pad = ctx.saved_tensors
        window, m = ctx.window, weights.shape[1]
        grad_weights = grad_source = None
        if ctx.needs_input_grad[0]:
            # one reused product buffer: fresh (B, M, d) temporaries cost page faults on CPU
            buffer = torch.empty_like(grad_out)  # (B, M, d)
            grad_weights = torch.stack(
                [
                    torch.mul(grad_out, z_pad[:, k : k + m], out=buffer).sum(-1)
                    for k in range(2 * window + 1)
                ],
                dim=-1,
            )  # (B, M, W)
        if ctx.needs_input_grad[1]:
            grad_pad = torch.zeros_like(z_pad)  # (B, L+2K+extra, d)
            for k in range(2 * window + 1):
                grad_pad[:, k : k + m].addcmul_(weights[:, :, k, None], grad_out)  # (B, M, d)
            grad_source = grad_pad[:, window : window + ctx.n_source]  # (B, L, d)
        return grad_weights, grad_source, None
