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


def _random_argv(store, *extra):
    return [
        "benchmark",
        "--data",
        "synthetic:n_train=8",
        "--seeds",
        "3",
        "--set",
        "missing_rate=0.3",
        "--set",
        "frame_drop=0.2",
        "--engine",
        "serial",
        "--runner",
        "grid_fakes:fake_random_runner",
        "--store",
        str(store),
        "--no-progress",
        *extra,
    ]


def test_benchmark_random_missing_runs_methods_x_seeds(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(HERE))
    store = tmp_path / "bench.sqlite"
    # no --methods: the methods that take the random-missing protocol
    assert main(_random_argv(store)) == 0
    captured = capsys.readouterr()
    rows = ResultStore(store).rows()
    assert sorted((r["method"], r["seed"]) for r in rows) == sorted(
        (m, s) for m in ("lb", "ub", "mm-align") for s in range(3)
    )
    assert {(r["source"], r["victim"], r["p"]) for r in rows} == {("", "", 1.0)}
    assert (tmp_path / "grid" / "mm-align" / "random").is_dir()
    assert "9 runs done, 0 already in the store" in captured.err
    # the per-pattern tables (MAE, then Acc-2), not the paper layout
    assert "per pattern of present modalities, missing rate 30%, frame drop 20%" in captured.out
    assert (
        "| Method | {T} | {V} | {A} | {T,V} | {T,A} | {V,A} | {T,V,A} | Overall |" in captured.out
    )
    assert "Setting A" not in captured.out and captured.out.count("**synthetic") == 2
    assert main(_random_argv(store, "--methods", "lb,mm-align")) == 0
    assert "0 runs done, 6 already in the store" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, match",
    [
        (["--pairs", "t:v"], "`--pairs` must not be given with missing_rate=0.3"),
        (["--ps", "0.5"], "`--ps` must not be given with missing_rate=0.3"),
        (["--methods", "lb,smil"], r"`method` must be one of \['lb', 'ub', 'mm-align'\]"),
    ],
)
def test_benchmark_random_missing_refuses_pair_flags(tmp_path, capsys, flags, match):
    import re

    assert main(_random_argv(tmp_path / "s.sqlite", *flags)) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "s.sqlite").exists()


def test_random_missing_from_a_config_file_refuses_pairs(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("missing_rate: 0.4\n")
    argv = ["benchmark", "--data", "synthetic", "--config", str(config), "--pairs", "all"]
    assert main([*argv, "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "the random-missing protocol draws every modality" in capsys.readouterr().err
    assert grid_overrides(str(config), ["frame_drop=0.1"]) == {
        "missing_rate": 0.4,
        "frame_drop": 0.1,
    }


def test_benchmark_and_report_count_the_runs_warnings(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(HERE))
    store = str(tmp_path / "w.sqlite")
    argv = ["benchmark", "--data", "synthetic:n_train=8", "--methods", "lb", "--pairs", "t:v",
            "--ps", "0.1", "--seeds", "4", "--engine", "serial", "--runner",
            "grid_fakes:warning_runner", "--store", store, "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    line = "runs with warnings: below_floor 2 of 4, epoch_cap 2 of 4 (`mmalign report --store"
    err = capsys.readouterr().err
    assert f"mmalign benchmark: {line}" in err  # seeds 0, 2 and 0, 3
    out_dir = Path(err.split("run folders under ")[1].split()[0])
    assert main(["report", "--store", store]) == 0
    assert f"mmalign report: {line}" in capsys.readouterr().err
    # --warnings names each such run, its folder (which exists) and its warnings with codes
    assert main(["report", "--store", store, "--warnings"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("3 of 4 runs recorded warnings")
    labels = [ln for ln in listing.splitlines() if ln.startswith("lb ")]
    assert [ln.split(" on ")[0] for ln in labels] == [
        f"lb text->vision p=0.1 seed={s}" for s in (0, 2, 3)
    ]
    assert all((out_dir / ln.split(": ")[-1] / "metrics.json").is_file() for ln in labels)
    assert "  [epoch_cap] epoch_cap: text\n  [below_floor] below_floor: text" in listing
    with pytest.raises(SystemExit):
        main(["report", "--store", store, "--warnings", "--list"])
    assert "not allowed with argument" in capsys.readouterr().err
    # an older run without codes counts as uncoded; a run without warnings is not listed
    old = ResultStore(store)
    (row,) = old.rows(seed=1)
    assert old.warning_counts([row["fingerprint"]]) == (1, {})
    block = {"test": {"mae": 1.0}}
    spec_dict = {k: row[k] for k in ("data", "method", "source", "victim", "p", "seed")}
    from mmalign.experiments.spec import RunSpec

    old.put(RunSpec(**spec_dict), {"A": block, "B": block, "warnings": ["x"]}, 1.0)
    assert old.warning_counts(seed=1) == (1, {"uncoded": 1})
