import json

import numpy as np
import pytest

from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.data.splits import MissingSplit, make_missing_split, n_present
from mmalign.validation import ConfigError, DataError


def _dataset(n_train=100, n_valid=30, n_test=41, modalities=("text", "vision", "audio")):
    def split(n, offset):
        return Split(
            features={m: np.zeros((n, 3, 2), np.float32) for m in modalities},
            lengths={m: np.full(n, 3, np.int64) for m in modalities},
            labels=np.zeros(n, np.float32),
            ids=np.array([f"s{offset + i}" for i in range(n)], dtype=object),
        )

    return MultimodalDataset(
        splits={
            "train": split(n_train, 0),
            "valid": split(n_valid, 1000),
            "test": split(n_test, 2000),
        },
        task="regression",
        name="toy",
    ).validate()


@pytest.mark.parametrize(
    "p, n, expected",
    [
        (0.1, 100, 10),
        (0.5, 41, 20),
        (0.1, 1284, 128),
        (0.1, 1230, 123),
        (0.3, 10, 3),
        (0.001, 50, 1),
        (1.0, 17, 17),
        (0.7, 10, 7),
    ],
)
def test_n_present_rounding(p, n, expected):
    assert n_present(p, n) == expected


def test_counts_partition_and_settings():
    ds = _dataset()
    s = make_missing_split(ds, "vision", 0.1, seed=3)
    assert s.n == {"train": 100, "valid": 30, "test": 41}
    assert len(s.train_complete) == 10 and len(s.train_missing) == 90
    assert s.train_complete.dtype == np.int64 and s.train_missing.dtype == np.int64
    assert np.all(np.diff(s.train_complete) > 0) and np.all(np.diff(s.train_missing) > 0)
    both = np.concatenate([s.train_complete, s.train_missing])
    np.testing.assert_array_equal(np.sort(both), np.arange(100))  # disjoint and covering
    train = s.present("train", "B")
    assert train.dtype == bool and train.shape == (100,)
    np.testing.assert_array_equal(np.flatnonzero(train), s.train_complete)
    np.testing.assert_array_equal(s.present("train", "A"), train)  # setting ignored for train
    for name, n in (("valid", 30), ("test", 41)):
        assert not s.present(name, "A").any() and s.present(name, "A").shape == (n,)
        assert s.present(name, "complete").all()
        assert s.present(name, "B").sum() == max(1, int(np.floor(0.1 * n + 1e-9)))
    assert s.present("valid", "B").sum() == 3 and s.present("test", "B").sum() == 4


def test_same_seed_same_samples_whatever_the_victim_or_alias():
    ds = _dataset()
    a = make_missing_split(ds, "v", 0.5, seed=7)
    b = make_missing_split(ds, "vision", 0.5, seed=7)
    c = make_missing_split(ds, "audio", 0.5, seed=7)
    assert a.victim == "vision" and c.victim == "audio"
    for other in (b, c):
        np.testing.assert_array_equal(a.train_complete, other.train_complete)
        for name in ("valid", "test"):
            np.testing.assert_array_equal(a.present(name, "B"), other.present(name, "B"))


def test_different_seeds_differ_and_smaller_p_is_nested():
    ds = _dataset()
    a = make_missing_split(ds, "t", 0.5, seed=0)
    b = make_missing_split(ds, "t", 0.5, seed=1)
    assert not np.array_equal(a.train_complete, b.train_complete)
    assert not np.array_equal(a.present("test", "B"), b.present("test", "B"))
    small = make_missing_split(ds, "t", 0.1, seed=0)
    assert set(small.train_complete) <= set(a.train_complete)


def test_train_draw_does_not_depend_on_the_test_size():
    a = make_missing_split(_dataset(n_test=41), "a", 0.5, seed=2)
    b = make_missing_split(_dataset(n_test=90), "a", 0.5, seed=2)
    np.testing.assert_array_equal(a.train_complete, b.train_complete)


def test_p_one_keeps_everything():
    s = make_missing_split(_dataset(), "audio", 1.0, seed=0)
    assert len(s.train_missing) == 0 and s.present("test", "B").all()


def test_arrays_are_read_only():
    s = make_missing_split(_dataset(), "audio", 0.5, seed=0)
    with pytest.raises(ValueError):
        s.train_complete[0] = 5
    s.present("test", "B")[0] = True  # present() hands out copies
    assert s.present("test", "B").sum() == 20


def test_save_load_round_trip(tmp_path):
    ds = _dataset()
    s = make_missing_split(ds, "vision", 0.1, seed=4)
    path = s.save(tmp_path / "split.json")
    t = MissingSplit.load(path).check_matches(ds)
    assert (t.victim, t.p, t.seed, t.n) == (s.victim, s.p, s.seed, s.n)
    np.testing.assert_array_equal(t.train_complete, s.train_complete)
    np.testing.assert_array_equal(t.train_missing, s.train_missing)
    for name in ("valid", "test"):
        np.testing.assert_array_equal(t.present(name, "B"), s.present(name, "B"))


def test_check_matches_rejects_other_sizes_or_victim(tmp_path):
    s = make_missing_split(_dataset(), "vision", 0.5, seed=0)
    with pytest.raises(
        DataError,
        match=r"drawn for split sizes .*'train': 100.* but "
        r"the dataset has",
    ):
        s.check_matches(_dataset(n_train=99))
    with pytest.raises(DataError, match=r"victim 'vision' is not a modality"):
        s.check_matches(_dataset(modalities=("text", "audio")))


def test_load_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match=r"bad\.json: cannot read the missing split"):
        MissingSplit.load(bad)
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match=r"not a missing split file"):
        MissingSplit.load(bad)
    good = make_missing_split(_dataset(), "vision", 0.5, seed=0).to_dict()
    good["train_complete"] = [3, 3, 200]
    bad.write_text(json.dumps(good))
    with pytest.raises(
        DataError,
        match=r"`train_complete` must hold sorted "
        r"distinct rows in \[0, 100\)",
    ):
        MissingSplit.load(bad)
    del good["seed"]
    bad.write_text(json.dumps(good))
    with pytest.raises(DataError, match=r"malformed missing split"):
        MissingSplit.load(bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(p=0.0), r"`p` must be in \(0, 1\]; got 0\.0\."),
        (dict(p=1.5), r"`p` must be in \(0, 1\]; got 1\.5\."),
        (dict(p="half"), r"`p` must be a float; got 'half'\."),
        (dict(victim="x"), r"`victim` must be one of \['text', 'vision', 'audio'\]; got 'x'\."),
        (dict(seed=-1), r"`seed` must be a number >= 0; got -1\."),
        (dict(seed=1.5), r"`seed` must be an integer >= 0; got 1\.5\."),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(victim="vision", p=0.5, seed=0) | kwargs
    with pytest.raises(ConfigError, match=match):
        make_missing_split(_dataset(), **args)


def test_bad_present_arguments():
    s = make_missing_split(_dataset(), "vision", 0.5, seed=0)
    with pytest.raises(ConfigError, match=r"`setting` must be one of \['A', 'B', 'complete'\]"):
        s.present("test", "C")
    with pytest.raises(
        ConfigError,
        match=r"`split_name` must be one of "
        r"\['train', 'valid', 'test'\]",
    ):
        s.present("dev", "A")
