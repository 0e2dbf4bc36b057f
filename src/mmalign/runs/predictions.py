"""``predictions.csv``: one row per test sample and setting, with class probabilities."""

from __future__ import annotations

import csv
import io

import numpy as np

__all__ = ["softmax", "predictions_csv"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits, computed stably.

    >>> softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]])).round(3).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)  # (N, C)


def predictions_csv(
    ids: np.ndarray,
    labels: np.ndarray,
    present: dict[str, np.ndarray],
    outputs: dict[str, np.ndarray],
    task: str,
    present_column: str = "victim_present",
) -> str:
    """CSV text: ``setting, id, victim_present, label, prediction`` (+ ``prob_<k>`` per class).

    Parameters
    ----------
    ids : ndarray, shape (N,)
    labels : ndarray, shape (N,)
    present : dict[str, ndarray]
        Setting -> (N,) bool, where the victim was used (written as 0/1), or any (N,) values
        (written as they are, e.g. the random-missing protocol's pattern names).
    outputs : dict[str, ndarray]
        Setting -> (N, C) model outputs (regression: score in column 0; classes: logits).
    task : {"regression", "classification"}
    present_column : str
        Header of the ``present`` column (``"pattern"`` for the random-missing protocol).

    >>> text = predictions_csv(np.array(["a"]), np.array([1]), {"A": np.array([False])},
    ...                        {"A": np.array([[0.0, 0.0]])}, "classification")
    >>> text.splitlines()
    ['setting,id,victim_present,label,prediction,prob_0,prob_1', 'A,a,0,1,0,0.5,0.5']
    """
    header = ["setting", "id", present_column, "label", "prediction"]
    n_classes = next(iter(outputs.values())).shape[1] if task == "classification" else 0
    header += [f"prob_{k}" for k in range(n_classes)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for setting, out in outputs.items():
        columns = [
            np.full(len(ids), setting, dtype=object),
            np.asarray(ids, dtype=str).astype(object),
            _cells(present[setting]),
        ]
        if task == "regression":
            columns += [labels.astype(float).astype(object), out[:, 0].astype(float).astype(object)]
        else:
            columns += [labels.astype(int).astype(object), out.argmax(1).astype(object)]
            columns += [c.astype(object) for c in softmax(out.astype(np.float64)).T.round(6)]
        writer.writerows(np.stack(columns, axis=1).tolist())  # (N, fields)
    return buf.getvalue()


def _cells(values: np.ndarray) -> np.ndarray:
    """Column values as objects: bool as 0/1, anything else as it is."""
    values = np.asarray(values)
    return (values.astype(int) if values.dtype == bool else values).astype(object)
