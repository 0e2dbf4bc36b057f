import numpy as np
import pytest

from mmalign.data.formats import detect_format, load_dataset, mult
from mmalign.validation import DataError


def test_aligned_left_padded_file_moves_valid_steps_first(tmp_path, fmt):
    path, data, truth = fmt.write_mult(tmp_path, aligned=True)
    assert detect_format(path) == "mult"
    with pytest.warns(UserWarning, match=r"mosi_data\.pkl: .*\(audio: 3\)"):
        ds = mult.load(path)
    assert ds.feature_dims == {"text": 300, "audio": 5, "vision": 20}
    for s in ("train", "valid", "test"):
        split, raw, t = ds.splits[s], data[s], truth[s]
        for m in ("text", "audio", "vision"):
            np.testing.assert_array_equal(split.lengths[m], t["text"])  # one time axis
            for i, n in enumerate(t["text"]):
                expected = np.nan_to_num(raw[m][i, 50 - n :], neginf=0).astype(np.float32)
                np.testing.assert_array_equal(split.features[m][i, :n], expected)
                assert not split.features[m][i, n:].any()
        np.testing.assert_array_equal(split.labels, raw["labels"][:, 0, 0])
        assert split.labels.shape == (len(split),) and split.labels.dtype == np.float32
        # MOSI ids: bytes (N, 3) with a unique column 0
        assert split.ids.tolist() == [r[0].decode() for r in raw["id"]]


def test_noalign_file_gets_a_length_per_modality(tmp_path, fmt, quiet):
    path, data, truth = fmt.write_mult(tmp_path, aligned=False)
    assert path.name == "mosi_data_noalign.pkl"
    ds = load_dataset(path)
    split = ds.splits["train"]
    assert split.features["audio"].shape == (4, 375, 5)
    assert split.features["vision"].shape == (4, 500, 20)
    for m in ("text", "audio", "vision"):
        np.testing.assert_array_equal(split.lengths[m], truth["train"][m])
        n = truth["train"][m][1]
        np.testing.assert_array_equal(split.features[m][1, :n], data["train"][m][1, -n:])


def test_ids_with_repeated_video_are_joined():
    rows = np.array([["v", "0.0", "1.5"], ["v", "1.5", "3.0"]])
    assert mult.mult_ids(rows, 2, "f").tolist() == ["v|0.0|1.5", "v|1.5|3.0"]


def test_iemocap_multilabel_is_refused(tmp_path, fmt):
    path = fmt.write_mult(tmp_path, iemocap=True)[0]
    with pytest.raises(
        DataError,
        match=r"iemocap_data\.pkl \[train\]: `labels` of shape "
        r"\(4, 4, 2\) are IEMOCAP multi-label",
    ):
        load_dataset(path)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["valid"].pop("labels"), r"\[valid\]: missing key\(s\) \['labels'\]"),
        (
            lambda d: d["train"].update(labels=np.zeros((5, 1, 1), np.float32)),
            r"\[train\]: modality 'text' has 4 samples, labels have 5",
        ),
        (
            lambda d: d["train"].update(labels=np.zeros((4, 2, 1), np.float32)),
            r"`labels` must have shape \(4,\), \(4, 1\) or \(4, 1, 1\); got \(4, 2, 1\)",
        ),
        (lambda d: d["test"].update(audio=np.zeros((3, 50))), r"`audio` must have 3 axes"),
        (
            lambda d: d["test"].update(labels=np.full((3, 1, 1), np.nan, np.float32)),
            r"`labels` holds 3 non-finite value",
        ),
    ],
)
def test_bad_mult_files(tmp_path, fmt, mutate, match):
    path = fmt.write_mult(tmp_path, mutate=mutate)[0]
    with pytest.raises(DataError, match=match) as err:
        load_dataset(path)
    assert str(path) in str(err.value)


def test_mult_has_no_label_choice(tmp_path, fmt, quiet):
    path = fmt.write_mult(tmp_path)[0]
    assert load_dataset(path, task="regression", label_key="labels").task == "regression"
    with pytest.raises(
        DataError,
        match=r"mosi_data\.pkl: `task` must be 'regression' for this file \(its labels: "
        r"`labels` \(regression\)\); got 'classification'\.$",
    ):
        load_dataset(path, task="classification")
    with pytest.raises(
        DataError,
        match=r"mosi_data\.pkl: `label_key` must be one of \['labels'\] \(the label keys of "
        r"this file\); got 'regression_labels'\.$",
    ):
        mult.load(path, label_key="regression_labels")
    sniffed = fmt.write_mult(tmp_path, name="other.pkl")[0]
    with pytest.raises(DataError, match=r"other\.pkl: `task` must be 'regression' for this"):
        load_dataset(sniffed, task="classification")
