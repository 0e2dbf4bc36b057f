import csv
import json

import numpy as np
import pytest
import torch

from mmalign.cli import main
from mmalign.data.spec import load_dataset
from mmalign.runs import RunResult, load_run, run
from mmalign.validation import ConfigError

# tiny runs fall below the linear sanity floor; that warning is tested in tests/data
pytestmark = pytest.mark.filterwarnings("ignore::mmalign.data.checks.DataQualityWarning")

TINY = "synthetic:n_train=96,n_valid=48,n_test=48,min_length=5,max_length=12"
TINY_CLS = TINY + ",task=classification"


def test_run_writes_a_complete_run_folder(tmp_path, tiny_config):
    result = run(tiny_config(), tmp_path / "run", log=lambda s: None)
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
    assert metrics == json.loads(result.to_json())  # metrics.json is the RunResult
    assert RunResult.load(tmp_path / "run").settings == result.settings
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
    r1 = run(tiny_config(), tmp_path / "a", log=lambda s: None)
    r2 = run(tiny_config(), tmp_path / "b", log=lambda s: None)
    r3 = run(tiny_config(seed=1), tmp_path / "c", log=lambda s: None)
    assert r1.settings["A"].test == r2.settings["A"].test
    assert r1.settings["B"].test == r2.settings["B"].test
    assert r1.settings["A"].test != r3.settings["A"].test


def test_loaded_run_reproduces_saved_predictions_and_imputes(tmp_path, tiny_config):
    result = run(tiny_config(), tmp_path / "run", log=lambda s: None)
    trained = load_run(result.run_dir, "A")
    assert trained.meta.source_dim == result.meta.source_dim
    test = load_dataset(TINY).splits["test"]
    outputs = trained.predict(test)
    saved = [
        float(r["prediction"])
        for r in csv.DictReader(open(result.run_dir / "predictions.csv"))
        if r["setting"] == "A"
    ]
    np.testing.assert_allclose(outputs[:, 0], saved, rtol=1e-5, atol=1e-5)
    z, mask = trained.impute(test.features["text"][:5], test.lengths["text"][:5])
    assert z.shape == (5, test.features["text"].shape[1], 8) and mask.shape == (
        5,
        test.features["text"].shape[1],
    )
    assert torch.isfinite(z).all()
    with pytest.raises(ConfigError, match="`source` must have shape"):
        trained.impute(np.zeros((2, 3, 7)), [1, 2])


def test_classification_run_and_ub_reports_both_settings(tmp_path, tiny_config):
    m = run(tiny_config(data=TINY_CLS), tmp_path / "cls", log=lambda s: None)
    assert set(m.settings["A"].test) >= {"acc", "f1_weighted", "f1_macro"}
    ub = run(tiny_config(method="ub"), tmp_path / "ub", log=lambda s: None)
    assert ub.settings["A"] == ub.settings["B"] and ub.meta.n_missing == 0


def test_lb_ignores_the_victim_entirely(tmp_path, tiny_config):
    m = run(tiny_config(method="lb"), tmp_path / "lb", log=lambda s: None)
    # the source-only model predicts the same with or without the victim
    trained = load_run(tmp_path / "lb", "B")
    test = load_dataset(TINY).splits["test"]
    np.testing.assert_allclose(
        trained.predict(test), trained.predict(test, np.ones(len(test), bool)), atol=1e-6
    )
    assert np.isfinite(m.settings["A"].test["mae"])


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
            "--no-progress",
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
    assert list(rows[0])[0] == "setting" and all(r["setting"] == "A" for r in rows)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "--data", TINY, "--pair", "t:x"], "modality"),
        (["run", "--data", TINY, "--pair", "t:t"], "two different modalities"),
        (["run", "--data", TINY, "--method", "mfn"], "method` must be one of"),
        (["run", "--data", "synthetic:bogus=1"], "unknown synthetic knob"),
        (["run", "--data", TINY, "--p", "2"], "`p` must be in"),
        (["run", "--data", TINY, "--method", "lb", "--window", "2"], "`window` does not apply"),
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
    straight = run(tiny_config(epochs=4, patience=10), tmp_path / "straight", log=lambda s: None)
    run(tiny_config(epochs=2, patience=10), tmp_path / "cut", log=lambda s: None)
    assert (tmp_path / "cut" / "resume.pt").is_file()
    resumed = run(
        tiny_config(epochs=4, patience=10), tmp_path / "cut", log=lambda s: None, resume=True
    )
    for setting in ("A", "B"):
        assert resumed.settings[setting].test == straight.settings[setting].test
        assert resumed.settings[setting].best_epoch == straight.settings[setting].best_epoch
    history = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]


def test_resume_refuses_a_different_run_identity(tmp_path, tiny_config):
    run(tiny_config(epochs=1), tmp_path / "r", log=lambda s: None)
    with pytest.raises(ConfigError, match="`seed` must match the run being resumed"):
        run(tiny_config(epochs=2, seed=3), tmp_path / "r", log=lambda s: None, resume=True)
    with pytest.raises(ConfigError, match="resume.pt"):
        run(tiny_config(epochs=2), tmp_path / "nothing", log=lambda s: None, resume=True)
    with pytest.raises(ConfigError, match="already holds a run"):  # never overwrites a run
        run(tiny_config(epochs=2), tmp_path / "r", log=lambda s: None)


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
        "--no-progress",
    ]
    assert main(["run", *base, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["run", "--resume", str(out), "--epochs", "2"]) == 0
    assert "resumed after epoch 2" in (out / "train.log").read_text()
