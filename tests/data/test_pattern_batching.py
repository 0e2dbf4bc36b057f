import numpy as np
import pytest
import torch

from mmalign.data.batching import iterate_batches
from mmalign.data.dataset import Split
from mmalign.data.missingness import SplitMissingness, draw_missingness
from mmalign.data.pattern_batching import PatternBatch, PatternData
from mmalign.data.synthetic import SyntheticConfig, make_synthetic
from mmalign.validation import DataError

# four samples; text (L=4, D=2), audio (L=3, D=1)
LENGTHS = {"text": [4, 2, 3, 1], "audio": [3, 1, 2, 3]}
PRESENT = [[True, True], [True, False], [False, True], [True, True]]
DROPPED = {
    "text": [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    "audio": [[0, 0, 1], [0, 0, 0], [1, 0, 0], [0, 0, 0]],
}
# readable: inside the length, present, not dropped
VALID = {
    "text": [[1, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]],
    "audio": [[1, 1, 0], [0, 0, 0], [0, 1, 0], [1, 1, 1]],
}


def _split():
    """Features 1, 2, 3, ... on readable steps and NaN everywhere else (absent, dropped, padding)."""
    features = {}
    for m, shape in (("text", (4, 4, 2)), ("audio", (4, 3, 1))):
        x = np.arange(1, np.prod(shape) + 1, dtype=np.float32).reshape(shape)  # (N, L, D)
        x[~np.array(VALID[m], bool)] = np.nan
        features[m] = x
    return Split(
        features=features,
        lengths={m: np.array(n, np.int64) for m, n in LENGTHS.items()},
        labels=np.array([0.5, -1.0, 2.0, 3.5], np.float32),
        ids=np.array(["s0", "s1", "s2", "s3"], dtype=object),
    )


def _missingness():
    dropped = {m: np.array(d, bool) for m, d in DROPPED.items()}
    return SplitMissingness(("text", "audio"), np.array(PRESENT), dropped)


@pytest.fixture()
def data():
    return PatternData.from_split(_split(), _missingness())


def test_from_split_selects_readable_steps_and_never_reads_the_rest(data):
    split = _split()
    assert len(data) == 4 and data.modalities == ("text", "audio")
    for m in data.modalities:
        x = data.features[m]
        valid = torch.tensor(VALID[m], dtype=torch.bool)
        assert x.dtype == torch.float32 and x.shape == split.features[m].shape
        assert torch.isfinite(x).all()  # the NaN on absent, dropped and padded steps is gone
        assert torch.all(x[~valid] == 0)
        expected = split.features[m][np.array(VALID[m], bool)]  # (S, D) the readable steps
        torch.testing.assert_close(x[valid], torch.from_numpy(expected))
        torch.testing.assert_close(data.valid[m], valid)
    # lengths: the length of a present modality (dropped steps counted), 0 where absent
    assert data.lengths["text"].tolist() == [4, 2, 0, 1]
    assert data.lengths["audio"].tolist() == [3, 0, 2, 3]
    assert data.present.tolist() == PRESENT
    torch.testing.assert_close(data.labels, torch.from_numpy(split.labels))


def test_batch_gathers_and_trims_each_modality_in_any_index_order(data):
    b = data.batch(torch.tensor([2, 1]))
    assert isinstance(b, PatternBatch) and len(b) == 2 and b.index.tolist() == [2, 1]
    # text: absent in 2, length 2 in 1 -> 2 steps; audio: length 2 in 2, absent in 1 -> 2 steps
    assert b.features["text"].shape == (2, 2, 2) and b.features["audio"].shape == (2, 2, 1)
    assert b.masks["text"].tolist() == [[False, False], [True, True]]
    assert b.masks["audio"].tolist() == [[False, True], [False, False]]
    # steps: inside the length of a present modality, the dropped audio step 0 of sample 2 too
    assert b.steps["text"].tolist() == [[False, False], [True, True]]
    assert b.steps["audio"].tolist() == [[True, True], [False, False]]
    assert b.present.tolist() == [PRESENT[2], PRESENT[1]]
    assert b.labels.tolist() == [2.0, -1.0]
    torch.testing.assert_close(b.features["text"], data.features["text"][[2, 1], :2])
    torch.testing.assert_close(b.features["audio"], data.features["audio"][[2, 1], :2])


def test_batch_keeps_the_longest_present_length(data):
    b = data.batch(torch.tensor([3, 0]))
    assert b.features["text"].shape == (2, 4, 2) and b.features["audio"].shape == (2, 3, 1)
    assert b.masks["text"].tolist() == [VALID["text"][3], VALID["text"][0]]
    assert b.steps["audio"].tolist() == [[True, True, True], [True, True, True]]
    assert b.steps["text"].tolist() == [[True, False, False, False], [True] * 4]


def test_a_modality_absent_from_the_whole_batch_keeps_one_empty_step(data):
    b = data.batch(torch.tensor([1]))
    assert b.features["audio"].shape == (1, 1, 1)
    assert torch.all(b.features["audio"] == 0)
    assert not b.masks["audio"].any() and not b.steps["audio"].any()
    assert b.features["text"].shape == (1, 2, 2) and b.masks["text"].all()


def test_a_mismatching_missingness_is_refused():
    split = _split()
    fewer = SplitMissingness(
        ("text", "audio"),
        np.array(PRESENT[:3]),
        {m: np.array(d[:3], bool) for m, d in DROPPED.items()},
    )
    with pytest.raises(DataError, match=r"\(3 samples of \['text', 'audio'\]\).*\(4 samples"):
        PatternData.from_split(split, fewer)
    other = SplitMissingness(
        ("audio", "text"),
        np.array(PRESENT),
        {m: np.array(d, bool) for m, d in DROPPED.items()},
    )
    with pytest.raises(DataError, match=r"\['audio', 'text'\].*\['text', 'audio'\]"):
        PatternData.from_split(split, other)


def test_a_missingness_of_other_widths_is_refused():
    wide = SplitMissingness(
        ("text", "audio"),
        np.array(PRESENT),
        {m: np.zeros((4, 6), bool) for m in ("text", "audio")},
    )
    with pytest.raises(DataError):
        PatternData.from_split(_split(), wide)


@pytest.fixture(scope="module")
def synthetic_data():
    dataset = make_synthetic(SyntheticConfig(n_train=23, n_valid=4, n_test=4, max_length=10))
    draw = draw_missingness(dataset, 0.4, frame_drop=0.2, seed=0)
    return PatternData.from_split(dataset.splits["train"], draw.splits["train"])


def _visit(data, rows, seed):
    generator = torch.Generator().manual_seed(seed)
    return list(iterate_batches(data, rows, 5, shuffle=True, generator=generator))


def test_iterate_batches_is_reproducible_per_generator_seed(synthetic_data):
    rows = np.arange(3, 23)
    a, b, c = (_visit(synthetic_data, rows, s) for s in (0, 0, 1))
    order = [x.index.tolist() for x in a]
    assert [len(x) for x in a] == [5, 5, 5, 5]
    assert sorted(sum(order, [])) == rows.tolist()
    assert order == [x.index.tolist() for x in b]
    assert order != [x.index.tolist() for x in c]
    for x, y in zip(a, b):
        for m in synthetic_data.modalities:
            torch.testing.assert_close(x.features[m], y.features[m])
            torch.testing.assert_close(x.masks[m], y.masks[m])
            length = int(synthetic_data.lengths[m][x.index].max())
            assert x.features[m].shape[1] == max(1, length)
            torch.testing.assert_close(
                x.masks[m], synthetic_data.valid[m][x.index, : max(1, length)]
            )
