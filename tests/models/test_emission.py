"""The linear-Gaussian emission cost: a loop reference, masks, gradients, and EM on toy data."""

import math

import numpy as np
import pytest
import torch

from mmalign.models.emission import LinearEmission, centred, emission_loss
from mmalign.ot.column_band import column_band_index, diagonal_centres
from mmalign.ot.monotone import monotone_band_posterior
from mmalign.validation import ConfigError


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


def _paired_toy(seed=0, n_batch=6, n_words=5, d_s=4, d_v=3, window=3):
    """Toy words and frames with a known frame -> word alignment; one-hot posteriors of it."""
    gen = np.random.default_rng(seed)
    durations = gen.integers(2, 6, size=(n_batch, n_words))
    m = durations.sum(1)
    n_frames = int(m.max())
    owner = np.zeros((n_batch, n_frames), dtype=np.int64)
    for b in range(n_batch):
        owner[b, : m[b]] = np.repeat(np.arange(n_words), durations[b])
    words = gen.standard_normal((n_batch, n_words, d_s)) + gen.standard_normal((n_batch, 1, d_s))
    readout = gen.standard_normal((d_s, d_v))
    frames = np.take_along_axis(words, owner[..., None], 1) @ readout + 2.0
    frames = frames + 0.3 * gen.standard_normal(frames.shape)
    m_t = torch.tensor(m)
    victim_mask = torch.arange(n_frames) < m_t[:, None]
    source = torch.tensor(words).float()
    victim = torch.tensor(frames).float() * victim_mask[..., None]
    source_mask = torch.ones(n_batch, n_words, dtype=torch.bool)
    centres = diagonal_centres(torch.full((n_batch,), n_words), m_t, n_frames)
    index, in_range = column_band_index(centres, window, n_words)
    hit = (torch.tensor(owner)[:, :, None] == index) & in_range & victim_mask[..., None]
    posterior = hit.float()  # the true word where the band holds it
    pairs = []  # (centred word, centred frame) of every frame on its word, for the reference
    for b, j, k in hit.nonzero().tolist():
        x = words[b] - words[b].mean(0)
        y = frames[b, : m[b]] - frames[b, : m[b]].mean(0)
        pairs.append((x[index[b, j, k]], y[j]))
    assert len(pairs) > 0.8 * int(victim_mask.sum())  # the band holds most true words
    args = (source, victim, source_mask, victim_mask, centres, window, posterior)
    return args, pairs


def _weighted_least_squares(pairs, weights):
    """Reference: coefficients (D_s + 1, D_v) and residual variances by NumPy's lstsq."""
    x = np.array([np.append(p[0], 1.0) for p in pairs])
    y = np.array([p[1] for p in pairs])
    root = np.sqrt(np.asarray(weights))[:, None]
    coef = np.linalg.lstsq(x * root, y * root, rcond=None)[0]
    var = (np.asarray(weights)[:, None] * (y - x @ coef) ** 2).sum(0) / np.sum(weights)
    return coef, var


def test_em_step_is_the_weighted_least_squares_of_the_posteriors():
    args, pairs = _paired_toy()
    emission = LinearEmission(4, 3, update="em")
    emission.em_step(*args)
    coef, var = _weighted_least_squares(pairs, np.ones(len(pairs)))
    np.testing.assert_allclose(emission.mean.weight.numpy(), coef[:-1].T, atol=2e-3)
    np.testing.assert_allclose(emission.mean.bias.numpy(), coef[-1], atol=2e-3)
    np.testing.assert_allclose(emission.log_var.exp().numpy(), var, rtol=2e-2)
    assert int(emission.stat_updates) == 1


def test_em_steps_average_the_batches_with_decreasing_steps():
    (args0, pairs0), (args1, pairs1) = _paired_toy(seed=1), _paired_toy(seed=2)
    emission = LinearEmission(4, 3, update="em")
    emission.em_step(*args0)
    emission.em_step(*args1)
    # running per-batch means, steps 2**-0.7 then 3**-0.7 (from zero statistics of zero mass):
    # batch 0 weighs (1 - 3**-0.7) 2**-0.7 and batch 1 3**-0.7
    first, second = 2.0**-0.7, 3.0**-0.7
    weights = [(1 - second) * first / len(pairs0)] * len(pairs0)
    weights += [second / len(pairs1)] * len(pairs1)
    coef, var = _weighted_least_squares(pairs0 + pairs1, weights)
    np.testing.assert_allclose(emission.mean.weight.numpy(), coef[:-1].T, atol=2e-3)
    np.testing.assert_allclose(emission.log_var.exp().numpy(), var, rtol=2e-2)


def test_em_emission_takes_no_gradient_and_keeps_its_statistics_in_checkpoints():
    args, _ = _paired_toy()
    emission = LinearEmission(4, 3, update="em")
    assert not any(p.requires_grad for p in emission.parameters())
    assert not emission.cost(*args[:-1]).requires_grad
    emission.em_step(*args)
    copy = LinearEmission(4, 3, update="em")
    copy.load_state_dict(emission.state_dict())
    torch.testing.assert_close(copy.mean.weight, emission.mean.weight)
    assert int(copy.stat_updates) == 1
    # the gradient emission's state is what it always was: older checkpoints load
    assert set(LinearEmission(4, 3).state_dict()) == {"mean.weight", "mean.bias", "log_var"}
    with pytest.raises(ConfigError, match="update='em'"):
        LinearEmission(4, 3).em_step(*args)
    with pytest.raises(ConfigError, match="`emission_update` must be one of"):
        LinearEmission(4, 3, update="adam")


def test_full_covariance_cost_is_the_multivariate_normal_log_density():
    from scipy.stats import multivariate_normal

    torch.manual_seed(1)
    emission = LinearEmission(3, 4, covariance="full")
    with torch.no_grad():
        emission.mean.weight.normal_()
        emission.mean.bias.normal_()
        emission.log_var.normal_(0, 0.3)
        emission.tril.normal_(0, 0.5)
    n, m = torch.tensor([4, 3]), torch.tensor([7, 5])
    source_mask = torch.arange(5) < n[:, None]
    victim_mask = torch.arange(8) < m[:, None]
    source, victim = torch.randn(2, 5, 3), torch.randn(2, 8, 4)
    centres = diagonal_centres(n, m, 8)
    cost = emission.cost(source, victim, source_mask, victim_mask, centres, 1)
    factor = emission.cholesky().detach().double().numpy()
    covariance = factor @ factor.T
    assert not np.allclose(covariance, np.diag(np.diag(covariance)))  # really full
    weight, bias = emission.mean.weight.detach(), emission.mean.bias.detach()
    checked = 0
    for b in range(2):
        xs = source[b, : n[b]] - source[b, : n[b]].mean(0)
        ys = victim[b, : m[b]] - victim[b, : m[b]].mean(0)
        for j in range(int(m[b])):
            for k in range(3):
                i = int(centres[b, j]) + k - 1
                if 0 <= i < n[b]:
                    mu = (weight @ xs[i] + bias).double().numpy()
                    expected = -multivariate_normal(mu, covariance).logpdf(ys[j].double().numpy())
                    assert float(cost[b, j, k].detach()) == pytest.approx(expected, rel=1e-4)
                    checked += 1
    assert checked > 20
    cost[torch.isfinite(cost)].sum().backward()
    assert emission.tril.grad.abs().sum() > 0  # the off-diagonal factor is learned


def test_em_step_with_full_covariance_matches_the_weighted_residual_covariance():
    args, pairs = _paired_toy(d_v=3)
    emission = LinearEmission(4, 3, update="em", covariance="full")
    emission.em_step(*args)
    coef, _ = _weighted_least_squares(pairs, np.ones(len(pairs)))
    x = np.array([np.append(p[0], 1.0) for p in pairs])
    y = np.array([p[1] for p in pairs])
    residual = y - x @ coef
    expected = residual.T @ residual / len(pairs)
    factor = emission.cholesky().double().numpy()
    np.testing.assert_allclose(factor @ factor.T, expected, atol=2e-3)
    assert abs(expected[0, 1]) > 1e-3  # the residuals do correlate, so the test can fail
