"""Alignment metrics against hand-computed values."""

import math

import pytest
import torch

from mmalign.evaluate.alignment_score import (
    ScoreAccumulator,
    diagonal_band,
    score_band,
    uniform_band,
)
from mmalign.validation import ConfigError


def test_hand_computed_scores():
    # K = 1; victim step 0 centred on source 2, step 1 on source 3, step 2 padding
    weights = torch.tensor([[[0.2, 0.5, 0.3], [0.6, 0.4, 0.0], [1.0, 0.0, 0.0]]])
    centres = torch.tensor([[2, 3, 0]])
    spans = torch.tensor([[[2, 4], [4, 5], [0, 1]]])  # truth: {2, 3}, {4}, (padding)
    mask = torch.tensor([[True, True, False]])
    s = score_band(weights, centres, 1, spans, mask)
    # step 0: sources 1, 2, 3 -> mass on {2, 3} = 0.8, argmax source 2 (hit, distance 0)
    # step 1: sources 2, 3, 4 -> mass on {4} = 0.0, argmax source 2 (miss, distance 2)
    assert s.mass_on_truth == pytest.approx(0.4)
    assert s.argmax_accuracy == pytest.approx(0.5)
    assert s.offset_error == pytest.approx(1.0)
    assert s.n_steps == 2


def test_unnormalised_rows_and_unknown_spans():
    weights = torch.tensor([[[2.0, 2.0, 0.0], [0.0, 3.0, 1.0]]])
    centres = torch.tensor([[1, 1]])
    spans = torch.tensor([[[0, 1], [-1, -1]]])  # the second step has no known truth
    s = score_band(weights, centres, 1, spans, torch.ones(1, 2, dtype=torch.bool))
    assert s.mass_on_truth == pytest.approx(0.5)  # renormalised: 2 / 4
    assert s.n_steps == 1


def test_accumulator_pools_steps_not_batches():
    w1 = torch.tensor([[[0.0, 1.0, 0.0]]])
    w2 = torch.tensor([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    acc = ScoreAccumulator()
    acc.add(
        w1, torch.tensor([[0]]), 1, torch.tensor([[[0, 1]]]), torch.ones(1, 1, dtype=torch.bool)
    )
    acc.add(
        w2, torch.tensor([[1, 1]]), 1, torch.tensor([[[1, 2], [1, 2]]]),
        torch.ones(1, 2, dtype=torch.bool),
    )  # fmt: skip
    assert acc.result().argmax_accuracy == pytest.approx(1 / 3)


def test_reference_predictors():
    valid = torch.tensor([[[False, True, True], [True, True, True]]])
    u = uniform_band(valid)
    torch.testing.assert_close(u.sum(-1), torch.ones(1, 2))
    assert u[0, 0, 0] == 0
    d = diagonal_band(valid, 1)
    assert d[..., 1].eq(1).all() and d.sum() == 2


def test_no_scored_step_gives_nan_and_bad_shapes_raise():
    s = score_band(torch.zeros(1, 1, 3), torch.zeros(1, 1, dtype=torch.long), 1,
                   torch.full((1, 1, 2), -1), torch.ones(1, 1, dtype=torch.bool))  # fmt: skip
    assert math.isnan(s.mass_on_truth) and s.n_steps == 0
    with pytest.raises(ConfigError, match="offsets"):
        score_band(torch.zeros(1, 1, 4), torch.zeros(1, 1, dtype=torch.long), 1,
                   torch.zeros(1, 1, 2, dtype=torch.long), torch.ones(1, 1, dtype=torch.bool))  # fmt: skip
    with pytest.raises(ConfigError, match="spans"):
        score_band(torch.zeros(1, 1, 3), torch.zeros(1, 1, dtype=torch.long), 1,
                   torch.zeros(1, 2, 2, dtype=torch.long), torch.ones(1, 1, dtype=torch.bool))  # fmt: skip
