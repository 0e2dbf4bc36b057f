import json

import numpy as np
import pytest
import torch

from mmalign.analyses.alignment import (
    AlignmentSummary,
    band_to_matrix,
    block_abs_sum,
    mean_abs_alignment,
    run_alignment_summary,
)
from mmalign.config import ADLConfig
from mmalign.data.batching import PairData
from mmalign.data.synthetic import SyntheticConfig, make_synthetic
from mmalign.ot.band import dense_to_band
from mmalign.validation import ConfigError, DataError


def _windowed(rng, n, size, window):
    dense = torch.tensor(rng.standard_normal((n, size, size)), dtype=torch.float32)
    steps = torch.arange(size)
    return dense * ((steps[:, None] - steps[None, :]).abs() <= window)  # (B, L, L)


def test_band_to_matrix_matches_dense_oracle():
    rng = np.random.default_rng(0)
    plan = _windowed(rng, 3, 7, 2)  # plan[b, i, j]: source i, victim j
    row_band = dense_to_band(plan, 2)
    col_band = dense_to_band(plan.transpose(1, 2), 2)  # col[b, j, k] = plan[b, j + k - K, j]
    torch.testing.assert_close(band_to_matrix(row_band, 2, "row"), plan)
    torch.testing.assert_close(band_to_matrix(col_band, 2, "column"), plan)
    with pytest.raises(ConfigError, match="`convention` must be one of"):
        band_to_matrix(col_band, 2, "diagonal")


def test_block_abs_sum_keeps_long_samples_only():
    rng = np.random.default_rng(1)
    plan = _windowed(rng, 4, 6, 1)
    band = dense_to_band(plan.transpose(1, 2), 1)
    lengths = torch.tensor([6, 2, 4, 3])
    total, count = block_abs_sum(band, lengths, 1, 3)
    expected = plan[[0, 2, 3], :3, :3].abs().sum(0)
    assert count == 3
    torch.testing.assert_close(total, expected)
    total, count = block_abs_sum(band, lengths, 1, 7)  # longer than the batch
    assert count == 0 and total.shape == (7, 7) and float(total.abs().sum()) == 0.0
    with pytest.raises(ConfigError, match="`size` must be an integer >= 1; got 0"):
        block_abs_sum(band, lengths, 1, 0)


def test_summary_window_statistics():
    predicted = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.5], [0.1, 0.5, 1.0]])
    ot = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.5], [0.0, 0.5, 0.6]])
    summary = AlignmentSummary(predicted, ot, n_samples=4, window=1)
    assert summary.outside_mass("predicted") == pytest.approx(0.15)
    assert summary.outside_mass("ot") == 0.0
    assert summary.inside_gap() == pytest.approx(0.4 / 7)
    assert AlignmentSummary(predicted, ot, 4, window=5).outside_mass() == 0.0


class FakeModel:
    """Bands that depend on the sample's row index, in the column layout of the fitter."""

    adl = ADLConfig(window=2, convention="column")

    def eval(self):
        return self

    def alignments(self, batch):
        n, length = batch.source_mask.shape
        width = 2 * self.adl.window + 1
        ramp = torch.arange(length * width, dtype=torch.float32).reshape(1, length, width)
        scale = (batch.index.float() + 1)[:, None, None]  # (B, 1, 1)
        predicted = ramp * scale * batch.source_mask[:, :, None]  # (B, L, W)
        centres = torch.arange(length).expand(n, -1)  # aligned data: victim j centred on j
        return predicted, -2.0 * predicted, centres


def test_mean_abs_alignment_against_per_sample_oracle():
    data = make_synthetic(
        SyntheticConfig(n_train=8, n_valid=8, n_test=20, min_length=3, max_length=9)
    )
    pair = PairData.from_split(data.splits["test"], "text", "vision")
    model = FakeModel()
    summary = mean_abs_alignment(model, pair, size=5, batch_size=3)
    lengths = pair.source_lengths.numpy()
    keep = np.flatnonzero(lengths >= 5)
    blocks = []
    for row in keep:  # oracle: one sample at a time, index arithmetic by hand
        n = int(lengths[row])
        dense = np.zeros((n, n))
        for j in range(n):
            for k in range(5):
                i = j + k - 2
                if 0 <= i < n:
                    dense[i, j] = (j * 5 + k) * (row + 1)
        blocks.append(np.abs(dense[:5, :5]))
    expected = np.mean(blocks, axis=0)
    assert summary.n_samples == keep.size and summary.window == 2
    np.testing.assert_allclose(summary.predicted, expected, rtol=1e-6)
    np.testing.assert_allclose(summary.ot, 2 * expected, rtol=1e-6)
    with pytest.raises(ConfigError, match="`min_length` must be <= the longest complete sample"):
        mean_abs_alignment(model, pair, size=10)


def test_run_alignment_summary_refuses_other_methods(tmp_path):
    with pytest.raises(DataError, match="no such run folder"):
        run_alignment_summary(tmp_path / "missing")
    (tmp_path / "model.json").write_text(json.dumps({"method": "modal-trans"}))
    with pytest.raises(ConfigError, match="must be an mm-align run.*'modal-trans'"):
        run_alignment_summary(tmp_path)
