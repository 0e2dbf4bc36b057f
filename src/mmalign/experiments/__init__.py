"""Experiment grids of the paper's pair protocol and of the random-missing protocol.

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
    expand_random_grid,
    parse_pairs,
    prepare_run_dir,
    random_missing_methods,
    run_dir_for,
)
from mmalign.experiments.progress import GridProgress
from mmalign.experiments.spec import (
    PROTOCOLS,
    RunSpec,
    config_hash,
    data_identity,
    file_content_hash,
    run_fingerprint,
)
from mmalign.experiments.store import SETTINGS, ResultStore, is_random_result, validate_result

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
    "expand_random_grid",
    "parse_pairs",
    "prepare_run_dir",
    "random_missing_methods",
    "run_dir_for",
    "GridProgress",
    "PROTOCOLS",
    "RunSpec",
    "config_hash",
    "data_identity",
    "file_content_hash",
    "run_fingerprint",
    "SETTINGS",
    "ResultStore",
    "is_random_result",
    "validate_result",
]
