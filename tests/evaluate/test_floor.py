import numpy as np
import pytest
from sklearn.linear_model import Ridge

from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.evaluate.floor import pooled_features, sanity_floor
from mmalign.evaluate.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from mmalign.validation import ConfigError

WEIGHTS = {"text": np.array([1.5, -2.0, 0.5]), "vision": np.array([0.7, 1.0])}
DIMS = {"text": 3, "vision": 2}


def make_split(rng, n, *, garbage=0.0, task="regression", max_len=6):
    features, lengths = {}, {}
    score = np.zeros(n)
    for name, dim in DIMS.items():
        length = rng.integers(1, max_len + 1, n)
        x = rng.normal(size=(n, max_len, dim))
        valid = np.arange(max_len)[None, :] < length[:, None]
        x = np.where(valid[:, :, None], x, 0.0).astype(np.float32)
        mean = x.astype(np.float64).sum(1) / length[:, None]
        features[name] = np.where(valid[:, :, None], x, np.float32(garbage))
        lengths[name] = length.astype(np.int64)
        score = score + mean @ WEIGHTS[name]
    if task == "regression":
        labels = (score + 0.25).astype(np.float32)
    else:
        labels = np.digitize(score, [-0.4, 0.4]).astype(np.int64)  # 3 classes
    ids = np.array([f"s{i}" for i in range(n)], dtype=object)
    return Split(features, lengths, labels, ids)


def make_dataset(seed=0, *, garbage=0.0, task="regression", sizes=(120, 40, 40)):
    rng = np.random.default_rng(seed)
    splits = {
        name: make_split(rng, n, garbage=garbage, task=task)
        for name, n in zip(("train", "valid", "test"), sizes)
    }
    data = MultimodalDataset(splits, task, n_classes=3 if task == "classification" else None)
    return data.validate()


def test_pooled_features_hand_computed_with_padding_and_empty_sample():
    x = np.array(
        [[[1.0, 2.0], [3.0, -4.0], [np.nan, 7.0]], [[5.0, 5.0], [np.inf, 1.0], [1.0, 1.0]]],
        dtype=np.float32,
    )
    x_zero = np.zeros((1, 3, 2), dtype=np.float32)
    split = Split(
        {"audio": np.concatenate([x, x_zero + 9.0])},
        {"audio": np.array([2, 1, 0])},
        np.zeros(3, np.float32),
        np.array(["a", "b", "c"], dtype=object),
    )
    got = pooled_features(split, ["a"])
    expected = np.array(
        [
            [2.0, -1.0, 5.0, 10.0],  # mean of (1, 2), (3, -4); mean of squares
            [5.0, 5.0, 25.0, 25.0],  # one valid step; the inf after it is padding
            [0.0, 0.0, 0.0, 0.0],  # length 0
        ]
    )
    np.testing.assert_allclose(got, expected)


def test_pooled_features_column_order_follows_modalities():
    data = make_dataset()
    train = data.splits["train"]
    both = pooled_features(train, ["vision", "text"])
    assert both.shape == (120, 2 * 2 + 2 * 3)
    np.testing.assert_allclose(both[:, :4], pooled_features(train, ["v"]))
    np.testing.assert_allclose(both[:, 4:], pooled_features(train, ["text"]))


def test_floor_recovers_a_linear_function_of_the_mean():
    data = make_dataset()
    floor = sanity_floor(data, ["text", "vision"], alpha=1e-8)
    for split in ("valid", "test"):
        assert list(floor[split]) == list(REGRESSION_METRICS)
        assert floor[split]["mae"] < 1e-4
        assert floor[split]["corr"] > 0.9999
    assert floor["fit"] == {"alpha": 1e-8, "n_train": 120.0, "n_features": 10.0}
    # with text alone the vision part of the label is noise: the floor must get worse
    text_only = sanity_floor(data, ["t"], alpha=1e-8)
    assert text_only["test"]["mae"] > 0.1


def test_garbage_after_the_length_changes_nothing():
    clean = sanity_floor(make_dataset(3), ["text", "vision"])
    dirty = sanity_floor(make_dataset(3, garbage=1e6), ["text", "vision"])
    nan = sanity_floor(make_dataset(3, garbage=np.nan), ["text", "vision"])
    for split in ("valid", "test"):
        for name in REGRESSION_METRICS:
            assert dirty[split][name] == pytest.approx(clean[split][name], rel=1e-9)
            assert nan[split][name] == pytest.approx(clean[split][name], rel=1e-9)


def test_train_index_fits_only_the_selected_rows():
    data = make_dataset(1)
    rows = np.arange(0, 120, 2)
    # corrupt the rows left out: a floor that used them could not be exact
    data.splits["train"].labels[1::2] = 100.0
    floor = sanity_floor(data, ["text", "vision"], train_index=rows, alpha=1e-8)
    assert floor["test"]["mae"] < 1e-4
    assert floor["fit"]["n_train"] == 60.0
    mask = np.zeros(120, dtype=bool)
    mask[rows] = True
    by_mask = sanity_floor(data, ["text", "vision"], train_index=mask, alpha=1e-8)
    assert by_mask["test"] == pytest.approx(floor["test"], nan_ok=True)


def test_missing_modality_is_mean_imputed_with_an_indicator():
    data = make_dataset(2)
    test_present = np.arange(40) % 2 == 0
    # what absent samples hold must not matter
    data.splits["test"].features["vision"][~test_present] = 1e3
    present = {"vision": {"test": test_present}}
    floor = sanity_floor(data, ["text", "vision"], present=present, alpha=0.5)
    assert floor["fit"]["n_features"] == 11.0

    # in-test reference: standardise with train statistics, absent rows -> 0, indicator column
    train, test = data.splits["train"], data.splits["test"]
    x_train = np.concatenate(
        [pooled_features(train, ["text"]), pooled_features(train, ["vision"])], axis=1
    )
    x_test = np.concatenate(
        [pooled_features(test, ["text"]), pooled_features(test, ["vision"])], axis=1
    )
    mean, std = x_train.mean(0), x_train.std(0)
    z_train, z_test = (x_train - mean) / std, (x_test - mean) / std
    z_test[~test_present, 6:] = 0.0
    z_train = np.insert(z_train, 6, 1.0, axis=1)
    z_test = np.insert(z_test, 6, test_present.astype(float), axis=1)
    model = Ridge(alpha=0.5).fit(z_train, train.labels.astype(np.float64))
    expected_mae = np.abs(model.predict(z_test) - test.labels).mean()
    assert floor["test"]["mae"] == pytest.approx(expected_mae, rel=1e-9)
    # validation is listed nowhere: all present, so it stays near exact
    assert floor["valid"]["mae"] < floor["test"]["mae"]


def test_missing_in_training_uses_present_rows_for_statistics():
    data = make_dataset(4)
    train_present = np.arange(120) < 90
    data.splits["train"].features["vision"][~train_present] = np.nan
    present = {"v": {"train": train_present, "valid": np.ones(40, bool)}}
    floor = sanity_floor(data, ["text", "vision"], present=present)
    assert np.isfinite(floor["test"]["mae"])
    assert floor["test"]["mae"] < 0.1


def test_alpha_grid_is_chosen_on_validation():
    data = make_dataset(5)
    floor = sanity_floor(data, ["text", "vision"], alpha=[1e3, 1e-8, 10.0])
    assert floor["fit"]["alpha"] == 1e-8
    single = sanity_floor(data, ["text", "vision"], alpha=1e-8)
    assert floor["test"] == pytest.approx(single["test"])


def test_classification_path():
    data = make_dataset(6, task="classification", sizes=(300, 80, 80))
    floor = sanity_floor(data, ["text", "vision"], alpha=0.01)
    assert list(floor["test"]) == list(CLASSIFICATION_METRICS)
    assert floor["test"]["acc"] > 0.85
    majority = np.bincount(data.splits["test"].labels).max() / 80
    assert floor["test"]["acc"] > majority + 0.2
    # the vision-only floor misses the text part of the score
    assert sanity_floor(data, ["vision"], alpha=0.01)["test"]["acc"] < floor["test"]["acc"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"modalities": ["audio"]}, r"`modality` must be one of \['text', 'vision'\]"),
        ({"modalities": []}, "`modalities` must be a non-empty list"),
        ({"modalities": "text"}, "`modalities` must be a non-empty list"),
        ({"alpha": -1.0}, r"`alpha` must be a number > 0; got -1.0"),
        ({"alpha": []}, "`alpha` must be a number > 0 or a non-empty list"),
        ({"train_index": np.ones(5, bool)}, r"must have shape \(120,\)"),
        ({"train_index": np.array([], dtype=int)}, "at least one training sample"),
        ({"train_index": np.array([0, 500])}, r"must lie in \[0, 120\)"),
        ({"train_index": np.array([-1, 3])}, r"must lie in \[0, 120\); got range \[-1, 3\]"),
        ({"train_index": np.array([0.5])}, "1-D int indices or a bool mask"),
        ({"present": {"vision": {"test": np.ones(3, bool)}}}, r"shape \(40,\)"),
        ({"present": {"vision": {"dev": np.ones(40, bool)}}}, r"keys must be among"),
        ({"modalities": ["text"], "present": {"vision": {}}}, r"among \['text'\]"),
    ],
)
def test_errors(kwargs, match):
    data = make_dataset()
    kwargs = {"modalities": ["text", "vision"], **kwargs}
    with pytest.raises(ConfigError, match=match):
        sanity_floor(data, **kwargs)


def test_single_class_training_rows_raise():
    data = make_dataset(6, task="classification", sizes=(300, 80, 80))
    labels = data.splits["train"].labels
    rows = np.flatnonzero(labels == labels[0])
    with pytest.raises(ConfigError, match="at least 2 classes"):
        sanity_floor(data, ["text"], train_index=rows)
