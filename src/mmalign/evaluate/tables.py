"""Result tables in the paper's layout, from results-store records, as Markdown, CSV or LaTeX.

Two layouts of the pair protocol (Han et al., EMNLP 2022):

- ``by="setting"`` (Tables 2-4): rows are methods, columns are pair x setting (A, B) x metric
  for one survival rate ``p`` (default: the smallest in the records, as in the paper);
- ``by="p"`` (Tables 9-11): rows are methods, columns are pair x ``p`` x metric for one
  setting (default A).

A third, ``by="pattern"``, is built by :mod:`mmalign.evaluate.pattern_table` for the
random-missing protocol and rendered here: columns are the patterns of present modalities.

A cell is ``mean ± std`` over split seeds (sample standard deviation, ``ddof=1``; 0 for one
seed). The best mean of each column is marked (bold in Markdown and LaTeX, ``best=True`` in
CSV), the upper bound ``ub`` excluded since it sees the victim modality at test time; lower is
better for MAE, higher for every other metric. MM-Align's cell gets a dagger (†) where it is
significantly better than the best baseline
(:func:`mmalign.evaluate.significance.mark_significant`).
The upper bound ignores ``p`` (stored with ``p = 1.0``) and is shown in every ``p`` column.
Accuracies and F1 scores (stored as fractions) are shown in percent with one decimal; other
metrics with three decimals.

Given the runs' sanity floors (``floors=``, from
:meth:`mmalign.experiments.store.ResultStore.floor_records`), a table also has *floor rows*,
``mean ± std`` over seeds of the linear floor (:func:`mmalign.evaluate.floor.sanity_floor`)
of the same runs, never bold nor marked:

- ``floor (source only)``: the ``source_only`` floor, the lower bound's inputs;
- ``floor (pair)`` (``floor (pair, setting X)`` in a ``by="p"`` table): the ``pair_X`` floor
  of the column's setting ``X``, the imputation methods' inputs;
- ``floor (both)``: the upper bound's floor (only when the table has an ``ub`` row).

Each seed counts once: the floors of one pair, ``p`` and seed are the same for every method
that stores them, and one method's value is taken (LB first for ``source_only``, MM-Align first
for the pair floors). :attr:`Table.warnings` names every method whose mean of the table's first
metric is worse than its own floor (LB: source only; UB: both; others: pair) in a column.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmalign.data.dataset import MODALITY_ALIASES
from mmalign.evaluate.metrics import METRIC_DIRECTIONS, METRIC_LABELS
from mmalign.evaluate.significance import mark_significant
from mmalign.models.registry import METHODS, method_names, proposed_method, upper_bound
from mmalign.validation import ConfigError, DataError, check_in

__all__ = [
    "TABLE_FORMATS",
    "Column",
    "Cell",
    "Table",
    "FLOOR_ROWS",
    "column_cells",
    "default_metrics",
    "method_order",
    "pattern_label",
    "seed_stats",
    "metric_direction",
    "format_value",
    "build_table",
    "build_tables",
    "render",
]

TABLE_FORMATS: tuple[str, ...] = ("markdown", "csv", "latex")

_PAPER_PAIRS = (
    ("text", "vision"),
    ("vision", "audio"),
    ("audio", "text"),
    ("vision", "text"),
    ("audio", "vision"),
    ("text", "audio"),
)
_LOWER_IS_BETTER = ("mae", "mse", "rmse", "loss")
_LATEX_ARROW = r"$\rightarrow$"

#: Floor rows in table order: the lower bound's, the imputation methods', the upper bound's;
#: then the random-missing protocol's: on the present modalities, and the upper bound's on all.
FLOOR_ROWS: tuple[str, ...] = ("source_only", "pair", "both", "random", "complete")


@dataclass(frozen=True)
class Column:
    """One table column: a directed pair, a group (setting ``"A"``/``"B"`` or a ``p``), a metric.

    In a ``by="pattern"`` table ``source`` and ``victim`` are ``""`` (no pair) and ``group``
    is a pattern of present modalities (``"tv"``) or ``"overall"``.
    """

    source: str
    victim: str
    group: str | float
    metric: str


@dataclass(frozen=True)
class Cell:
    """Statistics of one method on one column.

    Attributes
    ----------
    mean, std : float
        Over seeds (``std`` with ``ddof=1``; 0.0 for a single seed).
    n : int
        Number of seeds.
    best : bool
        Best mean of the column (``ub`` excluded).
    significant : bool
        MM-Align beats the best baseline significantly (only ever set on MM-Align's cell).
    """

    mean: float
    std: float
    n: int
    best: bool = False
    significant: bool = False


@dataclass(frozen=True)
class Table:
    """A result table: ``cells[(method, j)]`` is the :class:`Cell` of row ``method``, column ``j``.

    Attributes
    ----------
    title : str
    by : {"setting", "p", "pattern"}
        What the column groups are (``"pattern"``: patterns of present modalities).
    methods : tuple of str
        Row order.
    columns : tuple of Column
    cells : dict
        ``(method, column index) -> Cell``; absent where a method has no result.
    floor_rows : tuple of str
        The floor rows shown, among :data:`FLOOR_ROWS` (empty without floors).
    floor_cells : dict
        ``(floor row, column index) -> Cell`` (``best`` and ``significant`` always False).
    warnings : tuple of str
        One line per method and column where the method's mean of the table's first metric
        is worse than its own floor.
    setting : str
        The setting of a ``by="p"`` table (``"A"`` or ``"B"``).
    sample_counts : dict
        ``column index -> Cell`` over seeds of the number of test samples in the column (a
        ``by="pattern"`` table shows it as a row; empty otherwise).
    """

    title: str
    by: str
    methods: tuple[str, ...]
    columns: tuple[Column, ...]
    cells: dict[tuple[str, int], Cell] = field(default_factory=dict)
    floor_rows: tuple[str, ...] = ()
    floor_cells: dict[tuple[str, int], Cell] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    setting: str = "A"
    sample_counts: dict[int, Cell] = field(default_factory=dict)


def metric_direction(metric: str) -> str:
    """Return ``"min"`` when lower is better for ``metric``, else ``"max"``.

    >>> metric_direction("mae"), metric_direction("acc2_nonzero"), metric_direction("loss")
    ('min', 'max', 'min')
    """
    return METRIC_DIRECTIONS.get(metric, "min" if metric in _LOWER_IS_BETTER else "max")


def _is_percent(metric: str) -> bool:
    return metric.startswith("acc") or metric.startswith("f1")


def format_value(metric: str, value: float) -> str:
    """Format one number the paper's way: percent with 1 decimal for Acc/F1, else 3 decimals.

    >>> format_value("mae", 1.02849), format_value("acc2_nonzero", 0.7689)
    ('1.028', '76.9')
    >>> format_value("mae", float("nan"))
    'nan'
    """
    if not math.isfinite(value):
        return "nan"
    return f"{100 * value:.1f}" if _is_percent(metric) else f"{value:.3f}"


def _label(method: str) -> str:
    """Row label of a method: the registry's label, or the name of an unregistered one."""
    return METHODS[method].label if method in METHODS else method


def default_metrics(metrics_present: Iterable[str]) -> tuple[str, ...]:
    """Return the paper's metrics for the task the records come from.

    Regression (MAE present): MAE and Acc-2 (non-zero); classification: weighted F1.

    >>> default_metrics(["mae", "corr", "acc2_nonzero"]), default_metrics(["acc", "f1_weighted"])
    (('mae', 'acc2_nonzero'), ('f1_weighted',))
    """
    present = set(metrics_present)
    if "mae" in present:
        return tuple(m for m in ("mae", "acc2_nonzero") if m in present)
    if "f1_weighted" in present:
        return ("f1_weighted",)
    raise ConfigError(
        f"`metrics` must be given: the records hold no 'mae' nor 'f1_weighted'; "
        f"available: {sorted(present)}."
    )


def _short(modality: str) -> str:
    inverse = {v: k for k, v in MODALITY_ALIASES.items()}
    return inverse.get(modality, modality).upper()


def pattern_label(pattern: str) -> str:
    """Column label of a pattern of present modalities (short names), or of ``"overall"``.

    >>> pattern_label("t"), pattern_label("tva"), pattern_label("overall")
    ('{T}', '{T,V,A}', 'Overall')
    """
    if pattern == "overall":
        return "Overall"
    return "{" + ",".join(pattern.upper()) + "}"


def _pair_label(source: str, victim: str, arrow: str = "→") -> str:
    return f"{_short(source)}{arrow}{_short(victim)}"


def method_order(methods: Iterable[str]) -> tuple[str, ...]:
    """Order methods as the registry's table does, then unregistered ones sorted.

    >>> method_order(["mm-align", "zz", "lb"])
    ('lb', 'mm-align', 'zz')
    """
    present = set(methods)
    return tuple(m for m in method_names() if m in present) + tuple(
        sorted(present - set(method_names()))
    )


def _pair_order(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen = list(dict.fromkeys(pairs))
    return [p for p in _PAPER_PAIRS if p in seen] + [p for p in seen if p not in _PAPER_PAIRS]


def _group_label(by: str, group: str | float) -> str:
    if by == "setting":
        return f"Setting {group}"
    if by == "pattern":
        return pattern_label(str(group))
    return f"{100 * float(group):g}%"


def build_table(
    records: Sequence[Mapping[str, Any]],
    *,
    by: str = "setting",
    metrics: Sequence[str] | None = None,
    p: float | None = None,
    setting: str = "A",
    split: str = "test",
    ours: str | None = None,
    alpha: float = 0.05,
    title: str | None = None,
    floors: Sequence[Mapping[str, Any]] | None = None,
) -> Table:
    """Build one paper-layout table from results-store records of one data set.

    Parameters
    ----------
    records : sequence of dict
        :meth:`mmalign.experiments.store.ResultStore.to_records` output (keys ``method,
        source, victim, p, seed, setting, split, metric, value``, optionally ``data_id``).
    by : {"setting", "p"}, default "setting"
        Column groups: settings A and B at one ``p`` (Tables 2-4), or the survival rates at
        one setting (Tables 9-11).
    metrics : sequence of str, optional
        Metrics to show; default :func:`default_metrics`.
    p : float, optional
        The survival rate of a ``by="setting"`` table; default the smallest one present.
    setting : {"A", "B"}, default "A"
        The setting of a ``by="p"`` table.
    split : str, default "test"
    ours : str, optional
        The method that gets the significance mark (default: the registry's proposed
        method, MM-Align).
    alpha : float, default 0.05
    title : str, optional
    floors : sequence of dict, optional
        :meth:`mmalign.experiments.store.ResultStore.floor_records` output of the same runs
        (keys ``method, source, victim, p, seed, floor, split, metric, value``): adds the
        floor rows and :attr:`Table.warnings`. Without it the table has no floor rows.

    Returns
    -------
    Table

    Raises
    ------
    ConfigError
        Bad option, unknown metric, no records left after the selection.
    DataError
        Records of several data sets, or two runs for the same cell and seed (runs with
        different configs in one store: filter by ``config_hash``).
    """
    check_in("by", by, ("setting", "p"))
    check_in("setting", setting, ("A", "B"))
    records = [r for r in records if r["split"] == split]
    if not records:
        raise ConfigError(f"`records` must hold results of split {split!r}; got none.")
    data_ids = sorted({str(r.get("data_id", r.get("data", ""))) for r in records})
    if len(data_ids) > 1:
        raise DataError(
            f"the records hold results of {len(data_ids)} data sets {data_ids}: build one "
            "table per data set (build_tables)."
        )
    present = {r["metric"] for r in records}
    metrics = tuple(metrics) if metrics else default_metrics(present)
    for metric in metrics:
        check_in("metric", metric, sorted(present))

    ps = sorted({float(r["p"]) for r in records if r["method"] != upper_bound()})
    if by == "setting":
        if p is None:
            p = ps[0] if ps else 1.0
        elif float(p) not in ps:
            raise ConfigError(f"`p` must be one of {ps}; got {p!r}.")
        p = float(p)
        groups: list[str | float] = ["A", "B"]
    else:
        groups = list(ps) if ps else [1.0]

    # (method, source, victim, group, metric) -> {seed: value}
    values: dict[tuple[str, str, str, str | float, str], dict[int, float]] = {}
    for r in records:
        if r["metric"] not in metrics:
            continue
        is_ub = r["method"] == upper_bound()
        if by == "setting":
            if not is_ub and float(r["p"]) != p:
                continue
            targets = [r["setting"]]
        else:
            if r["setting"] != setting:
                continue
            targets = groups if is_ub else [float(r["p"])]  # ub fills every p column
        for group in targets:
            key = (r["method"], r["source"], r["victim"], group, r["metric"])
            by_seed = values.setdefault(key, {})
            seed = int(r["seed"])
            if seed in by_seed:
                raise DataError(
                    f"two runs of {r['method']} {r['source']}->{r['victim']} p={r['p']} "
                    f"seed={seed}: the store holds runs with different configs; select one "
                    "with config_hash."
                )
            by_seed[seed] = float(r["value"])
    if not values:
        raise ConfigError("`records` must hold results for the selected p / setting; got none.")

    methods = method_order(k[0] for k in values)
    pairs = _pair_order((k[1], k[2]) for k in values)
    columns = tuple(
        Column(source, victim, group, metric)
        for source, victim in pairs
        for group in groups
        for metric in metrics
    )
    ours = proposed_method() if ours is None else ours
    cells: dict[tuple[str, int], Cell] = {}
    for j, col in enumerate(columns):
        column_values = {
            m: values[(m, col.source, col.victim, col.group, col.metric)]
            for m in methods
            if (m, col.source, col.victim, col.group, col.metric) in values
        }
        for method, cell in column_cells(column_values, col.metric, ours, alpha).items():
            cells[(method, j)] = cell

    if title is None:
        data = data_ids[0] if data_ids else ""
        if by == "setting":
            title = f"{data}: {split} results, p = {100 * p:g}%, settings A and B"
        else:
            title = f"{data}: {split} results in setting {setting}, p = " + ", ".join(
                f"{100 * g:g}%" for g in groups
            )
    table = Table(title, by, methods, columns, cells, setting=setting)
    if floors is None:
        return table
    floor_values = _floor_values(
        floors,
        by=by,
        p=p,
        setting=setting,
        split=split,
        groups=groups,
        metrics=metrics,
        data_id=data_ids[0] if data_ids else None,
        ours=ours,
    )
    floor_cells = {}
    for j, col in enumerate(columns):
        for row in FLOOR_ROWS:
            by_seed = floor_values.get((row, col.source, col.victim, col.group, col.metric))
            if by_seed:
                mean, std, n = seed_stats(v for _, v in by_seed.values())
                floor_cells[(row, j)] = Cell(mean, std, n)
    shown = {row for row, _ in floor_cells}
    if upper_bound() not in methods:
        shown.discard("both")
    floor_rows = tuple(row for row in FLOOR_ROWS if row in shown)
    floor_cells = {k: c for k, c in floor_cells.items() if k[0] in floor_rows}
    table = dataclasses.replace(table, floor_rows=floor_rows, floor_cells=floor_cells)
    return dataclasses.replace(table, warnings=_floor_warnings(table, metrics[0]))


def seed_stats(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample std (``ddof=1``; 0.0 for one value) and count of the finite values.

    >>> seed_stats([1.0, 2.0, float("nan"), 3.0])
    (2.0, 1.0, 3)
    """
    finite = np.array([v for v in values if math.isfinite(v)], dtype=float)  # (n_seeds,)
    if finite.size == 0:
        return math.nan, math.nan, 0
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return float(finite.mean()), std, int(finite.size)


def column_cells(
    values: Mapping[str, Mapping[int, float]], metric: str, ours: str, alpha: float = 0.05
) -> dict[str, Cell]:
    """Return the :class:`Cell` of every method of one column.

    Parameters
    ----------
    values : dict
        ``method -> {seed: value}`` of the column.
    metric : str
        The column's metric (its direction picks the best mean).
    ours : str
        The method that may get the significance mark.
    alpha : float, default 0.05

    Returns
    -------
    dict
        ``method -> Cell``: mean ± std over seeds, the best mean marked (the upper bound
        excluded), ``ours`` marked where it beats the best baseline significantly.

    Examples
    --------
    >>> cells = column_cells({"lb": {0: 1.2, 1: 1.4}, "mm-align": {0: 1.0, 1: 1.1}}, "mae", "mm-align")
    >>> cells["mm-align"].best, round(cells["lb"].mean, 3), cells["lb"].n
    (True, 1.3, 2)
    """
    direction = metric_direction(metric)
    sign = 1.0 if direction == "max" else -1.0
    stats = {method: seed_stats(by_seed.values()) for method, by_seed in values.items()}
    contenders = {m: s[0] for m, s in stats.items() if m != upper_bound() and math.isfinite(s[0])}
    best_score = max((sign * v for v in contenders.values()), default=math.nan)
    mark = mark_significant(values, direction, ours=ours, alpha=alpha)
    cells = {}
    for method, (mean, std, n) in stats.items():
        best = method in contenders and abs(sign * mean - best_score) <= 1e-12 * max(
            1.0, abs(best_score)
        )
        cells[method] = Cell(mean, std, n, best, method == ours and mark.significant)
    return cells


def _own_floor(method: str) -> str:
    """Return the floor row a method is compared with (the registry's ``inputs``)."""
    inputs = METHODS[method].inputs if method in METHODS else "pair"
    return {"source": "source_only"}.get(inputs, inputs)


def _floor_priority(row: str, method: str, ours: str) -> tuple[Any, ...]:
    """Whose stored floor counts for a seed (lowest first): one value per seed, never two."""
    names = method_names()
    order = (names.index(method) if method in names else len(names), method)
    if row == "source_only":  # method-independent: LB's own, then anyone's, UB last
        return (_own_floor(method) != "source_only", method == upper_bound(), *order)
    if row == "pair":
        return (method != ours, *order)
    return order


def _floor_values(
    floors: Sequence[Mapping[str, Any]],
    *,
    by: str,
    p: float | None,
    setting: str,
    split: str,
    groups: Sequence[str | float],
    metrics: Sequence[str],
    data_id: str | None,
    ours: str,
) -> dict[tuple[str, str, str, str | float, str], dict[int, tuple[tuple[Any, ...], float]]]:
    """``(floor row, source, victim, group, metric) -> {seed: (priority, value)}``."""
    values: dict[tuple[str, str, str, str | float, str], dict[int, tuple[tuple[Any, ...], float]]]
    values = {}
    for f in floors:
        if f["split"] != split or f["metric"] not in metrics:
            continue
        if data_id is not None and str(f.get("data_id", f.get("data", ""))) != data_id:
            continue
        kind = str(f["floor"])
        if kind in ("source_only", "both"):
            row, floor_setting = kind, None
        elif kind.startswith("pair_"):
            row, floor_setting = "pair", kind[len("pair_") :]
        else:
            continue
        is_ub = f["method"] == upper_bound()
        if by == "setting":
            if not is_ub and float(f["p"]) != p:
                continue
            targets = [floor_setting] if row == "pair" else list(groups)
        else:
            if row == "pair" and floor_setting != setting:
                continue
            targets = list(groups) if is_ub else [float(f["p"])]
        priority = _floor_priority(row, f["method"], ours)
        value = float(f["value"]) if f["value"] is not None else math.nan
        for group in targets:
            if group not in groups:
                continue
            by_seed = values.setdefault((row, f["source"], f["victim"], group, f["metric"]), {})
            seed = int(f["seed"])
            if seed not in by_seed or priority < by_seed[seed][0]:
                by_seed[seed] = (priority, value)
    return values


def _warning_numbers(metric: str, value: float, floor: float) -> tuple[str, str]:
    """Format two numbers the table's way, with more decimals where they would look equal."""
    scale, decimals = (100.0, 1) if _is_percent(metric) else (1.0, 3)
    for extra in range(5):
        a, b = (f"{scale * x:.{decimals + extra}f}" for x in (value, floor))
        if a != b:
            break
    return a, b


def _table_own_floor(table: Table, method: str) -> str | None:
    """Return the floor row ``method`` is compared with in ``table`` (``None``: none)."""
    if table.by == "pattern":  # the upper bound sees every modality, as its floor does
        return "complete" if _complete_data(method) else "random"
    return _own_floor(method)


def _complete_data(method: str) -> bool:
    return METHODS[method].complete_data if method in METHODS else False


def _column_place(table: Table, col: Column) -> str:
    """Where a column is, in words: ``T→V setting A``, ``{T,V}``, ``Overall``."""
    if table.by == "pattern":
        return pattern_label(str(col.group))
    if table.by == "setting":
        where = f"setting {col.group}"
    else:
        where = f"setting {table.setting}, p = {100 * float(col.group):g}%"
    return f"{_pair_label(col.source, col.victim)} {where}"


def _floor_warnings(table: Table, metric: str) -> tuple[str, ...]:
    """One line per method and column of ``metric`` where the method is worse than its floor."""
    sign = 1.0 if metric_direction(metric) == "max" else -1.0
    found = []
    for method in table.methods:
        row = _table_own_floor(table, method)
        for j, col in enumerate(table.columns):
            cell, floor = table.cells.get((method, j)), table.floor_cells.get((row, j))
            if col.metric != metric or cell is None or floor is None:
                continue
            if not (math.isfinite(cell.mean) and math.isfinite(floor.mean)):
                continue
            if sign * cell.mean >= sign * floor.mean:
                continue
            mine, theirs = _warning_numbers(metric, cell.mean, floor.mean)
            found.append(
                f"warning: {_label(method)} is worse than its linear floor in "
                f"{_column_place(table, col)} ({METRIC_LABELS.get(metric, metric)} {mine} vs "
                f"{theirs})"
            )
    return tuple(found)


def floor_warnings(table: Table) -> Table:
    """Return ``table`` with :attr:`Table.warnings` from its floor rows (first metric)."""
    if not table.columns:
        return table
    return dataclasses.replace(table, warnings=_floor_warnings(table, table.columns[0].metric))


def build_tables(
    records: Sequence[Mapping[str, Any]], *, by: str = "setting", **options: Any
) -> list[Table]:
    """Build one table per data set, and for ``by="setting"`` one per survival rate ``p``.

    ``options`` are passed to :func:`build_table` (an explicit ``p`` gives one table per data
    set); ``floors=`` may hold the floors of every data set (each table takes its own).
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r.get("data_id", r.get("data", ""))), []).append(r)
    if not groups:
        raise ConfigError("`records` must not be empty; got no results.")
    tables = []
    for data_id in sorted(groups):
        subset = groups[data_id]
        names = {r.get("data", data_id) for r in subset}
        name = ", ".join(sorted(str(n) for n in names))
        if by == "setting" and options.get("p") is None:
            split = options.get("split", "test")
            ps = sorted(
                {
                    float(r["p"])
                    for r in subset
                    if r["method"] != upper_bound() and r["split"] == split
                }
            ) or [1.0]
            for p in ps:
                table = build_table(subset, by=by, **{**options, "p": p})
                tables.append(_retitle(table, data_id, name))
        else:
            tables.append(_retitle(build_table(subset, by=by, **options), data_id, name))
    return tables


def _retitle(table: Table, data_id: str, name: str) -> Table:
    if table.title.startswith(data_id):
        return dataclasses.replace(table, title=name + table.title[len(data_id) :])
    return table


# -- rendering ----------------------------------------------------------------------------------
def _cell_text(table: Table, method: str, j: int) -> tuple[str, Cell | None]:
    return _format_cell(table, table.cells.get((method, j)), j)


def _format_cell(table: Table, cell: Cell | None, j: int) -> tuple[str, Cell | None]:
    if cell is None:
        return "–", None
    metric = table.columns[j].metric
    return f"{format_value(metric, cell.mean)} ± {format_value(metric, cell.std)}", cell


def _floor_label(table: Table, row: str) -> str:
    """Row label of a floor row, e.g. ``floor (source only)``, ``floor (pair, setting A)``."""
    if row == "source_only":
        return "floor (source only)"
    if row == "random":
        return "floor (present modalities)"
    if row == "complete":
        return "floor (all modalities)"
    if row == "pair":
        return "floor (pair)" if table.by == "setting" else f"floor (pair, setting {table.setting})"
    return f"floor ({row})"


def _floor_key(table: Table, row: str, col: Column) -> str:
    """Return the stored floor of a floor cell: ``source_only``, ``pair_A``, ``both``, ..."""
    if row != "pair":
        return row
    return f"pair_{col.group if table.by == 'setting' else table.setting}"


_FLOOR_NOTE = (
    "Floor rows: ridge regression (logistic for classes) on time-pooled features of the same "
    "runs, never marked; source only = LB's input, pair = source and victim where present in "
    "the column's setting (the imputation methods' input), both = UB's input."
)


_PATTERN_FLOOR_NOTE = (
    "Floor rows: ridge regression (logistic for classes) on time-pooled features of the "
    "same runs, never marked; present modalities = the input of LB and MM-Align, all "
    "modalities = UB's input."
)
_SAMPLES_LABEL = "n (test samples)"


def _metric_header(metric: str, arrow_up: str, arrow_down: str) -> str:
    label = METRIC_LABELS.get(metric, metric)
    return label + (arrow_down if metric_direction(metric) == "min" else arrow_up)


def _one_metric(table: Table) -> bool:
    return len({c.metric for c in table.columns}) == 1


def _column_header(table: Table, col: Column) -> str:
    """Return a column's Markdown header: ``T→V Setting A MAE↓``, or ``{T,V}``.

    A one-metric pattern table leaves the metric to its title.
    """
    group = _group_label(table.by, col.group)
    metric = _metric_header(col.metric, "↑", "↓")
    if table.by == "pattern":
        return group if _one_metric(table) else f"{group} {metric}"
    return f"{_pair_label(col.source, col.victim)} {group} {metric}"


def _count_text(cell: Cell | None) -> str:
    """Format a sample count: an integer, or the mean over seeds where it varies.

    >>> _count_text(Cell(20.0, 0.0, 3)), _count_text(Cell(20.333, 1.5, 3)), _count_text(None)
    ('20', '20.3', '–')
    """
    if cell is None or not math.isfinite(cell.mean):
        return "–"
    return f"{cell.mean:.0f}" if cell.std == 0 else f"{cell.mean:.1f}"


def _seeds_text(table: Table) -> str:
    """``3 seeds`` (or ``2-3 seeds`` where cells differ) for a footnote."""
    counts = sorted({c.n for c in table.cells.values()})
    if not counts:
        return "seeds"
    span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"{span} seed" + ("" if span == "1" else "s")


def _footnote(table: Table) -> list[str]:
    """Return the lines below a Markdown table: what a cell is, the marks, the floor rows."""
    if table.by == "pattern":
        lines = [
            f"Mean ± std over {_seeds_text(table)} on the test samples whose present "
            "modalities are the column's pattern ({T,V}: text and vision present, audio "
            "missing; Overall: every test sample); bold: best (UB excluded: it sees every "
            "modality); †: MM-Align significantly better than the best baseline (paired "
            f"t-test over seeds, p < 0.05); {_SAMPLES_LABEL}: mean over seeds."
        ]
        return lines + ([_PATTERN_FLOOR_NOTE] if table.floor_rows else [])
    lines = [
        "Mean ± std over seeds; bold: best (UB excluded); †: MM-Align significantly "
        "better than the best baseline (paired t-test over seeds, p < 0.05)."
    ]
    return lines + ([_FLOOR_NOTE] if table.floor_rows else [])


def _render_markdown(table: Table) -> str:
    headers = ["Method"] + [_column_header(table, c) for c in table.columns]
    lines = [f"**{table.title}**", "", "| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join([":---"] + [":---:"] * len(table.columns)) + "|")
    for method in table.methods:
        row = [_label(method)]
        for j in range(len(table.columns)):
            text, cell = _cell_text(table, method, j)
            if cell is not None and cell.significant:
                text += "†"
            if cell is not None and cell.best:
                text = f"**{text}**"
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    for floor_row in table.floor_rows:
        cells = [
            _format_cell(table, table.floor_cells.get((floor_row, j)), j)[0]
            for j in range(len(table.columns))
        ]
        lines.append("| " + " | ".join([_floor_label(table, floor_row), *cells]) + " |")
    if table.sample_counts:
        counts = [_count_text(table.sample_counts.get(j)) for j in range(len(table.columns))]
        lines.append("| " + " | ".join([_SAMPLES_LABEL, *counts]) + " |")
    lines += ["", *_footnote(table)]
    if table.warnings:
        lines += ["", *table.warnings]
    return "\n".join(lines) + "\n"


def _csv_keys(table: Table, col: Column | None) -> list[Any]:
    """Return the CSV columns naming a cell: pair and group, or pattern (``None``: header)."""
    if table.by == "pattern":
        return ["pattern"] if col is None else [col.group]
    if col is None:
        return ["source", "victim", "setting" if table.by == "setting" else "p"]
    return [col.source, col.victim, col.group]


def _render_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["method", *_csv_keys(table, None), "metric", "mean", "std", "n", "best", "significant"]
    )

    def write(name: str, col: Column, metric: str, cell: Cell, marks: bool) -> None:
        best, significant = (cell.best, cell.significant) if marks else (False, False)
        writer.writerow(
            [name, *_csv_keys(table, col), metric, repr(cell.mean), repr(cell.std), cell.n]
            + [best, significant]
        )

    for method in table.methods:
        for j, col in enumerate(table.columns):
            cell = table.cells.get((method, j))
            if cell is not None:
                write(method, col, col.metric, cell, True)
    for row in table.floor_rows:  # method "floor:<stored floor>", never best nor significant
        for j, col in enumerate(table.columns):
            cell = table.floor_cells.get((row, j))
            if cell is not None:
                write(f"floor:{_floor_key(table, row, col)}", col, col.metric, cell, False)
    for j, col in enumerate(table.columns):  # method "samples", metric "n": test samples
        cell = table.sample_counts.get(j)
        if cell is not None:
            write("samples", col, "n", cell, False)
    return buffer.getvalue()


def _latex_escape(text: str) -> str:
    for char, escaped in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("$", r"\$"),
        ("{", r"\{"),
        ("}", r"\}"),
    ):
        text = text.replace(char, escaped)
    return text


def _spans(items: Sequence[Any]) -> list[tuple[Any, int, int]]:
    """Group equal consecutive items as (item, first index, length)."""
    spans: list[tuple[Any, int, int]] = []
    for i, item in enumerate(items):
        if spans and spans[-1][0] == item:
            spans[-1] = (item, spans[-1][1], spans[-1][2] + 1)
        else:
            spans.append((item, i, 1))
    return spans


def _latex_metric(metric: str) -> str:
    return (
        _latex_escape(_metric_header(metric, "\x00", "\x01"))
        .replace("\x00", r"$\uparrow$")
        .replace("\x01", r"$\downarrow$")
    )


def _latex_header(table: Table) -> list[str]:
    """Return the header lines: pair, group, metric rows; by pattern: metric, pattern rows."""
    if table.by == "pattern":  # the metric spans its patterns, as MMIN's "Testing Condition"
        metric_row = _spans([c.metric for c in table.columns])
        return [
            "Method & "
            + " & ".join(
                rf"\multicolumn{{{k}}}{{c}}{{{_latex_metric(m)}}}" for m, _, k in metric_row
            )
            + r" \\",
            " ".join(rf"\cmidrule(lr){{{i + 2}-{i + k + 1}}}" for _, i, k in metric_row),
            " & "
            + " & ".join(_latex_escape(_group_label("pattern", c.group)) for c in table.columns)
            + r" \\",
        ]
    pair_row = _spans([(c.source, c.victim) for c in table.columns])
    group_row = _spans([(c.source, c.victim, c.group) for c in table.columns])
    lines = [
        "Method & "
        + " & ".join(
            rf"\multicolumn{{{k}}}{{c}}{{{_pair_label(s, v, _LATEX_ARROW)}}}"
            for (s, v), _, k in pair_row
        )
        + r" \\",
        " ".join(rf"\cmidrule(lr){{{i + 2}-{i + k + 1}}}" for _, i, k in pair_row),
    ]
    group_cells = []
    for (_, _, group), _, k in group_row:
        label = _group_label(table.by, group).replace("%", r"\%")
        group_cells.append(rf"\multicolumn{{{k}}}{{c}}{{{label}}}")
    lines.append(" & " + " & ".join(group_cells) + r" \\")
    lines.append(" & " + " & ".join(_latex_metric(c.metric) for c in table.columns) + r" \\")
    return lines


def _render_latex(table: Table) -> str:
    n = len(table.columns)
    lines = [
        f"% {_latex_escape(table.title)}",
        r"\begin{tabular}{l" + "c" * n + "}",
        r"\toprule",
        *_latex_header(table),
        r"\midrule",
    ]
    for method in table.methods:
        row = [_latex_escape(_label(method))]
        for j in range(n):
            text, cell = _cell_text(table, method, j)
            text = text.replace("±", r"$\pm$").replace("–", "--")
            if cell is not None and cell.best:
                text = rf"\textbf{{{text}}}"
            if cell is not None and cell.significant:
                text += r"$^{\dagger}$"
            row.append(text)
        lines.append(" & ".join(row) + r" \\")
    if table.floor_rows:
        lines.append(r"\midrule")
    for floor_row in table.floor_rows:
        row = [_latex_escape(_floor_label(table, floor_row))]
        for j in range(n):
            text, _ = _format_cell(table, table.floor_cells.get((floor_row, j)), j)
            row.append(text.replace("±", r"$\pm$").replace("–", "--"))
        lines.append(" & ".join(row) + r" \\")
    if table.sample_counts:
        counts = [_count_text(table.sample_counts.get(j)).replace("–", "--") for j in range(n)]
        lines += [r"\midrule", " & ".join([_latex_escape(_SAMPLES_LABEL), *counts]) + r" \\"]
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"% {_latex_escape(w)}" for w in table.warnings]
    return "\n".join(lines) + "\n"


def render(table: Table, fmt: str = "markdown") -> str:
    """Render ``table`` as ``"markdown"``, ``"csv"`` (one row per cell) or ``"latex"``.

    Markdown and LaTeX mark the best cell of each column in bold and MM-Align's significant
    cells with a dagger; CSV has ``best`` and ``significant`` columns instead. Floor rows
    (:attr:`Table.floor_rows`) follow the method rows, unmarked (CSV: method
    ``floor:source_only``, ``floor:pair_A``, ..., ``floor:random``), then the test-sample
    counts of a pattern table (CSV: method ``samples``, metric ``n``). A pattern table's CSV
    names each cell by ``pattern`` in place of ``source, victim, setting|p``. :attr:`Table.warnings` follow a Markdown
    table as plain lines and a LaTeX table as ``%`` comments; CSV leaves them out (``mmalign
    report`` adds them as ``#`` lines).
    """
    check_in("format", fmt, TABLE_FORMATS)
    if fmt == "markdown":
        return _render_markdown(table)
    if fmt == "csv":
        return _render_csv(table)
    return _render_latex(table)
