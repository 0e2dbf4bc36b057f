import math

import pytest
import torch

from mmalign.models.losses import info_nce, task_loss


def test_info_nce_matches_hand_computation():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    tau = 0.5
    # cosines: s00=1, s01=1/sqrt2, s10=0, s11=1/sqrt2
    s = [[1.0, 1 / math.sqrt(2)], [0.0, 1 / math.sqrt(2)]]
    rows = [
        -math.log(math.exp(s[i][i] / tau) / sum(math.exp(v / tau) for v in s[i])) for i in range(2)
    ]
    assert info_nce(a, b, tau).item() == pytest.approx(sum(rows) / 2, rel=1e-6)


def test_info_nce_is_scale_invariant_and_differentiable():
    a = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(4, 3)
    loss = info_nce(a, b, 0.1)
    torch.testing.assert_close(loss, info_nce(10 * a, b, 0.1))
    loss.backward()
    assert torch.isfinite(a.grad).all()


def test_task_loss_regression_and_classification():
    assert task_loss(
        torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0]), "regression"
    ).item() == pytest.approx(2.5)
    logits = torch.tensor([[0.0, 0.0]])
    assert task_loss(logits, torch.tensor([1]), "classification").item() == pytest.approx(
        math.log(2)
    )
