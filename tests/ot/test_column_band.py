import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch

from mmalign.ot import (
    band_transpose,
    band_valid_mask,
    column_band_index,
    column_band_to_dense,
    column_band_valid_mask,
    column_cosine_cost,
    dense_to_band,
    dense_to_column_band,
    diagonal_centres,
    sinkhorn_banded,
    sinkhorn_columns,
    windowed_cosine_cost,
)
from mmalign.validation import ConfigError, ConvergenceWarning


def lengths_to_mask(lengths, n_steps):
    """(B,) lengths -> (B, n_steps) bool mask, valid steps first."""
    return torch.arange(n_steps)[None, :] < torch.as_tensor(lengths)[:, None]


def loop_centres(n, m, n_victim):
    """Reference centres of one sample, in exact rational arithmetic."""
    out = [0] * n_victim
    if n == 0 or m == 0:
        return out
    for j in range(m):
        out[j] = min(max(math.floor(Fraction(2 * j + 1, 2) * Fraction(n, m)), 0), n - 1)
    return out


def loop_dense_to_column_band(dense, centres, window):
    n_batch, n_rows, n_cols = dense.shape
    band = torch.zeros(n_batch, n_cols, 2 * window + 1, dtype=dense.dtype)
    for b in range(n_batch):
        for j in range(n_cols):
            for k in range(2 * window + 1):
                i = int(centres[b, j]) + k - window
                if 0 <= i < n_rows:
                    band[b, j, k] = dense[b, i, j]
    return band


def loop_column_band_to_dense(band, centres, window, n_rows):
    n_batch, n_cols, width = band.shape
    dense = torch.zeros(n_batch, n_rows, n_cols, dtype=band.dtype)
    for b in range(n_batch):
        for j in range(n_cols):
            for k in range(width):
                i = int(centres[b, j]) + k - window
                if 0 <= i < n_rows:
                    dense[b, i, j] = band[b, j, k]
    return dense


def loop_valid_mask(source_mask, victim_mask, centres, window):
    n_batch, n_rows = source_mask.shape
    n_cols = victim_mask.shape[1]
    valid = torch.zeros(n_batch, n_cols, 2 * window + 1, dtype=torch.bool)
    for b in range(n_batch):
        for j in range(n_cols):
            for k in range(2 * window + 1):
                i = int(centres[b, j]) + k - window
                if 0 <= i < n_rows and source_mask[b, i] and victim_mask[b, j]:
                    valid[b, j, k] = True
    return valid


def window_mask(centres, window, n_rows):
    """Dense (B, L, M) bool: |i - c_j| <= K."""
    rows = torch.arange(n_rows)[None, :, None]
    return (rows - centres[:, None, :]).abs() <= window


def make_unequal(lengths_source, lengths_victim, n_rows, n_cols, window, seed=0, dim=64):
    """Random features and the column-band cosine cost of a padded batch of unequal lengths."""
    gen = torch.Generator().manual_seed(seed)
    batch = len(lengths_source)
    z_source = torch.randn(batch, n_rows, dim, generator=gen, dtype=torch.float64)
    z_victim = torch.randn(batch, n_cols, dim, generator=gen, dtype=torch.float64)
    source_mask = lengths_to_mask(lengths_source, n_rows)
    victim_mask = lengths_to_mask(lengths_victim, n_cols)
    centres = diagonal_centres(torch.tensor(lengths_source), torch.tensor(lengths_victim), n_cols)
    cost = column_cosine_cost(z_source, z_victim, source_mask, victim_mask, centres, window)
    return cost, source_mask, victim_mask, centres


# --------------------------------------------------------------------------- centres


def test_diagonal_centres_hand_computed():
    # n=3 m=7: (2j+1)*3/14 = 0.21 0.64 1.07 1.5 1.93 2.36 2.79
    # n=7 m=3: (2j+1)*7/6 = 1.17 3.5 5.83; then padding
    # n=5 m=5: identity; n=0 or m=0: all zero; n=1 m=4: all zero
    centres = diagonal_centres(
        torch.tensor([3, 7, 5, 0, 4, 1]), torch.tensor([7, 3, 5, 3, 0, 4]), 7
    )
    assert centres.dtype == torch.int64
    assert centres.tolist() == [
        [0, 0, 1, 1, 1, 2, 2],
        [1, 3, 5, 0, 0, 0, 0],
        [0, 1, 2, 3, 4, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ]


def test_diagonal_centres_match_exact_rational_reference_and_cover_the_source():
    gen = np.random.default_rng(0)
    n_victim = 40
    source = gen.integers(0, 60, size=30)
    victim = gen.integers(0, n_victim + 1, size=30)
    centres = diagonal_centres(torch.tensor(source), torch.tensor(victim), n_victim)
    for b, (n, m) in enumerate(zip(source.tolist(), victim.tolist())):
        expected = loop_centres(n, m, n_victim)
        assert centres[b].tolist() == expected, (n, m)
        valid = centres[b, :m]
        if n and m:
            assert (valid.diff() >= 0).all()  # monotone along the victim axis
            if m >= n:  # every source step is some victim step's centre
                assert set(valid.tolist()) == set(range(n))
            else:  # no two victim steps share a centre
                assert len(set(valid.tolist())) == m


def test_diagonal_centres_equal_lengths_is_identity_and_zero_victim_axis():
    lengths = torch.tensor([6, 3, 1])
    centres = diagonal_centres(lengths, lengths, 6)
    expected = torch.arange(6)[None].expand(3, 6) * lengths_to_mask(lengths, 6)
    assert torch.equal(centres, expected)
    assert diagonal_centres(lengths, torch.zeros(3, dtype=torch.int64), 0).shape == (3, 0)


@pytest.mark.parametrize(
    "source,victim,n_victim,match",
    [
        (torch.tensor([2.0]), torch.tensor([2]), 2, r"`source_lengths` must be a 1-D integer"),
        (torch.tensor([2]), torch.tensor([[2]]), 2, r"`victim_lengths` must be a 1-D integer"),
        (torch.tensor([-1]), torch.tensor([2]), 2, r"`source_lengths` must be >= 0; got \[-1\]"),
        (torch.tensor([2, 3]), torch.tensor([2]), 3, r"must have the same shape \(B,\)"),
        (torch.tensor([2]), torch.tensor([5]), 4, r"`victim_lengths` must be <= n_victim=4"),
        (torch.tensor([2]), torch.tensor([2]), -1, r"`n_victim` must be an integer >= 0; got -1"),
    ],
)
def test_diagonal_centres_errors(source, victim, n_victim, match):
    with pytest.raises(ConfigError, match=match):
        diagonal_centres(source, victim, n_victim)


# --------------------------------------------------------------------------- band helpers

# (L, M, K): M > L, M < L, K = 0, K >= L, a single source step
SHAPES = [(5, 13, 1), (9, 4, 2), (6, 6, 0), (3, 8, 4), (1, 5, 2)]


def random_centres(n_rows, n_cols, seed):
    # include centres outside [0, L) to exercise the in-range flags
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-2, n_rows + 2, (3, n_cols), generator=gen)


@pytest.mark.parametrize("n_rows,n_cols,window", SHAPES)
def test_column_band_index_matches_definition(n_rows, n_cols, window):
    centres = random_centres(n_rows, n_cols, 0)
    index, in_range = column_band_index(centres, window, n_rows)
    assert index.shape == in_range.shape == (3, n_cols, 2 * window + 1)
    assert index.dtype == torch.int64
    for b in range(3):
        for j in range(n_cols):
            for k in range(2 * window + 1):
                i = int(centres[b, j]) + k - window
                assert bool(in_range[b, j, k]) == (0 <= i < n_rows)
                assert int(index[b, j, k]) == min(max(i, 0), n_rows - 1)


@pytest.mark.parametrize("n_rows,n_cols,window", SHAPES)
def test_dense_band_round_trip_matches_loops(n_rows, n_cols, window):
    gen = torch.Generator().manual_seed(1)
    centres = random_centres(n_rows, n_cols, 1)
    dense = torch.randn(3, n_rows, n_cols, generator=gen, dtype=torch.float64)
    band = dense_to_column_band(dense, centres, window)
    torch.testing.assert_close(band, loop_dense_to_column_band(dense, centres, window))
    random_band = torch.randn(3, n_cols, 2 * window + 1, generator=gen, dtype=torch.float64)
    back = column_band_to_dense(random_band, centres, window, n_rows)
    torch.testing.assert_close(
        back, loop_column_band_to_dense(random_band, centres, window, n_rows)
    )
    # dense -> band -> dense keeps the window and zeroes the rest
    inside = window_mask(centres, window, n_rows)
    torch.testing.assert_close(column_band_to_dense(band, centres, window, n_rows), dense * inside)
    # band -> dense -> band keeps the in-range entries
    _, in_range = column_band_index(centres, window, n_rows)
    torch.testing.assert_close(dense_to_column_band(back, centres, window), random_band * in_range)


@pytest.mark.parametrize("n_rows,n_cols,window", SHAPES)
def test_valid_mask_matches_loop(n_rows, n_cols, window):
    gen = torch.Generator().manual_seed(2)
    centres = random_centres(n_rows, n_cols, 2)
    source_mask = torch.rand(3, n_rows, generator=gen) < 0.7
    victim_mask = torch.rand(3, n_cols, generator=gen) < 0.7
    valid = column_band_valid_mask(source_mask, victim_mask, centres, window)
    assert torch.equal(valid, loop_valid_mask(source_mask, victim_mask, centres, window))


def test_identity_centres_reduce_to_the_row_band_transpose():
    gen = torch.Generator().manual_seed(3)
    n_steps, window = 7, 2
    dense = torch.randn(2, n_steps, n_steps, generator=gen)
    identity = torch.arange(n_steps)[None].expand(2, n_steps)
    row = dense_to_band(dense, window)
    torch.testing.assert_close(
        dense_to_column_band(dense, identity, window), band_transpose(row, window, n_steps)
    )
    mask = lengths_to_mask([7, 4], n_steps)
    torch.testing.assert_close(
        column_band_valid_mask(mask, mask, identity, window),
        band_transpose(band_valid_mask(mask, mask, window), window, n_steps),
    )


def test_empty_axes():
    centres = torch.zeros(2, 3, dtype=torch.int64)
    index, in_range = column_band_index(centres, 1, 0)
    assert not in_range.any() and (index == 0).all()
    assert dense_to_column_band(torch.zeros(2, 0, 3), centres, 1).shape == (2, 3, 3)
    assert column_band_to_dense(torch.ones(2, 3, 3), centres, 1, 0).shape == (2, 0, 3)
    empty = torch.zeros(2, 0, dtype=torch.int64)
    assert dense_to_column_band(torch.zeros(2, 4, 0), empty, 1).shape == (2, 0, 3)
    assert column_band_to_dense(torch.zeros(2, 0, 3), empty, 1, 4).shape == (2, 4, 0)


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: column_band_index(torch.zeros(2, 3), 1, 4),
            r"`centres` must be an integer tensor of shape \(B, M\); got a torch.float32",
        ),
        (
            lambda: column_band_index(torch.zeros(3, dtype=torch.int64), 1, 4),
            r"`centres` must be an integer tensor of shape \(B, M\)",
        ),
        (
            lambda: column_band_index(torch.zeros(2, 3, dtype=torch.int64), -1, 4),
            r"`window` must be an integer >= 0; got -1",
        ),
        (
            lambda: column_band_index(torch.zeros(2, 3, dtype=torch.int64), 1, -4),
            r"`n_source` must be an integer >= 0; got -4",
        ),
        (
            lambda: dense_to_column_band(
                torch.zeros(3, 4), torch.zeros(3, 4, dtype=torch.int64), 1
            ),
            r"`dense` must have shape \(B, L, M\)",
        ),
        (
            lambda: dense_to_column_band(
                torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.int64), 1
            ),
            r"`centres` must be an integer tensor of shape \(2, 4\)",
        ),
        (
            lambda: column_band_to_dense(
                torch.zeros(2, 4, 5), torch.zeros(2, 4, dtype=torch.int64), 1, 3
            ),
            r"`band` must have shape \(B, M, 3\) for window K=1; .*\(2, 4, 5\)",
        ),
        (
            lambda: column_band_valid_mask(
                torch.ones(3, 4, dtype=torch.bool),
                torch.ones(2, 5, dtype=torch.bool),
                torch.zeros(2, 5, dtype=torch.int64),
                1,
            ),
            r"`source_mask` must have shape \(2, L\); got \(3, 4\)",
        ),
        (
            lambda: column_band_valid_mask(
                torch.ones(2, 4, dtype=torch.bool),
                torch.ones(2, 6, dtype=torch.bool),
                torch.zeros(2, 5, dtype=torch.int64),
                1,
            ),
            r"`victim_mask` must have shape \(2, 5\); got \(2, 6\)",
        ),
    ],
)
def test_band_helper_errors(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


# --------------------------------------------------------------------------- cost


def test_cost_equals_row_band_cost_with_equal_lengths():
    gen = torch.Generator().manual_seed(4)
    lengths, n_steps, window = [9, 6, 3], 9, 2
    z_source = torch.randn(3, n_steps, 5, generator=gen, dtype=torch.float64)
    z_victim = torch.randn(3, n_steps, 5, generator=gen, dtype=torch.float64)
    mask = lengths_to_mask(lengths, n_steps)
    centres = diagonal_centres(torch.tensor(lengths), torch.tensor(lengths), n_steps)
    ours = column_cosine_cost(z_source, z_victim, mask, mask, centres, window)
    row = windowed_cosine_cost(z_source, z_victim, mask, mask, window)
    expected = band_transpose(row.masked_fill(torch.isinf(row), 0), window, n_steps)
    valid = column_band_valid_mask(mask, mask, centres, window)
    assert torch.equal(torch.isfinite(ours), valid)
    assert valid.sum() > 0
    torch.testing.assert_close(ours[valid], expected[valid], atol=1e-12, rtol=0)


def test_cost_matches_dense_cosine_on_unequal_lengths(dtype):
    gen = torch.Generator().manual_seed(5)
    lengths_source, lengths_victim, window = [4, 11, 11], [23, 9, 30], 2
    z_source = torch.randn(3, 11, 6, generator=gen).to(dtype)
    z_victim = torch.randn(3, 30, 6, generator=gen).to(dtype)
    source_mask = lengths_to_mask(lengths_source, 11)
    victim_mask = lengths_to_mask(lengths_victim, 30)
    centres = diagonal_centres(torch.tensor(lengths_source), torch.tensor(lengths_victim), 30)
    cost = column_cosine_cost(z_source, z_victim, source_mask, victim_mask, centres, window)
    assert cost.dtype == dtype and cost.shape == (3, 30, 5)
    cosine = torch.nn.functional.cosine_similarity(
        z_source[:, :, None, :].double(), z_victim[:, None, :, :].double(), dim=-1
    )  # (B, L, M) dense reference, test only
    expected = loop_dense_to_column_band(1 - cosine, centres, window)
    valid = loop_valid_mask(source_mask, victim_mask, centres, window)
    assert torch.equal(torch.isfinite(cost), valid)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(cost[valid].double(), expected[valid], atol=tol, rtol=0)


def test_cost_gradient_flows_to_both_inputs_and_matches_autograd_reference():
    gen = torch.Generator().manual_seed(6)
    lengths_source, lengths_victim, window = [5, 3], [12, 7], 1
    z_source = torch.randn(2, 5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    z_victim = torch.randn(2, 12, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    source_mask = lengths_to_mask(lengths_source, 5)
    victim_mask = lengths_to_mask(lengths_victim, 12)
    centres = diagonal_centres(torch.tensor(lengths_source), torch.tensor(lengths_victim), 12)
    weights = torch.randn(2, 12, 3, generator=gen, dtype=torch.float64)
    cost = column_cosine_cost(z_source, z_victim, source_mask, victim_mask, centres, window)
    (torch.nan_to_num(cost, posinf=0.0) * weights).sum().backward()
    assert torch.isfinite(z_source.grad).all() and torch.isfinite(z_victim.grad).all()
    assert z_source.grad[0].abs().sum() > 0 and z_victim.grad[0].abs().sum() > 0
    assert z_source.grad[1, 3:].abs().sum() == 0  # padded source steps get no gradient
    assert z_victim.grad[1, 7:].abs().sum() == 0  # padded victim steps neither

    # reference: plain autograd through a dense cosine matrix (test only)
    ref_source = z_source.detach().clone().requires_grad_(True)
    ref_victim = z_victim.detach().clone().requires_grad_(True)
    cosine = torch.nn.functional.cosine_similarity(
        ref_source[:, :, None, :], ref_victim[:, None, :, :], dim=-1
    )  # (B, L, M)
    band = dense_to_column_band(1 - cosine, centres, window)
    valid = column_band_valid_mask(source_mask, victim_mask, centres, window)
    (band * weights * valid).sum().backward()
    torch.testing.assert_close(z_source.grad, ref_source.grad)
    torch.testing.assert_close(z_victim.grad, ref_victim.grad)


def test_cost_gradcheck():
    gen = torch.Generator().manual_seed(7)
    z_source = torch.randn(2, 4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    z_victim = torch.randn(2, 9, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    source_mask = lengths_to_mask([4, 2], 4)
    victim_mask = lengths_to_mask([9, 5], 9)
    centres = diagonal_centres(torch.tensor([4, 2]), torch.tensor([9, 5]), 9)

    def finite_cost(zs, zv):
        cost = column_cosine_cost(zs, zv, source_mask, victim_mask, centres, 1)
        return torch.nan_to_num(cost, posinf=0.0)

    assert torch.autograd.gradcheck(finite_cost, (z_source, z_victim))


def test_cost_without_source_steps_is_all_inf():
    z_source = torch.zeros(2, 0, 3)
    z_victim = torch.randn(2, 4, 3)
    cost = column_cosine_cost(
        z_source,
        z_victim,
        torch.zeros(2, 0, dtype=torch.bool),
        torch.ones(2, 4, dtype=torch.bool),
        torch.zeros(2, 4, dtype=torch.int64),
        1,
    )
    assert cost.shape == (2, 4, 3) and torch.isinf(cost).all()


def cost_args(**change):
    args = {
        "z_source": torch.zeros(2, 3, 4),
        "z_victim": torch.zeros(2, 5, 4),
        "source_mask": torch.ones(2, 3, dtype=torch.bool),
        "victim_mask": torch.ones(2, 5, dtype=torch.bool),
        "centres": torch.zeros(2, 5, dtype=torch.int64),
        "window": 1,
    }
    return {**args, **change}


@pytest.mark.parametrize(
    "change,match",
    [
        ({"z_source": torch.zeros(2, 3)}, r"`z_source` and `z_victim` must have shapes"),
        ({"z_victim": torch.zeros(2, 5, 6)}, r"`z_victim` must have shape \(2, M, 4\)"),
        (
            {"source_mask": torch.ones(2, 4, dtype=torch.bool)},
            r"`source_mask` must have shape \(2, 3\)",
        ),
        (
            {"victim_mask": torch.ones(2, 3, dtype=torch.bool)},
            r"`victim_mask` must have shape \(2, 5\)",
        ),
        (
            {"centres": torch.zeros(2, 3, dtype=torch.int64)},
            r"`centres` must be an integer tensor of shape \(2, 5\)",
        ),
        ({"centres": torch.zeros(2, 5)}, r"`centres` must be an integer tensor"),
        ({"window": 1.5}, r"`window` must be an integer >= 0; got 1.5"),
        ({"eps": 0.0}, r"`eps` must be a number > 0; got 0.0"),
    ],
)
def test_cost_errors(change, match):
    with pytest.raises(ConfigError, match=match):
        column_cosine_cost(**cost_args(**change))


# --------------------------------------------------------------------------- Sinkhorn


@pytest.mark.parametrize(
    "lengths_source,lengths_victim,n_steps,window,reg,max_iter",
    [
        ([10, 7, 4], [10, 7, 4], 10, 2, 0.1, 20000),
        ([12, 9, 12, 5], [12, 9, 10, 6], 12, 3, 0.1, 20000),  # n != m on one shared axis
        # small reg, far from converged after 150 iterations: the iterates themselves agree
        ([8, 5, 7], [8, 5, 7], 8, 2, 0.02, 150),
    ],
)
def test_plan_equals_row_band_solver_on_one_time_axis(
    lengths_source, lengths_victim, n_steps, window, reg, max_iter
):
    # identity centres reproduce the window |i - j| <= K of sinkhorn_banded exactly
    warnings.simplefilter("ignore", ConvergenceWarning)  # pytest restores the filters
    gen = torch.Generator().manual_seed(8)
    batch = len(lengths_source)
    z_source = torch.randn(batch, n_steps, 16, generator=gen, dtype=torch.float64)
    z_victim = z_source + 2.0 * torch.randn(batch, n_steps, 16, generator=gen, dtype=torch.float64)
    source_mask = lengths_to_mask(lengths_source, n_steps)
    victim_mask = lengths_to_mask(lengths_victim, n_steps)
    row_cost = windowed_cosine_cost(z_source, z_victim, source_mask, victim_mask, window)
    expected = sinkhorn_banded(
        row_cost, source_mask, victim_mask, window=window, reg=reg, max_iter=max_iter, tol=1e-13
    )
    identity = torch.arange(n_steps)[None].expand(batch, n_steps)
    # band_transpose writes 0 (not +inf) where the source step is out of range: the solver
    # must ignore entries outside the valid mask whatever they hold
    col_cost = band_transpose(row_cost, window, n_steps)
    if lengths_source == lengths_victim:
        # with equal lengths the rescaled diagonal is the identity on valid steps
        centres = diagonal_centres(
            torch.tensor(lengths_source), torch.tensor(lengths_victim), n_steps
        )
        assert torch.equal(centres[victim_mask], identity[victim_mask])
        valid = column_band_valid_mask(source_mask, victim_mask, centres, window)
        ours = column_cosine_cost(z_source, z_victim, source_mask, victim_mask, centres, window)
        torch.testing.assert_close(ours[valid], col_cost[valid], atol=1e-12, rtol=0)
    else:
        centres = identity
    result = sinkhorn_columns(
        col_cost,
        source_mask,
        victim_mask,
        centres,
        window=window,
        reg=reg,
        max_iter=max_iter,
        tol=1e-13,
    )
    assert result.n_iter == expected.n_iter
    assert torch.equal(result.converged, expected.converged)
    assert result.converged.all() == (max_iter == 20000)
    torch.testing.assert_close(
        result.plan, band_transpose(expected.plan, window, n_steps), atol=1e-12, rtol=0
    )


BARRIER = 1e4  # finite stand-in for +inf in POT's dense cost: exp(-BARRIER / reg) == 0

# (n, m) per sample in one padded batch: m > n by 8x to 26x, and one m < n
UNEQUAL = ([5, 12, 5, 12, 12], [40, 130, 130, 40, 5])


@pytest.mark.parametrize("window,reg", [(3, 0.1), (5, 0.05)])
def test_unequal_lengths_agree_with_pot(window, reg):
    # the POT oracle is an optional test dependency; ask for a submodule because, without
    # POT, the folder tests/ot itself imports as an empty namespace package named `ot`
    pytest.importorskip("ot.bregman")
    import ot

    lengths_source, lengths_victim = UNEQUAL
    cost, source_mask, victim_mask, centres = make_unequal(
        lengths_source, lengths_victim, 12, 130, window, seed=window
    )
    result = sinkhorn_columns(
        cost, source_mask, victim_mask, centres, window=window, reg=reg, max_iter=50000, tol=1e-12
    )
    assert result.converged.all()
    plan = column_band_to_dense(result.plan, centres, window, 12)  # (B, L, M)
    assert torch.isfinite(plan).all()
    dense_cost = column_band_to_dense(torch.nan_to_num(cost, posinf=0.0), centres, window, 12)
    inside = window_mask(centres, window, 12)
    for b, (n, m) in enumerate(zip(lengths_source, lengths_victim)):
        sample_cost = dense_cost[b].masked_fill(~inside[b], BARRIER)[:n, :m].numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the assertion below is the oracle
            expected = ot.sinkhorn(
                np.full(n, 1 / n),
                np.full(m, 1 / m),
                sample_cost,
                reg,
                method="sinkhorn_log",
                numItermax=50000,
                stopThr=1e-13,
            )
        np.testing.assert_allclose(plan[b, :n, :m].numpy(), expected, atol=1e-8, rtol=0)
        # uniform marginals, nothing outside the window or on padded steps
        np.testing.assert_allclose(plan[b, :n].sum(1).numpy(), np.full(n, 1 / n), atol=1e-10)
        np.testing.assert_allclose(plan[b, :, :m].sum(0).numpy(), np.full(m, 1 / m), atol=1e-10)
        assert plan[b][~inside[b]].abs().sum() == 0
        assert plan[b, n:].abs().sum() == 0 and plan[b, :, m:].abs().sum() == 0


def test_plan_matches_in_test_dense_log_sinkhorn():
    # an independent tiny reference: textbook dense log-domain Sinkhorn with +inf outside
    lengths_source, lengths_victim, window, reg = [6, 9], [17, 4], 2, 0.2
    cost, source_mask, victim_mask, centres = make_unequal(
        lengths_source, lengths_victim, 9, 17, window, seed=9
    )
    result = sinkhorn_columns(
        cost, source_mask, victim_mask, centres, window=window, reg=reg, max_iter=20000, tol=1e-13
    )
    plan = column_band_to_dense(result.plan, centres, window, 9)
    dense = column_band_to_dense(torch.nan_to_num(cost, posinf=0.0), centres, window, 9)
    dense = dense.masked_fill(~window_mask(centres, window, 9), math.inf)
    for b, (n, m) in enumerate(zip(lengths_source, lengths_victim)):
        log_kernel = -dense[b, :n, :m] / reg
        f = torch.zeros(n, dtype=torch.float64)
        g = torch.zeros(m, dtype=torch.float64)
        for _ in range(5000):
            f = -math.log(n) - torch.logsumexp(log_kernel + g[None, :], dim=1)
            g = -math.log(m) - torch.logsumexp(log_kernel + f[:, None], dim=0)
        expected = torch.exp(log_kernel + f[:, None] + g[None, :])
        torch.testing.assert_close(plan[b, :n, :m], expected, atol=1e-10, rtol=0)


def test_marginals_zeros_and_no_nan(dtype, device):
    lengths_source, lengths_victim = UNEQUAL
    cost, source_mask, victim_mask, centres = make_unequal(
        lengths_source, lengths_victim, 12, 130, 3, seed=1
    )
    cost, source_mask = cost.to(dtype=dtype, device=device), source_mask.to(device)
    victim_mask, centres = victim_mask.to(device), centres.to(device)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    result = sinkhorn_columns(
        cost, source_mask, victim_mask, centres, window=3, reg=0.1, max_iter=5000, tol=tol
    )
    assert result.plan.dtype == dtype and result.plan.device.type == device.type
    assert result.converged.all() and (result.marginal_error <= tol).all()
    for name in ("plan", "log_u", "log_v"):
        assert torch.isfinite(getattr(result, name)).all(), name
    assert (result.plan[torch.isinf(cost)] == 0).all()
    plan = column_band_to_dense(result.plan.cpu(), centres.cpu(), 3, 12)
    n = torch.tensor(lengths_source, dtype=dtype)
    m = torch.tensor(lengths_victim, dtype=dtype)
    torch.testing.assert_close(
        plan.sum(2), (source_mask.cpu() / n[:, None]).to(dtype), atol=tol, rtol=0
    )
    torch.testing.assert_close(
        plan.sum(1), (victim_mask.cpu() / m[:, None]).to(dtype), atol=tol, rtol=0
    )


def test_per_sample_reg_equals_solving_each_sample_alone():
    lengths_source, lengths_victim = UNEQUAL
    cost, source_mask, victim_mask, centres = make_unequal(
        lengths_source, lengths_victim, 12, 130, 4, seed=2
    )
    reg = torch.tensor([0.05, 0.1, 0.3, 0.2, 0.5], dtype=torch.float64)
    batch = sinkhorn_columns(
        cost, source_mask, victim_mask, centres, window=4, reg=reg, max_iter=20000, tol=1e-12
    )
    assert batch.converged.all()
    for b in range(len(lengths_source)):
        alone = sinkhorn_columns(
            cost[b : b + 1],
            source_mask[b : b + 1],
            victim_mask[b : b + 1],
            centres[b : b + 1],
            window=4,
            reg=float(reg[b]),
            max_iter=20000,
            tol=1e-12,
        )
        torch.testing.assert_close(batch.plan[b : b + 1], alone.plan, atol=1e-11, rtol=0)
    # a different reg per sample really changes the plans (the test can fail)
    shared = sinkhorn_columns(
        cost, source_mask, victim_mask, centres, window=4, reg=0.1, max_iter=20000, tol=1e-12
    )
    assert (batch.plan[0] - shared.plan[0]).abs().max() > 1e-4


def test_padding_content_does_not_matter():
    cost, source_mask, victim_mask, centres = make_unequal([5, 3], [20, 9], 5, 20, 2, seed=3)
    noisy = cost.clone()
    invalid = ~column_band_valid_mask(source_mask, victim_mask, centres, 2)
    noisy[invalid] = 0.123  # finite garbage outside the valid entries is ignored
    first = sinkhorn_columns(
        cost, source_mask, victim_mask, centres, window=2, tol=1e-10, max_iter=3000
    )
    second = sinkhorn_columns(
        noisy, source_mask, victim_mask, centres, window=2, tol=1e-10, max_iter=3000
    )
    torch.testing.assert_close(first.plan, second.plan)


def test_zero_window_with_equal_lengths_is_the_diagonal():
    cost, source_mask, victim_mask, centres = make_unequal([6, 4], [6, 4], 6, 6, 0, seed=4)
    result = sinkhorn_columns(cost, source_mask, victim_mask, centres, window=0, reg=0.1)
    assert result.converged.all() and result.plan.shape == (2, 6, 1)
    expected = victim_mask / torch.tensor([6.0, 4.0], dtype=torch.float64)[:, None]
    torch.testing.assert_close(result.plan[:, :, 0], expected)


def test_empty_samples_get_a_zero_plan_and_count_as_converged():
    # empty victim, empty source, both empty, and a normal sample next to them
    cost, source_mask, victim_mask, centres = make_unequal(
        [5, 0, 0, 4], [0, 7, 0, 9], 5, 9, 1, seed=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = sinkhorn_columns(
            cost, source_mask, victim_mask, centres, window=1, reg=0.1, tol=1e-9, max_iter=2000
        )
    assert result.converged.tolist() == [True, True, True, True]
    for name in ("plan", "log_u", "log_v", "marginal_error"):
        assert torch.isfinite(getattr(result, name)).all(), name
    assert (result.plan[:3] == 0).all()
    assert result.plan[3].sum().item() == pytest.approx(1.0)


def test_all_padding_and_empty_axes():
    cost, source_mask, victim_mask, centres = make_unequal([0, 0], [0, 0], 4, 6, 1)
    result = sinkhorn_columns(cost, source_mask, victim_mask, centres, window=1)
    assert (result.plan == 0).all() and result.converged.all()
    assert torch.isfinite(result.log_u).all() and torch.isfinite(result.log_v).all()
    # no source axis at all, no victim axis at all, no sample at all
    no_source = sinkhorn_columns(
        torch.zeros(2, 3, 3),
        torch.zeros(2, 0, dtype=torch.bool),
        torch.ones(2, 3, dtype=torch.bool),
        torch.zeros(2, 3, dtype=torch.int64),
        window=1,
    )
    assert (no_source.plan == 0).all() and no_source.converged.all()
    assert no_source.log_u.shape == (2, 0)
    no_victim = sinkhorn_columns(
        torch.zeros(2, 0, 3),
        torch.ones(2, 4, dtype=torch.bool),
        torch.zeros(2, 0, dtype=torch.bool),
        torch.zeros(2, 0, dtype=torch.int64),
        window=1,
    )
    assert no_victim.plan.shape == (2, 0, 3) and no_victim.converged.all()
    no_sample = sinkhorn_columns(
        torch.zeros(0, 3, 3),
        torch.zeros(0, 4, dtype=torch.bool),
        torch.zeros(0, 3, dtype=torch.bool),
        torch.zeros(0, 3, dtype=torch.int64),
        window=1,
    )
    assert no_sample.plan.shape == (0, 3, 3) and no_sample.converged.shape == (0,)


@pytest.mark.parametrize("reg", [0.1, 0.01])
def test_infeasible_narrow_window_stays_finite_and_reports(reg, dtype):
    # n=12 source steps against m=2 victim steps with K=1: centres 3 and 9 reach only
    # source steps 2-4 and 8-10, the other six have no partner
    cost, source_mask, victim_mask, centres = make_unequal([12, 4], [2, 10], 12, 10, 1, seed=6)
    assert centres[0, :2].tolist() == [3, 9]
    with pytest.warns(ConvergenceWarning, match=r"max_iter=200 .*reg="):
        result = sinkhorn_columns(
            cost.to(dtype), source_mask, victim_mask, centres, window=1, reg=reg, max_iter=200
        )
    for name in ("plan", "log_u", "log_v", "marginal_error"):
        assert torch.isfinite(getattr(result, name)).all(), name
    assert not result.converged[0] and result.marginal_error[0] > 0.4
    if reg == 0.1:  # the feasible sample next to it still converges
        assert result.converged[1]


def test_convergence_warning_names_max_iter_and_reg():
    cost, source_mask, victim_mask, centres = make_unequal([8], [30], 8, 30, 2, seed=7)
    with pytest.warns(ConvergenceWarning, match=r"max_iter=3 .*reg=0.01"):
        result = sinkhorn_columns(
            cost, source_mask, victim_mask, centres, window=2, reg=0.01, max_iter=3, tol=1e-14
        )
    assert result.n_iter == 3 and not result.converged.any()
    reg = torch.tensor([0.01], dtype=torch.float64)
    with pytest.warns(ConvergenceWarning, match=r"reg in \[0.01, 0.01\] per sample"):
        sinkhorn_columns(
            cost, source_mask, victim_mask, centres, window=2, reg=reg, max_iter=3, tol=1e-14
        )


def test_checks_every_check_every_iterations():
    cost, source_mask, victim_mask, centres = make_unequal([6, 9], [20, 9], 9, 20, 2, seed=8)
    result = sinkhorn_columns(
        cost,
        source_mask,
        victim_mask,
        centres,
        window=2,
        reg=0.5,
        tol=1e-9,
        max_iter=1000,
        check_every=7,
    )
    assert result.converged.all() and result.n_iter % 7 == 0


def test_follows_the_callers_grad_mode():
    cost, source_mask, victim_mask, centres = make_unequal([4, 3], [9, 7], 4, 9, 1, seed=9)
    cost = cost.clone().requires_grad_(True)
    with torch.no_grad():
        quiet = sinkhorn_columns(
            cost, source_mask, victim_mask, centres, window=1, tol=1e-8, max_iter=500
        )
    assert not quiet.plan.requires_grad
    result = sinkhorn_columns(
        cost, source_mask, victim_mask, centres, window=1, tol=1e-8, max_iter=500
    )
    assert result.plan.requires_grad
    (result.plan * torch.nan_to_num(cost.detach(), posinf=0.0)).sum().backward()
    assert torch.isfinite(cost.grad).all() and cost.grad.abs().sum() > 0
    torch.testing.assert_close(result.plan.detach(), quiet.plan)


def solver_args(**change):
    args = {
        "cost": torch.zeros(2, 5, 3),
        "source_mask": torch.ones(2, 4, dtype=torch.bool),
        "victim_mask": torch.ones(2, 5, dtype=torch.bool),
        "centres": torch.zeros(2, 5, dtype=torch.int64),
        "window": 1,
    }
    return {**args, **change}


@pytest.mark.parametrize(
    "change,match",
    [
        ({"reg": 0.0}, r"`reg` must be a number > 0; got 0.0"),
        ({"reg": -1}, r"`reg` must be a number > 0; got -1"),
        ({"reg": torch.ones(3)}, r"`reg` must be a number > 0 or a float tensor of shape \(2,\)"),
        (
            {"reg": torch.ones(2, dtype=torch.int64)},
            r"`reg` must be a number > 0 or a float tensor of shape \(2,\); got a torch.int64",
        ),
        ({"reg": torch.tensor([0.1, 0.0])}, r"`reg` must be finite and > 0 in every sample"),
        ({"reg": torch.tensor([0.1, math.inf])}, r"`reg` must be finite and > 0 in every sample"),
        ({"tol": 0}, r"`tol` must be a number > 0; got 0"),
        ({"max_iter": 0}, r"`max_iter` must be an integer >= 1; got 0"),
        ({"check_every": 2.5}, r"`check_every` must be an integer >= 1; got 2.5"),
        ({"window": -1}, r"`window` must be an integer >= 0; got -1"),
        ({"window": 2}, r"`cost` must have shape \(B, M, 5\) for window K=2; got \(2, 5, 3\)"),
        ({"cost": torch.zeros(2, 5, 3, dtype=torch.int64)}, r"`cost` must be a float32 or float64"),
        (
            {"source_mask": torch.ones(3, 4, dtype=torch.bool)},
            r"`source_mask` must have shape \(2, L\)",
        ),
        (
            {"source_mask": torch.ones(2, dtype=torch.bool)},
            r"`source_mask` must have shape \(2, L\)",
        ),
        (
            {"victim_mask": torch.ones(2, 4, dtype=torch.bool)},
            r"`victim_mask` must have shape \(2, 5\)",
        ),
        ({"centres": torch.zeros(2, 5)}, r"`centres` must be an integer tensor of shape \(2, 5\)"),
        (
            {"centres": torch.zeros(2, 4, dtype=torch.int64)},
            r"`centres` must be an integer tensor of shape \(2, 5\); got a torch.int64 tensor",
        ),
    ],
)
def test_solver_errors(change, match):
    with pytest.raises(ConfigError, match=match):
        sinkhorn_columns(**solver_args(**change))
