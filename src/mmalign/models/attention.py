"""Multi-head attention and dropout for the backbone, cheaper per call at the backbone's sizes.

Why: at MM-Align's sizes (d = 32, 4 heads, 50 steps, batch 32) an epoch is made of many small
operator calls. Profiled on one CPU thread (``benchmarks/attention_cost.py``), two things
dominated: ``nn.MultiheadAttention``'s matrix products in its batch-strided layout, and
dropout masks drawn with ``bernoulli_`` (13% of an epoch). Here:

* :class:`MaskedAttention` is multi-head attention with the same parameters and the same
  initialisation as ``nn.MultiheadAttention`` (``in_proj_weight``, ``in_proj_bias``,
  ``out_proj``: older checkpoints load unchanged). Heads are laid out contiguously,
  ``(B, H, L, d_h)``. Without dropout (evaluation) it calls
  ``F.scaled_dot_product_attention``; in training it computes the softmax weights, drops
  them and multiplies, as ``nn.MultiheadAttention`` does (Vaswani et al., NeurIPS 2017).
* :func:`byte_dropout` draws its mask from random bytes: one 64-bit random word gives seven
  uniform bytes, and a unit is dropped where its byte is below ``round(256 p)``. So the drop
  probability is ``p`` rounded to a multiple of 1/256 (0.2 becomes 0.199), and kept units are
  scaled by ``1 / (1 - p_rounded)``, so the expectation is exact. It is many times cheaper
  than ``bernoulli_`` on a CPU.

Both draw from torch's global generator, so runs stay reproducible from the seed; they draw a
different stream from ``nn.Dropout``, so numbers differ from the same seed before this module
(docs/method.md, "Speed").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import Tensor, nn

__all__ = ["byte_dropout", "ByteDropout", "dropout_scale_mask", "MaskedAttention"]

_BYTES_PER_WORD = 7  # a random int64 word has 63 random bits: its low 7 bytes are uniform


def _keep_mask(shape: torch.Size, threshold: int, device: torch.device) -> Tensor:
    """Bool mask of ``shape``: True where a uniform byte is ``>= threshold``."""
    n = math.prod(shape)
    words = torch.empty(-(-n // _BYTES_PER_WORD), dtype=torch.int64, device=device).random_()
    data = words.view(torch.uint8).view(-1, 8)[:, :_BYTES_PER_WORD]  # (words, 7) low bytes
    return (data.reshape(-1)[:n] >= threshold).view(shape)


def dropout_scale_mask(
    shape: tuple[int, ...], p: float, device: torch.device, dtype: torch.dtype
) -> Tensor | None:
    """Draw the factor :func:`byte_dropout` multiplies by: 0 (dropped) or ``1 / (1 - p_rounded)``.

    For callers that draw many masks in one call and apply them later (a decoding loop).
    None when ``p`` rounds to 0 (nothing is dropped).

    Parameters
    ----------
    shape : tuple of int
    p : float
        Drop probability in [0, 1); used rounded to a multiple of 1/256.
    device, dtype
        Of the returned mask.

    Returns
    -------
    Tensor of ``shape`` or None
    """
    threshold = round(256 * p)
    if threshold == 0:
        return None
    keep = _keep_mask(torch.Size(shape), threshold, device)
    return keep.to(dtype).mul_(256.0 / (256 - threshold))


def byte_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Dropout with a mask drawn from random bytes (module docstring).

    Parameters
    ----------
    x : Tensor
    p : float
        Drop probability in [0, 1); used rounded to a multiple of 1/256.
    training : bool
        False returns ``x`` unchanged.

    Returns
    -------
    Tensor
        ``x`` with dropped units zero and kept ones scaled by ``1 / (1 - p_rounded)``.

    >>> _ = torch.manual_seed(0)
    >>> y = byte_dropout(torch.ones(100_000), 0.25)
    >>> round(float((y == 0).float().mean()), 2), float(y.max())
    (0.25, 1.3333333730697632)
    """
    mask = dropout_scale_mask(x.shape, p, x.device, x.dtype) if training else None
    # the scale is in the mask (no gradient there): one product, one autograd node
    return x if mask is None else x * mask


class ByteDropout(nn.Module):
    """:func:`byte_dropout` as a module, a drop-in for ``nn.Dropout(p)``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"`p` must be in [0, 1); got {p!r}.")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """Drop units of ``x`` in training; identity in evaluation."""
        return byte_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:  # noqa: D102 (nn.Module hook)
        return f"p={self.p}"


def _scores(q: Tensor, k: Tensor, keep: Tensor | None) -> Tensor:
    """Scaled dot products of heads ``q`` (B, H, L, d_h) and ``k`` (B, H, M, d_h), (B*H, L, M).

    -inf where ``keep`` (broadcastable to (B, H, L, M)) is False. One ``baddbmm`` adds the
    mask as a bias and scales the product: cheaper than a product, a scaling and a
    ``masked_fill`` at these sizes, with the same values up to float rounding.
    """
    n, heads, steps, size = q.shape
    keys = k.flatten(0, 1).transpose(1, 2)  # (BH, d_h, M)
    if keep is None:
        return torch.bmm(q.flatten(0, 1), keys).mul_(size**-0.5)
    bias = torch.zeros(keep.shape, dtype=q.dtype, device=q.device).masked_fill_(~keep, -math.inf)
    if bias.dim() == 4:  # (B, 1, L or 1, M): one row of biases per sample and head
        bias = bias.expand(n, heads, -1, -1).flatten(0, 1)  # (BH, L or 1, M)
    return torch.baddbmm(bias, q.flatten(0, 1), keys, alpha=size**-0.5)


class MaskedAttention(nn.Module):
    """Multi-head attention with a key padding mask (parameters as ``nn.MultiheadAttention``).

    Parameters
    ----------
    d_model : int
        Width ``d``.
    n_heads : int
        Heads ``H`` (``d`` divisible by ``H``).
    dropout : float
        Dropout on the attention weights (training only).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"`d_model` must be divisible by n_heads={n_heads}; got {d_model}.")
        self.n_heads, self.dropout = n_heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)  # draws its init first, as in MHA
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: Tensor, parts: int) -> tuple[Tensor, ...]:
        """(B, T, parts * d) projections -> ``parts`` tensors (B, H, T, d_h), contiguous."""
        n_batch, steps, width = x.shape
        size = width // (parts * self.n_heads)
        split = x.view(n_batch, steps, parts, self.n_heads, size).permute(2, 0, 3, 1, 4)
        return split.contiguous().unbind(0)

    def forward(
        self, x: Tensor, context: Tensor, context_pad: Tensor | None, causal: bool = False
    ) -> Tensor:
        """Attend from ``x`` (B, L, d) to ``context`` (B, M, d); ``context_pad`` (B, M) True = pad.

        Self-attention when ``context is x`` (one projection for queries, keys, values).
        ``context_pad`` None means no padding. ``causal`` also blocks keys after the query's
        own position (``j > i``; self-attention, ``L == M``), as a decoder needs.

        Returns
        -------
        Tensor, shape (B, L, d)
        """
        d = x.shape[-1]
        if context is x:
            q, k, v = self._heads(F.linear(x, self.in_proj_weight, self.in_proj_bias), 3)
        else:
            w, b = self.in_proj_weight, self.in_proj_bias
            (q,) = self._heads(F.linear(x, w[:d], b[:d]), 1)
            k, v = self._heads(F.linear(context, w[d:], b[d:]), 2)
        keep = None if context_pad is None else ~context_pad[:, None, None, :]  # (B, 1, 1, M)
        if causal:
            steps = x.shape[1]
            past = torch.ones(steps, steps, dtype=torch.bool, device=x.device).tril()  # (L, L)
            keep = past if keep is None else keep & past  # (B, 1, L, L) or (L, L)
        if self.training and round(256 * self.dropout) > 0:
            weights = byte_dropout(_scores(q, k, keep).softmax(-1), self.dropout)  # (BH, L, M)
            out = torch.bmm(weights, v.flatten(0, 1)).view(q.shape)  # (B, H, L, d_h)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, H, L, d_h)
        out = out.transpose(1, 2).reshape(x.shape[0], x.shape[1], d)  # (B, L, d)
        return self.out_proj(out)
