import re

import pytest
import torch

from mmalign.models.backbone import Backbone
from mmalign.models.baselines.modal_trans import ModalTrans, SequenceTranslator, causal_mask
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


def test_decoding_is_autoregressive_one_decoder_pass_per_step(
    batch_factory, build_method, monkeypatch
):
    model = build_method("modal-trans")
    batch = batch_factory(b=3, seq_len=6, has_victim=False)
    lengths = []
    original = SequenceTranslator._decode

    def counting(self, prefix, memory, memory_mask):
        lengths.append(prefix.shape[1])
        return original(self, prefix, memory, memory_mask)

    monkeypatch.setattr(SequenceTranslator, "_decode", counting)
    model.compute_losses(batch, "missing")
    # six growing prefixes for the forward translator, then one teacher-forced back-translation
    assert lengths == [1, 2, 3, 4, 5, 6, 6]


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


def test_causal_mask_blocks_the_future():
    expected = torch.tensor([[False, True], [False, False]])
    assert torch.equal(causal_mask(2, torch.device("cpu")), expected)


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
