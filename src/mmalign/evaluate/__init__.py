"""Evaluation: metrics of the paper's protocol, the sanity floor, significance, tables, plots.

The per-pattern tables of the random-missing protocol are in ``pattern_table``.
"""

from mmalign.evaluate.floor import pooled_features, sanity_floor
from mmalign.evaluate.metrics import (
    CLASSIFICATION_METRICS,
    METRIC_DIRECTIONS,
    METRIC_LABELS,
    PRIMARY_METRIC,
    REGRESSION_METRICS,
    classification_metrics,
    compute_metrics,
    pearson_corr,
    regression_metrics,
)
from mmalign.evaluate.pattern_table import build_pattern_table, build_pattern_tables
from mmalign.evaluate.plots import (
    plot_alignment_heatmaps,
    plot_training_curves,
    plot_window_sweep,
)
from mmalign.evaluate.significance import Significance, mark_significant, paired_ttest
from mmalign.evaluate.tables import build_table, build_tables, render

__all__ = [
    "Significance",
    "mark_significant",
    "paired_ttest",
    "build_pattern_table",
    "build_pattern_tables",
    "build_table",
    "build_tables",
    "render",
    "CLASSIFICATION_METRICS",
    "METRIC_DIRECTIONS",
    "METRIC_LABELS",
    "PRIMARY_METRIC",
    "REGRESSION_METRICS",
    "classification_metrics",
    "compute_metrics",
    "pearson_corr",
    "plot_alignment_heatmaps",
    "plot_training_curves",
    "plot_window_sweep",
    "pooled_features",
    "regression_metrics",
    "sanity_floor",
]
