"""Checkpoint selection on the validation metric or on the validation loss."""

import json
import math

import numpy as np
import pytest
import torch

from mmalign.runs import run
from mmalign.train import selection_score, validation_metrics

pytestmark = pytest.mark.filterwarnings("ignore::mmalign.data.checks.DataQualityWarning")

TINY_CLS = (
    "synthetic:n_train=96,n_valid=48,n_test=48,min_length=5,max_length=12,task=classification"
)


def test_validation_metrics_add_the_task_loss():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    m = validation_metrics(logits, torch.tensor([0, 1]), "classification")
    assert m["loss"] == pytest.approx(1.5 * math.log(2.0), rel=1e-6)  # (ln 2 + ln 4) / 2
    assert m["acc"] == 0.5
    m = validation_metrics(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0]), "regression")
    assert m["loss"] == pytest.approx(2.5) and m["mae"] == pytest.approx(1.5)


def test_selection_score_reads_the_chosen_quantity():
    metrics = {"acc": 0.5, "f1_weighted": 0.4, "f1_macro": 0.3, "loss": 1.7}
    assert selection_score(metrics, "classification", "metric") == -0.4
    assert selection_score(metrics, "classification", "loss") == 1.7
    assert selection_score(metrics, "classification") == 1.7  # auto: the loss for classes
    assert selection_score({"mae": 0.8, "loss": 1.1}, "regression", "loss") == 1.1
    assert selection_score({"mae": 0.8, "loss": 1.1}, "regression") == 0.8  # auto: MAE
    assert selection_score({**metrics, "loss": float("nan")}, "classification", "loss") == math.inf


def test_each_setting_keeps_the_epoch_its_selection_ranks_best(tmp_path, tiny_config):
    best = {}
    for selection in ("metric", "loss", "auto"):
        config = tiny_config(data=TINY_CLS, epochs=6, patience=10, selection=selection)
        result = run(config, tmp_path / selection, log=lambda s: None)
        history = json.loads((tmp_path / selection / "history.json").read_text())
        trained = [r for r in history if not r["warmup"]]
        for setting in ("A", "B"):
            if selection != "metric":  # auto is the loss for classes
                scores = [r[f"valid_{setting}"]["loss"] for r in trained]
            else:
                scores = [-r[f"valid_{setting}"]["f1_weighted"] for r in trained]
            expected = trained[int(np.argmin(scores))]["epoch"]  # first on ties
            assert result.settings[setting].best_epoch == expected
            assert result.settings[setting].valid["loss"] == pytest.approx(
                trained[int(np.argmin(scores))][f"valid_{setting}"]["loss"]
            )
        best[selection] = {s: result.settings[s].best_epoch for s in ("A", "B")}
    # on this run the two rules pick different epochs, so the option is not ignored
    assert best["metric"] != best["loss"] and best["auto"] == best["loss"]


def test_auto_is_the_default_and_the_paper_configs_select_on_the_metric():
    from pathlib import Path

    from mmalign.config import TrainConfig, load_config

    assert TrainConfig().selection == "auto"
    root = Path(__file__).resolve().parents[2] / "configs"
    for name in ("mosi", "mosei", "meld"):
        assert load_config(root / f"{name}.yaml").train.selection == "metric"


def test_a_run_folder_without_later_options_means_their_earlier_values(tmp_path):
    from mmalign.config import RunConfig, load_run_config

    path = tmp_path / "config.yaml"
    path.write_text("method: mm-align\ntrain:\n  epochs: 7\n")  # written before both options
    config = load_run_config(path)
    assert config.train.selection == "metric" and config.train.lambda_imputed == 0.0
    assert config.adl.alignment_space == "encoder"  # before the shared step space
    assert config.train.epochs == 7
    assert RunConfig().train.selection == "auto" and RunConfig().train.lambda_imputed == 1.0
    path.write_text("train:\n  selection: loss\n  lambda_imputed: 0.5\n")
    config = load_run_config(path)
    assert config.train.selection == "loss" and config.train.lambda_imputed == 0.5


def test_plot_history_stars_what_the_run_selected_on(tmp_path, tiny_config):
    import yaml

    from mmalign.commands.plot_history import read_history, selected_quantity

    for selection, expected in (("auto", "loss"), ("metric", None)):
        folder = tmp_path / selection
        run(tiny_config(data=TINY_CLS, selection=selection), folder, log=lambda s: None)
        assert selected_quantity(folder, read_history(folder)) == expected
    # a run made before --selection (no key in config.yaml) selected on the metric
    folder = tmp_path / "auto"
    values = yaml.safe_load((folder / "config.yaml").read_text())
    values.get("train", values).pop("selection")
    (folder / "config.yaml").write_text(yaml.safe_dump(values))
    assert selected_quantity(folder, read_history(folder)) is None
    regression = tmp_path / "regression"
    run(tiny_config(), regression, log=lambda s: None)
    assert selected_quantity(regression, read_history(regression)) is None  # auto: MAE
