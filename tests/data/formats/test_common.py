import numpy as np

from mmalign.data.formats._common import (
    move_valid_first,
    nonzero_span,
    pad_ragged,
    start_from_lengths,
)


def _sample(steps, rows, offset):
    x = np.zeros((steps, 2), np.float32)
    x[offset : offset + len(rows)] = rows
    return x


def test_padding_side_is_found_per_sample():
    rows = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
    x = np.stack(
        [
            _sample(6, rows, 0),
            _sample(6, rows, 3),
            _sample(6, rows, 1),
            np.zeros((6, 2), np.float32),
        ]
    )  # right, left, both, empty
    start, length = nonzero_span(x)
    assert start.tolist() == [0, 3, 1, 0] and length.tolist() == [3, 3, 3, 0]
    moved = move_valid_first(x, start, length)
    for i in range(3):
        np.testing.assert_array_equal(moved[i, :3], rows)
        assert not moved[i, 3:].any()
    assert not moved[3].any()


def test_interior_zero_rows_are_kept_and_nonfinite_counts_as_data():
    x = np.zeros((1, 5, 1), np.float32)
    x[0, 1, 0], x[0, 3, 0] = -np.inf, 2.0  # step 2 is an all-zero row inside the data
    start, length = nonzero_span(x)
    assert (start[0], length[0]) == (1, 3)


def test_start_from_lengths_left_and_right():
    rows = np.ones((2, 2), np.float32)
    x = np.stack([_sample(5, rows, 3), _sample(5, rows, 0), _sample(5, rows * 0, 0)])
    assert start_from_lengths(x, np.array([2, 2, 2])).tolist() == [3, 0, 0]


def test_pad_ragged_matches_a_loop():
    rng = np.random.default_rng(0)
    items = [rng.normal(size=(n, 3)) for n in (4, 0, 2)]
    padded, lengths = pad_ragged(items, 3)
    assert padded.shape == (3, 4, 3) and lengths.tolist() == [4, 0, 2]
    for i, item in enumerate(items):
        np.testing.assert_allclose(padded[i, : len(item)], item, rtol=1e-6)
        assert not padded[i, len(item) :].any()
