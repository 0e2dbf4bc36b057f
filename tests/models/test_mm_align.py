import pytest
import torch

from mmalign.config import ADLConfig
from mmalign.models.backbone import Backbone
from mmalign.models.mm_align import MMAlign, batch_centres
from mmalign.ot.column_band import diagonal_centres


def make_model(window=2, **kw):
    torch.manual_seed(0)
    return MMAlign(Backbone(6, 5, 1, d_model=8, n_heads=2), "regression", window=window, **kw)


def grads(params):
    return [p.grad for p in params]


def test_parameter_groups_are_disjoint_and_cover_everything():
    model = make_model()
    groups = model.parameter_groups()
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in groups["fitter"]} == {id(p) for p in model.fitter.parameters()}


def test_complete_phase_fit_loss_reaches_only_the_fitter(batch_factory):
    model = make_model()
    losses = model.compute_losses(batch_factory(), "complete")
    assert set(losses.step) == {"fitter", "backbone"}
    losses.step["fitter"].backward(retain_graph=True)
    assert all(p.grad is None for p in model.backbone.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.fitter.parameters())
    model.zero_grad(set_to_none=True)
    losses.step["backbone"].backward()
    assert all(p.grad is None for p in model.fitter.parameters())
    assert model.backbone.victim_encoder.proj.weight.grad.abs().sum() > 0


def test_missing_phase_gradients_reach_source_encoder_not_victim_encoder(batch_factory):
    model = make_model()
    batch = batch_factory(has_victim=False)
    batch.victim.fill_(float("nan"))  # never read on the missing split
    losses = model.compute_losses(batch, "missing")
    assert set(losses.step) == {"backbone"}
    assert not losses.logged
    losses.step["backbone"].backward()
    assert torch.isfinite(losses.step["backbone"])
    assert model.backbone.source_encoder.proj.weight.grad.abs().sum() > 0
    assert model.backbone.victim_encoder.proj.weight.grad is None
    # the victim head token is the imputation's z0 (Eq. 15), so it does learn
    assert model.backbone.victim_encoder.head_token.grad.abs().sum() > 0


def test_solver_output_carries_no_gradient(batch_factory):
    model = make_model()
    batch = batch_factory()
    z = model.backbone.encode_source(batch.source, batch.source_mask)[:, 1:]
    zv = model.backbone.encode_victim(batch.victim, batch.victim_mask)[:, 1:]
    centres = batch_centres(batch)
    result = model.solve_alignment(model.alignment_cost(z, zv, batch, centres), batch, centres)
    assert not result.plan.requires_grad
    assert torch.isfinite(result.plan).all()


def test_warmup_has_no_fit_loss_and_untrained_fitter_option(batch_factory):
    assert "fitter" not in make_model().compute_losses(batch_factory(), "warmup").step
    assert (
        "fitter"
        not in make_model(train_fitter=False).compute_losses(batch_factory(), "complete").step
    )


def test_predict_mixed_batch_uses_real_victim_only_where_present(batch_factory):
    model = make_model().eval()
    batch = batch_factory(has_victim=[True, False, True, False])
    out = model.predict(batch)
    assert out.shape == (4, 1)
    # changing the victim of an absent sample changes nothing; of a present sample it does
    batch.victim[1] = 7.0
    torch.testing.assert_close(model.predict(batch)[1], out[1])
    batch.victim[0, 0] += 3.0
    assert not torch.allclose(model.predict(batch)[0], out[0])


@pytest.mark.parametrize("convention", ["column", "row"])
def test_fitter_learns_ot_targets(batch_factory, convention):
    model = make_model(convention=convention)
    batch = batch_factory(b=8)
    opt = torch.optim.Adam(model.fitter.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = model.compute_losses(batch, "complete").step["fitter"]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def unaligned_batch(has_victim=(True, True), seed=0):
    """Source of 6 steps (lengths 6, 4), victim on its own axis of 20 steps (lengths 20, 11)."""
    from mmalign.data.batching import Batch

    g = torch.Generator().manual_seed(seed)
    n, m = torch.tensor([6, 4]), torch.tensor([20, 11])
    has = torch.tensor(has_victim)
    sm = torch.arange(6)[None] < n[:, None]
    vm = (torch.arange(20)[None] < m[:, None]) & has[:, None]
    return Batch(
        source=torch.randn(2, 6, 6, generator=g) * sm[..., None],
        source_mask=sm,
        victim=torch.randn(2, 20, 5, generator=g) * vm[..., None],
        victim_mask=vm,
        has_victim=has,
        labels=torch.randn(2, generator=g),
        index=torch.arange(2),
    )


def test_unequal_lengths_complete_step_trains_heads_translator_and_fitter():
    model = make_model()
    batch = unaligned_batch()
    losses = model.compute_losses(batch, "complete")
    assert set(losses.step) == {"fitter", "backbone"}
    assert {"step", "translate"} <= set(losses.logged)
    assert all(torch.isfinite(v) for v in losses.step.values())
    losses.step["backbone"].backward(retain_graph=True)
    heads = [*model.step_space.parameters()]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in heads)
    assert all(p.grad is None for p in model.fitter.parameters())  # theta's loss skips psi
    predicted, target, centres = model.alignments(batch)
    assert predicted.shape == target.shape == (2, 20, 5) and centres.shape == (2, 20)
    torch.testing.assert_close(target.sum(-1)[batch.victim_mask], torch.ones(31))


def test_imputed_victim_length_follows_the_victim_rate():
    model = make_model()
    model.set_victim_rate(2.6)
    batch = unaligned_batch(has_victim=(False, False))
    z_source = model.backbone.encode_source(batch.source, batch.source_mask)
    z, mask = model.impute_victim(z_source, batch)
    assert mask.sum(1).tolist() == [16, 10]  # round(6 * 2.6), round(4 * 2.6)
    assert z.shape == (2, 17, 8)
    with pytest.raises(Exception, match="rate"):
        model.set_victim_rate(0.0)


def test_mixed_batch_with_unequal_lengths_reads_the_real_victim_only_where_present():
    model = make_model().eval()
    model.set_victim_rate(3.0)
    batch = unaligned_batch(has_victim=(True, False))
    out = model.predict(batch)
    assert out.shape == (2, 1) and torch.isfinite(out).all()
    batch.victim[1] = float("nan")  # an absent victim is never read
    torch.testing.assert_close(model.predict(batch)[1], out[1])


def test_paper_space_has_no_step_space_and_no_step_loss(batch_factory):
    model = make_model(alignment_space="encoder", reg_relative=False, source_relaxation=0.0)
    assert model.step_space is None
    losses = model.compute_losses(batch_factory(), "complete")
    assert "step" not in losses.logged and "fitter" in losses.step


def test_emission_space_with_monotone_solver_trains_emission_and_translator():
    model = make_model(alignment_space="emission", alignment_solver="monotone")
    assert model.emission is not None and not hasattr(model.step_space, "source_head")
    batch = unaligned_batch()
    losses = model.compute_losses(batch, "complete")
    assert {"step", "translate"} <= set(losses.logged)
    assert all(torch.isfinite(v) for v in losses.step.values())
    losses.step["backbone"].backward(retain_graph=True)
    assert model.emission.mean.weight.grad.abs().sum() > 0
    assert model.step_space.translator.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.fitter.parameters())
    model.zero_grad(set_to_none=True)
    losses.step["fitter"].backward()
    assert all(p.grad is None for p in model.emission.parameters())
    predicted, target, _ = model.alignments(batch)
    torch.testing.assert_close(target.sum(-1)[batch.victim_mask], torch.ones(31))


def test_monotone_solver_plan_is_the_band_posterior_of_the_cost(batch_factory):
    from mmalign.ot.monotone import monotone_band_posterior

    model = make_model(alignment_solver="monotone", reg_relative=False)
    batch = unaligned_batch()
    centres = batch_centres(batch)
    cost = torch.rand(2, 20, 5)
    plan = model.solve_alignment(cost, batch, centres).plan
    expected = monotone_band_posterior(
        -cost / model.adl.reg, batch.source_mask, batch.victim_mask, centres, model.adl.window
    ).plan
    torch.testing.assert_close(plan, expected)
    assert bool(model.solve_alignment(cost, batch, centres).converged.all())
    # sub-states: words of 6-7 frames (3 sub-states), so the plan differs from one sub-state's
    from types import SimpleNamespace

    masks = SimpleNamespace(
        source_mask=torch.arange(6) < torch.tensor([[3], [3]]),
        victim_mask=torch.ones(2, 20, dtype=torch.bool),
    )
    centres = diagonal_centres(masks.source_mask.sum(1), masks.victim_mask.sum(1), 20)
    model = make_model(alignment_solver="monotone", alignment_states=4, reg_relative=False)
    plan = model.solve_alignment(cost, masks, centres).plan
    expected = monotone_band_posterior(
        -cost / model.adl.reg,
        masks.source_mask,
        masks.victim_mask,
        centres,
        model.adl.window,
        states=4,
    ).plan
    torch.testing.assert_close(plan, expected)
    plain = make_model(alignment_solver="monotone", reg_relative=False)
    assert not torch.allclose(plain.solve_alignment(cost, masks, centres).plan, plan, atol=1e-3)


def test_emission_cost_ignores_the_encoders_and_reads_standardised_inputs():
    model = make_model(alignment_space="emission", alignment_solver="monotone")
    batch = unaligned_batch()
    centres = batch_centres(batch)
    with torch.no_grad():
        model.emission.mean.weight.normal_()
    before = model.alignment_cost(None, None, batch, centres)
    encoder = model.backbone.victim_encoder
    encoder.set_input_statistics(torch.full((5,), 3.0), torch.full((5,), 2.0))
    batch.victim.mul_(2.0).add_(3.0)  # the same data in other units
    torch.testing.assert_close(model.alignment_cost(None, None, batch, centres), before)


@pytest.mark.parametrize("options", [{"alignment_space": "walk"}, {"alignment_solver": "viterbi"}])
def test_unknown_alignment_choices_are_refused(options):
    with pytest.raises(Exception, match="alignment_s"):
        make_model(**options)


def test_monotone_solve_reads_an_unknown_cost_as_the_mean_of_the_known_ones():
    from mmalign.models.mm_align import solve_band

    source_mask = torch.ones(1, 4, dtype=torch.bool)
    victim_mask = torch.ones(1, 6, dtype=torch.bool)
    centres = torch.tensor([[0, 1, 1, 2, 2, 3]])
    cost = torch.rand(1, 6, 3, generator=torch.Generator().manual_seed(0))
    adl = ADLConfig(
        window=1, reg=0.5, max_iter=10, tol=1e-3, reg_relative=False,
        source_relaxation=0.0, alignment_solver="monotone",
    )  # fmt: skip
    holed = cost.clone()
    holed[0, 2, 0] = float("inf")  # victim step 2 cannot read source step 0
    filled = cost.clone()
    filled[0, 2, 0] = (cost[0, 2, 1] + cost[0, 2, 2]) / 2
    got = solve_band(holed, source_mask, victim_mask, centres, adl).plan
    torch.testing.assert_close(got, solve_band(filled, source_mask, victim_mask, centres, adl).plan)


@pytest.mark.parametrize("solver", ["sinkhorn", "monotone"])
def test_a_cost_in_nats_is_solved_at_reg_one_whatever_reg_says(solver):
    from mmalign.models.mm_align import solve_band

    mask_s, mask_v = torch.ones(2, 4, dtype=torch.bool), torch.ones(2, 6, dtype=torch.bool)
    centres = torch.tensor([[0, 1, 1, 2, 2, 3]] * 2)
    cost = 3 * torch.rand(2, 6, 3, generator=torch.Generator().manual_seed(1))
    common = dict(window=1, max_iter=200, tol=1e-6, source_relaxation=0.0, alignment_solver=solver)
    relative = ADLConfig(reg=0.1, reg_relative=True, **common)
    nats = solve_band(cost, mask_s, mask_v, centres, relative, nats=True)
    plain = solve_band(
        cost, mask_s, mask_v, centres, ADLConfig(reg=1.0, reg_relative=False, **common)
    )
    other = solve_band(cost, mask_s, mask_v, centres, relative)
    torch.testing.assert_close(nats.plan, plain.plan)
    assert not torch.allclose(nats.plan, other.plan, atol=1e-3)


@pytest.mark.parametrize(
    ("space", "solver"),
    [("emission", "sinkhorn"), ("projected", "monotone"), ("encoder", "monotone")],
)
def test_every_space_works_with_every_solver_on_unequal_lengths(space, solver):
    model = make_model(alignment_space=space, alignment_solver=solver)
    batch = unaligned_batch()
    losses = model.compute_losses(batch, "complete")
    assert all(torch.isfinite(v) for v in losses.step.values())
    _, target, _ = model.alignments(batch)
    torch.testing.assert_close(target.sum(-1)[batch.victim_mask], torch.ones(31))


def test_stepwise_em_emission_moves_in_training_only_and_takes_no_gradient():
    model = make_model(
        alignment_space="emission", alignment_solver="monotone", emission_update="em"
    )
    batch = unaligned_batch()
    model.eval()
    model.compute_losses(batch, "complete")  # evaluation leaves the emission as it is
    assert float(model.emission.mean.weight.abs().sum()) == 0.0
    model.train()
    losses = model.compute_losses(batch, "complete")
    assert float(model.emission.mean.weight.abs().sum()) > 0  # one closed-form step taken
    assert int(model.emission.stat_updates) == 1
    losses.step["backbone"].backward()
    assert all(p.grad is None for p in model.emission.parameters())
    assert model.backbone.victim_encoder.proj.weight.grad.abs().sum() > 0
    ids = {id(p) for ps in model.parameter_groups().values() for p in ps}
    assert not ids & {id(p) for p in model.emission.parameters()}


def test_alignment_options_come_from_the_option_table_and_are_checked_like_it():
    from mmalign.models.mm_align import alignment_config
    from mmalign.validation import ConfigError

    base = ADLConfig(window=3, reg=0.2)
    assert alignment_config(base, {"reg": 0.5}) == ADLConfig(window=3, reg=0.5)
    assert alignment_config(None, {}) == ADLConfig()
    model = make_model(window=2, alignment_solver="monotone", alignment_states=3)
    assert (model.adl.window, model.adl.alignment_states) == (2, 3)
    assert model.fitter.window == 2
    with pytest.raises(ConfigError, match=r"unknown alignment option\(s\) \['windw'\]"):
        alignment_config(None, {"windw": 4})
    with pytest.raises(ConfigError, match="alignment_space"):
        make_model(alignment_space="nowhere")
    with pytest.raises(ConfigError, match="reg"):
        alignment_config(base, {"reg": -1.0})


def test_imputed_loss_on_complete_batches_is_the_missing_pass_loss(batch_factory):
    batch = batch_factory()
    plain, imputing = make_model(lambda_imputed=0.0), make_model(lambda_imputed=0.5)
    plain.eval(), imputing.eval()  # no dropout: the passes are comparable
    base = plain.compute_losses(batch, "complete")
    losses = imputing.compute_losses(batch, "complete")
    missing = imputing.compute_losses(batch, "missing").step["backbone"]
    assert "imputed" not in base.logged
    torch.testing.assert_close(losses.logged["imputed"], missing.detach())
    torch.testing.assert_close(losses.step["backbone"], base.step["backbone"] + 0.5 * missing)
    torch.testing.assert_close(losses.step["fitter"], base.step["fitter"])
    # warm-up keeps Algorithm 1: the fitter has not learned anything to impute with yet
    assert "imputed" not in imputing.compute_losses(batch, "warmup").logged


def test_imputed_loss_leaves_the_fitter_step_alone_and_trains_the_backbone(batch_factory):
    from mmalign.train.loop import train_step

    def one_step(lambda_imputed):
        torch.manual_seed(0)
        backbone = Backbone(6, 5, 1, d_model=8, n_heads=2, dropout=0.0)
        model = MMAlign(backbone, "regression", window=2, lambda_imputed=lambda_imputed)
        optimizers = {g: torch.optim.SGD(ps, lr=0.1) for g, ps in model.parameter_groups().items()}
        train_step(model, model.compute_losses(batch_factory(), "complete"), optimizers, None, 0)
        return model

    plain, imputing = one_step(0.0), one_step(1.0)
    # the fitter steps in place after the backbone loss read its weights: no autograd error,
    # because train_step takes every gradient before any optimiser steps
    assert imputing.group_order == ("fitter", "backbone")
    for a, b in zip(plain.fitter.parameters(), imputing.fitter.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    moved = plain.backbone.source_encoder.proj.weight - imputing.backbone.source_encoder.proj.weight
    assert moved.abs().max() > 1e-6


def test_negative_lambda_imputed_is_refused():
    from mmalign.validation import ConfigError

    with pytest.raises(ConfigError, match="lambda_imputed"):
        make_model(lambda_imputed=-1.0)


def test_missing_pass_gives_the_backbone_the_same_gradients_without_any_for_the_fitter(
    batch_factory,
):
    model = make_model()
    model.eval()  # no dropout: the two passes are comparable
    batch = batch_factory(has_victim=False)
    model.compute_losses(batch, "missing").step["backbone"].backward()
    assert all(p.grad is None for p in model.fitter.parameters())
    got = {n: p.grad.clone() for n, p in model.backbone.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    # the reference: the same pass with the fitter called as a plain module
    z = model.backbone.encode_source(batch.source, batch.source_mask)
    weights = model.fitter(z[:, 1:], batch.source_mask)
    imputed = model._impute_steps(z[:, 1:], weights, None)
    head = model.backbone.victim_head_token().expand(z.shape[0], 1, -1)
    out = model.backbone.predict_fused(
        z, batch.source_mask, torch.cat([head, imputed], 1), batch.source_mask
    )
    model.loss(out, batch).backward()
    assert all(p.grad is not None for p in model.fitter.parameters())
    want = {n: p.grad for n, p in model.backbone.named_parameters() if p.grad is not None}
    assert set(got) == set(want)
    assert model.backbone.source_encoder.proj.weight.grad.abs().sum() > 0
    for name in want:
        torch.testing.assert_close(got[name], want[name], msg=name)
