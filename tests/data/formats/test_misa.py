import pickle

import numpy as np
import pytest

from mmalign.data.formats import detect_format, load_dataset, misa
from mmalign.validation import DataError


def test_word_ids_become_embedding_rows_and_modalities_share_the_word_axis(tmp_path, fmt):
    folder, lists, emb = fmt.write_misa(tmp_path / "mosi")
    assert detect_format(folder) == "misa"
    assert detect_format(folder / "train.pkl") == "misa"
    assert detect_format(folder / "embedding_and_mapping.pt") == "misa"
    ds = misa.load(folder)
    assert ds.feature_dims == {"text": 300, "vision": 47, "audio": 74}
    for stem, split_name in misa.SPLIT_FILES.items():
        split, items = ds.splits[split_name], lists[stem]
        for i, ((words, visual, acoustic, _), label, segment) in enumerate(items):
            n = len(words)
            for m in ("text", "vision", "audio"):
                assert split.lengths[m][i] == n
                assert not split.features[m][i, n:].any()
            np.testing.assert_array_equal(
                split.features["text"][i, :n], emb[np.asarray(words, dtype=np.int64)]
            )
            if n:
                np.testing.assert_array_equal(split.features["vision"][i, :n], visual)
                np.testing.assert_array_equal(split.features["audio"][i, :n], acoustic)
            assert split.labels[i] == label[0, 0]
            assert split.ids[i] == segment
    assert ds.splits["train"].lengths["text"][1] == 0  # the all-`sp` segment is kept, empty


def test_mosei_labels_take_the_sentiment_column(tmp_path, fmt):
    folder, lists, _ = fmt.write_misa(tmp_path, mosei=True)
    ds = load_dataset(folder)
    expected = [label[0, 0] for (_, label, _) in lists["test"]]
    np.testing.assert_array_equal(ds.splits["test"].labels, np.float32(expected))
    assert ds.feature_dims["vision"] == 35


def test_missing_embedding_file(tmp_path, fmt):
    folder = fmt.write_misa(tmp_path)[0]
    (folder / "embedding_and_mapping.pt").unlink()
    with pytest.raises(DataError, match=r"has train\.pkl but neither embedding_and_mapping\.pt"):
        load_dataset(folder)
    with pytest.raises(
        DataError,
        match=r"test_missing_embedding_file0: missing \S+/embedding_and_mapping\.pt \(looked for "
        r"train\.pkl, dev\.pkl, test\.pkl and embedding_and_mapping\.pt in ",
    ):
        load_dataset(folder, format="misa")


def _set(stem, k, item):
    def mutate(lists):
        lists[stem][k] = item(lists[stem][k])

    return mutate


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            _set(
                "dev", 0, lambda it: ((it[0][0], it[0][1][:-1], it[0][2], it[0][3]), it[1], it[2])
            ),
            r"dev\.pkl: sample 0 has \d+ words but \d+ visual",
        ),
        (
            _set("train", 0, lambda it: ((it[0][0] + 1000, *it[0][1:]), it[1], it[2])),
            r"train\.pkl: word ids must be integers in \[0, 40\)",
        ),
        (
            _set("test", 2, lambda it: (it[0], np.zeros((1, 3), np.float32), it[2])),
            r"test\.pkl: labels must be \(1, 1\) or \(1, 7\) arrays",
        ),
        (_set("test", 0, lambda it: it[0]), r"test\.pkl: sample 0 is not \(\(words, visual"),
        (
            _set("dev", 1, lambda it: (([], *it[0][1:]), it[1], it[2])),
            r"dev\.pkl: sample 1 has no word-id array .*MMIM",
        ),
        (lambda lists: lists.update(dev=[]), r"dev\.pkl: the split is empty"),
    ],
)
def test_bad_misa_files(tmp_path, fmt, mutate, match):
    folder = fmt.write_misa(tmp_path, mutate=mutate)[0]
    with pytest.raises(DataError, match=match):
        load_dataset(folder)


def test_missing_split_file_and_non_list(tmp_path, fmt):
    folder = fmt.write_misa(tmp_path)[0]
    (folder / "test.pkl").write_bytes(pickle.dumps({"not": "a list"}))
    with pytest.raises(DataError, match=r"test\.pkl: expected a list of samples; got dict"):
        load_dataset(folder)
    (folder / "test.pkl").unlink()
    with pytest.raises(DataError, match=r"0: missing \S+/test\.pkl \(looked for train\.pkl, "):
        load_dataset(folder)
    with pytest.raises(DataError, match=r"dev\.pkl: missing \S+/test\.pkl \(looked for "):
        load_dataset(folder / "dev.pkl", format="misa")  # the error names the path given


def test_mosei_label_key_picks_an_emotion_column(tmp_path, fmt):
    folder, lists, _ = fmt.write_misa(tmp_path, mosei=True)
    ds = load_dataset(folder, label_key="anger")
    assert ds.task == "regression"
    expected = [label[0, 3] for (_, label, _) in lists["dev"]]
    np.testing.assert_array_equal(ds.splits["valid"].labels, np.float32(expected))
    default = load_dataset(folder, task="regression", label_key="sentiment")
    expected = [label[0, 0] for (_, label, _) in lists["test"]]
    np.testing.assert_array_equal(default.splits["test"].labels, np.float32(expected))


def test_misa_label_choice_errors(tmp_path, fmt):
    folder = fmt.write_misa(tmp_path)[0]  # MOSI: one label column
    with pytest.raises(
        DataError,
        match=r"train\.pkl: `label_key` must be one of \['sentiment'\] \(the label keys of this "
        r"file\); got 'happy'\.$",
    ):
        load_dataset(folder, label_key="happy")
    with pytest.raises(
        DataError,
        match=r"train\.pkl: `task` must be 'regression' for this file \(its labels: "
        r"`sentiment` \(regression\)\); got 'classification'\.$",
    ):
        load_dataset(folder, task="classification")
