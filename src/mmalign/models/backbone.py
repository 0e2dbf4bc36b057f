"""MulT-style backbone: per-modality transformer encoders and bidirectional cross-modal fusion.

Follows MM-Align (Han et al., EMNLP 2022), section 3.3, Eq. 1-5, which builds on MulT
(Tsai et al., ACL 2019). A learned head token (the paper's [CLS]) is prepended to every
sequence; the two head tokens of the fusion outputs feed the output MLP of Eq. 4. We use
pre-layer-norm blocks (as MulT's code does) rather than Eq. 3's ``FFN(z) + LN(z)``, which
has no normalisation on its output and is unstable when stacked.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmalign.models.attention import ByteDropout, MaskedAttention

__all__ = ["AttentionBlock", "ModalityEncoder", "CrossModalFusion", "OutputHead", "Backbone"]


def sinusoidal_positions(length: int, width: int, device: torch.device) -> Tensor:
    """Return fixed sinusoidal position codes, shape ``(length, width)``.

    >>> sinusoidal_positions(3, 4, torch.device("cpu")).shape
    torch.Size([3, 4])
    """
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]  # (L, 1)
    freq = torch.exp(
        torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / width)
    )  # (ceil(d/2),)
    codes = torch.zeros(length, width, device=device)
    codes[:, 0::2] = torch.sin(position * freq)  # (L, ceil(d/2))
    codes[:, 1::2] = torch.cos(position * freq[: width // 2])  # (L, d//2)
    return codes


class AttentionBlock(nn.Module):
    """One pre-LN transformer block; self-attention when ``context is x``, else cross-attention.

    Parameters
    ----------
    d_model : int
        Model width ``d``.
    n_heads : int
        Attention heads ``H``.
    dropout : float
        Dropout on attention weights and residual branches.
    ff_mult : int
        Hidden width of the feed-forward network is ``ff_mult * d``.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float, ff_mult: int = 4) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_kv = nn.LayerNorm(d_model)
        self.attn = MaskedAttention(d_model, n_heads, dropout)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_mult * d_model),
            nn.ReLU(),
            ByteDropout(dropout),
            nn.Linear(ff_mult * d_model, d_model),
        )
        self.dropout = ByteDropout(dropout)

    def forward(self, x: Tensor, context: Tensor, context_pad: Tensor) -> Tensor:
        """Attend from ``x`` (B, L, d) to ``context`` (B, M, d); ``context_pad`` (B, M) True = pad."""
        q = self.norm_q(x)
        kv = q if context is x else self.norm_kv(context)
        attended = self.attn(q, kv, context_pad)
        x = x + self.dropout(attended)  # Eq. 2: MATT(Q, K, V) + x
        return x + self.dropout(self.ff(self.norm_ff(x)))  # Eq. 3 (pre-LN form)


class ModalityEncoder(nn.Module):
    """Project one modality to width ``d``, prepend the head token, encode with self-attention.

    Parameters
    ----------
    input_dim : int
        Feature width ``D`` of the modality.
    d_model, n_heads, n_layers, dropout, ff_mult
        Transformer sizes.
    """

    def __init__(
        self,
        input_dim: int,
        d_model: int,
        n_heads: int,
        n_layers: int,
        dropout: float,
        ff_mult: int,
    ) -> None:
        super().__init__()
        # feature standardisation by training-split statistics (identity until set); buffers,
        # so they travel with every checkpoint
        self.register_buffer("input_shift", torch.zeros(input_dim))
        self.register_buffer("input_scale", torch.ones(input_dim))
        self.proj = nn.Linear(input_dim, d_model)
        self.head_token = nn.Parameter(torch.randn(d_model) * 0.02)
        self.layers = nn.ModuleList(
            AttentionBlock(d_model, n_heads, dropout, ff_mult) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.scale = math.sqrt(d_model)

    def set_input_statistics(self, mean: Tensor, std: Tensor) -> None:
        """Standardise inputs as ``(x - mean) / std`` from now on; ``mean``, ``std`` (D,)."""
        self.input_shift.copy_(mean)
        self.input_scale.copy_(std.clamp(min=1e-6))

    def standardise(self, x: Tensor) -> Tensor:
        """(B, L, D) features standardised by the training-split statistics (same shape)."""
        return (x - self.input_shift) / self.input_scale

    def embed(self, x: Tensor) -> Tensor:
        """Input projection plus positions of steps ``1..L``: (B, L, D) -> (B, L, d).

        Padded steps may become non-zero after standardisation; every consumer masks them.
        """
        h = self.proj(self.standardise(x)) * self.scale
        return h + sinusoidal_positions(x.shape[1] + 1, h.shape[-1], x.device)[1:]  # (B, L, d)

    def encode_embedded(self, h: Tensor, mask: Tensor) -> Tensor:
        """Prepend the head token to embedded steps ``h`` (B, L, d) and run the layers.

        Returns
        -------
        Tensor, shape (B, 1+L, d)
        """
        head = self.head_token.expand(h.shape[0], 1, -1)  # (B, 1, d)
        z = torch.cat([head, h], dim=1)  # (B, 1+L, d)
        pad = ~with_head(mask)  # (B, 1+L)
        for layer in self.layers:
            z = layer(z, z, pad)
        return self.norm(z)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Encode ``x`` (B, L, D) with ``mask`` (B, L) True on valid steps -> (B, 1+L, d)."""
        return self.encode_embedded(self.embed(x), mask)


def with_head(mask: Tensor) -> Tensor:
    """Prepend an always-valid head position to a step mask: (B, L) -> (B, 1+L).

    >>> with_head(torch.tensor([[True, False]])).tolist()
    [[True, True, False]]
    """
    return torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)  # (B, 1+L)


class CrossModalFusion(nn.Module):
    """Bidirectional cross-modal transformer: victim attends to source and source to victim.

    Returns the pooled outputs of the two directions ``[z_12, z_21]``, shape ``(B, 2d)``:
    the head tokens (``pooling="head"``, Eq. 4) or the masked mean over the head and the
    valid steps (``pooling="mean"``; suits labels that are time averages).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_layers: int,
        dropout: float,
        ff_mult: int,
        pooling: str = "head",
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.source_to_victim = nn.ModuleList(
            AttentionBlock(d_model, n_heads, dropout, ff_mult) for _ in range(n_layers)
        )
        self.victim_to_source = nn.ModuleList(
            AttentionBlock(d_model, n_heads, dropout, ff_mult) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self, z_source: Tensor, source_mask: Tensor, z_victim: Tensor, victim_mask: Tensor
    ) -> Tensor:
        """Fuse ``z_source`` (B, 1+L, d) and ``z_victim`` (B, 1+M, d); masks include the head.

        Returns
        -------
        Tensor, shape (B, 2d)
        """
        z12, z21 = z_source, z_victim
        source_pad, victim_pad = ~source_mask, ~victim_mask
        for a, b in zip(self.source_to_victim, self.victim_to_source):
            z12, z21 = a(z12, z21, victim_pad), b(z21, z12, source_pad)
        if self.pooling == "head":
            return torch.cat([self.norm(z12[:, 0]), self.norm(z21[:, 0])], dim=-1)  # (B, 2d)
        return torch.cat(
            [masked_mean(self.norm(z12), source_mask), masked_mean(self.norm(z21), victim_mask)],
            dim=-1,
        )  # (B, 2d)


def masked_mean(z: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``z`` (B, T, d) over positions where ``mask`` (B, T) is True -> (B, d)."""
    weights = mask.to(z.dtype)[..., None]  # (B, T, 1)
    return (z * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, d)


class OutputHead(nn.Module):
    """Eq. 4: ``W2 tanh(W1 [z0_12, z0_21] + b1) + b2`` -> (B, C).

    ``parts`` pooled vectors of width ``d`` are concatenated at the input (2 for a pair).
    """

    def __init__(self, d_model: int, output_dim: int, dropout: float, parts: int = 2) -> None:
        super().__init__()
        self.hidden = nn.Linear(parts * d_model, parts * d_model)
        self.out = nn.Linear(parts * d_model, output_dim)
        self.dropout = ByteDropout(dropout)

    def forward(self, fused: Tensor) -> Tensor:
        """Map fused head tokens (B, parts * d) to outputs (B, C)."""
        return self.out(self.dropout(torch.tanh(self.hidden(fused))))


class Backbone(nn.Module):
    """Encoders for the source and victim modalities, fusion, and output head.

    Parameters
    ----------
    source_dim, victim_dim : int
        Feature widths ``D_s`` and ``D_v``.
    output_dim : int
        ``C``: 1 for regression, the number of classes for classification.
    d_model : int
        Shared width ``d`` (paper: 32-64).
    n_heads : int
        Attention heads.
    n_layers : int
        Self-attention layers per modality encoder.
    n_fusion_layers : int
        Cross-attention layers per fusion direction.
    dropout : float
    ff_mult : int
    pooling : {"head", "mean"}
        How the fusion outputs are pooled (see :class:`CrossModalFusion`).
    """

    def __init__(
        self,
        source_dim: int,
        victim_dim: int,
        output_dim: int,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        n_fusion_layers: int = 2,
        dropout: float = 0.1,
        ff_mult: int = 2,
        pooling: str = "head",
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.source_encoder = ModalityEncoder(
            source_dim, d_model, n_heads, n_layers, dropout, ff_mult
        )
        self.victim_encoder = ModalityEncoder(
            victim_dim, d_model, n_heads, n_layers, dropout, ff_mult
        )
        self.fusion = CrossModalFusion(d_model, n_heads, n_fusion_layers, dropout, ff_mult, pooling)
        self.head = OutputHead(d_model, output_dim, dropout)

    def encode_source(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, L, D_s), (B, L) -> (B, 1+L, d)."""
        return self.source_encoder(x, mask)

    def encode_victim(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, L, D_v), (B, L) -> (B, 1+L, d)."""
        return self.victim_encoder(x, mask)

    def victim_head_token(self) -> Tensor:
        """Return the victim encoder's learned head embedding, shape ``(d,)`` (Eq. 15's z0)."""
        return self.victim_encoder.head_token

    def predict_fused(
        self, z_source: Tensor, source_mask: Tensor, z_victim: Tensor, victim_mask: Tensor
    ) -> Tensor:
        """Fuse and predict; masks are step masks *without* the head, shape (B, L) and (B, M).

        Returns
        -------
        Tensor, shape (B, C)
        """
        fused = self.fusion(z_source, with_head(source_mask), z_victim, with_head(victim_mask))
        return self.head(fused)
