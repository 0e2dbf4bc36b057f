"""Models of the random-missing protocol: masks honoured, nothing unreadable read, imputation rules."""

import numpy as np
import pytest
import torch

from mmalign.config import RunConfig, apply_overrides
from mmalign.data.dataset import Split
from mmalign.data.missingness import draw_missingness
from mmalign.data.pattern_batching import PatternData
from mmalign.data.synthetic import SyntheticConfig, make_synthetic
from mmalign.models.losses import info_nce
from mmalign.models.mm_align_patterns import _masked_info_nce
from mmalign.models.pattern_method import PatternDims
from mmalign.models.registry import get_method
from mmalign.ot.column_band import column_band_valid_mask
from mmalign.train.loop import build_optimizers, train_step

SMALL = {"d_model": 16, "n_heads": 2, "window": 2, "n_layers": 1, "n_fusion_layers": 1}
METHODS = ("lb", "mm-align")  # the methods that see the draw (UB sees complete data)
# MM-Align with the monotone alignment on the emission cost (docs/method.md, step 5)
MONOTONE = {"alignment_space": "emission", "alignment_solver": "monotone"}
VARIANTS = {"mm-align-monotone": ("mm-align", MONOTONE)}


@pytest.fixture(scope="module")
def dataset():
    return make_synthetic(SyntheticConfig(n_train=48, n_valid=8, n_test=8, max_length=12))


def _draw(dataset, rate=0.4, drop=0.3, seed=0):
    return draw_missingness(dataset, rate, drop, 2.0, seed)


def _model(method, dataset, seed=0, **options):
    method, variant = VARIANTS.get(method, (method, {}))
    options = {**variant, **options}
    dims = PatternDims(dict(dataset.feature_dims), dataset.output_dim, dataset.task)
    torch.manual_seed(seed)
    return get_method(method).build_patterns(
        dims, apply_overrides(RunConfig(), {**SMALL, **options})
    )


def _poison(split: Split, seen, value) -> Split:
    """Overwrite every unreadable step (absent modality, dropped step, padding) with ``value``."""
    features = {}
    for m in split.modalities:
        keep = seen.valid_steps(split, m)[:, :, None]
        fill = value(split.features[m].shape) if callable(value) else value
        features[m] = np.where(keep, split.features[m], fill).astype(np.float32)
    return Split(features, split.lengths, split.labels, split.ids)


@pytest.mark.parametrize("method", [*METHODS, *VARIANTS])
def test_nan_in_absent_modalities_and_dropped_steps_is_never_read(dataset, method):
    split = dataset.splits["train"]
    seen = _draw(dataset).splits["train"]
    assert (~seen.present).any() and any(d.any() for d in seen.dropped.values())
    data = PatternData.from_split(_poison(split, seen, np.nan), seen)
    model = _model(method, dataset)
    optimizers = build_optimizers(model, {"*": 1e-3}, log=lambda s: None)
    batch = data.batch(torch.arange(len(data)))
    losses = model.compute_losses(batch, "mixed")
    assert all(torch.isfinite(v) for v in losses.step.values())
    train_step(model, losses, optimizers, None, 0.8)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model.predict(batch)).all()


@pytest.mark.parametrize("method", [*METHODS, *VARIANTS])
def test_unreadable_values_do_not_change_losses_or_predictions(dataset, method):
    split = dataset.splits["train"]
    seen = _draw(dataset, seed=3).splits["train"]
    rng = np.random.default_rng(0)
    noisy = _poison(split, seen, lambda shape: rng.normal(0, 100, shape))
    out = []
    for s in (split, noisy):
        batch = PatternData.from_split(s, seen).batch(torch.arange(len(split)))
        model = _model(method, dataset).eval()
        with torch.no_grad():
            out.append((model.predict(batch), model.compute_losses(batch, "mixed").step))
    torch.testing.assert_close(out[0][0], out[1][0], rtol=0, atol=0)
    for group in out[0][1]:
        torch.testing.assert_close(out[0][1][group], out[1][1][group], rtol=0, atol=0)


@pytest.mark.parametrize("method", [*METHODS, *VARIANTS])
def test_a_sample_predicts_the_same_alone_and_in_a_batch_of_other_patterns(dataset, method):
    seen = _draw(dataset, seed=1).splits["train"]
    data = PatternData.from_split(dataset.splits["train"], seen)
    model = _model(method, dataset).eval()
    with torch.no_grad():
        together = model.predict(data.batch(torch.arange(16)))
        alone = torch.cat([model.predict(data.batch(torch.tensor([i]))) for i in range(16)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_absent_modality_is_imputed_whole_and_dropped_steps_filled_from_others(dataset):
    split = dataset.splits["train"]
    seen = _draw(dataset, rate=0.4, drop=0.3, seed=2).splits["train"]
    data = PatternData.from_split(split, seen)
    batch = data.batch(torch.arange(len(data)))
    model = _model("mm-align", dataset).eval()
    with torch.no_grad():
        z = model.backbone.encode(batch.features, batch.masks)
        filled = model.complete(batch, z)
    for k, m in enumerate(batch.modalities):
        out, present = filled[m], batch.present[:, k]
        others = torch.cat([batch.present[:, :k], batch.present[:, k + 1 :]], 1).any(1)
        width = batch.masks[m].shape[1]
        readable = batch.masks[m]
        # real steps kept where readable, real head where present, learned head elsewhere
        real = z[m][:, 1:][readable]
        assert torch.equal(out.z[:, 1:][:, :width][readable], real)
        assert torch.equal(out.z[present, 0], z[m][present, 0])
        assert torch.equal(
            out.z[~present, 0], model.backbone.head_token(m).expand(int((~present).sum()), -1)
        )
        # present with another modality: every in-length step readable after imputation
        both = present & others
        assert torch.equal(out.mask[both][:, :width], batch.steps[m][both])
        # present alone: dropped steps stay masked
        alone = present & ~others
        assert torch.equal(out.mask[alone][:, :width], readable[alone])
        # absent: imputed on the first present source's length (rate 1 here)
        first = torch.stack([batch.steps[s].sum(1) for s in batch.modalities if s != m], 1)
        expected = torch.where(first[:, 0] > 0, first[:, 0], first[:, 1])
        assert torch.equal(out.mask[~present].sum(1), expected[~present])


def test_imputation_is_the_mean_over_present_sources(dataset):
    split = dataset.splits["train"]
    seen = _draw(dataset, rate=0.3, drop=0.0, seed=4).splits["train"]
    batch = PatternData.from_split(split, seen).batch(torch.arange(len(split)))
    model = _model("mm-align", dataset).eval()
    text, vision, audio = batch.modalities
    rows = (~batch.present[:, 1]) & batch.present[:, 0] & batch.present[:, 2]
    assert rows.any()
    with torch.no_grad():
        z = model.backbone.encode(batch.features, batch.masks)
        out = model.complete(batch, z)[vision]
        parts = []
        for s in (text, audio):
            steps = z[s][:, 1:]
            w = out.weights[s]
            values = model.step_space.translate(s, vision, steps)
            from mmalign.models.adl import banded_impute

            parts.append(banded_impute(w, values, model.adl.window, out.centres[s]))
    expected = (parts[0] + parts[1]) / 2
    torch.testing.assert_close(out.z[rows, 1:], expected[rows], rtol=1e-5, atol=1e-6)


def test_fit_loss_reaches_only_the_fitters_and_the_task_loss_never_does(dataset):
    seen = _draw(dataset, seed=5).splits["train"]
    batch = PatternData.from_split(dataset.splits["train"], seen).batch(torch.arange(32))
    model = _model("mm-align", dataset)
    losses = model.compute_losses(batch, "mixed")
    groups = model.parameter_groups()
    fitter_ids = {id(p) for p in groups["fitter"]}
    losses.step["fitter"].backward(retain_graph=True)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in groups["fitter"])
    assert all(p.grad is None for p in groups["backbone"])
    model.zero_grad(set_to_none=True)
    losses.step["backbone"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in groups["fitter"])
    encoders = [p for p in groups["backbone"] if id(p) not in fitter_ids]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoders)


def test_shared_axis_fast_path_matches_the_general_path(dataset):
    seen = _draw(dataset, seed=6).splits["train"]
    batch = PatternData.from_split(dataset.splits["train"], seen).batch(torch.arange(24))
    model = _model("mm-align", dataset).eval()
    with torch.no_grad():
        general = (model.predict(batch), model.compute_losses(batch, "mixed").step)
        model.set_victim_rates({}, shared_axis=True)
        assert model.shared_axis
        fast = (model.predict(batch), model.compute_losses(batch, "mixed").step)
    torch.testing.assert_close(general[0], fast[0], rtol=1e-5, atol=1e-6)
    for group in general[1]:
        torch.testing.assert_close(general[1][group], fast[1][group], rtol=1e-5, atol=1e-6)


def test_shared_axis_is_refused_when_some_rate_is_not_one(dataset):
    model = _model("mm-align", dataset)
    model.set_victim_rates({("text", "vision"): 3.0}, shared_axis=True)
    assert not model.shared_axis
    with pytest.raises(Exception, match="must be > 0"):
        model.set_victim_rates({("text", "vision"): 0.0})


def test_masked_info_nce_equals_info_nce_on_the_kept_rows():
    torch.manual_seed(0)
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    rows = torch.tensor([True, False, True, True, False, True])
    expected = info_nce(a[rows], b[rows], 0.2)
    torch.testing.assert_close(_masked_info_nce(a, b, rows, 0.2), expected)
    one = torch.tensor([True, False, False, False, False, False])
    assert float(_masked_info_nce(a, b, one, 0.2)) == 0.0


def test_present_only_ignores_the_modalities_a_sample_lacks(dataset):
    seen = _draw(dataset, rate=0.5, drop=0.0, seed=7).splits["train"]
    data = PatternData.from_split(dataset.splits["train"], seen)
    batch = data.batch(torch.arange(len(data)))
    model = _model("lb", dataset).eval()
    with torch.no_grad():
        before = model.predict(batch)
        # a present modality matters: change one and the prediction of those samples moves
        k = 0
        m = batch.modalities[k]
        batch.features[m] = batch.features[m] + batch.masks[m][..., None] * 3.0
        after = model.predict(batch)
    moved = (before - after).abs().squeeze(-1) > 1e-6
    assert torch.equal(moved, batch.present[:, k])


def test_targets_take_turns_and_the_turn_is_kept_in_the_state_dict(dataset):
    seen = _draw(dataset, seed=8).splits["train"]
    batch = PatternData.from_split(dataset.splits["train"], seen).batch(torch.arange(16))
    model = _model("mm-align", dataset)
    targets = []
    for _ in range(4):
        targets.append(model.alignment_target())
        model.compute_losses(batch, "mixed")
    assert targets == ["text", "vision", "audio", "text"]
    model.eval()
    model.compute_losses(batch, "mixed")  # evaluation does not advance the turn
    assert model.turn == 4
    other = _model("mm-align", dataset)
    other.load_state_dict(model.state_dict())
    assert other.turn == 4 and other.alignment_target() == "vision"


def test_monotone_emission_alignment_trains_emissions_and_runs_through_dropped_steps(dataset):
    seen = _draw(dataset, rate=0.3, drop=0.3, seed=2).splits["train"]
    batch = PatternData.from_split(dataset.splits["train"], seen).batch(torch.arange(48))
    model = _model("mm-align-monotone", dataset)
    assert set(model.emissions) == {f"{s}>{v}" for s, v in model.pairs}
    target = model.alignment_target()
    losses = model.compute_losses(batch, "mixed")
    assert {"step", "translate"} <= set(losses.logged)
    losses.step["backbone"].backward(retain_graph=True)
    trained = [k for k, e in model.emissions.items() if e.mean.weight.grad is not None]
    assert trained and all(k.endswith(f">{target}") for k in trained)
    assert all(p.grad is None for p in model.fitters.parameters())
    model.zero_grad(set_to_none=True)
    losses.step["fitter"].backward()
    assert all(p.grad is None for p in model.emissions.parameters())
    # a pair's targets sum to 1 on every readable victim step whose band has a readable
    # source step (where both are present), and are 0 elsewhere
    source = next(m for m in batch.modalities if m != target)
    _, column, centres = model.alignments(batch, source, target)
    k, i = batch.modalities.index(target), batch.modalities.index(source)
    both = (batch.present[:, k] & batch.present[:, i])[:, None]
    band = column_band_valid_mask(
        batch.masks[source] & both, batch.masks[target] & both, centres, model.adl.window
    )
    rows = band.any(-1)
    assert rows.sum() > 100
    torch.testing.assert_close(column.sum(-1)[rows], torch.ones(int(rows.sum())))
    assert float(column.sum(-1)[~rows].abs().sum()) == 0.0


def test_registry_passes_the_alignment_solver_and_space_to_the_pair_model(dataset):
    from mmalign.models.method import PairDims

    dims = PairDims(32, 20, 1, "regression")
    config = apply_overrides(
        RunConfig(),
        {
            **SMALL,
            "alignment_space": "emission",
            "alignment_solver": "monotone",
            "alignment_states": 3,
            "emission_update": "em",
            "emission_covariance": "full",
        },
    )
    model = get_method("mm-align").build(dims, config)
    assert model.adl.alignment_solver == "monotone" and model.emission is not None
    assert model.adl.alignment_states == 3
    assert (model.emission.update, model.emission.covariance) == ("em", "full")
    patterns = get_method("mm-align").build_patterns(
        PatternDims({"text": 32, "vision": 20, "audio": 5}, 1, "regression"), config
    )
    assert {(e.update, e.covariance) for e in patterns.emissions.values()} == {("em", "full")}
    assert model.emission.mean.weight.shape == (20, 32)


def test_stepwise_em_updates_the_emissions_of_the_aligned_pairs(dataset):
    seen = _draw(dataset, rate=0.3, drop=0.3, seed=2).splits["train"]
    batch = PatternData.from_split(dataset.splits["train"], seen).batch(torch.arange(48))
    model = _model("mm-align-monotone", dataset, emission_update="em")
    target = model.alignment_target()
    losses = model.compute_losses(batch, "mixed")
    updated = {k for k, e in model.emissions.items() if int(e.stat_updates) == 1}
    assert updated and all(k.endswith(f">{target}") for k in updated)
    assert all(int(e.stat_updates) == 0 for k, e in model.emissions.items() if k not in updated)
    losses.step["backbone"].backward()
    assert all(p.grad is None for p in model.emissions.parameters())
