import numpy as np
import pytest

from mmalign.data.dataset import MultimodalDataset, Split, check_span, span_pair
from mmalign.validation import DataError


def _split(n=4, spans=None):
    text = np.ones((n, 3, 2), np.float32)
    audio = np.ones((n, 5, 1), np.float32)
    if spans is None:  # frame f of audio belongs to word f // 2 (the last word has one frame)
        words = np.arange(5) // 2  # (L_a,)
        audio_text = np.stack([words, words + 1], axis=1)  # (L_a, 2)
        starts = np.array([0, 2, 4])
        text_audio = np.stack([starts, np.minimum(starts + 2, 5)], axis=1)  # (L_t, 2)
        spans = {
            "audio_text": np.repeat(audio_text[None], n, axis=0),  # (N, L_a, 2)
            "text_audio": np.repeat(text_audio[None], n, axis=0),  # (N, L_t, 2)
        }
    return Split(
        features={"text": text, "audio": audio},
        lengths={"text": np.full(n, 3, np.int64), "audio": np.full(n, 5, np.int64)},
        labels=np.arange(n, dtype=np.float32),
        ids=np.array([str(i) for i in range(n)], dtype=object),
        spans=spans,
    )


def test_spans_default_to_empty_and_positional_construction_still_works():
    split = Split({"a": np.zeros((1, 2, 1), np.float32)}, {"a": np.array([2])}, np.zeros(1), [])
    assert split.spans == {}


def test_subset_carries_the_spans():
    split = _split()
    split.spans["audio_text"][2, 0] = [1, 2]  # mark sample 2
    sub = split.subset(np.array([2, 0]))
    assert set(sub.spans) == {"audio_text", "text_audio"}
    assert sub.spans["audio_text"].shape == (2, 5, 2)
    assert sub.spans["audio_text"][0, 0].tolist() == [1, 2]
    assert sub.spans["audio_text"][1, 0].tolist() == [0, 1]
    mask = sub.subset(np.array([False, True]))
    assert mask.spans["text_audio"].shape == (1, 3, 2)


def test_a_valid_split_with_spans_validates():
    ds = MultimodalDataset(
        splits={s: _split() for s in ("train", "valid", "test")}, task="regression"
    )
    ds.validate()


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        (
            "audio_text",
            np.zeros((4, 4, 2), np.int64),
            r"must have shape \(N, L_a, 2\) = \(4, 5, 2\)",
        ),
        ("audio_text", np.zeros((4, 5, 2), np.float64), r"must be an integer array; got float64"),
        (
            "audio_text",
            np.tile([0, 1], (4, 5, 1)).astype(np.int32),
            r"`spans\['audio_text'\]` must be int64",
        ),
        ("audio_text", np.full((4, 5, 2), 4, np.int64), r"values must lie in \[-1, L_b=3\]"),
        ("audio_text", np.full((4, 5, 2), -2, np.int64), r"values must lie in \[-1, L_b=3\]"),
        ("text_audio", np.ones((4, 3, 2), np.int64), r"start < end on known entries; got \[1, 1\]"),
        ("text_audio", np.tile([-1, 2], (4, 3, 1)), r"-1 in both start and end or in neither"),
        ("text_video", np.zeros((4, 3, 2), np.int64), r"span key 'text_video' must be '<a>_<b>'"),
        ("text_text", np.zeros((4, 3, 2), np.int64), r"two different modalities"),
    ],
)
def test_bad_spans_raise_data_error_naming_the_key(key, value, match):
    split = _split()
    split.spans[key] = value
    with pytest.raises(DataError, match=match):
        split.validate("here", "regression")


def test_unknown_entries_and_full_ranges_are_accepted():
    span = np.array([[[-1, -1], [0, 3], [2, 3]]])  # (1, 3, 2)
    check_span(span, (1, 3), 3, "f", "span_a_b")


def test_span_pair_is_unambiguous():
    assert span_pair("gps_imu", ["imu", "gps"], "f") == ("gps", "imu")
    with pytest.raises(DataError, match="more than one pair"):
        span_pair("a_b_c", ["a", "b_c", "a_b", "c"], "f")
