"""The monotone band posterior against a dense forward-backward written with explicit loops."""

import math

import numpy as np
import pytest
import torch

from mmalign.ot.column_band import column_band_index, diagonal_centres
from mmalign.ot.monotone import advance_log_probs, monotone_band_posterior
from mmalign.validation import ConfigError


def _dense_emission(log_emission, n, m, centres, window):
    """Band emissions (m, W) laid out densely as (m, n), -inf off the band."""
    emit = np.full((m, n), -np.inf)
    for j in range(m):
        for k in range(2 * window + 1):
            s = centres[j] + k - window
            if 0 <= s < n:
                emit[j, s] = log_emission[j, k]
    return emit


def _advance_law(n, m, window):
    """The advance law's log-probabilities on 0..top, and top (the module doc's law)."""
    rate = n / m
    top = int(min(max(2, 2 * math.ceil(rate)), 2 * window + 2))
    grid = np.arange(top + 1)
    # the max-entropy law with mean min(rate, top): solve for x by bisection
    lo, hi = -30.0, 30.0
    for _ in range(200):
        t = (lo + hi) / 2
        w = np.exp(t * grid - np.max(t * grid))
        if (w * grid).sum() / w.sum() > min(rate, top):
            hi = t
        else:
            lo = t
    logp = t * grid - np.log(np.exp(t * grid - np.max(t * grid)).sum()) - np.max(t * grid)
    return logp, top


def _dense_reference(log_emission, n, m, centres, window, edge):
    """Dense posterior (m, n) by loops over steps and states; the band as -inf emissions."""
    emit = _dense_emission(log_emission, n, m, centres, window)
    logp, top = _advance_law(n, m, window)

    def move(a):
        return logp[a] if 0 <= a <= top else -np.inf

    log_edge = math.log(edge)
    alpha = np.full((m, n), -np.inf)
    alpha[0] = emit[0] + np.where(np.arange(n) == 0, 0.0, log_edge)
    for j in range(1, m):
        for s in range(n):
            terms = [alpha[j - 1, r] + move(s - r) for r in range(n)]
            alpha[j, s] = emit[j, s] + np.logaddexp.reduce(terms)
    beta = np.full((m, n), -np.inf)
    beta[m - 1] = np.where(np.arange(n) == n - 1, 0.0, log_edge)
    for j in range(m - 2, -1, -1):
        for r in range(n):
            terms = [move(s - r) + emit[j + 1, s] + beta[j + 1, s] for s in range(n)]
            beta[j, r] = np.logaddexp.reduce(terms)
    joint = alpha + beta
    post = np.exp(joint - np.logaddexp.reduce(joint, axis=1, keepdims=True))
    return np.nan_to_num(post), np.logaddexp.reduce(alpha[m - 1] + beta[m - 1])


def _random_case(lengths, window, seed):
    """Masks (padded on both sides), centres and random log emissions for (n, m) lengths."""
    gen = torch.Generator().manual_seed(seed)
    n = torch.tensor([a for a, _ in lengths])
    m = torch.tensor([b for _, b in lengths])
    n_source, n_victim = int(n.max()) + 1, int(m.max()) + 2
    source_mask = torch.arange(n_source) < n[:, None]
    victim_mask = torch.arange(n_victim) < m[:, None]
    centres = diagonal_centres(n, m, n_victim)
    log_emission = 2 * torch.randn(len(lengths), n_victim, 2 * window + 1, generator=gen)
    return log_emission, source_mask, victim_mask, centres


def _dense_posterior(plan, centres, window, n_source, b, nb, mb):
    """Sample ``b``'s band plan laid out as a dense (m, n) posterior (rows sum to 1)."""
    index, in_range = column_band_index(centres, window, n_source)
    got = np.zeros((mb, nb))
    for j in range(mb):
        for k in range(2 * window + 1):
            if in_range[b, j, k] and index[b, j, k] < nb:
                got[j, index[b, j, k]] += float(plan[b, j, k]) * mb
    return got


@pytest.mark.parametrize(
    ("lengths", "window"),
    [([(6, 6), (4, 5), (3, 3)], 2), ([(4, 11), (5, 9), (2, 7)], 3), ([(9, 4), (7, 3)], 3)],
)
def test_matches_dense_reference(lengths, window):
    log_emission, source_mask, victim_mask, centres = _random_case(lengths, window, 0)
    out = monotone_band_posterior(log_emission, source_mask, victim_mask, centres, window, 0.01)
    for b, (nb, mb) in enumerate(lengths):
        post, loglik = _dense_reference(
            log_emission[b].double().numpy(), nb, mb, centres[b].tolist(), window, 0.01
        )
        got = _dense_posterior(out.plan, centres, window, source_mask.shape[1], b, nb, mb)
        np.testing.assert_allclose(got, post, atol=1e-5)
        assert float(out.log_likelihood[b]) == pytest.approx(loglik, rel=1e-5, abs=1e-4)
        assert float(out.plan[b, mb:].abs().sum()) == 0.0  # padding has no mass
        np.testing.assert_allclose(out.plan[b, :mb].sum(-1).numpy(), 1 / mb, rtol=1e-5)


def _dense_sub_state_reference(log_emission, n, m, centres, window, edge, states):
    """The sub-state model of the module doc over dense states (source step, sub-state).

    Sub-states are numbered ``0 .. S - 1`` per source step here (entry 0, exit ``S - 1``).
    """
    emit = _dense_emission(log_emission, n, m, centres, window)
    logp, top = _advance_law(n, m, window)
    p0 = math.exp(logp[0])
    used = int(min(max(math.floor(1 / (1 - p0) / 2), 1), states))
    q = used * (1 - p0)
    pairs = [(s, u) for s in range(n) for u in range(used)]

    def move(r, u, s, v):
        if s == r:
            if v == u:
                return math.log1p(-q) if q < 1 else -np.inf
            return math.log(q) if v == u + 1 else -np.inf
        if s > r and u == used - 1 and v == 0 and s - r <= top:
            return math.log(used) + logp[s - r]
        return -np.inf

    log_edge = math.log(edge)
    alpha = np.full((m, len(pairs)), -np.inf)
    for i, (s, u) in enumerate(pairs):
        if u == 0:
            alpha[0, i] = emit[0, s] + (0.0 if s == 0 else log_edge)
    for j in range(1, m):
        for i, (s, v) in enumerate(pairs):
            terms = [alpha[j - 1, h] + move(r, u, s, v) for h, (r, u) in enumerate(pairs)]
            alpha[j, i] = emit[j, s] + np.logaddexp.reduce(terms)
    beta = np.full((m, len(pairs)), -np.inf)
    for i, (s, u) in enumerate(pairs):
        beta[m - 1, i] = (0.0 if s == n - 1 else log_edge) + (0.0 if u == used - 1 else log_edge)
    for j in range(m - 2, -1, -1):
        for h, (r, u) in enumerate(pairs):
            terms = [
                move(r, u, s, v) + emit[j + 1, s] + beta[j + 1, i] for i, (s, v) in enumerate(pairs)
            ]
            beta[j, h] = np.logaddexp.reduce(terms)
    joint = (alpha + beta).reshape(m, n, used)
    joint = np.logaddexp.reduce(joint, axis=2)  # (m, n) summed over sub-states
    post = np.exp(joint - np.logaddexp.reduce(joint, axis=1, keepdims=True))
    return np.nan_to_num(post), np.logaddexp.reduce(alpha[m - 1] + beta[m - 1]), used


@pytest.mark.parametrize(
    ("lengths", "window", "states", "most_used"),
    [
        ([(3, 12), (4, 13), (2, 9)], 2, 3, 2),  # D about 3-4.5: one or two sub-states
        ([(3, 20), (2, 16), (4, 9)], 2, 4, 4),  # D up to 8: up to four
        ([(6, 6), (9, 4)], 3, 3, 1),  # D < 2: one sub-state, the plain model
    ],
)
def test_sub_states_match_a_dense_reference(lengths, window, states, most_used):
    log_emission, source_mask, victim_mask, centres = _random_case(lengths, window, 1)
    out = monotone_band_posterior(
        log_emission, source_mask, victim_mask, centres, window, 0.01, states=states
    )
    used_counts = []
    for b, (nb, mb) in enumerate(lengths):
        post, loglik, used = _dense_sub_state_reference(
            log_emission[b].double().numpy(), nb, mb, centres[b].tolist(), window, 0.01, states
        )
        used_counts.append(used)
        got = _dense_posterior(out.plan, centres, window, source_mask.shape[1], b, nb, mb)
        np.testing.assert_allclose(got, post, atol=1e-5)
        assert float(out.log_likelihood[b]) == pytest.approx(loglik, rel=1e-5, abs=1e-4)
        assert float(out.plan[b, mb:].abs().sum()) == 0.0
    assert max(used_counts) == most_used


def test_one_sub_state_is_the_plain_model():
    gen = torch.Generator().manual_seed(2)
    n, m, window = torch.tensor([4, 6]), torch.tensor([30, 25]), 3
    source_mask = torch.arange(6) < n[:, None]
    victim_mask = torch.arange(30) < m[:, None]
    centres = diagonal_centres(n, m, 30)
    log_emission = torch.randn(2, 30, 7, generator=gen)
    plain = monotone_band_posterior(log_emission, source_mask, victim_mask, centres, window)
    many = monotone_band_posterior(
        log_emission, source_mask, victim_mask, centres, window, states=3
    )
    assert not torch.allclose(plain.plan, many.plan, atol=1e-3)  # D = 5-7.5: 2-3 sub-states
    # a sample whose D < 4 uses one sub-state whatever ``states`` is
    n1, m1 = torch.tensor([6]), torch.tensor([9])
    s1, v1 = torch.ones(1, 6, dtype=torch.bool), torch.ones(1, 9, dtype=torch.bool)
    c1 = diagonal_centres(n1, m1, 9)
    e1 = torch.randn(1, 9, 7, generator=gen)
    a = monotone_band_posterior(e1, s1, v1, c1, window)
    b = monotone_band_posterior(e1, s1, v1, c1, window, states=5)
    torch.testing.assert_close(a.plan, b.plan, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.log_likelihood, b.log_likelihood, atol=1e-4, rtol=1e-5)


def test_sub_states_make_durations_less_spread():
    """Flat emissions: the posterior of a source step's first victim step is sharper."""
    n, m, window = 4, 40, 3
    centres = diagonal_centres(torch.tensor([n]), torch.tensor([m]), m)
    index, _ = column_band_index(centres, window, n)
    ones_s, ones_v = torch.ones(1, n, dtype=torch.bool), torch.ones(1, m, dtype=torch.bool)
    flat = torch.zeros(1, m, 2 * window + 1)
    spread = {}
    for states in (1, 5):
        out = monotone_band_posterior(flat, ones_s, ones_v, centres, window, states=states)
        mean = (out.plan[0] * m * index[0]).sum(-1)  # (M,) posterior mean source step
        var = (out.plan[0] * m * (index[0] - mean[:, None]) ** 2).sum(-1)
        spread[states] = float(var[m // 2])  # mid-sequence uncertainty
    assert spread[5] < 0.6 * spread[1]


def test_strong_emission_recovers_a_monotone_path():
    # victim steps 0-2 on source 0, 3-5 on source 1, 6-8 on source 2: durations, not 1/n each
    truth = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    n, m, window = 3, 9, 2
    centres = diagonal_centres(torch.tensor([n]), torch.tensor([m]), m)
    index, _ = column_band_index(centres, window, n)
    log_emission = torch.where(index[0] == truth[:, None], 0.0, -4.0)[None]  # (1, M, W)
    out = monotone_band_posterior(
        log_emission, torch.ones(1, n, dtype=torch.bool), torch.ones(1, m, dtype=torch.bool),
        centres, window,
    )  # fmt: skip
    best = torch.gather(index[0], 1, out.plan[0].argmax(-1, keepdim=True))[:, 0]
    assert best.tolist() == truth.tolist()


def test_flat_emission_gives_a_posterior_around_the_diagonal():
    n, m, window = 5, 20, 4
    centres = diagonal_centres(torch.tensor([n]), torch.tensor([m]), m)
    index, _ = column_band_index(centres, window, n)
    out = monotone_band_posterior(
        torch.zeros(1, m, 2 * window + 1), torch.ones(1, n, dtype=torch.bool),
        torch.ones(1, m, dtype=torch.bool), centres, window,
    )  # fmt: skip
    expected = (out.plan[0] * m * index[0]).sum(-1)  # (M,) posterior mean source step
    assert torch.all(expected[1:] >= expected[:-1] - 1e-6)  # monotone in j
    assert float(expected[0]) < 0.5 and float(expected[-1]) > n - 1.5


def test_advance_law_has_the_asked_mean():
    rate = torch.tensor([0.1, 1.0, 2.5, 40.0])
    top = torch.tensor([2, 2, 6, 8])
    p = advance_log_probs(rate, top, 10).exp()
    mean = (p * torch.arange(10)).sum(-1)
    np.testing.assert_allclose(mean.numpy(), [0.1, 1.0, 2.5, 8.0], atol=1e-4)
    np.testing.assert_allclose(p.sum(-1).numpy(), 1.0, atol=1e-6)
    assert float(p[0, 3:].sum()) == 0.0


def test_errors_name_the_problem():
    mask = torch.ones(1, 3, dtype=torch.bool)
    centres = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ConfigError, match="5 band entries for K=2"):
        monotone_band_posterior(torch.zeros(1, 3, 4), mask, mask, centres, 2)
    with pytest.raises(ConfigError, match="edge_weight"):
        monotone_band_posterior(torch.zeros(1, 3, 5), mask, mask, centres, 2, edge_weight=0.0)
    with pytest.raises(ConfigError, match="`states` must be an integer >= 1; got 0"):
        monotone_band_posterior(torch.zeros(1, 3, 5), mask, mask, centres, 2, states=0)


def test_empty_victim_rows_have_no_mass_and_no_nan():
    source_mask = torch.tensor([[True, True, False], [True, True, True]])
    victim_mask = torch.tensor([[True, True, True], [False, False, False]])
    centres = diagonal_centres(source_mask.sum(1), victim_mask.sum(1), 3)
    for states in (1, 5):
        out = monotone_band_posterior(
            torch.zeros(2, 3, 3), source_mask, victim_mask, centres, 1, states=states
        )
        assert torch.isfinite(out.plan).all()
        assert float(out.plan[1].abs().sum()) == 0.0
