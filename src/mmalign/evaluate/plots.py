"""Figures of the paper's analysis: window-size sweep (Fig. 4), alignment heat maps (Fig. 5).

Also training curves. Figures are drawn on a bare :class:`matplotlib.figure.Figure` (the Agg
canvas), never through ``pyplot``: nothing opens a window, nothing changes the global
backend, and no figure is left in pyplot's registry. Each function writes one PNG of exactly
``figsize * dpi`` pixels and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mmalign.evaluate.metrics import METRIC_DIRECTIONS, METRIC_LABELS
from mmalign.validation import ConfigError, check_positive

__all__ = ["plot_window_sweep", "plot_alignment_heatmaps", "plot_training_curves"]


def _save(figure: Figure, out_path: str | Path, dpi: float) -> Path:
    path = Path(out_path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"`out_path` must end in .png; got {str(out_path)!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, format="png")
    return path


def _series(name: str, values: Any, n: int, label: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise ConfigError(
            f"`{label}[{name!r}]` must have one value per window ({n}); got shape {array.shape!r}."
        )
    return array


def plot_window_sweep(
    windows: Sequence[int],
    values: Mapping[str, Sequence[float]],
    metric_label: str,
    out_path: str | Path,
    *,
    std: Mapping[str, Sequence[float]] | None = None,
    direction: str | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (6.0, 4.0),
    dpi: float = 100.0,
) -> Path:
    """Plot a metric against the window radius ``K`` (the paper's Fig. 4).

    Parameters
    ----------
    windows : sequence of int, length S
        Window radii, strictly increasing; the x axis is log2-scaled (symlog when ``0`` is
        included) because sweeps run 1..256.
    values : mapping str -> sequence of float, each of length S
        One curve per key (a pair such as ``"t->v"``, a method or a metric); NaN leaves a gap.
    metric_label : str
        The y-axis label, e.g. ``"MAE"``.
    out_path : str or Path
        Where to write the PNG (parent folders are created).
    std : mapping str -> sequence of float, optional
        Standard deviation per curve (same keys as ``values`` or a subset), drawn as a band.
    direction : {"min", "max"}, optional
        When given, the best point of each curve is marked.
    title : str, optional
    figsize : (float, float)
        Inches; the PNG is ``figsize * dpi`` pixels.
    dpi : float

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    ConfigError
        Empty or non-increasing windows, a curve of the wrong length, an unknown ``std`` key.
    """
    check_positive("dpi", dpi)
    windows_array = np.asarray(windows)
    if windows_array.ndim != 1 or windows_array.size == 0:
        raise ConfigError(f"`windows` must be a non-empty list of ints; got {windows!r}.")
    if not np.issubdtype(windows_array.dtype, np.integer) or windows_array.min() < 0:
        raise ConfigError(f"`windows` must hold integers >= 0; got {list(windows)!r}.")
    if np.any(np.diff(windows_array) <= 0):
        raise ConfigError(f"`windows` must be strictly increasing; got {list(windows)!r}.")
    if not values:
        raise ConfigError("`values` must name at least one curve; got none.")
    if direction is not None and direction not in ("min", "max"):
        raise ConfigError(f"`direction` must be one of ['min', 'max', None]; got {direction!r}.")
    n = windows_array.size
    curves = {name: _series(name, v, n, "values") for name, v in values.items()}
    spreads = {}
    for name, v in (std or {}).items():
        if name not in curves:
            raise ConfigError(f"`std` keys must be among {list(curves)}; got {name!r}.")
        spreads[name] = _series(name, v, n, "std")

    figure = Figure(figsize=figsize, layout="constrained")
    axes = figure.add_subplot()
    x = windows_array.astype(np.float64)
    for name, y in curves.items():
        (line,) = axes.plot(x, y, marker="o", markersize=3, label=name)
        if name in spreads:
            axes.fill_between(
                x,
                y - spreads[name],
                y + spreads[name],
                alpha=0.2,
                linewidth=0,
                color=line.get_color(),
            )
        if direction is not None and np.isfinite(y).any():
            best = int(np.nanargmin(y) if direction == "min" else np.nanargmax(y))
            axes.plot(x[best], y[best], marker="*", markersize=12, color=line.get_color())
    if windows_array.min() > 0:
        axes.set_xscale("log", base=2)
    else:
        # K = 0 has no logarithm: linear below 1, log above
        axes.set_xscale("symlog", base=2, linthresh=1)
    axes.set_xticks(x)
    axes.set_xticklabels([str(int(k)) for k in windows_array])
    axes.minorticks_off()
    axes.set_xlabel("window size K")
    axes.set_ylabel(metric_label)
    axes.grid(alpha=0.3)
    if title:
        axes.set_title(title)
    axes.legend(fontsize="small")
    return _save(figure, out_path, dpi)


def _mean_abs(name: str, matrix: Any) -> np.ndarray:
    array = np.abs(np.asarray(matrix, dtype=np.float64))
    if array.ndim == 3:
        array = array.mean(axis=0)  # (S, S)
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] == 0:
        raise ConfigError(
            f"`{name}` must have shape (S, S) or (N, S, S); got {np.shape(matrix)!r}."
        )
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"`{name}` must hold finite values only; got NaN or inf.")
    return array


def plot_alignment_heatmaps(
    predicted: Any,
    ot: Any,
    out_path: str | Path,
    window: int | None = None,
    *,
    titles: tuple[str, str] = ("predicted (fitter)", "OT plan"),
    figsize: tuple[float, float] = (9.0, 4.0),
    dpi: float = 100.0,
    suptitle: str | None = None,
) -> Path:
    """Draw mean absolute alignment entries side by side (the paper's Fig. 5).

    Parameters
    ----------
    predicted : ndarray, shape (S, S) or (N, S, S)
        Alignment matrices produced by the fitter, dense, rows = source step ``i``, columns
        = victim step ``j``. A stack is reduced to ``mean(|A|)`` over ``N``; an ``(S, S)``
        input is taken as that mean already (its absolute value is drawn).
    ot : ndarray, shape (S, S) or (N, S, S)
        The OT plans, same layout.
    out_path : str or Path
        Where to write the PNG.
    window : int, optional
        Window radius ``K``: dashed lines mark the window's edges (``|i - j| = K + 1/2``).
    titles : (str, str)
        Panel titles.
    figsize : (float, float)
    dpi : float
    suptitle : str, optional
        Figure title (e.g. the data and the run).

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    ConfigError
        A matrix that is not square, the two of different sizes, non-finite entries or a
        negative window.

    Notes
    -----
    Both panels share one colour scale (0 to the larger maximum) and one colour bar, so
    brightness compares across panels; the colour map is black at 0, like the paper's.
    """
    check_positive("dpi", dpi)
    left = _mean_abs("predicted", predicted)
    right = _mean_abs("ot", ot)
    if left.shape != right.shape:
        raise ConfigError(
            f"`ot` must have the size of `predicted` {left.shape!r}; got {right.shape!r}."
        )
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 0:
            raise ConfigError(f"`window` must be an integer >= 0; got {window!r}.")
    size = left.shape[0]
    top = max(float(left.max()), float(right.max()))
    top = top if top > 0 else 1.0  # all-zero input: any non-empty scale

    figure = Figure(figsize=figsize, layout="constrained")
    panels = figure.subplots(1, 2)
    image = None
    for axes, matrix, title in zip(panels, (left, right), titles):
        image = axes.imshow(
            matrix, cmap="magma", vmin=0.0, vmax=top, origin="upper", interpolation="nearest"
        )
        if window is not None:
            # the edges between in-window cells (|i - j| <= K) and the rest: j = i +- (K + 1/2)
            rows = np.array([-0.5, size - 0.5])
            for offset in (window + 0.5, -window - 0.5):
                axes.plot(rows + offset, rows, color="white", linestyle="--", linewidth=0.8)
            axes.set_xlim(-0.5, size - 0.5)
            axes.set_ylim(size - 0.5, -0.5)
        axes.set_title(title)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("victim step j")
        axes.set_ylabel("source step i")
    figure.colorbar(image, ax=list(panels), label="mean |alignment entry|", shrink=0.9)
    if suptitle:
        figure.suptitle(suptitle, fontsize="small")
    return _save(figure, out_path, dpi)


def plot_sample_alignments(
    samples: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]],
    out_path: str | Path,
    *,
    suptitle: str | None = None,
    dpi: float = 100.0,
) -> Path:
    """Draw the fitter's and the OT plan's alignment of single samples, with the truth.

    Parameters
    ----------
    samples : sequence of (label, predicted, ot, truth)
        One row per sample: ``predicted`` and ``ot`` dense ``(n, m)`` matrices (rows =
        source step ``i``, columns = victim step ``j``); ``truth`` the ``(m, 2)`` true
        source span ``[start, end)`` of each victim step (``-1`` unknown), or None.
    out_path : str or Path
    suptitle : str, optional
    dpi : float

    Returns
    -------
    Path
        ``out_path``.
    """
    check_positive("dpi", dpi)
    if not samples:
        raise ConfigError("`samples` must hold at least one sample.")
    rows = len(samples)
    figure = Figure(figsize=(10.0, 2.8 * rows + 0.6), layout="constrained")
    panels = np.atleast_2d(figure.subplots(rows, 2, squeeze=False))
    for (label, predicted, ot, truth), axes_row in zip(samples, panels):
        for axes, matrix, name in zip(axes_row, (predicted, ot), ("fitter", "OT plan")):
            matrix = np.asarray(matrix, dtype=float)
            axes.imshow(matrix, cmap="magma", aspect="auto", interpolation="nearest", vmin=0.0)
            if truth is not None:
                spans = np.asarray(truth)
                known = spans[:, 0] >= 0
                steps = np.flatnonzero(known)
                middle = (spans[known, 0] + spans[known, 1] - 1) / 2.0
                axes.plot(steps, middle, color="cyan", linewidth=0.8, label="truth")
            axes.set_title(f"{label}: {name}", fontsize="small")
            axes.set_xlabel("victim step j")
            axes.set_ylabel("source step i")
    if any(s[3] is not None for s in samples):
        panels[0, 0].legend(loc="upper left", fontsize="x-small")
    if suptitle:
        figure.suptitle(suptitle, fontsize="small")
    return _save(figure, out_path, dpi)


#: Validation metrics drawn by default, first present wins: the loop's selection metrics
#: (``PRIMARY_METRIC``: MAE for regression, weighted F1 for classification), then accuracy.
_CURVE_METRICS = ("mae", "f1_weighted", "acc")

#: ``"<phase>/<name>"`` entries of a record that are rates, not losses: not drawn by default.
_NOT_LOSSES = ("ot_unconverged",)


def _default_metric(valid: Mapping[str, Any]) -> str:
    for name in _CURVE_METRICS:
        if name in valid:
            return name
    return next(iter(valid))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Return ``(first, last)`` indices of each run of True in a 1-D boolean ``mask``."""
    runs: list[tuple[int, int]] = []
    for i, flag in enumerate(mask):
        if flag and runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        elif flag:
            runs.append((i, i))
    return runs


def plot_training_curves(
    history: Sequence[Mapping[str, Any]],
    out_path: str | Path | None = None,
    *,
    title: str | None = None,
    metric: str | None = None,
    losses: Sequence[str] | None = None,
    figsize: tuple[float, float] = (10.0, 4.0),
    dpi: float = 100.0,
) -> Figure:
    """Plot training losses and a validation metric per setting against the epoch.

    Parameters
    ----------
    history : sequence of dict
        One record per epoch, exactly as the training loop writes ``history.json``:
        ``epoch`` (int), loss means under ``"<phase>/<loss>"`` keys (e.g.
        ``"complete/main"``, ``"missing/backbone"``), ``"valid_<setting>"`` -> metrics dict per
        setting, ``warmup`` (bool); other entries (``lr``, ``seconds``) are ignored. Keys
        absent from some epochs leave gaps.
    out_path : str or Path, optional
        When given, also write the PNG there (``figsize * dpi`` pixels; parent folders are
        created).
    title : str, optional
        Figure title, e.g. the run's name.
    metric : str, optional
        Validation metric to draw (``"loss"``: the validation task loss); by default the first
        present of ``mae`` (regression), ``f1_weighted`` (classification) and ``acc``.
    losses : sequence of str, optional
        Loss keys to draw; by default every numeric ``"<phase>/<loss>"`` key except the
        ``ot_unconverged`` rate.
    figsize : (float, float)
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure
        Two panels on the Agg canvas (not registered with ``pyplot``): training losses (one
        line per key, log-scaled when all positive and spanning over two decades) and the
        validation metric (one line per setting, the best epoch starred). Warm-up epochs are
        shaded in both.

    Raises
    ------
    ConfigError
        Empty history, a record without ``epoch``, an unknown loss key or metric, an
        ``out_path`` not ending in ``.png``.

    Notes
    -----
    The best epoch of a setting is chosen like the training loop does: the first epoch with
    the best value of ``metric`` among the non-warm-up epochs (lower is better for MAE and
    the loss, higher for the others; the last epoch when every epoch was warm-up). It is the
    run's checkpoint when ``metric`` is what the run selected on (``--selection``).
    """
    check_positive("dpi", dpi)
    if len(history) == 0:
        raise ConfigError("`history` must hold at least one epoch record; got none.")
    for position, record in enumerate(history):
        if not isinstance(record, Mapping) or not _is_number(record.get("epoch")):
            raise ConfigError(
                f"`history[{position}]` must be a dict with an 'epoch' key; got {record!r}."
            )
    if out_path is not None and Path(out_path).suffix.lower() != ".png":
        raise ConfigError(f"`out_path` must end in .png; got {str(out_path)!r}.")
    epochs = np.array([float(record["epoch"]) for record in history])  # (E,)
    all_losses = sorted({k for r in history for k, v in r.items() if "/" in k and _is_number(v)})
    if losses is not None:
        unknown = [k for k in losses if k not in all_losses]
        if unknown:
            raise ConfigError(f"`losses` must be among {all_losses}; got {unknown}.")
        loss_keys = list(losses)
    else:
        loss_keys = [k for k in all_losses if k.split("/", 1)[1] not in _NOT_LOSSES]
    settings = sorted(
        {
            k[len("valid_") :]
            for r in history
            for k, v in r.items()
            if k.startswith("valid_") and isinstance(v, Mapping)
        }
    )
    valid_names = sorted(
        {
            m
            for r in history
            for k, v in r.items()
            if k.startswith("valid_") and isinstance(v, Mapping)
            for m in v
        }
    )
    if metric is None and valid_names:
        first = next(
            r[f"valid_{s}"]
            for r in history
            for s in settings
            if isinstance(r.get(f"valid_{s}"), Mapping) and r[f"valid_{s}"]
        )
        metric = _default_metric(first)
    if settings and metric not in valid_names:
        raise ConfigError(f"`metric` must be one of {valid_names}; got {metric!r}.")

    figure = Figure(figsize=figsize, layout="constrained")
    loss_axes, metric_axes = figure.subplots(1, 2)
    warm = np.array([r.get("warmup") is True for r in history])  # (E,)
    for axes in (loss_axes, metric_axes):
        for n, (first_warm, last_warm) in enumerate(_runs(warm)):
            axes.axvspan(
                epochs[first_warm] - 0.5,
                epochs[last_warm] + 0.5,
                color="0.9",
                label="warm-up" if n == 0 else None,
            )
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    for key in loss_keys:
        y = np.array([_as_float(r.get(key)) for r in history])  # (E,)
        loss_axes.plot(epochs, y, marker=".", label=key)
    drawn = np.array([_as_float(r.get(k)) for r in history for k in loss_keys])
    drawn = drawn[np.isfinite(drawn)]
    if drawn.size and drawn.min() > 0 and drawn.max() > 100 * drawn.min():
        loss_axes.set_yscale("log")
    loss_axes.set_ylabel("training loss")
    loss_axes.set_title("training losses")
    lower_better = METRIC_DIRECTIONS.get(metric or "", "max") == "min"
    for setting in settings:
        y = np.array([_valid_value(r, setting, metric) for r in history])  # (E,)
        (line,) = metric_axes.plot(epochs, y, marker=".", label=f"setting {setting}")
        candidates = np.where(~warm & np.isfinite(y))[0]
        if candidates.size == 0 and not (~warm).any() and np.isfinite(y[-1]):
            candidates = np.array([len(y) - 1])  # only warm-up epochs: the loop keeps the last
        if candidates.size:
            pick = np.argmin(y[candidates]) if lower_better else np.argmax(y[candidates])
            best = int(candidates[pick])
            metric_axes.plot(
                epochs[best],
                y[best],
                marker="*",
                markersize=12,
                linestyle="none",
                color=line.get_color(),
                label=f"best {setting}: epoch {int(epochs[best])}",
            )
    label = METRIC_LABELS.get(metric, metric) if metric else ""
    metric_axes.set_ylabel(f"validation {label}".strip())
    metric_axes.set_title("validation")
    for axes in (loss_axes, metric_axes):
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    if out_path is not None:
        _save(figure, out_path, dpi)
    return figure


def _valid_value(record: Mapping[str, Any], setting: str, metric: str | None) -> float:
    """Return ``record["valid_<setting>"][metric]`` as a float, NaN when absent or not finite."""
    valid = record.get(f"valid_{setting}")
    return _as_float(valid.get(metric) if isinstance(valid, Mapping) else None)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)


def _as_float(value: Any) -> float:
    if _is_number(value) and math.isfinite(float(value)):
        return float(value)
    return float("nan")
