"""Input standardisation: training statistics only, kept in the checkpoint, scale-free runs."""

import warnings

import numpy as np
import pytest
import torch

import mmalign
from mmalign.data.checks import DataQualityWarning
from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.data.statistics import step_statistics

TINY = "synthetic:n_train=64,n_valid=24,n_test=24,min_length=5,max_length=10"
SMALL = dict(
    epochs=1,
    warmup_epochs=1,
    batch_size=16,
    d_model=8,
    n_heads=2,
    window=2,
    progress=False,
    p=0.5,
    threads=1,
    standardize=True,
)


def _rescaled(dataset: MultimodalDataset, seed: int = 0) -> MultimodalDataset:
    """Every feature mapped by its own a * x + b, a in [1e-2, 1e2] (COVAREP-like spreads)."""
    rng = np.random.default_rng(seed)
    factors = {
        m: (10.0 ** rng.uniform(-2, 2, d), rng.normal(0, 5, d))
        for m, d in dataset.feature_dims.items()
    }
    splits = {}
    for name, split in dataset.splits.items():
        features = {}
        for m, x in split.features.items():
            a, b = factors[m]
            valid = np.arange(x.shape[1])[None, :] < split.lengths[m][:, None]
            features[m] = np.where(valid[..., None], x * a + b, 0.0).astype(np.float32)
        splits[name] = Split(features, split.lengths, split.labels, split.ids)
    return MultimodalDataset(splits=splits, task=dataset.task, n_classes=dataset.n_classes)


def _run(tmp_path, name, dataset, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return mmalign.run(
            out=tmp_path / name, dataset=dataset, log=lambda s: None, **{**SMALL, **options}
        )


def test_statistics_use_valid_steps_of_the_given_rows_only():
    dataset = mmalign.load_dataset(TINY)
    train = dataset.splits["train"]
    rows = np.arange(10)
    mean, std = step_statistics(train, "vision", rows)
    valid = np.arange(10)[None, :] < train.lengths["vision"][rows][:, None]
    steps = train.features["vision"][rows][valid]
    np.testing.assert_allclose(mean, steps.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, steps.std(0), rtol=1e-5)


@pytest.mark.parametrize("method", ["lb", "mm-align"])
def test_a_standardised_run_does_not_depend_on_feature_scales(tmp_path, method):
    dataset = mmalign.load_dataset(TINY)
    a = _run(tmp_path, "a", dataset, method=method)
    b = _run(tmp_path, "b", _rescaled(dataset), method=method)
    for setting in ("A", "B"):
        assert a.test(setting)["mae"] == pytest.approx(b.test(setting)["mae"], rel=1e-3)


def test_statistics_travel_with_the_checkpoint(tmp_path):
    dataset = _rescaled(mmalign.load_dataset(TINY))
    result = _run(tmp_path, "r", dataset, method="mm-align")
    model = mmalign.load_run(result.run_dir)
    encoder = model.model.backbone.victim_encoder
    assert not torch.equal(encoder.input_scale, torch.ones_like(encoder.input_scale))
    scores = model.predict(dataset.splits["test"])[:, 0]
    rows = [r.split(",") for r in (result.run_dir / "predictions.csv").read_text().splitlines()[1:]]
    saved = np.array([float(r[4]) for r in rows if r[0] == "A"])
    np.testing.assert_allclose(scores, saved, rtol=1e-5, atol=1e-5)


def test_on_by_default_and_off_in_the_paper_configs():
    from pathlib import Path

    from mmalign.config import RunConfig, load_config

    assert RunConfig().model.standardize is True
    root = Path(__file__).resolve().parents[2] / "configs"
    for name in ("mosi", "mosei", "meld"):
        paper = load_config(root / f"{name}.yaml").model
        assert (paper.standardize, paper.pooling, paper.dropout) == (False, "head", 0.1)


def test_run_folders_from_before_standardisation_still_load(tmp_path):
    from mmalign.train.checkpoint import load_checkpoint, save_checkpoint

    dataset = mmalign.load_dataset(TINY)
    result = _run(tmp_path, "r", dataset, method="lb", standardize=False)
    expected = mmalign.load_run(result.run_dir).predict(dataset.splits["test"])
    states, meta = load_checkpoint(result.run_dir / "checkpoint.pt")
    old_states = {
        s: {k: v for k, v in state.items() if not k.endswith(("input_shift", "input_scale"))}
        for s, state in states.items()
    }
    dims = {k: meta.pop(k) for k in ("source_dim", "victim_dim", "output_dim", "task")}
    save_checkpoint(result.run_dir / "checkpoint.pt", old_states, {**meta, "dims": dims})
    again = mmalign.load_run(result.run_dir).predict(dataset.splits["test"])
    np.testing.assert_array_equal(again, expected)
