"""Data: the canonical in-memory dataset, the synthetic benchmark, missing splits, batching.

On-disk loaders live in :mod:`mmalign.data.formats`. Names are imported on first use, so
that reading a data option (and the command line) does not import torch.
"""

import importlib
from typing import Any

_LAZY = {
    "Batch": "mmalign.data.batching",
    "PairData": "mmalign.data.batching",
    "iterate_batches": "mmalign.data.batching",
    "nearest_step_index": "mmalign.data.batching",
    "MODALITY_ALIASES": "mmalign.data.dataset",
    "SPLIT_NAMES": "mmalign.data.dataset",
    "MultimodalDataset": "mmalign.data.dataset",
    "Split": "mmalign.data.dataset",
    "TaskType": "mmalign.data.dataset",
    "canonical_modality": "mmalign.data.dataset",
    "SETTINGS": "mmalign.data.splits",
    "MissingSplit": "mmalign.data.splits",
    "make_missing_split": "mmalign.data.splits",
    "n_present": "mmalign.data.splits",
    "SYNTHETIC_MODALITIES": "mmalign.data.synthetic",
    "SyntheticConfig": "mmalign.data.synthetic",
    "SyntheticData": "mmalign.data.synthetic",
    "generate_synthetic": "mmalign.data.synthetic",
    "make_synthetic": "mmalign.data.synthetic",
    "monotone_warps": "mmalign.data.synthetic",
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmalign.data' has no attribute {name!r}")
