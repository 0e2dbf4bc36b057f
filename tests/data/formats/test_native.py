import numpy as np
import pytest

from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.data.formats import detect_format, load_dataset, native, save_native
from mmalign.validation import DataError


def _dataset(task="regression"):
    rng = np.random.default_rng(0)
    splits = {}
    for s, n in (("train", 5), ("valid", 2), ("test", 3)):
        lengths = rng.integers(1, 6, size=n)
        x = rng.normal(size=(n, 6, 3)).astype(np.float32)
        x[np.arange(6)[None, :] >= lengths[:, None]] = 0
        sensor = rng.normal(size=(n, 4, 2)).astype(np.float32)
        labels = (
            rng.integers(0, 3, size=n)
            if task == "classification"
            else rng.normal(size=n).astype(np.float32)
        )
        ids = np.array([f"{s}-{i}" for i in range(n)], dtype=object)
        splits[s] = Split(
            features={"text": x, "gyro": sensor},
            lengths={"text": lengths.astype(np.int64), "gyro": np.full(n, 4, np.int64)},
            labels=labels,
            ids=ids,
        )
    return MultimodalDataset(
        splits=splits, task=task, n_classes=3 if task == "classification" else None, name="mine"
    )


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_save_then_load_round_trips(tmp_path, task):
    original = _dataset(task)
    folder = save_native(original, tmp_path / "mine")
    assert sorted(p.name for p in folder.iterdir()) == ["test.npz", "train.npz", "valid.npz"]
    assert detect_format(folder) == "native" and detect_format(folder / "valid.npz") == "native"
    loaded = load_dataset(folder)
    assert loaded.task == task and loaded.n_classes == original.n_classes
    assert loaded.modalities == ("text", "gyro")  # any modality name is kept
    for s in ("train", "valid", "test"):
        a, b = original.splits[s], loaded.splits[s]
        for m in a.features:
            np.testing.assert_array_equal(a.features[m], b.features[m])
            np.testing.assert_array_equal(a.lengths[m], b.lengths[m])
        np.testing.assert_array_equal(a.labels, b.labels)
        assert b.labels.dtype == (np.int64 if task == "classification" else np.float32)
        assert b.ids.dtype == object and b.ids.tolist() == a.ids.tolist()


def test_docs_example_from_plain_numpy(tmp_path):
    # the example of docs/data.md, short names t/a mapped to text/audio
    out = tmp_path / "my_data"
    out.mkdir()
    for split, n in [("train", 8), ("valid", 2), ("test", 2)]:
        np.savez(
            out / f"{split}.npz",
            x_t=np.random.rand(n, 20, 300).astype("float32"),
            len_t=np.full(n, 20),
            x_a=np.random.rand(n, 20, 74).astype("float32"),
            len_a=np.full(n, 20),
            labels=np.random.uniform(-3, 3, n).astype("float32"),
            ids=np.array([f"{split}{i}" for i in range(n)]),
            task="regression",
        )
    ds = load_dataset(out)
    assert ds.feature_dims == {"text": 300, "audio": 74}


def _write(folder, split="train", **changes):
    save_native(_dataset(), folder)
    with np.load(folder / f"{split}.npz") as z:
        arrays = {k: z[k] for k in z.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(folder / f"{split}.npz", **arrays)


@pytest.mark.parametrize(
    ("split", "changes", "match"),
    [
        ("train", {"labels": None}, r"train\.npz: missing key `labels`"),
        (
            "valid",
            {"len_audo": np.ones(2, int)},
            r"valid\.npz: unknown modality 'audo' in `len_audo`",
        ),
        ("test", {"weights": np.ones(3)}, r"test\.npz: unknown key\(s\) \['weights'\]"),
        (
            "train",
            {"len_text": np.full(5, 99)},
            r"train\.npz: `len_text` of sample 0 is 99 but the padded array holds 6 steps",
        ),
        (
            "train",
            {"labels": np.zeros((5, 1), np.float32)},
            r"train\.npz: `labels` must have shape \(N,\); got \(5, 1\)",
        ),
        (
            "valid",
            {"x_gyro": np.zeros((3, 4, 2), np.float32)},
            r"valid\.npz: modality 'gyro' has 3 samples, labels have 2",
        ),
        ("test", {"task": np.array("ranking")}, r"`task` must be one of \['regression', "),
        (
            "valid",
            {
                "task": np.array("classification"),
                "labels": np.zeros(2, np.int64),
                "n_classes": np.array(2),
            },
            r"valid\.npz: task 'classification' differs",
        ),
        ("test", {"ids": np.array(["a"])}, r"test\.npz: `ids` must have shape \(3,\)"),
        (
            "train",
            {"ids": np.array([{"a": 1}] * 5, dtype=object)},
            r"train\.npz: unreadable npz \(object arrays are not allowed\)",
        ),
    ],
)
def test_bad_native_files(tmp_path, split, changes, match):
    _write(tmp_path, split, **changes)
    with pytest.raises(DataError, match=match):
        load_dataset(tmp_path)


def test_empty_split_missing_file_and_truncated_file(tmp_path):
    folder = tmp_path / "d"
    save_native(_dataset(), folder)
    ds = load_dataset(folder)
    empty = ds.splits["test"].subset(np.zeros(3, bool))
    with np.load(folder / "test.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(
        {
            "x_text": empty.features["text"],
            "len_text": empty.lengths["text"],
            "x_gyro": empty.features["gyro"],
            "len_gyro": empty.lengths["gyro"],
            "labels": empty.labels,
            "ids": np.array([], dtype=str),
        }
    )
    np.savez(folder / "test.npz", **arrays)
    with pytest.raises(DataError, match=r"\[test\]: the split is empty"):
        load_dataset(folder)
    data = (folder / "valid.npz").read_bytes()
    (folder / "valid.npz").write_bytes(data[:40])
    with pytest.raises(DataError, match=r"valid\.npz: not a readable \.npz file"):
        load_dataset(folder)
    (folder / "valid.npz").unlink()
    with pytest.raises(
        DataError,
        match=r"/d: missing native split file\(s\) valid\.npz or dev\.npz in \S+/d \(looked "
        r"for train\.npz, valid\.npz or dev\.npz, test\.npz\)\.",
    ):
        native.load(folder)


# ------------------------------------------------- <name>_train.npz / _valid (_dev) / _test.npz
def _prefixed(folder, name="mosi", valid="valid", task="regression"):
    """save_native, then rename the files to <name>_<split>.npz (valid as ``valid``/``dev``)."""
    save_native(_dataset(task), folder)
    for split in ("train", "valid", "test"):
        stem = valid if split == "valid" else split
        (folder / f"{split}.npz").rename(folder / f"{name}_{stem}.npz")
    return folder


@pytest.mark.parametrize("valid", ["valid", "dev"])
def test_per_split_files_with_a_name_prefix(tmp_path, valid):
    folder = _prefixed(tmp_path / "data", valid=valid)
    original = _dataset()
    given = [
        folder,
        folder / "mosi_train.npz",
        folder / f"mosi_{valid}.npz",
        folder / "mosi_test.npz",
        folder / "mosi",
        tmp_path / "data" / "mosi_",
    ]
    for path in given:
        assert detect_format(path) == "native", path
        for ds in (load_dataset(path), load_dataset(path, format="native"), native.load(path)):
            assert ds.name == "mosi"
            for s in ("train", "valid", "test"):
                np.testing.assert_array_equal(ds.splits[s].labels, original.splits[s].labels)


def test_plain_layout_accepts_dev_for_valid(tmp_path):
    folder = save_native(_dataset(), tmp_path / "d")
    (folder / "valid.npz").rename(folder / "dev.npz")
    assert len(load_dataset(folder).splits["valid"]) == 2
    assert len(load_dataset(folder / "dev.npz").splits["valid"]) == 2


def test_missing_prefixed_split_names_the_path_given_and_what_was_looked_for(tmp_path):
    folder = _prefixed(tmp_path / "data")
    (folder / "mosi_valid.npz").unlink()
    for path in (folder / "mosi_train.npz", folder / "mosi", folder):
        with pytest.raises(DataError) as err:
            load_dataset(path)
        message = str(err.value)
        assert message.startswith(f"{path}: missing native split file(s) ")
        assert "mosi_valid.npz or mosi_dev.npz in" in message
        assert "(looked for mosi_train.npz, mosi_valid.npz or mosi_dev.npz, mosi_test.npz)" in (
            message
        )
        assert "\n" not in message and "/train.npz" not in message


def test_folder_with_two_prefixed_datasets(tmp_path):
    folder = _prefixed(tmp_path / "data")
    _prefixed(tmp_path / "other", name="mosei")
    for f in (tmp_path / "other").iterdir():
        f.rename(folder / f.name)
    with pytest.raises(
        DataError,
        match=r"data: holds several native datasets \(mosei_train\.npz, mosi_train\.npz\); "
        r"pass one of their files or its prefix",
    ):
        load_dataset(folder)
    assert load_dataset(folder / "mosei").name == "mosei"
    assert load_dataset(folder / "mosi_test.npz").name == "mosi"


def test_npz_that_is_no_split_file_and_a_prefix_that_is_nothing(tmp_path):
    save_native(_dataset(), tmp_path)
    (tmp_path / "train.npz").rename(tmp_path / "features.npz")
    with pytest.raises(
        DataError,
        match=r"features\.npz: not a native dataset: looked for train\.npz, valid\.npz \(or "
        r"dev\.npz\), test\.npz, or <name>_train\.npz, ",
    ):
        load_dataset(tmp_path / "features.npz")
    with pytest.raises(
        DataError,
        match=r"/mosi: path does not exist \(nor is it the prefix of a native mosi_train\.npz\)",
    ):
        load_dataset(tmp_path / "mosi")
    with pytest.raises(DataError, match=r"/mosi: not a native dataset: path does not exist; "):
        native.load(tmp_path / "mosi")


def test_native_task_and_label_key_are_checked_against_the_files(tmp_path):
    folder = save_native(_dataset("classification"), tmp_path / "c")
    assert load_dataset(folder, task="classification", label_key="labels").n_classes == 3
    with pytest.raises(
        DataError,
        match=r"c/train\.npz: `task` must be 'classification' for this file \(its labels: "
        r"`labels` \(classification\)\); got 'regression'\.$",
    ):
        load_dataset(folder, task="regression")
    with pytest.raises(
        DataError,
        match=r"c/train\.npz: `label_key` must be one of \['labels'\] \(the label keys of this "
        r"file\); got 'y'\.$",
    ):
        native.load(folder, label_key="y")


def test_native_class_labels_may_be_whole_number_floats(tmp_path):
    folder = save_native(_dataset("classification"), tmp_path / "c")
    with np.load(folder / "train.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["labels"] = arrays["labels"].astype(np.float32)
    np.savez(folder / "train.npz", **arrays)
    ds = load_dataset(folder)
    assert ds.splits["train"].labels.dtype == np.int64
    arrays["labels"][0] = 0.5
    np.savez(folder / "train.npz", **arrays)
    with pytest.raises(
        DataError, match=r"train\.npz: `labels` must be whole-number class labels; got 0\.5 at"
    ):
        load_dataset(folder)


# --- ground-truth spans (span_<a>_<b>)


def _with_spans(task="regression"):
    ds = _dataset(task)
    for split in ds.splits.values():
        n, text_len = len(split), split.lengths["text"]
        steps = np.arange(6)[None, :]  # text steps
        # text step t -> gyro step min(t, 3); (-1, -1) past the text length
        start = np.minimum(steps, 3).repeat(n, axis=0)  # (N, 6)
        text_gyro = np.stack([start, start + 1], axis=2)  # (N, 6, 2)
        text_gyro[steps.repeat(n, axis=0) >= text_len[:, None]] = -1
        gyro_text = np.stack(
            [np.zeros((n, 4), int), np.maximum(text_len, 1)[:, None].repeat(4, 1)], 2
        )
        split.spans = {"text_gyro": text_gyro.astype(np.int64), "gyro_text": gyro_text}
    return ds


def test_spans_round_trip(tmp_path):
    original = _with_spans()
    folder = save_native(original, tmp_path / "mine")
    with np.load(folder / "train.npz") as z:
        assert {"span_text_gyro", "span_gyro_text"} <= set(z.files)
    loaded = load_dataset(folder)
    for s in ("train", "valid", "test"):
        a, b = original.splits[s].spans, loaded.splits[s].spans
        assert set(b) == {"text_gyro", "gyro_text"}
        for key in a:
            assert b[key].dtype == np.int64
            np.testing.assert_array_equal(a[key], b[key])
    # files without spans load as before, with no spans
    assert load_dataset(save_native(_dataset(), tmp_path / "plain")).splits["train"].spans == {}


def test_synthetic_spans_round_trip_and_survive_subset(tmp_path):
    from mmalign.data.synthetic import SyntheticConfig, make_synthetic

    original = make_synthetic(SyntheticConfig(n_train=12, n_valid=4, n_test=4, max_length=12))
    loaded = load_dataset(save_native(original, tmp_path / "syn"))
    for s in ("train", "valid", "test"):
        a, b = original.splits[s].spans, loaded.splits[s].spans
        assert len(a) == 6 and set(a) == set(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    sub = loaded.splits["train"].subset(np.array([3, 1]))
    np.testing.assert_array_equal(
        sub.spans["audio_text"], original.splits["train"].spans["audio_text"][[3, 1]]
    )


def test_spans_with_short_modality_names_get_full_names(tmp_path):
    out = tmp_path / "short"
    out.mkdir()
    for split, n in [("train", 3), ("valid", 2), ("test", 2)]:
        frames = np.arange(4) // 2  # audio frame f belongs to word f // 2
        np.savez(
            out / f"{split}.npz",
            x_t=np.ones((n, 2, 3), np.float32),
            len_t=np.full(n, 2),
            x_a=np.ones((n, 4, 1), np.float32),
            len_a=np.full(n, 4),
            span_a_t=np.repeat(np.stack([frames, frames + 1], 1)[None], n, axis=0),
            span_text_audio=np.repeat(np.array([[[0, 2], [2, 4]]]), n, axis=0),
            labels=np.zeros(n, np.float32),
            ids=np.array([f"{split}{i}" for i in range(n)]),
            task="regression",
        )
    spans = load_dataset(out).splits["train"].spans
    assert set(spans) == {"audio_text", "text_audio"}
    assert spans["audio_text"][0].tolist() == [[0, 1], [0, 1], [1, 2], [1, 2]]
    with np.load(out / "valid.npz") as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(out / "valid.npz", span_t_text=np.zeros((2, 2, 2), int), **arrays)
    with pytest.raises(DataError, match=r"valid\.npz: `span_t_text` names modality 'text' twice"):
        load_dataset(out)
    arrays["span_audio_t"] = arrays["span_a_t"]
    np.savez(out / "valid.npz", **arrays)
    with pytest.raises(
        DataError, match=r"valid\.npz: spans of 'audio' onto 'text' are stored twice"
    ):
        load_dataset(out)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        (
            "span_text_gyro",
            np.zeros((5, 5, 2), np.int64),
            r"`span_text_gyro` must have shape \(N, L_a, 2\) = \(5, 6, 2\); got \(5, 5, 2\)",
        ),
        (
            "span_text_gyro",
            np.zeros((5, 6, 2), np.float32),
            r"`span_text_gyro` must be an integer array",
        ),
        (
            "span_gyro_text",
            np.full((5, 4, 2), 7),
            r"`span_gyro_text` values must lie in \[-1, L_b=6\]; got range \[7, 7\]",
        ),
        (
            "span_gyro_text",
            np.full((5, 4, 2), -3),
            r"`span_gyro_text` values must lie in \[-1, L_b=6\]",
        ),
        (
            "span_gyro_text",
            np.full((5, 4, 2), 2),
            r"`span_gyro_text` must hold start < end on known entries; got \[2, 2\] at sample 0, step 0",
        ),
        (
            "span_gyro_text",
            np.tile([0, -1], (5, 4, 1)),
            r"`span_gyro_text` must hold -1 in both start and end or in neither",
        ),
        (
            "span_text_audio",
            np.zeros((5, 6, 2), np.int64),
            r"`span_text_audio`: span key 'text_audio' must be '<a>_<b>'",
        ),
        (
            "span_text_text",
            np.zeros((5, 6, 2), np.int64),
            r"`span_text_text`: .* for two different modalities",
        ),
    ],
)
def test_bad_span_arrays(tmp_path, key, value, match):
    save_native(_with_spans(), tmp_path)
    with np.load(tmp_path / "train.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays[key] = value
    np.savez(tmp_path / "train.npz", **arrays)
    with pytest.raises(DataError, match=r"train\.npz: .*" + match):
        load_dataset(tmp_path)
