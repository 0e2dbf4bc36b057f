"""Windowed optimal transport: band helpers, the windowed cosine cost, banded Sinkhorn."""

from mmalign.ot.band import (
    band_offsets,
    band_to_dense,
    band_transpose,
    band_valid_mask,
    dense_to_band,
)
from mmalign.ot.cost import windowed_cosine_cost
from mmalign.ot.sinkhorn import SinkhornResult, sinkhorn_banded

__all__ = [
    "band_offsets",
    "band_to_dense",
    "band_transpose",
    "band_valid_mask",
    "dense_to_band",
    "windowed_cosine_cost",
    "SinkhornResult",
    "sinkhorn_banded",
]
