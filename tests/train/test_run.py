import csv
import json

import numpy as np
import pytest
import torch

from mmalign.api import load_run
from mmalign.cli import main
from mmalign.train.run import load_run_data, run_experiment
from mmalign.validation import ConfigError

TINY = "synthetic:n_train=96,n_valid=48,n_test=48,min_length=5,max_length=12"
TINY_CLS = TINY + ",task=classification"


def test_run_writes_a_complete_run_folder(tmp_path, tiny_config):
    run_experiment(tiny_config(), tmp_path / "run", log=lambda s: None)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {
        "config.yaml",
        "metrics.json",
        "predictions.csv",
        "checkpoint.pt",
        "train.log",
        "model.json",
        "split.json",
    } <= files
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for setting in ("A", "B"):
        assert set(metrics[setting]) >= {"valid", "test", "best_epoch"}
        assert np.isfinite(metrics[setting]["test"]["mae"])
    rows = list(csv.DictReader(open(tmp_path / "run" / "predictions.csv")))
    assert len(rows) == 2 * 48
    a_rows = [r for r in rows if r["setting"] == "A"]
    assert all(r["victim_present"] == "0" for r in a_rows)
    b_present = sum(r["victim_present"] == "1" for r in rows if r["setting"] == "B")
    assert b_present == int(np.floor(0.5 * 48 + 1e-9))
    assert metrics["meta"]["n_complete"] == 48 and metrics["meta"]["n_missing"] == 48
    assert {"source_only", "pair_A", "pair_B"} <= set(metrics["floor"])
    assert (
        metrics["floor"]["pair_B"]["test"]["mae"]
        <= metrics["floor"]["source_only"]["test"]["mae"] + 0.2
    )


def test_same_seed_same_result_different_seed_differs(tmp_path, tiny_config):
    m1 = run_experiment(tiny_config(), tmp_path / "a", log=lambda s: None).metrics
    m2 = run_experiment(tiny_config(), tmp_path / "b", log=lambda s: None).metrics
    m3 = run_experiment(tiny_config(seed=1), tmp_path / "c", log=lambda s: None).metrics
    assert m1["A"]["test"] == m2["A"]["test"] and m1["B"]["test"] == m2["B"]["test"]
    assert m1["A"]["test"] != m3["A"]["test"]


def test_loaded_run_reproduces_saved_predictions_and_imputes(tmp_path, tiny_config):
    result = run_experiment(tiny_config(), tmp_path / "run", log=lambda s: None)
    run = load_run(result.run_dir, "A")
    test = load_run_data(TINY).splits["test"]
    outputs = run.predict(test)
    saved = [
        float(r["prediction"])
        for r in csv.DictReader(open(result.run_dir / "predictions.csv"))
        if r["setting"] == "A"
    ]
    np.testing.assert_allclose(outputs[:, 0], saved, rtol=1e-5, atol=1e-5)
    z, mask = run.impute(test.features["text"][:5], test.lengths["text"][:5])
    assert z.shape == (5, test.features["text"].shape[1], 8) and mask.shape == (
        5,
        test.features["text"].shape[1],
    )
    assert torch.isfinite(z).all()
    with pytest.raises(ConfigError, match="`source` must have shape"):
        run.impute(np.zeros((2, 3, 7)), [1, 2])


def test_classification_run_and_ub_reports_both_settings(tmp_path, tiny_config):
    m = run_experiment(tiny_config(data=TINY_CLS), tmp_path / "cls", log=lambda s: None).metrics
    assert set(m["A"]["test"]) >= {"acc", "f1_weighted", "f1_macro"}
    ub = run_experiment(tiny_config(method="ub"), tmp_path / "ub", log=lambda s: None).metrics
    assert ub["A"] == ub["B"] and ub["meta"]["n_missing"] == 0


def test_lb_ignores_the_victim_entirely(tmp_path, tiny_config):
    m = run_experiment(tiny_config(method="lb"), tmp_path / "lb", log=lambda s: None).metrics
    # the source-only model predicts the same with or without the victim
    run = load_run(tmp_path / "lb", "B")
    test = load_run_data(TINY).splits["test"]
    np.testing.assert_allclose(
        run.predict(test), run.predict(test, np.ones(len(test), bool)), atol=1e-6
    )
    assert np.isfinite(m["A"]["test"]["mae"])


def test_cli_run_and_predict(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "run",
            "--data",
            TINY,
            "--pair",
            "a:t",
            "--p",
            "0.5",
            "--epochs",
            "2",
            "--d-model",
            "8",
            "--n-heads",
            "2",
            "--window",
            "2",
            "--progress",
            "false",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "setting" in printed and "\nA " in printed and "\nB " in printed
    code = main(["predict", "--run", str(out), "--data", TINY, "--out", str(tmp_path / "p.csv")])
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == 48 and all(r["victim_present"] == "0" for r in rows)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "--data", TINY, "--pair", "t:x"], "modality"),
        (["run", "--data", TINY, "--pair", "t:t"], "two different modalities"),
        (["run", "--data", TINY, "--method", "mfn"], "method` must be one of"),
        (["run", "--data", "synthetic:bogus=1"], "unknown synthetic knob"),
        (["run", "--data", TINY, "--p", "2"], "`p` must be in"),
    ],
)
def test_cli_bad_options_exit_2_with_one_line(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mmalign: error:")
    import re

    assert re.search(match, err[0])


def test_resume_after_interruption_gives_the_uninterrupted_result(tmp_path, tiny_config):
    # patience high so that no early stop differs; 4 epochs straight vs 2 + resume to 4
    straight = run_experiment(
        tiny_config(epochs=4, patience=10), tmp_path / "straight", log=lambda s: None
    ).metrics
    run_experiment(tiny_config(epochs=2, patience=10), tmp_path / "cut", log=lambda s: None)
    assert (tmp_path / "cut" / "resume.pt").is_file()
    resumed = run_experiment(
        tiny_config(epochs=4, patience=10), tmp_path / "cut", log=lambda s: None, resume=True
    ).metrics
    for setting in ("A", "B"):
        assert resumed[setting]["test"] == straight[setting]["test"]
        assert resumed[setting]["best_epoch"] == straight[setting]["best_epoch"]
    history = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]


def test_resume_refuses_a_different_run_identity(tmp_path, tiny_config):
    run_experiment(tiny_config(epochs=1), tmp_path / "r", log=lambda s: None)
    with pytest.raises(ConfigError, match="`seed` must match the run being resumed"):
        run_experiment(
            tiny_config(epochs=2, seed=3), tmp_path / "r", log=lambda s: None, resume=True
        )
    with pytest.raises(ConfigError, match="resume.pt"):
        run_experiment(tiny_config(epochs=2), tmp_path / "nothing", log=lambda s: None, resume=True)


def test_cli_resume(tmp_path, capsys):
    out = tmp_path / "cli"
    base = [
        "--data",
        TINY,
        "--d-model",
        "8",
        "--n-heads",
        "2",
        "--window",
        "2",
        "--progress",
        "false",
    ]
    assert main(["run", *base, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["run", "--resume", str(out), "--epochs", "2"]) == 0
    assert "resumed after epoch 2" in (out / "train.log").read_text()
