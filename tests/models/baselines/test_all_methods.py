"""Every registered method: NaN victims of absent samples never surface, one training step runs,
parameter groups partition the trainable parameters (house style rules 7, 8, 10)."""

import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from mmalign.config import ModelConfig, RunConfig, TrainConfig
from mmalign.data.batching import PairData, iterate_batches
from mmalign.data.synthetic import SyntheticConfig, make_synthetic
from mmalign.models.method import PairDims
from mmalign.models.registry import METHODS, get_method
from mmalign.train.loop import TrainData, build_optimizers, fit, predict_outputs, train_step
from mmalign.validation import ConfigError

NAMES = sorted(METHODS)
SOURCE, VICTIM = "text", "vision"
CONFIG = RunConfig(
    model=ModelConfig(d_model=8, n_heads=2, n_layers=1, n_fusion_layers=1, dropout=0.1, ff_mult=2),
    train=TrainConfig(epochs=1, warmup_epochs=0, batch_size=8, eval_batch_size=16, patience=1),
)


@pytest.fixture(scope="module", params=["regression", "classification"])
def data(request):
    """A tiny dataset whose absent victims are NaN in the raw features, with presence masks."""
    task = request.param
    dataset = make_synthetic(
        SyntheticConfig(
            n_train=16,
            n_valid=8,
            n_test=4,
            min_length=3,
            max_length=9,
            task=task,
            n_classes=3,
            seed=4,
        )
    )
    rng = np.random.default_rng(0)
    train_present = rng.permutation(np.arange(16) % 2 == 0)
    valid_b = rng.permutation(np.arange(8) % 2 == 0)

    def poisoned(name, present):
        split = dataset.splits[name]
        victim = split.features[VICTIM].copy()
        victim[~present] = np.nan  # absent victims: never to be read
        return replace(split, features={**split.features, VICTIM: victim})

    dims = PairDims(
        dataset.feature_dims[SOURCE], dataset.feature_dims[VICTIM], dataset.output_dim, dataset.task
    )
    return {
        "dims": dims,
        "train": PairData.from_split(
            poisoned("train", train_present), SOURCE, VICTIM, train_present
        ),
        "train_clean": PairData.from_split(dataset.splits["train"], SOURCE, VICTIM),
        "valid": PairData.from_split(poisoned("valid", valid_b), SOURCE, VICTIM, valid_b),
        "valid_clean": PairData.from_split(dataset.splits["valid"], SOURCE, VICTIM),
        "complete": np.flatnonzero(train_present),
        "missing": np.flatnonzero(~train_present),
        "settings": {"A": np.zeros(8, dtype=bool), "B": valid_b},
    }


def build(name, dims, seed=0):
    torch.manual_seed(seed)
    return get_method(name).build(dims, CONFIG)


def assert_finite_state(model, losses):
    for key, value in {**losses.step, **losses.logged}.items():
        assert torch.isfinite(value).all(), key
    for name, p in model.named_parameters():
        assert torch.isfinite(p).all(), name
        assert p.grad is None or torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("name", NAMES)
def test_nan_victims_of_absent_samples_never_surface(data, name):
    spec = METHODS[name]
    model = build(name, data["dims"])
    optimizers = build_optimizers(model, spec.learning_rates(CONFIG), log=lambda _: None)
    groups = tuple(optimizers)
    model.train()
    train = data["train_clean"] if spec.complete_data else data["train"]
    plan = [("complete", data["complete"], None)]
    if not spec.complete_data:  # the missing phase does not apply to the upper bound
        plan.append(("missing", data["missing"], False))
    for phase, rows, has in plan:
        for batch in iterate_batches(train, rows, 8, shuffle=False, has_victim=has):
            losses = model.compute_losses(batch, phase)
            train_step(model, losses, optimizers, groups, CONFIG.train.grad_clip)
            assert_finite_state(model, losses)
    if spec.complete_data:
        outputs = predict_outputs(model, data["valid_clean"], np.ones(8, dtype=bool), 16)
        assert outputs.shape[0] == 8 and torch.isfinite(outputs).all()
        return
    for setting, present in data["settings"].items():
        outputs = predict_outputs(model, data["valid"], present, 16)
        assert outputs.shape == (8, data["dims"].output_dim), setting
        assert torch.isfinite(outputs).all(), setting


@pytest.mark.parametrize("name", [n for n in NAMES if not METHODS[n].complete_data])
def test_models_never_read_victim_rows_marked_absent(data, name):
    # bypass the batcher's zeroing: the model itself must not touch those rows
    model = build(name, data["dims"])
    batch = data["train_clean"].batch(torch.arange(8), torch.zeros(8, dtype=torch.bool))
    batch.victim.fill_(float("nan"))
    losses = model.compute_losses(batch, "missing")
    sum(v for k, v in losses.step.items() if k in model.parameter_groups()).backward()
    assert_finite_state(model, losses)
    model.eval()
    mixed = data["train_clean"].batch(torch.arange(8), torch.arange(8) % 2 == 0)
    mixed.victim[~mixed.has_victim] = float("nan")
    with torch.no_grad():
        assert torch.isfinite(model.predict(mixed)).all()


@pytest.mark.parametrize("name", NAMES)
def test_one_training_epoch_of_every_method(data, name):
    spec = METHODS[name]
    model = build(name, data["dims"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    if spec.complete_data:
        train, valid = data["train_clean"], data["valid_clean"]
        complete, missing = np.arange(16), np.arange(0)
        settings = {"complete": np.ones(8, dtype=bool)}
    else:
        train, valid = data["train"], data["valid"]
        complete, missing, settings = data["complete"], data["missing"], data["settings"]
    result = fit(
        model,
        TrainData(train, complete, missing, valid, settings),
        CONFIG.train,
        spec.learning_rates(CONFIG),
        generator=torch.Generator().manual_seed(0),
        log=lambda _: None,
        progress=False,
    )
    assert len(result.history) == 1
    assert set(result.best_states) == set(settings)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "one epoch of training changed nothing"
    floats = [v for v in model.state_dict().values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in floats)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_groups_are_disjoint_and_cover_the_trained_parameters(data, name):
    model = build(name, data["dims"])
    groups = model.parameter_groups()
    ids = [id(p) for params in groups.values() for p in params]
    assert len(ids) == len(set(ids)), "a parameter sits in two groups"
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if name == "lb":  # LB never runs its victim encoder, so it leaves it out of every group
        trainable -= {id(p) for p in model.backbone.victim_encoder.parameters()}
    assert set(ids) == trainable
    # and every parameter that any loss reaches is in some group
    batch = data["train_clean"].batch(torch.arange(8))
    model.zero_grad(set_to_none=True)
    losses = model.compute_losses(batch, "complete")
    sum(v for k, v in losses.step.items() if k in groups).backward()
    reached = {id(p) for p in model.parameters() if p.grad is not None}
    assert reached <= set(ids)


def test_unknown_method_error_lists_every_registered_name():
    message = f"`method` must be one of {list(METHODS)}; got 'mfn'."
    with pytest.raises(ConfigError, match=re.escape(message)):
        get_method("mfn")
    assert get_method("Modal_Trans").name == "modal-trans"
    assert {"mm-align", "lb", "ub", "mfm", "smil", "modal-trans"} <= set(METHODS)
