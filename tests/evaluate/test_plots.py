import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from mmalign.evaluate.plots import (
    plot_alignment_heatmaps,
    plot_training_curves,
    plot_window_sweep,
)
from mmalign.validation import ConfigError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, width_px, height_px):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (height_px, width_px)
    # not a blank canvas: something was drawn
    assert image[..., :3].std() > 0.01


def banded(size, window, rng):
    offsets = np.abs(np.arange(size)[:, None] - np.arange(size)[None, :])
    return np.where(offsets <= window, rng.random((size, size)), 0.0)


def test_window_sweep_writes_png(tmp_path):
    windows = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    values = {
        "t->v": [1.0, 0.9, 0.8, 0.75, 0.78, 0.8, 0.82, 0.83, 0.85],
        "v->t": [1.2, 1.1, 1.0, np.nan, 0.98, 1.0, 1.01, 1.05, 1.1],
    }
    std = {"t->v": [0.05] * 9}
    out = plot_window_sweep(
        windows,
        values,
        "MAE",
        tmp_path / "sub" / "sweep.png",
        std=std,
        direction="min",
        title="Fig. 4",
    )
    assert out == tmp_path / "sub" / "sweep.png"
    assert_png(out, 600, 400)


def test_window_sweep_accepts_zero_window_and_dpi(tmp_path):
    out = plot_window_sweep(
        [0, 1, 3], {"f1": [0.5, 0.6, 0.55]}, "F1", tmp_path / "w.png", figsize=(3.0, 2.0), dpi=50
    )
    assert_png(out, 150, 100)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([1, 2, 4], {"a": [1.0, 2.0]}), {}, r"`values\['a'\]` must have one value per window"),
        (([1, 2, 4], {"a": [1.0, 2.0, 3.0]}), {"std": {"b": [0, 0, 0]}}, r"`std` keys"),
        (([1, 2, 4], {"a": [1, 2, 3]}), {"std": {"a": [0.1]}}, r"`std\['a'\]` must have"),
        (([4, 2, 1], {"a": [1.0, 2.0, 3.0]}), {}, "strictly increasing"),
        (([], {"a": []}), {}, "non-empty"),
        (([1.5, 2.0], {"a": [1.0, 2.0]}), {}, "integers >= 0"),
        (([1, 2], {}), {}, "at least one curve"),
        (([1, 2], {"a": [1.0, 2.0]}), {"direction": "up"}, r"`direction` must be one of"),
        (([1, 2], {"a": [1.0, 2.0]}), {"dpi": 0}, r"`dpi` must be a number > 0"),
    ],
)
def test_window_sweep_errors(tmp_path, args, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        plot_window_sweep(*args, "MAE", tmp_path / "x.png", **kwargs)
    assert not (tmp_path / "x.png").exists()


def test_bad_suffix(tmp_path):
    with pytest.raises(ConfigError, match=r"`out_path` must end in .png"):
        plot_window_sweep([1, 2], {"a": [1.0, 2.0]}, "MAE", tmp_path / "x.pdf")


def test_alignment_heatmaps_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    predicted = np.stack([banded(20, 8, rng) for _ in range(5)])  # (N, S, S)
    ot = banded(20, 8, rng)  # (S, S)
    out = plot_alignment_heatmaps(predicted, ot, tmp_path / "fig5.png", window=8)
    assert_png(out, 900, 400)
    out = plot_alignment_heatmaps(ot, ot, tmp_path / "fig5b.png", figsize=(6, 3), dpi=80)
    assert_png(out, 480, 240)


@pytest.mark.parametrize(
    ("predicted", "ot", "kwargs", "match"),
    [
        (np.ones((4, 5)), np.ones((4, 5)), {}, r"`predicted` must have shape \(S, S\)"),
        (np.ones((4, 4)), np.ones((5, 5)), {}, r"`ot` must have the size of `predicted`"),
        (np.ones((4, 4)), np.ones(4), {}, r"`ot` must have shape \(S, S\) or \(N, S, S\)"),
        (np.full((3, 3), np.nan), np.ones((3, 3)), {}, "finite values only"),
        (np.ones((3, 3)), np.ones((3, 3)), {"window": -1}, r"`window` must be an integer >= 0"),
    ],
)
def test_alignment_heatmaps_errors(tmp_path, predicted, ot, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        plot_alignment_heatmaps(predicted, ot, tmp_path / "x.png", **kwargs)


def make_history(task="regression"):
    metric = "mae" if task == "regression" else "f1_weighted"
    history = []
    for epoch in range(1, 7):
        warm = epoch <= 2
        record = {"epoch": epoch, "warmup": warm, "lr": {"backbone": 1e-3}, "seconds": 0.1}
        if warm:
            record["warmup/main"] = 1.0 / epoch
        else:
            record["complete/main"] = 0.8 / epoch
            record["complete/fitter"] = 0.1 / epoch
            record["missing/main"] = 0.9 / epoch
        record["valid_A"] = {metric: 1.0 - 0.05 * epoch, "corr": 0.1 * epoch}
        record["valid_B"] = {metric: 0.9 - 0.04 * epoch, "corr": 0.1 * epoch}
        history.append(record)
    return history


def loop_history():
    """History as the training loop writes history.json (json.loads of it).

    Two warm-up epochs, then MAE best at epoch 4 for A and epoch 5 for B; epoch 1 has a
    better A value but is warm-up.
    """
    history = [
        {
            "epoch": epoch,
            "warmup": True,
            "warmup/backbone": loss,
            "valid_A": {"mae": mae_a, "corr": 0.1, "acc7": 0.2},
            "valid_B": {"mae": mae_b, "corr": 0.1, "acc7": 0.2},
            "lr": {"backbone": 0.001},
            "seconds": 2.0,
        }
        for epoch, loss, mae_a, mae_b in [(1, 0.9, 0.5, 1.2), (2, 0.7, 1.1, 1.1)]
    ]
    for epoch, (mae_a, mae_b) in enumerate([(0.9, 1.0), (0.8, 0.95), (0.85, 0.9), (0.95, 0.92)], 3):
        history.append(
            {
                "epoch": epoch,
                "warmup": False,
                "complete/backbone": 0.5 / epoch,
                "complete/main": 0.45 / epoch,
                "missing/backbone": 0.6 / epoch,
                "complete/fitter": 0.003 / epoch,
                "complete/ot_unconverged": 0.0,
                "valid_A": {"mae": mae_a, "corr": 0.4, "acc7": 0.3},
                "valid_B": {"mae": mae_b, "corr": 0.4, "acc7": 0.3},
                "lr": {"backbone": 0.001, "fitter": 0.01},
                "seconds": 2.1,
            }
        )
    return history


def lines_by_label(axes):
    return {line.get_label(): line for line in axes.get_lines()}


def test_training_curves_figure_from_loop_history():
    figure = plot_training_curves(loop_history(), title="mm-align t->v p=0.1 seed 0")
    assert isinstance(figure, Figure)
    loss_axes, metric_axes = figure.axes
    assert figure.get_suptitle() == "mm-align t->v p=0.1 seed 0"
    assert loss_axes.get_xlabel() == metric_axes.get_xlabel() == "epoch"
    assert loss_axes.get_ylabel() == "training loss"
    assert metric_axes.get_ylabel() == "validation MAE"
    losses = lines_by_label(loss_axes)
    assert sorted(losses) == [
        "complete/backbone",
        "complete/fitter",
        "complete/main",
        "missing/backbone",
        "warmup/backbone",
    ]  # one line per loss; the ot_unconverged rate is not a loss
    np.testing.assert_allclose(losses["complete/main"].get_xdata(), [1, 2, 3, 4, 5, 6])
    assert np.isnan(losses["complete/main"].get_ydata()[:2]).all()  # gap in warm-up
    assert loss_axes.get_yscale() == "log"  # 0.9 .. 0.0005: more than two decades
    metrics = lines_by_label(metric_axes)
    np.testing.assert_allclose(metrics["setting A"].get_ydata(), [0.5, 1.1, 0.9, 0.8, 0.85, 0.95])
    # best epoch per setting, warm-up epochs excluded (as the loop selects)
    best_a, best_b = metrics["best A: epoch 4"], metrics["best B: epoch 5"]
    assert (best_a.get_xdata()[0], best_a.get_ydata()[0]) == (4.0, 0.8)
    assert (best_b.get_xdata()[0], best_b.get_ydata()[0]) == (5.0, 0.9)
    assert best_a.get_marker() == "*"
    # warm-up epochs 1-2 shaded in both panels
    for axes in (loss_axes, metric_axes):
        (span,) = [p for p in axes.patches if p.get_label() == "warm-up"]
        x0, x1 = span.get_x(), span.get_x() + span.get_width()
        assert (x0, x1) == pytest.approx((0.5, 2.5))


def test_training_curves_best_for_higher_is_better_and_all_warmup():
    figure = plot_training_curves(loop_history(), metric="acc7")
    assert figure.axes[1].get_ylabel() == "validation Acc-7"
    # acc7 ties from epoch 3 on: the first best epoch, like the loop's strict improvement
    assert "best A: epoch 3" in lines_by_label(figure.axes[1])
    figure = plot_training_curves(loop_history()[:2])  # only warm-up: the loop keeps the last
    assert "best A: epoch 2" in lines_by_label(figure.axes[1])


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_training_curves_writes_png(tmp_path, task):
    figure = plot_training_curves(make_history(task), tmp_path / "curves.png")
    assert isinstance(figure, Figure)
    assert_png(tmp_path / "curves.png", 1000, 400)
    label = "MAE" if task == "regression" else "F1"
    assert figure.axes[1].get_ylabel() == f"validation {label}"


def test_training_curves_classification_acc_only():
    history = [
        {"epoch": e, "complete/main": 1.0 / e, "valid_A": {"acc": a}}
        for e, a in [(1, 0.5), (2, 0.7), (3, 0.6)]
    ]
    figure = plot_training_curves(history)
    assert figure.axes[1].get_ylabel() == "validation Acc"
    assert "best A: epoch 2" in lines_by_label(figure.axes[1])
    assert figure.axes[0].get_yscale() == "linear"


def test_training_curves_options(tmp_path):
    figure = plot_training_curves(
        make_history(), tmp_path / "c.png", metric="corr", losses=["complete/main"], dpi=50
    )
    assert_png(tmp_path / "c.png", 500, 200)
    assert list(lines_by_label(figure.axes[0])) == ["complete/main"]
    # losses only (no validation records) still draws
    history = [{"epoch": 1, "complete/main": 0.5}, {"epoch": 2, "complete/main": 0.4}]
    plot_training_curves(history, tmp_path / "d.png", dpi=50)
    assert_png(tmp_path / "d.png", 500, 200)


@pytest.mark.parametrize(
    ("history", "kwargs", "match"),
    [
        ([], {}, "at least one epoch record"),
        ([{"loss": 1.0}], {}, r"`history\[0\]` must be a dict with an 'epoch' key"),
        (make_history(), {"metric": "acc7"}, r"`metric` must be one of \['corr', 'mae'\]"),
        (make_history(), {"losses": ["train/main"]}, r"`losses` must be among \["),
        (make_history(), {"out_path": "x.pdf"}, r"`out_path` must end in .png"),
    ],
)
def test_training_curves_errors(tmp_path, history, kwargs, match):
    kwargs = {"out_path": tmp_path / "x.png", **kwargs}
    with pytest.raises(ConfigError, match=match):
        plot_training_curves(history, **kwargs)
    assert not (tmp_path / "x.png").exists()
