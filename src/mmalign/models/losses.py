"""Losses shared by the methods: the main task loss and the InfoNCE regulariser.

InfoNCE follows MM-Align (Han et al., EMNLP 2022), Eq. 16-17, after Chen et al. (ICML 2020)
and Han et al. (EMNLP 2021). We score cosine similarities (unit vectors) divided by the
temperature, which keeps ``tau`` meaningful whatever the representation scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import Tensor

__all__ = ["info_nce", "task_loss"]


def info_nce(a: Tensor, b: Tensor, tau: float) -> Tensor:
    """InfoNCE between paired rows of ``a`` (B, d) and ``b`` (B, d): Eq. 16 with Eq. 17's score.

    ``-mean_i log(exp(s_ii / tau) / sum_j exp(s_ij / tau))`` with ``s_ij = cos(a_i, b_j)``.

    >>> x = torch.eye(3)
    >>> bool(info_nce(x, x, 0.1) < info_nce(x, x.roll(1, 0), 0.1))
    True
    """
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / tau  # (B, B)
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))


def task_loss(output: Tensor, labels: Tensor, task: str) -> Tensor:
    """MSE for regression (``output`` (B, 1)) or cross-entropy for classification ((B, C)).

    >>> float(task_loss(torch.zeros(2, 1), torch.ones(2), "regression"))
    1.0
    """
    if task == "regression":
        return F.mse_loss(output.squeeze(-1), labels)
    return F.cross_entropy(output, labels)
