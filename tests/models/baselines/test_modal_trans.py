import itertools
import re

import pytest
import torch
from torch import nn

from mmalign.models.backbone import Backbone, sinusoidal_positions
from mmalign.models.baselines.modal_trans import ModalTrans, SequenceTranslator
from mmalign.validation import ConfigError

PHASES = ["warmup", "complete", "missing"]


def translator(seed=0):
    torch.manual_seed(seed)
    return SequenceTranslator(8, 2, 1, dropout=0.0, ff_mult=2).eval()


@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_gives_finite_losses_and_gradients(batch_factory, build_method, phase):
    model = build_method("modal-trans")
    assert isinstance(model, ModalTrans)
    batch = batch_factory(has_victim=phase != "missing")
    losses = model.compute_losses(batch, phase)
    extra = {"cycle"} if phase == "missing" else {"translation", "cycle"}
    extra |= {"imputed"} if phase == "complete" else set()  # lambda_imputed's default 1
    assert set(losses.step) == {"backbone"}
    assert set(losses.logged) == {"main"} | extra
    losses.step["backbone"].backward()
    assert torch.isfinite(losses.step["backbone"])
    assert model.backbone.source_encoder.proj.weight.grad.abs().sum() > 0
    # the forward decoder learns from teacher forcing, or through the unrolled decoding
    assert model.forward_translator.out.weight.grad.abs().sum() > 0
    assert model.backward_translator.out.weight.grad.abs().sum() > 0
    assert (model.backbone.victim_encoder.proj.weight.grad is None) == (phase == "missing")


def test_impute_and_predict_shapes_on_a_mixed_batch(batch_factory, build_method):
    model = build_method("modal-trans").eval()
    batch = batch_factory(b=5, seq_len=7, has_victim=[True, False, True, False, False])
    z = model.backbone.encode_source(batch.source, batch.source_mask)
    z_imp, mask = model.impute_victim(z, batch)
    assert z_imp.shape == (5, 8, 8)
    torch.testing.assert_close(z_imp[:, 0], model.backbone.victim_head_token().expand(5, -1))
    assert torch.equal(mask, batch.source_mask)
    with torch.no_grad():
        assert model.predict(batch).shape == (5, 1)


def test_decoding_is_autoregressive_one_cached_step_per_position(
    batch_factory, build_method, monkeypatch
):
    model = build_method("modal-trans")
    batch = batch_factory(b=3, seq_len=6, has_victim=False)
    calls = []
    step, decode = SequenceTranslator._decode_step, SequenceTranslator._decode

    def counting_step(self, x, cache, cross, blocked, masks=None):
        calls.append(("step", x.shape))
        return step(self, x, cache, cross, blocked, masks)

    def counting_decode(self, prefix, memory, memory_mask):
        calls.append(("decode", prefix.shape))
        return decode(self, prefix, memory, memory_mask)

    monkeypatch.setattr(SequenceTranslator, "_decode_step", counting_step)
    monkeypatch.setattr(SequenceTranslator, "_decode", counting_decode)
    model.compute_losses(batch, "missing")
    # six one-position steps of the forward translator (cached: never a whole prefix),
    # then one teacher-forced back-translation over the six steps
    assert calls == [("step", (3, 8))] * 6 + [("decode", (3, 6, 8))]


def small_translator(n_layers, n_heads, seed=0, d=8, dropout=0.0):
    torch.manual_seed(seed)
    return SequenceTranslator(d, n_heads, n_layers, dropout=dropout, ff_mult=2).eval()


CASES = [  # n_layers, n_heads, lengths of the B sources (padded to the longest), steps decoded
    (1, 2, [5, 5], 5),
    (1, 2, [7, 3, 1], 7),
    (2, 4, [9, 9, 4, 6], 9),
    (3, 1, [1], 1),
    (2, 2, [6, 2], 4),  # fewer steps than memory
]


def case_inputs(lengths, seed=0, d=8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths), d, generator=g)
    mask = torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]  # (B, L)
    return x, mask


@pytest.mark.parametrize(("n_layers", "n_heads", "lengths", "steps"), CASES)
def test_cached_decoding_equals_the_uncached_reference(n_layers, n_heads, lengths, steps):
    model = small_translator(n_layers, n_heads)
    x, mask = case_inputs(lengths)
    with torch.no_grad():
        memory = model.encode(x, mask)
        cached = model.autoregressive(memory, mask, steps)
        reference = model._autoregressive_uncached(memory, mask, steps)
    assert cached.shape == reference.shape == (len(lengths), steps, 8)
    torch.testing.assert_close(cached, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("n_layers", "n_heads", "lengths", "steps"), CASES)
def test_cached_step_equals_the_decoder_module_on_any_prefix(n_layers, n_heads, lengths, steps):
    # fed the real targets one by one, the cached steps give the whole-prefix decoder
    # (teacher forcing; itself tested against torch's TransformerDecoder below) at every
    # position, on inputs that are not the model's own outputs
    model = small_translator(n_layers, n_heads, seed=1)
    x, mask = case_inputs(lengths, seed=1)
    target = 3.0 * torch.randn(len(lengths), steps, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        memory = model.encode(x, mask)
        expected = model.teacher_forced(memory, mask, target)
        cross, blocked = model._memory_state(memory, mask)
        cache = [None] * n_layers
        inputs = torch.cat([model.start.expand(len(lengths), 1, -1), target[:, :-1]], dim=1)
        pos = sinusoidal_positions(steps, 8, x.device)
        got = torch.stack(
            [
                model._decode_step(inputs[:, t] + pos[t], cache, cross, blocked)
                for t in range(steps)
            ],
            dim=1,
        )
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("n_layers", "n_heads", "lengths", "steps"), CASES[1:3])
def test_gradients_through_cached_decoding_equal_the_uncached_ones(
    n_layers, n_heads, lengths, steps
):
    model = small_translator(n_layers, n_heads, seed=3)
    x, mask = case_inputs(lengths, seed=3)
    weights = torch.randn(len(lengths), steps, 8, generator=torch.Generator().manual_seed(4))
    params = dict(model.named_parameters())
    grads = {}
    for name, decode in (
        ("cached", model.autoregressive),
        ("uncached", model._autoregressive_uncached),
    ):
        source = x.clone().requires_grad_(True)
        decoded = decode(model.encode(source, mask), mask, steps)
        grads[name] = torch.autograd.grad((decoded * weights).sum(), [source, *params.values()])
    decoder = [n for n in params if n.startswith(("decoder.", "start", "out."))]
    for name, cached, reference in zip(["input", *params], grads["cached"], grads["uncached"]):
        torch.testing.assert_close(cached, reference, atol=1e-5, rtol=1e-4, msg=name)
        if name in decoder:
            assert cached.abs().sum() > 0, name  # the translator learns through the decoding


def test_cached_decoding_applies_dropout_in_training_only():
    model = small_translator(1, 2, dropout=0.5)
    x, mask = case_inputs([6, 4])
    with torch.no_grad():
        memory = model.encode(x, mask)
        first = model.autoregressive(memory, mask, 6)
        torch.testing.assert_close(model.autoregressive(memory, mask, 6), first)
        model.train()
        assert not torch.allclose(model.autoregressive(memory, mask, 6), first)


def test_step_masks_are_dropout_masks_of_every_step_and_layer():
    model = small_translator(2, 2, dropout=0.25).train()
    memory = torch.zeros(3, 7, 8)
    scale = torch.tensor(256 / (256 - 64)).item()  # p = 0.25 exactly in bytes; float32
    masks = list(itertools.islice(model._step_masks(memory, 20), 20))
    assert len(masks) == 20 and all(len(step) == 2 for step in masks)
    for t, step in enumerate(masks):
        for own, other, *branches in step:
            assert own.shape == (3, 2, t + 1) and other.shape == (3, 2, 7)
            assert [b.shape for b in branches] == [(3, 8), (3, 8), (3, 16), (3, 8)]
    values = torch.cat([m.flatten() for step in masks for layer in step for m in layer])
    assert set(values.unique().tolist()) == {0.0, scale}
    assert abs(float((values == 0).float().mean()) - 0.25) < 0.02
    # no two steps, layers or branches share a draw (masks straddle the 16-step chunks)
    flat = [m.flatten() for step in masks for layer in step for m in layer[2:]]
    assert len({tuple(m.tolist()) for m in flat}) > 0.9 * len(flat)
    assert not torch.equal(masks[15][0][2], masks[16][0][2])
    model.eval()
    assert next(model._step_masks(memory, 20)) is None
    assert next(small_translator(1, 2, dropout=0.001).train()._step_masks(memory, 3)) is None


def test_cached_decoding_with_dropout_has_the_uncached_decodings_distribution():
    # one layer: the cached keys/values see no dropout, so the two decodings draw the same
    # distribution (module docstring); compared by the mean and spread of 400 draws each
    model = small_translator(1, 2, dropout=0.3, seed=4).train()
    x, mask = case_inputs([5, 3], seed=4)
    with torch.no_grad():
        memory = model.eval().encode(x, mask)  # a fixed memory: only the decoding draws
        model.train()
        cached = torch.stack([model.autoregressive(memory, mask, 5) for _ in range(400)])
        uncached = torch.stack(
            [model._autoregressive_uncached(memory, mask, 5) for _ in range(400)]
        )
    error = (cached.var(0) / 400 + uncached.var(0) / 400).sqrt()
    assert ((cached.mean(0) - uncached.mean(0)).abs() <= 5 * error + 1e-4).all()
    # pooled over the outputs: 1.00 +- 0.02 over seeds; 0.90 with the feed-forward's
    # dropout left out of the cached step
    ratio = float(cached.var(0).mean() / uncached.var(0).mean())
    assert abs(ratio - 1) < 0.05, ratio


def test_autoregressive_output_is_a_fixed_point_of_teacher_forcing():
    # feeding the decoded sequence back as the teacher-forcing target reproduces it exactly
    model = translator()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 8, generator=g)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    with torch.no_grad():
        memory = model.encode(x, mask)
        decoded = model.autoregressive(memory, mask, 5)
        torch.testing.assert_close(model.teacher_forced(memory, mask, decoded), decoded)


def test_teacher_forcing_is_causal():
    model = translator()
    g = torch.Generator().manual_seed(2)
    x, target = torch.randn(1, 6, 8, generator=g), torch.randn(1, 6, 8, generator=g)
    mask = torch.ones(1, 6, dtype=torch.bool)
    with torch.no_grad():
        memory = model.encode(x, mask)
        first = model.teacher_forced(memory, mask, target)
        changed = target.clone()
        changed[:, 3:] = 7.0
        second = model.teacher_forced(memory, mask, changed)
    torch.testing.assert_close(first[:, :4], second[:, :4])  # step t sees targets < t only
    assert not torch.allclose(first[:, 4:], second[:, 4:])


def test_padded_source_steps_do_not_change_the_translation():
    model = translator()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 8, generator=g)
    padded = torch.cat([x, torch.randn(1, 3, 8, generator=g)], dim=1)  # (1, 7, 8)
    with torch.no_grad():
        short_mask = torch.ones(1, 4, dtype=torch.bool)
        long_mask = torch.arange(7)[None] < 4
        short = model.autoregressive(model.encode(x, short_mask), short_mask, 4)
        long = model.autoregressive(model.encode(padded, long_mask), long_mask, 7)
    torch.testing.assert_close(long[:, :4], short)


def torch_translator(d, n_heads, n_layers, ff_mult=2):
    """torch's own pre-LN transformer modules, the independent reference for the layers."""
    kw = {"dropout": 0.0, "batch_first": True, "norm_first": True}
    enc = nn.TransformerEncoderLayer(d, n_heads, ff_mult * d, **kw)
    dec = nn.TransformerDecoderLayer(d, n_heads, ff_mult * d, **kw)
    return (
        nn.TransformerEncoder(enc, n_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False),
        nn.TransformerDecoder(dec, n_layers, norm=nn.LayerNorm(d)),
    )


@pytest.mark.parametrize(("n_layers", "n_heads", "lengths", "steps"), CASES)
def test_layers_equal_torchs_transformer_modules_with_the_same_weights(
    n_layers, n_heads, lengths, steps
):
    model = small_translator(n_layers, n_heads, seed=5)
    encoder, decoder = torch_translator(8, n_heads, n_layers)
    # same parameter names: a state dict of either loads into the other (old checkpoints)
    encoder.load_state_dict(model.encoder.state_dict())
    decoder.load_state_dict(model.decoder.state_dict())
    encoder.eval(), decoder.eval()
    x, mask = case_inputs(lengths, seed=5)
    target = torch.randn(len(lengths), steps, 8, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        pos = sinusoidal_positions(x.shape[1], 8, x.device)
        memory = encoder(x + pos, src_key_padding_mask=~mask)
        torch.testing.assert_close(model.encode(x, mask), memory, atol=1e-5, rtol=1e-5)
        prefix = torch.cat([model.start.expand(len(lengths), 1, -1), target[:, :-1]], dim=1)
        causal = torch.ones(steps, steps, dtype=torch.bool).triu(1)
        hidden = decoder(
            prefix + sinusoidal_positions(steps, 8, x.device),
            memory,
            tgt_mask=causal,
            memory_key_padding_mask=~mask,
        )
        expected = model.out(hidden)
        got = model.teacher_forced(memory, mask, target)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_a_seed_gives_torchs_initial_weights():
    torch.manual_seed(7)
    ours = SequenceTranslator(8, 2, 2, dropout=0.1, ff_mult=2)
    torch.manual_seed(7)
    encoder, decoder = torch_translator(8, 2, 2)
    for mine, theirs in ((ours.encoder, encoder), (ours.decoder, decoder)):
        reference = theirs.state_dict()
        assert mine.state_dict().keys() == reference.keys()
        for name, value in mine.state_dict().items():
            torch.testing.assert_close(value, reference[name], rtol=0, atol=0, msg=name)


def test_loss_decreases_with_the_real_optimiser(batch_factory, build_method, run_steps):
    model = build_method("modal-trans")
    batches = [
        (batch_factory(b=6, seq_len=8, seed=1), "complete"),
        (batch_factory(b=6, seq_len=8, has_victim=False, seed=2), "missing"),
    ]
    history = run_steps(model, batches, 20)
    assert sum(history[-3:]) < 0.5 * sum(history[:3])


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n_heads": 3}, "`n_heads` must divide d_model=8; got 3."),
        ({"n_layers": 0}, "`n_layers` must be a number > 0; got 0."),
        ({"cycle_weight": -1.0}, "`cycle_weight` must be a number >= 0; got -1.0."),
    ],
)
def test_bad_arguments_raise(kw, match):
    with pytest.raises(ConfigError, match=re.escape(match)):
        ModalTrans(Backbone(6, 5, 1, d_model=8, n_heads=2), "regression", **kw)
