"""Window-size sweep of MM-Align (the paper's Fig. 4, Han et al., EMNLP 2022, section 5).

The sweep is an ordinary grid of runs of the proposed method (``mm-align``, from the
registry) whose configs differ only in the window radius ``K`` (option ``window``), so it runs
on any engine, resumes from the results store and shares runs with other grids of the same
config. :func:`window_sweep_summary` turns the
store rows back into metric-versus-window statistics (mean and std over split seeds),
:func:`write_sweep_csv` writes them and :func:`plot_sweep` draws Fig. 4.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmalign.config import ADLConfig
from mmalign.data.dataset import MODALITY_ALIASES
from mmalign.evaluate.metrics import METRIC_LABELS
from mmalign.evaluate.plots import plot_window_sweep
from mmalign.evaluate.tables import metric_direction
from mmalign.experiments.grid import PAPER_PAIR_ORDER, expand_grid
from mmalign.experiments.spec import RunSpec
from mmalign.experiments.store import SETTINGS
from mmalign.models.registry import proposed_method
from mmalign.options import parse_list
from mmalign.validation import ConfigError, check_in

__all__ = [
    "SWEEP_METHOD",
    "DEFAULT_WINDOWS",
    "SweepPoint",
    "parse_windows",
    "expand_window_sweep",
    "window_sweep_summary",
    "write_sweep_csv",
    "plot_sweep",
]

#: The method a window sweep trains: the proposed method (the window only exists there).
SWEEP_METHOD = proposed_method()
#: The paper sweeps 4..256 (256 exceeds every sentence: no window at all); we start at 1.
DEFAULT_WINDOWS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 256)
# the window radius of a run whose config does not set it
_DEFAULT_WINDOW = ADLConfig().window
_CSV_FIELDS = ("source", "victim", "p", "setting", "split", "window", "metric", "mean", "std", "n")


@dataclass(frozen=True)
class SweepPoint:
    """Statistics of one metric at one window radius over split seeds.

    Attributes
    ----------
    source, victim : str
        Full modality names of the pair.
    p : float
        Survival rate.
    setting : str
        ``"A"`` or ``"B"``.
    split : str
        ``"test"`` or ``"valid"``.
    window : int
        Window radius ``K``.
    metric : str
    mean, std : float
        Over seeds with a finite value (``std`` with ``ddof=1``; 0.0 for one seed).
    n : int
        Number of seeds with a finite value.
    """

    source: str
    victim: str
    p: float
    setting: str
    split: str
    window: int
    metric: str
    mean: float
    std: float
    n: int


def parse_windows(windows: str | Iterable[int]) -> list[int]:
    """Parse window radii: a comma list of integers >= 0, returned sorted and unique.

    The list is read by :func:`mmalign.options.parse_list`, the one comma-list reader.

    >>> parse_windows("8,1,2,256")
    [1, 2, 8, 256]
    >>> parse_windows([4, 4, 0])
    [0, 4]

    Raises
    ------
    ConfigError
        An empty list, a value that is not an integer, a negative value.
    """
    values = parse_list("windows", windows, int)  # "1.5", 2.5 and True are not integers
    if any(v < 0 for v in values):
        raise ConfigError(f"`windows` must be a comma list of integers >= 0; got {windows!r}.")
    return sorted(set(values))


def expand_window_sweep(
    data: str,
    pairs: Sequence[str] | str,
    ps: Sequence[float] | float,
    seeds: int | Sequence[int],
    windows: str | Iterable[int] = DEFAULT_WINDOWS,
    config: Mapping[str, Any] | None = None,
) -> list[RunSpec]:
    """Expand the sweep windows x pairs x ps x seeds into run specs of the proposed method.

    Parameters
    ----------
    data : str
        Data path or ``"synthetic[:knob=value,...]"``.
    pairs : list of str or str
        Directed pairs (``"t:v,a:t"``).
    ps : list of float or float
        Survival rates.
    seeds : int or list of int
        ``n`` for seeds ``0..n-1``, or the seeds.
    windows : str or iterable of int
        Window radii ``K`` (see :func:`parse_windows`).
    config : dict, optional
        Overrides shared by every run; it must not set ``window`` itself.

    Returns
    -------
    list of RunSpec
        Ordered by window, then pair, p and seed; ``spec.config["window"]`` is the radius.

    Examples
    --------
    >>> specs = expand_window_sweep("synthetic", "t:v", 0.1, 2, "1,4", {"epochs": 3})
    >>> [(s.config["window"], s.seed) for s in specs]
    [(1, 0), (1, 1), (4, 0), (4, 1)]
    """
    config = dict(config or {})
    if "window" in config:
        raise ConfigError(
            "`config` must not set window (the sweep sets it per run); "
            f"got window={config['window']!r}."
        )
    specs: list[RunSpec] = []
    for window in parse_windows(windows):
        specs += expand_grid(data, [SWEEP_METHOD], pairs, ps, seeds, {**config, "window": window})
    return specs


def _window_of(config: Mapping[str, Any]) -> int:
    return int(config.get("window", _DEFAULT_WINDOW))


def _pair_rank(pair: tuple[str, str]) -> tuple[int, str, str]:
    order = list(PAPER_PAIR_ORDER)
    return (order.index(pair) if pair in order else len(order), *pair)


def window_sweep_summary(
    rows: Iterable[Mapping[str, Any]], *, split: str = "test", metrics: Sequence[str] | None = None
) -> list[SweepPoint]:
    """Aggregate results-store rows of a sweep into metric-versus-window statistics.

    Parameters
    ----------
    rows : iterable of dict
        :meth:`mmalign.experiments.store.ResultStore.rows` output (``config`` and ``result``
        parsed); the window is read from ``config["window"]`` (the option table's default when unset).
    split : {"test", "valid"}, default "test"
    metrics : sequence of str, optional
        Metrics to keep; default every metric of the split.

    Returns
    -------
    list of SweepPoint
        Sorted by pair (the paper's order), p, setting, metric and window.

    Raises
    ------
    ConfigError
        No rows, or none that holds the split / metrics asked for.

    Examples
    --------
    >>> row = lambda w, s, mae: {"source": "text", "victim": "vision", "p": 0.1, "seed": s,
    ...     "config": {"window": w}, "result": {"A": {"test": {"mae": mae}}}}
    >>> points = window_sweep_summary([row(1, 0, 1.0), row(1, 1, 2.0), row(4, 0, 0.5)])
    >>> [(q.window, q.mean, round(q.std, 3), q.n) for q in points]
    [(1, 1.5, 0.707, 2), (4, 0.5, 0.0, 1)]
    """
    check_in("split", split, ("test", "valid"))
    # (source, victim, p, setting, metric, window) -> values over seeds
    values: dict[tuple[str, str, float, str, str, int], list[float]] = {}
    seen_rows = 0
    for row in rows:
        seen_rows += 1
        window = _window_of(row.get("config") or {})
        for setting in SETTINGS:
            block = (row["result"].get(setting) or {}).get(split)
            if not isinstance(block, Mapping):
                continue
            for metric, value in block.items():
                if metrics is not None and metric not in metrics:
                    continue
                key = (row["source"], row["victim"], float(row["p"]), setting, metric, window)
                values.setdefault(key, []).append(math.nan if value is None else float(value))
    if not seen_rows:
        raise ConfigError("`rows` must hold at least one finished sweep run; got none.")
    if not values:
        raise ConfigError(
            f"`rows` must hold {split!r} results"
            + (f" for metrics {list(metrics)}" if metrics else "")
            + "; got none."
        )
    points = []
    for (source, victim, p, setting, metric, window), seed_values in values.items():
        finite = np.array([v for v in seed_values if math.isfinite(v)])  # (n_seeds,)
        if finite.size == 0:
            mean, std = math.nan, math.nan
        else:
            mean = float(finite.mean())
            std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
        points.append(
            SweepPoint(
                source, victim, p, setting, split, window, metric, mean, std, int(finite.size)
            )
        )
    points.sort(
        key=lambda q: (_pair_rank((q.source, q.victim)), q.p, q.setting, q.metric, q.window)
    )
    return points


def write_sweep_csv(points: Sequence[SweepPoint], path: str | Path) -> Path:
    """Write sweep statistics as CSV, one row per (pair, p, setting, metric, window).

    Columns: ``source, victim, p, setting, split, window, metric, mean, std, n``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(_CSV_FIELDS)
        for q in points:
            writer.writerow(
                [
                    q.source,
                    q.victim,
                    f"{q.p:g}",
                    q.setting,
                    q.split,
                    q.window,
                    q.metric,
                    repr(q.mean),
                    repr(q.std),
                    q.n,
                ]
            )
    return path


def _short(modality: str) -> str:
    inverse = {v: k for k, v in MODALITY_ALIASES.items()}
    return inverse.get(modality, modality).upper()


def plot_sweep(
    points: Sequence[SweepPoint],
    out_path: str | Path,
    *,
    metric: str | None = None,
    settings: Sequence[str] = SETTINGS,
    title: str | None = None,
    data: str | None = None,
) -> Path:
    """Draw Fig. 4: one metric against the window radius, one curve per pair x setting (x p).

    Parameters
    ----------
    points : sequence of SweepPoint
        :func:`window_sweep_summary` output.
    out_path : str or Path
        The PNG to write.
    metric : str, optional
        Default ``mae`` when present, else ``f1_weighted``, else the first metric.
    settings : sequence of str, default ("A", "B")
        Settings to draw.
    title : str, optional
        Default: split, metric, survival rate(s) and seed count (prefixed with ``data``).
    data : str, optional
        The data's name, for the default title.

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    ConfigError
        No points, or an unknown metric / setting.
    """
    if not points:
        raise ConfigError("`points` must hold at least one sweep point; got none.")
    present = list(dict.fromkeys(q.metric for q in points))
    if metric is None:
        metric = next((m for m in ("mae", "f1_weighted") if m in present), present[0])
    check_in("metric", metric, present)
    for setting in settings:
        check_in("setting", setting, SETTINGS)
    chosen = [q for q in points if q.metric == metric and q.setting in settings]
    if not chosen:
        raise ConfigError(
            f"`settings` must name settings present in the sweep; got {list(settings)}."
        )
    windows = sorted({q.window for q in chosen})
    column = {w: i for i, w in enumerate(windows)}
    several_ps = len({q.p for q in chosen}) > 1
    means: dict[str, np.ndarray] = {}
    stds: dict[str, np.ndarray] = {}
    for q in chosen:
        name = f"{_short(q.source)}→{_short(q.victim)} setting {q.setting}"
        if several_ps:
            name += f" p={q.p:g}"
        if name not in means:
            means[name] = np.full(len(windows), np.nan)  # (S,) NaN leaves a gap
            stds[name] = np.zeros(len(windows))  # (S,)
        means[name][column[q.window]] = q.mean
        stds[name][column[q.window]] = q.std if math.isfinite(q.std) else 0.0
    n_seeds = max(q.n for q in chosen)
    label = METRIC_LABELS.get(metric, metric)
    if title is None:
        ps = ", ".join(f"{p:g}" for p in sorted({q.p for q in chosen}))
        title = f"{chosen[0].split} {label} vs window, p = {ps} (mean ± std, {n_seeds} seed(s))"
        title = f"{data}: {title}" if data else title
    return plot_window_sweep(
        windows, means, label, out_path, std=stds, direction=metric_direction(metric), title=title
    )
