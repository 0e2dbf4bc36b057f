"""The faster backbone pieces compute what the torch modules they replace compute.

MaskedAttention against nn.MultiheadAttention, byte_dropout's statistics, the fitter's two
padded GRUs against one packed bidirectional GRU, and whole runs against runs with the torch
modules swapped back in (within seed noise: the dropout stream differs).
"""

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import mmalign
from mmalign.data.checks import DataQualityWarning
from mmalign.models.adl import AlignmentFitter
from mmalign.models.attention import ByteDropout, MaskedAttention, byte_dropout


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 9, 16, generator=g)
    context = torch.randn(6, 5, 16, generator=g)
    x_pad = torch.arange(9)[None] >= torch.tensor([9, 3, 1, 9, 6, 2])[:, None]
    c_pad = torch.arange(5)[None] >= torch.tensor([5, 1, 5, 2, 4, 3])[:, None]
    return x, context, x_pad, c_pad


def test_masked_attention_has_the_parameters_and_init_of_multihead_attention():
    torch.manual_seed(3)
    reference = nn.MultiheadAttention(16, 4, dropout=0.2, batch_first=True)
    torch.manual_seed(3)
    ours = MaskedAttention(16, 4, 0.2)
    assert list(ours.state_dict()) == list(reference.state_dict())
    for key, value in reference.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


@pytest.mark.parametrize("mode", ["self", "cross"])
@pytest.mark.parametrize("train", [False, True])
def test_masked_attention_equals_multihead_attention_without_dropout(mode, train):
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(16, 4, dropout=0.0, batch_first=True)
    ours = MaskedAttention(16, 4, 0.0)
    ours.load_state_dict(reference.state_dict())
    reference.train(train), ours.train(train)
    x, context, x_pad, c_pad = _inputs()
    x.requires_grad_(True)
    if mode == "self":
        expected, _ = reference(x, x, x, key_padding_mask=x_pad, need_weights=False)
        got = ours(x, x, x_pad)
    else:
        expected, _ = reference(x, context, context, key_padding_mask=c_pad, need_weights=False)
        got = ours(x, context, c_pad)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    (g_expected,) = torch.autograd.grad(expected.square().sum(), x)
    (g_got,) = torch.autograd.grad(got.square().sum(), x)
    torch.testing.assert_close(g_got, g_expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("train", [False, True])
def test_causal_masked_attention_equals_multihead_attention_with_a_causal_mask(train):
    torch.manual_seed(1)
    reference = nn.MultiheadAttention(16, 4, dropout=0.0, batch_first=True)
    ours = MaskedAttention(16, 4, 0.0)
    ours.load_state_dict(reference.state_dict())
    reference.train(train), ours.train(train)
    x, _, x_pad, _ = _inputs(1)
    causal = torch.ones(9, 9, dtype=torch.bool).triu(1)  # True = may not look
    expected, _ = reference(x, x, x, attn_mask=causal, need_weights=False)
    torch.testing.assert_close(ours(x, x, None, causal=True), expected, rtol=1e-5, atol=1e-6)
    # with padding as well (every row keeps its first step, so no row is fully blocked)
    expected, _ = reference(x, x, x, attn_mask=causal, key_padding_mask=x_pad, need_weights=False)
    torch.testing.assert_close(ours(x, x, x_pad, causal=True), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["self", "cross", "causal", "causal-padded"])
def test_the_training_path_computes_multihead_attention_when_nothing_is_dropped(mode, monkeypatch):
    # the dropout path (scores by baddbmm with the mask as a bias) with a mask that keeps
    # every unit must give nn.MultiheadAttention's values and gradients
    import mmalign.models.attention as attention

    monkeypatch.setattr(
        attention, "dropout_scale_mask", lambda shape, p, device, dtype: torch.ones(shape)
    )
    torch.manual_seed(2)
    reference = nn.MultiheadAttention(16, 4, dropout=0.0, batch_first=True)
    ours = MaskedAttention(16, 4, 0.5).train()
    ours.load_state_dict(reference.state_dict())
    x, context, x_pad, c_pad = _inputs(2)
    x.requires_grad_(True)
    causal = torch.ones(9, 9, dtype=torch.bool).triu(1)
    if mode == "self":
        expected = reference(x, x, x, key_padding_mask=x_pad, need_weights=False)[0]
        got = ours(x, x, x_pad)
    elif mode == "cross":
        expected = reference(x, context, context, key_padding_mask=c_pad, need_weights=False)[0]
        got = ours(x, context, c_pad)
    elif mode == "causal":
        expected = reference(x, x, x, attn_mask=causal, need_weights=False)[0]
        got = ours(x, x, None, causal=True)
    else:
        kw = {"attn_mask": causal, "key_padding_mask": x_pad, "need_weights": False}
        expected = reference(x, x, x, **kw)[0]
        got = ours(x, x, x_pad, causal=True)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    (g_expected,) = torch.autograd.grad(expected.square().sum(), x)
    (g_got,) = torch.autograd.grad(got.square().sum(), x)
    torch.testing.assert_close(g_got, g_expected, rtol=1e-4, atol=1e-5)


def test_attention_dropout_drops_weights_and_keeps_their_expectation():
    torch.manual_seed(0)
    attention = MaskedAttention(16, 4, 0.5).train()
    x, context, _, c_pad = _inputs()
    with torch.no_grad():
        outs = torch.stack([attention(x, context, c_pad) for _ in range(400)])
        attention.eval()
        expected = attention(x, context, c_pad)
    spread = outs.std(0)
    assert spread.mean() > 0.01  # the weights were dropped
    # the mean of 400 draws is within 5 standard errors of the output without dropout
    assert ((outs.mean(0) - expected).abs() <= 5 * spread / 20 + 1e-6).all()


def test_byte_dropout_drops_the_rounded_share_with_an_exact_scale():
    torch.manual_seed(0)
    x = torch.ones(1_000_000)
    for p, share in ((0.2, 51 / 256), (0.1, 26 / 256), (0.5, 0.5)):
        y = byte_dropout(x, p)
        dropped = float((y == 0).float().mean())
        assert abs(dropped - share) < 5 * np.sqrt(share * (1 - share) / x.numel())
        assert torch.allclose(y[y > 0], torch.tensor(256 / (256 - round(256 * p))))
        assert abs(float(y.mean()) - 1) < 5 * np.sqrt(share / (1 - share) / x.numel())
    assert byte_dropout(x, 0.2, training=False) is x and byte_dropout(x, 0.001) is x
    torch.manual_seed(1)
    a = byte_dropout(torch.ones(10_000), 0.3)
    torch.manual_seed(1)
    assert torch.equal(a, byte_dropout(torch.ones(10_000), 0.3))  # reproducible from the seed
    assert not torch.equal(a, byte_dropout(torch.ones(10_000), 0.3))  # fresh mask per call
    module = ByteDropout(0.3).eval()
    assert module(x) is x
    with pytest.raises(ValueError, match=r"`p` must be in \[0, 1\)"):
        ByteDropout(1.0)


def test_byte_dropout_units_are_independent():
    torch.manual_seed(0)
    kept = byte_dropout(torch.ones(200, 70), 0.5) > 0  # (rows, units)
    corr = np.corrcoef(kept.float().numpy().T)  # units x units over rows
    off = corr[~np.eye(70, dtype=bool)]
    assert np.abs(off).mean() < 0.1  # no structure between units (e.g. from shared bytes)


def test_fitter_gru_equals_one_packed_bidirectional_gru_and_loads_its_weights():
    torch.manual_seed(0)
    reference = nn.GRU(16, 16, batch_first=True, bidirectional=True)
    torch.manual_seed(0)
    fitter = AlignmentFitter(16, 2)
    x = torch.randn(5, 9, 16)
    n = torch.tensor([9, 4, 1, 7, 2])
    mask = torch.arange(9)[None] < n[:, None]
    packed = pack_padded_sequence(x, n, batch_first=True, enforce_sorted=False)
    expected, _ = pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=9)
    got = fitter.encode(x, mask)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # the joined weights are built from both GRUs: gradients reach each, nothing else is saved
    got.square().sum().backward()
    expected.square().sum().backward()
    for name, param in reference.named_parameters():
        mine = getattr(fitter.gru_reverse if name.endswith("_reverse") else fitter.gru,
                       name.removesuffix("_reverse"))  # fmt: skip
        torch.testing.assert_close(mine.grad, param.grad, rtol=1e-4, atol=1e-5)
    assert all(k.startswith(("gru.", "gru_reverse.", "proj.")) for k in fitter.state_dict())
    saved = {f"gru.{k}": v for k, v in reference.state_dict().items()}
    saved.update({k: v for k, v in fitter.state_dict().items() if k.startswith("proj")})
    other = AlignmentFitter(16, 2)
    other.load_state_dict(saved)  # a fitter saved with the bidirectional GRU
    torch.testing.assert_close(other.encode(x, mask), expected, rtol=1e-5, atol=1e-6)


TINY = "synthetic:n_train=96,n_valid=32,n_test=64,min_length=5,max_length=12"


def _test_mae(method, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        result = mmalign.run(
            data=TINY, method=method, seed=seed, p=0.5, epochs=4, warmup_epochs=0,
            batch_size=16, d_model=16, n_heads=2, threads=1, progress=False,
            dropout=0.3, log=lambda s: None, out=None,
        )  # fmt: skip
    import shutil

    shutil.rmtree(result.run_dir)
    return result.test("B")["mae"]


@pytest.mark.parametrize("method", ["lb", "mm-align", "modal-trans"])
def test_runs_match_runs_with_the_torch_modules_within_seed_noise(
    method, monkeypatch, tmp_path, request
):
    monkeypatch.chdir(tmp_path)  # default run folders go under tmp_path/runs
    seeds = range(4)
    ours = np.array([_test_mae(method, s) for s in seeds])
    request.getfixturevalue("torch_modules")  # from here on, backbones use the torch modules
    torch_modules = np.array([_test_mae(method, s) for s in seeds])
    assert not np.array_equal(ours, torch_modules)  # the swap took effect
    noise = np.sqrt(ours.var(ddof=1) / len(ours) + torch_modules.var(ddof=1) / len(ours))
    assert abs(ours.mean() - torch_modules.mean()) <= 3 * noise + 0.02, (ours, torch_modules)
