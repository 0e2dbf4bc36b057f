"""``lambda_imputed``: every imputing method's complete batches also train its imputed path."""

import pytest
import torch

IMPUTING = ["mfm", "smil", "modal-trans", "mm-align"]


@pytest.mark.parametrize("name", IMPUTING)
def test_complete_batches_add_the_imputed_paths_task_loss(name, build_method, batch_factory):
    batch = batch_factory()
    plain = build_method(name, lambda_imputed=0.0).eval()  # eval: no noise, no centre update
    weighted = build_method(name, lambda_imputed=0.5).eval()
    base = plain.compute_losses(batch, "complete")
    losses = weighted.compute_losses(batch, "complete")
    z_source = weighted.backbone.encode_source(batch.source, batch.source_mask)
    imputed = weighted.imputed_loss(z_source, batch)
    assert "imputed" not in base.logged
    torch.testing.assert_close(losses.logged["imputed"], imputed.detach())
    torch.testing.assert_close(losses.step["backbone"], base.step["backbone"] + 0.5 * imputed)
    assert "imputed" not in weighted.compute_losses(batch, "warmup").logged


@pytest.mark.parametrize("name", IMPUTING)
def test_training_steps_with_the_imputed_path_run(name, build_method, run_steps, batch_factory):
    # MM-Align's fitter steps in place: its backbone must step first (no autograd error)
    model = build_method(name, lambda_imputed=1.0)
    history = run_steps(model, [(batch_factory(), "complete")], 2)
    assert all(torch.isfinite(torch.tensor(history)))


@pytest.mark.parametrize("name", ["lb", "ub"])
def test_methods_that_never_impute_ignore_the_option(name, build_method):
    assert build_method(name).lambda_imputed == 0.0


@pytest.mark.parametrize("name", IMPUTING)
def test_the_epoch_line_shows_the_imputed_paths_loss(name, build_method):
    model = build_method(name)
    line = model.epoch_summary({"complete/main": 0.5, "complete/imputed": 0.75})
    assert line.startswith("loss 0.5000  imputed 0.7500")
    assert "imputed" not in model.epoch_summary({"complete/main": 0.5})
