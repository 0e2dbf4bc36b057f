import json

import numpy as np
import pytest

from mmalign.data.formats import csd, detect_format, load_dataset
from mmalign.validation import DataError


def _frames(rng, start, stop, step, width):
    edges = np.arange(start, stop + 1e-9, step)
    intervals = np.stack([edges[:-1], edges[1:]], axis=1)
    return intervals, rng.normal(size=(len(intervals), width)).astype(np.float32)


def _write_folder(fmt, folder, videos, folds=True):
    """videos: name -> dict(words, vectors, audio, vision, segments, labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    fmt.write_csd(
        folder / "CMU_MOSI_TimestampedWordVectors.csd",
        "glove_vectors",
        {v: (d["words"], d["vectors"]) for v, d in videos.items()},
    )
    fmt.write_csd(
        folder / "CMU_MOSI_TimestampedWords.csd",
        "words",
        {v: (d["words"], np.array([[b"sp"]] * len(d["words"]))) for v, d in videos.items()},
    )
    fmt.write_csd(
        folder / "CMU_MOSI_COVAREP.csd",
        "COVAREP",
        {v: d["audio"] for v, d in videos.items() if "audio" in d},
    )
    fmt.write_csd(
        folder / "CMU_MOSI_Visual_Facet_41.csd",
        "FACET_4.1",
        {v: d["vision"] for v, d in videos.items()},
    )
    fmt.write_csd(
        folder / "CMU_MOSI_Opinion_Labels.csd",
        "Opinion Segment Labels",
        {v: (d["segments"], d["labels"]) for v, d in videos.items()},
    )
    if folds:
        names = sorted(videos)
        spec = {"train": names[:-2], "dev": [names[-2]], "test": [names[-1]]}
        (folder / "folds.json").write_text(json.dumps(spec))
    return folder


def _random_video(rng, n_words=6):
    edges = np.cumsum(rng.uniform(0.2, 0.6, size=n_words + 1))
    words = np.stack([edges[:-1], edges[1:]], axis=1)
    end = float(edges[-1])
    return {
        "words": words,
        "vectors": rng.normal(size=(n_words, 300)),  # <f8 like the MOSI GloVe CSD
        "audio": _frames(rng, 0, end + 0.1, 0.01, 74),
        "vision": _frames(rng, 0, end + 0.1, 1 / 30, 47),
        "segments": np.array([[0.0, float(edges[3])], [float(edges[3]), end]]),
        "labels": rng.uniform(-3, 3, size=(2, 1)).astype("<f4"),
    }


def _hand_video():
    words = np.array([[0, 1], [1, 2], [2, 2], [2, 3], [3, 4]], float)  # [2, 2]: zero length
    vectors = np.arange(5 * 300, dtype=float).reshape(5, 300)
    audio_iv = np.array([[0, 0.5], [0.5, 1], [1, 1.5], [1.5, 2], [2, 3], [3, 4]])
    audio = np.tile(np.array([1, 3, 5, 7, 11, 13], np.float32)[:, None], (1, 74))
    audio[5, 2] = -np.inf  # COVAREP quirk
    vision_iv = np.array([[0, 2], [2, 4]], float)
    vision = np.stack([np.full(47, 2.0), np.full(47, -4.0)]).astype(np.float32)
    return {
        "words": words,
        "vectors": vectors,
        "audio": (audio_iv, audio),
        "vision": (vision_iv, vision),
        "segments": np.array([[0, 2], [2, 4], [10, 11]], float),  # the last one has no words
        "labels": np.array([[1.5], [-0.5], [2.0]], "<f4"),
    }


def test_word_aligned_segments_match_a_hand_computed_oracle(tmp_path, fmt):
    rng = np.random.default_rng(0)
    videos = {"aaa": _hand_video(), "mmm": _random_video(rng), "zzz": _random_video(rng)}
    folder = _write_folder(fmt, tmp_path / "mosi", videos)
    assert detect_format(folder) == "csd"
    with pytest.warns(UserWarning, match=r"mosi: NaN, \+inf and -inf .*\(audio: 1\)"):
        ds = csd.load(folder)
    assert ds.cleaning == {"text": 0, "vision": 0, "audio": 1}
    assert ds.feature_dims == {"text": 300, "vision": 47, "audio": 74}
    train = ds.splits["train"]
    assert train.ids.tolist() == ["aaa[0]", "aaa[1]"]  # segment 2 has no words: dropped
    np.testing.assert_array_equal(train.labels, np.float32([1.5, -0.5]))
    vectors = videos["aaa"]["vectors"]
    for m in ("text", "vision", "audio"):
        assert train.lengths[m].tolist() == [2, 2]
    np.testing.assert_array_equal(train.features["text"][0, :2], vectors[[0, 1]])
    np.testing.assert_array_equal(train.features["text"][1, :2], vectors[[3, 4]])
    # audio: word [0,1] <- frames 1, 3; [1,2] <- 5, 7; [2,3] <- 11; [3,4] <- 13 (-inf -> 0)
    np.testing.assert_allclose(train.features["audio"][0, :2, 0], [2, 6])
    np.testing.assert_allclose(train.features["audio"][1, :2, 0], [11, 13])
    assert train.features["audio"][1, 1, 2] == 0
    np.testing.assert_allclose(train.features["vision"][0, :2, 0], [2, 2])
    np.testing.assert_allclose(train.features["vision"][1, :2, 0], [-4, -4])
    assert ds.splits["valid"].ids.tolist() == ["mmm[0]", "mmm[1]"]
    assert ds.splits["test"].ids.tolist() == ["zzz[0]", "zzz[1]"]
    assert ds.splits["test"].lengths["text"].tolist() == [3, 3]


def test_word_average_oracle():
    frames = np.array([[0, 1], [1, 2], [2, 3]], float)
    values = np.array([[1.0], [3.0], [8.0]])
    out = csd.word_average(np.array([[0.5, 1.5], [0, 3], [1, 2], [7, 8]]), frames, values)
    np.testing.assert_allclose(out[:, 0], [2, 4, 3, 0])


def test_without_folds_the_split_is_a_hash_of_the_video_id(tmp_path, fmt):
    rng = np.random.default_rng(1)
    videos = {f"video{i:02d}": _random_video(rng, 4) for i in range(24)}
    folder = _write_folder(fmt, tmp_path, videos, folds=False)
    ds = load_dataset(folder)
    for s, split in ds.splits.items():
        assert {i.split("[")[0] for i in split.ids} == {v for v in videos if csd.hash_fold(v) == s}


def test_videos_missing_from_one_modality_are_dropped(tmp_path, fmt):
    rng = np.random.default_rng(2)
    videos = {v: _random_video(rng) for v in ("a", "b", "c", "d")}
    del videos["a"]["audio"]
    folder = _write_folder(fmt, tmp_path, videos)
    ds = load_dataset(folder)
    assert ds.splits["train"].ids.tolist() == ["b[0]", "b[1]"]


def _folder(fmt, tmp_path):
    rng = np.random.default_rng(3)
    return _write_folder(fmt, tmp_path / "d", {v: _random_video(rng) for v in "abc"})


def test_two_files_for_one_modality(tmp_path, fmt):
    folder = _folder(fmt, tmp_path)
    (folder / "CMU_MOSI_Visual_OpenFace_2.csd").write_bytes(
        (folder / "CMU_MOSI_Visual_Facet_41.csd").read_bytes()
    )
    with pytest.raises(DataError, match=r"several \.csd files match 'vision'"):
        load_dataset(folder)


def test_unknown_modality_name(tmp_path, fmt):
    folder = _folder(fmt, tmp_path)
    (folder / "CMU_MOSI_Mystery.csd").write_bytes(b"")
    with pytest.raises(DataError, match=r"CMU_MOSI_Mystery\.csd: cannot tell the modality"):
        load_dataset(folder)


def test_missing_labels_and_non_hdf5(tmp_path, fmt):
    folder = _folder(fmt, tmp_path)
    (folder / "CMU_MOSI_COVAREP.csd").write_bytes(b"not hdf5 at all")
    with pytest.raises(DataError, match=r"CMU_MOSI_COVAREP\.csd: not a readable HDF5"):
        load_dataset(folder)
    (folder / "CMU_MOSI_Opinion_Labels.csd").unlink()
    with pytest.raises(DataError, match=r"no labels \.csd"):
        load_dataset(folder)


def test_mismatched_features_and_intervals(tmp_path, fmt):
    folder = tmp_path / "d"
    rng = np.random.default_rng(4)
    videos = {v: _random_video(rng) for v in "abc"}
    iv, feats = videos["b"]["vision"]
    videos["b"]["vision"] = (iv, feats[:-1])
    _write_folder(fmt, folder, videos)
    with pytest.raises(DataError, match=r"Facet_41\.csd: video 'b' has \d+ feature rows but "):
        load_dataset(folder)


def test_empty_fold_asks_for_folds_json(tmp_path, fmt):
    folder = _folder(fmt, tmp_path)
    (folder / "folds.json").write_text(
        json.dumps({"train": ["a", "b", "c"], "valid": [], "test": []})
    )
    with pytest.raises(DataError, match=r"the valid split is empty .*folds\.json"):
        load_dataset(folder)


def test_label_key_picks_a_mosei_label_column(tmp_path, fmt):
    rng = np.random.default_rng(5)
    videos = {v: _random_video(rng) for v in "abc"}
    for d in videos.values():
        d["labels"] = rng.uniform(-3, 3, size=(2, 7)).astype("<f4")
    folder = _write_folder(fmt, tmp_path / "mosei", videos)
    ds = load_dataset(folder, label_key="fear")
    np.testing.assert_array_equal(ds.splits["test"].labels, videos["c"]["labels"][:, 6])
    ds = load_dataset(folder / "CMU_MOSI_COVAREP.csd")  # a file of the folder also works
    np.testing.assert_array_equal(ds.splits["test"].labels, videos["c"]["labels"][:, 0])


def test_csd_label_choice_errors(tmp_path, fmt):
    folder = _folder(fmt, tmp_path)
    with pytest.raises(
        DataError,
        match=r"Opinion_Labels\.csd: `label_key` must be one of \['sentiment'\] \(the label "
        r"keys of this file\); got 'fear'\.$",
    ):
        load_dataset(folder, label_key="fear")
    with pytest.raises(
        DataError,
        match=r"Opinion_Labels\.csd: `task` must be 'regression' for this file .*; got "
        r"'classification'\.$",
    ):
        csd.load(folder, task="classification")
