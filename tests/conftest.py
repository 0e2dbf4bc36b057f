import pytest
import torch

# Tiny test models are fastest on one thread, and the CI machine's 2 cores are shared with
# pytest itself: oversubscription made single runs up to 10x slower.
torch.set_num_threads(1)


class _TorchAttention(torch.nn.Module):
    """nn.MultiheadAttention behind MaskedAttention's call signature (what ran before bd55752)."""

    def __init__(self, d_model, n_heads, dropout):
        super().__init__()
        self.inner = torch.nn.MultiheadAttention(
            d_model, n_heads, dropout=dropout, batch_first=True
        )

    def forward(self, x, context, context_pad, causal=False):
        assert not causal  # backbones never attend causally
        return self.inner(x, context, context, key_padding_mask=context_pad, need_weights=False)[0]


@pytest.fixture
def torch_modules(monkeypatch):
    """Build models with the torch modules that the faster attention and dropout replace.

    Backbones get nn.MultiheadAttention and nn.Dropout; Modal-Trans's translators, whose
    cached decoding reads the attention's weights directly, keep their attention arithmetic
    and draw every dropout mask with torch's own dropout.
    """
    from mmalign.models import attention, backbone
    from mmalign.models.baselines import modal_trans

    def torch_scale_mask(shape, p, device, dtype):  # what F.dropout multiplies by
        if p == 0:
            return None
        return torch.empty(shape, device=device, dtype=dtype).bernoulli_(1 - p).div_(1 - p)

    monkeypatch.setattr(backbone, "MaskedAttention", _TorchAttention)
    monkeypatch.setattr(backbone, "ByteDropout", torch.nn.Dropout)
    monkeypatch.setattr(attention, "dropout_scale_mask", torch_scale_mask)
    monkeypatch.setattr(modal_trans, "dropout_scale_mask", torch_scale_mask)
    monkeypatch.setattr(modal_trans, "ByteDropout", torch.nn.Dropout)
