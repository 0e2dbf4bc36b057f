import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mmalign.models.bigru import BiGRU


def packed_reference(gru: nn.GRU, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """A packed bidirectional GRU on each sample's first n steps; padded outputs 0."""
    packed = pack_padded_sequence(x, n.clamp_min(1), batch_first=True, enforce_sorted=False)
    out, _ = pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=x.shape[1])
    return out * (torch.arange(x.shape[1])[None] < n[:, None])[..., None]


@pytest.mark.parametrize(("width", "hidden"), [(6, 4), (8, 8)])
def test_bigru_equals_a_packed_bidirectional_gru_in_init_outputs_and_gradients(width, hidden):
    torch.manual_seed(0)
    reference = nn.GRU(width, hidden, batch_first=True, bidirectional=True)
    torch.manual_seed(0)
    mine = BiGRU(width, hidden)
    for name, param in reference.named_parameters():  # same draws, same order
        part = mine.gru_reverse if name.endswith("_reverse") else mine.gru
        assert torch.equal(getattr(part, name.removesuffix("_reverse")), param)
    x = torch.randn(5, 9, width)
    n = torch.tensor([9, 4, 1, 7, 2])
    mask = torch.arange(9)[None] < n[:, None]
    expected = packed_reference(reference, x, n)
    got = mine(x, mask)
    assert got.shape == (5, 9, 2 * hidden)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    weights = torch.randn_like(got)
    (got * weights).sum().backward()
    (expected * weights).sum().backward()
    for name, param in reference.named_parameters():
        part = mine.gru_reverse if name.endswith("_reverse") else mine.gru
        grad = getattr(part, name.removesuffix("_reverse")).grad
        torch.testing.assert_close(grad, param.grad, rtol=1e-4, atol=1e-5)


def test_bigru_does_not_depend_on_padding():
    torch.manual_seed(0)
    gru = BiGRU(3, 4)
    x = torch.randn(1, 5, 3)
    short = gru(x, torch.ones(1, 5, dtype=torch.bool))
    padded = torch.cat([x, torch.randn(1, 3, 3)], dim=1)  # (1, 8, 3)
    long = gru(padded, torch.arange(8)[None] < 5)
    torch.testing.assert_close(long[:, :5], short)
    assert torch.equal(long[:, 5:], torch.zeros(1, 3, 8))


def test_bigru_loads_the_state_dict_of_a_bidirectional_gru_inside_a_model():
    torch.manual_seed(1)
    old = nn.Sequential(nn.GRU(4, 3, batch_first=True, bidirectional=True))
    new = nn.Sequential(BiGRU(4, 3))
    new.load_state_dict(old.state_dict())
    x = torch.randn(2, 6, 4)
    n = torch.tensor([6, 3])
    expected = packed_reference(old[0], x, n)
    torch.testing.assert_close(new[0](x, torch.arange(6)[None] < n[:, None]), expected)
    assert set(new.state_dict()) == {f"0.{g}.{p}" for g in ("gru", "gru_reverse") for p in (
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}  # fmt: skip
