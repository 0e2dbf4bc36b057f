"""Supervised-Both (upper bound, UB): the backbone trained and tested with both modalities.

MM-Align (Han et al., EMNLP 2022), section 4.2. What we simplified: nothing; the harness
gives this method the victim for every sample of every split (``complete_data`` in the
registry), so the survival rate and the test setting do not apply to it.
"""

from __future__ import annotations

from torch import Tensor

from mmalign.data.batching import Batch
from mmalign.models.method import Losses, MissingModalityModel, Phase
from mmalign.validation import ConfigError

__all__ = ["BothModalities"]


class BothModalities(MissingModalityModel):
    """Fuse the real source and victim for every sample."""

    def impute_victim(self, z_source: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """UB has no imputation: it must always be given the victim."""
        raise ConfigError("the upper-bound method 'ub' needs the victim modality for every sample.")

    def compute_losses(self, batch: Batch, phase: Phase) -> Losses:
        """Task loss on complete batches."""
        return Losses({"backbone": self.loss(self.predict(batch), batch)})
