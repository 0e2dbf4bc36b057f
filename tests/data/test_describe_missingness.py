import numpy as np
import pytest

from mmalign.cli import main
from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.data.describe import (
    Missingness,
    describe,
    describe_missingness,
    missingness_table,
    modality_missingness,
    zero_runs,
    zero_steps,
)
from mmalign.data.formats import save_native
from mmalign.validation import ConfigError

# audio, one row per sample: its valid steps (a step is zero when both features are 0);
# padded to L=8, so zero padding follows every sample
AUDIO_STEPS = [
    [[1, 1], [0, 0], [0, 0], [0, 0], [0, 0], [0, 3]],  # run of 4 inside: counted at 3
    [[1, 0], [0, 0], [0, 0], [2, 2], [1, 1]],  # run of 2: not counted at 3
    [[0, 0], [0, 0], [0, 0], [0, 0]],  # all zero
    [],  # length 0
    [[1, 1], [1, 1], [0, 0], [0, 0]],  # trailing run of 2, then 4 padding steps: still 2
]


def _audio():
    x = np.zeros((len(AUDIO_STEPS), 8, 2), np.float32)
    for i, steps in enumerate(AUDIO_STEPS):
        x[i, : len(steps)] = np.array(steps, np.float32).reshape(-1, 2)  # (len, 2)
    return x, np.array([len(s) for s in AUDIO_STEPS], np.int64)


def _split():
    audio, audio_lengths = _audio()
    n = len(audio_lengths)
    return Split(
        features={"text": np.ones((n, 3, 2), np.float32), "audio": audio},
        lengths={"text": np.full(n, 3, np.int64), "audio": audio_lengths},
        labels=np.linspace(-1, 1, n).astype(np.float32),
        ids=np.array([str(i) for i in range(n)], dtype=object),
    )


def _dataset():
    return MultimodalDataset(
        splits={s: _split() for s in ("train", "valid", "test")}, task="regression", name="toy"
    )


def test_hand_built_audio_at_the_default_threshold():
    audio, lengths = _audio()
    got = modality_missingness("train", "audio", audio, lengths)
    assert got == Missingness(
        split="train",
        modality="audio",
        n_samples=5,
        n_zero_length=1,
        n_all_zero=1,
        n_with_zero_run=1,
        n_run_steps=4,
        n_searched_steps=6 + 5 + 4,
        longest_run=4,
        min_run=3,
    )
    assert got.share_zero_length == got.share_all_zero == got.share_with_zero_run == 0.2
    assert got.share_run_steps == pytest.approx(4 / 15)


def test_threshold_decides_which_runs_count():
    audio, lengths = _audio()
    at_2 = modality_missingness("train", "audio", audio, lengths, min_run=2)
    assert (at_2.n_with_zero_run, at_2.n_run_steps, at_2.longest_run) == (3, 4 + 2 + 2, 4)
    at_5 = modality_missingness("train", "audio", audio, lengths, min_run=5)
    assert (at_5.n_with_zero_run, at_5.n_run_steps, at_5.longest_run) == (0, 0, 0)
    assert (at_5.n_all_zero, at_5.n_zero_length) == (1, 1)  # independent of the threshold


def test_padding_is_never_counted():
    audio, lengths = _audio()
    zero = zero_steps(audio, lengths)
    assert not zero[np.arange(8) >= lengths[:, None]].any()
    assert zero[4].tolist() == [False, False, True, True, False, False, False, False]
    assert zero.shape == (5, 8) and not zero[3].any()


def test_a_step_is_zero_only_when_every_feature_is_and_nan_counts_as_data():
    x = np.array([[[0, 0], [0, 1], [np.nan, 0], [-0.0, 0]]], np.float32)
    assert zero_steps(x, np.array([4])).tolist() == [[True, False, False, True]]


def test_zero_runs_rows_and_lengths():
    rows, run_lengths = zero_runs(np.array([[0, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0]], bool))
    assert rows.tolist() == [0, 1, 1] and run_lengths.tolist() == [3, 1, 1]


def _reference(x, lengths, min_run):
    """Per-sample loop over steps: the oracle for the vectorised counts."""
    empty = all_zero = with_run = run_steps = searched = longest = 0
    for seq, n in zip(x, lengths):
        zero = [not seq[t].any() for t in range(n)]
        if n == 0:
            empty += 1
            continue
        if all(zero):
            all_zero += 1
            continue
        searched += n
        runs, current = [], 0
        for z in [*zero, False]:
            if z:
                current += 1
            elif current:
                runs.append(current)
                current = 0
        runs = [r for r in runs if r >= min_run]
        with_run += bool(runs)
        run_steps += sum(runs)
        longest = max([longest, *runs])
    return empty, all_zero, with_run, run_steps, searched, longest


@pytest.mark.parametrize("min_run", [1, 2, 3, 6])
def test_agrees_with_a_per_sample_loop(min_run):
    rng = np.random.default_rng(min_run)
    x = rng.normal(size=(60, 20, 3)).astype(np.float32)
    x[rng.random((60, 20)) < 0.5] = 0  # (N, L) mask broadcast over D
    x[rng.random((60, 20, 3)) < 0.2] = 0  # single zero features leave the step non-zero
    x[:5] = 0
    lengths = rng.integers(0, 21, 60)
    x[np.arange(20) >= lengths[:, None]] = 0
    got = modality_missingness("train", "audio", x, lengths, min_run=min_run)
    fields = (
        got.n_zero_length,
        got.n_all_zero,
        got.n_with_zero_run,
        got.n_run_steps,
        got.n_searched_steps,
        got.longest_run,
    )
    assert fields == _reference(x, lengths, min_run)


def test_describe_missingness_covers_every_split_and_modality_in_order():
    rows = describe_missingness(_dataset(), min_run=2)
    assert [(r.split, r.modality) for r in rows] == [
        (s, m) for s in ("train", "valid", "test") for m in ("text", "audio")
    ]
    assert all(r.min_run == 2 for r in rows)
    text = rows[0]
    assert (text.n_zero_length, text.n_all_zero, text.n_with_zero_run) == (0, 0, 0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_min_run_must_be_a_positive_integer(bad):
    with pytest.raises(ConfigError, match=r"`min_run` must be an integer >= 1; got "):
        describe_missingness(_dataset(), min_run=bad)


def _row(text, split, modality):
    return next(line.split() for line in text.splitlines() if line.split()[:2] == [split, modality])


def test_the_table_in_describe():
    text = describe(_dataset())
    assert "missingness in the file (zero run: >= 3 consecutive all-zero valid steps" in text
    assert "length 0      all zero      with run      run steps  longest" in text
    assert _row(text, "valid", "audio") == [
        "valid",
        "audio",
        *("1", "(20.0%)") * 3,
        "26.7%",
        "4",
    ]
    assert _row(text, "test", "text") == ["test", "text", *("0", "(0.0%)") * 3, "0.0%", "0"]
    assert _row(describe(_dataset(), min_run=2), "train", "audio")[6:] == [
        "3",
        "(60.0%)",
        "53.3%",
        "4",
    ]
    assert missingness_table([]).startswith("missingness in the file")


def test_cli_describe_prints_the_table(tmp_path, capsys):
    folder = save_native(_dataset(), tmp_path / "toy")
    assert main(["data", "describe", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "missingness in the file" in out
    assert _row(out, "train", "audio") == [
        "train",
        "audio",
        *("1", "(20.0%)") * 3,
        "26.7%",
        "4",
    ]
