"""One run end to end through ``mmalign.run``: run folder rules, live logs, warnings, results."""

import json
import warnings

import numpy as np
import pytest

import mmalign
from mmalign.cli import main
from mmalign.data.checks import DataQualityWarning
from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.runs import RunResult, run_spec
from mmalign.validation import ConfigError

TINY = "synthetic:n_train=64,n_valid=24,n_test=24,min_length=5,max_length=10"
SMALL = dict(
    data=TINY,
    epochs=1,
    warmup_epochs=1,
    batch_size=16,
    d_model=8,
    n_heads=2,
    window=2,
    progress=False,
    p=0.5,
    threads=1,
)
QUIET = dict(log=lambda s: None)


def _run(out, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return mmalign.run(out=out, **QUIET, **{**SMALL, **options})


def test_result_is_typed_and_is_metrics_json(tmp_path):
    result = _run(tmp_path / "r")
    assert set(result.settings) == {"A", "B"}
    assert result.meta.method == "mm-align" and result.meta.torch_threads == 1
    assert result.meta.epochs_run == 2
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved == json.loads(result.to_json())
    assert RunResult.load(tmp_path / "r").settings == result.settings
    for name in ("config.yaml", "split.json", "model.json", "train.log", "history.json"):
        assert (tmp_path / "r" / name).is_file()
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


def test_a_reused_out_never_overwrites_another_run(tmp_path):
    _run(tmp_path / "r", method="lb")
    before = (tmp_path / "r" / "metrics.json").read_text()
    with pytest.raises(ConfigError, match="already holds a run"):
        _run(tmp_path / "r", method="mfm")
    assert (tmp_path / "r" / "metrics.json").read_text() == before


def test_a_failed_start_leaves_no_folder(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="modality"):
        _run(tmp_path / "bad", pair="t:x")
    assert not (tmp_path / "bad").exists()

    def boom(*args, **kwargs):
        raise RuntimeError("failed in the first epoch")

    monkeypatch.setattr("mmalign.runs.fitting.fit", boom)
    with pytest.raises(RuntimeError, match="first epoch"):
        _run(tmp_path / "crash")
    assert not (tmp_path / "crash").exists()


def test_train_log_can_be_followed_while_the_run_goes(tmp_path):
    seen = []
    out = tmp_path / "r"

    def log(line):  # called as each line is logged: the file must already hold it
        if line.startswith("epoch"):
            seen.append(line in (out / "train.log").read_text())
            seen.append(len(json.loads((out / "history.json").read_text())))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        mmalign.run(out=out, log=log, **SMALL)
    # each epoch line is in train.log before the run goes on; history.json follows the epoch
    assert seen == [True, 0, True, 1]


def test_method_spelling_is_normalised_everywhere(tmp_path):
    result = _run(tmp_path / "r", method="Modal_Trans", epochs=1, warmup_epochs=0)
    assert result.meta.method == "modal-trans"
    assert "method: modal-trans" in (tmp_path / "r" / "config.yaml").read_text()


def _constant_vision(dataset: MultimodalDataset) -> MultimodalDataset:
    splits = {}
    for name, split in dataset.splits.items():
        features = dict(split.features)
        features["vision"] = np.ones_like(features["vision"])
        splits[name] = Split(features, split.lengths, split.labels, split.ids)
    return MultimodalDataset(
        splits=splits, task=dataset.task, n_classes=dataset.n_classes, name="c"
    )


def test_a_constant_victim_is_warned_logged_and_recorded(tmp_path):
    dataset = _constant_vision(mmalign.load_dataset(TINY))
    with pytest.warns(DataQualityWarning, match="constant"):
        result = mmalign.run(out=tmp_path / "r", dataset=dataset, **QUIET, **SMALL)
    assert any("constant" in w for w in result.warnings)
    assert "warning: modality 'vision' is constant" in (tmp_path / "r" / "train.log").read_text()


def test_a_window_narrower_than_two_victim_steps_of_source_frames_is_warned(tmp_path):
    data = "synthetic:unaligned=1,n_train=64,n_valid=24,n_test=24,min_length=5,max_length=8"
    options = {**SMALL, "data": data, "pair": "a:t", "warmup_epochs": 0}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        narrow = mmalign.run(out=tmp_path / "narrow", **QUIET, **options)
    assert any("Set --window" in str(w.message) for w in caught)  # issued, not only recorded
    assert any("one text step spans about" in w for w in narrow.warnings)
    wide = _run(tmp_path / "wide", **{**options, "window": 60})
    assert not any("--window" in w for w in wide.warnings)
    lb = _run(tmp_path / "lb", **{k: v for k, v in options.items() if k != "window"}, method="lb")
    assert not any("--window" in w for w in lb.warnings)


def test_window_is_refused_for_a_method_without_one(tmp_path, capsys):
    code = main(["run", "--method", "lb", "--window", "4", "--out", str(tmp_path / "r")])
    assert code == 2
    assert "`window` does not apply to method 'lb'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_run_spec_takes_threads_and_returns_the_metrics_dict(tmp_path):
    from mmalign.experiments import RunSpec

    config = {k: v for k, v in SMALL.items() if k not in ("data", "p", "threads", "progress")}
    spec = RunSpec(TINY, "lb", "text", "vision", 0.5, 0, config)
    out = run_spec(spec, tmp_path / "r", threads=1)
    assert out["meta"]["torch_threads"] == 1
    assert out == json.loads((tmp_path / "r" / "metrics.json").read_text())


def test_classification_probabilities(tmp_path):
    _run(tmp_path / "r", data=TINY + ",task=classification", method="lb")
    model = mmalign.load_run(tmp_path / "r")
    test = mmalign.load_dataset(TINY + ",task=classification").splits["test"]
    proba = model.predict_proba(test)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert (proba.argmax(1) == model.predict(test).argmax(1)).all()
    assert set(model.evaluate(test)) >= {"acc", "f1_weighted"}
    header = (tmp_path / "r" / "predictions.csv").read_text().splitlines()[0]
    assert header.startswith("setting,id,victim_present,label,prediction,prob_0")


def test_a_run_that_peaks_at_its_epoch_cap_warns_and_says_how_to_continue(tmp_path):
    # one epoch after warm-up: the only selectable epoch is the last one
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        result = mmalign.run(out=tmp_path / "r", **QUIET, **SMALL)
    assert any("epoch cap" in str(w.message) for w in caught)  # issued, not only recorded
    (found,) = [w for w in result.warnings if "epoch cap" in w]
    assert "setting A at epoch 2" in found and "--resume RUN_DIR --epochs" in found
    codes = dict(zip(result.warnings, result.warning_codes, strict=True))
    assert codes[found] == "epoch_cap"
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["warning_codes"] == list(result.warning_codes)
    assert RunResult.load(tmp_path / "r").warning_codes == result.warning_codes
    assert "warning: training reached its epoch cap" in (tmp_path / "r" / "train.log").read_text()
    # nothing learns, so the validation score never improves again: early stop, silent
    longer = _run(tmp_path / "long", epochs=6, patience=1, lr_main=1e-12, lr_fit=1e-12)
    assert longer.meta.epochs_run == 3
    assert not any("epoch cap" in w for w in longer.warnings)
