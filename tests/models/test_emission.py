"""The linear-Gaussian emission cost: a loop reference, masks, gradients, and EM on toy data."""

import math

import numpy as np
import pytest
import torch

from mmalign.models.emission import LinearEmission, centred, emission_loss
from mmalign.ot.column_band import column_band_index, diagonal_centres
from mmalign.ot.monotone import monotone_band_posterior


def test_centred_removes_each_samples_mean_over_valid_steps():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [2.0], [8.0]]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    torch.testing.assert_close(
        centred(x, mask), torch.tensor([[[-1.0], [1.0], [0.0]], [[-2.0], [-2.0], [4.0]]])
    )


def test_cost_matches_a_loop_reference():
    torch.manual_seed(0)
    emission = LinearEmission(3, 2)
    with torch.no_grad():
        emission.mean.weight.normal_()
        emission.mean.bias.normal_()
        emission.log_var.normal_()
    n = torch.tensor([4, 3])
    m = torch.tensor([7, 5])
    source_mask = torch.arange(5) < n[:, None]
    victim_mask = torch.arange(8) < m[:, None]
    source, victim = torch.randn(2, 5, 3), torch.randn(2, 8, 2)
    centres = diagonal_centres(n, m, 8)
    window = 1
    cost = emission.cost(source, victim, source_mask, victim_mask, centres, window).detach()
    weight, bias = emission.mean.weight.detach(), emission.mean.bias.detach()
    var = emission.log_var.detach().exp()
    for b in range(2):
        xs = source[b, : n[b]] - source[b, : n[b]].mean(0)
        ys = victim[b, : m[b]] - victim[b, : m[b]].mean(0)
        for j in range(8):
            for k in range(3):
                i = int(centres[b, j]) + k - window
                if j >= m[b] or not 0 <= i < n[b]:
                    assert cost[b, j, k] == math.inf
                    continue
                mu = weight @ xs[i] + bias
                nll = 0.5 * float(((ys[j] - mu) ** 2 / var).sum() + var.log().sum())
                nll += 0.5 * 2 * math.log(2 * math.pi)
                assert float(cost[b, j, k]) == pytest.approx(nll, rel=1e-5)


def test_gradient_reaches_the_emission_through_the_loss_only():
    emission = LinearEmission(3, 2)
    source, victim = torch.randn(1, 4, 3), torch.randn(1, 6, 2, requires_grad=True)
    mask_s, mask_v = torch.ones(1, 4, dtype=torch.bool), torch.ones(1, 6, dtype=torch.bool)
    centres = diagonal_centres(torch.tensor([4]), torch.tensor([6]), 6)
    cost = emission.cost(source, victim, mask_s, mask_v, centres, 1)
    target = monotone_band_posterior(-cost, mask_s, mask_v, centres, 1).plan * 6
    assert not target.requires_grad
    emission_loss(cost, target).backward()
    assert emission.mean.weight.grad.abs().sum() > 0 and emission.log_var.grad is not None


def test_emission_loss_is_the_posterior_weighted_mean_over_rows_with_a_target():
    cost = torch.tensor([[[1.0, 2.0], [3.0, math.inf], [5.0, 6.0]]])
    target = torch.tensor([[[0.5, 0.5], [1.0, 0.0], [0.0, 0.0]]])
    assert float(emission_loss(cost, target)) == pytest.approx((1.5 + 3.0) / 2)


def test_em_from_a_flat_start_finds_the_alignment_of_toy_sequences():
    # words of 3..9 frames; every frame is a linear image of its word's features plus noise
    gen = np.random.default_rng(0)
    n_batch, n_words, d_s, d_v, window = 32, 8, 6, 4, 6
    readout = gen.standard_normal((d_s, d_v))
    durations = gen.integers(3, 10, size=(n_batch, n_words))
    m = durations.sum(1)
    n_frames = int(m.max())
    words = gen.standard_normal((n_batch, n_words, d_s))
    owner = np.zeros((n_batch, n_frames), dtype=np.int64)
    frames = np.zeros((n_batch, n_frames, d_v))
    for b in range(n_batch):  # building toy data, not the code under test
        owner[b, : m[b]] = np.repeat(np.arange(n_words), durations[b])
        frames[b, : m[b]] = words[b, owner[b, : m[b]]] @ readout
    frames += 0.5 * gen.standard_normal(frames.shape)
    source, victim = torch.tensor(words).float(), torch.tensor(frames).float()
    m_t = torch.tensor(m)
    source_mask = torch.ones(n_batch, n_words, dtype=torch.bool)
    victim_mask = torch.arange(n_frames) < m_t[:, None]
    centres = diagonal_centres(torch.full((n_batch,), n_words), m_t, n_frames)
    index, _ = column_band_index(centres, window, n_words)
    truth = torch.tensor(owner)[:, :, None] == index  # (B, M, W)

    def mass_on_truth(cost):
        post = monotone_band_posterior(-cost, source_mask, victim_mask, centres, window).plan
        post = post * m_t[:, None, None]
        return float((post * truth).sum(-1)[victim_mask].mean()), post

    torch.manual_seed(0)
    emission = LinearEmission(d_s, d_v)
    optimiser = torch.optim.Adam(emission.parameters(), lr=0.05)
    args = (source, victim, source_mask, victim_mask, centres, window)
    start, _ = mass_on_truth(emission.cost(*args).detach())
    for _ in range(60):
        cost = emission.cost(*args)
        _, post = mass_on_truth(cost.detach())
        optimiser.zero_grad()
        emission_loss(cost, post).backward()
        optimiser.step()
    end, _ = mass_on_truth(emission.cost(*args).detach())
    assert start < 0.5 < 0.9 < end
