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
