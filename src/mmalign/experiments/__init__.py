"""Experiment grids of the paper's protocol.

Run specs and fingerprints, the SQLite results store, grid expansion, local (process pool)
and Ray execution engines, and a progress display.
"""

from mmalign.experiments.engines import (
    ENGINES,
    GridResult,
    RunFailure,
    available_cores,
    default_runner,
    execute_run,
    run_grid,
)
from mmalign.experiments.grid import (
    PAPER_PAIR_ORDER,
    UPPER_BOUND,
    dataset_modalities,
    expand_grid,
    parse_pairs,
    parse_seeds,
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
    "GridResult",
    "RunFailure",
    "available_cores",
    "default_runner",
    "execute_run",
    "run_grid",
    "PAPER_PAIR_ORDER",
    "UPPER_BOUND",
    "dataset_modalities",
    "expand_grid",
    "parse_pairs",
    "parse_seeds",
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

# analysis grids and timings (Table 5, Fig. 4, Table 8)
from mmalign.experiments.ablation import (  # noqa: E402
    ABLATION_VARIANTS,
    VARIANT_LABELS,
    ablation_tables,
    expand_ablation,
    variant_of_config,
)
from mmalign.experiments.timing import format_timing, time_imputation  # noqa: E402
from mmalign.experiments.window_sweep import (  # noqa: E402
    SweepPoint,
    expand_window_sweep,
    parse_windows,
    plot_sweep,
    window_sweep_summary,
    write_sweep_csv,
)

__all__ += [
    "ABLATION_VARIANTS",
    "VARIANT_LABELS",
    "ablation_tables",
    "expand_ablation",
    "variant_of_config",
    "format_timing",
    "time_imputation",
    "SweepPoint",
    "expand_window_sweep",
    "parse_windows",
    "plot_sweep",
    "window_sweep_summary",
    "write_sweep_csv",
]
