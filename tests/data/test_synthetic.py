import hashlib
from dataclasses import fields, replace

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import r2_score

from mmalign.data.spec import DataSpec
from mmalign.data.synthetic import (
    PRIVILEGED_PRESET,
    SYNTHETIC_MODALITIES,
    SyntheticConfig,
    generate_synthetic,
    information_budget,
    make_synthetic,
    monotone_warps,
)
from mmalign.validation import ConfigError

SMALL = dict(n_train=60, n_valid=20, n_test=30)


def test_every_field_has_a_default_help_and_a_scalar_type():
    for f in fields(SyntheticConfig):
        assert f.metadata.get("help"), f.name
        assert f.type in ("int", "float", "str", "bool"), (f.name, f.type)
    SyntheticConfig()  # all defaults


def test_default_sizes_and_widths_are_mosi_like():
    cfg = SyntheticConfig()
    assert (cfg.n_train, cfg.n_valid, cfg.n_test) == (1284, 229, 686)
    assert (cfg.min_length, cfg.max_length) == (10, 50)
    assert cfg.feature_dims() == {"text": 32, "vision": 20, "audio": 5}


def test_same_seed_same_arrays_different_seed_different():
    a = make_synthetic(SyntheticConfig(**SMALL, seed=3))
    b = make_synthetic(SyntheticConfig(**SMALL, seed=3))
    c = make_synthetic(SyntheticConfig(**SMALL, seed=4))
    for s in ("train", "valid", "test"):
        for m in SYNTHETIC_MODALITIES:
            np.testing.assert_array_equal(a.splits[s].features[m], b.splits[s].features[m])
            np.testing.assert_array_equal(a.splits[s].lengths[m], b.splits[s].lengths[m])
        np.testing.assert_array_equal(a.splits[s].labels, b.splits[s].labels)
    text_a, text_c = a.splits["train"].features["text"], c.splits["train"].features["text"]
    assert not np.array_equal(text_a, text_c)
    assert not np.array_equal(a.splits["train"].labels, c.splits["train"].labels)


def test_shapes_dtypes_lengths_and_zero_padding():
    cfg = SyntheticConfig(
        **SMALL, min_length=4, max_length=12, dim_text=7, dim_vision=3, dim_audio=2
    )
    ds = make_synthetic(cfg)
    assert ds.task == "regression" and ds.n_classes is None
    assert ds.modalities == ("text", "vision", "audio")
    for s, n in (("train", 60), ("valid", 20), ("test", 30)):
        split = ds.splits[s]
        assert len(split) == n and split.labels.dtype == np.float32
        length = split.lengths["text"]
        assert length.dtype == np.int64
        assert length.min() >= 4 and length.max() <= 12
        for m, d in (("text", 7), ("vision", 3), ("audio", 2)):
            x = split.features[m]
            assert x.shape == (n, 12, d) and x.dtype == np.float32
            # word-aligned: one length for all modalities
            np.testing.assert_array_equal(split.lengths[m], length)
            pad = np.arange(12)[None, :] >= length[:, None]
            assert np.all(x[pad] == 0.0)
            assert np.all(np.abs(x[~pad]).sum(axis=-1) > 0)
    ids = np.concatenate([ds.splits[s].ids for s in ("train", "valid", "test")])
    assert len(set(ids)) == 110


def test_regression_labels_in_range_on_the_grid_with_some_zeros():
    y = make_synthetic(SyntheticConfig(n_train=800, n_valid=5, n_test=5)).splits["train"].labels
    assert y.min() >= -3.0 and y.max() <= 3.0
    np.testing.assert_allclose(y / 0.2, np.round(y / 0.2), atol=1e-4)
    assert 0 < np.mean(y == 0.0) < 0.2
    assert 1.0 < y.std() < 2.0  # spread over the range, not piled up at the ends


def test_classification_labels_are_imbalanced_and_cover_all_classes():
    ds = make_synthetic(SyntheticConfig(n_train=2000, n_valid=5, n_test=5, task="classification"))
    assert ds.task == "classification" and ds.n_classes == 7 and ds.output_dim == 7
    y = ds.splits["train"].labels
    assert y.dtype == np.int64
    counts = np.bincount(y, minlength=7)
    target = 0.6 ** np.arange(7) / np.sum(0.6 ** np.arange(7))
    # frequencies follow class_imbalance**k (tuned biases): most frequent ~41%, rarest ~2%
    np.testing.assert_allclose(counts / counts.sum(), target, atol=0.02)
    assert counts.min() > 0 and counts.max() >= 10 * counts.min()


def test_monotone_warps_stay_in_the_band_and_end_on_the_last_step():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=300)
    w = monotone_warps(rng, lengths, 40, band=2, strength=1.0)
    steps = np.arange(40)[None, :]
    valid = steps < lengths[:, None]
    assert np.all(np.abs(w - steps)[valid] <= 2)
    assert np.all(np.diff(w, axis=1)[valid[:, 1:]] >= 0)
    assert np.all(w[:, 0] == 0)
    np.testing.assert_array_equal(w[np.arange(300), lengths - 1], lengths - 1)
    assert np.all(w[~valid] == 0)
    assert np.mean((w != steps)[valid]) > 0.3  # really warped


def _ridge_corr(train, test, modalities):
    def pool(split):
        cols = []
        for m in modalities:
            x = split.features[m].astype(np.float64)
            n = split.lengths[m][:, None]
            cols += [x.sum(axis=1) / n, (x**2).sum(axis=1) / n]  # mean, mean of squares
        return np.concatenate(cols, axis=1)

    pred = Ridge(alpha=1.0).fit(pool(train), train.labels).predict(pool(test))
    return float(np.corrcoef(pred, test.labels)[0, 1])


def test_each_modality_carries_unique_label_information_and_text_is_strongest():
    ds = make_synthetic(SyntheticConfig(n_train=800, n_valid=5, n_test=400))
    tr, te = ds.splits["train"], ds.splits["test"]
    corr = {
        mods: _ridge_corr(tr, te, mods)
        for mods in [
            ("text",),
            ("vision",),
            ("audio",),
            ("text", "vision"),
            ("audio", "text"),
            ("text", "vision", "audio"),
        ]
    }
    # observed on seed 0: t .80, v .68, a .55, t+v .90, a+t .87, all .95
    assert corr[("text", "vision")] >= corr[("text",)] + 0.05
    assert corr[("audio", "text")] >= corr[("audio",)] + 0.2
    assert corr[("text",)] > corr[("vision",)] > corr[("audio",)]
    assert corr[("text", "vision", "audio")] > 0.8


def test_true_alignment_is_banded_but_not_the_identity():
    base = dict(
        n_train=80, n_valid=2, n_test=2, noise_text=0.0, noise_vision=0.0, unique_dim=0, warp_band=2
    )
    # same seed, no warping: the text -> vision map is exactly affine on identical steps
    straight = make_synthetic(SyntheticConfig(**base, warp_strength=0.0)).splits["train"]
    data = generate_synthetic(SyntheticConfig(**base, warp_strength=1.0))
    warped = data.dataset.splits["train"]
    n, length = warped.features["text"].shape[:2]
    steps = np.arange(length)
    valid = steps[None, :] < warped.lengths["text"][:, None]
    xt0 = straight.features["text"].astype(np.float64)[valid]
    xv0 = straight.features["vision"].astype(np.float64)[valid]
    ones = np.ones((xt0.shape[0], 1))
    affine, *_ = np.linalg.lstsq(np.hstack([xt0, ones]), xv0, rcond=None)
    xt = warped.features["text"].astype(np.float64)
    xv = warped.features["vision"].astype(np.float64)
    pred = np.concatenate([xt, np.ones((n, length, 1))], axis=2) @ affine  # (N, L, Dv)
    # cross-match every text step against every vision step of the same sample
    dist = ((pred[:, :, None, :] - xv[:, None, :, :]) ** 2).sum(-1)  # (N, L, M)
    dist = np.where(valid[:, None, :], dist, np.inf)
    best = dist.argmin(axis=2) - steps[None, :]
    exact = valid & (dist.min(axis=2) < 1e-6)  # vision also observed this latent step
    assert exact.sum() > 0.5 * valid.sum()
    assert np.abs(best[exact]).max() <= 4  # within 2 * warp_band
    assert np.abs(best[exact]).max() >= 2
    assert np.mean(best[exact] != 0) > 0.3  # not the identity
    truth = data.true_offsets("train", "text", "vision")
    # vision may dwell on a latent step: compare the latent steps the two matches see
    w_vision = data.warps["train"]["vision"]
    seen_best = np.take_along_axis(w_vision, np.clip(best + steps, 0, length - 1), axis=1)
    seen_true = np.take_along_axis(w_vision, truth + steps, axis=1)
    np.testing.assert_array_equal(seen_best[exact], seen_true[exact])
    assert np.all(np.abs(truth) <= 4)


def test_a_noise_knob_changes_only_its_modality():
    # changing noise or warp strength does not change the draws of the latent sequences
    a = make_synthetic(SyntheticConfig(**SMALL, noise_audio=0.0)).splits["train"]
    b = make_synthetic(SyntheticConfig(**SMALL, noise_audio=0.0)).splits["train"]
    np.testing.assert_array_equal(a.features["audio"], b.features["audio"])
    c = make_synthetic(SyntheticConfig(**SMALL, noise_audio=1.0)).splits["train"]
    np.testing.assert_array_equal(a.features["text"], c.features["text"])
    assert not np.array_equal(a.features["audio"], c.features["audio"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_train=0), r"`n_train` must be an integer >= 1; got 0\."),
        (dict(max_length=5, min_length=6), r"`max_length` must be an integer >= min_length=6"),
        (dict(task="ranking"), r"`task` must be one of \['regression', 'classification'\]"),
        (dict(noise_text=-1.0), r"`noise_text` must be a number >= 0; got -1\.0\."),
        (dict(event_smoothness=1.0), r"`event_smoothness` must be in \[0, 1\); got 1\.0\."),
        (dict(class_imbalance=0.0), r"`class_imbalance` must be in \(0, 1\]"),
        (dict(n_classes=1), r"`n_classes` must be an integer >= 2"),
        (dict(info_privileged=-1.0), r"`info_privileged` must be a number >= 0"),
        (dict(privileged_noise=-0.5), r"`privileged_noise` must be a number >= 0"),
        (
            dict(info_shared=0.0, info_text=0.0, info_vision=0.0, info_audio=0.0),
            r"must be a number > 0",
        ),
    ],
)
def test_bad_config_raises_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_synthetic(SyntheticConfig(**kwargs))


# --- the privileged-information regime (module docstring, step 6) and the information budget

# sha256 of the default dataset (features and labels rounded to 1e-4, lengths, warps),
# computed with the generator as it was before step 6 existed: info_privileged == 0 must
# leave the random stream, and so every array, untouched. (Bit-identical bytes were checked
# too; rounding keeps the check independent of the BLAS build.)
DEFAULT_DATASET_SHA256 = "dfb84104db4166091b879d5dfdbf0ec0246afce0cd42e68d5a7c012f1c325257"


def test_default_dataset_is_unchanged():
    data = generate_synthetic(SyntheticConfig())
    digest = hashlib.sha256()
    for s in ("train", "valid", "test"):
        split = data.dataset.splits[s]
        for m in ("text", "vision", "audio"):
            digest.update(np.round(split.features[m].astype(np.float64), 4).tobytes())
            digest.update(split.lengths[m].astype(np.int64).tobytes())
            digest.update(data.warps[s][m].astype(np.int64).tobytes())
        digest.update(np.round(split.labels.astype(np.float64), 4).tobytes())
    assert digest.hexdigest() == DEFAULT_DATASET_SHA256
    assert not any(k.startswith("privileged/") for k in data.latents["train"])


# sums of the default dataset's features and labels (float64), computed before the spans and
# the unaligned variant (step 7) existed: unaligned off must leave every draw untouched
DEFAULT_SUMS = {
    "train": (-315150.0385209169, -166813.07109691892, -13642.491254681247, 31.800001963973045),
    "valid": (-57879.159838971944, -33070.72091791719, -1615.027756803349, 5.199999958276749),
    "test": (-154851.62905215868, -88428.30783287177, -7548.218540426606, -121.20000115036964),
}


def test_default_dataset_sums_are_unchanged_with_unaligned_off():
    for unaligned in (False, 0):
        data = generate_synthetic(SyntheticConfig(unaligned=unaligned))
        for s, expected in DEFAULT_SUMS.items():
            split = data.dataset.splits[s]
            sums = [float(split.features[m].astype(np.float64).sum()) for m in SYNTHETIC_MODALITIES]
            sums.append(float(split.labels.astype(np.float64).sum()))
            np.testing.assert_allclose(sums, expected, rtol=1e-9)
            assert split.features["vision"].shape[1] == 50
        assert data.durations == {}


def test_privileged_draws_leave_the_main_stream_alone():
    off = generate_synthetic(SyntheticConfig(**SMALL))
    on = generate_synthetic(SyntheticConfig(**SMALL, info_privileged=1.0))
    for s in ("train", "test"):
        np.testing.assert_array_equal(
            on.dataset.splits[s].lengths["text"], off.dataset.splits[s].lengths["text"]
        )
        for m in SYNTHETIC_MODALITIES:
            np.testing.assert_array_equal(on.warps[s][m], off.warps[s][m])
            np.testing.assert_array_equal(
                on.latents[s][f"unique/{m}"], off.latents[s][f"unique/{m}"]
            )
        np.testing.assert_array_equal(on.latents[s]["events"], off.latents[s]["events"])
    text_on, text_off = (
        on.dataset.splits["train"].features["text"],
        off.dataset.splits["train"].features["text"],
    )
    assert not np.array_equal(text_on, text_off)
    names = set(on.latents["train"])
    assert {"privileged/text", "carrier/vision", "view/text/vision", "view/audio/vision"} <= names
    assert "view/vision/vision" not in names
    carrier = on.latents["train"]["carrier/vision"]
    valid = (
        np.arange(carrier.shape[1])[None, :] < on.dataset.splits["train"].lengths["vision"][:, None]
    )
    assert set(np.unique(carrier[valid])) == {-1.0, 1.0}
    assert np.all(carrier[~valid] == 0.0)


def test_privileged_preset_parses():
    assert DataSpec.parse(PRIVILEGED_PRESET).synthetic_config().info_privileged == 1.0


@pytest.fixture(scope="module")
def privileged():
    cfg = SyntheticConfig(n_train=800, n_valid=2, n_test=400, max_length=30, info_privileged=1.0)
    return generate_synthetic(cfg)


def _time_mean(data, split, x):
    """Mean over valid steps of x (N, L, Z) -> (N, Z)."""
    n = data.dataset.splits[split].lengths["text"][:, None]
    return x.astype(np.float64).sum(axis=1) / n


def _pooled(data, split, m, squares=True):
    x = data.dataset.splits[split].features[m]
    cols = [_time_mean(data, split, x)] + ([_time_mean(data, split, x**2)] if squares else [])
    return np.concatenate(cols, axis=1)


def _ridge_r2(make_x, target):
    model = Ridge(alpha=1.0).fit(make_x("train"), target("train"))
    return r2_score(target("test"), model.predict(make_x("test")))


def test_privileged_part_needs_the_step_level_product(privileged):
    data, src, vic = privileged, "vision", "text"

    def target(s):  # the victim's privileged time mean, (N, Z_u), on latent time
        return _time_mean(data, s, data.latents[s][f"privileged/{vic}"])

    # the sanity floor's features of the source get none of it (observed ~ -0.05)
    assert _ridge_r2(lambda s: _pooled(data, s, src), target) < 0.05

    # the step-level product of the source's view and its carrier recovers it (~0.94)
    def product(s):
        view = data.latents[s][f"view/{vic}/{src}"] * data.latents[s][f"carrier/{src}"]
        return _time_mean(data, s, view)

    assert _ridge_r2(product, target) > 0.5
    # the victim reads it out linearly from its pooled means (~0.96)
    assert _ridge_r2(lambda s: _pooled(data, s, vic, squares=False), target) > 0.9


def test_privileged_part_is_recoverable_from_the_source_features(privileged):
    # text (32 features) carries vision's privileged part: a per-step linear decoder of the
    # view and the carrier's unique sequence, a sign and a product recover it (~0.74)
    data, src, vic = privileged, "text", "vision"
    width = data.config.unique_dim
    theta = 0.6744897501960817 * np.sqrt(1.0 + data.config.event_scale**2)

    def steps(s):
        split = data.dataset.splits[s]
        x = split.features[src].astype(np.float64)  # (N, L, D)
        valid = np.arange(x.shape[1])[None, :] < split.lengths[src][:, None]  # (N, L)
        return x, valid

    x, valid = steps("train")
    truth = np.concatenate(
        [data.latents["train"][f"view/{vic}/{src}"], data.latents["train"][f"unique/{src}"]], axis=2
    )
    decoder = LinearRegression().fit(x[valid], truth[valid])

    def recovered(s):
        x, valid = steps(s)
        est = decoder.predict(x.reshape(-1, x.shape[2])).reshape(*x.shape[:2], -1)
        carrier = np.where(np.abs(est[..., width:]) > theta, 1.0, -1.0)
        return _time_mean(data, s, est[..., :width] * carrier * valid[..., None])

    def target(s):
        return _time_mean(data, s, data.latents[s][f"privileged/{vic}"])

    assert _ridge_r2(lambda s: _pooled(data, s, src), target) < 0.05
    assert _ridge_r2(recovered, target) > 0.5


def _check_budget_shape(budget):
    singles = [(m,) for m in SYNTHETIC_MODALITIES]
    assert list(budget.oracle) == singles + [
        ("text", "vision"),
        ("text", "audio"),
        ("vision", "audio"),
        ("text", "vision", "audio"),
    ]
    assert sum(budget.parts.values()) == pytest.approx(1.0)
    for column in (budget.oracle, budget.clean, budget.pooled):
        assert all(0.0 <= v <= 1.0 for v in column.values())
    for subset in budget.oracle:
        for m in subset:
            assert budget.oracle[subset] >= budget.oracle[(m,)]
            assert budget.clean[subset] >= budget.clean[(m,)]
            assert budget.pooled[subset] >= budget.pooled[(m,)] - 0.02  # estimate
        assert budget.oracle[subset] >= budget.clean[subset]
        assert budget.pooled[subset] <= budget.oracle[subset] + 0.03  # estimate
    assert budget.oracle[("text", "vision", "audio")] == pytest.approx(
        1 - budget.parts["label_noise"]
    )


def test_information_budget_of_the_default_config():
    budget = information_budget(SyntheticConfig(), n_samples=1200)
    _check_budget_shape(budget)
    assert budget.oracle == budget.clean  # no privileged part: everything is seen linearly
    assert budget.pooled[("text",)] > budget.pooled[("vision",)] > budget.pooled[("audio",)]
    assert budget.pooled[("text", "vision", "audio")] > 0.85
    assert budget.n_samples == 1200


def test_information_budget_of_the_privileged_regime():
    budget = information_budget(
        DataSpec.parse(PRIVILEGED_PRESET).synthetic_config(), n_samples=1200
    )
    _check_budget_shape(budget)
    for m in SYNTHETIC_MODALITIES:
        # each source also carries the other two privileged parts, but only nonlinearly
        others = sum(budget.parts[f"privileged/{o}"] for o in SYNTHETIC_MODALITIES if o != m)
        assert budget.oracle[(m,)] - budget.clean[(m,)] == pytest.approx(others)
        assert budget.pooled[(m,)] < budget.clean[(m,)] + 0.03
    assert budget.clean[("text", "vision", "audio")] == budget.oracle[("text", "vision", "audio")]


def test_information_budget_matches_hand_computed_shares():
    # event_scale = 0: a latent's time mean is its level, variance 1; a part of weight w
    # contributes w**2, the noise 0.5**2: total 1 + 1 + 0.25 + 0 + 0.25 = 2.5
    cfg = SyntheticConfig(
        event_scale=0.0, info_text=1.0, info_vision=0.5, info_audio=0.0, label_noise=0.5
    )
    b = information_budget(cfg, n_samples=400)
    assert b.parts == pytest.approx(
        {
            "shared": 0.4,
            "unique/text": 0.4,
            "unique/vision": 0.1,
            "unique/audio": 0.0,
            "label_noise": 0.1,
        }
    )
    assert b.oracle[("text",)] == pytest.approx(0.8)
    assert b.oracle[("vision",)] == pytest.approx(0.5)
    assert b.oracle[("audio",)] == pytest.approx(0.4)
    assert b.oracle[("text", "vision")] == pytest.approx(0.9)
    assert b.oracle[("vision", "audio")] == pytest.approx(0.5)
    # privileged parts add 3 * 1**2: total 5.5; text sees all three, linearly only its own
    p = information_budget(replace(cfg, info_privileged=1.0), n_samples=400)
    assert p.oracle[("text",)] == pytest.approx(5.0 / 5.5)
    assert p.clean[("text",)] == pytest.approx(3.0 / 5.5)
    assert p.clean[("vision", "audio")] == pytest.approx(3.25 / 5.5)
    # a fixed length 3, rho 0.5, event_scale 1: Var(time mean) = 1 + (3 + 2 (2 * .5 + .25)) / 9
    q = information_budget(
        SyntheticConfig(
            min_length=3, max_length=3, event_smoothness=0.5, info_vision=0.0, info_audio=0.0
        ),
        n_samples=400,
    )
    v = 1.0 + 5.5 / 9.0
    assert q.parts["label_noise"] == pytest.approx(0.09 / (2 * v + 0.09))
    assert q.oracle[("text",)] == pytest.approx(2 * v / (2 * v + 0.09))
