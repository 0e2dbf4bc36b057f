import json
import re

import numpy as np
import pytest

from mmalign.data.dataset import SPLIT_NAMES, MultimodalDataset, Split
from mmalign.data.missingness import (
    RandomMissingness,
    SplitMissingness,
    burst_drops,
    draw_missingness,
    pattern_names,
    short_name,
)
from mmalign.data.synthetic import SyntheticConfig, make_synthetic
from mmalign.validation import ConfigError, DataError

MODALITIES = ("text", "vision", "audio")


def _dataset(sizes=(50, 10, 10), width=6, modalities=MODALITIES, min_length=1):
    """Zero features of width 1; each split's lengths drawn from its own stream (by split name)."""
    splits = {}
    for k, (name, n) in enumerate(zip(SPLIT_NAMES, sizes)):
        rng = np.random.default_rng([7, k])
        splits[name] = Split(
            features={m: np.zeros((n, width, 1), np.float32) for m in modalities},
            lengths={
                m: rng.integers(min_length, width + 1, n).astype(np.int64) for m in modalities
            },
            labels=np.zeros(n, np.float32),
            ids=np.array([f"{name}{i}" for i in range(n)], dtype=object),
        )
    return MultimodalDataset(splits, "regression", name="hand").validate()


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(SyntheticConfig(n_train=60, n_valid=20, n_test=20, max_length=12))


def _runs(dropped):
    """Lengths of the runs of True in each row of ``dropped`` (N, L), and whether each ends before L."""
    padded = np.pad(dropped.astype(np.int8), ((0, 0), (1, 1)))  # (N, L+2)
    edges = np.diff(padded, axis=1)  # (N, L+1)
    _, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    return ends - starts, ends < dropped.shape[1]


# ---------------------------------------------------------------- draw_missingness: presence


@pytest.mark.parametrize("rate", [0.3, 0.7, 0.95])
def test_every_sample_keeps_a_modality(rate):
    draw = draw_missingness(_dataset((400, 100, 100)), rate, seed=3)
    for s in draw.splits.values():
        assert s.present.dtype == bool and s.present.shape == (len(s), 3)
        assert s.present.any(1).all()


def test_the_kept_modality_of_the_fallback_is_uniform():
    n, rate = 5000, 0.95
    draw = draw_missingness(_dataset((n, 5, 5), width=2), rate, seed=1)
    present = draw.splits["train"].present
    # P(all three missing) = 0.857: almost every sample has exactly the one the rule kept
    single = present.sum(1) == 1
    assert single.mean() > 0.98
    counts = present[single].sum(0)  # (K,)
    expected = single.sum() / 3
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 20.0  # df = 2: p < 5e-5 under uniformity
    share = 1 - rate + rate**3 / 3  # present by the draw, or kept by the rule
    std = np.sqrt(share * (1 - share) / n)
    np.testing.assert_allclose(present.mean(0), share, atol=5 * std)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.6])
def test_missing_share_per_split_and_modality_is_the_rate(rate):
    n = 5000
    draw = draw_missingness(_dataset((n, n, n), width=2), rate, seed=0)
    # the kept-one rule restores one of K modalities of the samples that lost all K
    expected = rate - rate**3 / 3
    std = np.sqrt(expected * (1 - expected) / n)
    for name, s in draw.splits.items():
        missing = 1.0 - s.present.mean(0)  # (K,)
        assert np.all(np.abs(missing - expected) < 5 * std), (name, missing, expected)


def test_rate_zero_keeps_everything(synthetic):
    draw = draw_missingness(synthetic, 0.0, seed=4)
    assert draw.missing_rate == 0.0 and draw.frame_drop == 0.0
    for s in draw.splits.values():
        assert s.present.all()
        assert not any(d.any() for d in s.dropped.values())


def test_same_seed_same_draw_other_seed_other_draw(synthetic):
    a = draw_missingness(synthetic, 0.4, frame_drop=0.3, seed=5)
    b = draw_missingness(synthetic, 0.4, frame_drop=0.3, seed=5)
    c = draw_missingness(synthetic, 0.4, frame_drop=0.3, seed=6)
    for name in SPLIT_NAMES:
        np.testing.assert_array_equal(a.splits[name].present, b.splits[name].present)
        for m in MODALITIES:
            np.testing.assert_array_equal(a.splits[name].dropped[m], b.splits[name].dropped[m])
    assert not np.array_equal(a.splits["train"].present, c.splits["train"].present)
    assert not np.array_equal(a.splits["train"].dropped["text"], c.splits["train"].dropped["text"])


def test_each_split_is_drawn_from_its_own_streams():
    a = draw_missingness(_dataset((80, 10, 30)), 0.4, frame_drop=0.3, seed=2)
    b = draw_missingness(_dataset((80, 25, 5)), 0.4, frame_drop=0.3, seed=2)
    c = draw_missingness(_dataset((120, 10, 30)), 0.4, frame_drop=0.3, seed=2)
    # train: same size and lengths in a and b; valid and test: same in a and c
    for x, y, name in ((a, b, "train"), (a, c, "valid"), (a, c, "test")):
        np.testing.assert_array_equal(x.splits[name].present, y.splits[name].present)
        for m in MODALITIES:
            np.testing.assert_array_equal(x.splits[name].dropped[m], y.splits[name].dropped[m])
    # the splits themselves differ from each other (not one stream reused per split)
    assert not np.array_equal(a.splits["valid"].present, a.splits["test"].present[:10])


def test_frame_drop_does_not_change_presence(synthetic):
    plain = draw_missingness(synthetic, 0.5, frame_drop=0.0, seed=8)
    drops = draw_missingness(synthetic, 0.5, frame_drop=0.4, drop_burst=2.0, seed=8)
    for name in SPLIT_NAMES:
        np.testing.assert_array_equal(plain.splits[name].present, drops.splits[name].present)
    assert any(d.any() for d in drops.splits["train"].dropped.values())


def test_drops_only_inside_present_modalities(synthetic):
    draw = draw_missingness(synthetic, 0.5, frame_drop=0.4, seed=1)
    for name, s in draw.splits.items():
        split = synthetic.splits[name]
        for k, m in enumerate(MODALITIES):
            d = s.dropped[m]
            assert d.shape == split.features[m].shape[:2] and d.dtype == bool
            inside = np.arange(d.shape[1])[None, :] < split.lengths[m][:, None]  # (N, L)
            assert not (d & ~inside).any()
            assert not d[~s.present[:, k]].any()
            # a present modality keeps a step
            kept = (inside & ~d).sum(1)
            assert np.all(kept[s.present[:, k] & (split.lengths[m] > 0)] >= 1)


# ------------------------------------------------------------------------------ burst_drops


def test_burst_share_inside_lengths_and_none_outside():
    share, burst, width = 0.2, 3.0, 220
    rng = np.random.default_rng(0)
    lengths = rng.integers(50, 201, 2000)
    dropped = burst_drops(np.random.default_rng(1), lengths, width, share, burst)
    assert dropped.shape == (2000, width) and dropped.dtype == bool
    inside = np.arange(width)[None, :] < lengths[:, None]  # (N, L)
    assert not (dropped & ~inside).any()
    # steps of one sample are correlated: inflate the binomial variance by (1 + lambda) / (1 - lambda)
    start = share / (burst * (1 - share))
    lam = 1 - start - 1 / burst
    std = np.sqrt(share * (1 - share) / inside.sum() * (1 + lam) / (1 - lam))
    assert abs(dropped[inside].mean() - share) < 5 * std


@pytest.mark.parametrize("burst", [1.0, 3.0, 8.0])
def test_mean_burst_length_is_the_configured_burst(burst):
    share, width, n = 0.2, 400, 500
    dropped = burst_drops(np.random.default_rng(2), np.full(n, width), width, share, burst)
    runs, closed = _runs(dropped)
    runs = runs[closed]  # a run cut by the sequence end is shorter than its burst
    assert len(runs) > 1000
    std = np.sqrt(burst * (burst - 1) / len(runs))  # geometric with mean `burst`
    assert abs(runs.mean() - burst) < 5 * std + 1e-9
    if burst == 1.0:
        assert np.all(runs == 1)


def test_zero_share_drops_nothing():
    dropped = burst_drops(np.random.default_rng(0), np.array([5, 3, 0]), 5, 0.0, 3.0)
    assert dropped.shape == (3, 5) and not dropped.any()


class _ZeroRng:
    """Every uniform is 0: every step of every sample is dropped by the chain."""

    def random(self, shape):
        return np.zeros(shape)


def test_a_sequence_dropped_whole_keeps_its_middle_step():
    lengths = np.array([1, 2, 3, 4, 7, 0, 8])
    dropped = burst_drops(_ZeroRng(), lengths, 8, 0.5, 3.0)
    inside = np.arange(8)[None, :] < lengths[:, None]  # (N, L)
    expected = inside.copy()
    for i, n in enumerate(lengths):
        if n:
            expected[i, n // 2] = False
    np.testing.assert_array_equal(dropped, expected)


def test_share_at_its_maximum_keeps_a_step_per_sequence():
    burst = 3.0
    share = burst / (burst + 1)  # the chain never stays kept
    lengths = np.random.default_rng(0).integers(1, 5, 3000)
    dropped = burst_drops(np.random.default_rng(4), lengths, 6, share, burst)
    inside = np.arange(6)[None, :] < lengths[:, None]  # (N, L)
    kept = inside & ~dropped
    assert np.all(kept.sum(1) >= 1)
    # many short sequences were dropped whole and kept only their middle step
    rows = np.nonzero(kept.sum(1) == 1)[0]
    middle = kept[rows, lengths[rows] // 2]
    assert middle.sum() > 300


@pytest.mark.parametrize("share, burst", [(0.6, 1.0), (0.8, 3.0), (0.95, 10.0)])
def test_share_too_large_for_the_burst_names_frame_drop(share, burst):
    with pytest.raises(
        ConfigError, match=r"`frame_drop` must be <= drop_burst / \(drop_burst \+ 1\)"
    ):
        burst_drops(np.random.default_rng(0), np.array([4, 4]), 4, share, burst)


def test_draw_refuses_frame_drop_too_large_for_drop_burst(synthetic):
    with pytest.raises(ConfigError, match="`frame_drop`"):
        draw_missingness(synthetic, 0.2, frame_drop=0.9, drop_burst=3.0)


# ---------------------------------------------------------------- SplitMissingness, names


def _hand_split():
    return Split(
        features={
            "text": np.zeros((3, 4, 1), np.float32),
            "audio": np.zeros((3, 3, 1), np.float32),
        },
        lengths={"text": np.array([4, 2, 3]), "audio": np.array([3, 3, 1])},
        labels=np.zeros(3, np.float32),
        ids=np.array(["a", "b", "c"], dtype=object),
    )


def test_valid_steps_are_inside_present_and_kept():
    split = _hand_split()
    present = np.array([[True, True], [True, False], [False, True]])
    dropped = {
        "text": np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], bool),
        "audio": np.array([[0, 0, 1], [0, 0, 0], [0, 0, 0]], bool),
    }
    s = SplitMissingness(("text", "audio"), present, dropped)
    assert len(s) == 3
    text = s.valid_steps(split, "text")
    audio = s.valid_steps(split, "audio")
    expected_text = [[1, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]]
    expected_audio = [[1, 1, 0], [0, 0, 0], [1, 0, 0]]
    np.testing.assert_array_equal(text, np.array(expected_text, bool))
    np.testing.assert_array_equal(audio, np.array(expected_audio, bool))
    assert s.patterns().tolist() == ["ta", "t", "a"]


def test_complete_has_everything_present_and_nothing_dropped():
    split = _hand_split()
    s = SplitMissingness.complete(split)
    assert s.modalities == ("text", "audio")
    np.testing.assert_array_equal(s.present, np.ones((3, 2), bool))
    assert s.dropped["text"].shape == (3, 4) and s.dropped["audio"].shape == (3, 3)
    assert not s.dropped["text"].any() and not s.dropped["audio"].any()
    inside = np.arange(4)[None, :] < split.lengths["text"][:, None]  # (N, L)
    np.testing.assert_array_equal(s.valid_steps(split, "text"), inside)


def test_pattern_names_follow_the_modality_order():
    rows = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]]
    names = pattern_names(np.array(rows, bool), MODALITIES)
    assert names.tolist() == ["t", "v", "a", "tv", "ta", "va", "tva"]
    reordered = pattern_names(np.array([[1, 0, 1]], bool), ("audio", "vision", "text"))
    assert reordered.tolist() == ["at"]


def test_pattern_names_join_long_names_with_plus():
    present = np.array([[1, 1], [0, 1], [1, 0]], bool)
    assert pattern_names(present, ("text", "pose")).tolist() == ["t+pose", "pose", "t"]
    assert short_name("audio") == "a" and short_name("pose") == "pose"


def test_pattern_names_of_no_samples():
    names = pattern_names(np.zeros((0, 3), bool), MODALITIES)
    assert names.shape == (0,)


# -------------------------------------------------------------------------- save / load


def test_save_load_round_trip(synthetic, tmp_path):
    draw = draw_missingness(synthetic, 0.4, frame_drop=0.3, drop_burst=2.5, seed=9)
    path = draw.save(tmp_path / "missingness.json")
    assert path == tmp_path / "missingness.json"
    loaded = RandomMissingness.load(path)
    assert (loaded.missing_rate, loaded.frame_drop, loaded.drop_burst, loaded.seed) == (
        0.4,
        0.3,
        2.5,
        9,
    )
    assert loaded.modalities == draw.modalities == MODALITIES
    assert set(loaded.splits) == set(SPLIT_NAMES)
    for name in SPLIT_NAMES:
        a, b = draw.splits[name], loaded.splits[name]
        assert b.present.dtype == bool
        np.testing.assert_array_equal(a.present, b.present)
        for m in MODALITIES:
            assert b.dropped[m].dtype == bool and b.dropped[m].shape == a.dropped[m].shape
            np.testing.assert_array_equal(a.dropped[m], b.dropped[m])
    assert any(d.any() for d in loaded.splits["train"].dropped.values())
    assert loaded.check_matches(synthetic) is loaded


def _saved(synthetic, tmp_path):
    path = draw_missingness(synthetic, 0.3, frame_drop=0.2, seed=0).save(tmp_path / "m.json")
    return path, json.loads(path.read_text())


def _edit(raw, change):
    change(raw)
    return raw


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.update(format="other"), "not a missingness draw file"),
        (lambda r: r.update(version=2), "unsupported version 2"),
        (lambda r: r.pop("splits"), "malformed"),
        (lambda r: r["splits"]["train"]["present"].append([1, 0]), "malformed"),
        (lambda r: r["splits"]["valid"]["dropped"]["text"].append([10_000, 0, 1]), "malformed"),
        (lambda r: r["splits"]["test"]["widths"].pop("audio"), "malformed"),
    ],
)
def test_load_errors_name_the_file(synthetic, tmp_path, change, message):
    path, raw = _saved(synthetic, tmp_path)
    path.write_text(json.dumps(_edit(raw, change)))
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*" + message):
        RandomMissingness.load(path)


def test_load_refuses_non_json_and_non_objects(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match=re.escape(str(path)) + ": cannot read"):
        RandomMissingness.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match=re.escape(str(path)) + ": not a missingness draw file"):
        RandomMissingness.load(path)
    missing = tmp_path / "absent.json"
    with pytest.raises(DataError, match=re.escape(str(missing)) + ": cannot read"):
        RandomMissingness.load(missing)


def test_check_matches_refuses_other_modalities_and_sizes():
    draw = draw_missingness(_dataset((30, 10, 10)), 0.3, seed=0)
    assert draw.check_matches(_dataset((30, 10, 10))) is draw
    with pytest.raises(
        DataError, match=r"modalities \['text', 'vision', 'audio'\].*\['text', 'audio'\]"
    ):
        draw.check_matches(_dataset((30, 10, 10), modalities=("text", "audio")))
    with pytest.raises(DataError, match=r"split 'valid', modality 'text'.*\(10, 6\).*\(12, 6\)"):
        draw.check_matches(_dataset((30, 12, 10)))
    with pytest.raises(DataError, match=r"split 'train'.*\(30, 6\).*\(30, 7\)"):  # other width
        draw.check_matches(_dataset((30, 10, 10), width=7))


# ------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"missing_rate": 1.0}, "missing_rate"),
        ({"missing_rate": -0.1}, "missing_rate"),
        ({"missing_rate": True}, "missing_rate"),
        ({"frame_drop": 1}, "frame_drop"),
        ({"frame_drop": -0.2}, "frame_drop"),
        ({"drop_burst": 0.5}, "drop_burst"),
        ({"drop_burst": True}, "drop_burst"),
        ({"drop_burst": "3"}, "drop_burst"),
        ({"seed": -1}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_invalid_arguments_name_the_option(synthetic, kwargs, name):
    args = {"missing_rate": 0.3, **kwargs}
    with pytest.raises(ConfigError, match=f"`{name}` must be"):
        draw_missingness(synthetic, **args)


def test_integer_like_arguments_are_accepted(synthetic):
    draw = draw_missingness(synthetic, 0, frame_drop=0, drop_burst=2, seed=np.int64(3))
    assert (draw.missing_rate, draw.frame_drop, draw.drop_burst, draw.seed) == (0.0, 0.0, 2.0, 3)
    assert isinstance(draw.seed, int) and isinstance(draw.drop_burst, float)


def test_load_refuses_a_burst_outside_its_sample_or_steps(tmp_path):
    draw = draw_missingness(_dataset((30, 10, 10)), 0.3, frame_drop=0.3, seed=0)
    raw = draw.to_dict()
    m = draw.modalities[0]
    for bad in ([-1, 5, 7], [0, 5, 3], [0, 0, 99], [30, 0, 1]):
        raw["splits"]["train"]["dropped"][m] = [bad]
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(raw))
        with pytest.raises(DataError, match="burst"):
            RandomMissingness.load(path)


def test_a_modality_of_length_zero_in_the_file_is_never_drawn_present():
    from mmalign.data.synthetic import SyntheticConfig, make_synthetic

    dataset = make_synthetic(SyntheticConfig(n_train=400, n_valid=10, n_test=10))
    before = draw_missingness(dataset, 0.5, seed=0).splits["train"].present
    train = dataset.splits["train"]
    lengths = {m: v.copy() for m, v in train.lengths.items()}
    lengths["audio"][:200] = 0  # audio missing in the file
    lengths["vision"][:100] = 0  # samples 0-99 hold text only
    cut = Split(train.features, lengths, train.labels, train.ids)
    dataset.splits["train"] = cut
    present = draw_missingness(dataset, 0.5, seed=0).splits["train"].present
    assert not present[:200, 2].any()
    assert present[:100, 0].all()  # the only available modality is always kept
    assert present.any(1).all()
    assert np.array_equal(present[200:], before[200:])  # untouched samples draw the same


def test_the_pair_protocol_is_one_way_to_draw_the_masks():
    from mmalign.data.missingness import pair_missingness
    from mmalign.data.splits import make_missing_split
    from mmalign.data.synthetic import SyntheticConfig, make_synthetic

    dataset = make_synthetic(SyntheticConfig(n_train=50, n_valid=20, n_test=20))
    split = make_missing_split(dataset, "v", 0.3, seed=2)
    for setting in ("A", "B", "complete"):
        masks = pair_missingness(dataset, split, "t", setting)
        for name, seen in masks.items():
            assert seen.modalities == ("text", "vision", "audio")
            assert seen.present[:, 0].all() and not seen.present[:, 2].any()
            assert np.array_equal(seen.present[:, 1], split.present(name, setting))
            assert not any(d.any() for d in seen.dropped.values())
    assert set(pair_missingness(dataset, split, "t", "A")["test"].patterns()) == {"t"}
