import pytest
import torch
from torch.nn.functional import cosine_similarity

from mmalign.ot.cost import windowed_cosine_cost
from mmalign.validation import ConfigError


def lengths_to_mask(lengths, n_steps):
    """(B,) lengths -> (B, n_steps) bool mask, valid steps first."""
    return torch.arange(n_steps)[None, :] < torch.as_tensor(lengths)[:, None]


def loop_cost(z_source, z_victim, source_mask, victim_mask, window):
    n_batch, n_rows, _ = z_source.shape
    n_cols = z_victim.shape[1]
    cost = torch.full((n_batch, n_rows, 2 * window + 1), float("inf"), dtype=z_source.dtype)
    for b in range(n_batch):
        for i in range(n_rows):
            for k in range(2 * window + 1):
                j = i + k - window
                if 0 <= j < n_cols and source_mask[b, i] and victim_mask[b, j]:
                    cos = cosine_similarity(z_source[b, i], z_victim[b, j], dim=0)
                    cost[b, i, k] = 1 - cos
    return cost


@pytest.mark.parametrize(
    "n_rows,n_cols,window", [(7, 7, 2), (6, 9, 1), (9, 5, 3), (3, 3, 4), (5, 5, 0)]
)
def test_matches_loop_reference(n_rows, n_cols, window, dtype):
    gen = torch.Generator().manual_seed(0)
    z_source = torch.randn(3, n_rows, 4, generator=gen, dtype=dtype)
    z_victim = torch.randn(3, n_cols, 4, generator=gen, dtype=dtype)
    source_mask = lengths_to_mask([n_rows, max(1, n_rows - 2), 1], n_rows)
    victim_mask = lengths_to_mask([n_cols, max(1, n_cols - 3), 0], n_cols)
    cost = windowed_cosine_cost(z_source, z_victim, source_mask, victim_mask, window)
    expected = loop_cost(z_source, z_victim, source_mask, victim_mask, window)
    assert cost.dtype == dtype
    assert torch.equal(torch.isinf(cost), torch.isinf(expected))
    finite = torch.isfinite(expected)
    torch.testing.assert_close(cost[finite], expected[finite])
    assert (cost[finite] >= -1e-6).all() and (cost[finite] <= 2 + 1e-6).all()


def test_hand_computed_values():
    z_source = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    z_victim = torch.tensor([[[0.0, 2.0], [-3.0, 0.0]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    cost = windowed_cosine_cost(z_source, z_victim, mask, mask, 1)[0]
    inf = float("inf")
    root = 2**-0.5
    expected = torch.tensor([[inf, 1.0, 2.0], [1 - root, 1 + root, inf]])
    torch.testing.assert_close(cost, expected)


def test_zero_vector_gives_cost_one_not_nan():
    z_source = torch.zeros(1, 3, 4)
    z_victim = torch.randn(1, 3, 4)
    mask = torch.ones(1, 3, dtype=torch.bool)
    cost = windowed_cosine_cost(z_source, z_victim, mask, mask, 1)
    assert not torch.isnan(cost).any()
    finite = torch.isfinite(cost)
    torch.testing.assert_close(cost[finite], torch.ones(int(finite.sum())))


def test_differentiable_with_zero_gradient_on_infinite_entries():
    z_source = torch.randn(2, 5, 3, requires_grad=True)
    z_victim = torch.randn(2, 5, 3, requires_grad=True)
    source_mask = lengths_to_mask([5, 3], 5)
    cost = windowed_cosine_cost(z_source, z_victim, source_mask, source_mask, 1)
    weights = torch.where(torch.isfinite(cost), 1.0, 0.0)
    (torch.nan_to_num(cost, posinf=0.0) * weights).sum().backward()
    assert torch.isfinite(z_source.grad).all() and torch.isfinite(z_victim.grad).all()
    assert z_source.grad[1, 3:].abs().sum() == 0  # padded source steps get no gradient
    assert z_source.grad[0].abs().sum() > 0


@pytest.mark.parametrize(
    "args,match",
    [
        (
            (
                torch.zeros(2, 3),
                torch.zeros(2, 3, 4),
                torch.ones(2, 3, dtype=torch.bool),
                torch.ones(2, 3, dtype=torch.bool),
                1,
            ),
            r"`z_source` and `z_victim` must have shapes",
        ),
        (
            (
                torch.zeros(2, 3, 4),
                torch.zeros(2, 3, 5),
                torch.ones(2, 3, dtype=torch.bool),
                torch.ones(2, 3, dtype=torch.bool),
                1,
            ),
            r"`z_victim` must have shape \(2, M, 4\)",
        ),
        (
            (
                torch.zeros(2, 3, 4),
                torch.zeros(2, 3, 4),
                torch.ones(2, 4, dtype=torch.bool),
                torch.ones(2, 3, dtype=torch.bool),
                1,
            ),
            r"`source_mask` must have shape \(2, 3\)",
        ),
        (
            (
                torch.zeros(2, 3, 4),
                torch.zeros(2, 5, 4),
                torch.ones(2, 3, dtype=torch.bool),
                torch.ones(2, 3, dtype=torch.bool),
                1,
            ),
            r"`victim_mask` must have shape \(2, 5\)",
        ),
        (
            (
                torch.zeros(2, 3, 4),
                torch.zeros(2, 3, 4),
                torch.ones(2, 3, dtype=torch.bool),
                torch.ones(2, 3, dtype=torch.bool),
                -2,
            ),
            r"`window` must be an integer >= 0; got -2",
        ),
    ],
)
def test_errors(args, match):
    with pytest.raises(ConfigError, match=match):
        windowed_cosine_cost(*args)
