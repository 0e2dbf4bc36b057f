import pytest
import torch

from mmalign.ot.band import (
    band_offsets,
    band_to_dense,
    band_transpose,
    band_valid_mask,
    dense_to_band,
)
from mmalign.validation import ConfigError

# (L, M, K): square, rectangular both ways, K = 0, K >= L
SHAPES = [(6, 6, 2), (5, 8, 1), (8, 5, 3), (4, 4, 0), (3, 3, 5), (1, 4, 2)]


def loop_dense_to_band(dense, window):
    n_batch, n_rows, n_cols = dense.shape
    band = torch.zeros(n_batch, n_rows, 2 * window + 1, dtype=dense.dtype)
    for b in range(n_batch):
        for i in range(n_rows):
            for k in range(2 * window + 1):
                j = i + k - window
                if 0 <= j < n_cols:
                    band[b, i, k] = dense[b, i, j]
    return band


def loop_band_to_dense(band, window, n_cols):
    n_batch, n_rows, width = band.shape
    dense = torch.zeros(n_batch, n_rows, n_cols, dtype=band.dtype)
    for b in range(n_batch):
        for i in range(n_rows):
            for k in range(width):
                j = i + k - window
                if 0 <= j < n_cols:
                    dense[b, i, j] = band[b, i, k]
    return dense


@pytest.mark.parametrize("n_rows,n_cols,window", SHAPES)
def test_dense_to_band_matches_loop(n_rows, n_cols, window):
    dense = torch.randn(2, n_rows, n_cols, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(dense_to_band(dense, window), loop_dense_to_band(dense, window))


@pytest.mark.parametrize("n_rows,n_cols,window", SHAPES)
def test_band_to_dense_matches_loop_and_drops_out_of_range(n_rows, n_cols, window):
    band = torch.randn(2, n_rows, 2 * window + 1, generator=torch.Generator().manual_seed(1))
    dense = band_to_dense(band, window, n_cols)
    torch.testing.assert_close(dense, loop_band_to_dense(band, window, n_cols))
    # round trip keeps the in-range entries and zeroes the rest
    _, in_range = band_offsets(n_rows, n_cols, window)
    torch.testing.assert_close(dense_to_band(dense, window), band * in_range)


@pytest.mark.parametrize("n_rows,n_cols,window", SHAPES)
def test_band_transpose_is_the_band_of_the_transpose(n_rows, n_cols, window):
    dense = torch.randn(3, n_rows, n_cols, generator=torch.Generator().manual_seed(2))
    col = band_transpose(dense_to_band(dense, window), window, n_cols)
    assert col.shape == (3, n_cols, 2 * window + 1)
    torch.testing.assert_close(col, loop_dense_to_band(dense.transpose(1, 2), window))
    for j in range(n_cols):  # the contract, entry by entry
        for k in range(2 * window + 1):
            i = j + k - window
            expected = dense[:, i, j] if 0 <= i < n_rows else torch.zeros(3)
            torch.testing.assert_close(col[:, j, k], expected)


@pytest.mark.parametrize("n_rows,n_cols,window", SHAPES)
def test_band_valid_mask_matches_loop(n_rows, n_cols, window):
    gen = torch.Generator().manual_seed(3)
    source_mask = torch.rand(4, n_rows, generator=gen) > 0.3
    victim_mask = torch.rand(4, n_cols, generator=gen) > 0.3
    valid = band_valid_mask(source_mask, victim_mask, window)
    expected = torch.zeros(4, n_rows, 2 * window + 1, dtype=torch.bool)
    for b in range(4):
        for i in range(n_rows):
            for k in range(2 * window + 1):
                j = i + k - window
                expected[b, i, k] = bool(
                    0 <= j < n_cols and source_mask[b, i] and victim_mask[b, j]
                )
    assert torch.equal(valid, expected)


def test_empty_victim_axis():
    assert dense_to_band(torch.zeros(2, 3, 0), 1).shape == (2, 3, 3)
    assert band_to_dense(torch.ones(2, 3, 3), 1, 0).shape == (2, 3, 0)
    mask = band_valid_mask(
        torch.ones(2, 3, dtype=torch.bool), torch.ones(2, 0, dtype=torch.bool), 1
    )
    assert mask.shape == (2, 3, 3) and not mask.any()


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: dense_to_band(torch.zeros(1, 3, 3), -1),
            r"`window` must be an integer >= 0; got -1",
        ),
        (
            lambda: dense_to_band(torch.zeros(1, 3, 3), 1.5),
            r"`window` must be an integer >= 0; got 1.5",
        ),
        (lambda: dense_to_band(torch.zeros(3, 3), 1), r"`dense` must have shape \(B, L, M\)"),
        (lambda: band_to_dense(torch.zeros(1, 3, 4), 1, 3), r"`band` must have shape \(B, L, 3\)"),
        (lambda: band_transpose(torch.zeros(1, 3, 5), 1, 3), r"`band` must have shape \(B, L, 3\)"),
        (
            lambda: band_valid_mask(
                torch.ones(2, 3, dtype=torch.bool), torch.ones(3, 3, dtype=torch.bool), 1
            ),
            r"`source_mask` and `victim_mask` must have shapes",
        ),
    ],
)
def test_errors(call, match):
    with pytest.raises(ConfigError, match=match):
        call()
