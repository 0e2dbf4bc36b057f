"""Data: the canonical in-memory dataset, the synthetic benchmark, missing splits, batching.

On-disk loaders live in :mod:`mmalign.data.formats` (imported on demand, not here).
"""

from mmalign.data.batching import Batch, PairData, iterate_batches, nearest_step_index
from mmalign.data.dataset import (
    MODALITY_ALIASES,
    SPLIT_NAMES,
    MultimodalDataset,
    Split,
    TaskType,
    canonical_modality,
)
from mmalign.data.splits import SETTINGS, MissingSplit, make_missing_split, n_present
from mmalign.data.synthetic import (
    SYNTHETIC_MODALITIES,
    SyntheticConfig,
    SyntheticData,
    generate_synthetic,
    make_synthetic,
    monotone_warps,
)

__all__ = [
    # dataset.py
    "TaskType",
    "SPLIT_NAMES",
    "MODALITY_ALIASES",
    "Split",
    "MultimodalDataset",
    "canonical_modality",
    # synthetic.py
    "SYNTHETIC_MODALITIES",
    "SyntheticConfig",
    "SyntheticData",
    "generate_synthetic",
    "make_synthetic",
    "monotone_warps",
    # splits.py
    "SETTINGS",
    "MissingSplit",
    "make_missing_split",
    "n_present",
    # batching.py
    "Batch",
    "PairData",
    "iterate_batches",
    "nearest_step_index",
]
