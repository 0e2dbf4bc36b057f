"""Evaluation metrics of the paper's protocol (regression on MOSI/MOSEI, classes on MELD).

Regression (CMU-MOSI / CMU-MOSEI sentiment in [-3, 3]) follows the conventions of the
reference code (MMSA ``MetricsTop``, MulT and MM-Align ``eval_metrics``, see ``FORMATS.md``
section 6) with two deliberate corrections: weighted F1 always takes ``(y_true, y_pred)`` in
that order (MulT swaps them), and degenerate inputs never crash (see each function).
Every definition, and how it differs from each reference, is written out in
``docs/metrics.md``. Values are plain Python floats, not rounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from mmalign.validation import ConfigError, check_in

__all__ = [
    "REGRESSION_METRICS",
    "CLASSIFICATION_METRICS",
    "PRIMARY_METRIC",
    "METRIC_DIRECTIONS",
    "METRIC_LABELS",
    "pearson_corr",
    "regression_metrics",
    "classification_metrics",
    "compute_metrics",
]

#: Metric names per task, in the order tables show them.
REGRESSION_METRICS: tuple[str, ...] = (
    "mae",
    "corr",
    "acc2_nonzero",
    "f1_nonzero",
    "acc2_haszero",
    "f1_haszero",
    "acc7",
    "acc5",
)
CLASSIFICATION_METRICS: tuple[str, ...] = ("acc", "f1_weighted", "f1_macro")

#: Task -> (metric used for model selection and headline numbers, its better direction).
PRIMARY_METRIC: dict[str, tuple[str, str]] = {
    "regression": ("mae", "min"),
    "classification": ("f1_weighted", "max"),
}

#: Metric name -> ``"min"`` (lower is better) or ``"max"``; used to mark the best table cell
#: and the best epoch (``"loss"``: the validation task loss that training records).
METRIC_DIRECTIONS: dict[str, str] = {
    "mae": "min",
    "loss": "min",
    **{name: "max" for name in REGRESSION_METRICS if name != "mae"},
    **{name: "max" for name in CLASSIFICATION_METRICS},
}

#: Metric name -> human label (the paper's column headers where it has one).
METRIC_LABELS: dict[str, str] = {
    "mae": "MAE",
    "corr": "Corr",
    "acc2_nonzero": "Acc-2",
    "f1_nonzero": "F1",
    "acc2_haszero": "Acc-2 (has-0)",
    "f1_haszero": "F1 (has-0)",
    "acc7": "Acc-7",
    "acc5": "Acc-5",
    "acc": "Acc",
    "f1_weighted": "F1",
    "f1_macro": "Macro-F1",
}


def _to_numpy(name: str, value: Any) -> np.ndarray:
    """Return ``value`` as a numpy array (torch tensors are detached and moved to CPU)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        # numpy has no bfloat16: widen floating tensors (float64 loses nothing)
        value = (value.double() if value.is_floating_point() else value).numpy()
    array = np.asarray(value)
    if array.dtype == object:
        raise ConfigError(f"`{name}` must be a numeric array; got dtype {array.dtype}.")
    return array


def _check_finite(name: str, array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ConfigError(f"`{name}` must hold finite values only; got {bad} NaN or inf value(s).")


def _weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    # zero_division=0 is sklearn's default value, minus the warning for a class never predicted
    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def pearson_corr(pred: np.ndarray, truth: np.ndarray) -> float:
    """Pearson correlation of two vectors; 0.0 when either one is constant.

    Parameters
    ----------
    pred, truth : ndarray, shape (N,)

    Returns
    -------
    float
        ``cov(pred, truth) / (std(pred) * std(truth))``. A constant vector (including
        ``N == 1``) carries no linear information about the other, so the value is 0.0
        instead of numpy's NaN and warning: table means over seeds stay defined.

    Examples
    --------
    >>> round(pearson_corr(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 7.0])), 6)
    0.993399
    >>> pearson_corr(np.array([1.0, 1.0, 1.0]), np.array([2.0, 4.0, 7.0]))
    0.0
    """
    p = np.asarray(pred, dtype=np.float64)
    y = np.asarray(truth, dtype=np.float64)
    p_centred = p - p.mean()  # (N,)
    y_centred = y - y.mean()  # (N,)
    p_norm = float(np.sqrt(np.dot(p_centred, p_centred)))
    y_norm = float(np.sqrt(np.dot(y_centred, y_centred)))
    # relative threshold: rounding noise around a constant must not read as a correlation
    if p_norm <= 1e-12 * max(1.0, float(np.abs(p).max())) * np.sqrt(p.size):
        return 0.0
    if y_norm <= 1e-12 * max(1.0, float(np.abs(y).max())) * np.sqrt(y.size):
        return 0.0
    return float(np.clip(np.dot(p_centred, y_centred) / (p_norm * y_norm), -1.0, 1.0))


def _regression_inputs(pred: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _to_numpy("pred", pred)
    y = _to_numpy("truth", truth)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]  # (N,)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # (N,)
    if p.ndim != 1:
        raise ConfigError(f"`pred` must have shape (N,) or (N, 1); got {p.shape!r}.")
    if y.shape != p.shape:
        raise ConfigError(f"`truth` must have shape {p.shape!r} like `pred`; got {y.shape!r}.")
    if p.size == 0:
        raise ConfigError("`pred` must hold at least one sample; got 0.")
    _check_finite("pred", p)
    _check_finite("truth", y)
    return p.astype(np.float64), y.astype(np.float64)


def regression_metrics(pred: Any, truth: Any) -> dict[str, float]:
    """Sentiment-regression metrics of CMU-MOSI / CMU-MOSEI.

    Parameters
    ----------
    pred : array-like, shape (N,) or (N, 1)
        Predicted scores (unclipped).
    truth : array-like, shape (N,) or (N, 1)
        True scores in [-3, 3].

    Returns
    -------
    dict[str, float]
        Keys in :data:`REGRESSION_METRICS` order:

        - ``mae``: ``mean(|p - y|)`` over all samples, unclipped.
        - ``corr``: Pearson correlation, 0.0 for a constant prediction (:func:`pearson_corr`).
        - ``acc2_nonzero`` / ``f1_nonzero``: accuracy and weighted F1 of ``p > 0`` against
          ``y > 0`` over the samples with ``y != 0`` (exact compare); NaN when every truth is 0.
        - ``acc2_haszero`` / ``f1_haszero``: the same over all samples with ``>= 0`` positive.
        - ``acc7``: share of ``round(clip(p, -3, 3)) == round(clip(y, -3, 3))``, numpy's
          half-to-even rounding (0.5 -> 0, 2.5 -> 2).
        - ``acc5``: the same with clipping to [-2, 2].

    Raises
    ------
    ConfigError
        Shapes differ, no sample, or a NaN / inf value.

    Examples
    --------
    >>> m = regression_metrics([1.0, -0.5, 0.2, 2.5], [2.0, -1.0, 0.0, 3.0])
    >>> m["mae"], m["acc2_nonzero"], m["acc2_haszero"], m["acc7"]
    (0.55, 1.0, 1.0, 0.25)
    """
    p, y = _regression_inputs(pred, truth)
    nonzero = y != 0  # (N,)
    if nonzero.any():
        y_pos, p_pos = y[nonzero] > 0, p[nonzero] > 0  # (N_nonzero,)
        acc2_nonzero = float(accuracy_score(y_pos, p_pos))
        f1_nonzero = _weighted_f1(y_pos, p_pos)
    else:
        # the subset is empty: say "undefined" rather than crash like the references
        acc2_nonzero = f1_nonzero = float("nan")
    y_nonneg, p_nonneg = y >= 0, p >= 0
    return {
        "mae": float(np.mean(np.abs(p - y))),
        "corr": pearson_corr(p, y),
        "acc2_nonzero": acc2_nonzero,
        "f1_nonzero": f1_nonzero,
        "acc2_haszero": float(accuracy_score(y_nonneg, p_nonneg)),
        "f1_haszero": _weighted_f1(y_nonneg, p_nonneg),
        "acc7": float(np.mean(np.round(np.clip(p, -3, 3)) == np.round(np.clip(y, -3, 3)))),
        "acc5": float(np.mean(np.round(np.clip(p, -2, 2)) == np.round(np.clip(y, -2, 2)))),
    }


def _is_integral(array: np.ndarray) -> bool:
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        return True
    return bool(np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)))


def classification_metrics(logits_or_labels: Any, truth: Any) -> dict[str, float]:
    """Accuracy, weighted F1 and macro F1 of a classifier (MELD emotions).

    Parameters
    ----------
    logits_or_labels : array-like, shape (N, C) or (N,)
        Class scores (logits or probabilities; the arg-max is the prediction, ties go to the
        lowest class) or integer predicted labels.
    truth : array-like, shape (N,)
        Integer class labels.

    Returns
    -------
    dict[str, float]
        ``acc`` (share of correct predictions), ``f1_weighted`` (per-class F1 weighted by
        true support) and ``f1_macro`` (unweighted mean of the per-class F1). F1 averages run
        over the classes present in the truth or the predictions (sklearn's default); a
        class never predicted has F1 0.

    Raises
    ------
    ConfigError
        Shapes differ, ``C < 2``, non-integer labels or non-finite scores.

    Examples
    --------
    >>> logits = [[2.0, 0.1], [0.3, 1.0], [1.5, -1.0], [0.0, 0.2]]
    >>> m = classification_metrics(logits, [0, 1, 1, 1])
    >>> m["acc"], round(m["f1_macro"], 4)
    (0.75, 0.7333)
    """
    scores = _to_numpy("logits_or_labels", logits_or_labels)
    y = _to_numpy("truth", truth)
    if scores.ndim == 2:
        if scores.shape[1] < 2:
            raise ConfigError(
                f"`logits_or_labels` must have C >= 2 columns; got shape {scores.shape!r}."
            )
        _check_finite("logits_or_labels", scores)
        predicted = np.argmax(scores, axis=1)  # (N,)
    elif scores.ndim == 1:
        if not _is_integral(scores):
            raise ConfigError(
                "`logits_or_labels` must be (N, C) scores or (N,) integer labels; "
                f"got non-integer values of shape {scores.shape!r}."
            )
        predicted = scores.astype(np.int64)
    else:
        raise ConfigError(
            f"`logits_or_labels` must have shape (N, C) or (N,); got {scores.shape!r}."
        )
    if y.shape != predicted.shape:
        raise ConfigError(f"`truth` must have shape {predicted.shape!r}; got {y.shape!r}.")
    if y.size == 0:
        raise ConfigError("`truth` must hold at least one sample; got 0.")
    if not _is_integral(y):
        raise ConfigError(f"`truth` must hold integer class labels; got dtype {y.dtype}.")
    y = y.astype(np.int64)
    return {
        "acc": float(accuracy_score(y, predicted)),
        "f1_weighted": _weighted_f1(y, predicted),
        "f1_macro": float(f1_score(y, predicted, average="macro", zero_division=0)),
    }


def compute_metrics(pred: Any, truth: Any, task: str) -> dict[str, float]:
    """Dispatch to :func:`regression_metrics` or :func:`classification_metrics`.

    Parameters
    ----------
    pred : array-like, shape (N,) or (N, 1) for regression; (N, C) or (N,) for classification
    truth : array-like, shape (N,)
    task : {"regression", "classification"}

    Returns
    -------
    dict[str, float]
        The task's metrics, keys in :data:`REGRESSION_METRICS` or
        :data:`CLASSIFICATION_METRICS` order.

    Examples
    --------
    >>> compute_metrics([[0.1, 0.9], [0.8, 0.2]], [1, 0], "classification")["acc"]
    1.0
    >>> compute_metrics([[1.0], [-1.0]], [2.0, -2.0], "regression")["mae"]
    1.0
    """
    check_in("task", task, ["regression", "classification"])
    if task == "regression":
        return regression_metrics(pred, truth)
    return classification_metrics(pred, truth)
