"""The hook interface of methods for the random-missing protocol (any subset of modalities).

A :class:`PatternModel` exposes the same hooks as a pair-protocol
:class:`~mmalign.models.method.MissingModalityModel` (``compute_losses``, ``epoch_passes``,
``epoch_summary``, ``parameter_groups``, ``predict``, ``predict_settings``), so the one
training loop (:mod:`mmalign.train.loop`) trains both. Its batches are
:class:`~mmalign.data.pattern_batching.PatternBatch` es: every sample carries its own
presence flags and step masks, and an epoch is one ``"mixed"`` pass over all training rows.
Interface introduced for this toolkit (2026).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor, nn

from mmalign.data.pattern_batching import PatternBatch
from mmalign.models.losses import task_loss
from mmalign.models.method import Losses, Pass, Phase
from mmalign.models.pattern_backbone import PatternBackbone

__all__ = ["PatternDims", "PatternModel"]


@dataclass(frozen=True)
class PatternDims:
    """Sizes a random-missing method needs to build itself.

    Attributes
    ----------
    input_dims : dict[str, int]
        Modality -> feature width, in the dataset's order.
    output_dim : int
    task : str
    """

    input_dims: dict[str, int]
    output_dim: int
    task: str


class PatternModel(nn.Module):
    """Base class: a :class:`PatternBackbone` plus whatever stands in for what is missing.

    Subclasses implement :meth:`compute_losses` and :meth:`predict`.
    """

    #: order in which the loop steps the optimiser groups on one batch
    group_order: tuple[str, ...] = ("backbone",)

    def __init__(self, backbone: PatternBackbone, task: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.task = task

    def compute_losses(self, batch: PatternBatch, phase: Phase) -> Losses:
        """Return the losses of one training batch."""
        raise NotImplementedError

    def predict(self, batch: PatternBatch) -> Tensor:
        """Predict (B, C) from what each sample holds."""
        raise NotImplementedError

    def epoch_passes(self, warmup: bool) -> tuple[Pass, ...]:
        """One pass over every training row; each sample has its own pattern."""
        return (Pass("mixed"),)

    def epoch_summary(self, record: dict) -> str:
        """Show the epoch's mean task loss (``mixed/main`` or ``mixed/backbone``)."""
        for key in ("mixed/main", "mixed/backbone"):
            if key in record:
                return f"loss {record[key]:.4f}"
        return ""

    def set_victim_rates(
        self, rates: dict[tuple[str, str], float], shared_axis: bool = False
    ) -> None:
        """Take the training median ``L_v / L_s`` per ordered pair; default: not needed, ignored.

        Methods that impute a modality on its own time axis override it (MM-Align).
        """

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters per optimiser group; default: everything in ``backbone``."""
        return {"backbone": [p for p in self.parameters() if p.requires_grad]}

    def loss(self, output: Tensor, batch: PatternBatch) -> Tensor:
        """Task loss of ``output`` (B, C) against the batch labels."""
        return task_loss(output, batch.labels, self.task)

    def predict_settings(self, batch: PatternBatch, has: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Predict once for the loop's validation: the same output under every name of ``has``.

        The random-missing protocol has one setting, the drawn patterns, carried by the batch.
        """
        out = self.predict(batch)
        return {name: out for name in has}
