"""Backbone over any subset of the modalities: one encoder each, fusion of the present ones.

The encoders are MM-Align's (section 3.3, Eq. 1-3; :class:`~mmalign.models.backbone.ModalityEncoder`).
The fusion generalises its bidirectional cross-modal transformer to K modalities as MulT
does (Tsai et al., ACL 2019): each modality attends to the steps of the *other* modalities
(one stack of cross-attention blocks per target, the others' steps concatenated as keys).
What we added: absent modalities and dropped steps are removed from the keys by masks, a
learned *null key* keeps one valid key when a modality is alone, and the pooled output of an
absent modality is zero. So one batched pass serves every missingness pattern; nothing
branches on a pattern.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmalign.models.backbone import (
    AttentionBlock,
    ModalityEncoder,
    OutputHead,
    masked_mean,
    with_head,
)

__all__ = ["SubsetFusion", "PatternBackbone"]


class SubsetFusion(nn.Module):
    """Cross-modal fusion of whichever modalities are present.

    Parameters
    ----------
    count : int
        Number of modalities ``K``.
    d_model, n_heads, n_layers, dropout, ff_mult
        Transformer sizes (``n_layers`` cross-attention blocks per target modality).
    pooling : {"head", "mean"}
        Pool each target's output by its head token or by the masked mean over the head and
        its valid steps.
    """

    def __init__(
        self,
        count: int,
        d_model: int,
        n_heads: int,
        n_layers: int,
        dropout: float,
        ff_mult: int,
        pooling: str = "head",
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.stacks = nn.ModuleList(
            nn.ModuleList(
                AttentionBlock(d_model, n_heads, dropout, ff_mult) for _ in range(n_layers)
            )
            for _ in range(count)
        )
        self.null_key = nn.Parameter(torch.randn(d_model) * 0.02)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, z: list[Tensor], masks: list[Tensor], present: Tensor) -> Tensor:
        """Fuse encoded modalities.

        Parameters
        ----------
        z : list of Tensor, shape (B, 1+L_k, d)
            Encoder outputs (head first) of every modality, in order.
        masks : list of Tensor, shape (B, L_k)
            Readable steps (without the head).
        present : Tensor, shape (B, K)
            bool.

        Returns
        -------
        Tensor, shape (B, K * d)
            The pooled output of each modality, zero where it is absent.
        """
        n_batch = present.shape[0]
        keys = [with_head(m) & present[:, k, None] for k, m in enumerate(masks)]  # (B, 1+L_k)
        null = self.null_key.expand(n_batch, 1, -1)  # (B, 1, d)
        always = present.new_ones(n_batch, 1)  # (B, 1)
        pooled = []
        for k, stack in enumerate(self.stacks):  # loops over modalities, not samples
            others = [j for j in range(len(z)) if j != k]
            context = torch.cat([null, *(z[j] for j in others)], dim=1)  # (B, 1+sum, d)
            pad = ~torch.cat([always, *(keys[j] for j in others)], dim=1)  # (B, 1+sum)
            x = z[k]
            for block in stack:
                x = block(x, context, pad)
            x = self.norm(x)
            out = x[:, 0] if self.pooling == "head" else masked_mean(x, with_head(masks[k]))
            pooled.append(torch.where(present[:, k, None], out, torch.zeros_like(out)))  # (B, d)
        return torch.cat(pooled, dim=-1)


class PatternBackbone(nn.Module):
    """Encoders for every modality, :class:`SubsetFusion` and the output head.

    Parameters
    ----------
    input_dims : dict[str, int]
        Modality -> feature width ``D_m``, in the dataset's order.
    output_dim : int
        ``C``.
    d_model, n_heads, n_layers, n_fusion_layers, dropout, ff_mult, pooling
        As for :class:`~mmalign.models.backbone.Backbone`.
    """

    def __init__(
        self,
        input_dims: dict[str, int],
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
        self.modalities = tuple(input_dims)
        self.encoders = nn.ModuleDict(
            {
                m: ModalityEncoder(dim, d_model, n_heads, n_layers, dropout, ff_mult)
                for m, dim in input_dims.items()
            }
        )
        self.fusion = SubsetFusion(
            len(input_dims), d_model, n_heads, n_fusion_layers, dropout, ff_mult, pooling
        )
        self.head = OutputHead(d_model, output_dim, dropout, parts=len(input_dims))

    def encode(self, features: dict[str, Tensor], masks: dict[str, Tensor]) -> dict[str, Tensor]:
        """Encode every modality: (B, L_m, D_m), (B, L_m) -> (B, 1+L_m, d) per modality."""
        return {m: self.encoders[m](features[m], masks[m]) for m in self.modalities}

    def head_token(self, modality: str) -> Tensor:
        """Return the learned head embedding ``(d,)`` of ``modality``'s encoder (Eq. 15's z0)."""
        return self.encoders[modality].head_token

    def predict_fused(
        self, z: dict[str, Tensor], masks: dict[str, Tensor], present: Tensor
    ) -> Tensor:
        """Fuse encoded steps (B, 1+L_m, d) with their step masks (B, L_m) -> outputs (B, C)."""
        order = self.modalities
        fused = self.fusion([z[m] for m in order], [masks[m] for m in order], present)
        return self.head(fused)
