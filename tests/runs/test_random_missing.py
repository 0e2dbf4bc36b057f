"""One run of the random-missing protocol end to end: folder, metrics per pattern, resume, errors."""

import csv
import json
import warnings

import numpy as np
import pytest

import mmalign
from mmalign.cli import main
from mmalign.data.checks import DataQualityWarning
from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.data.missingness import RandomMissingness, draw_missingness
from mmalign.experiments import RunSpec
from mmalign.runs import RunResult, run_spec
from mmalign.runs.random_missing import pattern_results
from mmalign.validation import ConfigError

TINY = "synthetic:n_train=64,n_valid=24,n_test=40,min_length=5,max_length=10"
SMALL = dict(
    data=TINY, epochs=1, warmup_epochs=0, batch_size=16, d_model=8, n_heads=2, n_layers=1,
    n_fusion_layers=1, progress=False, threads=1, missing_rate=0.3, frame_drop=0.2,
)  # fmt: skip


def _run(out, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return mmalign.run(out=out, log=lambda s: None, **{**SMALL, **options})


@pytest.mark.parametrize("method", ["lb", "mm-align"])
def test_metrics_json_holds_overall_and_per_pattern_test_metrics(tmp_path, method):
    result = (
        _run(tmp_path / "r", method=method, window=2)
        if method == "mm-align"
        else _run(tmp_path / "r", method=method)
    )
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved == json.loads(result.to_json())
    assert set(saved) == {"random", "test", "floor", "meta", "warnings", "warning_codes"}
    assert saved["meta"]["protocol"] == "random" and saved["meta"]["missing_rate"] == 0.3
    assert saved["test"]["overall"]["n"] == 40
    draw = draw_missingness(mmalign.load_dataset(TINY), 0.3, 0.2, 3.0, 0)
    names, counts = np.unique(draw.splits["test"].patterns(), return_counts=True)
    assert {k: v["n"] for k, v in saved["test"]["patterns"].items()} == dict(
        zip(names.tolist(), counts.tolist())
    )
    assert saved["test"]["overall"]["mae"] == saved["random"]["test"]["mae"]
    assert "random" in saved["floor"] and "mae" in saved["floor"]["random"]["test"]
    loaded = RunResult.load(tmp_path / "r")
    assert loaded.patterns == result.patterns and loaded.settings == result.settings
    rows = list(csv.DictReader(open(tmp_path / "r" / "predictions.csv")))
    assert [r["pattern"] for r in rows] == draw.splits["test"].patterns().tolist()
    kept = RandomMissingness.load(tmp_path / "r" / "missingness.json")
    for split in ("train", "valid", "test"):
        assert np.array_equal(kept.splits[split].present, draw.splits[split].present)
        for m, dropped in draw.splits[split].dropped.items():
            assert np.array_equal(kept.splits[split].dropped[m], dropped)


def test_upper_bound_reports_the_same_patterns_on_complete_inputs(tmp_path):
    lb, ub = _run(tmp_path / "lb", method="lb"), _run(tmp_path / "ub", method="ub")
    assert {k: r.n for k, r in ub.patterns.items()} == {k: r.n for k, r in lb.patterns.items()}
    log = (tmp_path / "ub" / "train.log").read_text()
    assert "training patterns tva 64" in log  # the upper bound sees every modality


def test_pattern_results_match_metrics_on_each_subset():
    outputs = np.array([[0.0], [1.0], [2.0], [3.0]])
    labels = np.array([0.0, 2.0, 2.0, 0.0])
    patterns = np.array(["t", "tv", "t", "tv"], dtype=object)
    out = pattern_results(outputs, labels, patterns, "regression")
    assert list(out) == ["overall", "t", "tv"]
    assert out["t"].n == 2 and out["t"].metrics["mae"] == 0.0
    assert out["tv"].metrics["mae"] == 2.0 and out["overall"].metrics["mae"] == 1.0
    patterns = np.array(["a", "tv", "t", "ta"], dtype=object)
    ordered = pattern_results(outputs, labels, patterns, "regression", ["t", "v", "a", "tv", "ta"])
    assert list(ordered) == ["overall", "t", "a", "tv", "ta"]


def test_a_nan_poisoned_dataset_trains_and_tests_to_finite_numbers(tmp_path):
    dataset = mmalign.load_dataset(TINY)
    draw = draw_missingness(dataset, 0.3, 0.2, 3.0, 0)
    splits = {}
    for name, split in dataset.splits.items():
        seen = draw.splits[name]
        features = {
            m: np.where(seen.valid_steps(split, m)[:, :, None], split.features[m], np.nan).astype(
                np.float32
            )
            for m in split.modalities
        }
        splits[name] = Split(features, split.lengths, split.labels, split.ids)
    poisoned = MultimodalDataset(splits, dataset.task, name="poisoned")
    for method in ("lb", "mm-align"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            result = mmalign.run(
                out=tmp_path / method, dataset=poisoned, log=lambda s: None,
                **{**SMALL, "method": method, "standardize": False},
            )  # fmt: skip
        assert all(np.isfinite(r.metrics["mae"]) for r in result.patterns.values())


def test_resume_continues_a_random_missing_run(tmp_path):
    straight = _run(tmp_path / "straight", method="lb", epochs=3, patience=10)
    _run(tmp_path / "cut", method="lb", epochs=1, patience=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        resumed = mmalign.run(
            out=tmp_path / "cut", resume=True, log=lambda s: None,
            **{**SMALL, "method": "lb", "epochs": 3, "patience": 10},
        )  # fmt: skip
    assert resumed.patterns == straight.patterns
    with pytest.raises(ConfigError, match="`missing_rate` must match"):
        mmalign.run(
            out=tmp_path / "cut", resume=True, log=lambda s: None,
            **{**SMALL, "method": "lb", "epochs": 4, "missing_rate": 0.5},
        )  # fmt: skip


def test_run_spec_runs_the_random_protocol_without_a_pair(tmp_path):
    config = {k: v for k, v in SMALL.items() if k not in ("data", "threads", "progress")}
    spec = RunSpec(TINY, "lb", None, None, None, 0, config)  # no pair, no p
    out = run_spec(spec, tmp_path / "r", threads=1)
    assert out["meta"]["protocol"] == "random" and out["meta"]["p"] == 0.0
    assert "patterns" in out["test"]


@pytest.mark.parametrize(
    "argv, match",
    [
        (
            ["--missing-rate", "0.3", "--pair", "t:a"],
            "`pair` cannot be combined with `missing_rate`",
        ),
        (["--missing-rate", "0.3", "--p", "0.5"], "`p` cannot be combined with `missing_rate`"),
        (["--frame-drop", "0.2"], "`frame_drop` needs the random-missing protocol"),
        (["--missing-rate", "0.3", "--method", "modal-trans"], "does not take the random-missing"),
        (["--missing-rate", "1"], r"`missing_rate` must be in \[0, 1\)"),
        (["--missing-rate", "0.3", "--frame-drop", "0.8"], "`frame_drop` must be <="),
        (["--missing-rate", "0.3", "--drop-burst", "0.5"], "`drop_burst` must be >= 1"),
        (["--method", "lb", "--lambda-imputed", "1"], "lambda_imputed.*mm-align"),
        (["--method", "ub", "--victim-stream-dropout", "0.3"], "victim_stream_dropout.*mm-align"),
    ],
)
def test_cli_refuses_bad_protocol_options_in_one_line(argv, match, capsys, tmp_path):
    assert main(["run", "--data", TINY, "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mmalign: error:")
    import re

    assert re.search(match, err[0]), err[0]
    assert not (tmp_path / "r").exists()


def test_cli_prints_the_pattern_table(tmp_path, capsys):
    argv = ["run", "--data", TINY, "--out", str(tmp_path / "r"), "--method", "lb"]
    argv += ["--missing-rate", "0.3", "--frame-drop", "0.2", "--epochs", "1", "--threads", "1"]
    argv += ["--warmup-epochs", "0", "--d-model", "8", "--n-heads", "2", "--no-progress"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        assert main(argv) == 0
    out = capsys.readouterr().out
    assert "random missing rate=0.3, frame_drop=0.2" in out
    lines = out.splitlines()
    assert lines[1].split()[:2] == ["pattern", "n"]
    assert any(line.split()[:2] == ["overall", "40"] for line in lines)


def test_load_run_predicts_what_the_run_predicted_and_reads_absence_from_lengths(tmp_path):
    _run(tmp_path / "r", method="mm-align", window=2)
    model = mmalign.load_run(tmp_path / "r")
    assert model.setting == "random" and model.meta.protocol == "random"
    dataset = mmalign.load_dataset(TINY)
    test = dataset.splits["test"]
    drawn = RandomMissingness.load(tmp_path / "r" / "missingness.json").splits["test"]
    rows = list(csv.DictReader(open(tmp_path / "r" / "predictions.csv")))
    stored = np.array([float(r["prediction"]) for r in rows])
    np.testing.assert_allclose(model.predict(test, drawn)[:, 0], stored, rtol=1e-5, atol=1e-6)
    # new data: a modality of length 0 is absent; the audio of the first 5 samples is gone
    lengths = {m: v.copy() for m, v in test.lengths.items()}
    lengths["audio"][:5] = 0
    features = {m: v.copy() for m, v in test.features.items()}
    features["audio"][:5] = np.nan  # never read
    cut = Split(features, lengths, test.labels, test.ids)
    results = model.evaluate_patterns(cut)
    assert results["tv"].n == 5 and results["tva"].n == len(test) - 5
    assert np.isfinite(model.predict(cut)).all()
    with pytest.raises(ConfigError, match="must be 'random'"):
        mmalign.load_run(tmp_path / "r", setting="A")


def test_cli_predict_of_a_random_run_writes_patterns(tmp_path, capsys):
    _run(tmp_path / "r", method="lb")
    out = tmp_path / "p.csv"
    assert main(["predict", "--run", str(tmp_path / "r"), "--out", str(out)]) == 0
    assert "the run's own draw" in capsys.readouterr().err
    rows = list(csv.DictReader(open(out)))
    stored = list(csv.DictReader(open(tmp_path / "r" / "predictions.csv")))
    assert [r["pattern"] for r in rows] == [r["pattern"] for r in stored]
    assert np.allclose(
        [float(r["prediction"]) for r in rows], [float(r["prediction"]) for r in stored]
    )


def test_score_alignment_scores_every_pair_of_a_random_run(tmp_path, capsys):
    _run(tmp_path / "r", method="mm-align", window=2)
    report = tmp_path / "score.json"
    assert main(["score-alignment", "--run", str(tmp_path / "r"), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "text -> vision: vision steps to text steps on 40 test samples" in out
    scores = json.loads(report.read_text())
    pairs = [f"{s}>{v}" for v in ("text", "vision", "audio") for s in ("text", "vision", "audio")]
    assert list(scores) == [p for p in pairs if p.split(">")[0] != p.split(">")[1]]
    # the diagonal guess on aligned data is step j itself: recomputed from the spans
    test = mmalign.load_dataset(TINY).splits["test"]
    for key, value in scores.items():
        source, victim = key.split(">")
        spans, n = test.spans[f"{victim}_{source}"], test.lengths[victim]
        hits = total = 0
        for i in range(len(n)):
            for j in range(n[i]):
                start, end = spans[i, j]
                if start >= 0:
                    hits += start <= j < end
                    total += 1
        assert value["diagonal"]["mass_on_truth"] == pytest.approx(hits / total), key
        assert 0 <= value["ot"]["mass_on_truth"] <= 1 and 0 <= value["fitter"]["mass_on_truth"] <= 1


def test_plot_alignment_says_it_takes_pair_runs(tmp_path, capsys):
    _run(tmp_path / "r", method="mm-align", window=2)
    assert main(["plot-alignment", str(tmp_path / "r"), "--out", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert "random-missing run" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["ablate", "--pairs", "t:v", "--ps", "0.1", "--seeds", "1"],
        ["sweep-window", "--pairs", "t:v", "--windows", "1,2"],
    ],
)
def test_paper_analyses_refuse_a_missing_rate_in_one_line(argv, capsys, tmp_path):
    store = ["--store", str(tmp_path / "s.sqlite")] if argv[0] == "ablate" else []
    out = ["--out", str(tmp_path / "o")] if argv[0] == "sweep-window" else []
    code = main([*argv, "--data", TINY, "--set", "missing_rate=0.3", *store, *out])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "take the pair protocol only" in err[0]


def test_each_ordered_pair_with_a_finer_source_warns_about_a_narrow_window(tmp_path):
    data = "synthetic:unaligned=1,n_train=64,n_valid=24,n_test=40,min_length=5,max_length=8"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        narrow = mmalign.run(
            out=tmp_path / "narrow", log=lambda s: None,
            **{**SMALL, "data": data, "method": "mm-align", "window": 2},
        )  # fmt: skip
    assert any("Set --window" in str(w.message) for w in caught)  # issued, not only recorded
    found = [w for w in narrow.warnings if "Set --window" in w]
    assert any("one text step spans about" in w and "audio steps" in w for w in found)
    assert not any(w.startswith("one audio step") for w in found)  # words -> frames: silent
    wide = _run(tmp_path / "wide", data=data, method="mm-align", window=200)
    assert not any("Set --window" in w for w in wide.warnings)


def test_a_random_missing_run_at_its_epoch_cap_warns(tmp_path):
    result = _run(tmp_path / "r", method="lb")  # one epoch: its best is its last
    (found,) = [w for w in result.warnings if "epoch cap" in w]
    assert "setting random at epoch 1" in found
