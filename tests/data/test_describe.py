import numpy as np
import pytest

from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.data.describe import describe, label_summary, length_summary


def _split(n, labels):
    return Split(
        features={
            "text": np.zeros((n, 4, 3), np.float32),
            "audio": np.zeros((n, 6, 2), np.float32),
        },
        lengths={"text": np.arange(1, n + 1, dtype=np.int64), "audio": np.full(n, 6, np.int64)},
        labels=labels,
        ids=np.array([str(i) for i in range(n)], dtype=object),
    )


def test_describe_regression_dataset():
    ds = MultimodalDataset(
        splits={
            "train": _split(4, np.float32([0, 0, 1, -1])),
            "valid": _split(2, np.float32([2, 2])),
            "test": _split(1, np.float32([0.5])),
        },
        task="regression",
        name="toy",
        source="/data/toy.pkl",
        cleaning={"audio": 7, "text": 0},
    )
    text = describe(ds)
    assert "dataset toy  (/data/toy.pkl)" in text
    assert "modalities: text (D=3), audio (D=2)" in text
    assert "train: 4 samples" in text and "valid: 2 samples" in text and "test: 1 samples" in text
    assert "len min 1 / mean 2.5 / max 4" in text  # train text lengths 1..4
    assert "labels min -1.000 / mean 0.000 / max 1.000 / std 0.707, zeros 50.0%" in text
    assert "replaced by 0 at load: audio 7" in text and "text 0" not in text


def test_describe_classification_and_no_cleaning():
    ds = MultimodalDataset(
        splits={s: _split(3, np.array([0, 2, 2], np.int64)) for s in ("train", "valid", "test")},
        task="classification",
        n_classes=3,
    )
    text = describe(ds)
    assert "task: classification (3 classes)" in text
    assert text.count("classes {0: 1, 1: 0, 2: 2}") == 3
    assert "non-finite values (NaN/inf): none" in text


def test_helpers():
    assert length_summary(np.array([2, 4])) == "len min 2 / mean 3.0 / max 4"
    assert label_summary(np.array([1], np.int64), "classification", 2) == "classes {0: 0, 1: 1}"


def test_describe_prints_the_information_budget_of_synthetic_data():
    from mmalign.data.describe import synthetic_budget
    from mmalign.data.synthetic import SyntheticConfig, information_budget, make_synthetic

    cfg = SyntheticConfig(n_train=20, n_valid=5, n_test=5, max_length=12, info_privileged=1.0)
    budget = information_budget(cfg, n_samples=200)
    text = describe(make_synthetic(cfg), budget=budget)
    assert "information budget (share of label-score variance before squashing" in text
    lines = text.splitlines()
    header = next(
        i
        for i, line in enumerate(lines)
        if line.split() == ["modalities", "oracle", "clean", "pooled"]
    )
    rows = [line.split() for line in lines[header + 1 : header + 8]]
    assert [r[0] for r in rows] == [
        "text",
        "vision",
        "audio",
        "text+vision",
        "text+audio",
        "vision+audio",
        "text+vision+audio",
    ]
    assert float(rows[0][1]) == pytest.approx(budget.oracle[("text",)], abs=1e-3)
    assert float(rows[2][3]) == pytest.approx(budget.pooled[("audio",)], abs=1e-3)
    assert "information budget" not in describe(make_synthetic(cfg))

    assert synthetic_budget("/data/mosi.pkl") is None
    parsed = synthetic_budget("synthetic:max_length=12,info_privileged=1.0", task="classification")
    assert parsed is not None and parsed.oracle[("text",)] > parsed.clean[("text",)]


def test_describe_lists_spans_and_notes():
    split = _split(2, np.float32([0, 1]))
    split.spans = {"audio_text": np.tile([0, 1], (2, 6, 1)).astype(np.int64)}
    ds = MultimodalDataset(
        splits={"train": split, "valid": _split(2, np.float32([0, 1])), "test": split},
        task="regression",
    )
    text = describe(ds, notes=["a note line"])
    assert text.count("truth spans: audio_text") == 2  # train and test, not valid
    assert text.endswith("a note line")


def test_budget_note_only_for_the_unaligned_variant():
    from mmalign.data.describe import budget_note, synthetic_budget

    assert budget_note("/data/mosi.pkl") is None and budget_note("synthetic") is None
    assert "does not apply to the unaligned variant" in budget_note("synthetic:unaligned=1")
    assert synthetic_budget("synthetic:unaligned=true") is None
