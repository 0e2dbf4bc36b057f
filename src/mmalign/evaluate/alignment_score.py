"""Alignment scored against ground truth: how much weight lands on the truly matching steps.

Every predictor is a *column band* ``w[b, j, k]`` (victim step ``j``, source step
``centres[b, j] + k - K``; see :mod:`mmalign.ot.column_band`), and the truth is a span
``[start, end)`` of source steps per victim step (the ``span_<victim>_<source>`` arrays of
the native format, ``docs/data.md``). Three numbers per predictor, averaged over the valid
victim steps that have a known span:

``mass_on_truth``
    weight on the true source steps (after renormalising the row over the band);
``argmax_accuracy``
    share of victim steps whose highest-weight source step is a true one;
``offset_error``
    mean distance, in source steps, from that arg-max to the nearest true step.

Two reference predictors come with it: :func:`uniform_band` (no knowledge: equal weight over
the window) and :func:`diagonal_band` (all weight on the band's centre, the rescaled diagonal
``floor((j + 1/2) * Ls / Lv)``, which is ``j`` for equal lengths).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from mmalign.validation import ConfigError

__all__ = [
    "AlignmentScore",
    "ScoreAccumulator",
    "diagonal_band",
    "score_band",
    "uniform_band",
]


@dataclass(frozen=True)
class AlignmentScore:
    """Alignment metrics of one predictor (see the module docstring).

    Attributes
    ----------
    mass_on_truth : float
    argmax_accuracy : float
    offset_error : float
        In source steps.
    n_steps : int
        Victim steps scored.
    """

    mass_on_truth: float
    argmax_accuracy: float
    offset_error: float
    n_steps: int

    def to_dict(self) -> dict[str, float]:
        """Return the three metrics (the JSON layout of ``mmalign score-alignment``)."""
        return {
            "mass_on_truth": self.mass_on_truth,
            "argmax_accuracy": self.argmax_accuracy,
            "offset_error": self.offset_error,
        }


def _sums(
    weights: Tensor, centres: Tensor, window: int, spans: Tensor, victim_mask: Tensor
) -> Tensor:
    """Sum (mass on truth, arg-max hits, offset error, scored steps), shape (4,), float64."""
    n_batch, n_victim, width = weights.shape
    if width != 2 * window + 1:
        raise ConfigError(
            f"`weights` must have {2 * window + 1} offsets for K={window}; got {width}."
        )
    for name, value, shape in (
        ("centres", centres, (n_batch, n_victim)),
        ("victim_mask", victim_mask, (n_batch, n_victim)),
        ("spans", spans, (n_batch, n_victim, 2)),
    ):
        if tuple(value.shape) != shape:
            raise ConfigError(f"`{name}` must have shape {shape}; got {tuple(value.shape)}.")
    start, end = spans[..., 0, None], spans[..., 1, None]  # (B, M, 1)
    scored = victim_mask & (spans[..., 0] >= 0) & (spans[..., 1] > spans[..., 0])  # (B, M)
    source = centres[..., None] + torch.arange(-window, window + 1, device=weights.device)
    on_truth = (source >= start) & (source < end)  # (B, M, W)
    w = weights.double().clamp_min(0)
    total = w.sum(-1)  # (B, M)
    mass = torch.where(total > 0, (w * on_truth).sum(-1) / total.clamp_min(1e-300), 0.0)
    best = centres + w.argmax(-1) - window  # (B, M) source step of the arg-max
    hit = (best >= spans[..., 0]) & (best < spans[..., 1])
    distance = torch.maximum(spans[..., 0] - best, best - (spans[..., 1] - 1)).clamp_min(0)
    keep = scored.double()
    return torch.stack(
        [
            (mass * keep).sum(),
            (hit.double() * keep).sum(),
            (distance.double() * keep).sum(),
            keep.sum(),
        ]
    )


def score_band(
    weights: Tensor, centres: Tensor, window: int, spans: Tensor, victim_mask: Tensor
) -> AlignmentScore:
    """Score one predictor's column band against the true spans.

    Parameters
    ----------
    weights : Tensor, shape (B, M, W)
        Non-negative weights over the ``W = 2K + 1`` source steps around each centre (rows
        need not be normalised; a row without weight scores 0 mass and arg-max at offset 0).
    centres : Tensor, shape (B, M)
        int64 source step at band offset ``K`` of each victim step.
    window : int
        ``K``.
    spans : Tensor, shape (B, M, 2)
        int64 true source steps ``[start, end)`` per victim step; ``(-1, -1)`` where unknown.
    victim_mask : Tensor, shape (B, M)
        bool, True on valid victim steps.

    Returns
    -------
    AlignmentScore
        NaN metrics when no step has a known span.

    Examples
    --------
    >>> w = torch.tensor([[[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]])
    >>> centres = torch.tensor([[0, 1]])
    >>> spans = torch.tensor([[[0, 1], [1, 2]]])
    >>> s = score_band(w, centres, 1, spans, torch.ones(1, 2, dtype=torch.bool))
    >>> s.mass_on_truth, s.argmax_accuracy, s.offset_error
    (0.75, 0.5, 0.5)
    """
    acc = ScoreAccumulator()
    acc.add(weights, centres, window, spans, victim_mask)
    return acc.result()


@dataclass
class ScoreAccumulator:
    """Add batches with :meth:`add`, read the pooled score with :meth:`result`."""

    totals: Tensor = field(default_factory=lambda: torch.zeros(4, dtype=torch.float64))

    def add(
        self, weights: Tensor, centres: Tensor, window: int, spans: Tensor, victim_mask: Tensor
    ) -> None:
        """Add one batch (arguments as in :func:`score_band`)."""
        self.totals = self.totals + _sums(weights, centres, window, spans, victim_mask).cpu()

    def result(self) -> AlignmentScore:
        """Pooled metrics over every step added so far."""
        mass, hits, distance, count = self.totals.tolist()
        if count == 0:
            nan = float("nan")
            return AlignmentScore(nan, nan, nan, 0)
        return AlignmentScore(mass / count, hits / count, distance / count, int(count))


def uniform_band(valid: Tensor) -> Tensor:
    """Equal weight over the valid band entries: (B, M, W) bool -> (B, M, W) float.

    >>> uniform_band(torch.tensor([[[False, True, True]]])).tolist()
    [[[0.0, 0.5, 0.5]]]
    """
    w = valid.float()
    return w / w.sum(-1, keepdim=True).clamp_min(1.0)


def diagonal_band(valid: Tensor, window: int) -> Tensor:
    """All weight on the centre offset ``K`` of each valid row: (B, M, W) -> (B, M, W).

    >>> diagonal_band(torch.ones(1, 1, 3, dtype=torch.bool), 1).tolist()
    [[[0.0, 1.0, 0.0]]]
    """
    w = torch.zeros(valid.shape, dtype=torch.float32, device=valid.device)
    w[..., window] = valid.any(-1).float()
    return w
