"""The step-level InfoNCE against a loop over victim steps, and its lengths for masks with holes."""

import math

import torch
import torch.nn.functional as F  # noqa: N812

from mmalign.models.step_space import step_contrastive_loss
from mmalign.ot.column_band import column_cosine_cost, diagonal_centres


def _reference(p_s, p_v, s_mask, v_mask, n_s, n_v, tau):
    """Window 0, one negative (the previous sample): a loop over samples and victim steps."""
    total, rows = 0.0, 0
    n_batch, m = p_v.shape[:2]
    for b in range(n_batch):
        other = (b - 1) % n_batch
        c_own = diagonal_centres(n_s[b : b + 1], n_v[b : b + 1], m)[0]
        c_neg = diagonal_centres(n_s[other : other + 1], n_v[b : b + 1], m)[0]
        for j in range(m):
            if not v_mask[b, j] or not s_mask[b, c_own[j]]:
                continue
            pos = F.cosine_similarity(p_s[b, c_own[j]], p_v[b, j], dim=0) / tau
            logits = [pos]
            if s_mask[other, c_neg[j]]:
                logits.append(F.cosine_similarity(p_s[other, c_neg[j]], p_v[b, j], dim=0) / tau)
            total += -(logits[0] - torch.logsumexp(torch.stack(logits), 0))
            rows += 1
    return total / rows


def test_step_contrastive_loss_matches_a_loop_and_uses_the_given_lengths():
    torch.manual_seed(0)
    p_s, p_v = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    s_mask = torch.tensor([[1, 1, 0, 1], [1, 1, 1, 0]], dtype=torch.bool)  # a hole in sample 0
    v_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    n_s, n_v = torch.tensor([4, 3]), torch.tensor([4, 3])  # true lengths (the hole counted)
    centres = diagonal_centres(n_s, n_v, 4)
    cost = column_cosine_cost(p_s, p_v, s_mask, v_mask, centres, 0)  # (B, M, 1)
    target = (cost.isfinite() & v_mask[..., None]).float()  # rows with a positive
    got = step_contrastive_loss(
        cost, p_s, p_v, s_mask, v_mask, centres, target, 0, 0.5, n_negatives=1,
        lengths=(n_s, n_v),
    )  # fmt: skip
    expected = _reference(p_s, p_v, s_mask, v_mask, n_s, n_v, 0.5)
    assert math.isclose(float(got), float(expected), rel_tol=1e-5)
    # without lengths the negatives' centres come from the masks' sums (3 for sample 0)
    default = step_contrastive_loss(
        cost, p_s, p_v, s_mask, v_mask, centres, target, 0, 0.5, n_negatives=1
    )
    assert not math.isclose(float(default), float(got), rel_tol=1e-6)
