import csv
import io

import numpy as np

from mmalign.data.missingness import pattern_names
from mmalign.runs.predictions import predictions_csv


def _rows(text):
    return list(csv.reader(io.StringIO(text)))


def test_pattern_values_are_written_as_they_are():
    present = np.array([[1, 1, 0], [0, 0, 1], [1, 1, 1]], bool)
    patterns = pattern_names(present, ("text", "vision", "audio"))
    text = predictions_csv(
        np.array(["s0", "s1", "s2"]),
        np.array([0.5, -1.0, 2.0], np.float32),
        {"all": patterns, "other": np.array(["t+pose", "pose", "t"])},
        {"all": np.array([[0.25], [1.5], [-2.0]]), "other": np.zeros((3, 1))},
        "regression",
        present_column="pattern",
    )
    rows = _rows(text)
    assert rows[0] == ["setting", "id", "pattern", "label", "prediction"]
    assert rows[1:4] == [
        ["all", "s0", "tv", "0.5", "0.25"],
        ["all", "s1", "a", "-1.0", "1.5"],
        ["all", "s2", "tva", "2.0", "-2.0"],
    ]
    assert [r[2] for r in rows[4:]] == ["t+pose", "pose", "t"]


def test_pattern_column_with_classes():
    text = predictions_csv(
        np.array(["a", "b"]),
        np.array([1, 0]),
        {"all": np.array(["va", "t"], dtype=object)},
        {"all": np.array([[0.0, np.log(3.0)], [0.0, 0.0]])},
        "classification",
        present_column="pattern",
    )
    assert _rows(text) == [
        ["setting", "id", "pattern", "label", "prediction", "prob_0", "prob_1"],
        ["all", "a", "va", "1", "1", "0.25", "0.75"],
        ["all", "b", "t", "0", "0", "0.5", "0.5"],
    ]


def test_bool_values_are_still_written_as_0_and_1():
    text = predictions_csv(
        np.array(["a", "b", "c"]),
        np.array([1.0, 2.0, 3.0], np.float32),
        {"A": np.array([True, False, True]), "B": np.array([False, False, False])},
        {"A": np.zeros((3, 1)), "B": np.ones((3, 1))},
        "regression",
    )
    rows = _rows(text)
    assert rows[0][2] == "victim_present"
    assert [(r[0], r[2]) for r in rows[1:]] == [
        ("A", "1"),
        ("A", "0"),
        ("A", "1"),
        ("B", "0"),
        ("B", "0"),
        ("B", "0"),
    ]
