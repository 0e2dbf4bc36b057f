"""Experiment grids of the paper's protocol.

Run specs and fingerprints, the SQLite results store, grid expansion, local (process pool)
and Ray execution engines, and a progress display.
"""

from mmalign.experiments.engines import (
    ENGINES,
    GridInterrupted,
    GridResult,
    RunFailure,
    default_runner,
    execute_run,
    run_grid,
)
from mmalign.experiments.grid import (
    PAPER_PAIR_ORDER,
    dataset_modalities,
    expand_grid,
    parse_pairs,
    prepare_run_dir,
    run_dir_for,
)
from mmalign.experiments.progress import GridProgress
from mmalign.experiments.spec import (
    RunSpec,
    config_hash,
    data_identity,
    file_content_hash,
    run_fingerprint,
)
from mmalign.experiments.store import SETTINGS, ResultStore, validate_result

__all__ = [
    "ENGINES",
    "GridInterrupted",
    "GridResult",
    "RunFailure",
    "default_runner",
    "execute_run",
    "run_grid",
    "PAPER_PAIR_ORDER",
    "dataset_modalities",
    "expand_grid",
    "parse_pairs",
    "prepare_run_dir",
    "run_dir_for",
    "GridProgress",
    "RunSpec",
    "config_hash",
    "data_identity",
    "file_content_hash",
    "run_fingerprint",
    "SETTINGS",
    "ResultStore",
    "validate_result",
]
