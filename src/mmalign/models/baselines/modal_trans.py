"""Modal-Trans baseline: cyclic transformer translation from the source to the victim sequence.

Follows Wang, Wan and Wan, "TransModality: An End2End Fusion Method with Transformer for
Multimodal Sentiment Analysis", WWW 2020 (a transformer encoder-decoder translating one
modality into another, its output standing in for the target), and Tang, Li, Hou, Zhang,
Li and Li, "CTFN: Hierarchical Learning for Multimodal Sentiment Analysis Using
Coupled-Translation Fusion Network", ACL 2021 (a second translator back to the source and a
cyclic reconstruction loss), as used by MM-Align (Han et al., EMNLP 2022), section 4.2 and
appendix D-E (its cost: autoregressive decoding, ``O(l^3 d)`` per sequence).

What we simplified, and how it sits on the shared backbone:

- Both translators work on the backbone's *encoded* steps ``(B, L, d)`` rather than raw
  features: the forward translator maps the encoded source steps to the encoded victim
  steps (targets detached), the backward translator maps a victim sequence back to the
  encoded source steps (targets detached).
- Training on complete batches: teacher forcing (decoder input = start token followed by
  the real victim steps shifted right, causal mask), plus the cycle loss: the backward
  translator, teacher-forced on the source, must rebuild the source from the *generated*
  (teacher-forced) victim sequence.
- On missing batches in training and at inference the victim is decoded
  **autoregressively** over the source length: step ``t`` feeds the step generated last
  (the start token at ``t = 0``) and appends the decoder's output there; gradients flow
  through the whole unrolled decoding in training. On missing batches the cycle loss
  (which needs no victim) is added to the main loss.
- The decoding keeps a **key/value cache** (TransModality has none and reruns the decoder
  over the whole prefix at every step): each step computes the new position only, its
  queries against the cached self-attention keys/values of the earlier positions and the
  cross-attention keys/values of the encoder memory, projected once per sequence. The cache
  changes the cost (``O(l^2 d)`` instead of ``O(l^3 d)`` per sequence), not the method:
  without dropout the decoded steps and their gradients equal those of the uncached
  decoding (``SequenceTranslator._autoregressive_uncached``, kept as the reference) to
  float rounding. With dropout in training the decoded sequence has the same distribution
  as the uncached one when the decoder has one layer (the default: the first layer's
  keys/values see no dropout); with more layers, the cached keys/values of the upper layers keep the
  dropout draw of the step that made them, where the uncached decoding redraws it at
  every step.
- One translator layer per side by default; no CTFN hierarchy over three modalities, no
  convolutional fusion: prediction goes through the shared backbone's fusion and head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import Tensor, nn

from mmalign.config import TrainConfig
from mmalign.data.batching import Batch
from mmalign.models.backbone import Backbone, sinusoidal_positions
from mmalign.models.baselines.mfm import masked_mse
from mmalign.models.method import Losses, MissingModalityModel, Phase
from mmalign.validation import ConfigError, check_non_negative, check_positive

__all__ = ["ModalTrans", "SequenceTranslator", "causal_mask"]


def causal_mask(length: int, device: torch.device) -> Tensor:
    """Boolean attention mask (L, L), True where step ``i`` may NOT look (at ``j > i``).

    >>> causal_mask(3, torch.device("cpu")).int().tolist()
    [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    """
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)  # (L, L)


class SequenceTranslator(nn.Module):
    """Transformer encoder-decoder between two sequences of width ``d`` on one time axis.

    Parameters
    ----------
    d_model : int
        Width ``d`` of input and output steps.
    n_heads : int
        Attention heads ``H``.
    n_layers : int
        Layers of the encoder and of the decoder.
    dropout : float
    ff_mult : int
        Feed-forward width is ``ff_mult * d``.
    """

    def __init__(
        self, d_model: int, n_heads: int, n_layers: int, dropout: float, ff_mult: int
    ) -> None:
        super().__init__()
        enc_layer = nn.TransformerEncoderLayer(
            d_model, n_heads, ff_mult * d_model, dropout, batch_first=True, norm_first=True
        )
        dec_layer = nn.TransformerDecoderLayer(
            d_model, n_heads, ff_mult * d_model, dropout, batch_first=True, norm_first=True
        )
        # nested tensors need post-LN layers; we use pre-LN like the backbone (and the
        # cached decoding step, `_decode_step`, is written for pre-LN decoder layers)
        self.encoder = nn.TransformerEncoder(
            enc_layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.decoder = nn.TransformerDecoder(dec_layer, n_layers, norm=nn.LayerNorm(d_model))
        self.start = nn.Parameter(torch.randn(d_model) * 0.02)
        self.out = nn.Linear(d_model, d_model)

    def encode(self, x: Tensor, mask: Tensor) -> Tensor:
        """Encode input steps ``x`` (B, L, d) with ``mask`` (B, L) into the memory (B, L, d)."""
        pos = sinusoidal_positions(x.shape[1], x.shape[2], x.device).to(x.dtype)  # (L, d)
        return self.encoder(x + pos, src_key_padding_mask=~mask)

    def _decode(self, prefix: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """Causal decoder over ``prefix`` (B, T, d) -> output steps (B, T, d)."""
        steps = prefix.shape[1]
        pos = sinusoidal_positions(steps, prefix.shape[2], prefix.device).to(prefix.dtype)  # (T, d)
        hidden = self.decoder(
            prefix + pos,
            memory,
            tgt_mask=causal_mask(steps, prefix.device),
            tgt_is_causal=True,
            memory_key_padding_mask=~memory_mask,
        )
        return self.out(hidden)

    def teacher_forced(self, memory: Tensor, memory_mask: Tensor, target: Tensor) -> Tensor:
        """Predict every target step from the earlier *real* ones (training with teacher forcing).

        Parameters
        ----------
        memory : Tensor, shape (B, L, d)
        memory_mask : Tensor, shape (B, L)
        target : Tensor, shape (B, M, d)
            Real output steps; right padding is harmless under the causal mask.

        Returns
        -------
        Tensor, shape (B, M, d)
        """
        start = self.start.to(target.dtype).expand(target.shape[0], 1, -1)  # (B, 1, d)
        prefix = torch.cat([start, target[:, :-1]], dim=1)  # (B, M, d)
        return self._decode(prefix, memory, memory_mask)

    def autoregressive(self, memory: Tensor, memory_mask: Tensor, length: int) -> Tensor:
        """Decode ``length`` steps one at a time, each step fed back as the next input.

        Uses a key/value cache (one new position per step); equals
        :meth:`_autoregressive_uncached` to float rounding.

        Parameters
        ----------
        memory : Tensor, shape (B, L, d)
        memory_mask : Tensor, shape (B, L)
        length : int
            Steps ``M`` to generate (the source length on a shared time axis).

        Returns
        -------
        Tensor, shape (B, M, d)
        """
        batch, width = memory.shape[0], memory.shape[2]
        pos = sinusoidal_positions(length, width, memory.device).to(memory.dtype)  # (M, d)
        cross, blocked = self._memory_state(memory, memory_mask)
        cache: list[tuple[Tensor, Tensor] | None] = [None] * len(self.decoder.layers)
        step = self.start.to(memory.dtype).expand(batch, -1)  # (B, d)
        outputs = []
        for t in range(length):  # over time steps, vectorised over the batch
            step = self._decode_step(step + pos[t], cache, cross, blocked)  # (B, d)
            outputs.append(step)
        return torch.stack(outputs, dim=1)  # (B, M, d)

    def _autoregressive_uncached(self, memory: Tensor, memory_mask: Tensor, length: int) -> Tensor:
        """Decode like :meth:`autoregressive` without a cache, rerunning the decoder on the prefix.

        The original (TransModality-style) loop, ``O(l^3 d)`` per sequence; kept for the
        tests that check :meth:`autoregressive` against it. Same arguments and result.
        """
        prefix = self.start.to(memory.dtype).expand(memory.shape[0], 1, -1)  # (B, 1, d)
        outputs = []
        for _ in range(length):  # over time steps, vectorised over the batch
            step = self._decode(prefix, memory, memory_mask)[:, -1:]  # (B, 1, d)
            outputs.append(step)
            prefix = torch.cat([prefix, step], dim=1)  # (B, t+2, d)
        return torch.cat(outputs, dim=1)  # (B, M, d)

    def _memory_state(
        self, memory: Tensor, memory_mask: Tensor
    ) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
        """Compute once per sequence what every decoding step reads from the memory.

        Returns each decoder layer's cross-attention keys and values of ``memory`` (B, L, d),
        (B, H, L, d/H) each, and the additive mask (B, 1, L): 0 on the real steps of
        ``memory_mask`` (B, L), -inf on padding (as :class:`nn.MultiheadAttention` does).
        """
        d = memory.shape[-1]
        cross = []
        for layer in self.decoder.layers:
            attn = layer.multihead_attn
            w, b = attn.in_proj_weight, attn.in_proj_bias
            keys = F.linear(memory, w[d : 2 * d], b[d : 2 * d])  # (B, L, d)
            values = F.linear(memory, w[2 * d :], b[2 * d :])  # (B, L, d)
            heads = (attn.num_heads, d // attn.num_heads)
            keys = keys.unflatten(-1, heads).transpose(1, 2).contiguous()  # (B, H, L, d/H)
            values = values.unflatten(-1, heads).transpose(1, 2).contiguous()  # (B, H, L, d/H)
            cross.append((keys, values))
        blocked = torch.zeros(memory_mask.shape, dtype=memory.dtype, device=memory.device)
        blocked = blocked.masked_fill(~memory_mask, float("-inf"))[:, None]  # (B, 1, L)
        return cross, blocked

    def _attend(
        self,
        attn: nn.MultiheadAttention,
        q: Tensor,
        keys: Tensor,
        values: Tensor,
        blocked: Tensor | None,
    ) -> Tensor:
        """One query per row: heads ``q`` (B, H, d/H) on ``keys``/``values`` (B, H, T, d/H).

        ``blocked`` (B, 1, T) is added to the scores (-inf on padding) or None. Returns the
        out-projected attention output (B, d). Broadcast products rather than ``bmm``: with
        one query, B*H tiny matrix products cost more than the arithmetic.
        """
        scores = (q[:, :, None] * keys).sum(-1) * q.shape[-1] ** -0.5  # (B, H, T)
        if blocked is not None:
            scores = scores + blocked
        weights = F.dropout(scores.softmax(-1), attn.dropout, self.training)  # (B, H, T)
        heads = (weights[..., None] * values).sum(-2)  # (B, H, d/H)
        return attn.out_proj(heads.flatten(1))  # (B, d)

    def _decode_step(
        self,
        x: Tensor,
        cache: list[tuple[Tensor, Tensor] | None],
        cross: list[tuple[Tensor, Tensor]],
        blocked: Tensor,
    ) -> Tensor:
        """One new position ``x`` (B, d), position code added -> its output step (B, d).

        Same arithmetic as ``self.decoder`` (pre-LN :class:`nn.TransformerDecoderLayer`
        blocks, then the final norm) and ``self.out`` at the last position of the prefix,
        with the layers' own weights and dropouts. ``cache[i]`` holds layer ``i``'s
        self-attention keys/values (B, H, t, d/H) of the earlier positions (None before the
        first step) and is replaced by the extended pair; ``cross[i]`` holds the layer's
        memory keys/values (B, H, L, d/H); ``blocked`` (B, 1, L) is -inf on memory padding.
        """
        for i, layer in enumerate(self.decoder.layers):
            sa, ca = layer.self_attn, layer.multihead_attn
            heads = (sa.num_heads, x.shape[-1] // sa.num_heads)
            q, k, v = F.linear(layer.norm1(x), sa.in_proj_weight, sa.in_proj_bias).chunk(3, -1)
            k, v = k.unflatten(-1, heads)[:, :, None], v.unflatten(-1, heads)[:, :, None]
            if cache[i] is not None:  # (B, H, 1, d/H) new, appended to the cached (B, H, t, d/H)
                k, v = torch.cat([cache[i][0], k], dim=2), torch.cat([cache[i][1], v], dim=2)
            cache[i] = (k, v)
            x = x + layer.dropout1(self._attend(sa, q.unflatten(-1, heads), k, v, None))
            d = x.shape[-1]
            q = F.linear(layer.norm2(x), ca.in_proj_weight[:d], ca.in_proj_bias[:d])  # (B, d)
            heads = (ca.num_heads, d // ca.num_heads)
            x = x + layer.dropout2(self._attend(ca, q.unflatten(-1, heads), *cross[i], blocked))
            h = layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm3(x)))))
            x = x + layer.dropout3(h)
        return self.out(self.decoder.norm(x))


class ModalTrans(MissingModalityModel):
    """Backbone + cyclic source->victim->source translators (see module docstring).

    Parameters
    ----------
    backbone : Backbone
    task : str
        ``"regression"`` or ``"classification"``.
    n_heads : int
        Attention heads of the translators (must divide ``d``).
    n_layers : int
        Encoder and decoder layers of each translator.
    dropout : float
    ff_mult : int
    recon_weight : float
        Weight of the teacher-forced translation loss (complete batches).
    cycle_weight : float
        Weight of the cyclic back-translation loss.
    lambda_imputed : float
        Weight of the imputed path's task loss on complete batches
        (:meth:`~mmalign.models.method.MissingModalityModel.with_imputed_loss`; 0 = missing
        batches only).
    """

    def __init__(
        self,
        backbone: Backbone,
        task: str,
        n_heads: int = 4,
        n_layers: int = 1,
        dropout: float = 0.1,
        ff_mult: int = 2,
        recon_weight: float = 1.0,
        cycle_weight: float = 1.0,
        lambda_imputed: float = TrainConfig.lambda_imputed,
    ) -> None:
        super().__init__(backbone, task, lambda_imputed)
        d = backbone.d_model
        for name, value in (("n_heads", n_heads), ("n_layers", n_layers), ("ff_mult", ff_mult)):
            check_positive(name, value)
        if d % n_heads:
            raise ConfigError(f"`n_heads` must divide d_model={d}; got {n_heads!r}.")
        check_non_negative("recon_weight", recon_weight)
        check_non_negative("cycle_weight", cycle_weight)
        self.recon_weight, self.cycle_weight = float(recon_weight), float(cycle_weight)
        self.forward_translator = SequenceTranslator(d, n_heads, n_layers, dropout, ff_mult)
        self.backward_translator = SequenceTranslator(d, n_heads, n_layers, dropout, ff_mult)

    def translate(self, source_steps: Tensor, source_mask: Tensor) -> Tensor:
        """Autoregressive source -> victim translation: (B, L, d) -> (B, L, d)."""
        memory = self.forward_translator.encode(source_steps, source_mask)
        return self.forward_translator.autoregressive(memory, source_mask, source_steps.shape[1])

    def cycle_loss(
        self, generated: Tensor, source_steps: Tensor, source_mask: Tensor, scored: Tensor
    ) -> Tensor:
        """Back-translate ``generated`` (B, L, d) to the (detached) source steps (B, L, d).

        ``source_mask`` (B, L) masks the generated sequence (it lies on the source's time
        axis); the masked MSE counts the steps of ``scored`` (B, L) only.
        """
        target = source_steps.detach()
        memory = self.backward_translator.encode(generated, source_mask)
        back = self.backward_translator.teacher_forced(memory, source_mask, target)
        return masked_mse(back, target, scored)

    def impute_victim(self, z_source: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Decode the victim autoregressively; victim head token at 0; mask = source mask."""
        steps = self.translate(z_source[:, 1:], batch.source_mask)
        head = self.backbone.victim_head_token().expand(steps.shape[0], 1, -1)  # (B, 1, d)
        return torch.cat([head, steps], dim=1), batch.source_mask  # (B, 1+L, d)

    def compute_losses(self, batch: Batch, phase: Phase) -> Losses:
        """Missing: main (decoded victim) + cycle. Otherwise: main + teacher forcing + cycle."""
        if phase == "missing":
            z_source = self.backbone.encode_source(batch.source, batch.source_mask)
            z_gen, mask = self.impute_victim(z_source, batch)
            out = self.backbone.predict_fused(z_source, batch.source_mask, z_gen, mask)
            main = self.loss(out, batch)
            mask = batch.source_mask
            cycle = self.cycle_loss(z_gen[:, 1:], z_source[:, 1:], mask, mask)
            total = main + self.cycle_weight * cycle
            return Losses({"backbone": total}, {"main": main.detach(), "cycle": cycle.detach()})
        z_source, z_victim, victim_mask = self.encode_pair_or_impute(batch)
        out = self.backbone.predict_fused(z_source, batch.source_mask, z_victim, victim_mask)
        main = self.loss(out, batch)
        source_steps, target = z_source[:, 1:], z_victim[:, 1:].detach()  # (B, L, d) each
        rows = batch.has_victim[:, None]  # (B, 1)
        memory = self.forward_translator.encode(source_steps, batch.source_mask)
        generated = self.forward_translator.teacher_forced(memory, batch.source_mask, target)
        translation = masked_mse(generated, target, batch.victim_mask & batch.source_mask & rows)
        scored = batch.source_mask & rows  # (B, L)
        cycle = self.cycle_loss(generated, source_steps, batch.source_mask, scored)
        total = main + self.recon_weight * translation + self.cycle_weight * cycle
        logged = {
            "main": main.detach(),
            "translation": translation.detach(),
            "cycle": cycle.detach(),
        }
        return self.with_imputed_loss(Losses({"backbone": total}, logged), z_source, batch, phase)
