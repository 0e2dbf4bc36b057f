import pickle
import warnings

import numpy as np
import pytest

from mmalign.data.formats import detect_format, load_dataset, mmsa
from mmalign.validation import ConfigError, DataError


def _check_valid_first(loaded, original, length, start=None):
    """loaded[i, :len] == original[i, start:start+len]; zeros after."""
    for i in range(loaded.shape[0]):
        s = 0 if start is None else start[i]
        np.testing.assert_array_equal(
            loaded[i, : length[i]],
            np.nan_to_num(original[i, s : s + length[i]], nan=0, posinf=0, neginf=0),
        )
        assert not loaded[i, length[i] :].any()


def test_aligned_file_shares_the_bert_mask_length(tmp_path, fmt):
    path, data, truth = fmt.write_mmsa(tmp_path, aligned=True)
    assert detect_format(path) == "mmsa"
    with pytest.warns(UserWarning, match=r"aligned_50\.pkl: NaN, \+inf and -inf.*\(audio: 3\)"):
        ds = mmsa.load(path)
    assert ds.task == "regression" and ds.n_classes is None
    assert ds.feature_dims == {"text": 768, "audio": 5, "vision": 20}
    assert ds.cleaning == {"text": 0, "audio": 3, "vision": 0}  # one -inf per split
    for s in ("train", "valid", "test"):
        split, raw = ds.splits[s], data[s]
        for m in ("text", "audio", "vision"):
            np.testing.assert_array_equal(split.lengths[m], truth[s]["text"])
            assert split.lengths[m].dtype == np.int64 and split.features[m].dtype == np.float32
            _check_valid_first(split.features[m], raw[m], truth[s]["text"])
        np.testing.assert_array_equal(split.labels, raw["regression_labels"])
        assert split.ids.dtype == object and split.ids[0] == raw["id"][0]
    assert ds.splits["train"].labels[0] == 0.0
    assert ds.splits["train"].features["audio"][0, 0, 1] == 0.0  # the -inf


def test_nan_and_inf_are_zeroed_counted_per_modality_in_one_warning(tmp_path, fmt):
    def spoil(d):
        d["train"]["vision"][1, 0, 0] = np.nan
        d["test"]["text"][0, 0, 3] = np.inf

    path = fmt.write_mmsa(tmp_path, mutate=spoil)[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(path)
    assert len(caught) == 1
    assert "(text: 1, audio: 3, vision: 1)" in str(caught[0].message)
    assert ds.cleaning == {"text": 1, "audio": 3, "vision": 1}
    assert ds.splits["train"].features["vision"][1, 0, 0] == 0
    assert ds.splits["test"].features["text"][0, 0, 3] == 0
    assert all(np.isfinite(x).all() for sp in ds.splits.values() for x in sp.features.values())


def test_unaligned_file_uses_stored_lengths_and_finds_the_padding_side(tmp_path, fmt, quiet):
    path, data, truth = fmt.write_mmsa(tmp_path, aligned=False)
    ds = load_dataset(path)
    for s in ("train", "valid", "test"):
        split, raw, t = ds.splits[s], data[s], truth[s]
        _check_valid_first(split.features["text"], raw["text"], t["text"])
        for m in ("audio", "vision"):
            np.testing.assert_array_equal(split.lengths[m], t[m])
            steps = raw[m].shape[1]
            start = np.where(t["left"], steps - np.asarray(t[m]), 0)
            _check_valid_first(split.features[m], raw[m], t[m], start)
    assert ds.splits["train"].features["vision"].shape == (4, 500, 20)


def test_sims_file(tmp_path, fmt, quiet):
    path, data, truth = fmt.write_mmsa(tmp_path, aligned=False, sims=True)
    assert path.name == "unaligned_39.pkl" and detect_format(path) == "mmsa"
    ds = load_dataset(path)
    assert ds.feature_dims == {"text": 768, "audio": 33, "vision": 709}
    np.testing.assert_array_equal(ds.splits["test"].lengths["text"], truth["test"]["text"])


def test_unknown_file_name_is_sniffed(tmp_path, fmt, quiet):
    path, _, _ = fmt.write_mmsa(tmp_path, name="my_features.pkl")
    assert detect_format(path) == "mmsa"
    assert len(load_dataset(path).splits["train"]) == 4


@pytest.mark.parametrize(
    ("mutate", "aligned", "match"),
    [
        (lambda d: d.pop("valid"), True, r"missing key\(s\) \['valid'\]"),
        (lambda d: d["train"].pop("audio"), True, r"\[train\]: missing key\(s\) \['audio'\]"),
        (
            lambda d: d["test"].update(vision=d["test"]["vision"][:2]),
            True,
            r"\[test\]: modality 'vision' has 2 samples, labels have 3",
        ),
        (
            lambda d: d["train"].update(regression_labels=np.zeros((4, 2))),
            True,
            r"`regression_labels` must have shape \(4,\)",
        ),
        (
            lambda d: d["train"].update(audio_lengths=[999, 1, 1, 1]),
            False,
            r"`audio_lengths` of sample 0 is 999 but the padded array holds 375 steps",
        ),
        (
            lambda d: d["valid"].pop("vision_lengths"),
            False,
            r"missing key\(s\) \['vision_lengths'\]",
        ),
        (
            lambda d: d["train"].update(text_bert=np.zeros((4, 2, 50))),
            True,
            r"`text_bert` must have shape \(4, 3, 50\)",
        ),
        (
            lambda d: d["valid"].update({k: v[:0] for k, v in d["valid"].items()}),
            True,
            r"\[valid\]: the split is empty",
        ),
    ],
)
def test_bad_files_raise_one_clear_error_naming_the_file(tmp_path, fmt, mutate, aligned, match):
    path = fmt.write_mmsa(tmp_path, aligned=aligned, mutate=mutate)[0]
    with pytest.raises(DataError, match=match) as err:
        load_dataset(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_not_a_split_dict(tmp_path):
    path = tmp_path / "aligned_50.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataError, match=r"aligned_50\.pkl: expected a dict; got list"):
        load_dataset(path)


# ------------------------------------------------------------- label choice (task / label_key)
def _only_classification(d):
    for split in d.values():
        split.pop("regression_labels")


def test_file_with_only_classification_labels_loads_as_classification(tmp_path, fmt, quiet):
    path, data, _ = fmt.write_mmsa(tmp_path, mutate=_only_classification)
    for ds in (load_dataset(path), load_dataset(path, format="mmsa"), mmsa.load(path)):
        assert ds.task == "classification" and ds.n_classes == 3 and ds.output_dim == 3
        for s in ("train", "valid", "test"):
            labels = ds.splits[s].labels
            assert labels.dtype == np.int64
            np.testing.assert_array_equal(labels, data[s]["classification_labels"])


def test_classification_only_file_with_another_name_is_recognised(tmp_path, fmt, quiet):
    path = fmt.write_mmsa(tmp_path, name="features.pkl", mutate=_only_classification)[0]
    assert detect_format(path) == "mmsa"
    assert load_dataset(path).task == "classification"
    assert load_dataset(path, format="mmsa").n_classes == 3


def test_both_label_kinds_default_to_regression_and_task_or_label_key_choose(tmp_path, fmt, quiet):
    path, data, _ = fmt.write_mmsa(tmp_path)
    assert load_dataset(path).task == "regression"
    assert load_dataset(path, task="regression").task == "regression"
    for ds in (
        load_dataset(path, task="classification"),
        load_dataset(path, label_key="classification_labels"),
        load_dataset(path, task="classification", label_key="classification_labels"),
        mmsa.load(path, task="classification"),
    ):
        assert ds.task == "classification" and ds.n_classes == 3
        np.testing.assert_array_equal(
            ds.splits["test"].labels, data["test"]["classification_labels"]
        )
    ds = load_dataset(path, label_key="regression_labels")
    np.testing.assert_array_equal(ds.splits["train"].labels, data["train"]["regression_labels"])


def test_sniffed_pickle_takes_the_label_choice(tmp_path, fmt, quiet):
    path = fmt.write_mmsa(tmp_path, name="both.pkl")[0]
    assert load_dataset(path, task="classification").task == "classification"


def test_sims_unimodal_labels_by_label_key(tmp_path, fmt, quiet):
    path, data, _ = fmt.write_mmsa(tmp_path, aligned=False, sims=True)
    ds = load_dataset(path, label_key="regression_labels_T")
    assert ds.task == "regression"
    np.testing.assert_array_equal(ds.splits["valid"].labels, data["valid"]["regression_labels_T"])


def test_unknown_label_key_lists_the_keys_of_the_file(tmp_path, fmt):
    path = fmt.write_mmsa(tmp_path)[0]
    with pytest.raises(
        DataError,
        match=r"aligned_50\.pkl: `label_key` must be one of \['regression_labels', "
        r"'classification_labels'\] \(the label keys of this file\); got 'sentiment'\.$",
    ) as err:
        load_dataset(path, label_key="sentiment")
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    cls_only = fmt.write_mmsa(tmp_path, name="c.pkl", mutate=_only_classification)[0]
    with pytest.raises(
        DataError, match=r"c\.pkl: `label_key` must be one of \['classification_labels'\] "
    ):
        load_dataset(cls_only, label_key="regression_labels")


def test_task_that_the_labels_contradict(tmp_path, fmt):
    path = fmt.write_mmsa(tmp_path, mutate=_only_classification)[0]
    with pytest.raises(
        DataError,
        match=r"aligned_50\.pkl: `task` must be 'classification' for this file \(its labels: "
        r"`classification_labels` \(classification\)\); got 'regression'\.$",
    ):
        load_dataset(path, task="regression")
    both = fmt.write_mmsa(tmp_path, name="unaligned_50.pkl")[0]
    with pytest.raises(
        DataError,
        match=r"unaligned_50\.pkl: `task` must be 'regression' with `label_key` "
        r"'regression_labels' \(labels of this file: `regression_labels` \(regression\), "
        r"`classification_labels` \(classification\)\); got 'classification'\.$",
    ):
        load_dataset(both, task="classification", label_key="regression_labels")


def test_task_and_label_key_arguments_are_checked(tmp_path, fmt):
    path = fmt.write_mmsa(tmp_path)[0]
    with pytest.raises(
        ConfigError,
        match=r"`task` must be one of \[None, 'regression', 'classification'\]; got 'ranking'",
    ):
        load_dataset(path, task="ranking")
    with pytest.raises(ConfigError, match=r"`label_key` must be a non-empty str or None; got 3"):
        load_dataset(path, label_key=3)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (0.5, r"\[train\]: `classification_labels` must be whole-number class labels; got 0\.5 "),
        (np.nan, r"\[train\]: `classification_labels` must be whole-number class labels; got nan"),
        (-1.0, r"\[train\]: `classification_labels` must be class labels >= 0; got -1 at sample 1"),
    ],
)
def test_bad_class_labels(tmp_path, fmt, value, match):
    def spoil(d):
        _only_classification(d)
        d["train"]["classification_labels"][1] = value

    path = fmt.write_mmsa(tmp_path, mutate=spoil)[0]
    with pytest.raises(DataError, match=match) as err:
        load_dataset(path)
    assert str(path) in str(err.value)


def test_whole_number_float_and_int_class_labels(tmp_path, fmt, quiet):
    def as_int(d):
        _only_classification(d)
        for split in d.values():
            split["classification_labels"] = split["classification_labels"].astype(np.int32)

    ds = load_dataset(fmt.write_mmsa(tmp_path, mutate=as_int)[0])
    assert ds.splits["train"].labels.dtype == np.int64


def test_a_split_without_the_chosen_labels(tmp_path, fmt, quiet):
    def drop(d):
        d["valid"].pop("classification_labels")

    path = fmt.write_mmsa(tmp_path, mutate=drop)[0]
    assert load_dataset(path, task="regression").task == "regression"  # not needed
    with pytest.raises(DataError, match=r"\[valid\]: missing key\(s\) \['classification_labels'\]"):
        load_dataset(path, task="classification")
