"""The semi-relaxed source marginal of ``sinkhorn_columns`` against POT's unbalanced solver."""

import numpy as np
import ot
import pytest
import torch

from mmalign.ot.column_band import (
    column_band_to_dense,
    column_cosine_cost,
    diagonal_centres,
    sinkhorn_columns,
)


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    n, m = torch.tensor([5, 7, 3]), torch.tensor([23, 40, 9])
    zs = torch.randn(3, 7, 4, generator=g, dtype=torch.float64)
    zv = torch.randn(3, 40, 4, generator=g, dtype=torch.float64)
    sm = torch.arange(7)[None] < n[:, None]
    vm = torch.arange(40)[None] < m[:, None]
    centres = diagonal_centres(n, m, 40)
    return zs, zv, sm, vm, centres, n, m


@pytest.mark.filterwarnings("ignore:If reg_type = entropy")
@pytest.mark.parametrize("rho", [0.02, 0.1, 1.0])
def test_relaxed_plan_matches_pot_unbalanced(rho):
    zs, zv, sm, vm, centres, n, m = _problem()
    window, reg = 2, 0.05
    cost = column_cosine_cost(zs, zv, sm, vm, centres, window)
    result = sinkhorn_columns(
        cost, sm, vm, centres, window=window, reg=reg, max_iter=5000, tol=1e-12,
        source_relaxation=rho,
    )  # fmt: skip
    dense = column_band_to_dense(result.plan, centres, window, 7)  # (B, L, M)
    full = column_band_to_dense(torch.where(torch.isfinite(cost), cost, 0.0), centres, window, 7)
    inside = column_band_to_dense(torch.isfinite(cost).double(), centres, window, 7) > 0
    for b in range(3):
        nb, mb = int(n[b]), int(m[b])
        cost_b = torch.where(inside[b], full[b], 1e3)[:nb, :mb].numpy()  # exp(-1e3/reg) = 0
        a, w = np.full(nb, 1.0 / nb), np.full(mb, 1.0 / mb)
        ref = ot.unbalanced.sinkhorn_unbalanced(
            a, w, cost_b, reg, (rho, np.inf), reg_type="entropy", numItermax=20000,
            stopThr=1e-14,
        )  # fmt: skip
        np.testing.assert_allclose(dense[b, :nb, :mb].numpy(), ref, atol=1e-9)
        # every victim step keeps its mass 1/m exactly; source steps do not have to
        np.testing.assert_allclose(dense[b].sum(0)[:mb].numpy(), w, atol=1e-9)


def test_large_relaxation_approaches_the_balanced_plan():
    zs, zv, sm, vm, centres, _, _ = _problem(1)
    cost = column_cosine_cost(zs, zv, sm, vm, centres, 2)
    kwargs = dict(window=2, reg=0.1, max_iter=20000, tol=1e-7)
    balanced = sinkhorn_columns(cost, sm, vm, centres, **kwargs).plan
    relaxed = sinkhorn_columns(cost, sm, vm, centres, source_relaxation=1e6, **kwargs).plan
    torch.testing.assert_close(relaxed, balanced, atol=1e-6, rtol=0)


def test_relaxed_rows_follow_the_cost_not_the_uniform_marginal():
    # one source step matches every victim step at cost 0, the other at cost 1: relaxed OT
    # gives the cheap step more than 1/n, balanced OT exactly 1/n
    sm = torch.ones(1, 2, dtype=torch.bool)
    vm = torch.ones(1, 6, dtype=torch.bool)
    centres = torch.zeros(1, 6, dtype=torch.long)
    # window 1 around centre 0: offset 0 is source step -1 (forbidden), then steps 0 and 1
    cost = torch.tensor([[[0.0, 1.0]] * 6], dtype=torch.float64)
    cost = torch.cat([torch.full((1, 6, 1), float("inf"), dtype=torch.float64), cost], -1)
    kw = dict(window=1, reg=0.1, max_iter=2000, tol=1e-10)
    relaxed = sinkhorn_columns(cost, sm, vm, centres, source_relaxation=0.1, **kw)
    balanced = sinkhorn_columns(cost, sm, vm, centres, **kw)
    assert float(relaxed.plan[0, :, 1].sum()) > 0.9
    assert float(balanced.plan[0, :, 1].sum()) == pytest.approx(0.5, abs=1e-6)
    assert bool(relaxed.converged.all())


def test_relaxation_must_be_positive():
    zs, zv, sm, vm, centres, _, _ = _problem()
    cost = column_cosine_cost(zs, zv, sm, vm, centres, 2)
    with pytest.raises(Exception, match="source_relaxation"):
        sinkhorn_columns(cost, sm, vm, centres, window=2, source_relaxation=0.0)
