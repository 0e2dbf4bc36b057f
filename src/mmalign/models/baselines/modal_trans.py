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
  keys/values see no dropout; tested); with more layers, the cached keys/values of the
  upper layers keep the dropout draw of the step that made them, where the uncached
  decoding redraws it at every step. The decoding draws the dropout masks of 16 steps in
  one call rather than six per layer and step.
- The translators' layers are pre-LN transformer layers with the arithmetic and parameter
  names of torch's ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer`` (tested
  against them; checkpoints load either way), on the backbone's cheaper attention and
  dropout masks (:mod:`mmalign.models.attention`). A seed gives torch's initial weights;
  the dropout stream differs, so runs differ from those before the change within seed
  noise (tested).
- One translator layer per side by default; no CTFN hierarchy over three modalities, no
  convolutional fusion: prediction goes through the shared backbone's fusion and head.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import Tensor, nn

from mmalign.config import TrainConfig
from mmalign.data.batching import Batch
from mmalign.models.attention import ByteDropout, MaskedAttention, dropout_scale_mask
from mmalign.models.backbone import Backbone, sinusoidal_positions
from mmalign.models.baselines.mfm import masked_mse
from mmalign.models.method import Losses, MissingModalityModel, Phase
from mmalign.validation import ConfigError, check_non_negative, check_positive

# dropout masks of one decoder layer at one decoding step: self-attention weights (B, H, t+1),
# cross-attention weights (B, H, L), self-attention branch (B, d), cross-attention branch
# (B, d), feed-forward hidden units (B, f), feed-forward branch (B, d)
StepMasks = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]
MASK_CHUNK = 16  # decoding steps whose dropout masks are drawn in one call

__all__ = ["DecoderLayer", "EncoderLayer", "ModalTrans", "SequenceTranslator"]


class _FeedForward(nn.Module):
    """The feed-forward branch of torch's transformer layers (``linear1``, ``linear2``)."""

    linear1: nn.Linear
    linear2: nn.Linear
    dropout: nn.Module

    def feed_forward(self, x: Tensor) -> Tensor:
        """Apply the feed-forward branch to normed steps ``x`` (..., d) -> (..., d)."""
        return self.linear2(self.dropout(F.relu(self.linear1(x))))


class EncoderLayer(_FeedForward):
    """Pre-LN transformer encoder layer on the project's attention and dropout.

    The arithmetic of ``nn.TransformerEncoderLayer(norm_first=True, batch_first=True)`` and
    its parameter names (checkpoints load either way), with :class:`MaskedAttention` and
    :class:`ByteDropout` in place of ``nn.MultiheadAttention`` and ``nn.Dropout``: cheaper
    per call at these sizes (:mod:`mmalign.models.attention`); the dropout stream differs.

    Parameters
    ----------
    d_model, n_heads, dropout, ff_mult
        As :class:`SequenceTranslator`.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float, ff_mult: int) -> None:
        super().__init__()
        # built in nn.TransformerEncoderLayer's order, so a seed gives the same weights
        self.self_attn = MaskedAttention(d_model, n_heads, dropout)
        self.linear1 = nn.Linear(d_model, ff_mult * d_model)
        self.dropout = ByteDropout(dropout)
        self.linear2 = nn.Linear(ff_mult * d_model, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout1, self.dropout2 = ByteDropout(dropout), ByteDropout(dropout)

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        """Encode steps ``x`` (B, L, d), ``pad`` (B, L) True on padding -> (B, L, d)."""
        h = self.norm1(x)
        x = x + self.dropout1(self.self_attn(h, h, pad))
        return x + self.dropout2(self.feed_forward(self.norm2(x)))


class DecoderLayer(_FeedForward):
    """Pre-LN transformer decoder layer on the project's attention and dropout.

    The arithmetic and parameter names of ``nn.TransformerDecoderLayer(norm_first=True,
    batch_first=True)``: causal self-attention, cross-attention to the memory, feed-forward
    (see :class:`EncoderLayer`).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float, ff_mult: int) -> None:
        super().__init__()
        self.self_attn = MaskedAttention(d_model, n_heads, dropout)
        self.multihead_attn = MaskedAttention(d_model, n_heads, dropout)
        self.linear1 = nn.Linear(d_model, ff_mult * d_model)
        self.dropout = ByteDropout(dropout)
        self.linear2 = nn.Linear(ff_mult * d_model, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1, self.dropout2 = ByteDropout(dropout), ByteDropout(dropout)
        self.dropout3 = ByteDropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, memory_pad: Tensor) -> Tensor:
        """Decode prefix ``x`` (B, T, d) on ``memory`` (B, L, d), ``memory_pad`` (B, L) -> (B, T, d)."""
        h = self.norm1(x)
        x = x + self.dropout1(self.self_attn(h, h, None, causal=True))
        x = x + self.dropout2(self.multihead_attn(self.norm2(x), memory, memory_pad))
        return x + self.dropout3(self.feed_forward(self.norm3(x)))


class _Stack(nn.Module):
    """``n`` copies of one layer (same initial weights, as ``nn.TransformerEncoder``) + a norm."""

    def __init__(self, layer: nn.Module, n_layers: int, d_model: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)


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
        enc_layer = EncoderLayer(d_model, n_heads, dropout, ff_mult)
        dec_layer = DecoderLayer(d_model, n_heads, dropout, ff_mult)
        self.encoder = _Stack(enc_layer, n_layers, d_model)
        self.decoder = _Stack(dec_layer, n_layers, d_model)
        self.dropout = dropout
        self.start = nn.Parameter(torch.randn(d_model) * 0.02)
        self.out = nn.Linear(d_model, d_model)

    def encode(self, x: Tensor, mask: Tensor) -> Tensor:
        """Encode input steps ``x`` (B, L, d) with ``mask`` (B, L) into the memory (B, L, d)."""
        pos = sinusoidal_positions(x.shape[1], x.shape[2], x.device).to(x.dtype)  # (L, d)
        x, pad = x + pos, ~mask
        for layer in self.encoder.layers:
            x = layer(x, pad)
        return self.encoder.norm(x)

    def _decode(self, prefix: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """Causal decoder over ``prefix`` (B, T, d) -> output steps (B, T, d)."""
        steps = prefix.shape[1]
        pos = sinusoidal_positions(steps, prefix.shape[2], prefix.device).to(prefix.dtype)  # (T, d)
        x, memory_pad = prefix + pos, ~memory_mask
        for layer in self.decoder.layers:
            x = layer(x, memory, memory_pad)
        return self.out(self.decoder.norm(x))

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
        masks = self._step_masks(memory, length)
        outputs = []
        for t in range(length):  # over time steps, vectorised over the batch
            step = self._decode_step(step + pos[t], cache, cross, blocked, next(masks))  # (B, d)
            outputs.append(step)
        return torch.stack(outputs, dim=1)  # (B, M, d)

    def _step_masks(self, memory: Tensor, length: int) -> Iterator[list[StepMasks] | None]:
        """Yield, for each decoding step ``t``, every decoder layer's dropout masks.

        None at every step in evaluation or without dropout. In training each layer gets
        :data:`StepMasks`, the factors :func:`~mmalign.models.attention.byte_dropout` would
        multiply by: on the self-attention weights (B, H, t+1), the cross-attention weights
        (B, H, L) for ``memory`` (B, L, d), the residual branches (B, d) and the feed-forward
        hidden units (B, f). The masks of :data:`MASK_CHUNK` steps are drawn in one call, not
        six per layer and step: the same distribution, far fewer operator calls.
        """
        if not self.training or round(256 * self.dropout) == 0:  # byte_dropout's rounding
            yield from itertools.repeat(None)
            return
        batch, memory_len, width = memory.shape
        layers = self.decoder.layers
        heads, hidden = layers[0].self_attn.n_heads, layers[0].linear1.out_features
        for t0 in range(0, length, MASK_CHUNK):
            steps = min(MASK_CHUNK, length - t0)
            span = t0 + steps  # the longest self-attention row of the chunk
            sizes = [heads * span, heads * memory_len, width, width, hidden, width]
            shape = (steps, batch, len(layers), sum(sizes))
            drawn = dropout_scale_mask(shape, self.dropout, memory.device, memory.dtype)
            for s in range(steps):
                per_layer = []
                for i in range(len(layers)):
                    own, other, *branches = drawn[s, :, i].split(sizes, -1)
                    own = own.unflatten(-1, (heads, span))[..., : t0 + s + 1]  # (B, H, t+1)
                    other = other.unflatten(-1, (heads, memory_len))  # (B, H, L)
                    per_layer.append((own, other, *branches))
                yield per_layer

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
            heads = (attn.n_heads, d // attn.n_heads)
            keys = keys.unflatten(-1, heads).transpose(1, 2).contiguous()  # (B, H, L, d/H)
            values = values.unflatten(-1, heads).transpose(1, 2).contiguous()  # (B, H, L, d/H)
            cross.append((keys, values))
        blocked = torch.zeros(memory_mask.shape, dtype=memory.dtype, device=memory.device)
        blocked = blocked.masked_fill(~memory_mask, float("-inf"))[:, None]  # (B, 1, L)
        return cross, blocked

    @staticmethod
    def _attend(
        attn: MaskedAttention,
        q: Tensor,
        keys: Tensor,
        values: Tensor,
        blocked: Tensor | None,
        dropped: Tensor | None,
    ) -> Tensor:
        """One query per row: heads ``q`` (B, H, d/H) on ``keys``/``values`` (B, H, T, d/H).

        ``blocked`` (B, 1, T) is added to the scores (-inf on padding) or None; ``dropped``
        (B, H, T) multiplies the attention weights (a dropout mask) or None. Returns the
        out-projected attention output (B, d). Broadcast products rather than ``bmm``: with
        one query, B*H tiny matrix products cost more than the arithmetic.
        """
        scores = (q[:, :, None] * keys).sum(-1) * q.shape[-1] ** -0.5  # (B, H, T)
        if blocked is not None:
            scores = scores + blocked
        weights = scores.softmax(-1)  # (B, H, T)
        if dropped is not None:
            weights = weights * dropped
        heads = (weights[..., None] * values).sum(-2)  # (B, H, d/H)
        return attn.out_proj(heads.flatten(1))  # (B, d)

    def _decode_step(
        self,
        x: Tensor,
        cache: list[tuple[Tensor, Tensor] | None],
        cross: list[tuple[Tensor, Tensor]],
        blocked: Tensor,
        masks: list[StepMasks] | None = None,
    ) -> Tensor:
        """One new position ``x`` (B, d), position code added -> its output step (B, d).

        Same arithmetic as ``self.decoder`` (its :class:`DecoderLayer` blocks, then the
        final norm) and ``self.out`` at the last position of the prefix, with the layers'
        own weights. ``cache[i]`` holds layer ``i``'s self-attention keys/values
        (B, H, t, d/H) of the earlier positions (None before the first step) and is replaced
        by the extended pair; ``cross[i]`` holds the layer's memory keys/values
        (B, H, L, d/H); ``blocked`` (B, 1, L) is -inf on memory padding. ``masks[i]`` holds
        layer ``i``'s dropout masks for this step (:meth:`_step_masks`); None drops nothing.
        """
        for i, layer in enumerate(self.decoder.layers):
            own, other, after_own, after_other, hidden, after_ff = (
                [None] * 6 if masks is None else masks[i]
            )
            sa, ca = layer.self_attn, layer.multihead_attn
            heads = (sa.n_heads, x.shape[-1] // sa.n_heads)
            q, k, v = F.linear(layer.norm1(x), sa.in_proj_weight, sa.in_proj_bias).chunk(3, -1)
            k, v = k.unflatten(-1, heads)[:, :, None], v.unflatten(-1, heads)[:, :, None]
            if cache[i] is not None:  # (B, H, 1, d/H) new, appended to the cached (B, H, t, d/H)
                k, v = torch.cat([cache[i][0], k], dim=2), torch.cat([cache[i][1], v], dim=2)
            cache[i] = (k, v)
            x = x + _masked(self._attend(sa, q.unflatten(-1, heads), k, v, None, own), after_own)
            d = x.shape[-1]
            q = F.linear(layer.norm2(x), ca.in_proj_weight[:d], ca.in_proj_bias[:d])  # (B, d)
            heads = (ca.n_heads, d // ca.n_heads)
            attended = self._attend(ca, q.unflatten(-1, heads), *cross[i], blocked, other)
            x = x + _masked(attended, after_other)
            h = _masked(F.relu(layer.linear1(layer.norm3(x))), hidden)  # (B, f)
            x = x + _masked(layer.linear2(h), after_ff)
        return self.out(self.decoder.norm(x))


def _masked(x: Tensor, mask: Tensor | None) -> Tensor:
    """``x`` times a dropout mask of its shape, or ``x`` when there is none."""
    return x if mask is None else x * mask


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
    lambda_imputed, victim_stream_dropout : float
        The imputing methods' shared training options, documented once in
        :class:`~mmalign.models.method.MissingModalityModel`.
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
        victim_stream_dropout: float = TrainConfig.victim_stream_dropout,
    ) -> None:
        super().__init__(backbone, task, lambda_imputed, victim_stream_dropout)
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
            out = self.fuse(z_source, batch.source_mask, z_gen, mask)
            main = self.loss(out, batch)
            mask = batch.source_mask
            cycle = self.cycle_loss(z_gen[:, 1:], z_source[:, 1:], mask, mask)
            total = main + self.cycle_weight * cycle
            return Losses({"backbone": total}, {"main": main.detach(), "cycle": cycle.detach()})
        z_source, z_victim, victim_mask = self.encode_pair_or_impute(batch)
        out = self.fuse(z_source, batch.source_mask, z_victim, victim_mask)
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
