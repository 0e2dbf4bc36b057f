"""``victim_stream_dropout``: in training, the fusion sees some samples' source in the victim's place."""

import re

import pytest
import torch

from mmalign.validation import ConfigError

IMPUTING = ["mfm", "smil", "modal-trans", "mm-align"]


def streams(b=6, source_len=7, victim_len=5, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    z_source = torch.randn(b, 1 + source_len, d, generator=g)
    z_victim = torch.randn(b, 1 + victim_len, d, generator=g)
    source_mask = torch.arange(source_len)[None] < torch.tensor([7, 3, 5, 7, 1, 6])[:b, None]
    victim_mask = torch.arange(victim_len)[None] < torch.tensor([5, 2, 5, 4, 1, 3])[:b, None]
    return z_source, source_mask, z_victim, victim_mask


@pytest.mark.parametrize("name", IMPUTING)
def test_dropped_rows_get_the_source_only_fusion_and_kept_rows_the_plain_one(name, build_method):
    model = build_method(name, victim_stream_dropout=0.5).train()  # dropout 0: no other noise
    z_s, m_s, z_v, m_v = streams()
    torch.manual_seed(1)
    dropped = torch.rand(6) < 0.5  # the draw fuse makes next
    assert 0 < int(dropped.sum()) < 6
    torch.manual_seed(1)
    with torch.no_grad():
        got = model.fuse(z_s, m_s, z_v, m_v)
        fused = model.backbone.predict_fused
        for i in range(6):
            row = slice(i, i + 1)
            partner = (z_s[row], m_s[row]) if dropped[i] else (z_v[row], m_v[row])
            torch.testing.assert_close(got[row], fused(z_s[row], m_s[row], *partner))


@pytest.mark.parametrize("name", IMPUTING)
def test_no_dropout_in_evaluation_or_at_zero_and_no_random_draw(name, build_method):
    z_s, m_s, z_v, m_v = streams()
    for model in (
        build_method(name, victim_stream_dropout=0.5).eval(),
        build_method(name, victim_stream_dropout=0.0).train(),
    ):
        state = torch.get_rng_state()
        with torch.no_grad():
            got = model.fuse(z_s, m_s, z_v, m_v)
            torch.testing.assert_close(got, model.backbone.predict_fused(z_s, m_s, z_v, m_v))
        assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", IMPUTING)
@pytest.mark.parametrize("phase", ["complete", "missing"])
def test_every_training_fusion_goes_through_it(
    name, phase, build_method, batch_factory, monkeypatch
):
    model = build_method(name, victim_stream_dropout=0.3, lambda_imputed=1.0)
    calls = []
    fuse = type(model).fuse

    def counting(self, *args):
        calls.append(args[2].shape)
        return fuse(self, *args)

    monkeypatch.setattr(type(model), "fuse", counting)
    batch = batch_factory(has_victim=phase == "complete")
    losses = model.compute_losses(batch, phase)
    assert torch.isfinite(losses.step["backbone"])
    # complete: the real victim's path and the imputed one; missing: the imputed one
    assert len(calls) == (2 if phase == "complete" else 1)
    calls.clear()
    with torch.no_grad():
        model.eval().predict(batch)
    assert calls == []  # predictions never drop


@pytest.mark.parametrize("name", IMPUTING)
def test_training_steps_with_victim_stream_dropout_run(
    name, build_method, run_steps, batch_factory
):
    model = build_method(name, victim_stream_dropout=0.5)
    batches = [(batch_factory(), "complete"), (batch_factory(has_victim=False), "missing")]
    history = run_steps(model, batches, 2)
    assert all(torch.isfinite(torch.tensor(history)))


@pytest.mark.parametrize("name", ["lb", "ub"])
def test_methods_that_never_impute_do_not_have_it(name, build_method):
    assert build_method(name, victim_stream_dropout=0.5).victim_stream_dropout == 0.0


@pytest.mark.parametrize("value", [1.0, -0.1, True])
def test_values_outside_zero_one_are_refused(value, build_method):
    message = f"`victim_stream_dropout` must be in [0, 1); got {value!r}."
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_method("mm-align", victim_stream_dropout=value)
