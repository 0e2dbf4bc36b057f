"""mmalign: MM-Align and baselines for multimodal sequences with a missing modality.

The public front door::

    import mmalign
    dataset = mmalign.load_dataset("synthetic")          # or a path to a feature file
    result = mmalign.run(pair="t:v", p=0.1, seed=0)       # a RunResult; the run folder too
    model = mmalign.load_run(result.run_dir, setting="A")
    scores = model.predict(dataset.splits["test"])        # (N, C), victim absent

Names are imported on first use, so ``import mmalign`` (and the command line) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "load_dataset": "mmalign.data.spec",
    "run": "mmalign.runs.execute",
    "load_run": "mmalign.runs.trained",
    "RunConfig": "mmalign.config",
    "RunResult": "mmalign.runs.result",
    "TrainedModel": "mmalign.runs.trained",
    "METHODS": "mmalign.models.registry",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmalign' has no attribute {name!r}")
