"""Per-pattern result tables of the random-missing protocol, in MMIN's layout.

Zhao, Li and Jin, "Missing Modality Imagination Network for Emotion Recognition with
Uncertain Missing Modalities", ACL 2021, Tables 2-3: rows are methods, columns are the testing
conditions (the modalities present: {a}, {v}, {l}, {a,v}, {a,l}, {v,l}, {a,v,l}) and their
average. Here the columns are the patterns of present modalities that the test split holds,
in the order ``t, v, a, tv, ta, va, tva`` (short names in the data's modality order), then
``overall`` (every test sample; not an average of the columns).

A cell is ``mean ± std`` over split seeds of one metric on the test samples of one pattern
(:func:`mmalign.evaluate.tables.column_cells`: best mean in bold, the upper bound excluded;
a dagger where MM-Align beats the best baseline significantly). Below the methods: the linear
floors of the runs (``floor.random``; its ``test`` metrics in the ``overall`` column, a
pattern column only where the runs store ``floor.random.patterns``): ``floor (present
modalities)`` from the methods that see the drawn patterns, ``floor (all modalities)`` from
the upper bound's runs (complete data, so its floor sees every modality; shown with a UB row);
then the number of test samples per pattern (mean over seeds). One table per data set and metric; the renderers are those of
:mod:`mmalign.evaluate.tables` (``by="pattern"``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mmalign.evaluate.metrics import METRIC_LABELS
from mmalign.evaluate.tables import (
    Cell,
    Column,
    Table,
    column_cells,
    default_metrics,
    floor_warnings,
    method_order,
    metric_direction,
    seed_stats,
)
from mmalign.models.registry import METHODS, method_names, proposed_method, upper_bound
from mmalign.validation import ConfigError, DataError, check_in

__all__ = [
    "OVERALL",
    "SAMPLE_COUNT",
    "FLOOR_ROWS",
    "pattern_order",
    "build_pattern_table",
    "build_pattern_tables",
]

#: The column of the whole test split.
OVERALL = "overall"
#: The metric name of a pattern's test-sample count in the records.
SAMPLE_COUNT = "n"
#: The floor rows of a pattern table: the drawn patterns' floor, then the upper bound's.
FLOOR_ROWS: tuple[str, ...] = ("random", "complete")
# short modality names in the data's modality order (text, vision, audio)
_MODALITY_ORDER = "tva"


def _complete_data(method: str) -> bool:
    """Whether ``method`` sees complete data (the upper bound), by the registry."""
    return METHODS[method].complete_data if method in METHODS else False


def pattern_order(patterns: Iterable[str]) -> tuple[str, ...]:
    """Order patterns as MMIN's columns: by size, then by modality order; ``overall`` last.

    >>> pattern_order(["tva", "overall", "va", "a", "tv", "t", "ta", "v"])
    ('t', 'v', 'a', 'tv', 'ta', 'va', 'tva', 'overall')
    """

    def key(pattern: str) -> tuple[Any, ...]:
        if pattern == OVERALL:
            return (math.inf,)
        ranks = tuple(
            _MODALITY_ORDER.index(c) if c in _MODALITY_ORDER else len(_MODALITY_ORDER) + ord(c)
            for c in pattern
        )
        return (len(pattern), ranks)

    return tuple(sorted(set(patterns), key=key))


def _by_seed(
    records: Iterable[Mapping[str, Any]], metric: str, *, strict: bool
) -> dict[tuple[str, str], dict[int, float]]:
    """Map ``(method, pattern)`` to ``{seed: value}`` of ``metric`` (``strict``: no repeats)."""
    values: dict[tuple[str, str], dict[int, float]] = {}
    for r in records:
        if r["metric"] != metric:
            continue
        by_seed = values.setdefault((r["method"], r["pattern"]), {})
        seed = int(r["seed"])
        if seed in by_seed and strict:
            raise DataError(
                f"two runs of {r['method']} seed={seed} (random missing): the records hold "
                "runs with different configs; select one with config_hash."
            )
        by_seed[seed] = float(r["value"])
    return values


def _one_per_seed(
    values: Mapping[tuple[str, str], Mapping[int, float]], methods: Sequence[str], pattern: str
) -> dict[int, float]:
    """``{seed: value}`` of ``pattern`` taken once per seed: a proposed method's first.

    The floors and sample counts of one seed are the same for every method that stores them
    (same split, same drawn patterns); the upper bound's count is taken last.
    """
    names = method_names()
    ours = proposed_method()

    def rank(method: str) -> tuple[Any, ...]:
        order = names.index(method) if method in names else len(names)
        return (method == upper_bound(), method != ours, order, method)

    out: dict[int, float] = {}
    for method in sorted(methods, key=rank):
        for seed, value in values.get((method, pattern), {}).items():
            out.setdefault(seed, value)
    return out


def _rates_text(records: Sequence[Mapping[str, Any]]) -> str:
    """``missing rate 30%, frame drop 20%`` from the records' options."""

    def percent(values: Iterable[Any]) -> str:
        return ", ".join(f"{100 * v:g}%" for v in sorted({float(v) for v in values}))

    text = "missing rate " + percent(r["missing_rate"] for r in records)
    drops = {float(r.get("frame_drop") or 0.0) for r in records}
    return text + (", frame drop " + percent(drops) if drops != {0.0} else "")


def build_pattern_table(
    records: Sequence[Mapping[str, Any]],
    metric: str,
    *,
    floors: Sequence[Mapping[str, Any]] | None = None,
    ours: str | None = None,
    alpha: float = 0.05,
    title: str | None = None,
) -> Table:
    """Build one per-pattern table of one metric from random-missing records of one data set.

    Parameters
    ----------
    records : sequence of dict
        :meth:`mmalign.experiments.store.ResultStore.pattern_records` output (keys ``method,
        seed, pattern, metric, value``, ``data_id``, ``missing_rate``, ``frame_drop``).
    metric : str
        The metric of the cells.
    floors : sequence of dict, optional
        :meth:`mmalign.experiments.store.ResultStore.pattern_floor_records` output of the
        same runs: adds the row ``floor (present modalities)`` and :attr:`Table.warnings`.
    ours : str, optional
        The method that gets the significance mark (default: the registry's proposed method).
    alpha : float, default 0.05
    title : str, optional

    Returns
    -------
    Table
        ``by="pattern"``; ``columns[j] = Column("", "", pattern, metric)`` for the patterns
        present in :func:`pattern_order`; :attr:`Table.sample_counts` from the records' ``n``.

    Raises
    ------
    ConfigError
        No records, or an unknown metric.
    DataError
        Records of several data sets, or two runs of one method and seed.
    """
    if not records:
        raise ConfigError("`records` must hold random-missing results; got none.")
    data_ids = sorted({str(r.get("data_id", r.get("data", ""))) for r in records})
    if len(data_ids) > 1:
        raise DataError(
            f"the records hold results of {len(data_ids)} data sets {data_ids}: build one "
            "table per data set (build_pattern_tables)."
        )
    check_in("metric", metric, sorted({r["metric"] for r in records} - {SAMPLE_COUNT}))
    ours = proposed_method() if ours is None else ours

    values = _by_seed(records, metric, strict=True)
    methods = method_order(m for m, _ in values)
    patterns = pattern_order(p for _, p in values)
    columns = tuple(Column("", "", pattern, metric) for pattern in patterns)
    cells: dict[tuple[str, int], Cell] = {}
    for j, pattern in enumerate(patterns):
        column = {m: values[(m, pattern)] for m in methods if (m, pattern) in values}
        for method, cell in column_cells(column, metric, ours, alpha).items():
            cells[(method, j)] = cell

    counts = _by_seed(records, SAMPLE_COUNT, strict=False)
    sample_counts = {}
    for j, pattern in enumerate(patterns):
        mean, std, n = seed_stats(_one_per_seed(counts, methods, pattern).values())
        if n:
            sample_counts[j] = Cell(mean, std, n)

    if title is None:
        arrow = "↓" if metric_direction(metric) == "min" else "↑"
        title = (
            f"{data_ids[0]}: test {METRIC_LABELS.get(metric, metric)}{arrow} per pattern of "
            f"present modalities, {_rates_text(records)}"
        )
    table = Table(title, "pattern", methods, columns, cells, sample_counts=sample_counts)
    if floors is None:
        return table
    fingerprints = {r.get("fingerprint") for r in records}
    floor_values = _by_seed(
        (f for f in floors if f.get("fingerprint") in fingerprints), metric, strict=False
    )
    floor_cells = {}
    for row in FLOOR_ROWS:
        # the upper bound's floor sees every modality: a row of its own, shown with UB only
        owners = {m for m, _ in floor_values if _complete_data(m) == (row == "complete")}
        if row == "complete" and not any(_complete_data(m) for m in methods):
            continue
        for j, pattern in enumerate(patterns):
            mean, std, n = seed_stats(_one_per_seed(floor_values, owners, pattern).values())
            if n:
                floor_cells[(row, j)] = Cell(mean, std, n)
    floor_rows = tuple(row for row in FLOOR_ROWS if any(k[0] == row for k in floor_cells))
    if not floor_rows:
        return table
    table = dataclasses.replace(table, floor_rows=floor_rows, floor_cells=floor_cells)
    return floor_warnings(table)


def build_pattern_tables(
    records: Sequence[Mapping[str, Any]],
    *,
    metrics: Sequence[str] | None = None,
    floors: Sequence[Mapping[str, Any]] | None = None,
    **options: Any,
) -> list[Table]:
    """Build one per-pattern table per data set and metric.

    Parameters
    ----------
    records : sequence of dict
        :meth:`mmalign.experiments.store.ResultStore.pattern_records` output.
    metrics : sequence of str, optional
        Default :func:`mmalign.evaluate.tables.default_metrics` (MAE and Acc-2 for
        regression, weighted F1 for classification).
    floors : sequence of dict, optional
        :meth:`mmalign.experiments.store.ResultStore.pattern_floor_records` output (each
        table takes those of its own runs).
    **options
        Passed to :func:`build_pattern_table` (``ours``, ``alpha``).

    Returns
    -------
    list of Table
        By data set (sorted by data identity), then by metric.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r.get("data_id", r.get("data", ""))), []).append(r)
    if not groups:
        raise ConfigError("`records` must hold random-missing results; got none.")
    tables = []
    for data_id in sorted(groups):
        subset = groups[data_id]
        name = ", ".join(sorted({str(r.get("data", data_id)) for r in subset}))
        present = {r["metric"] for r in subset} - {SAMPLE_COUNT}
        for metric in tuple(metrics) if metrics else default_metrics(present):
            table = build_pattern_table(subset, metric, floors=floors, **options)
            if table.title.startswith(data_id):
                table = dataclasses.replace(table, title=name + table.title[len(data_id) :])
            tables.append(table)
    return tables
