import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

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
from mmalign.validation import ConfigError


def test_half_to_even_rounding_and_clipping():
    # 0.5 -> 0, 2.5 -> 2, -0.5 -> -0 == 0, 4.2 -> clip 3 -> 3
    m = regression_metrics([0.5, 2.5, -0.5, 4.2], [0.0, 2.0, 0.0, 3.0])
    assert m["acc7"] == 1.0
    # with acc5 the truth 3 is clipped to 2 and 4.2 too, 2.5 -> 2
    assert m["acc5"] == 1.0
    # 1.5 rounds to 2 (even), not to 1; 3.6 and 2.6 both clip/round to 3 under acc7
    m = regression_metrics([1.5, 3.6, -2.6], [1.0, 2.6, -2.0])
    assert m["acc7"] == pytest.approx(1 / 3)
    # acc5: 1.5 -> 2 vs 1; 3.6 -> 2 vs 2.6 -> 2; -2.6 -> -2 vs -2
    assert m["acc5"] == pytest.approx(2 / 3)


def test_nonzero_and_haszero_conventions_hand_computed():
    pred = [0.3, -0.2, 0.5, 0.4, -1.0]
    truth = [0.0, 0.0, 1.0, -1.0, 2.0]
    m = regression_metrics(pred, truth)
    # non-zero subset = samples 2, 3, 4: truth pos [T, F, T], pred pos [T, T, F]
    assert m["acc2_nonzero"] == pytest.approx(1 / 3)
    # class T: P = R = 1/2 -> F1 1/2 (support 2); class F: F1 0 (support 1)
    assert m["f1_nonzero"] == pytest.approx(1 / 3)
    # has-zero: truth >= 0 [T, T, T, F, T], pred >= 0 [T, F, T, T, F]
    assert m["acc2_haszero"] == pytest.approx(2 / 5)
    # class T: P = 2/3, R = 1/2 -> F1 4/7 with support 4; class F: F1 0 with support 1
    assert m["f1_haszero"] == pytest.approx(16 / 35)
    assert m["mae"] == pytest.approx((0.3 + 0.2 + 0.5 + 1.4 + 3.0) / 5)


def test_f1_argument_order_is_truth_then_prediction():
    pred = np.array([0.3, -0.2, 0.5, 0.4, -1.0])
    truth = np.array([0.0, 0.0, 1.0, -1.0, 2.0])
    m = regression_metrics(pred, truth)
    correct = f1_score(truth >= 0, pred >= 0, average="weighted")
    swapped = f1_score(pred >= 0, truth >= 0, average="weighted")  # MulT's order
    assert m["f1_haszero"] == pytest.approx(correct)
    assert swapped == pytest.approx(12 / 35)
    assert m["f1_haszero"] != pytest.approx(swapped)


def test_exact_zero_truth_is_dropped_only_from_nonzero_metrics():
    # a zero truth predicted negative is wrong under has-zero, invisible under non-zero
    m = regression_metrics([-0.1, 1.0], [0.0, 1.0])
    assert m["acc2_nonzero"] == 1.0
    assert m["f1_nonzero"] == 1.0
    assert m["acc2_haszero"] == 0.5
    # a tiny non-zero truth is kept (exact compare, no tolerance)
    m = regression_metrics([-0.1, 1.0], [1e-9, 1.0])
    assert m["acc2_nonzero"] == 0.5


def test_all_zero_truths_give_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = regression_metrics([0.5, -0.5, 0.0], [0.0, 0.0, 0.0])
    assert np.isnan(m["acc2_nonzero"]) and np.isnan(m["f1_nonzero"])
    assert m["acc2_haszero"] == pytest.approx(2 / 3)
    assert m["corr"] == 0.0  # constant truth


def test_constant_prediction_corr_is_zero_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = regression_metrics([0.7, 0.7, 0.7, 0.7], [1.0, -2.0, 0.5, 3.0])
        assert pearson_corr(np.full(3, 0.1), np.array([1.0, 2.0, 4.0])) == 0.0
        single = regression_metrics([1.0], [2.0])
    assert m["corr"] == 0.0
    assert single["corr"] == 0.0 and single["mae"] == 1.0


def test_agreement_with_numpy_and_sklearn():
    rng = np.random.default_rng(0)
    truth = np.round(rng.uniform(-3, 3, 200) * 3) / 3  # some exact zeros
    truth[:10] = 0.0
    pred = truth + rng.normal(0, 1.0, 200)
    m = regression_metrics(pred, truth)
    nz = truth != 0
    assert m["mae"] == pytest.approx(np.abs(pred - truth).mean())
    assert m["corr"] == pytest.approx(np.corrcoef(pred, truth)[0, 1])
    assert m["acc2_nonzero"] == pytest.approx(accuracy_score(truth[nz] > 0, pred[nz] > 0))
    assert m["f1_nonzero"] == pytest.approx(
        f1_score(truth[nz] > 0, pred[nz] > 0, average="weighted")
    )
    assert m["acc2_haszero"] == pytest.approx(accuracy_score(truth >= 0, pred >= 0))
    assert m["f1_haszero"] == pytest.approx(f1_score(truth >= 0, pred >= 0, average="weighted"))
    assert list(m) == list(REGRESSION_METRICS)
    assert all(type(v) is float for v in m.values())


def test_column_vectors_and_torch_tensors_are_accepted():
    pred = torch.tensor([[1.0], [-1.0], [0.5]], requires_grad=True)
    truth = np.array([2.0, -1.0, 0.0], dtype=np.float32)
    m = compute_metrics(pred, truth, "regression")
    assert m["mae"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    half = compute_metrics(pred.detach().to(torch.bfloat16), torch.from_numpy(truth), "regression")
    assert half["mae"] == pytest.approx(m["mae"])


def test_weighted_vs_macro_f1_on_imbalanced_classes():
    truth = [0, 0, 0, 0, 1, 1, 2]
    labels = [0, 0, 0, 1, 1, 2, 2]
    # per-class F1: class 0 = 6/7 (P 1, R 3/4), class 1 = 1/2, class 2 = 2/3 (P 1/2, R 1)
    m = classification_metrics(labels, truth)
    assert m["acc"] == pytest.approx(5 / 7)
    assert m["f1_macro"] == pytest.approx(85 / 126)
    assert m["f1_weighted"] == pytest.approx(107 / 147)
    assert list(m) == list(CLASSIFICATION_METRICS)


def test_logits_are_argmaxed():
    truth = np.array([0, 0, 0, 0, 1, 1, 2])
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    logits = np.eye(3)[labels] * 2.0 - 0.5  # (N, C) with the arg-max at `labels`
    assert compute_metrics(logits, truth, "classification") == classification_metrics(labels, truth)
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(50, 4))
    truth = rng.integers(0, 4, 50)
    m = classification_metrics(torch.from_numpy(logits), truth)
    assert m["f1_macro"] == pytest.approx(f1_score(truth, logits.argmax(1), average="macro"))
    assert m["f1_weighted"] == pytest.approx(f1_score(truth, logits.argmax(1), average="weighted"))


def test_tables_know_every_metric():
    for name in REGRESSION_METRICS + CLASSIFICATION_METRICS:
        assert METRIC_DIRECTIONS[name] in ("min", "max")
        assert METRIC_LABELS[name]
    assert METRIC_DIRECTIONS["mae"] == "min"
    for task, (name, direction) in PRIMARY_METRIC.items():
        assert METRIC_DIRECTIONS[name] == direction
        assert name in (REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: regression_metrics([1.0, 2.0], [1.0]), r"`truth` must have shape \(2,\)"),
        (lambda: regression_metrics(np.ones((2, 3)), np.ones(2)), r"`pred` must have shape"),
        (lambda: regression_metrics([], []), "at least one sample"),
        (lambda: regression_metrics([np.nan, 1.0], [0.0, 1.0]), "`pred` must hold finite"),
        (lambda: regression_metrics([0.0, 1.0], [np.inf, 1.0]), "`truth` must hold finite"),
        (lambda: classification_metrics(np.ones((3, 1)), [0, 1, 0]), "C >= 2"),
        (lambda: classification_metrics([0.5, 1.0], [0, 1]), "integer labels"),
        (lambda: classification_metrics([0, 1], [0.5, 1.0]), "integer class labels"),
        (lambda: classification_metrics(np.ones((3, 2)), [0, 1]), r"`truth` must have shape"),
        (lambda: classification_metrics(np.ones((2, 2, 2)), [0, 1]), r"\(N, C\) or \(N,\)"),
        (
            lambda: compute_metrics([1.0], [1.0], "ranking"),
            r"`task` must be one of \['regression', 'classification'\]; got 'ranking'",
        ),
    ],
)
def test_errors(call, match):
    with pytest.raises(ConfigError, match=match):
        call()
