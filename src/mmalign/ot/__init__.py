"""Windowed optimal transport: band helpers, the windowed cosine cost, banded Sinkhorn.

The column-band family (``column_band``) handles source and victim sequences of unequal
length, with the window on the rescaled diagonal.
"""

from mmalign.ot.band import (
    band_offsets,
    band_to_dense,
    band_transpose,
    band_valid_mask,
    dense_to_band,
)
from mmalign.ot.column_band import (
    ColumnSinkhornResult,
    column_band_index,
    column_band_to_dense,
    column_band_valid_mask,
    column_cosine_cost,
    dense_to_column_band,
    diagonal_centres,
    sinkhorn_columns,
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
    "diagonal_centres",
    "column_band_index",
    "column_band_valid_mask",
    "dense_to_column_band",
    "column_band_to_dense",
    "column_cosine_cost",
    "ColumnSinkhornResult",
    "sinkhorn_columns",
]
