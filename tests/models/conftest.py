import pytest
import torch

from mmalign.data.batching import Batch


def make_batch(b=4, seq_len=9, d_source=6, d_victim=5, has_victim=True, task="regression", seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, seq_len + 1, (b,), generator=g)
    lengths[0] = seq_len
    mask = torch.arange(seq_len)[None] < lengths[:, None]
    has = (
        torch.full((b,), has_victim)
        if isinstance(has_victim, bool)
        else torch.as_tensor(has_victim)
    )
    source = torch.randn(b, seq_len, d_source, generator=g) * mask[..., None]
    victim = torch.randn(b, seq_len, d_victim, generator=g) * (mask & has[:, None])[..., None]
    labels = (
        torch.randn(b, generator=g)
        if task == "regression"
        else torch.randint(0, 3, (b,), generator=g)
    )
    return Batch(
        source=source,
        source_mask=mask,
        victim=victim,
        victim_mask=mask & has[:, None],
        has_victim=has,
        labels=labels,
        index=torch.arange(b),
    )


@pytest.fixture
def batch_factory():
    return make_batch
