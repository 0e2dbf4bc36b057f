from pathlib import Path

import pytest

from mmalign.cli import main
from mmalign.commands.grid_flags import grid_overrides
from mmalign.experiments.store import ResultStore
from mmalign.validation import ConfigError

HERE = Path(__file__).resolve().parent


def test_benchmark_runs_resumes_and_prints_table(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(HERE))
    store = tmp_path / "bench.sqlite"
    argv = [
        "benchmark",
        "--data",
        "synthetic:n_train=8",
        "--methods",
        "lb,ub,mm-align",
        "--pairs",
        "t:v",
        "--ps",
        "0.1",
        "--seeds",
        "3",
        "--engine",
        "serial",
        "--runner",
        "grid_fakes:fake_runner",
        "--store",
        str(store),
        "--no-progress",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert len(ResultStore(store)) == 9
    assert (tmp_path / "grid" / "mm-align" / "t-v").is_dir()  # default: next to the store
    assert "| MM-Align | **" in captured.out and "T→V Setting A MAE↓" in captured.out
    assert "9 runs done, 0 already in the store" in captured.err
    assert main(argv) == 0
    assert "0 runs done, 9 already in the store" in capsys.readouterr().err


def test_benchmark_failure_exit_code(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(HERE))
    argv = [
        "benchmark",
        "--data",
        "synthetic",
        "--methods",
        "lb",
        "--pairs",
        "a:t",
        "--ps",
        "0.5",
        "--seeds",
        "0,1",
        "--engine",
        "serial",
        "--no-progress",
        "--runner",
        "grid_fakes:failing_runner",
        "--store",
        str(tmp_path / "s.sqlite"),
    ]
    assert main(argv) == 1
    assert "boom on seed 1" in capsys.readouterr().err


def test_bad_runner_and_overrides(tmp_path, capsys):
    argv = [
        "benchmark",
        "--data",
        "synthetic",
        "--runner",
        "nowhere",
        "--store",
        str(tmp_path / "s.sqlite"),
    ]
    assert main(argv) == 2
    assert "`--runner` must look like module:function" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="must not set"):
        grid_overrides(None, ["seed=3"])
    with pytest.raises(ConfigError, match="key=value"):
        grid_overrides(None, ["window"])


def test_yaml_and_set_merge(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("adl:\n  window: 3\ntrain:\n  epochs: 2\n")
    assert grid_overrides(str(config), ["window=5"]) == {"window": 5, "epochs": 2}
    # values come back typed, read by the option table
    assert grid_overrides(None, ["lr_main=0.01", "train_fitter=no"]) == {
        "lr_main": 0.01,
        "train_fitter": False,
    }
