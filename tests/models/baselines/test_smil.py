import numpy as np
import pytest
import torch

from mmalign.models.backbone import Backbone
from mmalign.models.baselines.smil import SMIL, ema_kmeans_step
from mmalign.validation import ConfigError

PHASES = ["warmup", "complete", "missing"]


def lloyd_reference(centres, points):
    """One plain k-means (Lloyd) step in numpy, empty clusters kept."""
    c, x = centres.numpy().astype(np.float64), points.numpy().astype(np.float64)
    assign = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
    out = c.copy()
    for k in range(len(c)):
        if (assign == k).any():
            out[k] = x[assign == k].mean(0)
    return out


@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_gives_finite_losses_and_gradients(batch_factory, build_method, phase):
    model = build_method("smil")
    assert isinstance(model, SMIL)
    model.compute_losses(batch_factory(seed=5), "complete")  # seed the centres
    batch = batch_factory(has_victim=phase != "missing")
    losses = model.compute_losses(batch, phase)
    expected = {"backbone", "main", "kl"} | ({"recon"} if phase != "missing" else set())
    expected |= {"imputed"} if phase == "complete" else set()  # lambda_imputed's default 1
    assert set(losses.step) == {"backbone"}
    assert set(losses.logged) == expected - {"backbone"}
    losses.step["backbone"].backward()
    assert torch.isfinite(losses.step["backbone"])
    assert model.weight_net[0].weight.grad.abs().sum() > 0
    assert model.backbone.source_encoder.proj.weight.grad.abs().sum() > 0
    assert (model.backbone.victim_encoder.proj.weight.grad is None) == (phase == "missing")


def test_impute_and_predict_shapes_on_a_mixed_batch(batch_factory, build_method):
    model = build_method("smil")
    model.compute_losses(batch_factory(seed=5), "complete")
    model.eval()
    batch = batch_factory(b=5, seq_len=7, has_victim=[True, False, True, False, False])
    z = model.backbone.encode_source(batch.source, batch.source_mask)
    z_imp, mask = model.impute_victim(z, batch)
    assert z_imp.shape == (5, 8, 8)
    torch.testing.assert_close(z_imp[:, 0], model.backbone.victim_head_token().expand(5, -1))
    assert torch.equal(mask, batch.source_mask)
    with torch.no_grad():
        assert model.predict(batch).shape == (5, 1)


def test_imputation_is_the_mean_mixture_at_eval_and_sampled_in_training(
    batch_factory, build_method
):
    model = build_method("smil")
    model.compute_losses(batch_factory(seed=5), "complete")
    steps = torch.randn(2, 4, 8)
    model.eval()
    mean, _ = model.weight_net(steps).chunk(2, dim=-1)
    expected = torch.softmax(mean, -1) @ model.centres
    torch.testing.assert_close(model.impute_steps(steps)[0], expected)
    torch.testing.assert_close(model.impute_steps(steps)[0], model.impute_steps(steps)[0])
    model.train()
    assert not torch.allclose(model.impute_steps(steps)[0], model.impute_steps(steps)[0])


def test_ema_kmeans_step_decay_zero_is_a_lloyd_step():
    g = torch.Generator().manual_seed(0)
    centres, points = torch.randn(5, 3, generator=g), torch.randn(40, 3, generator=g) * 2
    new, counts = ema_kmeans_step(centres, points, decay=0.0)
    np.testing.assert_allclose(new.numpy(), lloyd_reference(centres, points), rtol=1e-5, atol=1e-6)
    assert int(counts.sum()) == 40
    half, _ = ema_kmeans_step(centres, points, decay=0.5)
    torch.testing.assert_close(half, 0.5 * centres + 0.5 * new)


def test_centres_seed_from_the_first_complete_batch_then_track_the_clusters():
    model = SMIL(Backbone(6, 5, 1, d_model=2, n_heads=1), "regression", n_clusters=2, decay=0.5)
    assert isinstance(model.centres, torch.Tensor) and "centres" in model.state_dict()
    assert all(p is not model.centres for p in model.parameters())
    g = torch.Generator().manual_seed(0)
    blobs = torch.tensor([[-5.0, 0.0], [5.0, 0.0]])
    label = torch.arange(24) % 2
    valid = torch.ones(3, 8, dtype=torch.bool)
    valid[2, 5:] = False  # padded steps never enter the k-means
    first = (blobs[label] + 0.1 * torch.randn(24, 2, generator=g)).reshape(3, 8, 2)  # (B, L, d)
    first[2, 5:] = 1000.0
    model.update_centres(first, valid)
    assert bool(model.centres_ready)
    assert model.centres.abs().max() < 100
    for _ in range(20):
        points = blobs[label] + 0.1 * torch.randn(24, 2, generator=g)  # (B * L, d)
        model.update_centres(points.reshape(3, 8, 2), valid)
    got = model.centres[model.centres[:, 0].argsort()]
    torch.testing.assert_close(got, blobs, atol=0.15, rtol=0)


def test_centres_refresh_only_on_complete_training_batches(batch_factory, build_method):
    model = build_method("smil")
    model.compute_losses(batch_factory(seed=5), "complete")
    before = model.centres.clone()
    model.compute_losses(batch_factory(has_victim=False, seed=6), "missing")
    torch.testing.assert_close(model.centres, before)
    model.eval()
    model.compute_losses(batch_factory(seed=7), "complete")
    torch.testing.assert_close(model.centres, before)
    model.train()
    model.compute_losses(batch_factory(seed=7), "complete")
    assert not torch.allclose(model.centres, before)


def test_missing_rows_never_feed_the_centres(batch_factory, build_method):
    model = build_method("smil")
    batch = batch_factory(b=3, has_victim=[False, False, False])
    batch.victim.fill_(float("nan"))
    model.compute_losses(batch, "complete")
    assert not bool(model.centres_ready)
    assert torch.isfinite(model.centres).all()


def test_loss_decreases_with_the_real_optimiser(batch_factory, build_method, run_steps):
    model = build_method("smil")
    batches = [
        (batch_factory(b=6, seq_len=8, seed=1), "complete"),
        (batch_factory(b=6, seq_len=8, has_victim=False, seed=2), "missing"),
    ]
    history = run_steps(model, batches, 20)
    assert sum(history[-3:]) < 0.5 * sum(history[:3])


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n_clusters": 0}, "`n_clusters` must be an integer >= 1; got 0."),
        ({"decay": 1.0}, "`decay` must be in [0, 1); got 1.0."),
        ({"kl_weight": -1.0}, "`kl_weight` must be a number >= 0; got -1.0."),
    ],
)
def test_bad_arguments_raise(kw, match):
    import re

    with pytest.raises(ConfigError, match=re.escape(match)):
        SMIL(Backbone(6, 5, 1, d_model=8, n_heads=2), "regression", **kw)
