"""The paper's analyses of MM-Align (Han et al., EMNLP 2022): Table 5, Fig. 4, Fig. 5, Table 8.

- :mod:`~mmalign.analyses.ablation`: the ablation grid and its table (Table 5);
- :mod:`~mmalign.analyses.window_sweep`: the window-size sweep and its figure (Fig. 4);
- :mod:`~mmalign.analyses.alignment`: mean absolute alignment matrices of a run (Fig. 5);
- :mod:`~mmalign.analyses.timing`: per-batch training time of the imputation modules (Table 8).

Layering: analyses build on the run layer (:mod:`mmalign.runs`) and on the grids of
:mod:`mmalign.experiments` (specs, grid expansion, results store); nothing below them imports
them. The method they study is the registry's proposed method
(:func:`~mmalign.models.registry.proposed_method`).
"""

from mmalign.analyses.ablation import (
    ABLATION_METHOD,
    ABLATION_VARIANTS,
    VARIANT_LABELS,
    ablation_configs,
    ablation_records,
    ablation_tables,
    expand_ablation,
    variant_of_config,
)
from mmalign.analyses.alignment import (
    AlignmentScores,
    AlignmentSummary,
    band_to_matrix,
    block_abs_sum,
    mean_abs_alignment,
    run_alignment_scores,
    run_alignment_summary,
    score_alignments,
)
from mmalign.analyses.timing import (
    DEFAULT_METHODS,
    PHASES,
    format_timing,
    time_imputation,
    timing_stats,
)
from mmalign.analyses.window_sweep import (
    DEFAULT_WINDOWS,
    SWEEP_METHOD,
    SweepPoint,
    expand_window_sweep,
    parse_windows,
    plot_sweep,
    window_sweep_summary,
    write_sweep_csv,
)

__all__ = [
    "ABLATION_METHOD",
    "ABLATION_VARIANTS",
    "VARIANT_LABELS",
    "ablation_configs",
    "ablation_records",
    "ablation_tables",
    "expand_ablation",
    "variant_of_config",
    "AlignmentScores",
    "AlignmentSummary",
    "band_to_matrix",
    "block_abs_sum",
    "mean_abs_alignment",
    "run_alignment_scores",
    "run_alignment_summary",
    "score_alignments",
    "DEFAULT_METHODS",
    "PHASES",
    "format_timing",
    "time_imputation",
    "timing_stats",
    "DEFAULT_WINDOWS",
    "SWEEP_METHOD",
    "SweepPoint",
    "expand_window_sweep",
    "parse_windows",
    "plot_sweep",
    "window_sweep_summary",
    "write_sweep_csv",
]
