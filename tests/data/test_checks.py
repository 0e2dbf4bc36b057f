import warnings

import numpy as np
import pytest

from mmalign.data.batching import nearest_step_index
from mmalign.data.checks import (
    CAP_LAST_EPOCHS,
    CONSTANT_RTOL,
    MIN_COMPLETE,
    DataQualityWarning,
    DataWarning,
    check_epoch_cap,
    check_floor,
    check_modalities,
    check_ot_convergence,
    check_resampling,
    check_split_sizes,
    check_window,
)
from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.data.splits import make_missing_split
from mmalign.data.synthetic import SyntheticConfig, make_synthetic
from mmalign.validation import ConfigError


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(SyntheticConfig(n_train=60, n_valid=10, n_test=10, max_length=20))


def _with_train_modality(ds, name, features, lengths=None):
    """A copy of ``ds`` whose training ``name`` features (and lengths) are replaced."""
    train = ds.splits["train"]
    split = Split(
        features={**train.features, name: features},
        lengths={**train.lengths, name: train.lengths[name] if lengths is None else lengths},
        labels=train.labels,
        ids=train.ids,
    )
    return MultimodalDataset(
        splits={**ds.splits, "train": split}, task=ds.task, n_classes=ds.n_classes, name=ds.name
    ).validate()


def test_data_warning_is_a_frozen_record_and_the_class_is_a_user_warning():
    w = DataWarning("x", "something is wrong; do this.")
    assert str(w) == "something is wrong; do this."
    with pytest.raises(AttributeError):
        w.code = "y"
    assert issubclass(DataQualityWarning, UserWarning)
    with pytest.warns(DataQualityWarning, match="do this"):
        warnings.warn(w.message, DataQualityWarning, stacklevel=1)


# --- check_modalities ------------------------------------------------------------------


def test_modalities_silent_on_synthetic(synthetic):
    assert check_modalities(synthetic, ["text", "vision", "audio"]) == []
    assert check_modalities(synthetic, ["t", "v"]) == []


def test_constant_modality_fires_with_the_numbers(synthetic):
    x = synthetic.splits["train"].features["vision"].copy()
    valid = np.arange(x.shape[1])[None, :] < synthetic.splits["train"].lengths["vision"][:, None]
    x[valid] = np.linspace(-1, 2, x.shape[2], dtype=np.float32)  # every valid step equal
    ds = _with_train_modality(synthetic, "vision", x)
    out = check_modalities(ds, ["t", "v"])
    assert [w.code for w in out] == ["modality_constant"]
    msg = out[0].message
    assert "modality 'vision' is constant (all valid steps equal) in the training split" in msg
    assert f"over {int(valid.sum())} valid steps" in msg
    assert "cannot learn from it" in msg and "choose another pair" in msg


def test_constant_tolerance_is_relative_to_magnitude(synthetic):
    x = synthetic.splits["train"].features["audio"].copy()
    lengths = synthetic.splits["train"].lengths["audio"]
    valid = np.arange(x.shape[1])[None, :] < lengths[:, None]
    rng = np.random.default_rng(0)
    # a large offset plus float32-rounding-level noise is still "constant" ...
    noise = rng.standard_normal((int(valid.sum()), x.shape[2])) * 1e3 * CONSTANT_RTOL * 0.1
    x[valid] = (1e3 + noise).astype(np.float32)
    assert [
        w.code for w in check_modalities(_with_train_modality(synthetic, "audio", x), ["a"])
    ] == ["modality_constant"]
    # ... but one differing step is real variation
    x[0, 0, 0] += 1.0
    assert check_modalities(_with_train_modality(synthetic, "audio", x), ["a"]) == []


def test_all_zero_modality_fires(synthetic):
    x = np.zeros_like(synthetic.splits["train"].features["audio"])
    out = check_modalities(_with_train_modality(synthetic, "audio", x), ["text", "audio"])
    assert [w.code for w in out] == ["modality_all_zero"]
    n_steps = int(synthetic.splits["train"].lengths["audio"].sum())
    assert f"modality 'audio' is all zero in the training split ({n_steps} valid steps)" in (
        out[0].message
    )
    assert "check the feature file" in out[0].message


def test_mostly_empty_modality_fires_and_a_few_empty_samples_do_not(synthetic):
    train = synthetic.splits["train"]
    n = len(train)
    lengths = train.lengths["vision"].copy()
    lengths[: n // 2 + 1] = 0  # just over half the samples have no steps
    x = np.where(
        (np.arange(train.features["vision"].shape[1])[None, :] < lengths[:, None])[..., None],
        train.features["vision"],
        0.0,
    ).astype(np.float32)
    out = check_modalities(_with_train_modality(synthetic, "vision", x, lengths), ["vision"])
    assert [w.code for w in out] == ["modality_empty"]
    assert f"no steps (length 0) in {n // 2 + 1} of {n} training samples" in out[0].message
    assert "choose another pair" in out[0].message
    lengths[: n // 2 + 1] = train.lengths["vision"][: n // 2 + 1]
    lengths[:5] = 0
    assert check_modalities(_with_train_modality(synthetic, "vision", x, lengths), ["v"]) == []


def test_modalities_unknown_name_raises(synthetic):
    with pytest.raises(ConfigError, match="modality"):
        check_modalities(synthetic, ["smell"])


# --- check_split_sizes -----------------------------------------------------------------


def test_split_sizes_silent_on_synthetic_defaults():
    ds = make_synthetic(SyntheticConfig(n_train=400, n_valid=10, n_test=10, max_length=12))
    split = make_missing_split(ds, "v", 0.1, seed=0)
    assert len(split.train_complete) == 40
    assert check_split_sizes(len(split.train_complete), len(split.train_missing), 32) == []


def test_small_complete_split_fires_and_suggests_p():
    out = check_split_sizes(12, 108, 32)
    assert [w.code for w in out] == ["small_complete_split"]
    msg = out[0].message
    assert "only 12 of 120 training samples" in msg and "(p = 0.1)" in msg
    assert "trained on only 12 samples" in msg
    assert "--p 0.27 gives 32 complete samples" in msg  # ceil(100 * 32 / 120) / 100


def test_small_complete_split_threshold_is_one_full_batch_at_least():
    assert check_split_sizes(MIN_COMPLETE, 0, 32) == []
    assert check_split_sizes(MIN_COMPLETE - 1, 500, 16) != []
    out = check_split_sizes(40, 360, 64)  # above 32 but below one batch of 64
    assert "fewer than 64" in out[0].message and "--p 0.16" in out[0].message


def test_small_data_set_suggests_a_larger_one():
    out = check_split_sizes(5, 15, 32)  # even p = 1 gives only 20
    assert "only 20 samples in all: use a larger data set" in out[0].message
    out = check_split_sizes(40, 10, 64)  # p = 1 gives 50 >= 32 but not one batch of 64
    assert "lower --batch-size to at most 50" in out[0].message


def test_split_sizes_reject_bad_counts():
    with pytest.raises(ConfigError, match="batch_size"):
        check_split_sizes(10, 10, 0)
    with pytest.raises(ConfigError, match="n_complete"):
        check_split_sizes(-1, 10, 32)


# --- check_resampling ------------------------------------------------------------------


def test_resampling_silent_on_aligned_synthetic(synthetic):
    train = synthetic.splits["train"]
    assert check_resampling(train.lengths["text"], train.lengths["audio"]) == []


def test_resampling_fires_on_audio_frames_to_words():
    out = check_resampling(np.array([10, 20]), np.array([100, 200]), source="text", victim="audio")
    assert [w.code for w in out] == ["resampling_drops_steps"]
    msg = out[0].message
    assert "'audio' is resampled onto the time axis of 'text'" in msg
    assert "discards 270 of 300 valid audio steps (90%)" in msg
    assert "mean length 150.0 -> 15.0 steps" in msg
    assert "aligned features" in msg and "resamples the victim by nearest step" in msg


def test_resampling_threshold_and_upsampling():
    assert check_resampling(np.array([10]), np.array([20])) == []  # exactly 50%: silent
    assert check_resampling(np.array([10]), np.array([21])) != []
    assert check_resampling(np.array([50, 50]), np.array([5, 10])) == []  # upsampling keeps all
    assert check_resampling(np.array([], np.int64), np.array([], np.int64)) == []


def test_resampling_kept_steps_match_the_batcher():
    rng = np.random.default_rng(0)
    ls = rng.integers(0, 30, size=200)
    lv = rng.integers(0, 90, size=200)
    index = nearest_step_index(ls, lv, int(ls.max()))  # (N, L)
    valid = (np.arange(index.shape[1])[None, :] < ls[:, None]) & (lv[:, None] > 0)
    kept = sum(len(np.unique(row[m])) for row, m in zip(index, valid))
    total = int(lv.sum())
    out = check_resampling(ls, lv)
    assert kept == int(np.minimum(ls, lv).sum())
    assert f"discards {total - kept} of {total}" in out[0].message


def test_resampling_rejects_bad_shapes():
    with pytest.raises(ConfigError, match="same shape"):
        check_resampling(np.array([1, 2]), np.array([1]))
    with pytest.raises(ConfigError, match=">= 0"):
        check_resampling(np.array([1, -2]), np.array([1, 2]))


# --- check_window ----------------------------------------------------------------------


def test_window_fires_when_the_source_is_finer_and_the_band_spans_under_two_victim_steps():
    # 11, 9 and 12 audio frames per word: median 11, so K must reach 22 frames
    ls, lv = np.array([110, 90, 120, 0]), np.array([10, 10, 10, 5])
    out = check_window(ls, lv, 8, source="audio", victim="text")
    assert [w.code for w in out] == ["window_narrow"]
    msg = out[0].message
    assert "one text step spans about 11.0 audio steps (median over 3 samples)" in msg
    assert "only K=8 audio steps" in msg and "Set --window 22 or more" in msg
    assert check_window(ls, lv, 21) != [] and check_window(ls, lv, 22) == []


def test_window_silent_when_aligned_or_the_source_is_coarser(synthetic):
    train = synthetic.splits["train"]
    assert check_window(train.lengths["text"], train.lengths["audio"], 0) == []  # aligned
    assert check_window(np.array([10, 20]), np.array([110, 190]), 1) == []  # words -> frames
    assert check_window(np.array([0]), np.array([0]), 0) == []


def test_window_rejects_bad_input():
    with pytest.raises(ConfigError, match="same shape"):
        check_window(np.array([1, 2]), np.array([1]), 8)
    with pytest.raises(ConfigError, match=">= 0"):
        check_window(np.array([1]), np.array([1]), -1)


# --- check_ot_convergence --------------------------------------------------------------


def test_ot_convergence_fires_above_half():
    out = check_ot_convergence(0.73, 0.1, 100, tol=1e-4)
    assert [w.code for w in out] == ["ot_unconverged"]
    msg = out[0].message
    assert "max_iter=100" in msg and "73% of the complete-split samples" in msg
    assert "reg=0.1, tol=0.0001" in msg and "approximate" in msg
    assert "--max-iter (e.g. 400)" in msg and "--reg (e.g. 0.2" in msg and "--tol 0.001" in msg


def test_ot_convergence_silent_below_threshold_and_validates():
    assert check_ot_convergence(0.5, 0.1, 100) == []
    assert check_ot_convergence(0.0, 0.1, 100) == []
    assert "a larger --tol" in check_ot_convergence(1.0, 0.1, 100)[0].message
    with pytest.raises(ConfigError, match="unconverged_share"):
        check_ot_convergence(1.5, 0.1, 100)


# --- check_floor -----------------------------------------------------------------------


def test_floor_regression_lower_is_better():
    out = check_floor(1.2034, 1.15, "regression")
    assert [w.code for w in out] == ["below_floor"]
    msg = out[0].message
    assert "test MAE 1.2034 is worse than the sanity floor's 1.1500" in msg
    assert "ridge regression" in msg and "lower is better" in msg
    assert "report it as a finding" in msg
    assert check_floor(1.0, 1.15, "regression") == []
    assert check_floor(1.15, 1.15, "regression") == []


def test_floor_classification_higher_is_better():
    out = check_floor(0.41, 0.48, "classification", metric="F1")
    assert "test F1 0.4100 is worse than the sanity floor's 0.4800" in out[0].message
    assert "logistic regression" in out[0].message and "higher is better" in out[0].message
    assert check_floor(0.6, 0.48, "classification") == []


def test_floor_silent_on_missing_numbers_and_checks_task():
    assert check_floor(float("nan"), 1.0, "regression") == []
    assert check_floor(1.0, float("inf"), "regression") == []
    with pytest.raises(ConfigError, match="task"):
        check_floor(1.0, 1.0, "ranking")


def test_epoch_cap_fires_when_a_setting_peaks_in_the_last_epochs():
    assert CAP_LAST_EPOCHS == 3
    (w,) = check_epoch_cap({"A": 20, "B": 29}, 31, 31, stopped_early=False)
    assert w.code == "epoch_cap"
    assert "setting B at epoch 29" in w.message and "setting A" not in w.message
    assert "31 epochs" in w.message and "--resume RUN_DIR --epochs" in w.message
    (both,) = check_epoch_cap({"A": 31, "B": 30}, 31, 31, stopped_early=False)
    assert "setting A at epoch 31, setting B at epoch 30" in both.message


@pytest.mark.parametrize(
    "best, run, cap, stopped",
    [
        ({"A": 28, "B": 10}, 31, 31, False),  # peaked four epochs before the end
        ({"A": 31}, 31, 31, True),  # early stopping ended it (cannot peak last, but say so)
        ({"A": 19}, 19, 31, False),  # ended before the cap
        ({}, 31, 31, False),  # nothing selected
    ],
)
def test_epoch_cap_silent_otherwise(best, run, cap, stopped):
    assert check_epoch_cap(best, run, cap, stopped_early=stopped) == []
