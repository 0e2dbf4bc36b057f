import numpy as np
import pytest

from mmalign.data.formats import detect_format, load_dataset, meld
from mmalign.validation import DataError


def test_meld_folder_is_seven_class_classification_with_own_lengths(tmp_path, fmt):
    folder, lists, emb = fmt.write_meld(tmp_path / "meld")
    assert detect_format(folder) == "meld"
    ds = meld.load(folder)
    assert ds.task == "classification" and ds.n_classes == 7 and ds.output_dim == 7
    assert ds.feature_dims == {"text": 300, "vision": 2048, "audio": 768}
    for stem, split_name in (("train", "train"), ("dev", "valid"), ("test", "test")):
        split, items = ds.splits[split_name], lists[stem]
        assert split.labels.dtype == np.int64
        assert split.labels.tolist() == [it["label"] for it in items]
        for i, it in enumerate(items):
            lt, lv, la = len(it["token_ids"]), len(it["video_features"]), len(it["audio_features"])
            assert (
                split.lengths["text"][i],
                split.lengths["vision"][i],
                split.lengths["audio"][i],
            ) == (lt, lv, la)
            np.testing.assert_array_equal(split.features["text"][i, :lt], emb[it["token_ids"]])
            np.testing.assert_array_equal(split.features["vision"][i, :lv], it["video_features"])
            assert not split.features["audio"][i, la:].any()
        assert split.ids[0] == f"{split_name}_0"


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda ls: ls["train"][0].pop("audio_features"),
            r"train\.pkl: sample 0 lacks key\(s\) \['audio_features'\]",
        ),
        (lambda ls: ls["dev"][1].update(label=9), r"\[valid\]: class labels must lie in \[0, 7\)"),
        (lambda ls: ls["test"][0].update(label=[1, 2]), r"test\.pkl: each `label` must be one int"),
        (
            lambda ls: ls["test"][1].update(video_features=np.zeros((2, 5))),
            r"test\.pkl: `video_features` rows have different widths \[5, 2048\]",
        ),
        (lambda ls: ls["train"].__setitem__(2, "oops"), r"train\.pkl: sample 2 must be a dict"),
    ],
)
def test_bad_meld_files(tmp_path, fmt, mutate, match):
    folder = fmt.write_meld(tmp_path, mutate=mutate)[0]
    with pytest.raises(DataError, match=match):
        load_dataset(folder)


def test_embedding_must_be_a_matrix(tmp_path, fmt):
    import pickle

    folder = fmt.write_meld(tmp_path)[0]
    (folder / "embedding.p").write_bytes(pickle.dumps(np.zeros(3)))
    with pytest.raises(DataError, match=r"embedding\.p: expected a numeric \(V, D\) array"):
        load_dataset(folder)


def test_meld_has_no_label_choice(tmp_path, fmt):
    folder = fmt.write_meld(tmp_path / "meld")[0]
    assert load_dataset(folder, task="classification", label_key="label").n_classes == 7
    with pytest.raises(
        DataError,
        match=r"meld: `task` must be 'classification' for this file \(its labels: `label` "
        r"\(classification\)\); got 'regression'\.$",
    ):
        load_dataset(folder, task="regression")
    with pytest.raises(
        DataError, match=r"meld: `label_key` must be one of \['label'\] .*; got 'emotion'\.$"
    ):
        meld.load(folder, label_key="emotion")


def test_meld_whole_number_float_labels_and_non_integer_labels(tmp_path, fmt):
    def as_float(ls):
        for items in ls.values():
            for it in items:
                it["label"] = float(it["label"])

    folder = fmt.write_meld(tmp_path / "a", mutate=as_float)[0]
    assert load_dataset(folder).splits["train"].labels.tolist() == [0, 1, 2, 3]
    folder = fmt.write_meld(tmp_path / "b", mutate=lambda ls: ls["dev"][1].update(label=2.5))[0]
    with pytest.raises(
        DataError, match=r"dev\.pkl: `label` must be whole-number class labels; got 2\.5 at"
    ):
        load_dataset(folder)


def test_missing_meld_file_names_the_path_given(tmp_path, fmt):
    folder = fmt.write_meld(tmp_path / "meld")[0]
    (folder / "embedding.p").unlink()
    with pytest.raises(
        DataError,
        match=r"meld/test\.pkl: missing \S+/embedding\.p \(looked for train\.pkl, dev\.pkl, "
        r"test\.pkl and embedding\.p in ",
    ):
        load_dataset(folder / "test.pkl", format="meld")
