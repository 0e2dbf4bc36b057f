import re

import pytest
import torch

from mmalign.models.baselines.mfm import MFM, masked_mean, masked_mse
from mmalign.validation import ConfigError

PHASES = ["warmup", "complete", "missing"]


@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_gives_finite_losses_and_gradients(batch_factory, build_method, phase):
    model = build_method("mfm")
    assert isinstance(model, MFM)
    batch = batch_factory(has_victim=phase != "missing")
    losses = model.compute_losses(batch, phase)
    expected = {"backbone"} if phase == "missing" else {"backbone", "main", "recon"}
    expected |= {"imputed"} if phase == "complete" else set()  # lambda_imputed's default 1
    assert set(losses.step) == {"backbone"}
    assert set(losses.logged) == expected - {"backbone"}
    losses.step["backbone"].backward()
    assert torch.isfinite(losses.step["backbone"])
    assert model.backbone.source_encoder.proj.weight.grad.abs().sum() > 0
    if phase == "missing":  # the generated victim is trained through the main loss
        assert model.victim_decoder.out.weight.grad.abs().sum() > 0
        assert model.backbone.victim_encoder.proj.weight.grad is None
    else:
        assert model.source_decoder.out.weight.grad.abs().sum() > 0
        assert model.victim_specific_from_source[0].weight.grad.abs().sum() > 0


def test_impute_and_predict_shapes_on_a_mixed_batch(batch_factory, build_method):
    model = build_method("mfm").eval()
    batch = batch_factory(b=5, seq_len=7, has_victim=[True, False, True, False, False])
    z = model.backbone.encode_source(batch.source, batch.source_mask)
    z_imp, mask = model.impute_victim(z, batch)
    assert z_imp.shape == (5, 8, 8)
    torch.testing.assert_close(z_imp[:, 0], model.backbone.victim_head_token().expand(5, -1))
    assert torch.equal(mask, batch.source_mask)
    with torch.no_grad():
        assert model.predict(batch).shape == (5, 1)


def test_generated_victim_depends_on_the_source_only(batch_factory, build_method):
    model = build_method("mfm").eval()
    batch = batch_factory()
    z = model.backbone.encode_source(batch.source, batch.source_mask)
    first, _ = model.impute_victim(z, batch)
    batch.victim.normal_()
    second, _ = model.impute_victim(z, batch)
    torch.testing.assert_close(first, second)


def test_reconstruction_ignores_rows_without_the_victim(batch_factory, build_method):
    # the reconstruction of a batch [complete row, missing row] equals that of the complete row
    model = build_method("mfm").eval()
    batch = batch_factory(b=2, seq_len=6, has_victim=[True, False])
    both = model.compute_losses(batch, "complete").logged["recon"]
    one = batch_factory(b=2, seq_len=6, has_victim=[True, False])
    for name in ("source", "source_mask", "victim", "victim_mask", "has_victim", "labels", "index"):
        setattr(one, name, getattr(one, name)[:1])
    torch.testing.assert_close(model.compute_losses(one, "complete").logged["recon"], both)


def test_loss_decreases_with_the_real_optimiser(batch_factory, build_method, run_steps):
    model = build_method("mfm")
    batches = [
        (batch_factory(b=6, seq_len=8, seed=1), "complete"),
        (batch_factory(b=6, seq_len=8, has_victim=False, seed=2), "missing"),
    ]
    history = run_steps(model, batches, 20)
    assert sum(history[-3:]) < 0.5 * sum(history[:3])


def test_a_checkpoint_saved_with_packed_bidirectional_grus_loads(batch_factory, build_method):
    model = build_method("mfm").eval()
    old = {}  # the keys MFM saved before its GRUs became BiGRU modules
    for key, value in model.state_dict().items():
        key = re.sub(r"gru\.gru_reverse\.(\w+)$", r"gru.\1_reverse", key)
        old[re.sub(r"gru\.gru\.(\w+)$", r"gru.\1", key)] = value
    assert "shared_gru.weight_ih_l0_reverse" in old and "victim_decoder.gru.bias_hh_l0" in old
    other = build_method("mfm", seed=5).eval()
    assert not torch.equal(
        other.shared_gru.gru_reverse.weight_hh_l0, old["shared_gru.weight_hh_l0_reverse"]
    )
    other.load_state_dict(old)
    batch = batch_factory(has_victim=False)
    with torch.no_grad():
        torch.testing.assert_close(other.predict(batch), model.predict(batch))


def test_masked_mse_hand_computed_and_ignores_non_finite_unscored_steps():
    pred = torch.tensor([[[1.0, 3.0], [float("nan"), 0.0]]])
    target = torch.zeros(1, 2, 2)
    mask = torch.tensor([[True, False]])
    assert float(masked_mse(pred, target, mask)) == pytest.approx(5.0)  # (1 + 9) / 2
    assert float(masked_mse(pred, target, torch.zeros_like(mask))) == 0.0
    nothing = torch.zeros(2, 3, dtype=torch.bool)
    torch.testing.assert_close(masked_mean(torch.ones(2, 3, 4), nothing), torch.zeros(2, 4))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"factor_dim": 0}, "`factor_dim` must be a number > 0; got 0."),
        ({"recon_weight": -1.0}, "`recon_weight` must be a number >= 0; got -1.0."),
    ],
)
def test_bad_arguments_raise(kw, match):
    from mmalign.models.backbone import Backbone

    with pytest.raises(ConfigError, match=re.escape(match)):
        MFM(Backbone(6, 5, 1, d_model=8, n_heads=2), "regression", **kw)
