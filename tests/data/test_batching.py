import numpy as np
import pytest
import torch

from mmalign.data.batching import Batch, PairData, iterate_batches, nearest_step_index
from mmalign.data.dataset import Split
from mmalign.validation import ConfigError


def _split(n=7, length=6, lengths=None, victim_len=None, victim_pad=None, classes=False):
    rng = np.random.default_rng(0)
    lengths = np.array(lengths if lengths is not None else rng.integers(1, length + 1, n))
    n = len(lengths)
    victim_len = np.array(victim_len) if victim_len is not None else lengths
    victim_pad = victim_pad or length

    def padded(l_pad, lens, width):
        x = rng.standard_normal((n, l_pad, width)).astype(np.float32) + 3.0  # never zero
        x[np.arange(l_pad)[None, :] >= lens[:, None]] = 0.0
        return x

    labels = np.arange(n) % 3 if classes else np.linspace(-3, 3, n)
    return Split(
        features={"text": padded(length, lengths, 4), "audio": padded(victim_pad, victim_len, 2)},
        lengths={"text": lengths.astype(np.int64), "audio": victim_len.astype(np.int64)},
        labels=labels.astype(np.int64 if classes else np.float32),
        ids=np.array([f"s{i}" for i in range(n)], dtype=object),
    )


def test_batch_gathers_trims_and_masks():
    split = _split(lengths=[2, 5, 3, 1], length=6)
    present = np.array([True, False, True, True])
    pair = PairData.from_split(split, "t", "a", present=present)
    assert not pair.resampled and len(pair) == 4 and pair.device == torch.device("cpu")
    b = pair.batch(torch.tensor([0, 2, 3]))
    assert isinstance(b, Batch) and len(b) == 3
    assert b.source.shape == (3, 3, 4) and b.victim.shape == (3, 3, 2)  # trimmed to max length 3
    assert b.source.dtype == torch.float32 and b.source_mask.dtype == torch.bool
    expected_mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.bool)
    torch.testing.assert_close(b.source_mask, expected_mask)
    torch.testing.assert_close(b.victim_mask, expected_mask)
    torch.testing.assert_close(b.source, torch.from_numpy(split.features["text"][[0, 2, 3], :3]))
    torch.testing.assert_close(b.victim, torch.from_numpy(split.features["audio"][[0, 2, 3], :3]))
    torch.testing.assert_close(b.labels, torch.from_numpy(split.labels[[0, 2, 3]]))
    assert b.index.dtype == torch.int64 and b.index.tolist() == [0, 2, 3]
    assert b.has_victim.tolist() == [True, True, True]
    # zeros after each length
    assert torch.all(b.source[~b.source_mask] == 0) and torch.all(b.victim[~b.victim_mask] == 0)


def test_absent_victim_is_zero_and_masked_and_forcing_missing_works():
    split = _split(lengths=[2, 5, 3], length=5)
    pair = PairData.from_split(split, "text", "audio", present=np.array([True, False, True]))
    b = pair.batch(torch.tensor([0, 1, 2]))
    assert b.has_victim.tolist() == [True, False, True]
    assert torch.all(b.victim[1] == 0) and not b.victim_mask[1].any()
    assert b.source_mask[1].all()  # the source is untouched
    forced = pair.batch(torch.tensor([0, 1, 2]), torch.tensor([False, True, True]))
    assert forced.has_victim.tolist() == [False, False, True]  # never claims an absent victim
    assert torch.all(forced.victim[:2] == 0) and not forced.victim_mask[:2].any()
    assert forced.victim_mask[2].sum() == 3


def test_absent_victim_features_are_never_read():
    split = _split(lengths=[4, 4, 2, 3], length=4)
    present = np.array([True, False, True, False])
    split.features["audio"][~present] = np.nan
    for aligned in (True, False):
        if not aligned:  # unaligned copy: the NaN rows are also resampled
            split.lengths["audio"] = np.array([3, 4, 2, 1], dtype=np.int64)
        pair = PairData.from_split(split, "text", "audio", present=present)
        assert pair.resampled is (not aligned)
        assert torch.isfinite(pair.victim).all()
        for b in iterate_batches(pair, np.arange(4), 3, shuffle=False):
            assert torch.isfinite(b.victim).all() and torch.isfinite(b.source).all()
        for b in iterate_batches(pair, np.arange(4), 2, shuffle=False, has_victim=False):
            assert torch.all(b.victim == 0) and not b.victim_mask.any()


def test_nearest_step_resampling_on_a_hand_made_example():
    # sample 0: source length 4, victim length 2 (padded to 3); sample 1: 2 vs 3; 2: 3 vs 0
    victim = np.zeros((3, 3, 1), np.float32)
    victim[0, :2, 0] = [10, 20]
    victim[1, :3, 0] = [1, 2, 3]
    split = Split(
        features={"text": np.ones((3, 4, 2), np.float32), "vision": victim},
        lengths={"text": np.array([4, 2, 3]), "vision": np.array([2, 3, 0])},
        labels=np.zeros(3, np.float32),
        ids=np.array(["a", "b", "c"], dtype=object),
    )
    split.features["text"][1, 2:] = 0
    split.features["text"][2, 3:] = 0
    pair = PairData.from_split(split, "text", "vision")
    assert pair.resampled
    # step j of source length Ls reads victim step floor((j + 0.5) * Lv / Ls)
    expected = [[10, 10, 20, 20], [1, 3, 0, 0], [0, 0, 0, 0]]
    assert pair.victim[:, :, 0].tolist() == expected
    assert pair.victim.shape == (3, 4, 1)
    assert pair.victim_lengths.tolist() == [4, 2, 0]
    b = pair.batch(torch.arange(3))
    assert b.victim_mask.tolist() == [[True] * 4, [True, True, False, False], [False] * 4]
    assert b.has_victim.tolist() == [True, True, True]  # present, but empty: mask is empty


def test_nearest_step_index_upsampling_and_downsampling():
    index = nearest_step_index(np.array([3, 6]), np.array([6, 3]), 6)
    assert index.tolist() == [[1, 3, 5, 0, 0, 0], [0, 0, 1, 1, 2, 2]]


def test_different_padded_lengths_are_resampled_even_with_equal_true_lengths():
    split = _split(lengths=[3, 2], length=4, victim_len=[3, 2], victim_pad=6)
    pair = PairData.from_split(split, "text", "audio")
    assert pair.resampled and pair.victim.shape == (2, 4, 2)
    # equal lengths: nearest step is the identity
    torch.testing.assert_close(pair.victim, torch.from_numpy(split.features["audio"][:, :4]))


def test_shuffle_is_deterministic_under_a_generator_seed():
    pair = PairData.from_split(_split(n=20, lengths=list(range(1, 7)) * 3 + [2, 2]), "t", "a")
    rows = np.arange(3, 20)

    def order(seed):
        gen = torch.Generator().manual_seed(seed)
        return [
            b.index.tolist() for b in iterate_batches(pair, rows, 5, shuffle=True, generator=gen)
        ]

    a, b, c = order(0), order(0), order(1)
    assert a == b and a != c
    assert sorted(sum(a, [])) == rows.tolist()  # every row exactly once
    plain = [b.index.tolist() for b in iterate_batches(pair, rows, 5, shuffle=False)]
    assert plain == [rows[i : i + 5].tolist() for i in range(0, 17, 5)]


def test_last_partial_batch_and_batch_larger_than_n():
    pair = PairData.from_split(_split(n=7, classes=True), "text", "audio")
    sizes = [len(b) for b in iterate_batches(pair, np.arange(7), 3, shuffle=False)]
    assert sizes == [3, 3, 1]
    (only,) = list(
        iterate_batches(
            pair, np.arange(7), 100, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
    )
    assert sorted(only.index.tolist()) == list(range(7))
    assert only.labels.dtype == torch.int64
    assert list(iterate_batches(pair, np.array([], dtype=np.int64), 4, shuffle=True)) == []


def test_all_empty_sources_keep_one_step():
    split = _split(lengths=[0, 0], length=3)
    b = PairData.from_split(split, "text", "audio").batch(torch.tensor([0, 1]))
    assert b.source.shape == (2, 1, 4) and not b.source_mask.any() and not b.victim_mask.any()


def test_to_moves_every_tensor():
    pair = PairData.from_split(_split(), "text", "audio").to("cpu")
    b = pair.batch(torch.tensor([1, 2])).to("meta")
    assert all(
        t.device.type == "meta"
        for t in (b.source, b.source_mask, b.victim, b.victim_mask, b.has_victim, b.labels, b.index)
    )
    moved = pair.to("meta")
    assert moved.source.device.type == "meta" and moved.present.device.type == "meta"
    assert moved.victim_name == "audio" and pair.source.device.type == "cpu"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(source="x"), r"`modality` must be one of \['audio', 'text'\]; got 'x'\."),
        (dict(victim="text"), r"`victim` must differ from the source 'text'"),
        (dict(present=np.ones(3, bool)), r"`present` must have shape \(7\); got \(3,\)\."),
        (dict(present=np.ones(7)), r"`present` must be a bool array; got dtype float64\."),
    ],
)
def test_from_split_errors(kwargs, match):
    args = dict(source="text", victim="audio", present=None) | kwargs
    with pytest.raises(ConfigError, match=match):
        PairData.from_split(_split(), **args)


def test_iterate_batches_errors():
    pair = PairData.from_split(_split(), "text", "audio")
    with pytest.raises(ConfigError, match=r"`batch_size` must be an integer >= 1; got 0\."):
        next(iterate_batches(pair, np.arange(3), 0, shuffle=False))
    with pytest.raises(ConfigError, match=r"`indices` must lie in \[0, 7\); got range \[0, 9\]"):
        next(iterate_batches(pair, np.array([0, 9]), 2, shuffle=False))


def test_unaligned_victim_keeps_its_own_axis_without_resampling():
    from mmalign.data.dataset import Split

    n, m = np.array([3, 5, 2]), np.array([9, 14, 6])
    src = np.zeros((3, 5, 2), np.float32)
    vic = np.zeros((3, 14, 1), np.float32)
    for i in range(3):  # each victim step holds its own index: resampling would show
        vic[i, : m[i], 0] = np.arange(1, m[i] + 1)
    split = Split(
        features={"text": src, "audio": vic},
        lengths={"text": n, "audio": m},
        labels=np.zeros(3, np.float32),
        ids=np.array(["a", "b", "c"], dtype=object),
    )
    present = np.array([True, False, True])
    pair = PairData.from_split(split, "text", "audio", present, resample=False)
    assert pair.own_axis and not pair.resampled
    assert pair.victim_lengths.tolist() == [9, 0, 6]
    batch = pair.batch(torch.tensor([0, 1, 2]))
    assert batch.victim.shape == (3, 9, 1)  # trimmed to the longest present victim
    assert batch.victim_mask.sum(1).tolist() == [9, 0, 6]
    assert batch.victim[0, :, 0].tolist() == list(range(1, 10))
    assert float(batch.victim[1].abs().sum()) == 0.0  # absent: zeros, never the file's values
    resampled = PairData.from_split(split, "text", "audio", present)
    assert resampled.resampled and resampled.victim.shape[1] == 5
