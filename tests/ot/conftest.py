import pytest
import torch

DTYPES = [torch.float32, torch.float64]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def lengths_to_mask(lengths, n_steps, device="cpu"):
    """(B,) lengths -> (B, n_steps) bool mask, valid steps first."""
    lengths = torch.as_tensor(lengths)
    return (torch.arange(n_steps)[None, :] < lengths[:, None]).to(device)
