"""A bidirectional GRU over right-padded sequences, without packing.

The GRU of Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for
Statistical Machine Translation", EMNLP 2014, run both ways (Schuster and Paliwal,
"Bidirectional Recurrent Neural Networks", IEEE Trans. Signal Processing, 1997), as
``torch.nn.GRU(..., bidirectional=True)`` computes it.

A packed bidirectional ``nn.GRU`` needs each sample's length on the host (a sync) and runs
its two directions as separate per-step calls. Here the two directions are two ``nn.GRU``
modules with the parameters, initialisation and outputs of one packed bidirectional GRU:
the backward one reads each sample's valid steps reversed in place, and both run as one GRU
of twice the width with block-diagonal weights, so each time step is one call
(``benchmarks/speedup_vs_commit.py``: about 0.6x the packed GRU's time on a CPU).
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["BiGRU", "bidirectional_gru", "split_packed_gru_keys"]


def bidirectional_gru(forward: nn.GRU, reverse: nn.GRU, x: Tensor, mask: Tensor) -> Tensor:
    """Run ``forward`` and, on each sample's valid steps reversed, ``reverse``: (B, L, 2h).

    Parameters
    ----------
    forward, reverse : nn.GRU
        One layer each, ``batch_first=True``, the same sizes.
    x : Tensor, shape (B, L, D)
    mask : Tensor, shape (B, L)
        Valid steps first (right padding).

    Returns
    -------
    Tensor, shape (B, L, 2h)
        The forward and backward states of each valid step, as a packed bidirectional GRU
        gives them (so they do not depend on the padding); padded steps are 0.
    """
    steps = torch.arange(x.shape[1], device=x.device)
    n = mask.sum(1, keepdim=True)  # (B, 1)
    # each sample's valid steps reversed in place; padded steps stay where they are
    flip = torch.where(steps < n, n - 1 - steps, steps)[..., None]  # (B, L, 1)
    both = torch.cat([x, x.gather(1, flip.expand_as(x))], -1)  # (B, L, 2D)
    # a GRU's gates act unit by unit, so block-diagonal weights never mix the directions
    weights = _block_diagonal_gru(forward, reverse)
    fused = _fused_gru(forward.input_size, forward.hidden_size)
    with warnings.catch_warnings():  # cuDNN would ask to compact the joined weights
        warnings.filterwarnings("ignore", "RNN module weights are not part")
        out, _ = functional_call(fused, weights, (both,))
    ahead, back = out.chunk(2, dim=-1)  # (B, L, h) each
    out = torch.cat([ahead, back.gather(1, flip.expand_as(back))], -1)  # (B, L, 2h)
    return out * mask[..., None].to(out.dtype)


class BiGRU(nn.Module):
    """A bidirectional GRU of one layer over right-padded sequences (:func:`bidirectional_gru`).

    Its parameters are ``gru.*`` and ``gru_reverse.*``, drawn in the order of one
    ``nn.GRU(..., bidirectional=True)``, so the same seed gives the same weights. A state dict
    saved from such a GRU (``weight_ih_l0``, ``weight_ih_l0_reverse``, ...) loads.

    Parameters
    ----------
    input_size, hidden_size : int
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)
        self.gru_reverse = nn.GRU(input_size, hidden_size, batch_first=True)
        self.register_load_state_dict_pre_hook(_from_packed_gru)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, L, D), (B, L) -> (B, L, 2h); padded steps are 0."""
        return bidirectional_gru(self.gru, self.gru_reverse, x, mask)


def _block_diagonal_gru(first: nn.GRU, second: nn.GRU) -> dict[str, Tensor]:
    """Weights of one GRU that runs ``first`` on the first half of its input and ``second`` on the other.

    Each gate's input and hidden matrices become block diagonal and its biases are joined,
    gate by gate (``r``, ``z``, ``n``): (3h, d) and (3h, d) -> (6h, 2d).
    """
    out = {}
    for name in ("weight_ih_l0", "weight_hh_l0"):
        a, b = getattr(first, name), getattr(second, name)  # (3h, d) each
        h, d = a.shape[0] // 3, a.shape[1]
        top = torch.cat([a.view(3, h, d), a.new_zeros(3, h, d)], -1)  # (3, h, 2d)
        bottom = torch.cat([b.new_zeros(3, h, d), b.view(3, h, d)], -1)  # (3, h, 2d)
        out[name] = torch.cat([top, bottom], 1).reshape(6 * h, 2 * d)
    for name in ("bias_ih_l0", "bias_hh_l0"):
        a, b = getattr(first, name), getattr(second, name)  # (3h,) each
        out[name] = torch.cat([a.view(3, -1), b.view(3, -1)], 1).reshape(-1)
    return out


@functools.cache
def _fused_gru(input_size: int, hidden_size: int) -> nn.GRU:
    """Return a parameter-free GRU of twice the width for :func:`functional_call` to run."""
    # on the meta device: no memory, no random draws
    return nn.GRU(2 * input_size, 2 * hidden_size, batch_first=True, device="meta")


_GRU_PARAMETERS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def split_packed_gru_keys(state_dict: dict, packed: str, forward: str, reverse: str) -> None:
    """Rename, in place, one bidirectional ``nn.GRU``'s saved parameters to two GRUs'.

    ``{packed}weight_ih_l0`` goes to ``{forward}weight_ih_l0`` and
    ``{packed}weight_ih_l0_reverse`` to ``{reverse}weight_ih_l0``, and so on for each
    parameter; keys that are not there are left alone (a state dict saved with two GRUs).
    """
    for name in _GRU_PARAMETERS:
        for old, new in (
            (packed + name, forward + name),
            (f"{packed}{name}_reverse", reverse + name),
        ):
            if old in state_dict:
                state_dict[new] = state_dict.pop(old)


def _from_packed_gru(module, state_dict, prefix, *args) -> None:
    """Load a state dict of one bidirectional ``nn.GRU`` into :class:`BiGRU`'s two GRUs."""
    split_packed_gru_keys(state_dict, prefix, f"{prefix}gru.", f"{prefix}gru_reverse.")
