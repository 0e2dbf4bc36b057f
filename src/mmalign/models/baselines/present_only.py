"""Present modalities only: the lower bound (LB) and upper bound (UB) of the random-missing protocol.

MM-Align's LB (Han et al., EMNLP 2022, section 4.2) uses what is there and imputes nothing;
with any subset of modalities "what is there" is each sample's present modalities and kept
steps, fused by :class:`~mmalign.models.pattern_backbone.PatternBackbone`. The upper bound
(UB) is the same model given every modality and every step (the run gives it complete
data); its per-pattern numbers use the same test samples.
"""

from __future__ import annotations

from torch import Tensor

from mmalign.data.pattern_batching import PatternBatch
from mmalign.models.method import Losses, Phase
from mmalign.models.pattern_method import PatternModel

__all__ = ["PresentOnly"]


class PresentOnly(PatternModel):
    """Fuse the present modalities' readable steps; absent ones and dropped steps are masked."""

    def predict(self, batch: PatternBatch) -> Tensor:
        """Predict (B, C) from the readable steps of the present modalities."""
        z = self.backbone.encode(batch.features, batch.masks)
        return self.backbone.predict_fused(z, batch.masks, batch.present)

    def compute_losses(self, batch: PatternBatch, phase: Phase) -> Losses:
        """Task loss on every batch."""
        return Losses({"backbone": self.loss(self.predict(batch), batch)})
