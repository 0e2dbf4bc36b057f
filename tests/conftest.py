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

    def forward(self, x, context, context_pad):
        return self.inner(x, context, context, key_padding_mask=context_pad, need_weights=False)[0]


@pytest.fixture
def torch_modules(monkeypatch):
    """Build backbones with the torch modules that the faster attention and dropout replace."""
    from mmalign.models import backbone

    monkeypatch.setattr(backbone, "MaskedAttention", _TorchAttention)
    monkeypatch.setattr(backbone, "ByteDropout", torch.nn.Dropout)
