import math
import warnings

import numpy as np
import pytest
import torch

from mmalign.ot import band_to_dense, sinkhorn_banded, windowed_cosine_cost
from mmalign.validation import ConfigError, ConvergenceWarning


def lengths_to_mask(lengths, n_steps):
    """(B,) lengths -> (B, n_steps) bool mask, valid steps first."""
    return torch.arange(n_steps)[None, :] < torch.as_tensor(lengths)[:, None]


BARRIER = 1e6  # finite stand-in for +inf in POT's dense cost: its plan is ~0 there


def make_batch(
    lengths_source,
    lengths_victim,
    n_steps,
    window,
    dtype=torch.float64,
    seed=0,
    device="cpu",
    dim=64,
    noise=3.0,
):
    """Random cost band. Sinkhorn converges slowly when the plan is close to a permutation
    with weak couplings (rate ~ 1 - exp(-cost gap / reg)), so the defaults (wide, noisy
    features: costs near 1) keep the problems well conditioned at reg = 0.1."""
    gen = torch.Generator().manual_seed(seed)
    batch = len(lengths_source)
    shape = (batch, n_steps, dim)
    z_source = torch.randn(*shape, generator=gen, dtype=torch.float64)
    z_victim = z_source + noise * torch.randn(*shape, generator=gen, dtype=torch.float64)
    source_mask = lengths_to_mask(lengths_source, n_steps)
    victim_mask = lengths_to_mask(lengths_victim, n_steps)
    cost = windowed_cosine_cost(z_source, z_victim, source_mask, victim_mask, window)
    return cost.to(dtype=dtype, device=device), source_mask.to(device), victim_mask.to(device)


def dense_cost_for_pot(cost, window, n_source, n_victim, b):
    """Dense (n, m) cost of sample b with the barrier outside the window."""
    n_steps = cost.shape[1]
    dense = band_to_dense(torch.nan_to_num(cost, posinf=0.0), window, n_steps)[b]
    offset = torch.arange(n_steps)[:, None] - torch.arange(n_steps)[None, :]
    dense = dense.masked_fill(offset.abs() > window, BARRIER)
    return dense[:n_source, :n_victim].double().numpy()


def dense_log_sinkhorn(cost, reg, n_iter):
    """Tiny reference: textbook log-domain Sinkhorn on one dense (n, m) cost (inf allowed)."""
    n, m = cost.shape
    log_a = torch.full((n,), -math.log(n), dtype=torch.float64)
    log_b = torch.full((m,), -math.log(m), dtype=torch.float64)
    log_kernel = -cost / reg
    f = torch.zeros(n, dtype=torch.float64)
    g = torch.zeros(m, dtype=torch.float64)
    for _ in range(n_iter):
        f = log_a - torch.logsumexp(log_kernel + g[None, :], dim=1)
        g = log_b - torch.logsumexp(log_kernel + f[:, None], dim=0)
    return torch.exp(log_kernel + f[:, None] + g[None, :])


CASES = [
    # (source lengths, victim lengths, L, K, reg, feature width, noise)
    ([10, 7, 4], [10, 7, 4], 10, 2, 0.1, 64, 3.0),
    ([12, 9, 12, 5], [12, 9, 10, 6], 12, 3, 0.1, 64, 3.0),
    ([16, 11], [13, 11], 16, 3, 0.2, 64, 3.0),
    ([12, 9, 12, 5], [12, 9, 10, 6], 12, 3, 0.5, 6, 0.7),
    # small reg: the log domain stays finite where exp(-cost / reg) underflows
    ([8, 5, 7], [8, 5, 7], 8, 2, 0.01, 6, 0.3),
    ([6, 3], [5, 3], 6, 8, 0.1, 64, 3.0),  # K >= L: plain dense OT
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lengths_source,lengths_victim,n_steps,window,reg,dim,noise", CASES)
def test_agrees_with_pot(lengths_source, lengths_victim, n_steps, window, reg, dim, noise, seed):
    # the POT oracle is an optional test dependency; ask for a submodule because, without
    # POT, the folder tests/ot itself imports as an empty namespace package named `ot`
    pytest.importorskip("ot.bregman")
    import ot

    cost, source_mask, victim_mask = make_batch(
        lengths_source, lengths_victim, n_steps, window, seed=seed, dim=dim, noise=noise
    )
    result = sinkhorn_banded(
        cost, source_mask, victim_mask, window=window, reg=reg, max_iter=20000, tol=1e-10
    )
    assert result.converged.all()
    plan = band_to_dense(result.plan, window, n_steps)
    assert torch.isfinite(plan).all()
    for b, (n, m) in enumerate(zip(lengths_source, lengths_victim)):
        dense = dense_cost_for_pot(cost, window, n, m, b)
        with warnings.catch_warnings():
            # POT's own stopping test can stall near 1e-10 at reg = 0.01 although its plan has
            # converged to far below atol; the assertion below is the oracle
            warnings.simplefilter("ignore")
            expected = ot.sinkhorn(
                np.full(n, 1 / n),
                np.full(m, 1 / m),
                dense,
                reg,
                method="sinkhorn_log",
                numItermax=5000,
                stopThr=1e-10,
            )
        np.testing.assert_allclose(plan[b, :n, :m].numpy(), expected, atol=1e-6, rtol=0)
        assert plan[b, n:].abs().sum() == 0 and plan[b, :, m:].abs().sum() == 0


def test_agrees_with_in_test_dense_reference():
    cost, source_mask, victim_mask = make_batch([9, 6], [9, 6], 9, 2, seed=3)
    result = sinkhorn_banded(
        cost, source_mask, victim_mask, window=2, reg=0.2, max_iter=5000, tol=1e-12
    )
    for b, n in enumerate([9, 6]):
        dense_cost = band_to_dense(cost.masked_fill(torch.isinf(cost), 0), 2, 9)[b, :n, :n]
        offset = torch.arange(n)[:, None] - torch.arange(n)[None, :]
        dense_cost = dense_cost.masked_fill(offset.abs() > 2, math.inf)
        expected = dense_log_sinkhorn(dense_cost, 0.2, 3000)
        got = band_to_dense(result.plan, 2, 9)[b, :n, :n]
        torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)


def test_hand_computed_two_by_two():
    # K >= 1 on 2 x 2 with cost [[0, c], [c, 0]]: plan = [[p, q], [q, p]] / 2 where
    # p / q = exp(c / reg) by symmetry, so the diagonal entry is 0.5 / (1 + exp(-c / reg))
    c, reg = 1.0, 0.5
    inf = math.inf
    cost = torch.tensor([[[inf, 0.0, c], [c, 0.0, inf]]], dtype=torch.float64)
    mask = torch.ones(1, 2, dtype=torch.bool)
    result = sinkhorn_banded(cost, mask, mask, window=1, reg=reg, tol=1e-12, max_iter=1000)
    diag = 0.5 / (1 + math.exp(-c / reg))
    expected = torch.tensor(
        [[[0.0, diag, 0.5 - diag], [0.5 - diag, diag, 0.0]]], dtype=torch.float64
    )
    torch.testing.assert_close(result.plan, expected)


def test_marginals_zeros_and_no_nan(dtype, device):
    lengths = [15, 11, 6, 1]
    cost, source_mask, victim_mask = make_batch(lengths, lengths, 15, 3, dtype=dtype, device=device)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    result = sinkhorn_banded(
        cost, source_mask, victim_mask, window=3, reg=0.1, max_iter=5000, tol=tol
    )
    plan = result.plan
    assert plan.dtype == dtype and plan.device.type == device.type
    assert result.converged.all() and (result.marginal_error <= tol).all()
    assert not torch.isnan(plan).any() and not torch.isnan(result.log_u).any()
    assert not torch.isnan(result.log_v).any()
    # exact zeros outside the window (infinite cost) and on padded rows / columns
    assert (plan[torch.isinf(cost)] == 0).all()
    assert (plan[~source_mask] == 0).all()
    dense = band_to_dense(plan, 3, 15)
    assert (dense.transpose(1, 2)[~victim_mask] == 0).all()
    counts = torch.tensor(lengths, dtype=dtype, device=device)
    row_target = source_mask / counts[:, None]
    col_target = victim_mask / counts[:, None]
    torch.testing.assert_close(dense.sum(2), row_target.to(dtype), atol=tol, rtol=0)
    torch.testing.assert_close(dense.sum(1), col_target.to(dtype), atol=tol, rtol=0)


@pytest.mark.parametrize("length", [1, 2, 3])
def test_lengths_up_to_window_and_window_beyond_length(length):
    window = 3
    cost, source_mask, victim_mask = make_batch([length, 6], [length, 6], 6, window)
    result = sinkhorn_banded(
        cost, source_mask, victim_mask, window=window, reg=0.1, max_iter=2000, tol=1e-10
    )
    assert result.converged.all()
    dense = band_to_dense(result.plan, window, 6)
    torch.testing.assert_close(dense[0].sum(), torch.tensor(1.0, dtype=torch.float64))
    if length == 1:
        assert dense[0, 0, 0] == pytest.approx(1.0)


def test_empty_sample_gives_zero_plan():
    cost, source_mask, victim_mask = make_batch([0, 5, 0], [0, 5, 3], 5, 2)
    with pytest.warns(ConvergenceWarning):  # sample 2 has victim steps but no source step
        result = sinkhorn_banded(
            cost, source_mask, victim_mask, window=2, reg=0.1, tol=1e-9, max_iter=500
        )
    assert torch.isfinite(result.plan).all()
    assert (result.plan[0] == 0).all() and (result.plan[2] == 0).all()
    assert result.converged.tolist() == [True, True, False]
    assert result.plan[1].sum().item() == pytest.approx(1.0)


def test_all_empty_batch_converges_to_zeros():
    cost, source_mask, victim_mask = make_batch([0, 0], [0, 0], 4, 1)
    result = sinkhorn_banded(cost, source_mask, victim_mask, window=1)
    assert (result.plan == 0).all() and result.converged.all()


@pytest.mark.parametrize("reg", [0.1, 0.01])
def test_infeasible_band_stays_finite_and_reports(reg, dtype):
    # 12 source steps against 2 victim steps with K = 1: rows 3.. have no partner
    cost, source_mask, victim_mask = make_batch([12, 4], [2, 4], 12, 1, dtype=dtype)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        result = sinkhorn_banded(cost, source_mask, victim_mask, window=1, reg=reg, max_iter=200)
    assert torch.isfinite(result.plan).all() and torch.isfinite(result.log_u).all()
    assert torch.isfinite(result.log_v).all()
    assert not result.converged[0] and result.marginal_error[0] > 0.5
    if reg == 0.1:  # the feasible sample next to it still converges
        assert result.converged[1]


def test_convergence_warning_names_max_iter_and_reg():
    cost, source_mask, victim_mask = make_batch([20], [20], 20, 2)
    with pytest.warns(ConvergenceWarning, match=r"max_iter=3 .*reg=0.01"):
        result = sinkhorn_banded(
            cost, source_mask, victim_mask, window=2, reg=0.01, max_iter=3, tol=1e-12
        )
    assert result.n_iter == 3 and not result.converged.any()


def test_checks_every_check_every_iterations():
    cost, source_mask, victim_mask = make_batch([10, 8], [10, 8], 10, 2)
    result = sinkhorn_banded(
        cost, source_mask, victim_mask, window=2, reg=0.5, tol=1e-8, max_iter=1000, check_every=7
    )
    assert result.converged.all() and result.n_iter % 7 == 0


def test_no_gradient_through_solver():
    cost, source_mask, victim_mask = make_batch([6], [6], 6, 2)
    cost = cost.clone().requires_grad_(True)
    result = sinkhorn_banded(cost, source_mask, victim_mask, window=2, tol=1e-4)
    assert not result.plan.requires_grad and not result.log_u.requires_grad


def test_padding_content_does_not_matter():
    cost, source_mask, victim_mask = make_batch([7, 4], [7, 5], 7, 2)
    noisy = cost.clone()
    noisy[1, 4:] = 0.123  # finite garbage on padded rows is ignored
    first = sinkhorn_banded(cost, source_mask, victim_mask, window=2, tol=1e-10, max_iter=3000)
    second = sinkhorn_banded(noisy, source_mask, victim_mask, window=2, tol=1e-10, max_iter=3000)
    torch.testing.assert_close(first.plan, second.plan)


@pytest.mark.parametrize("omega", [1.5, 1.8, 1.99])
def test_overrelaxation_reaches_the_same_plan(omega):
    cost, source_mask, victim_mask = make_batch(
        [30, 22, 9], [30, 22, 9], 30, 3, seed=5, dim=32, noise=2.0
    )
    plain = sinkhorn_banded(
        cost, source_mask, victim_mask, window=3, reg=0.1, tol=1e-10, max_iter=20000
    )
    relaxed = sinkhorn_banded(
        cost,
        source_mask,
        victim_mask,
        window=3,
        reg=0.1,
        tol=1e-10,
        max_iter=20000,
        overrelaxation=omega,
    )
    assert relaxed.converged.all()
    torch.testing.assert_close(relaxed.plan, plain.plan, atol=1e-8, rtol=0)
    if omega <= 1.8:
        assert relaxed.n_iter < plain.n_iter


def good_args():
    cost, source_mask, victim_mask = make_batch([4], [4], 4, 1)
    return {"cost": cost, "source_mask": source_mask, "victim_mask": victim_mask, "window": 1}


@pytest.mark.parametrize(
    "change,match",
    [
        ({"reg": 0.0}, r"`reg` must be a number > 0; got 0.0"),
        ({"reg": -1}, r"`reg` must be a number > 0; got -1"),
        ({"tol": 0}, r"`tol` must be a number > 0; got 0"),
        ({"max_iter": 0}, r"`max_iter` must be an integer >= 1; got 0"),
        ({"check_every": 2.5}, r"`check_every` must be an integer >= 1; got 2.5"),
        ({"window": -1}, r"`window` must be an integer >= 0; got -1"),
        ({"window": 2}, r"`cost` must have shape \(B, L, 5\) for window K=2; got \(1, 4, 3\)"),
        ({"overrelaxation": 2.0}, r"`overrelaxation` must be in \[1, 2\); got 2.0"),
        ({"cost": torch.zeros(1, 4, 3, dtype=torch.int64)}, r"`cost` must be a float32 or float64"),
        (
            {"source_mask": torch.ones(1, 5, dtype=torch.bool)},
            r"`source_mask` must have shape \(1, 4\)",
        ),
        (
            {"victim_mask": torch.ones(2, 4, dtype=torch.bool)},
            r"`victim_mask` must have shape \(1, M\)",
        ),
    ],
)
def test_argument_errors(change, match):
    with pytest.raises(ConfigError, match=match):
        sinkhorn_banded(**{**good_args(), **change})


def test_underflowing_scaling_falls_back_to_the_log_domain_and_matches_float64():
    # costs in [1, 3] at reg 0.01: exp(-cost / reg) underflows to 0 in float32, so the
    # multiplicative fast path cannot run; the answer must still be the float64 plan
    g = torch.Generator().manual_seed(3)
    b, n, k = 3, 9, 2
    lengths = torch.tensor([9, 6, 4])
    mask = torch.arange(n)[None] < lengths[:, None]
    z_s = torch.randn(b, n, 5, generator=g, dtype=torch.float64)
    z_v = torch.randn(b, n, 5, generator=g, dtype=torch.float64)
    cost = windowed_cosine_cost(z_s, z_v, mask, mask, k) + 1.0  # (B, L, W), inf stays inf
    assert float(torch.exp(-cost[torch.isfinite(cost)].float() / 0.01).max()) == 0.0
    with warnings.catch_warnings():  # same iteration budget for both; convergence is not the point
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = sinkhorn_banded(
            cost, mask, mask, window=k, reg=0.01, max_iter=3000, tol=1e-9, check_every=5
        )
        low = sinkhorn_banded(
            cost.float(), mask, mask, window=k, reg=0.01, max_iter=3000, tol=1e-6, check_every=5
        )
    assert torch.isfinite(low.plan).all()
    torch.testing.assert_close(low.plan.double(), ref.plan, atol=2e-5, rtol=0)
