import csv
import math

import matplotlib.image
import pytest

from mmalign.analyses.window_sweep import (
    SweepPoint,
    expand_window_sweep,
    parse_windows,
    plot_sweep,
    window_sweep_summary,
    write_sweep_csv,
)
from mmalign.validation import ConfigError


def test_parse_windows():
    assert parse_windows("256, 1,2,2") == [1, 2, 256]
    assert parse_windows([3, 0]) == [0, 3]


@pytest.mark.parametrize("bad", ["1,x", "1,-2", "", "1.5", [2.5], [True]])
def test_parse_windows_rejects(bad):
    with pytest.raises(ConfigError, match="`windows` must"):
        parse_windows(bad)


def test_expand_window_sweep():
    specs = expand_window_sweep("synthetic", "t:v,v:a", [0.1], 2, "4,1", {"epochs": 2})
    assert len(specs) == 2 * 2 * 2
    assert [s.config["window"] for s in specs] == [1] * 4 + [4] * 4
    assert {s.method for s in specs} == {"mm-align"}
    assert all(s.config["epochs"] == 2 for s in specs)
    assert len({s.fingerprint() for s in specs}) == 8
    with pytest.raises(ConfigError, match="must not set window"):
        expand_window_sweep("synthetic", "t:v", 0.1, 1, "1,2", {"window": 3})


def _row(window, seed, mae_a, mae_b, source="text", victim="vision"):
    result = {
        "A": {"test": {"mae": mae_a, "acc2_nonzero": 0.5}, "valid": {"mae": 9.0}, "best_epoch": 2},
        "B": {"test": {"mae": mae_b, "acc2_nonzero": 0.6}},
    }
    config = {"epochs": 2} if window is None else {"epochs": 2, "window": window}
    return {
        "source": source,
        "victim": victim,
        "p": 0.1,
        "seed": seed,
        "config": config,
        "result": result,
    }


def test_summary_hand_computed():
    rows = [
        _row(4, 0, 1.0, 2.0),
        _row(4, 1, 1.4, 2.0),
        _row(4, 2, float("nan"), 2.0),
        _row(1, 0, 3.0, 1.0),
        _row(None, 0, 0.5, 0.5),  # no window in config: default 8
        _row(1, 0, 7.0, 7.0, source="vision", victim="audio"),
    ]
    points = window_sweep_summary(rows, metrics=["mae"])
    a_tv = [q for q in points if q.setting == "A" and q.source == "text"]
    assert [q.window for q in a_tv] == [1, 4, 8]
    four = a_tv[1]
    assert math.isclose(four.mean, 1.2) and four.n == 2  # NaN seed left out
    assert math.isclose(four.std, math.sqrt(0.08))  # sample std of (1.0, 1.4)
    assert a_tv[0].std == 0.0 and a_tv[0].n == 1
    assert points[-1].source == "vision"  # T->V before V->A (paper order)
    valid = window_sweep_summary(rows, split="valid")
    assert {(q.setting, q.metric, q.mean) for q in valid if q.window == 4} == {("A", "mae", 9.0)}


def test_summary_errors():
    with pytest.raises(ConfigError, match="at least one finished sweep run"):
        window_sweep_summary([])
    with pytest.raises(ConfigError, match="for metrics \\['f1'\\]"):
        window_sweep_summary([_row(1, 0, 1.0, 1.0)], metrics=["f1"])
    with pytest.raises(ConfigError, match="`split` must be one of"):
        window_sweep_summary([_row(1, 0, 1.0, 1.0)], split="train")


def test_csv_and_plot(tmp_path):
    rows = [_row(k, s, 1.0 + 0.01 * k + 0.1 * s, 1.1) for k in (1, 2, 4, 8) for s in (0, 1)]
    points = window_sweep_summary(rows)
    path = write_sweep_csv(points, tmp_path / "out" / "sweep.csv")
    with open(path) as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == len(points) == 4 * 2 * 2
    first = next(r for r in read if r["setting"] == "A" and r["metric"] == "mae")
    assert (first["window"], first["n"], first["p"]) == ("1", "2", "0.1")
    assert math.isclose(float(first["mean"]), 1.06)
    png = plot_sweep(points, tmp_path / "fig.png", settings=["A"])
    image = matplotlib.image.imread(png)
    assert image.shape[:2] == (400, 600) and image[..., :3].std() > 0.01
    with pytest.raises(ConfigError, match="`metric` must be one of"):
        plot_sweep(points, tmp_path / "x.png", metric="f1_weighted")
    with pytest.raises(ConfigError, match="`setting` must be one of"):
        plot_sweep(points, tmp_path / "x.png", settings=["C"])
    with pytest.raises(ConfigError, match="at least one sweep point"):
        plot_sweep([], tmp_path / "x.png")


def test_point_is_frozen():
    point = SweepPoint("text", "vision", 0.1, "A", "test", 1, "mae", 1.0, 0.0, 1)
    with pytest.raises(AttributeError):
        point.mean = 2.0
