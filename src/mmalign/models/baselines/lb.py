"""Supervised-Single (lower bound, LB): the backbone on the source modality alone.

MM-Align (Han et al., EMNLP 2022), section 4.2. What we simplified: "no fusion partner" is
realised by fusing the source with itself (the cross-attention blocks then act as further
self-attention layers), so LB runs through exactly the same encoder, fusion and head code.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from mmalign.data.batching import Batch
from mmalign.models.method import Losses, MissingModalityModel, Phase

__all__ = ["SourceOnly"]


class SourceOnly(MissingModalityModel):
    """Predict from the source modality only; the victim is never read."""

    def predict(self, batch: Batch) -> Tensor:
        """Predict (B, C) from the source alone, whatever ``has_victim`` says."""
        z = self.backbone.encode_source(batch.source, batch.source_mask)
        return self.backbone.predict_fused(z, batch.source_mask, z, batch.source_mask)

    def predict_settings(self, batch: Batch, has: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Return the same source-only prediction for every presence pattern, computed once."""
        out = self.predict(batch)
        return {name: out for name in has}

    def compute_losses(self, batch: Batch, phase: Phase) -> Losses:
        """Task loss on every batch, complete or missing alike."""
        return Losses({"backbone": self.loss(self.predict(batch), batch)})

    def parameter_groups(self):
        """Everything but the (unused) victim encoder."""
        unused = {id(p) for p in self.backbone.victim_encoder.parameters()}
        return {
            "backbone": [p for p in self.parameters() if p.requires_grad and id(p) not in unused]
        }
