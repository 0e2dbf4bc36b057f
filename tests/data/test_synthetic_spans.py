"""Ground-truth spans of the synthetic benchmark and its unaligned variant (step 7)."""

import numpy as np
import pytest

from mmalign.data.spec import DataSpec
from mmalign.data.synthetic import (
    SYNTHETIC_MODALITIES,
    UNALIGNED_PRESET,
    SyntheticConfig,
    generate_synthetic,
    information_budget,
    make_synthetic,
)
from mmalign.validation import ConfigError

SMALL = dict(n_train=40, n_valid=10, n_test=10)
PAIRS = [(a, b) for a in SYNTHETIC_MODALITIES for b in SYNTHETIC_MODALITIES if a != b]
FRAMES = ("vision", "audio")


@pytest.fixture(scope="module")
def aligned():
    return generate_synthetic(SyntheticConfig(**SMALL, max_length=30))


@pytest.fixture(scope="module")
def unaligned():
    # a low cap so that some samples are cut
    return generate_synthetic(SyntheticConfig(**SMALL, unaligned=True, max_frames=300))


def _loop_truth(pos_a, len_a, pos_b, len_b, exact=False):
    """The rule, step by step: the valid b steps at the nearest latent position, all ties."""
    out = np.full((pos_a.shape[0], 2), -1)
    for s in range(len_a):
        gaps = [abs(int(pos_b[t]) - int(pos_a[s])) for t in range(len_b)]
        best = min(gaps)
        if exact and best > 0:
            continue  # b observes every latent step: a gap means the cap cut those frames
        nearest = [t for t in range(len_b) if gaps[t] == best]
        assert nearest == list(range(nearest[0], nearest[-1] + 1))  # contiguous
        out[s] = (nearest[0], nearest[-1] + 1)
    return out


def _relation(span, len_a, len_b):
    """Boolean (len_a, len_b) matrix of one sample's span array."""
    rel = np.zeros((len_a, len_b), bool)
    for s in range(len_a):
        if span[s, 0] >= 0:
            rel[s, span[s, 0] : span[s, 1]] = True
    return rel


@pytest.mark.parametrize("variant", ["aligned", "unaligned"])
def test_spans_shape_dtype_and_padding(variant, request):
    data = request.getfixturevalue(variant)
    for s, split in data.dataset.splits.items():
        assert set(split.spans) == {f"{a}_{b}" for a, b in PAIRS}
        for a, b in PAIRS:
            span = split.spans[f"{a}_{b}"]
            assert span.dtype == np.int64
            assert span.shape == (len(split), split.features[a].shape[1], 2)
            assert span is data.truth_spans(s, a, b)
            past = np.arange(span.shape[1])[None, :] >= split.lengths[a][:, None]
            assert np.all(span[past] == -1)


@pytest.mark.parametrize("variant", ["aligned", "unaligned"])
def test_every_valid_step_has_a_span_inside_the_valid_range(variant, request):
    data = request.getfixturevalue(variant)
    for split in data.dataset.splits.values():
        for a, b in PAIRS:
            span = split.spans[f"{a}_{b}"]
            valid = np.arange(span.shape[1])[None, :] < split.lengths[a][:, None]
            known = valid & (span[..., 0] >= 0)
            if variant == "aligned" or b == "text" or a != "text":
                assert np.array_equal(known, valid), (a, b)  # only cut words are unknown
            start, end = span[..., 0][known], span[..., 1][known]
            limit = np.broadcast_to(split.lengths[b][:, None], valid.shape)[known]
            assert np.all((0 <= start) & (start < end) & (end <= limit)), (a, b)


@pytest.mark.parametrize("variant", ["aligned", "unaligned"])
def test_spans_follow_the_rule_recomputed_by_a_loop(variant, request):
    data = request.getfixturevalue(variant)
    for s in ("train", "test"):
        split, warps = data.dataset.splits[s], data.warps[s]
        for a, b in PAIRS:
            exact = variant == "unaligned" and b in FRAMES
            for i in range(0, len(split), 3):  # every third sample
                la, lb = split.lengths[a][i], split.lengths[b][i]
                expected = _loop_truth(warps[a][i], la, warps[b][i], lb, exact)
                np.testing.assert_array_equal(split.spans[f"{a}_{b}"][i], expected)


def test_aligned_spans_contain_the_true_offsets(aligned):
    for a, b in PAIRS:
        match = aligned.true_offsets("train", a, b) + np.arange(30)[None, :]  # (N, L)
        span = aligned.dataset.splits["train"].spans[f"{a}_{b}"]
        valid = span[..., 0] >= 0
        inside = (span[..., 0] <= match) & (match < span[..., 1])
        assert np.all(inside[valid])


def test_aligned_spans_are_mutual_where_latent_positions_coincide(aligned):
    # t in span_b_a[s] iff s in span_a_b[t] holds for every pair of steps that observe the
    # same latent step; nearest-step matches across a gap can hold one way only (e.g.
    # w_a = [0, 0, 2, 3], w_b = [0, 1, 1, 3]: a's step 2 is nearest to b's steps 1..3, but b's
    # step 3 has a's step 3 at distance 0), so the full relation is not symmetric.
    split, warps = aligned.dataset.splits["train"], aligned.warps["train"]
    one_way = related = 0
    for a, b in [("text", "vision"), ("text", "audio"), ("vision", "audio")]:
        for i in range(len(split)):
            la, lb = split.lengths[a][i], split.lengths[b][i]
            ab = _relation(split.spans[f"{a}_{b}"][i], la, lb)
            ba = _relation(split.spans[f"{b}_{a}"][i], lb, la).T
            same = warps[a][i][:la, None] == warps[b][i][None, :lb]
            assert np.all(ab[same] & ba[same])
            assert np.array_equal(ab & same, ba & same)
            one_way += int((ab != ba).sum())
            related += int((ab | ba).sum())
    assert 0 < one_way < 0.5 * related  # ~30% with the default warps


def test_identity_warps_give_symmetric_one_step_spans():
    data = generate_synthetic(SyntheticConfig(**SMALL, warp_strength=0.0))
    split = data.dataset.splits["train"]
    steps = np.arange(50)[None, :]
    valid = steps < split.lengths["text"][:, None]
    for a, b in PAIRS:
        span = split.spans[f"{a}_{b}"]
        np.testing.assert_array_equal(
            span[..., 0][valid], np.broadcast_to(steps, valid.shape)[valid]
        )
        np.testing.assert_array_equal(span[..., 1][valid], (span[..., 0] + 1)[valid])


def test_unaligned_frame_spans_hold_one_way_and_vision_audio_both_ways(unaligned):
    split = unaligned.dataset.splits["train"]
    for frames in FRAMES:
        for i in range(len(split)):
            lt, lf = split.lengths["text"][i], split.lengths[frames][i]
            words = _relation(split.spans[f"text_{frames}"][i], lt, lf)  # word -> frames
            back = _relation(split.spans[f"{frames}_text"][i], lf, lt).T
            # a word's frames all name the word; frames of latent steps no word observes
            # name the nearest words, which do not list them
            assert np.all(back[words])
    for i in range(len(split)):
        lf = split.lengths["audio"][i]
        va = _relation(split.spans["vision_audio"][i], lf, lf)
        av = _relation(split.spans["audio_vision"][i], lf, lf)
        np.testing.assert_array_equal(va, av.T)


def test_unaligned_lengths_durations_and_padding(unaligned):
    cfg = unaligned.config
    widest = max(s.features["audio"].shape[1] for s in unaligned.dataset.splits.values())
    longest = max(int(s.lengths["audio"].max()) for s in unaligned.dataset.splits.values())
    assert widest == longest <= cfg.max_frames
    cut = 0
    for s, split in unaligned.dataset.splits.items():
        words, d = split.lengths["text"], unaligned.durations[s]
        assert words.min() >= 10 and words.max() <= 50
        assert split.features["text"].shape[1] == 50
        valid = np.arange(50)[None, :] < words[:, None]
        assert d.shape == (len(split), 50) and d.dtype == np.int64
        assert d[valid].min() >= cfg.frames_min and d[valid].max() <= cfg.frames_max
        assert np.all(d[~valid] == 0)
        np.testing.assert_array_equal(split.lengths["audio"], np.minimum(d.sum(1), cfg.max_frames))
        np.testing.assert_array_equal(split.lengths["vision"], split.lengths["audio"])
        cut += int((d.sum(1) > cfg.max_frames).sum())
        for m in FRAMES:
            x = split.features[m]
            pad = np.arange(x.shape[1])[None, :] >= split.lengths[m][:, None]
            assert np.all(x[pad] == 0) and np.all(np.abs(x[~pad]).sum(-1) > 0)
            # frame f observes the latent step of the duration block it falls in
            tau = unaligned.warps[s][m]
            ends = np.cumsum(d, axis=1)  # (N, L)
            for i in range(0, len(split), 7):
                expected = np.repeat(np.arange(50), d[i])[: split.lengths[m][i]]
                np.testing.assert_array_equal(tau[i, : split.lengths[m][i]], expected)
                assert ends[i, words[i] - 1] == d[i].sum()
    assert cut > 0  # the cap was exercised


def test_words_cut_by_max_frames_have_no_span(unaligned):
    for s, split in unaligned.dataset.splits.items():
        d = unaligned.durations[s]
        starts = np.cumsum(d, axis=1) - d  # (N, L): first frame of each latent step
        kept = split.lengths["audio"][:, None]
        w_text = unaligned.warps[s]["text"]
        first = np.take_along_axis(starts, w_text, axis=1)  # (N, L_t)
        last = first + np.take_along_axis(d, w_text, axis=1)
        valid = np.arange(50)[None, :] < split.lengths["text"][:, None]
        span = split.spans["text_audio"]
        gone = valid & (first >= kept)
        assert np.all(span[gone] == -1)
        alive = valid & ~gone
        np.testing.assert_array_equal(span[..., 0][alive], first[alive])
        np.testing.assert_array_equal(span[..., 1][alive], np.minimum(last, kept)[alive])


def test_durations_follow_the_documented_formula(unaligned):
    from scipy.special import ndtr

    cfg = unaligned.config
    rng = np.random.default_rng([cfg.seed, 2])  # step 7's generator, first draws
    g = rng.standard_normal((cfg.shared_dim, 1))[:, 0]
    g = g / np.linalg.norm(g)
    events = np.concatenate([unaligned.latents[s]["events"] for s in ("train", "valid", "test")])
    eps = rng.standard_normal(events.shape[:2])
    z = np.sqrt(0.5) * (events.astype(np.float64) @ g) / np.sqrt(1 + cfg.event_scale**2)
    z = z + np.sqrt(0.5) * eps
    spread = cfg.frames_max - cfg.frames_min
    expected = cfg.frames_min + np.minimum(np.floor((spread + 1) * ndtr(z)), spread)
    d = np.concatenate([unaligned.durations[s] for s in ("train", "valid", "test")])
    valid = d > 0
    # events are stored as float32: a value on a step boundary may round across it
    assert np.mean(d[valid] != expected[valid]) < 1e-3


def test_events_explain_about_half_of_the_durations():
    from sklearn.linear_model import LinearRegression

    data = generate_synthetic(SyntheticConfig(n_train=600, n_valid=2, n_test=2, unaligned=True))
    d = data.durations["train"]
    valid = d > 0
    events = data.latents["train"]["events"][valid]
    r2 = LinearRegression().fit(events, d[valid]).score(events, d[valid])
    assert 0.4 < r2 < 0.55  # 0.48 by construction (module docstring, step 7)
    assert abs(d[valid].mean() - 11.0) < 0.3 and d[valid].min() == 3 and d[valid].max() == 19


def test_frame_level_unique_parts_are_as_smooth_per_word():
    # corr(u[t], u[t + k]) = (1 + rho**k) / 2 for a unit level plus a unit AR(1): one word
    # apart in the aligned variant, one mean duration (11 frames) apart on the frame clock
    def lag_corr(u, lengths, lag):
        x, y = u[:, :-lag], u[:, lag:]
        ok = (np.arange(u.shape[1] - lag)[None, :] + lag) < lengths[:, None]
        return np.corrcoef(x[ok].ravel(), y[ok].ravel())[0, 1]

    cfg = dict(n_train=400, n_valid=2, n_test=2)
    aligned = generate_synthetic(SyntheticConfig(**cfg))
    framed = generate_synthetic(SyntheticConfig(**cfg, unaligned=True))
    words = lag_corr(
        aligned.latents["train"]["unique/audio"],
        aligned.dataset.splits["train"].lengths["audio"],
        1,
    )
    frames = lag_corr(
        framed.latents["train"]["unique/audio"], framed.dataset.splits["train"].lengths["audio"], 11
    )
    assert words == pytest.approx(0.85, abs=0.03)
    assert frames == pytest.approx(words, abs=0.03)
    one_frame = lag_corr(
        framed.latents["train"]["unique/audio"], framed.dataset.splits["train"].lengths["audio"], 1
    )
    assert one_frame > 0.95  # frames are far smoother than words


def test_unaligned_text_is_the_aligned_text_and_labels_are_comparable():
    cfg = dict(n_train=800, n_valid=5, n_test=5, seed=2)
    a = make_synthetic(SyntheticConfig(**cfg)).splits["train"]
    u = make_synthetic(SyntheticConfig(**cfg, unaligned=True)).splits["train"]
    np.testing.assert_array_equal(a.features["text"], u.features["text"])
    np.testing.assert_array_equal(a.lengths["text"], u.lengths["text"])
    assert not np.array_equal(a.labels, u.labels)
    assert u.labels.std() == pytest.approx(a.labels.std(), abs=0.15)
    assert 0 < np.mean(u.labels == 0) < 0.2


def test_unaligned_same_seed_same_data_other_seed_other_data():
    first = make_synthetic(SyntheticConfig(**SMALL, unaligned=True, seed=5))
    again = make_synthetic(SyntheticConfig(**SMALL, unaligned=True, seed=5))
    other = make_synthetic(SyntheticConfig(**SMALL, unaligned=True, seed=6))
    for s in ("train", "valid", "test"):
        for m in SYNTHETIC_MODALITIES:
            np.testing.assert_array_equal(first.splits[s].features[m], again.splits[s].features[m])
            np.testing.assert_array_equal(first.splits[s].lengths[m], again.splits[s].lengths[m])
        for key, span in first.splits[s].spans.items():
            np.testing.assert_array_equal(span, again.splits[s].spans[key])
        np.testing.assert_array_equal(first.splits[s].labels, again.splits[s].labels)
    assert not np.array_equal(
        first.splits["train"].lengths["audio"], other.splits["train"].lengths["audio"]
    )


def test_unaligned_with_the_privileged_part():
    data = generate_synthetic(
        SyntheticConfig(**SMALL, unaligned=True, info_privileged=1.0, max_length=20)
    )
    split, latents = data.dataset.splits["train"], data.latents["train"]
    frames = split.features["audio"].shape[1]
    assert latents["privileged/audio"].shape[1] == 20  # latent time
    assert latents["carrier/audio"].shape[1] == frames  # the frame's own time
    assert latents["view/text/audio"].shape[1] == frames
    pad = np.arange(frames)[None, :] >= split.lengths["audio"][:, None]
    assert np.all(latents["carrier/audio"][pad] == 0)
    assert set(np.unique(latents["carrier/audio"][~pad])) == {-1.0, 1.0}


def test_unaligned_knobs_parse_and_validate():
    assert DataSpec.parse(UNALIGNED_PRESET).synthetic_config().unaligned is True
    for text, value in [("1", True), ("true", True), ("0", False), ("false", False)]:
        assert DataSpec.parse(f"synthetic:unaligned={text}").synthetic_config().unaligned is value
    cfg = DataSpec.parse("synthetic:unaligned=1,frames_min=2,frames_max=4,max_frames=90")
    assert cfg.synthetic_config().max_frames == 90
    with pytest.raises(ConfigError, match="`unaligned` must be true or false"):
        DataSpec.parse("synthetic:unaligned=2").synthetic_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(frames_min=0), r"`frames_min` must be an integer >= 1; got 0\."),
        (dict(frames_min=5, frames_max=4), r"`frames_max` must be an integer >= frames_min=5"),
        (dict(max_frames=0), r"`max_frames` must be an integer >= 1"),
        (dict(unaligned=2), r"`unaligned` must be true or false \(1 or 0\); got 2\."),
    ],
)
def test_bad_unaligned_knobs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SyntheticConfig(**kwargs).validate()


def test_budget_and_offsets_say_they_do_not_apply(unaligned):
    with pytest.raises(ConfigError, match="does not apply to the unaligned variant"):
        information_budget(unaligned.config, n_samples=100)
    with pytest.raises(ConfigError, match="different clocks .* use truth_spans"):
        unaligned.true_offsets("train", "text", "audio")
    offsets = unaligned.true_offsets("train", "vision", "audio")  # one clock: allowed
    assert offsets.shape == unaligned.warps["train"]["vision"].shape
    with pytest.raises(ConfigError, match="`b` must be one of"):
        unaligned.truth_spans("train", "text", "text")
